//! `keepwell validate` on a small hand-built project: every figure worked by hand, then the
//! AUC and the per-grade churn rates checked against scikit-learn and SciPy on a larger one.
//!
//! The hand-built project: eight accounts scored on 2026-01-01 and 2026-02-01 (A4's champion
//! leaves between the runs, A9 is new in the second), ten outcomes, a 30-day horizon.
//!
//! Worked by hand, for `risk` (low_usage 50, champion_gone 40; high >= 50, medium >= 40):
//! - read 30 days before: A1 50 high churned, A2 90 high churned, A3 40 medium renewed,
//!   A4 (second run) 40 medium churned, A5 50 high downsold, A6 0 low, A7 (second run) 0
//!   low, A8 50 high; A9 was not in the first run and A3's 2025 renewal predates the history.
//! - base rate 3/8 = 37.5%; high 2/4 = 50% (Wilson 15.0-85.0%), lift 0.5/0.375 = 1.33;
//!   churned ARR 70,000, of it high 30,000 = 42.9% and medium 40,000 = 57.1%.
//! - AUC: of 15 churned/stayed pairs, A1 beats 3 and ties 2 (4), A2 beats 5, A4 beats 2 and
//!   ties 1 (2.5): 11.5 / 15 = 0.767. The riskiest tenth (0.8 of an account) is A2, churned:
//!   lift 1 / 0.375 = 2.67.
//! - at_risk (`risk.grade == "high"`) 30 days before: 4 flagged, 2 of the 3 churned caught:
//!   precision 50.0%, recall 66.7%; 60 days before only A4 and A7 were scored (the first
//!   run), neither flagged.
//! - forecast: small (A1-A4) expects 6,000 + 8,000 + 24,000 + 32,000 = 70,000 and kept
//!   30,000 (-57.1%); big expects 30,000 + 60,000 + 70,000 + 48,000 = 208,000, kept 254,000.
//! - seen coming: A2's champion left before the second run (19 days before its churn), A1's
//!   low usage fired on it (9 days); A4's window holds no run and nothing tags price_to_value.
//! - root cause (at least 2 accounts and 60%): champion_change 3 of 4 (75%, 88.9% of the ARR
//!   lost) is systemic, price_to_value 2 (50%, 44.4%) a one-off; within bob's accounts
//!   champion_change is 2 of 2.

mod common;

use common::Project;

const JOB: &str = r#"name: nightly
sources:
  accounts:
    path: data/accounts.csv
    primary_key: account_id
    columns:
      account_id: VARCHAR
      arr: DECIMAL(18,2)
      usage: INTEGER
      champion_left: BOOLEAN
      segment: VARCHAR
      csm_email: VARCHAR
features:
  - sql/account_features.sql
entity:
  view: account_features
  key: account_id
  arr: arr
  owner: csm_email
rule_sets: [risk, forecast, impact]
outcomes:
  path: data/outcomes.csv
validation:
  horizon: 30d
  min_count: 3
  rule_sets: [risk, forecast]
  higher_is_healthier: [forecast]
  forecast: forecast
  category: impact
  segments: [segment, owner]
  systemic: { count: 2, share: 60% }
outputs:
  - escalation:
      name: at_risk
      when: risk.grade == "high"
      owner: csm_email
      columns:
        - Account: account_id
"#;

const RISK: &str = r#"score: { base: 0, min: 0, max: 100 }
grades:
  - { grade: high, min: 50 }
  - { grade: medium, min: 40 }
  - { grade: low }
rules:
  - id: low_usage
    when: usage < 30
    points: 50
    tags: [change_management]
  - id: champion_gone
    when: champion_left
    points: 40
    tags: [champion_change]
  - id: never_fires
    when: usage > 1000
    points: 10
"#;

const FORECAST: &str = r#"score: { base: 100, min: 0, max: 100 }
grades:
  - { grade: kept }
