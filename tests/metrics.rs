//! Metrics as code: a churn rate by segment over three runs, worked by hand, its stored
//! series, an alert on its change, and the report's metrics section to the letter.

mod common;

use common::{JOB, Project};

/// Seven accounts in the window, four SMB and three enterprise, and one enterprise account
/// outside it. Smb1 is the one red account (few seats in use).
///
/// Day 1: churned Smb2 → SMB 1/4, enterprise 0/3, all 1/7.
const DAY_1: &str = "\
account_id,name,industry,arr,seats,active_users,csm_email,segment,status,in_window
S1,Smb1,software,1000.00,10,1,ann@example.com,smb,active,true
S2,Smb2,software,2000.00,10,9,ann@example.com,smb,cancelled,true
S3,Smb3,software,3000.00,10,9,ann@example.com,smb,active,true
S4,Smb4,software,4000.00,10,9,ann@example.com,smb,active,true
E1,Ent1,software,50000.00,10,9,bob@example.com,enterprise,active,true
E2,Ent2,software,60000.00,10,9,bob@example.com,enterprise,active,true
E3,Ent3,software,70000.00,10,9,bob@example.com,enterprise,active,true
E4,Ent4,software,80000.00,10,9,bob@example.com,enterprise,cancelled,false
";

const LIFECYCLE: &str = "\
score: { base: 0, min: 0, max: 100 }
grades:
  - { grade: churned, min: 50 }
  - { grade: active }
rules:
  - id: cancelled
    when: status == \"cancelled\"
    points: 100
";

const METRICS: &str = "\
owners: [\"Ops <ops@example.com>\"]
metrics:
  churn_rate:
    numerator: count(*) FILTER (WHERE lifecycle.grade = 'churned')
    denominator: count(*)
    where: in_window
    of: accounts in the window
    by: segment
    alert_when: change > 0.2
  red_arr:
    title: MRR in red health
    value: sum(arr) FILTER (WHERE health.grade = 'red')
    format: money
";

const REPORT: &str = "
      report:
        currency: EUR
        amount: MRR
        headline: [churn_rate]
        titles: { metrics: Board numbers }
";

fn project() -> Project {
    let job = JOB
        .replace("rule_sets: [risk, health]", "rule_sets: [risk, health, lifecycle]")
        .replace("outputs:", &format!("{METRICS}outputs:"))
        + REPORT.trim_start_matches('\n');
    Project::new(&[("jobs/nightly.yaml", &job), ("data/accounts.csv", DAY_1), ("rules/lifecycle.yaml", LIFECYCLE)])
}

/// Day 2: Smb3 churns → SMB 2/4 (+25 points: alert), all 2/7 (+14.3 points: none).
fn day_2() -> String {
    DAY_1.replace(
        "S3,Smb3,software,3000.00,10,9,ann@example.com,smb,active",
        "S3,Smb3,software,3000.00,10,9,ann@example.com,smb,cancelled",
    )
}

/// Day 3: Ent1 churns too → enterprise 1/3 (+33.3 points: alert), all 3/7 (+14.3: none).
fn day_3() -> String {
    day_2().replace(
        "E1,Ent1,software,50000.00,10,9,bob@example.com,enterprise,active",
        "E1,Ent1,software,50000.00,10,9,bob@example.com,enterprise,cancelled",
    )
}

