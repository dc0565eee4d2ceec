//! `keepwell run` on temporary projects, through the real binary.

mod common;

use common::Project;
use pretty_assertions::assert_eq;

const OUTCOMES: &str = "SELECT account_id, rule_set, score, grade, CAST(fired AS VARCHAR), CAST(reasons AS VARCHAR) \
    FROM outcomes WHERE run_id = {run} ORDER BY account_id, rule_set";

fn outcomes(p: &Project, run: i64) -> Vec<String> {
    p.query(&OUTCOMES.replace("{run}", &run.to_string()))
}

#[test]
fn a_good_run_publishes_outcomes_lists_and_mail() {
    let p = Project::new(&[]);
    let out = p.keepwell(&["run", "nightly", "--as-of", "2026-11-23"]);
    assert_eq!(out.code, 0, "stdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    assert!(out.stdout.starts_with("job nightly, run 1, as of 2026-11-23: succeeded in "), "{}", out.stdout);
    assert_eq!(
        p.query("SELECT run_id, job, CAST(as_of AS VARCHAR), status, published, accounts FROM runs"),
        ["1|nightly|2026-11-23|succeeded|true|3"]
    );
    assert_eq!(
        outcomes(&p, 1),
        [
            "A1|health|60.0|red|[low_utilisation]|[20% of seats in use]",
            "A1|risk|60.0|high|[hard_hit_industry]|[travel is hit hard]",
            "A2|health|100.0|green|[]|[]",
            "A2|risk|0.0|low|[]|[]",
            "A3|health|50.0|red|[low_utilisation, risky_and_small]|[20% of seats in use]",
            "A3|risk|60.0|high|[hard_hit_industry]|[retail is hit hard]",
        ]
    );
    assert!(p.path().join(".keepwell/runs/1/entity.parquet").is_file());
    let artifact: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p.path().join(".keepwell/runs/1/run.json")).expect("run.json"))
            .expect("json");
    assert_eq!(artifact["status"], "succeeded");
    assert_eq!(artifact["accounts"], 3);
    let stages: Vec<&str> =
        artifact["stages"].as_array().expect("stages").iter().map(|s| s["stage"].as_str().expect("name")).collect();
    assert_eq!(stages, ["load", "features", "rules", "publish", "outputs", "deliver"]);
    let sets: Vec<&str> =
        artifact["rule_sets"].as_array().expect("sets").iter().map(|s| s["rule_set"].as_str().expect("name")).collect();
    assert_eq!(sets, ["risk", "health"]);
    assert_eq!(artifact["mails"].as_array().expect("mails").len(), 2);
    let files = p.files_under(".keepwell/runs/1/at_risk");
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    assert_eq!(names, [".keepwell/runs/1/at_risk/ann@example.com.csv"]);
    let csv = std::fs::read_to_string(p.path().join(&files[0])).expect("csv");
    assert_eq!(
        csv,
        "Account,ARR,Why\nAcme,120000,travel is hit hard; 20% of seats in use\nInitech,8000,retail is hit hard; 20% of seats in use\n"
    );
    let mails: Vec<String> = p.files_under(".keepwell/outbox").iter().map(|f| f.display().to_string()).collect();
    assert_eq!(
        mails,
        [
            ".keepwell/outbox/nightly/2026-11-23/at_risk--ann@example.com.eml",
            ".keepwell/outbox/nightly/2026-11-23/summary--lead@example.com.eml",
        ]
    );
    let eml = std::fs::read_to_string(p.path().join(&mails[0])).expect("eml");
    assert!(eml.contains("To: ann@example.com\r\n"), "{eml}");
    assert!(eml.contains("Subject: At risk: 2 accounts need you (2026-11-23)\r\n"), "{eml}");
    assert!(eml.contains("Content-Type: text/csv"), "{eml}");
    assert!(eml.contains("Content-Disposition: attachment; filename=\"ann@example.com.csv\""), "{eml}");
    // The attachment is the list file, in base64 with CRLF line endings.
    let part = &eml[eml.find("filename=\"ann@example.com.csv\"").expect("attachment")..];
    assert!(part.contains("Content-Transfer-Encoding: base64\r\n"), "{part}");
    let body = &part[part.find("\r\n\r\n").expect("body") + 4..];
    let encoded: String = body.lines().take_while(|l| !l.is_empty() && !l.starts_with("--")).collect();
    use base64::Engine as _;
    let attached = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).expect("base64");
    assert_eq!(String::from_utf8(attached).expect("utf-8"), csv.replace('\n', "\r\n"));
}

