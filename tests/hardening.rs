//! Hostile and careless input, on the real binary: each class of the hardening issue has a
//! test here that fails if keepwell lets it through (see docs/reliability.md).

mod common;

use common::{JOB, Project};

/// Column types that try to leave the type they are written into. Each is refused at
/// `check` and at `run`, located at the type, and nothing is written.
#[test]
fn column_types_cannot_inject_sql() {
    let outside = tempfile::tempdir().expect("temp dir");
    let target = outside.path().join("pwned.csv");
    let target = target.display();
    let injections = [
        format!("\"VARCHAR); COPY (SELECT 1) TO '{target}'; SELECT CAST(NULL AS VARCHAR\""),
        "\"INTEGER GENERATED ALWAYS AS (read_text(chr(47)))\"".to_string(),
        "\"INTEGER, pwned VARCHAR\"".to_string(),
        "\"VARCHAR -- the rest is a comment\"".to_string(),
    ];
    for injected in &injections {
        let p = Project::new(&[("jobs/nightly.yaml", &JOB.replace("seats: INTEGER", &format!("seats: {injected}")))]);
        for command in [&["check"][..], &["run", "nightly"][..]] {
            let out = p.keepwell(command);
            assert_eq!(out.code, 2, "{command:?} with {injected}: {}", out.stderr);
            assert!(
                out.stderr.contains("is not a DuckDB type (column `seats` of source `accounts`)")
                    && out.stderr.contains(" --> jobs/nightly.yaml:")
                    && out.stderr.contains("= code: KW040"),
                "{command:?} with {injected}: {}",
                out.stderr
            );
        }
        assert!(std::fs::read_dir(outside.path()).expect("dir").next().is_none(), "{injected} wrote a file");
        assert!(!p.path().join(".keepwell/keepwell.duckdb").exists(), "{injected}: a run was recorded");
    }
}

/// A helper given a value out of its range fails the account, never the process.
#[test]
fn a_helper_out_of_range_fails_the_account_not_the_run() {
    let risk = common::RISK
        .replace("when: industry in [\"travel\", \"retail\"]", "when: add_days(as_of, 999999999999) > as_of");
    let p = Project::new(&[("rules/risk.yaml", &risk)]);
    let out = p.keepwell(&["run", "nightly", "--as-of", "2026-11-23"]);
    assert_eq!(out.code, 1, "degraded, not crashed: {}", out.stderr);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    let errors = p.query("SELECT DISTINCT rule_id, message FROM rule_errors");
    assert_eq!(
        errors,
        ["hard_hit_industry|add_days(2026-11-23, 999999999999) is out of the range of dates"],
        "{}",
        out.stderr
    );
}

/// What `check` can prove wrong about a rule set it rejects, located, before any run.
#[test]
fn check_rejects_rules_it_can_prove_wrong() {
    let csv = common::ACCOUNTS_CSV
        .replace("csm_email\n", "csm_email,renewal_date\n")
        .replace("ann@example.com\n", "ann@example.com,2027-01-31\n")
        .replace("bob@example.com\n", "bob@example.com,2027-03-31\n");
    let job = JOB.replace("      csm_email: VARCHAR\n", "      csm_email: VARCHAR\n      renewal_date: DATE\n");
    let cases = [
        ("score: { base: 0, min: 0, max: 100 }", "score: { base: 0, min: 100, max: 0 }", "KW037", "is above its max"),
        ("score: { base: 0, min: 0, max: 100 }", "score: { base: .nan, min: 0, max: 100 }", "KW037", "not a number"),
        (
            "when: industry in [\"travel\", \"retail\"]",
            "when: renewal_date > 5",
            "KW031",
            "a date column, with a number",
        ),
        ("when: industry in [\"travel\", \"retail\"]", "when: arr + \"x\" == 3", "KW031", "in arithmetic with text"),
        ("points: 60", "points: industry", "KW031", "a column of text, not a number"),
    ];
    for (find, replace, code, message) in cases {
        let p = Project::new(&[
            ("data/accounts.csv", &csv),
            ("jobs/nightly.yaml", &job),
            ("rules/risk.yaml", &common::RISK.replacen(find, replace, 1)),
        ]);
        let out = p.keepwell(&["check"]);
        assert_eq!(out.code, 2, "{replace}: {}", out.stderr);
        assert!(
            out.stderr.contains(message) && out.stderr.contains(&format!("= code: {code}")),
            "{replace}: {}",
            out.stderr
        );
        assert!(out.stderr.contains(" --> rules/risk.yaml:"), "{replace}: {}", out.stderr);
    }
}

