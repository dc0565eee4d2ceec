//! Delivery over real SMTP: a local aiosmtpd server (installed by `make test`) stores what it
//! receives in a maildir, which the tests read.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Project;

struct SmtpServer {
    child: Child,
}

impl SmtpServer {
    fn start(port: u16, maildir: &Path) -> SmtpServer {
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m aiosmtpd (make test installs it)");
        let until = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < until, "the SMTP server did not start on port {port}");
            std::thread::sleep(Duration::from_millis(100));
        }
        SmtpServer { child }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn received(maildir: &Path) -> Vec<String> {
    let mut mails: Vec<(PathBuf, String)> = std::fs::read_dir(maildir.join("new"))
        .map(|d| d.flatten().map(|e| (e.path(), std::fs::read_to_string(e.path()).unwrap_or_default())).collect())
        .unwrap_or_default();
    mails.sort();
    mails.into_iter().map(|(_, m)| m).collect()
}

fn smtp_project(port: u16) -> Project {
    let settings = format!(
        "mail:\n  from: \"keepwell <keepwell@example.com>\"\n  smtp:\n    host: 127.0.0.1\n    port: {port}\n    tls: none\n"
    );
    Project::new(&[("keepwell.yaml", &settings)])
}

#[test]
fn mail_waits_while_the_server_is_down_then_goes_exactly_once() {
    let port = free_port();
    let p = smtp_project(port);
    let maildir = p.path().join("maildir");

    // The server is down: the run publishes, the mail stays in the outbox as failed.
    let out = p.keepwell(&["run", "nightly", "--as-of", "2026-11-23"]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains(": degraded in "), "{}", out.stdout);
    assert!(
        out.stdout.contains("  warning  mail not sent, kept in the outbox: at_risk to ann@example.com (2026-11-23): "),
        "{}",
        out.stdout
    );
    let listed = p.keepwell(&["outbox", "--status", "failed"]);
    assert_eq!(listed.stdout.lines().count(), 3, "{}", listed.stdout);

    // Once it is up, a retry delivers each mail once; another retry sends nothing.
    let _server = SmtpServer::start(port, &maildir);
    let retry = p.keepwell(&["outbox", "retry"]);
    assert_eq!((retry.code, retry.stdout.as_str()), (0, "2 sent, 0 still failing\n"));
    assert_eq!(received(&maildir).len(), 2);
    let again = p.keepwell(&["outbox", "retry"]);
    assert_eq!(again.stdout, "0 sent, 0 still failing\n");

    // A rerun of the same day sends nothing new.
    let rerun = p.keepwell(&["run", "nightly", "--as-of", "2026-11-23"]);
    assert_eq!(rerun.code, 0, "{}", rerun.stdout);
    assert!(
        rerun.stdout.contains("  mail     2 messages already sent for this day, not sent again\n"),
        "{}",
        rerun.stdout
    );
    assert_eq!(received(&maildir).len(), 2);
    assert_eq!(p.query("SELECT status, attempts FROM outbox ORDER BY output"), ["sent|2", "sent|2"]);
}

#[test]
fn the_escalation_mail_has_recipients_subject_and_mime_structure() {
    let port = free_port();
    let p = smtp_project(port);
    let maildir = p.path().join("maildir");
    let _server = SmtpServer::start(port, &maildir);
    let out = p.keepwell(&["run", "nightly", "--as-of", "2026-11-23"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("  mail     2 messages sent through 127.0.0.1:"), "{}", out.stdout);
    let mails = received(&maildir);
    let escalation = mails.iter().find(|m| m.contains("To: ann@example.com")).expect("ann's mail");
    assert!(escalation.contains("From: keepwell <keepwell@example.com>"), "{escalation}");
    assert!(escalation.contains("Subject: At risk: 2 accounts need you (2026-11-23)"), "{escalation}");
    // mixed[ alternative[ text, html ], csv ]
    let order: Vec<usize> = ["multipart/mixed", "multipart/alternative", "text/plain", "text/html", "text/csv"]
        .iter()
        .map(|t| {
            escalation.find(&format!("Content-Type: {t}")).unwrap_or_else(|| panic!("no {t} part in\n{escalation}"))
        })
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "parts out of order: {order:?}");
    assert!(escalation.contains("Content-Disposition: attachment; filename=\"ann@example.com.csv\""), "{escalation}");
    let summary = mails.iter().find(|m| m.contains("To: lead@example.com")).expect("summary");
    assert!(summary.contains("Subject: Nightly summary for 2026-11-23: 3 accounts scored"), "{summary}");
}

