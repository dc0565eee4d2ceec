//! The scheduler daemon through the real binary, with schedules that fire every second or
//! two instead of nightly. The daemon logs JSON lines; tests read them to follow it, and
//! read the store only once it has stopped.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use common::Project;

struct Daemon {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Daemon {
    fn start(p: &Project) -> Daemon {
        let mut child = Command::new(env!("CARGO_BIN_EXE_keepwell"))
            .arg("-C")
            .arg(p.path())
            .args(["--log-format", "json", "-v", "serve"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start serve");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Daemon { child, lines: rx, seen: Vec::new() }
    }

    /// Waits until a log line contains `text` (`count` times), failing after `timeout`.
    fn wait_for(&mut self, text: &str, count: usize, timeout: Duration) {
        let until = Instant::now() + timeout;
        while self.seen.iter().filter(|l| l.contains(text)).count() < count {
            let left = until.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => panic!(
                    "no {count} log lines with {text:?} within {timeout:?}; log so far:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    fn count(&mut self, text: &str) -> usize {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        self.seen.iter().filter(|l| l.contains(text)).count()
    }

    /// SIGTERM, then waits for the exit code.
    fn stop(mut self) -> (i32, Vec<String>) {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let status = self.child.wait().expect("wait");
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
            self.seen.push(line);
        }
        (status.code().unwrap_or(-1), self.seen)
    }
}

fn scheduled_job(cron: &str, extra: &str) -> String {
    common::JOB.replace(
        "rule_sets: [risk, health]",
        &format!("rule_sets: [risk, health]\nschedule:\n  cron: \"{cron}\"\n  timezone: Europe/London\n{extra}"),
    )
}

#[test]
fn a_scheduled_job_fires_and_records_runs() {
    let p = Project::new(&[("jobs/nightly.yaml", &scheduled_job("*/2 * * * * *", ""))]);
    let mut d = Daemon::start(&p);
    d.wait_for("Next fire time.", 1, Duration::from_secs(20));
    d.wait_for("Run finished.", 2, Duration::from_secs(30));
    let (code, log) = d.stop();
    assert_eq!(code, 0, "{}", log.join("\n"));
    let runs = p.query("SELECT count(*), count(*) FILTER (WHERE status = 'succeeded') FROM runs");
    let (total, ok) = runs[0].split_once('|').expect("two columns");
    assert!(total == ok && total.parse::<u32>().expect("count") >= 2, "{runs:?}");
}

#[test]
fn an_overlapping_fire_is_skipped_and_logged() {
    // Feature SQL that keeps DuckDB busy for a few seconds, on a schedule of every second.
    let slow = "SELECT a.*, round(100.0 * active_users / seats, 1) AS utilisation, s.n AS spin \
                FROM accounts a, (SELECT count(*) AS n FROM range(0, 3000000000) t(i) WHERE i % 7 = 3) s";
    let p =
        Project::new(&[("jobs/nightly.yaml", &scheduled_job("* * * * * *", "")), ("sql/account_features.sql", slow)]);
    let mut d = Daemon::start(&p);
    d.wait_for("Skipped: the previous run of this job is still going.", 1, Duration::from_secs(60));
    let (code, log) = d.stop();
    assert_eq!(code, 0, "{}", log.join("\n"));
    let statuses = p.query("SELECT status FROM runs ORDER BY run_id");
    assert!(statuses.iter().all(|s| s == "succeeded"), "{statuses:?}");
}

#[test]
fn sigterm_during_a_run_lets_it_finish_and_leaves_the_store_consistent() {
    let slow = "SELECT a.*, round(100.0 * active_users / seats, 1) AS utilisation, s.n AS spin \
                FROM accounts a, (SELECT count(*) AS n FROM range(0, 2000000000) t(i) WHERE i % 7 = 3) s";
    let p =
        Project::new(&[("jobs/nightly.yaml", &scheduled_job("*/3 * * * * *", "")), ("sql/account_features.sql", slow)]);
    let mut d = Daemon::start(&p);
    d.wait_for("Run started.", 1, Duration::from_secs(30));
    let (code, log) = d.stop();
    assert_eq!(code, 0, "{}", log.join("\n"));
    assert!(log.iter().any(|l| l.contains("Stopping: waiting for running jobs to finish.")), "{}", log.join("\n"));
    assert_eq!(p.query("SELECT count(*) FROM runs WHERE status = 'running'"), ["0"]);
    assert_eq!(
        p.query("SELECT count(*) FROM runs r WHERE published AND (SELECT count(*) FROM outcomes o WHERE o.run_id = r.run_id) <> 6"),
        ["0"]
    );
    assert_eq!(p.query("SELECT count(*) FROM runs WHERE status = 'succeeded' AND published"), ["1"]);
}

#[test]
fn a_second_daemon_on_the_same_store_refuses_to_start() {
    let p = Project::new(&[("jobs/nightly.yaml", &scheduled_job("0 30 5 * * *", ""))]);
    let mut first = Daemon::start(&p);
    first.wait_for("The daemon is running.", 1, Duration::from_secs(20));
    let second = p.keepwell(&["serve"]);
    assert_eq!(second.code, 2, "{}", second.stderr);
    assert!(
        second.stderr.starts_with("error: another keepwell serve is already running on the store `"),
        "{}",
        second.stderr
    );
    assert!(second.stderr.contains(&format!("held by process {})", first.child.id())), "{}", second.stderr);
    let (code, _) = first.stop();
    assert_eq!(code, 0);
}

#[test]
fn a_failing_job_is_retried_then_alerts_by_mail() {
    let job = scheduled_job(
        "*/2 * * * * *",
        "  retries: 1\n  retry_delay: 1s\n  catch_up: none\non_failure: [\"Ops <ops@example.com>\"]\n",
    );
    let p = Project::new(&[("jobs/nightly.yaml", &job)]);
    std::fs::remove_file(p.path().join("data/accounts.csv")).expect("rm");
    let mut d = Daemon::start(&p);
    d.wait_for("Failure alert sent.", 1, Duration::from_secs(40));
    assert!(d.count("The run failed; retrying after a pause.") >= 1);
    let (code, log) = d.stop();
    assert_eq!(code, 0, "{}", log.join("\n"));
    let alerts: Vec<_> = p
        .files_under(".keepwell/outbox")
        .into_iter()
        .filter(|f| f.display().to_string().contains("failure--ops@example.com"))
        .collect();
    assert!(!alerts.is_empty(), "{:?}", p.files_under(".keepwell/outbox"));
    let mail = std::fs::read_to_string(p.path().join(&alerts[0])).expect("alert");
    assert!(mail.contains("Subject: keepwell: job nightly failed for "), "{mail}");
    assert!(mail.contains("To: Ops <ops@example.com>"), "{mail}");
    assert!(mail.contains("no file matches `data/accounts.csv`"), "{mail}");
    assert_eq!(p.query("SELECT count(*) FROM runs WHERE published"), ["0"]);
}

#[test]
fn a_missed_fire_time_is_caught_up_once() {
    let p = Project::new(&[("jobs/nightly.yaml", &scheduled_job("0 30 5 * * *", "  catch_up: latest\n"))]);
    assert_eq!(p.keepwell(&["run", "nightly", "--as-of", "2026-01-01"]).code, 0);
    // The only run happened long ago: every daily fire time since was missed.
    let conn = p.store();
    conn.execute_batch("UPDATE runs SET started_at = now() - INTERVAL 3 DAY").expect("age the run");
    drop(conn);
    let mut d = Daemon::start(&p);
    d.wait_for("Catching up a fire time missed while the daemon was down.", 1, Duration::from_secs(20));
    d.wait_for("Run finished.", 1, Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(2));
    let (code, log) = d.stop();
    assert_eq!(code, 0, "{}", log.join("\n"));
    assert_eq!(log.iter().filter(|l| l.contains("Catching up")).count(), 1);
    assert_eq!(p.query("SELECT count(*) FROM runs"), ["2"]);

    // Started again right away, nothing more is missed.
    let mut again = Daemon::start(&p);
    again.wait_for("The daemon is running.", 1, Duration::from_secs(20));
    let (_, log) = again.stop();
    assert!(!log.iter().any(|l| l.contains("Catching up")), "{}", log.join("\n"));
}

#[test]
fn a_stale_source_stops_the_run_before_any_mail() {
    let job = common::JOB.replace("    primary_key: account_id\n", "    primary_key: account_id\n    max_age: 1h\n");
    let p = Project::new(&[("jobs/nightly.yaml", &job)]);
    let csv = p.path().join("data/accounts.csv");
    let ok = Command::new("touch").args(["-d", "3 hours ago"]).arg(&csv).status().expect("touch").success();
    assert!(ok);
    let out = p.keepwell(&["run", "nightly"]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stdout.contains(
            "  error    source `accounts` is stale: `data/accounts.csv` was last written 3h ago, more than max_age 1h\n"
        ),
        "{}",
        out.stdout
    );
    assert!(p.files_under(".keepwell/outbox").is_empty());
    assert_eq!(p.query("SELECT status, published FROM runs"), ["failed|false"]);

    // With on_stale: warn, the run goes on and says so.
    p.write("jobs/nightly.yaml", &job.replace("    max_age: 1h\n", "    max_age: 1h\n    on_stale: warn\n"));
    let out = p.keepwell(&["run", "nightly"]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(out.stdout.contains(": degraded in "), "{}", out.stdout);
    assert!(out.stdout.contains("  warning  source `accounts` is stale"), "{}", out.stdout);
}
