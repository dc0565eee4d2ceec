//! The first hour with keepwell: a job without column declarations loads every column of
//! its file, typed as DuckDB reads it; declared names are checked against the header;
//! TIMESTAMP columns keep their time of day through rules, reasons and `explain`.

mod common;

use common::Project;

/// Every common type, and empty cells, in one extract.
const EVENTS_CSV: &str = "\
account_id,name,arr,seats,active,signed_on,last_event_at,csm_email
A1,Acme,120000.50,100,true,2025-01-31,2026-10-24 00:00:00,ann@example.com
A2,Globex,50000,40,false,2025-02-28,2026-10-24 00:00:01,bob@example.com
A3,Initech,,10,,2024-11-23,2026-10-23 23:59:59,ann@example.com
A4,Umbrella,9000.25,,true,,,bob@example.com
";

const JOB: &str = "\
name: nightly
sources:
  accounts:
    path: data/accounts.csv
    primary_key: account_id
features:
  - sql/account_features.sql
entity: { view: account_features, key: account_id, name: name, arr: arr, owner: csm_email }
rule_sets: [recency]
";

const RECENCY: &str = "\
grades: [{ grade: quiet, min: 1 }, { grade: active }]
rules:
  - id: quiet_30d
    when: last_event_at <= add_days(as_of, -30)
    points: 1
    reason: \"no event since {{ last_event_at }}\"
  - id: first_year
    when: months_between(signed_on, as_of) <= 21
    points: 0
    reason: \"signed on {{ signed_on }}\"
";

fn project(job: &str) -> Project {
    Project::new(&[
        ("data/accounts.csv", EVENTS_CSV),
        ("jobs/nightly.yaml", job),
        ("sql/account_features.sql", "SELECT * FROM accounts\n"),
        ("rules/recency.yaml", RECENCY),
        ("rules/risk.yaml", ""),
        ("rules/health.yaml", ""),
    ])
}

/// No `columns:`: every column reaches the feature SQL with DuckDB's type, and a timestamp
/// thirty days before `as_of` at 00:00:00 is quiet where one a second later is not, in
/// both evaluation paths.
#[test]
fn undeclared_columns_load_with_inferred_types_and_timestamps_keep_their_time() {
    let p = project(JOB);
    std::fs::remove_file(p.path().join("rules/risk.yaml")).expect("rm");
    std::fs::remove_file(p.path().join("rules/health.yaml")).expect("rm");
    let check = p.keepwell(&["check"]);
    assert_eq!(check.code, 0, "{}{}", check.stdout, check.stderr);
    for vectorise in ["on", "off"] {
        let out = p.keepwell_with(&["run", "nightly", "--as-of", "2026-11-23"], &[("KEEPWELL_VECTORISE", vectorise)]);
        assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
        let run = p.query("SELECT max(run_id) FROM runs")[0].clone();
        assert_eq!(
            p.query(&format!(
                "SELECT account_id, grade, array_to_string(fired, ' '), array_to_string(reasons, ' / ') FROM outcomes WHERE run_id = {run} ORDER BY account_id"
            )),
            [
                "A1|quiet|quiet_30d first_year|no event since 2026-10-24 00:00:00 / signed on 2025-01-31",
                "A2|active|first_year|signed on 2025-02-28",
                "A3|quiet|quiet_30d|no event since 2026-10-23 23:59:59",
                "A4|active||",
            ],
            "KEEPWELL_VECTORISE={vectorise}"
        );
    }
    let explain = p.keepwell(&["explain", "A2"]);
    assert_eq!(explain.code, 0, "{}", explain.stderr);
    assert_eq!(
        explain.stdout,
        "account A2 (Globex): job nightly, run 2, as of 2026-11-23\n\n\
         recency (points, in the warehouse): 0 -> active\n  \
         not fired quiet_30d             last_event_at = \"2026-10-24 00:00:01\", as_of = \"2026-11-23\"\n  \
         fired     first_year        +0  signed_on = \"2025-02-28\", as_of = \"2026-11-23\"\n                                  \
         signed on 2025-02-28\n  \
         = base 0 plus the points of the rules that fired, with no limits: 0 -> active\n"
    );
}