/// A script whose native work the operation limit cannot see (a `contains` over a large
/// array is one operation) is stopped by the job's time budget: the run fails cleanly and
/// publishes nothing.
#[test]
fn a_runaway_script_is_stopped_by_the_time_budget() {
    let script = "let a = [];\nfor i in 0..100000 { a.push(i); }\nlet n = 0;\n\
                  for i in 0..1000000 { if a.contains(-1) { n += 1; } }\n#{ score: n }\n";
    let p = Project::new(&[
        ("jobs/nightly.yaml", &JOB.replace("rule_sets: [risk, health]", "timeout: 3s\nrule_sets: [risk, health]")),
        ("rules/health.yaml", "grades: [{ grade: ok }]\nscript: slow.rhai\n"),
        ("rules/slow.rhai", script),
    ]);
    let out = p.keepwell(&["run", "nightly", "--as-of", "2026-11-23"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("the run took longer than its time budget of 3s (`timeout:` in the job) and was stopped"),
        "{}",
        out.stderr
    );
    assert_eq!(p.query("SELECT status, published FROM runs"), ["failed|false"]);
    assert!(p.query("SELECT * FROM outcomes").is_empty());
}

/// A feature query that would run for hours is interrupted by the same budget.
#[test]
fn a_runaway_feature_query_is_stopped_by_the_time_budget() {
    let slow = "SELECT a.*, round(100.0 * active_users / seats, 1) AS utilisation\n\
                FROM accounts a\n\
                WHERE (SELECT sum(range) FROM range((SELECT count(*) FROM accounts) * 100000000000)) >= 0\n";
    let p = Project::new(&[
        ("jobs/nightly.yaml", &JOB.replace("rule_sets: [risk, health]", "timeout: 3s\nrule_sets: [risk, health]")),
        ("sql/account_features.sql", slow),
    ]);
    let out = p.keepwell(&["run", "nightly", "--as-of", "2026-11-23"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("the run took longer than its time budget of 3s"), "{}", out.stderr);
    assert_eq!(p.query("SELECT status, published FROM runs"), ["failed|false"]);
}

/// A header-only extract after a good day, or one far smaller than the last, stops the run
/// before it publishes: the last good results and their mail stand.
#[test]
fn an_empty_or_cut_short_extract_never_replaces_good_results() {
    let p = Project::new(&[]);
    assert_eq!(p.keepwell(&["run", "nightly", "--as-of", "2026-11-23"]).code, 0);
    let header = common::ACCOUNTS_CSV.lines().next().expect("header").to_string() + "\n";
    let one_row: String = common::ACCOUNTS_CSV.lines().take(2).map(|l| l.to_string() + "\n").collect();
    let cases = [
        (
            header.as_str(),
            "source `accounts`: 0 rows, fewer than its min_rows of 1: the extract looks empty or cut short",
        ),
        (one_row.as_str(), "source `accounts`: 1 rows, 67% fewer than the 3 of the last published run (max_drop: 50%)"),
    ];
    for (day, (csv, message)) in ["2026-11-24", "2026-11-25"].into_iter().zip(cases) {
        p.write("data/accounts.csv", csv);
        let out = p.keepwell(&["run", "nightly", "--as-of", day]);
        assert_eq!(out.code, 1, "{}", out.stderr);
        assert!(out.stderr.contains(message), "{}", out.stderr);
        assert!(out.stderr.contains("so the run stopped before publishing anything"), "{}", out.stderr);
    }
    assert_eq!(
        p.query("SELECT as_of, status, published FROM runs ORDER BY run_id"),
        ["2026-11-23|succeeded|true", "2026-11-24|failed|false", "2026-11-25|failed|false"]
    );
    assert_eq!(p.query("SELECT DISTINCT as_of FROM latest_outcomes"), ["2026-11-23"]);
    // A drop the source allows goes through.
    p.write(
        "jobs/nightly.yaml",
        &JOB.replace("primary_key: account_id", "primary_key: account_id\n    max_drop: 100%"),
    );
    assert_eq!(p.keepwell(&["run", "nightly", "--as-of", "2026-11-26"]).code, 0);
}

/// No secret reaches the log at any verbosity: the SMTP password, and the `AUTH PLAIN` line
/// that carries it in base64, stay out of even a trace-level log of a delivery.
#[test]
fn the_smtp_password_is_never_logged() {
    use base64::Engine as _;
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let relay = "import sys, time\n\
                 from aiosmtpd.controller import Controller\n\
                 from aiosmtpd.smtp import AuthResult\n\
                 class Handler:\n    async def handle_DATA(self, server, session, envelope):\n        return '250 OK'\n\
                 def authenticate(server, session, envelope, mechanism, data):\n    return AuthResult(success=True)\n\
                 c = Controller(Handler(), hostname='127.0.0.1', port=int(sys.argv[1]), auth_require_tls=False,\n\
                 \x20              authenticator=authenticate)\n\
                 c.start()\n\
                 time.sleep(600)\n";
    let mut server = start_relay(relay, port, &[&port.to_string()]);
    let settings = format!(
        "mail:\n  from: keepwell@example.com\n  smtp:\n    host: 127.0.0.1\n    port: {port}\n    tls: none\n    \
         user: relay-user\n    password_env: RELAY_PASSWORD\n"
    );
    let p = Project::new(&[("keepwell.yaml", &settings)]);
    let secret = "s3cret-Pa55word";
    let out = p.keepwell_with(
        &["-vv", "run", "nightly", "--as-of", "2026-11-23"],
        &[("RELAY_PASSWORD", secret), ("KEEPWELL_LOG", "trace")],
    );
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("mail     2 messages sent through 127.0.0.1:"), "{}", out.stdout);
    let plain = base64::engine::general_purpose::STANDARD.encode(format!("\0relay-user\0{secret}"));
    let log = format!("{}{}", out.stdout, out.stderr);
    for leak in [secret, plain.as_str(), "AUTH PLAIN"] {
        assert!(!log.contains(leak), "`{leak}` was logged");
    }
    assert!(log.contains("DEBUG"), "the log is at debug level and beyond: {}", out.stderr);
}

/// Job and output names become folders: one that could reach outside keepwell's own
/// folders is refused at `check`, located.
#[test]
fn names_cannot_reach_outside_the_project() {
    let cases = [
        ("name: nightly", "name: ../../escaped", "job name `../../escaped` cannot be a folder name"),
        ("name: at_risk", "name: /tmp/escaped", "output name `/tmp/escaped` cannot be a folder name"),
        ("name: summary", "name: at_risk", "output name `at_risk` is used twice in job `nightly`"),
    ];
    for (find, replace, message) in cases {
        let p = Project::new(&[("jobs/nightly.yaml", &JOB.replacen(find, replace, 1))]);
        for command in [&["check"][..], &["run", "nightly"][..]] {
            let out = p.keepwell(command);
            assert_eq!(out.code, 2, "{replace}: {}", out.stderr);
            assert!(out.stderr.contains(message) && out.stderr.contains(" --> jobs/nightly.yaml:"), "{}", out.stderr);
        }
        assert!(!p.path().join(".keepwell").exists(), "{replace}: something was written");
    }
}

/// Owners whose names would make the same file name each get their own list and mail.
#[test]
fn owners_that_look_alike_each_get_their_own_list_and_mail() {
    let csv = "account_id,name,industry,arr,seats,active_users,csm_email\n\
               A1,Acme,travel,120000.00,100,20,team/a@x.com\n\
               A2,Globex,travel,50000.00,40,3,team_a@x.com\n\
               A3,Initech,retail,8000.00,10,2,team?a@x.com\n";
    let p = Project::new(&[("data/accounts.csv", csv)]);
    let out = p.keepwell(&["run", "nightly", "--as-of", "2026-11-23"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lists: Vec<_> = p.files_under(".keepwell/runs/1/at_risk");
    let mut accounts: Vec<String> = lists
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(p.path().join(f)).expect("list");
            text.lines().nth(1).and_then(|row| row.split(',').next()).unwrap_or("").to_string()
        })
        .collect();
    accounts.sort();
    assert_eq!(accounts, ["Acme", "Globex", "Initech"], "{lists:?}");
    let mails: Vec<_> = p
        .files_under(".keepwell/outbox/nightly/2026-11-23")
        .into_iter()
        .filter(|f| f.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("at_risk--")))
        .collect();
    assert_eq!(mails.len(), 3, "{mails:?}");
    assert_eq!(p.query("SELECT count(*) FROM outbox WHERE output = 'at_risk' AND status = 'sent'"), ["3"]);
}