rules:
  - id: low_usage
    when: usage < 30
    points: -40
  - id: champion_gone
    when: champion_left
    points: -20
"#;

const IMPACT: &str = r#"score: { base: 0 }
grades:
  - { grade: big, min: 1 }
  - { grade: small }
rules:
  - id: large
    when: arr >= 50000
    points: 1
"#;

const FIRST_RUN: &str = r#"account_id,arr,usage,champion_left,segment,csm_email
A1,10000,10,false,smb,ann@example.com
A2,20000,20,true,smb,ann@example.com
A3,30000,80,true,mid,bob@example.com
A4,40000,90,false,mid,bob@example.com
A5,50000,25,false,ent,bob@example.com
A6,60000,70,false,ent,ann@example.com
A7,70000,85,false,ent,ann@example.com
A8,80000,15,false,smb,bob@example.com
"#;

const SECOND_RUN: &str = r#"account_id,arr,usage,champion_left,segment,csm_email
A1,10000,10,false,smb,ann@example.com
A2,20000,20,true,smb,ann@example.com
A3,30000,80,true,mid,bob@example.com
A4,40000,90,true,mid,bob@example.com
A5,50000,25,false,ent,bob@example.com
A6,60000,70,false,ent,ann@example.com
A7,70000,85,false,ent,ann@example.com
A8,80000,15,false,smb,bob@example.com
A9,9000,95,false,smb,ann@example.com
"#;

const OUTCOMES: &str = r#"account_id,date,outcome,arr_before,arr_after,reasons,note
A1,2026-02-10,churned,10000,0,change_management,Never adopted
A2,2026-02-20,churned,20000,0,champion_change|price_to_value,Champion left; too expensive
A3,2026-02-25,renewed,30000,30000,,
A4,2026-03-10,churned,40000,0,champion_change,
A5,2026-02-15,downsold,50000,30000,price_to_value;champion_change,Cut seats
A6,2026-02-12,renewed,60000,60000,,
A7,2026-03-05,expanded,70000,84000,,
A8,2026-02-18,renewed,80000,80000,,
A9,2026-02-20,renewed,9000,9000,,
A3,2025-12-20,renewed,30000,30000,,
"#;

const EXPECTED: &str = r#"Validation of job `nightly` against `data/outcomes.csv`: grades read 30 days before each outcome

10 outcomes: 5 renewed, 3 churned, 1 downsold, 1 expanded. 8 scored 30 days before (published runs from 2026-01-01 to 2026-02-01); 1 earlier than the history, 1 not yet in the run then.

risk (a higher score is riskier): 8 accounts, 3 churned, base rate 37.5%; AUC 0.767, top-decile lift 2.67x

  grade   accounts  churned  churn rate  95% interval  lift   churned ARR
  high    4         2        50.0%       15.0-85.0%    1.33x  42.9%
  medium  2         1        50.0%       9.5-90.5%     1.33x  57.1%        too few to tell
  low     2         0        0.0%        0.0-65.8%     0.00x  0.0%         too few to tell

  rule           fired  churned  churn rate  95% interval  not fired  churn rate  lift
  low_usage      4      2        50.0%       15.0-85.0%    4          25.0%       1.33x
  champion_gone  3      2        66.7%       20.8-93.9%    5          20.0%       1.78x
  never_fires    0      0        -           -             8          37.5%       -      too few to tell (under 3)

Never fired on a churned account: never_fires.

forecast (a higher score is healthier): 8 accounts, 3 churned, base rate 37.5%; AUC 0.767, top-decile lift 2.67x

  grade  accounts  churned  churn rate  95% interval  lift   churned ARR
  kept   8         3        37.5%       13.7-69.4%    1.00x  100.0%

  rule           fired  churned  churn rate  95% interval  not fired  churn rate  lift
  low_usage      4      2        50.0%       15.0-85.0%    4          25.0%       1.33x
  champion_gone  3      2        66.7%       20.8-93.9%    5          20.0%       1.78x