#[test]
fn no_data_value_can_inject_a_header() {
    let port = free_port();
    let evil = common::ACCOUNTS_CSV.replace("Acme", "Acme\r\nBcc: victim@example.com");
    let job = common::JOB.replace("  - summary:", "  - escalation:\n      name: by_name\n      when: true\n      owner: csm_email\n      subject: \"{{ rows[0][0] }}\"\n      columns: [name]\n  - summary:");
    let p = smtp_project(port);
    p.write(
        "data/accounts.csv",
        &evil.replace("A1,Acme", "A1,\"Acme").replace("victim@example.com,", "victim@example.com\","),
    );
    p.write("jobs/nightly.yaml", &job);
    let maildir = p.path().join("maildir");
    let _server = SmtpServer::start(port, &maildir);
    let out = p.keepwell(&["run", "nightly", "--as-of", "2026-11-23"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let mails = received(&maildir);
    assert_eq!(mails.len(), 4, "at_risk to ann, by_name to ann and bob, the summary");
    for mail in &mails {
        // Only the header block matters: the value may appear, quoted, in the body.
        let headers = mail.split("\n\n").next().unwrap_or_default();
        assert!(!headers.lines().any(|l| l.starts_with("Bcc:")), "{headers}");
        assert!(
            !headers.contains("victim@example.com") || headers.contains("Subject: Acme Bcc: victim@example.com"),
            "{headers}"
        );
        let rcpt = headers.lines().find(|l| l.starts_with("X-RcptTo:")).expect("recipients");
        assert!(!rcpt.contains("victim"), "{rcpt}");
    }
}

#[test]
fn the_executive_report_carries_its_charts_inline_and_the_list_attached() {
    let port = free_port();
    let p = smtp_project(port);
    let job = std::fs::read_to_string(p.path().join("jobs/nightly.yaml")).expect("job")
        + "      report:\n        risk: risk\n        red: { rule_set: health, grade: red }\n";
    p.write("jobs/nightly.yaml", &job);
    let maildir = p.path().join("maildir");
    let _server = SmtpServer::start(port, &maildir);
    let out = p.keepwell(&["run", "nightly", "--as-of", "2026-11-23"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let mails = received(&maildir);
    let summary = mails.iter().find(|m| m.contains("To: lead@example.com")).expect("summary");
    assert!(summary.contains("Subject: Nightly summary for 2026-11-23: 3 accounts scored"), "{summary}");
    // mixed[ alternative[ text, related[ html, png, png ] ], csv ]
    let parts = [
        "multipart/mixed",
        "multipart/alternative",
        "text/plain",
        "multipart/related",
        "text/html",
        "Content-ID: <arr-by-grade>",
        "image/png",
        "Content-ID: <red-arr-trend>",
        "image/png",
        "text/csv",
    ];
    let mut at = 0;
    for part in parts {
        let needle = if part.contains(':') { part.to_string() } else { format!("Content-Type: {part}") };
        let found = summary[at..].find(&needle).unwrap_or_else(|| panic!("no {needle} after byte {at} in\n{summary}"));
        at += found + needle.len();
    }
    assert_eq!(summary.matches("Content-Type: image/png").count(), 2, "{summary}");
    assert!(summary.contains("Content-Disposition: inline"), "{summary}");
    // The HTML, in base64, shows each chart by its Content-ID.
    use base64::Engine as _;
    let unix = summary.replace("\r\n", "\n");
    let part = &unix[unix.find("Content-Type: text/html").expect("html part")..];
    assert!(part.contains("Content-Transfer-Encoding: base64"), "{part}");
    let body = &part[part.find("\n\n").expect("html body") + 2..];
    let encoded: String = body.lines().take_while(|l| !l.starts_with("--")).collect();
    let html = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).expect("base64");
    let html = String::from_utf8(html).expect("utf-8");
    for cid in ["arr-by-grade", "red-arr-trend"] {
        assert!(html.contains(&format!("src=\"cid:{cid}\"")), "no cid:{cid} image in\n{html}");
    }
    assert!(summary.contains("Content-Disposition: attachment; filename=\"nightly-2026-11-23.csv\""), "{summary}");
}
