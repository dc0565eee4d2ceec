//! `keepwell init`: a project that checks, tests and runs with no edit, from a sample or
//! from the user's extracts (every common column type among them).

mod common;

use std::path::Path;

use common::keepwell_in as keepwell;

/// Checks, tests with `--strict` and runs the project at `dir`, each with exit 0.
fn works(dir: &Path, job: &str) {
    for args in [vec!["check"], vec!["test", "--strict"], vec!["run", job]] {
        let out = keepwell(dir, &args);
        assert_eq!(out.code, 0, "keepwell {args:?}:\n{}{}", out.stdout, out.stderr);
    }
}

/// Integers, decimals, doubles, true/false, dates, timestamps, text, empty cells and a
/// column whose name a rule cannot read.
const CUSTOMERS: &str = "\
Customer ID,Company Name,plan,seats,MRR,discount,paying,signed_on,last_seen_at,owner_email
C001,Acme,pro,120,1200.50,0.1,true,2024-01-31,2026-11-30 10:15:00,ann@example.com
C002,Globex,basic,12,99.00,,false,2025-06-15,2026-08-01 08:00:00,bob@example.com
C003,Initech,pro,45,450.00,0.05,true,2023-11-01,,ann@example.com
C004,Umbrella,enterprise,400,9800.25,0.2,,2022-02-28,2026-11-29 23:59:59,
";

#[test]
fn init_from_a_csv_of_every_common_type_checks_tests_and_runs() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let proj = tmp.path().join("proj");
    std::fs::create_dir_all(proj.join("data")).expect("mkdir");
    std::fs::write(proj.join("data/customers.csv"), CUSTOMERS).expect("write");
    let out = keepwell(tmp.path(), &["init", "proj", "--from", "proj/data/customers.csv"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "created a keepwell project in proj\n  keepwell.yaml\n  jobs/nightly.yaml\n  jobs/features/account_features.sql\n  \
         rules/starter.yaml\n  .gitignore\n  schemas/job.schema.json\n  schemas/rule-set.schema.json\n  .vscode/settings.json\n\
         source `customers`: data/customers.csv, 4 rows, 10 columns; key `Customer ID` (distinct on every row)\n\
         next: cd proj && keepwell check && keepwell test && keepwell run nightly\n"
    );
    let job = std::fs::read_to_string(proj.join("jobs/nightly.yaml")).expect("job");
    assert!(
        job.contains(
            "    primary_key: Customer ID   # guessed: distinct on every row\n    \
             # Every column is loaded, typed as DuckDB reads the file:\n    \
             #   Customer ID VARCHAR, Company Name VARCHAR, plan VARCHAR, seats BIGINT, MRR DOUBLE,\n    \
             #   discount DOUBLE, paying BOOLEAN, signed_on DATE, last_seen_at TIMESTAMP,\n    \
             #   owner_email VARCHAR\n"
        ),
        "{job}"
    );
    assert!(
        job.contains("  key: customer_id   # guessed: `Customer ID` is the first id-like column with a distinct value on every row\n  name: company_name\n  arr: mrr\n  owner: owner_email\n"),
        "{job}"
    );
    let rules = std::fs::read_to_string(proj.join("rules/starter.yaml")).expect("rules");
    assert!(rules.contains("    when: days_since(last_seen_at) > 30\n"), "{rules}");
    assert!(rules.contains("    when: seats < 36\n"), "{rules}");
    assert!(rules.contains("    when: is_missing(owner_email)\n"), "{rules}");
    works(&proj, "nightly");
    // The run scored every account with the starter rules.
    let runs = keepwell(&proj, &["runs", "--json"]);
    assert!(runs.stdout.contains("\"accounts\":4") || runs.stdout.contains("\"accounts\": 4"), "{}", runs.stdout);

    let again = keepwell(tmp.path(), &["init", "proj"]);
    assert_eq!(
        (again.code, again.stderr.as_str()),
        (2, "error: `proj` already holds a keepwell project (keepwell.yaml); init writes only where there is none\n")
    );
}

/// Without extracts, a sample is written; a second extract whose rows are per account is
/// counted per account in the entity view.
#[test]
fn init_without_files_and_with_an_event_extract_both_run() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let out = keepwell(tmp.path(), &["init", "sample"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.starts_with("created a keepwell project in sample\n  data/accounts.csv\n"), "{}", out.stdout);
    works(&tmp.path().join("sample"), "nightly");

    std::fs::write(tmp.path().join("customers.csv"), CUSTOMERS).expect("write");
    std::fs::write(
        tmp.path().join("events.csv"),
        "customer_id,event_at,kind\nC001,2026-11-30 10:00:00,login\nC001,2026-12-01 11:00:00,report\nC009,2026-09-01 09:00:00,login\n",
    )
    .expect("write");
    let out =
        keepwell(tmp.path(), &["init", "joined", "--from", "customers.csv", "--from", "events.csv", "--job", "daily"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("source `events`: "), "{}", out.stdout);
    assert!(out.stdout.ends_with("events.csv, 3 rows, 3 columns; rows counted per `customer_id`\nnext: cd joined && keepwell check && keepwell test && keepwell run daily\n"), "{}", out.stdout);
    let sql = std::fs::read_to_string(tmp.path().join("joined/jobs/features/account_features.sql")).expect("sql");
    assert!(sql.contains("coalesce(j1.events_rows, 0) AS events_rows"), "{sql}");
    works(&tmp.path().join("joined"), "daily");

    let missing = keepwell(tmp.path(), &["init", "other", "--from", "nosuch.csv"]);
    assert_eq!((missing.code, missing.stderr.as_str()), (2, "error: `nosuch.csv` does not exist\n"));
}
