//! The executive report: its sections computed from two days of a small project, its
//! charts, and the full list attached.

mod common;

use common::{JOB, Project};

const ACCOUNTS_DAY_1: &str = "\
account_id,name,industry,arr,seats,active_users,csm_email,renewal_date
A1,Acme,travel,120000.00,100,20,ann@example.com,2026-12-15
A2,Globex,healthcare,50000.00,40,38,bob@example.com,2027-02-01
A3,Initech,retail,8000.00,10,2,ann@example.com,2026-10-05
";

/// Acme's users came back (it recovers); Globex's left (it turns red).
const ACCOUNTS_DAY_2: &str = "\
account_id,name,industry,arr,seats,active_users,csm_email,renewal_date
A1,Acme,travel,120000.00,100,80,ann@example.com,2026-12-15
A2,Globex,healthcare,50000.00,40,10,bob@example.com,2027-02-01
A3,Initech,retail,8000.00,10,2,ann@example.com,2026-10-05
";

const REPORT: &str = "
      report:
        risk: risk
        red: { rule_set: health, grade: red }
        stage: risk
        renewal: renewal_date
        top:
          when: health.grade == \"red\"
          reasons: health.reasons + risk.reasons
          limit: 5
";

fn report_project() -> Project {
    let job = JOB.replace("      csm_email: VARCHAR\n", "      csm_email: VARCHAR\n      renewal_date: DATE\n")
        + REPORT.trim_start_matches('\n');
    Project::new(&[("jobs/nightly.yaml", &job), ("data/accounts.csv", ACCOUNTS_DAY_1)])
}

#[test]
fn the_report_shows_what_moved_since_the_previous_run() {
    let p = report_project();
    let day1 = p.keepwell(&["run", "nightly", "--as-of", "2026-11-20", "--no-mail"]);
    assert_eq!(day1.code, 0, "{}\n{}", day1.stdout, day1.stderr);
    p.write("data/accounts.csv", ACCOUNTS_DAY_2);
    let out_dir = p.path().join("preview");
    let preview =
        p.keepwell(&["preview", "nightly", "--as-of", "2026-11-23", "--out", out_dir.to_str().expect("utf-8")]);
    assert_eq!(preview.code, 0, "{}\n{}", preview.stdout, preview.stderr);
    let text = std::fs::read_to_string(p.path().join("preview/summary--lead@example.com.txt")).expect("summary");
    let report: String =
        text.lines().skip(2).take_while(|l| !l.starts_with("RISK")).map(|l| format!("{l}\n")).collect();
    pretty_assertions::assert_eq!(
        report,
        "\
3 accounts scored, $178,000 ARR.

Red ARR: $58,000 in 2 accounts (down $70,000 since the previous run).
Renewing in 2026 Q4: $128,000 ARR in 2 accounts.

ARR BY RISK GRADE
  high           all accounts: $128,000
  low            all accounts: $50,000

SINCE THE PREVIOUS RUN (2026-11-20)
  New red: 1 account, $50,000 ARR
    - Globex ($50,000): was green
  Recoveries: 1 account, $120,000 ARR
    - Acme ($120,000): now green
  Risk changes: 0 accounts

TOP ACCOUNTS AT RISK
  1. Globex, $50,000, risk low (bob@example.com)
       - 25% of seats in use
  2. Initech, $8,000, risk high (ann@example.com)
       - 20% of seats in use
       - retail is hit hard

RENEWALS IN 2026 Q4 BY RISK
  high                2 accounts  $128,000

"
    );
}

#[test]
fn the_report_has_its_charts_and_the_full_list() {
    let p = report_project();
    let out_dir = p.path().join("preview");
    let out = p.keepwell(&["preview", "nightly", "--as-of", "2026-11-23", "--out", out_dir.to_str().expect("utf-8")]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let html = std::fs::read_to_string(p.path().join("preview/summary--lead@example.com.html")).expect("html");
    // The preview points the page at the chart files; the mail itself uses `cid:` links.
    for chart in ["arr-by-grade", "red-arr-trend"] {
        let file = format!("summary--lead@example.com--{chart}.png");
        assert!(html.contains(&format!("src=\"{file}\"")), "no {chart} in\n{html}");
        let png = std::fs::read(p.path().join("preview").join(&file)).expect("chart file");
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    }
    let eml = std::fs::read_to_string(p.path().join("preview/summary--lead@example.com.eml")).expect("eml");
    assert!(eml.contains("Content-ID: <arr-by-grade>"), "{eml}");
    assert!(eml.contains("Content-Disposition: attachment; filename=\"nightly-2026-11-23.csv\""), "{eml}");
    // The run folder is not written by a preview; a real run writes the full list there.
    let run = p.keepwell(&["run", "nightly", "--as-of", "2026-11-23"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let list = p.files_under(".keepwell/runs").into_iter().find(|f| f.ends_with("summary/accounts.csv")).expect("list");
    pretty_assertions::assert_eq!(
        std::fs::read_to_string(p.path().join(list)).expect("csv"),
        "\
account,name,owner,arr,risk,risk score,health,health score
A1,Acme,ann@example.com,120000.00,high,60,red,60
A2,Globex,bob@example.com,50000.00,low,0,green,100
A3,Initech,ann@example.com,8000.00,high,60,red,50
"
    );
}

/// Account keys of digits are listed as numbers (9 before 10) where accounts tie on ARR.
#[test]
fn the_full_list_orders_numeric_keys_as_numbers() {
    let csv = "account_id,name,industry,arr,seats,active_users,csm_email\n\
               10,Ten,travel,5000.00,10,2,ann@example.com\n\
               9,Nine,travel,5000.00,10,2,ann@example.com\n\
               100,Hundred,travel,5000.00,10,2,ann@example.com\n\
               2,Two,travel,7000.00,10,2,ann@example.com\n";
    let p = Project::new(&[
        ("jobs/nightly.yaml", &(JOB.to_string() + "      report: { risk: risk }\n")),
        ("data/accounts.csv", csv),
    ]);
    let run = p.keepwell(&["run", "nightly", "--as-of", "2026-11-23"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let list = p.files_under(".keepwell/runs").into_iter().find(|f| f.ends_with("summary/accounts.csv")).expect("list");
    let text = std::fs::read_to_string(p.path().join(list)).expect("csv");
    let keys: Vec<&str> = text.lines().skip(1).map(|l| l.split(',').next().unwrap_or("")).collect();
    assert_eq!(keys, ["2", "9", "10", "100"], "{text}");
}

/// An escalation list keeps every digit of a decimal unless its column asks for a format.
#[test]
fn escalation_lists_keep_full_precision() {
    let job = JOB.replacen(
        "- Account: name",
        "- Account: name\n        - Per week: arr / 52\n        - Rounded: round(arr / 52.0, 1)",
        1,
    );
    let p = Project::new(&[("jobs/nightly.yaml", &job)]);
    let run = p.keepwell(&["run", "nightly", "--as-of", "2026-11-23"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let lists: Vec<String> = p
        .files_under(".keepwell/runs")
        .into_iter()
        .filter(|f| f.to_string_lossy().contains("/at_risk/"))
        .map(|f| std::fs::read_to_string(p.path().join(f)).expect("csv"))
        .collect();
    let all = lists.join("");
    assert!(all.contains(",2307.6923076923076,2307.7,"), "{all}");
    assert!(all.contains(",153.84615384615384,153.8,"), "{all}");
}
