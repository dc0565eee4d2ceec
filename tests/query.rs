//! `keepwell query`: read-only SQL over the store and the runs' entity snapshots, in three
//! formats; anything that would write is refused.

mod common;

use common::Project;

fn project_with_two_runs() -> Project {
    let p = Project::new(&[]);
    for day in ["2026-11-22", "2026-11-23"] {
        let out = p.keepwell(&["run", "nightly", "--as-of", day]);
        assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    }
    p
}

#[test]
fn query_prints_a_table_csv_and_json() {
    let p = project_with_two_runs();
    let sql = "SELECT account_id, name, arr, arr > 10000 AS big FROM entity ORDER BY account_id";
    let table = p.keepwell(&["query", sql]);
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert_eq!(
        table.stdout,
        "account_id  name           arr  big\n\
         ----------  -------  ---------  -----\n\
         A1          Acme     120000.00  true\n\
         A2          Globex    50000.00  true\n\
         A3          Initech    8000.00  false\n\
         (3 rows)\n"
    );
    let csv = p.keepwell(&["query", sql, "--format", "csv"]);
    assert_eq!(
        csv.stdout,
        "account_id,name,arr,big\nA1,Acme,120000.00,true\nA2,Globex,50000.00,true\nA3,Initech,8000.00,false\n"
    );
    let json = p.keepwell(&[
        "query",
        "SELECT account_id, arr, NULL AS nothing FROM entity WHERE account_id = 'A3'",
        "--format",
        "json",
    ]);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(doc, serde_json::json!([{ "account_id": "A3", "arr": 8000.00, "nothing": null }]));

    // Every run's snapshot, with its run id; `--run` picks the one `entity` is.
    let history = p.keepwell(&[
        "query",
        "SELECT run_id, count(*) AS accounts FROM entities GROUP BY ALL ORDER BY 1",
        "--format",
        "csv",
    ]);
    assert_eq!(history.stdout, "run_id,accounts\n1,3\n2,3\n");
    let first = p.keepwell(&["query", "SELECT count(*) AS n FROM entity", "--run", "1", "--format", "csv"]);
    assert_eq!((first.code, first.stdout.as_str()), (0, "n\n3\n"));
    let none = p.keepwell(&["query", "SELECT 1", "--run", "9"]);
    assert_eq!(
        (none.code, none.stderr.as_str()),
        (2, "error: run 9 has no entity snapshot (it was not published, or its folder was removed)\n")
    );
}

#[test]
fn query_refuses_anything_that_writes_or_reads_other_files() {
    let p = project_with_two_runs();
    let refused = "error: keepwell query only reads: `DELETE` would change something (the store is changed only by runs; \
                   to keep a result, `--format csv > file.csv`)\n";
    for sql in ["DELETE FROM runs", "  -- tidy up\n delete from runs", "SELECT 1; DELETE FROM runs"] {
        let out = p.keepwell(&["query", sql]);
        assert_eq!((out.code, out.stderr.as_str()), (2, refused), "{sql}");
    }
    let copy = p.keepwell(&["query", "COPY runs TO '/tmp/keepwell-query-copy.csv'"]);
    assert!(
        copy.stderr.starts_with("error: keepwell query only reads: `COPY` would change something"),
        "{}",
        copy.stderr
    );
    let file = p.keepwell(&["query", "SELECT * FROM read_csv('/etc/passwd')"]);
    assert_eq!(file.code, 2);
    assert!(file.stderr.contains("file system operations are disabled"), "{}", file.stderr);
    assert_eq!(p.query("SELECT count(*) FROM runs"), ["2"]);
}
