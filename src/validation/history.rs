//! What the store kept, read for validation: the job's published runs, each account's
//! results in a run, the tags fired in a window, what each escalation flagged, and the
//! accounts' segments. The store is attached read-only: validation never changes it.

use std::collections::HashMap;
use std::path::Path;

use chrono::NaiveDate;
use duckdb::{Connection, params};

use crate::store::ENTITY_SNAPSHOT;
use crate::warehouse::sql_string;

/// Separates a list's items when DuckDB hands a list back as text.
const SEP: &str = "\u{1f}";

#[derive(Debug, Clone, Default)]
pub struct Stored {
    pub score: Option<f64>,
    pub grade: Option<String>,
    pub fired: Vec<String>,
}

pub struct History {
    conn: Connection,
    job: String,
    /// Published runs, oldest first; one per day (the day's last).
    pub runs: Vec<(i64, NaiveDate)>,
}

fn list(text: Option<String>) -> Vec<String> {
    text.filter(|t| !t.is_empty()).map(|t| t.split(SEP).map(String::from).collect()).unwrap_or_default()
}

impl History {
    /// The store at `store`, attached read-only to a connection of its own.
    pub fn open(store: &Path, job: &str) -> Result<History, duckdb::Error> {
        let conn = Connection::open_in_memory()?;
        conn.execute_batch(&format!("ATTACH {} AS s (READ_ONLY); USE s", sql_string(&store.display().to_string())))?;
        History::over(conn, job)
    }

