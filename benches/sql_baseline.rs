//! The hand-written SQL baseline of `make bench`: the nightly job's sources loaded
//! (benches/load.sql), the job's own feature SQL (jobs/features/*.sql, in the job's order),
//! and the playbook's rules as one query (benches/rules.sql), on the same DuckDB keepwell
//! links. Prints the stage times as JSON; with `--compare STORE` it also says how many of
//! keepwell's grades in that store's latest run the baseline reproduces.
//!
//! cargo bench --bench sql_baseline -- DATA_DIR OUT_DIR AS_OF [--compare STORE]

use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let compare = args.iter().position(|a| a == "--compare").and_then(|i| args.get(i + 1)).cloned();
    let positional: Vec<&String> = args
        .iter()
        .enumerate()
        .filter(|(i, a)| !a.starts_with("--") && (*i == 0 || args[i - 1] != "--compare"))
        .map(|(_, a)| a)
        .collect();
    let [data, out, as_of] = positional[..] else {
        eprintln!("usage: sql_baseline DATA_DIR OUT_DIR AS_OF [--compare STORE]");
        std::process::exit(2);
    };
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let fill = |sql: &str| {
        sql.replace("${DATA}", data)
            .replace("${OUT}", out)
            .replace("${AS_OF}", as_of)
            .replace("${RULES}", &root.join("rules").display().to_string())
    };
    let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    std::fs::create_dir_all(out).expect("out dir");
    let conn = duckdb::Connection::open_in_memory().expect("duckdb");
    let started = Instant::now();
    conn.execute_batch(&fill(&read("benches/load.sql"))).expect("load");
    let load = started.elapsed().as_secs_f64();

    let t = Instant::now();
    let job = read("jobs/nightly.yaml");
    for line in job.lines().map(str::trim).filter(|l| l.starts_with("- jobs/features/")) {
        let path = line.trim_start_matches("- ");
        let name = std::path::Path::new(path).file_stem().and_then(|s| s.to_str()).expect("name");
        conn.execute_batch(&format!("CREATE VIEW {name} AS\n{}", read(path))).expect(path);
    }
    // A view costs nothing until read: materialise the entity, as keepwell does.
    conn.execute_batch(
        "CREATE TABLE account_features_t AS SELECT * FROM account_features; \
                        DROP VIEW account_features; ALTER TABLE account_features_t RENAME TO account_features;",
    )
    .expect("features");
    let features = t.elapsed().as_secs_f64();

    let t = Instant::now();
    conn.execute_batch(&fill(&read("benches/rules.sql"))).expect("rules");
    let rules = t.elapsed().as_secs_f64();
    let total = started.elapsed().as_secs_f64();
    let accounts: i64 = conn.query_row("SELECT count(*) FROM scores", [], |r| r.get(0)).expect("count");

    let mut agreement = String::new();
    if let Some(store) = compare {
        conn.execute_batch(&format!("ATTACH '{store}' AS kw (READ_ONLY)")).expect("attach store");
        let sets = ["impact", "health", "stage", "risk", "adoption", "expansion", "signals", "plays", "forecast"];
        let parts: Vec<String> = sets
            .iter()
            .map(|set| {
                let same: f64 = conn
                    .query_row(
                        &format!(
                            "SELECT avg(CASE WHEN o.grade IS NOT DISTINCT FROM s.{set} THEN 1.0 ELSE 0.0 END) \
                             FROM scores s JOIN kw.latest_outcomes o ON o.account_id = s.account_id AND o.rule_set = '{set}'"
                        ),
                        [],
                        |r| r.get::<_, Option<f64>>(0),
                    )
                    .expect("compare")
                    .unwrap_or(0.0);
                format!("\"{set}\": {:.4}", same)
            })
            .collect();
        agreement = format!(", \"agreement\": {{{}}}", parts.join(", "));
    }
    println!(
        "{{\"accounts\": {accounts}, \"load\": {load:.3}, \"features\": {features:.3}, \"rules\": {rules:.3}, \"total\": {total:.3}{agreement}}}"
    );
}