/// Scripts, feature SQL, lookup tables and templates are read only from inside the project,
/// symlinks followed: a file outside it is refused, and none of its text is shown.
#[test]
fn project_files_are_read_only_from_inside_the_project() {
    let outside = tempfile::tempdir().expect("temp dir");
    let secret = outside.path().join("secrets.env");
    std::fs::write(&secret, "SECRET_TOKEN=hunter2-do-not-print\n").expect("write");
    let relative = |p: &Project| {
        let depth = p.path().components().count();
        format!("{}{}", "../".repeat(depth), secret.display().to_string().trim_start_matches('/'))
    };
    type Setup = fn(&Project, &str, &std::path::Path);
    let cases: [(&str, Setup, &str); 7] = [
        (
            "a rule file through a symlink",
            |p, _, secret| {
                std::os::unix::fs::symlink(secret, p.path().join("rules/stolen.yaml")).expect("symlink");
            },
            "cannot read `rules/stolen.yaml`: it lies outside the project folder",
        ),
        (
            "a base job by a relative path",
            |p, rel, _| {
                p.write(
                    "jobs/nightly.yaml",
                    &format!(
                        "extends: {rel}
{JOB}"
                    ),
                )
            },
            "cannot read the base job",
        ),
        (
            "feature SQL by a relative path",
            |p, rel, _| {
                p.write("jobs/nightly.yaml", &JOB.replace("  - sql/account_features.sql", &format!("  - {rel}")))
            },
            "lies outside the project folder",
        ),
        (
            "feature SQL through a symlink",
            |p, _, secret| {
                let link = p.path().join("sql/account_features.sql");
                std::fs::remove_file(&link).expect("rm");
                std::os::unix::fs::symlink(secret, &link).expect("symlink");
            },
            "cannot read feature SQL `sql/account_features.sql`: it lies outside the project folder",
        ),
        (
            "a script",
            |p, rel, _| p.write("rules/health.yaml", &format!("grades: [{{ grade: ok }}]\nscript: {}\n", rel)),
            "lies outside the project folder",
        ),
        (
            "a lookup table through a symlink",
            |p, _, secret| {
                std::fs::create_dir_all(p.path().join("rules/lookups")).expect("mkdir");
                std::os::unix::fs::symlink(secret, p.path().join("rules/lookups/regions.csv")).expect("symlink");
            },
            "lookup table `rules/lookups/regions.csv`: it lies outside the project folder",
        ),
        (
            "a mail template through a symlink",
            |p, _, secret| {
                std::fs::create_dir_all(p.path().join("templates")).expect("mkdir");
                std::os::unix::fs::symlink(secret, p.path().join("templates/summary.html")).expect("symlink");
            },
            "cannot read `templates/summary.html`: it lies outside the project folder",
        ),
    ];
    for (what, setup, message) in cases {
        let p = Project::new(&[]);
        setup(&p, &relative(&p), &secret);
        let out = p.keepwell(&["check"]);
        assert_eq!(out.code, 2, "{what}: {}", out.stderr);
        assert!(out.stderr.contains(message), "{what}: {}", out.stderr);
        assert!(!out.stderr.contains("hunter2") && !out.stdout.contains("hunter2"), "{what} printed the secret");
    }
}

