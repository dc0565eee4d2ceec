//! `keepwell compile`: the shipped nightly job compiled to one SQL script, run outside
//! keepwell (by DuckDB, and by a real Spark in local mode) over the fixtures written as
//! Parquet, gives every account's score and grade keepwell's own run gives; and its results
//! read back by a job publish and mail as a run does.

mod common;

use std::path::{Path, PathBuf};

use common::Project;

const DAY: &str = "2026-11-23";

fn shipped_project() -> Project {
    Project::shipped(&["jobs", "rules", "fixtures"])
}

/// Every fixture CSV as `<name>.parquet` in `parquet/`, all text: the compiled script
/// casts each column to the job's type.
fn fixtures_as_parquet(p: &Project) -> PathBuf {
    let out = p.path().join("parquet");
    std::fs::create_dir_all(&out).expect("mkdir");
    let conn = duckdb::Connection::open_in_memory().expect("duckdb");
    for entry in std::fs::read_dir(p.path().join("fixtures")).expect("fixtures").flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "csv") {
            let name = path.file_stem().expect("stem").to_string_lossy().to_string();
            conn.execute_batch(&format!(
                "COPY (SELECT * FROM read_csv('{}', all_varchar = true, header = true)) TO '{}' (FORMAT parquet)",
                path.display(),
                out.join(format!("{name}.parquet")).display()
            ))
            .expect("write parquet");
        }
    }
    out
}

/// The results keepwell's run stored, against those the compiled script wrote under
/// `results`: the rows that differ in score or grade (or are missing on one side).
fn differences(p: &Project, results: &Path, also: &str) -> (usize, Vec<String>) {
    let conn = p.store();
    let rows = |sql: &str| -> Vec<String> {
        let mut stmt = conn.prepare(sql).expect(sql);
        let mut rows = stmt.query([]).expect("query");
        let mut out = Vec::new();
        while let Some(row) = rows.next().expect("row") {
            out.push(row.get::<_, String>(0).expect("text"));
        }
        out
    };
    let compiled = format!("read_parquet('{}/results/*.parquet')", results.display());
    let total = rows(&format!("SELECT CAST(count(*) AS VARCHAR) FROM {compiled}"))[0].parse().expect("count");
    let diff = rows(&format!(
        "SELECT concat_ws(' | ', coalesce(o.account_id, c.account), coalesce(o.rule_set, c.rule_set), \
                CAST(o.score AS VARCHAR), CAST(c.score AS VARCHAR), o.grade, c.grade{also}) \
         FROM (SELECT * FROM outcomes WHERE run_id = 1) o \
         FULL JOIN {compiled} c ON c.account = o.account_id AND c.rule_set = o.rule_set \
         WHERE o.account_id IS NULL OR c.account IS NULL OR o.grade IS DISTINCT FROM c.grade \
            OR abs(o.score - c.score) > 1e-9 OR (o.score IS NULL) <> (c.score IS NULL) \
         ORDER BY 1 LIMIT 20"
    ));
    (total, diff)
}

