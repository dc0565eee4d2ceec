//! The authoring loop through the real binary: `test`, `explain`, `diff`, and scripts that
//! run away.

mod common;

use common::Project;
use pretty_assertions::assert_eq;

const TESTED_RISK: &str = "\
score: { base: 0, min: 0, max: 100 }
grades:
  - { grade: high, min: 50 }
  - { grade: low }
rules:
  - id: hard_hit_industry
    when: industry in [\"travel\", \"retail\"]
    points: 60
    reason: \"{{ industry }} is hit hard\"
tests:
  - name: travel is high risk
    row: { industry: travel }
    expect: { score: 60, grade: high, fired: [hard_hit_industry] }
  - name: software is high risk too (wrong on purpose)
    row: { industry: software, arr: 1000 }
    expect: { score: 60, grade: high, fired: [hard_hit_industry], reasons: [\"software is hit hard\"] }
  - name: a row column that does not exist
    row: { industri: travel }
    expect: { grade: high }
";

#[test]
fn keepwell_test_prints_expected_against_actual_and_exits_1() {
    let p = Project::new(&[("rules/risk.yaml", TESTED_RISK)]);
    let out = p.keepwell(&["test"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "\
rules/risk.yaml
  ok    travel is high risk
  FAIL  software is high risk too (wrong on purpose) (rules/risk.yaml:14)
        score: expected 60, got 0
        grade: expected high, got low
        fired: expected [hard_hit_industry], got []
        reasons: expected [software is hit hard], got []
  FAIL  a row column that does not exist (rules/risk.yaml:17)
        the row names `industri`, which is not a column of the entity view (did you mean `industry`?)
rules/health.yaml: no tests
1 passed, 2 failed
"
    );
}

#[test]
fn explain_shows_every_rule_with_the_values_it_read() {
    // A rule reading the previous result runs in rhai; the others run in the warehouse.
    let health = common::HEALTH.to_string() + "  - id: was_low\n    when: prev.score < 50\n    points: -5\n";
    let p = Project::new(&[("rules/health.yaml", &health)]);
    assert_eq!(p.keepwell(&["run", "nightly", "--as-of", "2026-11-23"]).code, 0);
    let out = p.keepwell(&["explain", "A3"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "\
account A3 (Initech): job nightly, run 1, as of 2026-11-23

risk (points, in the warehouse): 60 -> high
  fired     hard_hit_industry       +60  industry = \"retail\"
                                         retail is hit hard
  = base 0 plus the points of the rules that fired, kept within 0..100: 60 -> high (at least 50)

health (points, partly in the warehouse): 50 -> red
  fired     low_utilisation       -40  utilisation = 20
                                       20% of seats in use
  fired     risky_and_small       -10  risk.grade = \"high\", arr = 8000
  n/a       was_low                    prev.score = missing
                                       evaluated in rhai, row by row
  = base 100 plus the points of the rules that fired, kept within 0..100: 50 -> red
"
    );
    let json = p.keepwell(&["explain", "A3", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    assert_eq!(v["rule_sets"][1]["steps"][0]["inputs"]["utilisation"], serde_json::json!(20.0));
    let missing = p.keepwell(&["explain", "A9"]);
    assert_eq!((missing.code, missing.stderr.as_str()), (1, "error: account `A9` is not in run 1 of `nightly`\n"));
}

fn git(p: &Project, args: &[&str]) {
    let ok = std::process::Command::new("git")
        .arg("-C")
        .arg(p.path())
        .args(["-c", "user.email=t@example.com", "-c", "user.name=t"])
        .args(args)
        .output()
        .expect("git")
        .status
        .success();
    assert!(ok, "git {args:?}");
}

#[test]
fn diff_against_head_shows_who_moves_and_why() {
    let p = Project::new(&[]);
    git(&p, &["init", "-q"]);
    git(&p, &["add", "-A"]);
    git(&p, &["commit", "-qm", "rules"]);
    assert_eq!(p.keepwell(&["run", "nightly", "--as-of", "2026-11-23"]).code, 0);
    p.write("rules/health.yaml", &common::HEALTH.replace("when: utilisation < 40", "when: utilisation < 10"));
    let out = p.keepwell(&["diff", "--base", "HEAD"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "\
Rules compared with `HEAD` on the rows of run 1 of job `nightly` (3 accounts, as of 2026-11-23)

health: 2 accounts changed grade (128,000 ARR), 2 changed score

  before \\ after  green  red
  green           1      0
  red             2      0

  account  name     ARR      before  after      rules
  A1       Acme     120,000  red 60  green 100  -low_utilisation
  A3       Initech  8,000    red 50  green 90   -low_utilisation

No account changes in: risk.
"
    );
    let md = p.keepwell(&["diff", "--base", "HEAD", "--markdown"]);
    assert!(
        md.stdout.contains("#### health: 2 accounts changed grade (128,000 ARR), 2 changed score\n"),
        "{}",
        md.stdout
    );
    assert!(
        md.stdout.contains("| A1      | Acme    | 120,000 | red 60 | green 100 | -low_utilisation |\n"),
        "{}",
        md.stdout
    );
    let json = p.keepwell(&["diff", "--base", "HEAD", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    assert_eq!(v["rule_sets"][1]["moved"], serde_json::json!(2));

    // A folder works as a base too; with identical rules nothing moves.
    let out = p.keepwell(&["diff", "--base", p.path().join("rules").to_str().expect("path")]);
    assert!(out.stdout.ends_with("No account changes in: risk, health.\n"), "{}", out.stdout);
}

#[test]
fn a_runaway_script_fails_for_its_account_only() {
    let script = "if arr > 100000 { loop { } }\n#{ score: 1 }\n";
    let spin = "script: spin.rhai\ngrades: [{ grade: done }]\n";
    let job = common::JOB.replace("rule_sets: [risk, health]", "rule_sets: [risk, health, spin]");
    let p = Project::new(&[("rules/spin.yaml", spin), ("rules/spin.rhai", script), ("jobs/nightly.yaml", &job)]);
    let out = p.keepwell(&["run", "nightly", "--as-of", "2026-11-23"]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("job nightly, run 1, as of 2026-11-23: degraded in "), "{}", out.stdout);
    assert!(
        out.stdout.contains("rule `script` of `spin` for account `A1`: stopped after 200000 operations, the limit for one expression (is there an endless loop?)"),
        "{}",
        out.stdout
    );
    assert_eq!(
        p.query("SELECT account_id, grade FROM outcomes WHERE rule_set = 'spin' ORDER BY 1"),
        ["A1|NULL", "A2|done", "A3|done"]
    );
}