/// A declared column overrides the inferred type; a typo in `columns:` is an error at its
/// line with the header's closest name, not "corrected" at the rule.
#[test]
fn declared_columns_override_and_are_checked_against_the_header() {
    let job = JOB.replace(
        "    primary_key: account_id\n",
        "    primary_key: account_id\n    columns:\n      seats: DOUBLE\n      last_event: TIMESTAMP\n",
    );
    let p = project(&job);
    let out = p.keepwell(&["check"]);
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr,
        "error: source `accounts`: `data/accounts.csv` has no column `last_event`\n \
         --> jobs/nightly.yaml:8:19\n  |\n8 |       last_event: TIMESTAMP\n  |                   ^^^^^^^^^\n  \
         = hint: did you mean `last_event_at`?\n  = code: KW045\n\nchecked 1 job and 3 rule sets: 1 error, 0 warnings\n"
    );
}

/// `strict: true` keeps the old contract: only declared columns, so a feature reading an
/// undeclared one fails at `check`, and a strict source must declare its columns.
#[test]
fn a_strict_source_loads_only_its_declared_columns() {
    let strict = JOB.replace(
        "    primary_key: account_id\n",
        "    primary_key: account_id\n    strict: true\n    columns:\n      account_id: VARCHAR\n      name: VARCHAR\n      arr: DOUBLE\n      csm_email: VARCHAR\n",
    );
    let p = project(&strict);
    let out = p.keepwell(&["check"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.starts_with("error: unknown column `last_event_at` in rule `quiet_30d`"), "{}", out.stderr);

    let empty = JOB.replace("    primary_key: account_id\n", "    primary_key: account_id\n    strict: true\n");
    let out = project(&empty).keepwell(&["check"]);
    assert!(out.stderr.starts_with("error: source `accounts` is strict but declares no columns\n"), "{}", out.stderr);
}

/// `keepwell test` runs where the extracts are not (CI of a rules repository): a source
/// without its file is declared from its `columns:`.
#[test]
fn rule_tests_run_without_the_extracts() {
    let job = JOB.replace(
        "    primary_key: account_id\n",
        "    primary_key: account_id\n    columns:\n      account_id: VARCHAR\n      name: VARCHAR\n      arr: DOUBLE\n      \
         csm_email: VARCHAR\n      signed_on: DATE\n      last_event_at: TIMESTAMP\n",
    );
    let rules = format!(
        "{RECENCY}tests:\n  - name: a second after midnight thirty days ago is not quiet\n    as_of: 2026-11-23\n    \
         row: {{ last_event_at: \"2026-10-24 00:00:01\", signed_on: \"2024-01-01\" }}\n    expect: {{ grade: active, fired: [] }}\n"
    );
    let p = project(&job);
    p.write("rules/recency.yaml", &rules);
    std::fs::remove_file(p.path().join("data/accounts.csv")).expect("rm");
    let out = p.keepwell(&["test", "recency"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.ends_with("1 passed, 0 failed\n"), "{}", out.stdout);
}

/// A test row written as a spreadsheet would (`yes`, `"10"`) is refused with what to
/// write, instead of comparing text with a true/false or a number column and never firing.
#[test]
fn test_rows_with_text_for_booleans_or_numbers_say_what_to_write() {
    let rules = format!(
        "{RECENCY}tests:\n  - name: yes is not true\n    row: {{ active: yes, seats: \"10\" }}\n    expect: {{ grade: active }}\n"
    );
    let p = project(JOB);
    p.write("rules/recency.yaml", &rules);
    let out = p.keepwell(&["test", "recency"]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains(
            "        the row's `active`: `yes` is text, and the column is true or false: write true or false (without quotes)\n        \
             the row's `seats`: `10` is text, and the column holds numbers: write the number without quotes\n"
        ),
        "{}",
        out.stdout
    );
}

/// The commands that act on a job take the project's only job when none is named; with
/// several, or a name that is no job, they say which jobs there are (exit 2).
#[test]
fn commands_use_the_only_job_or_list_the_jobs() {
    let p = common::Project::new(&[]);
    let run = p.keepwell(&["run", "--as-of", "2026-11-23"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.starts_with("job nightly, run 1, as of 2026-11-23: succeeded in "), "{}", run.stdout);
    let preview = p.keepwell(&["preview", "--as-of", "2026-11-23"]);
    assert_eq!(preview.code, 0, "{}", preview.stderr);
    let rules = p.path().join("rules").display().to_string();
    let diff = p.keepwell(&["diff", "--base", &rules]);
    assert_eq!(diff.code, 0, "{}", diff.stderr);

    let typo = p.keepwell(&["run", "nightyl"]);
    assert_eq!(
        (typo.code, typo.stderr.as_str()),
        (2, "error: there is no job `nightyl` (did you mean `nightly`?); the project's jobs: nightly\n")
    );
    p.write("jobs/weekly.yaml", common::JOB);
    for args in [&["run"][..], &["preview"], &["diff", "--base", &rules], &["explain", "A1"]] {
        let out = p.keepwell(args);
        assert_eq!(
            (out.code, out.stderr.as_str()),
            (2, "error: name the job; the project's jobs: nightly, weekly\n"),
            "{args:?}"
        );
    }
}

/// `keepwell test` with a rule set that is not there exits 2 with the closest name, and
/// `--strict` fails a rule set without tests.
#[test]
fn test_names_unknown_rule_sets_and_strict_wants_tests_everywhere() {
    let p = common::Project::new(&[]);
    let out = p.keepwell(&["test", "rsk"]);
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (2, "", "error: there is no rule set `rsk` (did you mean `risk`?); the project's rule sets: health, risk\n")
    );
    let lax = p.keepwell(&["test", "health"]);
    assert_eq!((lax.code, lax.stdout.as_str()), (0, "rules/health.yaml: no tests\n0 passed, 0 failed\n"));
    let strict = p.keepwell(&["test", "--strict", "health"]);
    assert_eq!(
        (strict.code, strict.stdout.as_str()),
        (1, "rules/health.yaml\n  FAIL  no tests: with --strict every rule set has tests\n0 passed, 1 failed\n")
    );
}

/// A run with more rejects than it shows says how many more and where they are; `runs
/// --json` gives each stage's seconds as an object; `explain` of an unbounded score says
/// it has no limits.
#[test]
fn a_run_counts_the_rejects_it_does_not_show() {
    let job =
        common::JOB.replace("    primary_key: account_id\n", "    primary_key: account_id\n    max_rejects: 10\n");
    let mut csv = common::ACCOUNTS_CSV.to_string();
    for i in 0..8 {
        csv.push_str(&format!("B{i},Bad,retail,not a number,10,2,ann@example.com\n"));
    }
    let p = common::Project::new(&[("jobs/nightly.yaml", &job), ("data/accounts.csv", &csv)]);
    let out = p.keepwell(&["run", "nightly", "--as-of", "2026-11-23"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("  loaded   accounts 3 (rows), 8 rejected\n"), "{}", out.stdout);
    assert!(
        out.stdout.contains("           and 3 more rejects (in the rejects table and run.json)\n"),
        "{}",
        out.stdout
    );
    let runs = p.keepwell(&["runs", "--json"]);
    let run: serde_json::Value = serde_json::from_str(runs.stdout.trim()).expect("one JSON object per line");
    let stages = run["stages"].as_object().expect("stages is an object");
    assert_eq!(
        stages.keys().map(String::as_str).collect::<Vec<_>>(),
        ["load", "features", "rules", "publish", "outputs", "deliver"]
    );
    assert!(stages.values().all(|s| s.as_f64().is_some_and(|s| s >= 0.0)), "{stages:?}");
}