Escalations: precision (churned of those flagged) and recall (flagged of those churned)

  escalation  days before  accounts  flagged  churned  caught  precision  recall
  at_risk     30           8         4        3        2       50.0%      66.7%
  at_risk     60           2         0        1        0       -          0.0%
  at_risk     90           0         0        0        0       -          -

Forecast: ARR before times the `forecast` score, against the ARR kept by `impact` grade

  category  accounts  ARR before  expected  actual   error    error %
  big       4         260,000     208,000   254,000  46,000   22.1%
  small     4         100,000     70,000    30,000   -40,000  -57.1%
  all       8         360,000     278,000   284,000  6,000    2.2%

Did we see it coming: churned and downsold accounts by the reason given, and the share on which a rule tagged with it fired in the 30 days before

  reason             accounts  seen  share   median lead
  champion_change    3         1     33.3%   19 days
  price_to_value     2         0     0.0%    -            no rule is tagged with it
  change_management  1         1     100.0%  9 days

Root cause: 4 accounts churned or downsold, 90,000 ARR lost; a reason is systemic with at least 2 accounts and 60.0% of the accounts or of the ARR lost

  reason             accounts  share  ARR lost  ARR share  verdict   accounts
  champion_change    3         75.0%  80,000    88.9%      systemic  A2 A4 A5
  price_to_value     2         50.0%  40,000    44.4%      one-off   A2 A5
  change_management  1         25.0%  10,000    11.1%      one-off   A1

By segment: no reason is systemic within a segment

By owner:
  bob@example.com: champion_change (2 of 2, 100.0% of the ARR lost): A4 A5

"#;

fn files() -> Project {
    let p = Project::new(&[
        ("jobs/nightly.yaml", JOB),
        ("sql/account_features.sql", "SELECT * FROM accounts\n"),
        ("rules/risk.yaml", RISK),
        ("rules/forecast.yaml", FORECAST),
        ("rules/impact.yaml", IMPACT),
        ("data/outcomes.csv", OUTCOMES),
        ("data/accounts.csv", FIRST_RUN),
    ]);
    std::fs::remove_file(p.path().join("rules/health.yaml")).expect("remove health");
    p
}