    /// The store a connection has open (a run's own, cloned): what validation reads is kept
    /// in temporary tables, so the store's file is not written.
    pub fn over(conn: Connection, job: &str) -> Result<History, duckdb::Error> {
        let mut stmt = conn
            .prepare("SELECT max(run_id), as_of FROM runs WHERE job = ? AND published GROUP BY as_of ORDER BY as_of")?;
        let runs = stmt.query_map(params![job], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<Vec<_>, _>>()?;
        drop(stmt);
        conn.execute_batch(
            "CREATE OR REPLACE TEMP TABLE need (run_id BIGINT, account_id VARCHAR); \
             CREATE OR REPLACE TEMP TABLE window_need (idx BIGINT, account_id VARCHAR, since DATE, until DATE);",
        )?;
        Ok(History { conn, job: job.to_string(), runs })
    }

    /// The latest run on or before `day`.
    pub fn run_at(&self, day: NaiveDate) -> Option<(i64, NaiveDate)> {
        let i = self.runs.partition_point(|(_, d)| *d <= day);
        i.checked_sub(1).map(|i| self.runs[i])
    }

    /// The latest run before `day`.
    pub fn run_before(&self, day: NaiveDate) -> Option<(i64, NaiveDate)> {
        self.run_at(day.pred_opt()?)
    }

    fn fill_need(&self, pairs: &[(i64, &str)]) -> Result<(), duckdb::Error> {
        self.conn.execute_batch("DELETE FROM need")?;
        let rows: Vec<String> =
            pairs.iter().map(|(run, account)| format!("({run}, {})", sql_string(account))).collect();
        self.insert("need", &rows)
    }

    /// Rows of values into a temporary table, a thousand a statement (an appender cannot
    /// reach temporary tables).
    fn insert(&self, table: &str, rows: &[String]) -> Result<(), duckdb::Error> {
        for chunk in rows.chunks(1000) {
            self.conn.execute_batch(&format!("INSERT INTO {table} VALUES {}", chunk.join(", ")))?;
        }
        Ok(())
    }

    /// Every rule set's results for each (run, account): keyed by (run, account, rule set).
    pub fn results(&self, pairs: &[(i64, &str)]) -> Result<HashMap<(i64, String, String), Stored>, duckdb::Error> {
        self.fill_need(pairs)?;
        let mut stmt = self.conn.prepare(&format!(
            "SELECT o.run_id, o.account_id, o.rule_set, o.score, o.grade, \
             array_to_string(o.fired, '{SEP}') \
             FROM outcomes o JOIN (SELECT DISTINCT * FROM need) n USING (run_id, account_id) WHERE o.job = ?"
        ))?;
        let mut out = HashMap::new();
        let mut rows = stmt.query(params![self.job])?;
        while let Some(r) = rows.next()? {
            let stored = Stored { score: r.get(3)?, grade: r.get(4)?, fired: list(r.get(5)?) };
            out.insert((r.get(0)?, r.get(1)?, r.get(2)?), stored);
        }
        Ok(out)
    }

    /// For each (event index, account, since, until): every tag and rule id fired on the
    /// account in a run on or after `since` and before `until`, with the first day it was.
    pub fn fired_between(
        &self,
        windows: &[(usize, &str, NaiveDate, NaiveDate)],
    ) -> Result<HashMap<usize, HashMap<String, NaiveDate>>, duckdb::Error> {
        self.conn.execute_batch("DELETE FROM window_need")?;
        let rows: Vec<String> = windows
            .iter()
            .map(|(idx, account, since, until)| {
                format!("({idx}, {}, DATE '{since}', DATE '{until}')", sql_string(account))
            })
            .collect();
        self.insert("window_need", &rows)?;
        let mut stmt = self.conn.prepare(
            "SELECT idx, code, min(as_of) FROM ( \
               SELECT w.idx, r.as_of, unnest(list_concat(o.tags, o.fired)) AS code \
               FROM window_need w \
               JOIN outcomes o ON o.account_id = w.account_id AND o.job = ? \
               JOIN runs r ON r.run_id = o.run_id AND r.published AND r.as_of >= w.since AND r.as_of < w.until \
             ) GROUP BY ALL",
        )?;
        let mut out: HashMap<usize, HashMap<String, NaiveDate>> = HashMap::new();
        let mut rows = stmt.query(params![self.job])?;
        while let Some(r) = rows.next()? {
            let idx: i64 = r.get(0)?;
            out.entry(idx as usize).or_default().insert(r.get(1)?, r.get(2)?);
        }
        Ok(out)
    }

    /// Whether any run of the job recorded what its escalations flagged.
    pub fn has_flagged(&self) -> Result<bool, duckdb::Error> {
        self.conn.query_row("SELECT count(*) > 0 FROM flagged WHERE job = ?", params![self.job], |r| r.get(0))
    }

    /// The (run, account) pairs each escalation flagged among `pairs`: output -> pairs.
    pub fn flagged(&self, pairs: &[(i64, &str)]) -> Result<HashMap<String, Vec<(i64, String)>>, duckdb::Error> {
        self.fill_need(pairs)?;
        let mut stmt = self.conn.prepare(
            "SELECT DISTINCT f.output, f.run_id, f.account_id FROM flagged f \
             JOIN need n USING (run_id, account_id) WHERE f.job = ?",
        )?;
        let mut out: HashMap<String, Vec<(i64, String)>> = HashMap::new();
        let mut rows = stmt.query(params![self.job])?;
        while let Some(r) = rows.next()? {
            out.entry(r.get(0)?).or_default().push((r.get(1)?, r.get(2)?));
        }
        Ok(out)
    }

    /// Each account's owner in the given runs.
    pub fn owners(&self, pairs: &[(i64, &str)]) -> Result<HashMap<(i64, String), String>, duckdb::Error> {
        self.fill_need(pairs)?;
        let mut stmt = self.conn.prepare(
            "SELECT a.run_id, a.account_id, a.owner FROM accounts a JOIN (SELECT DISTINCT * FROM need) n \
             USING (run_id, account_id) WHERE a.owner IS NOT NULL",
        )?;
        let mut out = HashMap::new();
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            out.insert((r.get(0)?, r.get(1)?), r.get(2)?);
        }
        Ok(out)
    }

    /// Entity column `column` for each (run, account), read from the runs' snapshots; a run
    /// whose snapshot is gone gives nothing.
    pub fn column(
        &self,
        runs_dir: &Path,
        key: &str,
        column: &str,
        pairs: &[(i64, &str)],
    ) -> Result<HashMap<(i64, String), String>, duckdb::Error> {
        let mut by_run: HashMap<i64, Vec<&str>> = HashMap::new();
        for (run, account) in pairs {
            by_run.entry(*run).or_default().push(account);
        }
        let mut out = HashMap::new();
        for (run, accounts) in by_run {
            let path = runs_dir.join(run.to_string()).join(ENTITY_SNAPSHOT);
            if !path.is_file() {
                continue;
            }
            let keys = accounts.iter().map(|a| sql_string(a)).collect::<Vec<_>>().join(", ");
            let sql = format!(
                "SELECT CAST({k} AS VARCHAR), CAST({c} AS VARCHAR) FROM read_parquet({p}) WHERE CAST({k} AS VARCHAR) IN ({keys})",
                k = quote(key),
                c = quote(column),
                p = sql_string(&path.display().to_string()),
            );
            let mut stmt = self.conn.prepare(&sql)?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let value: Option<String> = r.get(1)?;
                out.insert((run, r.get(0)?), value.unwrap_or_else(|| "(none)".into()));
            }
        }
        Ok(out)
    }
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