fn run(p: &Project, day: &str) {
    let out = p.keepwell(&["run", "nightly", "--as-of", day, "--no-mail"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
}

#[test]
fn a_churn_rate_by_segment_is_kept_as_a_series_and_alerts_on_its_change() {
    let p = project();
    run(&p, "2026-11-20");
    p.write("data/accounts.csv", &day_2());
    run(&p, "2026-11-21");
    p.write("data/accounts.csv", &day_3());
    run(&p, "2026-11-22");
    // Numerators and denominators, so the segments add up to the total on every day.
    assert_eq!(
        p.query(
            "SELECT as_of, coalesce(segment, 'all'), numerator::INT, denominator::INT, round(value, 4), \
             coalesce(round(previous, 4)::VARCHAR, '-'), alert FROM published_metrics \
             WHERE metric = 'churn_rate' ORDER BY as_of, segment_by NULLS FIRST, segment"
        ),
        [
            "2026-11-20|all|1|7|0.1429|-|false",
            "2026-11-20|enterprise|0|3|0.0|-|false",
            "2026-11-20|smb|1|4|0.25|-|false",
            "2026-11-21|all|2|7|0.2857|0.1429|false",
            "2026-11-21|enterprise|0|3|0.0|0.0|false",
            "2026-11-21|smb|2|4|0.5|0.25|true",
            "2026-11-22|all|3|7|0.4286|0.2857|false",
            "2026-11-22|enterprise|1|3|0.3333|0.0|true",
            "2026-11-22|smb|2|4|0.5|0.5|false",
        ]
    );
    // A value metric has no parts: Smb1's 1,000 is the red MRR every day.
    assert_eq!(
        p.query("SELECT value, numerator, denominator FROM published_metrics WHERE metric = 'red_arr' ORDER BY as_of"),
        ["1000.0|NULL|NULL"; 3]
    );
}

#[test]
fn the_report_shows_the_metrics_with_their_trend_in_the_teams_words() {
    let p = project();
    run(&p, "2026-11-20");
    p.write("data/accounts.csv", &day_2());
    run(&p, "2026-11-21");
    p.write("data/accounts.csv", &day_3());
    let out_dir = p.path().join("preview");
    let preview =
        p.keepwell(&["preview", "nightly", "--as-of", "2026-11-22", "--out", out_dir.to_str().expect("utf-8")]);
    assert_eq!(preview.code, 0, "{}\n{}", preview.stdout, preview.stderr);
    let text = std::fs::read_to_string(out_dir.join("summary--lead@example.com.txt")).expect("summary");
    let shown: String = text.lines().skip(2).take_while(|l| !l.starts_with("RISK")).map(|l| format!("{l}\n")).collect();
    pretty_assertions::assert_eq!(
        shown,
        "\
8 accounts scored, €270,000 MRR.

ALERT: Churn rate: 42.9% of accounts in the window (3 of 7), up 14.3 points since the previous run. Alert in segment enterprise.

BOARD NUMBERS
  Churn rate: 42.9% of accounts in the window (3 of 7), up 14.3 points since the previous run
    last 3 runs: 14.3%, 28.6%, 42.9%
    segment enterprise: 33.3% (1 of 3), up 33.3 points (alert: change > 0.2)
    segment smb: 50.0% (2 of 4), unchanged
  MRR in red health: €1,000, unchanged since the previous run
    last 3 runs: €1,000, €1,000, €1,000

"
    );
    let html = std::fs::read_to_string(out_dir.join("summary--lead@example.com.html")).expect("html");
    // The whole report says MRR: its headings and the attached list's column.
    assert!(html.contains("% of accounts</th><th align=\"right\" style=\"border-bottom:1px solid #cbd2d9;color:#52606d;font-weight:600;\">MRR</th>"), "{html}");
    run(&p, "2026-11-22");
    let list = p.files_under(".keepwell/runs").into_iter().find(|f| f.ends_with("summary/accounts.csv")).expect("list");
    let list = std::fs::read_to_string(p.path().join(list)).expect("list");
    assert_eq!(
        list.lines().next(),
        Some("account,name,owner,mrr,lifecycle,lifecycle score,risk,risk score,health,health score")
    );
    assert!(html.contains("<div style=\"font-size:15px;font-weight:600;margin:0 0 6px;\">Board numbers</div>"));
    // A trend chart per metric with a history (inlined in the mail; the preview writes
    // each beside the page).
    for chart in ["churn_rate", "red_arr"] {
        let file = format!("summary--lead@example.com--metric-{chart}.png");
        assert!(html.contains(&format!("<img src=\"{file}\" width=\"150\" height=\"36\"")), "{html}");
        assert!(std::fs::read(out_dir.join(&file)).expect("chart").starts_with(b"\x89PNG"));
    }
    // The owners' alert mail names the segment, the values and the condition.
    let alert = std::fs::read_to_string(out_dir.join("metric_alerts--ops@example.com.txt")).expect("alert mail");
    pretty_assertions::assert_eq!(
        alert.lines().take(5).collect::<Vec<_>>().join("\n"),
        "\
1 metric alert in job nightly, as of 2026-11-22

Churn rate, segment enterprise: 33.3% of accounts in the window (1 of 3)
  previous run: 0.0% (up 33.3 points)
  alert when: change > 0.2
"
        .trim_end()
    );
}

#[test]
fn a_metric_that_fails_on_the_data_is_a_warning_and_the_run_goes_on() {
    // Casting every name to a number fails on the data, not when checked.
    let p = project();
    let job = std::fs::read_to_string(p.path().join("jobs/nightly.yaml")).expect("job");
    p.write(
        "jobs/nightly.yaml",
        &job.replace("metrics:\n", "metrics:\n  bad:\n    value: sum(CAST(name AS INTEGER))\n"),
    );
    let out = p.keepwell(&["run", "nightly", "--as-of", "2026-11-20", "--no-mail"]);
    // Published, and degraded so the failure is seen (exit 1), as with rule errors.
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("degraded"), "{}", out.stdout);
    assert!(
        out.stdout.contains("metric `bad` failed and is not kept this run: Conversion Error: Could not convert string"),
        "{}",
        out.stdout
    );
    assert_eq!(p.query("SELECT DISTINCT metric FROM published_metrics ORDER BY 1"), ["churn_rate", "red_arr"]);
}