/// A run killed mid-way (kill -9: no chance to record anything) is marked failed by the
/// next command that opens the store, without the daemon.
#[test]
fn a_killed_run_is_marked_interrupted_by_the_next_command() {
    let slow = "SELECT a.*, round(100.0 * active_users / seats, 1) AS utilisation\n\
                FROM accounts a\n\
                WHERE (SELECT sum(range) FROM range((SELECT count(*) FROM accounts) * 100000000000)) >= 0\n";
    let p = Project::new(&[("sql/account_features.sql", slow)]);
    let mut child = p.spawn(&["-q", "run", "nightly", "--as-of", "2026-11-23"]);
    let started = p.path().join(".keepwell/runs/1");
    let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !started.exists() {
        assert!(std::time::Instant::now() < until, "the run did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    child.kill().expect("kill -9");
    let _ = child.wait();
    let out = p.keepwell(&["runs"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        p.query("SELECT run_id, status, published, error FROM runs"),
        ["1|failed|false|interrupted: keepwell stopped during the run; nothing was published"]
    );
    // The next run starts clean.
    p.write("sql/account_features.sql", common::FEATURES_SQL);
    assert_eq!(p.keepwell(&["run", "nightly", "--as-of", "2026-11-23"]).code, 0);
}

/// A loopback relay that takes `delay` seconds to answer each message and writes each
/// Message-ID it accepts to `log`, one a line.
struct CountingRelay {
    child: std::process::Child,
    port: u16,
}

impl CountingRelay {
    fn start(log: &std::path::Path, delay: f64) -> CountingRelay {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let relay = "import asyncio, sys, time\n\
                     from aiosmtpd.controller import Controller\n\
                     class Handler:\n    async def handle_DATA(self, server, session, envelope):\n        \
                     await asyncio.sleep(float(sys.argv[3]))\n        \
                     ids = [l for l in envelope.content.decode('utf-8', 'replace').splitlines() \
                     if l.lower().startswith('message-id:')]\n        \
                     open(sys.argv[2], 'a').write((ids[0] if ids else 'none') + '\\n')\n        return '250 OK'\n\
                     c = Controller(Handler(), hostname='127.0.0.1', port=int(sys.argv[1]))\n\
                     c.start()\n\
                     time.sleep(600)\n";
        let child = start_relay(relay, port, &[&port.to_string(), &log.display().to_string(), &delay.to_string()]);
        CountingRelay { child, port }
    }
}

impl Drop for CountingRelay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn received(log: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(log).unwrap_or_default().lines().map(str::to_string).collect()
}

fn smtp_settings(port: u16, timeout: &str) -> String {
    format!(
        "mail:\n  from: keepwell@example.com\n  smtp:\n    host: 127.0.0.1\n    port: {port}\n    tls: none\n    timeout: {timeout}\n"
    )
}

/// kill -9 while mail goes out over SMTP, then `outbox retry`: every mail arrives, and at
/// most the one in flight arrives twice, with the same Message-ID both times.
#[test]
fn a_kill_during_smtp_delivery_sends_at_most_the_mail_in_flight_twice() {
    let work = tempfile::tempdir().expect("temp dir");
    let log = work.path().join("received.txt");
    let relay = CountingRelay::start(&log, 0.05);
    let mut csv = String::from("account_id,name,industry,arr,seats,active_users,csm_email\n");
    for i in 0..60 {
        csv.push_str(&format!("A{i},Account {i},travel,1000.00,10,2,owner{i}@example.com\n"));
    }
    let p = Project::new(&[("keepwell.yaml", &smtp_settings(relay.port, "10m")), ("data/accounts.csv", &csv)]);
    let mut child = p.spawn(&["-q", "run", "nightly", "--as-of", "2026-11-23"]);
    let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while received(&log).len() < 10 {
        assert!(std::time::Instant::now() < until, "delivery did not start");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().expect("kill -9");
    let _ = child.wait();
    let before = received(&log).len();
    assert!(before < 61, "the run finished before it was killed");
    let retry = p.keepwell(&["outbox", "retry"]);
    assert_eq!(retry.code, 0, "{}{}", retry.stdout, retry.stderr);
    let ids = received(&log);
    let mut distinct = ids.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 61, "every mail arrives: 60 lists and the summary");
    assert!(ids.len() - distinct.len() <= 1, "{} mails arrived twice", ids.len() - distinct.len());
    assert!(distinct.iter().all(|id| id.contains(".keepwell@example.com>")), "{distinct:?}");
    assert_eq!(p.query("SELECT count(*) FROM outbox WHERE status = 'sent'"), ["61"]);
}

/// A relay slower than the wait is not sent the same mail again in the same delivery: the
/// mail is kept as failed for a retry, sent once; with a long enough wait it goes once.
#[test]
fn a_slow_relay_is_sent_each_mail_once() {
    let work = tempfile::tempdir().expect("temp dir");
    let log = work.path().join("received.txt");
    let relay = CountingRelay::start(&log, 2.0);
    let p = Project::new(&[("keepwell.yaml", &smtp_settings(relay.port, "1s"))]);
    let out = p.keepwell(&["run", "nightly", "--as-of", "2026-11-23"]);
    assert_eq!(out.code, 1, "degraded: the relay did not answer in time: {}", out.stdout);
    std::thread::sleep(std::time::Duration::from_secs(3));
    let ids = received(&log);
    let mut distinct = ids.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(ids.len(), distinct.len(), "a mail went twice: {ids:?}");
    let q = Project::new(&[("keepwell.yaml", &smtp_settings(relay.port, "10m"))]);
    let log_before = received(&log).len();
    assert_eq!(q.keepwell(&["run", "nightly", "--as-of", "2026-11-23"]).code, 0);
    assert_eq!(received(&log).len() - log_before, 2, "the list and the summary, once each");
}

/// What a rule keeps per account is bounded: a script returning a 99 KB reason, or
/// thousands of them, keeps at most 1,000 reasons of at most 1,000 bytes each.
#[test]
fn a_rule_cannot_grow_a_run_without_bound() {
    let script = "let big = \"x\";\nfor i in 0..16 { big += big; }\nbig += \"\" + 1;\n\
                  let reasons = [big];\nfor i in 0..1500 { reasons.push(\"reason \" + i); }\n\
                  #{ score: 1, reasons: reasons }\n";
    let p = Project::new(&[
        ("rules/health.yaml", "grades: [{ grade: ok }]\nscript: big.rhai\n"),
        ("rules/big.rhai", script),
    ]);
    let out = p.keepwell(&["run", "nightly", "--as-of", "2026-11-23"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        p.query(
            "SELECT DISTINCT len(reasons), octet_length(encode(reasons[1])), reasons[len(reasons)] \
             FROM outcomes WHERE rule_set = 'health'"
        ),
        ["1001|1003|… and 501 more"]
    );
}

/// Careless extracts are located and explained: the file, the line and what is wrong, or
/// what to change.
#[test]
fn a_careless_extract_is_located_and_explained() {
    let header = "account_id,name,industry,arr,seats,active_users,csm_email\n";
    let good = "A1,Acme,travel,120000.00,100,20,ann@example.com\n";
    let cases: [(String, &str); 4] = [
        (
            format!("{header}{good}A3,Initech,retail,8000.00,10,2\n"),
            "data/accounts.csv:3: column `csm_email`: Expected Number of Columns: 7 Found: 6",
        ),
        (
            format!("{header}{good},Globex,healthcare,50000.00,40,38,bob@example.com\n"),
            "data/accounts.csv:3: column `account_id`: the primary key is empty",
        ),
        (
            format!("{}{}", header.replace(',', ";"), good.replace(',', ";")),
            "has no column `account_id`\n --> jobs/nightly.yaml:7:19\n  |\n7 |       account_id: VARCHAR\n  |                   ^^^^^^^\n  \
             = hint: the header is one column: the file seems to use `;` between fields; set `delimiter: \";\"` on the source\n",
        ),
        (format!("{header}A1,Ac\u{fffd}me,travel,120000.00,100,20,ann@example.com\n"), ""),
    ];
    for (i, (csv, message)) in cases.iter().enumerate() {
        let p = Project::new(&[]);
        let bytes = if message.is_empty() {
            // Invalid UTF-8: a Latin-1 byte where the text should be.
            csv.replace('\u{fffd}', "\u{0}").into_bytes().into_iter().map(|b| if b == 0 { 0xff } else { b }).collect()
        } else {
            csv.clone().into_bytes()
        };
        std::fs::write(p.path().join("data/accounts.csv"), bytes).expect("write");
        let out = p.keepwell(&["run", "nightly", "--as-of", "2026-11-23"]);
        let expected = if message.is_empty() {
            "data/accounts.csv:2: column `name`: Invalid unicode (byte sequence mismatch) detected. This file is not utf-8 encoded."
        } else {
            message
        };
        // A header without the job's columns is found before the run, as a configuration
        // error at the job's line; bad rows are found by the run.
        if i == 2 {
            assert_eq!(out.code, 2, "case {i}: {}", out.stderr);
            assert!(out.stderr.contains(expected), "case {i}: {}", out.stderr);
        } else {
            assert_eq!(out.code, 1, "case {i}: {}", out.stdout);
            assert!(out.stdout.contains(expected), "case {i}: {}", out.stdout);
        }
    }
}

/// Sources may live anywhere, but `check` says where each one outside the project resolves.
#[test]
fn check_shows_where_sources_outside_the_project_resolve() {
    let extracts = tempfile::tempdir().expect("temp dir");
    std::fs::write(extracts.path().join("accounts.csv"), common::ACCOUNTS_CSV).expect("write");
    let link = tempfile::tempdir().expect("temp dir");
    std::os::unix::fs::symlink(extracts.path(), link.path().join("latest")).expect("symlink");
    let path = link.path().join("latest/accounts.csv");
    let p = Project::new(&[(
        "jobs/nightly.yaml",
        &JOB.replace("path: data/accounts.csv", &format!("path: {}", path.display())),
    )]);
    let out = p.keepwell(&["check"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let real = extracts.path().canonicalize().expect("real").join("accounts.csv");
    assert_eq!(
        out.stdout,
        format!(
            "source `accounts` of job `nightly` reads {}, outside the project\n\
             checked 1 job and 2 rule sets: 0 errors, 0 warnings\n",
            real.display()
        )
    );
}

/// A lookup table that would make rules silently stop firing fails `check`: numbers with a
/// text among them (`"1,000"`), or a file written with `;`.
#[test]
fn a_broken_lookup_table_fails_check() {
    let risk = common::RISK
        .replace("when: industry in [\"travel\", \"retail\"]", "when: lookup(\"regions\", industry, \"points\") > 5");
    let cases = [
        (
            "industry,points\ntravel,10\nretail,\"1,000\"\n",
            "column `points` mixes numbers and text: line 3 has `1,000`",
        ),
        ("industry;points\ntravel;10\n", "the file seems to use `;` between fields"),
    ];
    for (csv, message) in cases {
        let p = Project::new(&[("rules/risk.yaml", &risk), ("rules/lookups/regions.csv", csv)]);
        let out = p.keepwell(&["check"]);
        assert_eq!(out.code, 2, "{}", out.stderr);
        assert!(
            out.stderr.contains("lookup table `rules/lookups/regions.csv`: ") && out.stderr.contains(message),
            "{}",
            out.stderr
        );
        assert!(out.stderr.contains("= code: KW015"), "{}", out.stderr);
    }
}

/// Starts a Python relay script (aiosmtpd, which `make test` installs) with `args` and
/// waits until it listens on `port`.
fn start_relay(script: &str, port: u16, args: &[&str]) -> std::process::Child {
    let child = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("python3 with aiosmtpd (make test installs it)");
    let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < until, "the relay did not start");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    child
}
