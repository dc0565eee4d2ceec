//! The shipped project: the nightly job on the shipped fixtures reads like a Monday-morning
//! briefing, and every other job checks clean.

mod common;

use std::path::Path;

use common::Project;

fn shipped_project() -> Project {
    Project::shipped(&["jobs", "rules", "fixtures", "docs"])
}

#[test]
fn the_nightly_job_briefs_every_csm_and_manager() {
    let p = shipped_project();
    let out = p.keepwell(&["run", "nightly", "--as-of", "2026-11-23"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    // 500 accounts, of which 27 churned in the fixtures' history and are customers no more.
    let sets = p.query("SELECT rule_set, count(*), count(grade) FROM outcomes GROUP BY ALL ORDER BY 1");
    assert_eq!(
        sets,
        [
            "adoption|473|473",
            "expansion|473|473",
            "forecast|473|473",
            "health|473|473",
            "impact|473|473",
            "plays|473|473",
            "risk|473|473",
            "signals|473|473",
            "stage|473|473",
        ]
    );
    let mails: Vec<String> = p.files_under(".keepwell/outbox").iter().map(|f| f.display().to_string()).collect();
    let csm_mails = mails.iter().filter(|m| m.contains("/at_risk--csm")).count();
    let manager_mails = mails.iter().filter(|m| m.contains("/swarm--manager")).count();
    assert_eq!((csm_mails, manager_mails), (12, 2), "{mails:?}");
    assert!(mails.iter().any(|m| m.ends_with("/summary--cs-leadership@example.com.eml")));
    let eml =
        std::fs::read_to_string(p.path().join(mails.iter().find(|m| m.contains("/at_risk--csm001")).expect("csm001")))
            .expect("read mail");
    for expected in ["Subject: Accounts at risk: ", "Content-Type: text/csv", "Play: ", "Why: "] {
        assert!(eml.contains(expected), "missing {expected:?} in\n{eml}");
    }
    // Every listed account has a reason and a play.
    let csv = std::fs::read_to_string(p.path().join(".keepwell/runs/1/at_risk/csm001@example.com.csv")).expect("csv");
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let headers = reader.headers().expect("headers").clone();
    let why = headers.iter().position(|h| h == "Why").expect("Why column");
    let play = headers.iter().position(|h| h == "Play").expect("Play column");
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    assert!(!rows.is_empty());
    for row in &rows {
        assert!(!row[why].is_empty() && !row[play].is_empty(), "{row:?}");
    }
}

#[test]
fn every_shipped_job_checks_clean_and_every_rule_is_tested() {
    let p = shipped_project();
    let check = p.keepwell(&["check"]);
    assert_eq!(
        (check.code, check.stdout.as_str()),
        (0, "checked 3 jobs and 9 rule sets: 0 errors, 0 warnings\n"),
        "{}",
        check.stderr
    );
    let test = p.keepwell(&["test", "--strict"]);
    assert_eq!(test.code, 0, "{}", test.stdout);
    assert!(!test.stdout.contains("FAIL"), "{}", test.stdout);
}

#[test]
fn the_generator_is_deterministic() {
    let a = tempfile::tempdir().expect("temp dir");
    let b = tempfile::tempdir().expect("temp dir");
    let p = Project::new(&[]);
    for dir in [a.path(), b.path()] {
        let out = p.keepwell(&["demo-data", "--accounts", "50", "--seed", "3", "--out", dir.to_str().expect("path")]);
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    for file in ["accounts.csv", "daily_usage.csv", "support_tickets.csv", "contacts.csv", "opportunities.csv"] {
        let x = std::fs::read(a.path().join(file)).expect("a");
        let y = std::fs::read(b.path().join(file)).expect("b");
        assert!(x == y && !x.is_empty(), "{file} differs between two runs with the same seed");
    }
    // And the shipped fixtures are exactly what the documented command writes.
    let c = tempfile::tempdir().expect("temp dir");
    let out = p.keepwell(&[
        "demo-data",
        "--accounts",
        "500",
        "--seed",
        "7",
        "--as-of",
        "2026-11-23",
        "--history-days",
        "301",
        "--out",
        c.path().to_str().expect("path"),
    ]);
    assert_eq!(out.code, 0);
    for file in ["accounts.csv", "daily_usage.csv", "contacts.csv", "outcomes.csv"] {
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(file);
        assert!(
            std::fs::read(shipped).expect("shipped") == std::fs::read(c.path().join(file)).expect("generated"),
            "fixtures/{file} is not what `make fixtures` writes"
        );
    }
}

/// Every expression of the shipped playbook that translates to SQL runs in the warehouse;
/// the results must be those of rhai, value for value, over two days (so `prev` and
/// history-based values take part too).
#[test]
fn the_warehouse_and_rhai_give_the_same_results() {
    let mut results = Vec::new();
    for vectorise in ["on", "off"] {
        let p = shipped_project();
        for day in ["2026-11-16", "2026-11-23"] {
            let out =
                p.keepwell_with(&["run", "nightly", "--as-of", day, "--no-mail"], &[("KEEPWELL_VECTORISE", vectorise)]);
            assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
        }
        results.push(p.query(
            "SELECT as_of, account_id, rule_set, score, grade, grade_since, fired, reasons, tags, errors \
             FROM outcomes ORDER BY ALL",
        ));
    }
    // Nine rule sets over the customers of each day (474, then 473 after a churn).
    assert_eq!(results[0].len(), 9 * (474 + 473));
    let differ: Vec<(&String, &String)> = results[0].iter().zip(&results[1]).filter(|(a, b)| a != b).take(5).collect();
    assert!(differ.is_empty(), "vectorised | rhai:\n{differ:#?}");
}