fn run(p: &Project, accounts: &str, day: &str) {
    p.write("data/accounts.csv", accounts);
    let run = p.keepwell(&["run", "nightly", "--as-of", day, "--no-mail", "--quiet"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
}

fn project() -> Project {
    let p = files();
    run(&p, FIRST_RUN, "2026-01-01");
    run(&p, SECOND_RUN, "2026-02-01");
    p
}

#[test]
fn every_figure_equals_the_hand_worked_values() {
    let p = project();
    let out = p.keepwell(&["validate"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, EXPECTED);
    // What the escalation flagged is kept per run, listed or not.
    assert_eq!(
        p.query("SELECT run_id, output, account_id FROM flagged ORDER BY ALL"),
        [
            "1|at_risk|A1",
            "1|at_risk|A2",
            "1|at_risk|A5",
            "1|at_risk|A8",
            "2|at_risk|A1",
            "2|at_risk|A2",
            "2|at_risk|A5",
            "2|at_risk|A8"
        ]
    );
}

/// 400 accounts whose usage and champion drive churn, with noise: churn is likelier where
/// the rules fire but not certain, and some accounts churn without warning.
fn larger_project() -> Project {
    let p = files();
    let mut seed: u64 = 7;
    let mut next = move |n: u64| {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    let mut accounts = String::from("account_id,arr,usage,champion_left,segment,csm_email\n");
    let mut outcomes = String::from("account_id,date,outcome,arr_before,arr_after,reasons,note\n");
    for i in 0..400 {
        let (arr, usage, champion) = (1000 * (5 + next(95)), next(100), next(6) == 0);
        let segment = ["smb", "mid", "ent"][next(3) as usize];
        accounts.push_str(&format!("B{i:03},{arr},{usage},{champion},{segment},csm{}@example.com\n", next(4)));
        let risk = if usage < 30 { 45 } else { 8 } + if champion { 30 } else { 0 };
        let churned = next(100) < risk;
        let day = 10 + next(18);
        let (outcome, after) = if churned { ("churned", 0) } else { ("renewed", arr) };
        outcomes.push_str(&format!("B{i:03},2026-02-{day:02},{outcome},{arr},{after},,\n"));
    }
    p.write("data/outcomes.csv", &outcomes);
    for day in ["2026-01-01", "2026-01-08", "2026-01-15"] {
        run(&p, &accounts, day);
    }
    p
}

#[test]
fn auc_and_grade_rates_match_scikit_learn_and_scipy() {
    let p = larger_project();
    let out = p.keepwell(&["validate", "--json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let ours: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    let scores = p.keepwell(&[
        "query",
        "--format",
        "csv",
        "SELECT o.account_id, r.as_of, o.rule_set, o.score, o.grade FROM outcomes o JOIN runs r USING (run_id) \
         WHERE r.published",
    ]);
    assert_eq!(scores.code, 0, "{}", scores.stderr);
    p.write("scores.csv", &scores.stdout);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/validate/independent.py");
    for (set, healthier) in [("risk", "false"), ("forecast", "true")] {
        let python = std::process::Command::new("python3")
            .arg(&script)
            .args([p.path().join("scores.csv"), p.path().join("data/outcomes.csv")])
            .args(["30", set, healthier])
            .output()
            .expect("python3 (make test installs scikit-learn)");
        assert!(python.status.success(), "{}", String::from_utf8_lossy(&python.stderr));
        let theirs: serde_json::Value = serde_json::from_slice(&python.stdout).expect("python's json");
        let figures = ours["rule_sets"].as_array().expect("sets").iter().find(|s| s["rule_set"] == set).expect(set);
        assert_eq!(figures["accounts"], theirs["accounts"], "{set}");
        let close = |a: &serde_json::Value, b: &serde_json::Value| {
            (a.as_f64().expect("number") - b.as_f64().expect("number")).abs() < 1e-9
        };
        assert!(close(&figures["auc"], &theirs["auc"]), "{set}: AUC {} against {}", figures["auc"], theirs["auc"]);
        let grades = figures["grades"].as_array().expect("grades");
        assert_eq!(grades.len(), theirs["grades"].as_object().expect("grades").len(), "{set}");
        for g in grades {
            let t = &theirs["grades"][g["grade"].as_str().expect("grade")];
            assert_eq!((&g["churn"]["count"], &g["churn"]["of"]), (&t["count"], &t["of"]), "{set} {g}");
            for field in ["rate", "low", "high"] {
                assert!(close(&g["churn"][field], &t[field]), "{set} {field}: {} against {}", g["churn"], t);
            }
        }
    }
    // The rules see it: churn is likelier the riskier the account.
    let risk = &ours["rule_sets"][0];
    assert!(risk["auc"].as_f64().expect("auc") > 0.6, "{risk}");
}

const BAD_OUTCOMES: &str = r#"account_id,date,outcome,arr_before,arr_after,reasons,note
A1,2026-02-30,churned,10000,0,change_managment,
A2,2026-02-20,cancelled,20000,0,,
A3,2026-02-25,downsold,30000,,,
A4,2026-03-10,churned,forty,0,,
A1,2026-03-01,renewed,1,1,,
A1,2026-03-01,renewed,1,1,,
,2026-03-01,renewed,1,1,,
"#;

const BAD_OUTCOMES_ERRORS: &str = r#"error: `2026-02-30` is not a date
 --> data/bad.csv:2:4
  |
2 | A1,2026-02-30,churned,10000,0,change_managment,
  |    ^^^^^^^^^^
  = hint: write it as `YYYY-MM-DD`: `2026-09-30`
  = code: KW047

error: `change_managment` is not a reason code of this job
 --> data/bad.csv:2:31
  |
2 | A1,2026-02-30,churned,10000,0,change_managment,
  |                               ^^^^^^^^^^^^^^^^
  = hint: did you mean `change_management`?
  = code: KW047

error: `cancelled` is not an outcome
 --> data/bad.csv:3:15
  |
3 | A2,2026-02-20,cancelled,20000,0,,
  |               ^^^^^^^^^
  = hint: use one of: renewed, churned, downsold, expanded
  = code: KW047

error: a `downsold` outcome needs the ARR before and after
 --> data/bad.csv:4:15
  |
4 | A3,2026-02-25,downsold,30000,,,
  |               ^^^^^^^^
  = hint: fill `arr_before` and `arr_after`
  = code: KW047

error: `forty` in `arr_before` is not an amount
 --> data/bad.csv:5:23
  |
5 | A4,2026-03-10,churned,forty,0,,
  |                       ^^^^^
  = hint: write a number without currency: `48000` or `48000.50`
  = code: KW047

error: account `A1` has two outcomes on 2026-03-01
 --> data/bad.csv:7:1
  |
7 | A1,2026-03-01,renewed,1,1,,
  | ^^
  = hint: keep one row per account and day: the renewal's outcome
  = code: KW047

error: the `account_id` column is empty
 --> data/bad.csv:8:1
  |
8 | ,2026-03-01,renewed,1,1,,
  | ^
  = code: KW047
"#;

#[test]
fn every_bad_outcome_row_is_located_and_nothing_is_measured() {
    let p = project();
    p.write("data/outcomes.csv", BAD_OUTCOMES);
    let out = p.keepwell(&["validate"]);
    assert_eq!((out.code, out.stdout.as_str()), (2, ""));
    assert_eq!(out.stderr, BAD_OUTCOMES_ERRORS.replace("bad.csv", "outcomes.csv"));
}

#[test]
fn validation_settings_are_checked_with_the_job() {
    let job = JOB
        .replace("higher_is_healthier: [forecast]", "higher_is_healthier: [forcast]")
        .replace("segments: [segment, owner]", "segments: [segmnt, owner, impact.grade]")
        .replace("horizon: 30d", "horizon: soon")
        .replace("  path: data/outcomes.csv", "  path: data/outcomes.csv\n  columns: { acount: account_id }");
    let p = files();
    p.write("jobs/nightly.yaml", &job);
    let out = p.keepwell(&["check"]);
    assert_eq!(out.code, 2);
    let errors: Vec<&str> = out.stdout.lines().chain(out.stderr.lines()).filter(|l| l.starts_with("error")).collect();
    assert_eq!(
        errors,
        [
            "error: `acount` is not a field of an outcome",
            "error: horizon `soon` is not a number of days",
            "error: `validation:` names rule set `forcast`, which this job does not run",
            "error: segment `segmnt` is not an entity column, `owner` or a rule set's `grade`",
        ]
    );
}

#[test]
fn without_outcomes_or_history_validate_says_what_to_do() {
    let p = files();
    let out = p.keepwell(&["validate"]);
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr,
        "error: there is no store yet at `.keepwell/keepwell.duckdb`: run the job first, so there is history to validate\n"
    );
    p.write("jobs/nightly.yaml", &JOB.replace("outcomes:\n  path: data/outcomes.csv\n", ""));
    let out = p.keepwell(&["validate"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.starts_with("error: job `nightly` has no outcomes to validate against"), "{}", out.stderr);
}

/// The replay, worked by hand: `low_usage` widened from `usage < 30` to `usage < 95` adds A3
/// and A6 (renewed) and A4 and A7 to the high grade. Risk scores 30 days before: churned 50,
/// 90, 90 against 90, 50, 50, 50, 50: A1 ties four (2), A2 and A4 tie A3 and beat four (4.5
/// each): AUC 11 / 15 = 0.733; the riskiest tenth is 0.8 of the three tied at 90, two of
/// them churned: (2/3) / 0.375 = 1.78. At 60 days A4 (churned) and A7 (renewed) are flagged.
const REPLAY: &str = r#"Replay: `BASE` (base) and the working tree (new), both evaluated on the snapshots of 2 runs

  rule set  accounts  AUC base  AUC new  top-decile base  top-decile new
  risk      8         0.767     0.733    2.67x            1.78x
  forecast  8         0.767     0.767    2.67x            2.67x

  rule set  grade   base accounts  churned  churn rate  new accounts  churned  churn rate
  risk      high    4              2        50.0%       8             3        37.5%
  risk      medium  2              1        50.0%       0             0        -
  risk      low     2              0        0.0%        0             0        -
  forecast  kept    8              3        37.5%       8             3        37.5%

  at_risk at 30 days: the new rules flag 3 of 3 churners, the old 2, at the cost of 3 more false alarms; precision 37.5% against 50.0%
  at_risk at 60 days: the new rules flag 1 of 1 churner, the old 0, at the cost of 1 more false alarm; precision 50.0% against -
  at_risk at 90 days: the new rules flag 0 of 0 churners, the old 0, with as many false alarms (0); precision - against -

"#;

#[test]
fn replay_sets_the_base_rules_and_the_new_side_by_side() {
    let p = project();
    p.write("base/rules/risk.yaml", RISK);
    p.write("base/rules/forecast.yaml", FORECAST);
    p.write("base/rules/impact.yaml", IMPACT);
    p.write("rules/risk.yaml", &RISK.replace("when: usage < 30", "when: usage < 95"));
    let base = p.path().join("base");
    let out = p.keepwell(&["validate", "--base", base.to_str().expect("path")]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let replay = &out.stdout[out.stdout.find("Replay:").expect("a replay section")..];
    assert_eq!(replay.replace(base.to_str().expect("path"), "BASE"), REPLAY);
    // The stored figures above it are the runs' own, as before the change.
    assert!(out.stdout.contains("AUC 0.767, top-decile lift 2.67x"), "{}", out.stdout);
}

/// The calibration output: the same hand-worked figures mailed with their charts, and kept
/// per run in the store's `calibration` table.
const CALIBRATION_MAIL: &str = r#"nightly calibration: job nightly, as of 2026-02-15

10 outcomes in data/outcomes.csv (5 renewed, 3 churned, 1 downsold, 1 expanded); 8 scored 30 days before.

risk (a higher score is riskier): AUC 0.767, top-decile lift 2.67x, base rate 37.5%
  high: 2 of 4 churned, 50.0% (15.0-85.0%), lift 1.33x
  medium: 1 of 2 churned, 50.0% (9.5-90.5%), lift 1.33x, too few to tell
  low: 0 of 2 churned, 0.0% (0.0-65.8%), lift 0.00x, too few to tell

forecast (a higher score is healthier): AUC 0.767, top-decile lift 2.67x, base rate 37.5%
  kept: 3 of 8 churned, 37.5% (13.7-69.4%), lift 1.00x

Escalations (flagged, churned, caught; precision, recall):
  at_risk at 30 days: 4, 3, 2; 50.0%, 66.7%
  at_risk at 60 days: 0, 1, 0; -, 0.0%
  at_risk at 90 days: 0, 0, 0; -, -

Forecast (expected, actual retained ARR, error):
  big: $208,000, $254,000, 22.1%
  small: $70,000, $30,000, -57.1%
  all: $278,000, $284,000, 2.2%

Seen coming, by the reason given:
  champion_change: 1 of 3 (33.3%)
  price_to_value: 0 of 2 (0.0%), no rule is tagged with it
  change_management: 1 of 1 (100.0%)

Root cause: 4 accounts churned or downsold, $90,000 ARR lost (systemic: at least 2 accounts and 60.0%)
  champion_change: 3 accounts (75.0%), $80,000 (88.9%), systemic: A2 A4 A5
  price_to_value: 2 accounts (50.0%), $40,000 (44.4%), one-off: A2 A5
  change_management: 1 account (25.0%), $10,000 (11.1%), one-off: A1
  systemic in owner bob@example.com: champion_change (2 of 2 accounts)

Every figure, explained: docs/validation.md; `keepwell validate nightly` prints them all.

-- keepwell, job nightly"#;

#[test]
fn a_calibration_output_mails_the_figures_and_keeps_them_per_run() {
    let p = project();
    let job = format!("{JOB}  - calibration:\n      name: calibration\n      to: [\"CS Ops <ops@example.com>\"]\n");
    p.write("jobs/nightly.yaml", &job);
    let out_dir = p.path().join("preview");
    let preview =
        p.keepwell(&["preview", "nightly", "--as-of", "2026-02-15", "--out", out_dir.to_str().expect("utf-8")]);
    assert_eq!(preview.code, 0, "{}\n{}", preview.stdout, preview.stderr);
    let text = std::fs::read_to_string(out_dir.join("calibration--ops@example.com.txt")).expect("the mail");
    pretty_assertions::assert_eq!(text, CALIBRATION_MAIL);
    let html = std::fs::read_to_string(out_dir.join("calibration--ops@example.com.html")).expect("html");
    for chart in ["calibration-0", "calibration-1", "calibration-roc"] {
        let file = format!("calibration--ops@example.com--{chart}.png");
        assert!(html.contains(&format!("<img src=\"{file}\"")), "{html}");
        assert!(std::fs::read(out_dir.join(&file)).expect("chart").starts_with(b"\x89PNG"));
    }
    // A preview keeps nothing; a run keeps its figures.
    assert_eq!(p.query("SELECT count(*) FROM calibration"), ["0"]);
    run(&p, SECOND_RUN, "2026-02-15");
    assert_eq!(
        p.query(
            "SELECT run_id, horizon_days, rule_set, coalesce(grade, '*'), accounts, churned, round(rate, 4), \
             round(low, 4), round(high, 4), round(auc, 4), round(top_decile_lift, 4) FROM calibration ORDER BY ALL"
        ),
        [
            "3|30|forecast|*|8|3|0.375|NULL|NULL|0.7667|2.6667",
            "3|30|forecast|kept|8|3|0.375|0.1368|0.6943|NULL|NULL",
            "3|30|risk|*|8|3|0.375|NULL|NULL|0.7667|2.6667",
            "3|30|risk|high|4|2|0.5|0.15|0.85|NULL|NULL",
            "3|30|risk|low|2|0|0.0|0.0|0.6576|NULL|NULL",
            "3|30|risk|medium|2|1|0.5|0.0945|0.9055|NULL|NULL",
        ]
    );
    // Without outcomes, a calibration output is an error the check points at.
    p.write("jobs/nightly.yaml", &job.replace("outcomes:\n  path: data/outcomes.csv\n", ""));
    let check = p.keepwell(&["check"]);
    assert_eq!(check.code, 2);
    let said = format!("{}{}", check.stdout, check.stderr);
    assert!(said.contains("error: calibration `calibration` needs outcomes to measure the rules against"), "{said}");
}

#[test]
fn outcomes_the_history_cannot_reach_are_nothing_to_measure_yet() {
    let p = project();
    p.write("data/outcomes.csv", "account_id,date,outcome\nA1,2026-01-10,churned\n");
    let out = p.keepwell(&["validate"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "Validation of job `nightly` against `data/outcomes.csv`: grades read 30 days before each outcome\n\n\
         1 outcome: 0 renewed, 1 churned, 0 downsold, 0 expanded. 0 scored 30 days before (published runs from \
         2026-01-01 to 2026-02-01); 1 earlier than the history, 0 not yet in the run then.\n\n\
         Nothing to measure yet: no outcome has a published run 30 days before it. Record outcomes as they happen \
         (or a shorter `--horizon`), and validate again.\n"
    );
}