fn compile(p: &Project, target: &str, parquet: &Path, results: &Path) -> PathBuf {
    let folder = p.path().join("compiled");
    let out = p.keepwell(&[
        "compile",
        "nightly",
        "--target",
        target,
        "--as-of",
        DAY,
        "--sources",
        &parquet.display().to_string(),
        "--results",
        &results.display().to_string(),
        "--out",
        &folder.display().to_string(),
    ]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(
        out.stdout.trim(),
        format!(
            "compiled job `nightly` for {target}: 9 rule set(s), 8 feature view(s) -> {}/nightly.{target}.sql",
            folder.display()
        )
    );
    folder.join(format!("nightly.{target}.sql"))
}

#[test]
fn the_compiled_duckdb_script_gives_keepwells_results() {
    let p = shipped_project();
    let run = p.keepwell(&["run", "nightly", "--as-of", DAY, "--no-mail"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let parquet = fixtures_as_parquet(&p);
    let results = p.path().join("duck");
    let script = compile(&p, "duckdb", &parquet, &results);
    std::fs::create_dir_all(&results).expect("DuckDB writes into a folder that is there");
    let conn = duckdb::Connection::open_in_memory().expect("duckdb");
    conn.execute_batch(&std::fs::read_to_string(&script).expect("script")).expect("the compiled script runs");
    // Reasons too: every template of the shipped playbook translates.
    let (total, diff) = differences(&p, &results, ", CAST(o.reasons AS VARCHAR), CAST(c.reasons AS VARCHAR)");
    assert_eq!((total, diff), (473 * 9, Vec::<String>::new()));
    let conn = p.store();
    let lists = format!(
        "SELECT count(*) FROM (SELECT * FROM outcomes WHERE run_id = 1) o JOIN read_parquet('{}/results/*.parquet') c \
         ON c.account = o.account_id AND c.rule_set = o.rule_set \
         WHERE o.fired IS DISTINCT FROM c.fired OR o.tags IS DISTINCT FROM c.tags OR o.reasons IS DISTINCT FROM c.reasons",
        results.display()
    );
    let differ: i64 = conn.query_row(&lists, [], |r| r.get(0)).expect("lists");
    assert_eq!(differ, 0, "fired rules, tags or reasons differ");
}

/// The results another engine wrote, read back by a job with `engine_results:`, publish
/// and list exactly what keepwell's own run does; results of another day stop the run.
#[test]
fn a_job_publishes_the_results_another_engine_computed() {
    let p = shipped_project();
    let run = p.keepwell(&["run", "nightly", "--as-of", DAY, "--no-mail"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let parquet = fixtures_as_parquet(&p);
    let results = p.path().join("engine");
    let script = compile(&p, "duckdb", &parquet, &results);
    std::fs::create_dir_all(&results).expect("mkdir");
    let conn = duckdb::Connection::open_in_memory().expect("duckdb");
    conn.execute_batch(&std::fs::read_to_string(&script).expect("script")).expect("the compiled script runs");
    // The extracts are not needed where the results are: the engine's job runs without them.
    for entry in std::fs::read_dir(p.path().join("fixtures")).expect("fixtures").flatten() {
        if !["slack_routes.csv", "outcomes.csv"].contains(&entry.file_name().to_string_lossy().as_ref()) {
            std::fs::remove_file(entry.path()).expect("remove an extract");
        }
    }
    let nightly = std::fs::read_to_string(p.path().join("jobs/nightly.yaml")).expect("nightly");
    let engine_job = nightly.replacen("name: nightly\n", "name: from_engine\nengine_results: engine\n", 1);
    assert_ne!(engine_job, nightly);
    p.write("jobs/from_engine.yaml", &engine_job);
    let out = p.keepwell(&["run", "from_engine", "--as-of", DAY, "--no-mail"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let same = p.query(
        "SELECT count(*) FROM outcomes a JOIN outcomes b USING (account_id, rule_set) \
         WHERE a.run_id = 1 AND b.run_id = 2 AND a.score IS NOT DISTINCT FROM b.score AND a.grade IS NOT DISTINCT FROM b.grade \
         AND a.fired = b.fired AND a.tags = b.tags AND a.reasons = b.reasons AND a.grade_since IS NOT DISTINCT FROM b.grade_since",
    );
    assert_eq!(same, [format!("{}", 473 * 9)]);
    for list in ["at_risk", "swarm"] {
        let ours = p.files_under(&format!(".keepwell/runs/1/{list}"));
        assert!(!ours.is_empty(), "{list}");
        for file in ours {
            let theirs = file.to_string_lossy().replace("/runs/1/", "/runs/2/");
            assert_eq!(
                std::fs::read_to_string(p.path().join(&file)).expect("ours"),
                std::fs::read_to_string(p.path().join(&theirs)).unwrap_or_default(),
                "{theirs}"
            );
        }
    }
    let out = p.keepwell(&["run", "from_engine", "--as-of", "2026-11-24", "--no-mail"]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains(
            "the engine's results are for 2026-11-23, the run is for 2026-11-24: run the compiled script for 2026-11-24"
        ),
        "{}",
        out.stderr
    );
    // Results with an account missing from one set and a grade its set does not give: an
    // error for those accounts alone, the rest published; a set given twice for an account
    // stops the run.
    let broken = |name: &str, results_sql: &str| {
        let folder = p.path().join(name);
        for part in ["entity", "results"] {
            std::fs::create_dir_all(folder.join(part)).expect("mkdir");
        }
        let from = format!("read_parquet('{}/results/*.parquet')", results.display());
        conn.execute_batch(&format!(
            "COPY (SELECT * FROM read_parquet('{}/entity/*.parquet')) TO '{}/entity/part.parquet' (FORMAT parquet); \
             COPY ({}) TO '{}/results/part.parquet' (FORMAT parquet);",
            results.display(),
            folder.display(),
            results_sql.replace("{from}", &from),
            folder.display()
        ))
        .expect("broken results written");
        p.write(
            &format!("jobs/{name}.yaml"),
            &nightly.replacen("name: nightly\n", &format!("name: {name}\nengine_results: {name}\n"), 1),
        );
        p.keepwell(&["run", name, "--as-of", DAY, "--no-mail"])
    };
    let first: Vec<String> = {
        let sql = format!(
            "SELECT DISTINCT account FROM read_parquet('{}/results/*.parquet') ORDER BY 1 LIMIT 3",
            results.display()
        );
        let mut stmt = conn.prepare(&sql).expect("accounts");
        stmt.query_map([], |r| r.get::<_, String>(0)).expect("accounts").map(|a| a.expect("account")).collect()
    };
    let at =
        |sql: &str| sql.replace("acc-0001", &first[0]).replace("acc-0002", &first[1]).replace("acc-0003", &first[2]);
    let out = broken(
        "gaps",
        &at(
            "SELECT * REPLACE (CASE WHEN account = 'acc-0002' AND rule_set = 'risk' THEN 'purple' ELSE grade END AS grade) \
             FROM {from} WHERE NOT (account = 'acc-0001' AND rule_set = 'health')",
        ),
    );
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let errors = p.query(
        "SELECT concat_ws(' | ', rule_set, rule_id, account_id, message) FROM rule_errors \
         WHERE run_id = (SELECT max(run_id) FROM runs) ORDER BY 1",
    );
    assert_eq!(
        errors,
        [
            at("health | engine | acc-0001 | the engine's results have no row for this account"),
            at(
                "risk | engine | acc-0002 | grade `purple` is not one rule set `risk` gives: the results are of other rules"
            ),
        ]
    );
    let out = broken("twice", &at("SELECT * FROM {from} UNION ALL SELECT * FROM {from} WHERE account = 'acc-0003'"));
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains(&at(
            "the engine's results have more than one row for rule set `health` for 1 account(s), the first `acc-0003`"
        )),
        "{}",
        out.stderr
    );
}

#[test]
fn a_rule_outside_the_subset_is_not_portable_and_located() {
    let p = shipped_project();
    let risk = std::fs::read_to_string(p.path().join("rules/risk.yaml")).expect("risk");
    let changed = risk.replacen("when: expected_churn\n", "when: expected_churn == true && name.len() > 3\n", 1);
    assert_ne!(risk, changed);
    p.write("rules/risk.yaml", &changed);
    let out = p.keepwell(&["compile", "nightly", "--target", "spark", "--out", "compiled"]);
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    let line = changed.lines().position(|l| l.contains("name.len()")).expect("line") + 1;
    assert!(
        out.stderr.contains(&format!(
            "error: `expected_churn` of rule set `risk` is not portable: `expected_churn == true && name.len() > 3` is outside what keepwell writes as SQL\n  --> rules/risk.yaml:{line}:11"
        )),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("nothing written: the job does not compile for spark"), "{}", out.stderr);
    assert!(!p.path().join("compiled").exists());
}

#[test]
fn a_feature_spark_cannot_run_is_located() {
    let p = shipped_project();
    p.write(
        "jobs/features/engagement.sql",
        "SELECT\n    account_id,\n    count(*) AS meetings_90d,\n    histogram(kind) AS kinds,\n    max(day) AS last_qbr_on\nFROM engagements\nGROUP BY account_id\n",
    );
    let out = p.keepwell(&["compile", "nightly", "--target", "spark"]);
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains(
            "error: does not translate to Spark SQL: function `histogram` is not known to translate to Spark\n --> jobs/features/engagement.sql:4:5"
        ),
        "{}",
        out.stderr
    );
}

#[test]
fn the_compiled_spark_sql_gives_keepwells_scores_on_spark() {
    let runner = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compile/spark_run.py");
    let ready = std::process::Command::new("python3")
        .args(["-c", "import pyspark, shutil, sys; sys.exit(0 if shutil.which('java') else 3)"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ready {
        eprintln!("SKIPPED: Spark needs PySpark and a Java runtime (`make spark` installs both); neither is here");
        return;
    }
    let p = shipped_project();
    let run = p.keepwell(&["run", "nightly", "--as-of", DAY, "--no-mail"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let parquet = fixtures_as_parquet(&p);
    let results = p.path().join("spark");
    let script = compile(&p, "spark", &parquet, &results);
    let out = std::process::Command::new("python3").arg(&runner).arg(&script).output().expect("python3");
    assert!(
        out.status.success(),
        "Spark failed on the compiled script:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let (total, diff) = differences(&p, &results, "");
    assert_eq!((total, diff), (473 * 9, Vec::<String>::new()));
}
