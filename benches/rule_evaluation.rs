//! The rule-evaluation part of `make bench`, on the performance issue's own workload: many
//! accounts × 60 simple rules, points summed. With `--generate N`, writes the accounts (12
//! integer measures with some missing, 6 decimals, a segment) to `DIR/data/accounts.parquet`.
//! Otherwise loads them and evaluates the rules as one hand-written query (a CASE WHEN per
//! rule, `RULES_SQL` holding the sum), three times, and prints the median time as JSON; with
//! `--compare STORE` it also counts the accounts whose score differs from keepwell's.
//!
//! cargo bench --bench rule_evaluation -- DIR --generate N
//! cargo bench --bench rule_evaluation -- DIR RULES_SQL [--compare STORE]

use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let flag = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let Some(dir) = args.first() else {
        eprintln!("usage: rule_evaluation DIR (--generate N | RULES_SQL [--compare STORE])");
        std::process::exit(2);
    };
    let conn = duckdb::Connection::open_in_memory().expect("duckdb");
    let data = format!("{dir}/data/accounts.parquet");
    if let Some(n) = flag("--generate") {
        std::fs::create_dir_all(format!("{dir}/data")).expect("data dir");
        let measures: Vec<String> = (0..12)
            .map(|k| {
                format!("CASE WHEN hash(i, {k}) % 20 = 0 THEN NULL ELSE (hash(i, {k}) % 100)::INTEGER END AS m{k}")
            })
            .collect();
        let decimals: Vec<String> = (12..18).map(|k| format!("(hash(i, {k}) % 10000)::DOUBLE / 100 AS f{k}")).collect();
        conn.execute_batch(&format!(
            "COPY (SELECT printf('A%08d', i) AS account_id, {}, {}, \
                   ['smb', 'mid', 'ent', 'strategic'][(hash(i, 99) % 4)::INTEGER + 1] AS segment \
                   FROM range({n}) t(i)) TO '{data}'",
            measures.join(", "),
            decimals.join(", ")
        ))
        .expect("generate");
        return;
    }
    let rules = std::fs::read_to_string(&args[1]).expect("rules sql");
    conn.execute_batch(&format!("CREATE TABLE accounts AS SELECT * FROM '{data}'")).expect("load");
    let mut times = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        conn.execute_batch(&format!(
            "CREATE OR REPLACE TABLE scores AS SELECT account_id, {rules} AS score FROM accounts"
        ))
        .expect("rules");
        times.push(started.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let accounts: i64 = conn.query_row("SELECT count(*) FROM scores", [], |r| r.get(0)).expect("count");
    let mut differ = String::new();
    if let Some(store) = flag("--compare") {
        conn.execute_batch(&format!("ATTACH '{store}' AS kw (READ_ONLY)")).expect("attach store");
        let n: i64 = conn
            .query_row(
                "SELECT count(*) FROM scores s FULL JOIN (SELECT * FROM kw.latest_outcomes WHERE rule_set = 'points') o \
                 USING (account_id) WHERE o.score IS DISTINCT FROM s.score",
                [],
                |r| r.get(0),
            )
            .expect("compare");
        differ = format!(", \"differ\": {n}");
    }
    println!("{{\"accounts\": {accounts}, \"rules\": {:.3}, \"runs\": {times:?}{differ}}}", times[1]);
}