#[test]
fn running_twice_gives_two_runs_with_identical_outcomes() {
    let p = Project::new(&[]);
    assert_eq!(p.keepwell(&["run", "nightly", "--as-of", "2026-11-23"]).code, 0);
    assert_eq!(p.keepwell(&["run", "nightly", "--as-of", "2026-11-23"]).code, 0);
    assert_eq!(p.query("SELECT run_id, status FROM runs ORDER BY run_id"), ["1|succeeded", "2|succeeded"]);
    assert_eq!(outcomes(&p, 1), outcomes(&p, 2));
}

#[test]
fn a_bad_value_fails_the_run_with_its_location_and_keeps_the_last_results() {
    let p = Project::new(&[]);
    assert_eq!(p.keepwell(&["run", "nightly", "--as-of", "2026-11-23"]).code, 0);
    p.write("data/accounts.csv", &common::ACCOUNTS_CSV.replace("8000.00", "eight thousand"));
    let out = p.keepwell(&["run", "nightly", "--as-of", "2026-11-24"]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert_eq!(
        out.stdout.lines().filter(|l| !l.starts_with("job ")).collect::<Vec<_>>(),
        [
            "  error    source `accounts`: 1 rows rejected, more than max_rejects (0); first: data/accounts.csv:4: column `arr`: Error when converting column \"arr\". Could not convert string \"eight thousand\" to 'DECIMAL'",
            "  loaded   accounts 2 (rows), 1 rejected",
            "           rejected data/accounts.csv:4: column `arr`: Error when converting column \"arr\". Could not convert string \"eight thousand\" to 'DECIMAL'",
            "  nothing was published; the previous results are unchanged",
        ]
    );
    assert_eq!(
        p.query("SELECT run_id, status, published FROM runs ORDER BY run_id"),
        ["1|succeeded|true", "2|failed|false"]
    );
    assert_eq!(p.query("SELECT DISTINCT run_id FROM latest_outcomes"), ["1"]);
    assert_eq!(p.query("SELECT count(*) FROM outcomes WHERE run_id = 2"), ["0"]);
    assert_eq!(
        p.query("SELECT run_id, source, file, line, \"column\" FROM rejects"),
        ["2|accounts|data/accounts.csv|4|arr"]
    );
}

#[test]
fn rejects_within_max_rejects_are_kept_and_counted() {
    let job = common::JOB.replace("    primary_key: account_id\n", "    primary_key: account_id\n    max_rejects: 1\n");
    let p = Project::new(&[("jobs/nightly.yaml", &job)]);
    p.write("data/accounts.csv", &common::ACCOUNTS_CSV.replace("8000.00", "n/a"));
    let out = p.keepwell(&["run", "nightly", "--as-of", "2026-11-23"]);
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert!(out.stdout.contains("  loaded   accounts 2 (rows), 1 rejected\n"), "{}", out.stdout);
    assert_eq!(
        p.query("SELECT run_id, line, \"column\", raw FROM rejects"),
        ["1|4|arr|A3,Initech,retail,n/a,10,2,ann@example.com"]
    );
}

/// A missing extract or a declared column the file lacks is a configuration error: found
/// before the run starts, located at the job's line, exit 2, and no run recorded.
#[test]
fn a_missing_file_and_a_missing_column_are_named() {
    let p = Project::new(&[("data/accounts.csv", "account_id,name,industri\nA1,Acme,travel\n")]);
    let out = p.keepwell(&["run", "nightly"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.starts_with(
            "error: source `accounts`: `data/accounts.csv` has no column `industry`\n --> jobs/nightly.yaml:9:17\n"
        ),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("= hint: did you mean `industri`?\n  = code: KW045\n"), "{}", out.stderr);

    std::fs::remove_file(p.path().join("data/accounts.csv")).expect("rm");
    let out = p.keepwell(&["run", "nightly"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.starts_with(
            "error: source `accounts`: no file matches `data/accounts.csv`\n --> jobs/nightly.yaml:4:11\n"
        ),
        "{}",
        out.stderr
    );
    let check = p.keepwell(&["check"]);
    assert_eq!((check.code, check.stderr.lines().next()), (2, out.stderr.lines().next()), "{}", check.stderr);
    assert!(!p.path().join(".keepwell/keepwell.duckdb").exists() || p.query("SELECT count(*) FROM runs") == ["0"]);
}

#[test]
fn duplicate_primary_keys_fail_the_run_and_name_the_keys() {
    let p = Project::new(&[(
        "data/accounts.csv",
        &format!("{}A2,Globex again,media,1.00,1,1,bob@example.com\n", common::ACCOUNTS_CSV),
    )]);
    let out = p.keepwell(&["run", "nightly"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout
            .contains("  error    source `accounts`: duplicate primary key (account_id) in 1 groups: `A2` (2 rows)\n"),
        "{}",
        out.stdout
    );
}

#[test]
fn an_error_on_one_account_degrades_the_run_and_scores_the_others() {
    let risk = common::RISK.to_string() + "  - id: parses_seats\n    when: parse_int(name) > 0\n    points: 1\n";
    let p = Project::new(&[
        ("rules/risk.yaml", &risk),
        ("data/accounts.csv", &common::ACCOUNTS_CSV.replace("Globex", "42")),
    ]);
    let out = p.keepwell(&["run", "nightly", "--as-of", "2026-11-23"]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.starts_with("job nightly, run 1, as of 2026-11-23: degraded in "), "{}", out.stdout);
    assert!(
        out.stdout.contains("  errors   2 rule errors on single accounts (the others were scored):\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("rule `parses_seats` of `risk` for account `A1`: Error parsing integer number 'Acme'"),
        "{}",
        out.stdout
    );
    assert_eq!(p.query("SELECT run_id, status, published FROM runs"), ["1|degraded|true"]);
    assert_eq!(
        p.query(
            "SELECT account_id, score, grade, CAST(errors AS VARCHAR) FROM outcomes WHERE rule_set = 'risk' ORDER BY 1"
        ),
        [
            "A1|NULL|NULL|['parses_seats: Error parsing integer number \\'Acme\\': invalid digit found in string']",
            "A2|1.0|low|[]",
            "A3|NULL|NULL|['parses_seats: Error parsing integer number \\'Initech\\': invalid digit found in string']",
        ]
    );
    assert_eq!(
        p.query("SELECT rule_set, rule_id, account_id FROM rule_errors ORDER BY account_id"),
        ["risk|parses_seats|A1", "risk|parses_seats|A3"]
    );
}

#[test]
fn rules_read_the_previous_run() {
    let health = common::HEALTH.to_string()
        + "  - id: still_red\n    when: prev.grade == \"red\" && prev.days_in_grade >= 0\n    points: -5\n    reason: \"red since the last run\"\n";
    let p = Project::new(&[("rules/health.yaml", &health)]);
    assert_eq!(p.keepwell(&["run", "nightly", "--as-of", "2026-11-20"]).code, 0);
    assert_eq!(p.keepwell(&["run", "nightly", "--as-of", "2026-11-23"]).code, 0);
    assert_eq!(
        p.query("SELECT account_id, score, CAST(grade_since AS VARCHAR) FROM outcomes WHERE run_id = 2 AND rule_set = 'health' ORDER BY 1"),
        ["A1|55.0|2026-11-20", "A2|100.0|2026-11-20", "A3|45.0|2026-11-20"]
    );
}

#[test]
fn a_dry_run_records_nothing_and_sends_nothing() {
    let p = Project::new(&[]);
    let out = p.keepwell(&["run", "nightly", "--dry-run"]);
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert!(out.stdout.starts_with("job nightly, dry run, as of "), "{}", out.stdout);
    assert_eq!(p.query("SELECT count(*) FROM runs"), ["0"]);
    assert!(p.files_under(".keepwell/outbox").is_empty());
}

#[test]
fn feature_sql_cannot_read_files() {
    let p = Project::new(&[]);
    let csv = p.path().join("data/accounts.csv");
    p.write(
        "sql/account_features.sql",
        &format!("SELECT a.*, 1 AS utilisation FROM accounts a, read_csv('{}') f", csv.display()),
    );
    let out = p.keepwell(&["run", "nightly"]);
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("error: feature view `account_features` fails: Permission Error"), "{}", out.stderr);
}

#[test]
fn runs_lists_recent_runs() {
    let p = Project::new(&[]);
    assert_eq!(p.keepwell(&["run", "nightly", "--as-of", "2026-11-23"]).code, 0);
    let out = p.keepwell(&["runs"]);
    assert_eq!(out.code, 0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "  run  job              as of       status     accounts   seconds  started (UTC)         error"
    );
    assert!(lines[1].starts_with("    1  nightly          2026-11-23  succeeded         3  "), "{}", lines[1]);
}

/// Writes the standard accounts as Parquet or JSON lines through DuckDB, with one bad value.
fn typed_source(p: &Project, format: &str) {
    let conn = duckdb::Connection::open_in_memory().expect("duckdb");
    let csv = p.path().join("data/accounts.csv");
    let out = p.path().join(format!("data/accounts.{format}"));
    let copy_format = if format == "parquet" { "PARQUET" } else { "JSON" };
    conn.execute_batch(&format!(
        "COPY (SELECT account_id, name, industry, CASE WHEN account_id = 'A3' THEN 'lots' ELSE CAST(arr AS VARCHAR) END AS arr, \
         seats, active_users, csm_email FROM read_csv('{}', all_varchar = true)) TO '{}' (FORMAT {copy_format})",
        csv.display(),
        out.display()
    ))
    .expect("copy");
    std::fs::remove_file(csv).expect("rm csv");
    let job = common::JOB
        .replace("path: data/accounts.csv", &format!("path: data/accounts.{format}"))
        .replace("    primary_key: account_id\n", "    primary_key: account_id\n    max_rejects: 1\n");
    p.write("jobs/nightly.yaml", &job);
}

#[test]
fn parquet_and_json_sources_load_typed_with_rejects() {
    for format in ["parquet", "json"] {
        let p = Project::new(&[]);
        typed_source(&p, format);
        let out = p.keepwell(&["run", "nightly", "--as-of", "2026-11-23"]);
        assert_eq!(out.code, 0, "{format}: {}\n{}", out.stdout, out.stderr);
        assert!(out.stdout.contains("  loaded   accounts 2 (rows), 1 rejected\n"), "{format}: {}", out.stdout);
        assert_eq!(
            p.query("SELECT file, line, \"column\", reason FROM rejects"),
            [format!("data/accounts.{format}|3|arr|could not convert \"lots\" to DECIMAL(18,2)")],
            "{format}"
        );
        assert_eq!(
            p.query("SELECT account_id, arr FROM accounts ORDER BY 1"),
            ["A1|120000.0", "A2|50000.0"],
            "{format}"
        );
    }
}

#[test]
fn preview_writes_every_mail_without_sending_or_recording() {
    let p = Project::new(&[]);
    let out = p.keepwell(&["preview", "nightly", "--as-of", "2026-11-23"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "2 mails of job nightly for 2026-11-23 written to .keepwell/preview/nightly (nothing was sent)\n"
    );
    let files: Vec<String> = p.files_under(".keepwell/preview").iter().map(|f| f.display().to_string()).collect();
    assert_eq!(
        files,
        [
            ".keepwell/preview/nightly/at_risk--ann@example.com.eml",
            ".keepwell/preview/nightly/at_risk--ann@example.com.html",
            ".keepwell/preview/nightly/at_risk--ann@example.com.txt",
            ".keepwell/preview/nightly/summary--lead@example.com.eml",
            ".keepwell/preview/nightly/summary--lead@example.com.html",
            ".keepwell/preview/nightly/summary--lead@example.com.txt",
        ]
    );
    let html = std::fs::read_to_string(p.path().join(&files[1])).expect("html");
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("Acme"), "{html}");
    assert!(p.files_under(".keepwell/outbox").is_empty());
    assert_eq!(p.query("SELECT count(*) FROM runs"), ["0"]);
}

#[test]
fn escalations_are_not_repeated_until_something_changes_or_remind_after_passes() {
    let job = common::JOB.replace("      order_by: arr\n", "      order_by: arr\n      remind_after: 7d\n");
    let p = Project::new(&[("jobs/nightly.yaml", &job)]);
    let mails = |p: &Project, day: &str| -> Vec<String> {
        let dir = p.path().join(".keepwell/outbox/nightly").join(day);
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        names.sort();
        names
    };
    assert_eq!(p.keepwell(&["run", "nightly", "--as-of", "2026-11-02"]).code, 0);
    assert_eq!(mails(&p, "2026-11-02"), ["at_risk--ann@example.com.eml", "summary--lead@example.com.eml"]);
    // Each listed row is remembered as a digest of its cells.
    let states = p.query("SELECT state FROM escalations ORDER BY account_id");
    assert_eq!(states.len(), 2, "{states:?}");
    for state in &states {
        assert!(state.len() == 35 && state.starts_with("x3:"), "{state}");
    }

    // Nothing changed the next day: no escalation mail, only the summary.
    assert_eq!(p.keepwell(&["run", "nightly", "--as-of", "2026-11-03"]).code, 0);
    assert_eq!(mails(&p, "2026-11-03"), ["summary--lead@example.com.eml"]);

    // Acme's row changes: only Acme is escalated again.
    p.write(
        "data/accounts.csv",
        &common::ACCOUNTS_CSV.replace("A1,Acme,travel,120000.00,100,20", "A1,Acme,travel,130000.00,100,20"),
    );
    assert_eq!(p.keepwell(&["run", "nightly", "--as-of", "2026-11-04"]).code, 0);
    let mail =
        std::fs::read_to_string(p.path().join(".keepwell/outbox/nightly/2026-11-04/at_risk--ann@example.com.eml"))
            .expect("mail");
    assert!(mail.contains("Subject: At risk: 1 account needs you (2026-11-04)"), "{mail}");

    // A week after Initech was last sent, it is sent again as a reminder.
    assert_eq!(p.keepwell(&["run", "nightly", "--as-of", "2026-11-09"]).code, 0);
    let mail =
        std::fs::read_to_string(p.path().join(".keepwell/outbox/nightly/2026-11-09/at_risk--ann@example.com.eml"))
            .expect("mail");
    assert!(mail.contains("Subject: At risk: 1 account needs you (2026-11-09)") && mail.contains("Initech"), "{mail}");
}

#[test]
fn managers_get_a_roll_up_of_their_owners_lists() {
    let job = common::JOB
        .replace("      order_by: arr\n", "      order_by: arr\n      rollup: '\"boss@example.com\"'\n")
        .replace("when: risk.grade == \\\"high\\\" || health.grade == \\\"red\\\"", "when: true");
    let job = job.replace("when: risk.grade == \"high\" || health.grade == \"red\"", "when: true");
    let p = Project::new(&[("jobs/nightly.yaml", &job)]);
    let out = p.keepwell(&["run", "nightly", "--as-of", "2026-11-23"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let csv = std::fs::read_to_string(p.path().join(".keepwell/runs/1/at_risk_rollup/boss@example.com.csv"))
        .expect("roll-up");
    assert_eq!(
        csv,
        "Owner,Account,ARR,Why\n\
         ann@example.com,Acme,120000,travel is hit hard; 20% of seats in use\n\
         ann@example.com,Initech,8000,retail is hit hard; 20% of seats in use\n\
         bob@example.com,Globex,50000,\n"
    );
    let mail = std::fs::read_to_string(
        p.path().join(".keepwell/outbox/nightly/2026-11-23/at_risk_rollup--boss@example.com.eml"),
    )
    .expect("mail");
    assert!(mail.contains("Subject: At risk (team roll-up): 3 accounts need you (2026-11-23)"), "{mail}");
}

/// Mail for the outbox folder is written as it is queued; one that cannot be written keeps
/// its message in the store and goes out with `keepwell outbox retry`, once.
#[test]
fn mail_that_cannot_be_written_waits_in_the_outbox_for_a_retry() {
    let p = Project::new(&[]);
    // A file where the day's folder should be: no mail can be written there.
    p.write(".keepwell/outbox/nightly/2026-11-23", "in the way");
    let out = p.keepwell(&["run", "nightly", "--as-of", "2026-11-23"]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("mail not sent, kept in the outbox: at_risk to ann@example.com (2026-11-23): "),
        "{}",
        out.stdout
    );
    assert_eq!(
        p.query("SELECT output, status, attempts, octet_length(message) > 0 FROM outbox ORDER BY output"),
        ["at_risk|failed|1|true", "summary|failed|1|true"]
    );
    std::fs::remove_file(p.path().join(".keepwell/outbox/nightly/2026-11-23")).expect("remove");
    let retry = p.keepwell(&["outbox", "retry"]);
    assert_eq!((retry.code, retry.stdout.as_str()), (0, "2 sent, 0 still failing\n"));
    assert_eq!(
        p.files_under(".keepwell/outbox").iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
        [
            ".keepwell/outbox/nightly/2026-11-23/at_risk--ann@example.com.eml",
            ".keepwell/outbox/nightly/2026-11-23/summary--lead@example.com.eml"
        ]
    );
    // A rerun of the day sends nothing again.
    let rerun = p.keepwell(&["run", "nightly", "--as-of", "2026-11-23"]);
    assert!(rerun.stdout.contains("already sent for this day"), "{}", rerun.stdout);
    assert_eq!(p.query("SELECT status, attempts FROM outbox ORDER BY output"), ["sent|2", "sent|2"]);
}

/// List columns that only name a column or a rule set's field are read without rhai; they
/// must show exactly what the same expression evaluated in rhai shows.
#[test]
fn list_columns_read_directly_show_what_rhai_shows() {
    let direct =
        ["name", "arr", "seats", "industry", "risk.grade", "health.score", "risk.reasons", "risk.fired", "risk.tags"];
    let mut columns = String::new();
    for (i, c) in direct.iter().enumerate() {
        columns.push_str(&format!("        - D{i}: {c}\n        - R{i}: ({c})\n"));
    }
    let job = common::JOB
        .replace("      order_by: arr\n", "      order_by: health.score\n")
        .replace("when: risk.grade == \"high\" || health.grade == \"red\"", "when: true")
        .replace(
            "        - Account: name\n        - ARR: arr\n        - Why: risk.reasons + health.reasons\n",
            &columns,
        );
    // Two rules that fire together, for lists of more than one item.
    let risk = format!(
        "{}    tags: [industry, market]\n  - id: seats_known\n    when: seats > 0\n    points: 1\n    reason: \"{{{{ seats }}}} seats\"\n    tags: [size]\n",
        common::RISK
    );
    let p = Project::new(&[("jobs/nightly.yaml", &job), ("rules/risk.yaml", &risk)]);
    let out = p.keepwell(&["run", "nightly", "--as-of", "2026-11-23"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let reasons = p.query("SELECT reasons FROM outcomes WHERE rule_set = 'risk' AND len(reasons) > 1");
    assert!(!reasons.is_empty(), "no account with two reasons");
    let mut rows = 0;
    for file in p.files_under(".keepwell/runs/1/at_risk") {
        let csv = std::fs::read_to_string(p.path().join(&file)).expect("csv");
        let mut reader = csv::Reader::from_reader(csv.as_bytes());
        for record in reader.records() {
            let record = record.expect("row");
            for i in 0..direct.len() {
                assert_eq!(record[2 * i], record[2 * i + 1], "`{}` in {}", direct[i], file.display());
            }
            rows += 1;
        }
    }
    assert_eq!(rows, 3);
}

/// Mail goes out as outputs render it: when a later output fails, the mail already written
/// stays written, the run fails, and its record lists that mail.
#[test]
fn a_failing_output_keeps_the_mail_already_written() {
    let p = Project::new(&[("templates/summary.txt", "{{ 1 // 0 }}\n")]);
    let out = p.keepwell(&["run", "nightly", "--as-of", "2026-11-23"]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("template `summary.txt` failed"), "{}", out.stdout);
    let sent = ".keepwell/outbox/nightly/2026-11-23/at_risk--ann@example.com.eml";
    assert!(p.path().join(sent).exists(), "{:?}", p.files_under(".keepwell/outbox"));
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p.path().join(".keepwell/runs/1/run.json")).expect("run.json"))
            .expect("json");
    assert_eq!(run["status"], "failed");
    let mails: Vec<&str> = run["mails"].as_array().expect("mails").iter().filter_map(|m| m.as_str()).collect();
    assert!(mails.iter().any(|m| m.ends_with("at_risk--ann@example.com.eml")), "{mails:?}");
    // The same day again sends only what did not go out.
    p.write("templates/summary.txt", "ok\n");
    let again = p.keepwell(&["run", "nightly", "--as-of", "2026-11-23"]);
    assert_eq!(again.code, 0, "{}\n{}", again.stdout, again.stderr);
    assert_eq!(p.query("SELECT output, status FROM outbox ORDER BY output"), ["at_risk|sent", "summary|sent"]);
}

/// Runs the nightly job of a project made of `files` with every expression the warehouse
/// can take there (`KEEPWELL_VECTORISE` on), then all in rhai (off): each run must exit with
/// `code` and pass `check`; `query`'s rows for each, in that order.
fn on_both_paths(files: &[(&str, &str)], code: i32, query: &str, check: impl Fn(&common::Output)) -> [Vec<String>; 2] {
    ["on", "off"].map(|vectorise| {
        let p = Project::new(files);
        let out = p.keepwell_with(
            &["run", "nightly", "--as-of", "2026-11-23", "--no-mail"],
            &[("KEEPWELL_VECTORISE", vectorise)],
        );
        assert_eq!(out.code, code, "{}\n{}", out.stdout, out.stderr);
        check(&out);
        p.query(query)
    })
}

/// Points, classification and scorecard sets whose expressions all run in the warehouse are
/// assembled from their columns; the outcomes, reasons, tags and errors must be those of
/// rhai, also where a reason fails or a map lacks a value for one account (that account is
/// then evaluated the general way).
#[test]
fn sets_assembled_from_columns_match_rhai_even_when_a_reason_fails() {
    let risk = "\
score: { base: 5, min: 0, max: 100 }
grades:
  - { grade: high, min: 40 }
  - { grade: medium, min: 20 }
  - { grade: low }
rules:
  - id: hard_hit_industry
    when: industry in [\"travel\", \"retail\"]
    points: 30
    tags: [industry, exposure]
    reason: \"{{ industry }} is hit hard\"
  - id: per_seat
    when: seats > 0
    points: active_users / seats * 40
    tags: [exposure, usage]
    reason: \"{{ points }} points for {{ 100 // (seats - 10) }}\"
  - id: switched_off
    when: true
    points: 1000
    enabled: false
  - id: small
    when: arr < 60000
    points: -10
    tags: [size]
";
    let stage = "\
depends_on: [risk]
classes:
  - class: exposed
    when: risk.grade == \"high\"
    reason: \"exposed: {{ risk.reasons | join('; ') }}\"
  - class: small
    when: arr < 10000
    reason: \"{{ name }} is small\"
default: steady
default_reason: \"{{ name }} holds {{ seats }} seats\"
";
    let card = "\
grades:
  - { grade: good, min: 60 }
  - { grade: poor }
measures:
  - id: utilisation
    weight: 2
    score: active_users / seats * 100
    reason: \"{{ active_users }} of {{ seats }} seats\"
  - id: size
    weight: 1
    value: arr
    bands:
      - { min: 100000, score: 100 }
      - { min: 20000, score: 50 }
    reason_below: 100
    reason: \"ARR {{ arr | money }}{% if points %}, {{ points }} points{% endif %}\"
  - id: sector
    weight: 1
    value: industry
    map: { travel: 20, healthcare: 90 }
";
    let job = common::JOB.replace("rule_sets: [risk, health]", "rule_sets: [risk, health, stage, card]");
    let files = [
        ("jobs/nightly.yaml", job.as_str()),
        ("rules/risk.yaml", risk),
        ("rules/stage.yaml", stage),
        ("rules/card.yaml", card),
    ];
    // Degraded: one account's rule failed, the others were scored.
    let results = on_both_paths(
        &files,
        1,
        "SELECT account_id, rule_set, score, grade, CAST(fired AS VARCHAR), CAST(reasons AS VARCHAR), \
         CAST(tags AS VARCHAR), CAST(errors AS VARCHAR) FROM outcomes ORDER BY account_id, rule_set",
        |out| assert!(out.stdout.contains("rule `per_seat` of `risk` for account `A3`"), "{}", out.stdout),
    );
    assert_eq!(results[0], results[1], "vectorised, then rhai");
    assert_eq!(results[0].len(), 12);
    let risk_and_stage: Vec<&String> = results[0].iter().filter(|r| !r.contains("|health|")).collect();
    assert_eq!(
        risk_and_stage,
        [
            "A1|card|40.0|poor|[utilisation, sector]|[20 of 100 seats]|[]|[]",
            "A1|risk|43.0|high|[hard_hit_industry, per_seat]|[travel is hit hard, 8 points for 1]|[industry, exposure, usage]|[]",
            "A1|stage|NULL|exposed|[exposed]|['exposed: travel is hit hard; 8 points for 1']|[]|[]",
            "A2|card|82.5|good|[size]|['ARR $50,000, 50 points']|[]|[]",
            "A2|risk|33.0|medium|[per_seat, small]|[38 points for 3]|[exposure, usage, size]|[]",
            "A2|stage|NULL|steady|[]|[Globex holds 40 seats]|[]|[]",
            "A3|card|NULL|NULL|[utilisation]|[2 of 10 seats]|[]|['sector: `retail` is not listed in the map of measure `sector`']",
            "A3|risk|NULL|NULL|[hard_hit_industry, small]|[retail is hit hard]|[industry, exposure, size]|\
             ['per_seat: the reason could not be written: invalid operation: unable to calculate 100 // 0 (in risk/per_seat/reason:1)']",
            "A3|stage|NULL|small|[small]|[Initech is small]|[]|[]",
        ]
    );
}

/// More conditions than one mask holds (64): rules beyond the first mask fire and count, and
/// a class beyond it is the first match, as in rhai.
#[test]
fn sets_wider_than_one_mask_match_rhai() {
    let mut wide =
        String::from("score: { base: 0 }\ngrades:\n  - { grade: high, min: 50 }\n  - { grade: low }\nrules:\n");
    let mut tier = String::from("classes:\n");
    for k in 0..70 {
        wide.push_str(&format!("  - id: r{k}\n    when: seats > {k}\n    points: 1\n    tags: [t{}]\n", k % 3));
        tier.push_str(&format!("  - class: c{k}\n    when: seats > {}\n", 200 - 3 * k));
    }
    tier.push_str("default: none\n");
    let job = common::JOB.replace("rule_sets: [risk, health]", "rule_sets: [risk, health, wide, tier]");
    let results = on_both_paths(
        &[("jobs/nightly.yaml", &job), ("rules/wide.yaml", &wide), ("rules/tier.yaml", &tier)],
        0,
        "SELECT account_id, rule_set, score, grade, len(fired), fired[-1], CAST(tags AS VARCHAR) \
         FROM outcomes WHERE rule_set IN ('wide', 'tier') ORDER BY account_id, rule_set",
        |_| {},
    );
    assert_eq!(results[0], results[1], "vectorised, then rhai");
    assert_eq!(
        results[0],
        [
            "A1|tier|NULL|c34|1|c34|[]",
            "A1|wide|70.0|high|70|r69|[t0, t1, t2]",
            "A2|tier|NULL|c54|1|c54|[]",
            "A2|wide|40.0|low|40|r39|[t0, t1, t2]",
            "A3|tier|NULL|c64|1|c64|[]",
            "A3|wide|10.0|low|10|r9|[t0, t1, t2]",
        ]
    );
}

/// An account a scorecard assembled from its columns leaves to the general path (its value
/// is not in the map) still reads its own results of the sets the scorecard depends on.
#[test]
fn an_account_left_to_the_general_path_reads_its_own_dependencies() {
    let card = "\
depends_on: [risk]
grades:
  - { grade: good, min: 60 }
  - { grade: poor }
measures:
  - id: utilisation
    weight: 1
    score: active_users / seats * 100
    reason: \"{{ active_users }} of {{ seats }} seats, {{ risk.reasons | join('; ') }}\"
  - id: sector
    weight: 1
    value: industry
    map: { travel: 20, healthcare: 90 }
";
    let job = common::JOB.replace("rule_sets: [risk, health]", "rule_sets: [risk, health, card]");
    let results = on_both_paths(
        &[("jobs/nightly.yaml", &job), ("rules/card.yaml", card)],
        1,
        "SELECT account_id, score, CAST(fired AS VARCHAR), CAST(reasons AS VARCHAR), CAST(errors AS VARCHAR) \
         FROM outcomes WHERE rule_set = 'card' ORDER BY account_id",
        |_| {},
    );
    assert_eq!(results[0], results[1], "vectorised, then rhai");
    assert!(
        results[0][2].starts_with("A3|NULL|[utilisation]|['2 of 10 seats, retail is hit hard']|"),
        "{:?}",
        results[0]
    );
}
