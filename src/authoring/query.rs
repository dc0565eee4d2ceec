//! `keepwell query`: read-only SQL over the store, with the runs' entity snapshots as views:
//! `entity` (one run's accounts and feature values) and `entities` (every run's, with its
//! `run_id`), so feature values have a history in SQL too.
//!
//! Three locks keep it read-only: the store is opened read-only, only one statement that
//! reads (`SELECT`, `WITH`, `FROM`, `DESCRIBE`, `SHOW`, `SUMMARIZE`, `VALUES`, `TABLE`,
//! `PIVOT`) is taken, and no file but the snapshots can be read or written.

use std::path::{Path, PathBuf};

use duckdb::arrow::array::{Array, AsArray};
use duckdb::arrow::datatypes::DataType;
use duckdb::arrow::record_batch::RecordBatch;
use duckdb::{AccessMode, Config, Connection};

use crate::config::project::Project;
use crate::run::ENTITY_SNAPSHOT;

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(
        "keepwell query only reads: `{0}` would change something (the store is changed only by runs; \
         to keep a result, `--format csv > file.csv`)"
    )]
    Write(String),
    #[error("there is no store yet at `{0}`: run a job first")]
    NoStore(String),
    #[error("cannot open the store `{0}`: {1}")]
    Open(String, String),
    #[error("run {0} has no entity snapshot (it was not published, or its folder was removed)")]
    NoSnapshot(i64),
    #[error("{0}")]
    Sql(String),
}

/// A query's result: column names and each row's cells as text (`None` for NULL), with
/// whether each column is a number or a boolean (for JSON).
#[derive(Debug, Default)]
pub struct Table {
    pub columns: Vec<String>,
    pub kinds: Vec<Kind>,
    pub rows: Vec<Vec<Option<String>>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Number,
    Bool,
    Text,
}

/// Statements that only read (not `EXPLAIN`: `EXPLAIN ANALYZE` runs what it explains).
const READING: [&str; 10] =
    ["SELECT", "WITH", "FROM", "DESCRIBE", "SHOW", "SUMMARIZE", "VALUES", "TABLE", "PIVOT", "UNPIVOT"];

/// Runs `sql` over the store of `project`; `entity` is run `run`'s snapshot (default: the
/// latest published run's).
pub fn query(project: &Project, sql: &str, run: Option<i64>) -> Result<Table, QueryError> {
    let first = first_keyword(sql);
    if !READING.contains(&first.as_str()) {
        return Err(QueryError::Write(if first.is_empty() { sql.trim().to_string() } else { first }));
    }
    if !project.store.is_file() {
        return Err(QueryError::NoStore(project.display(&project.store)));
    }
    let config = Config::default()
        .access_mode(AccessMode::ReadOnly)
        .map_err(|e| QueryError::Open(project.display(&project.store), e.to_string()))?;
    let conn = Connection::open_with_flags(&project.store, config).map_err(|e| {
        let message = e.to_string();
        let message = if message.contains("lock") {
            "a job is running on it; try again when it has finished".to_string()
        } else {
            message.lines().next().unwrap_or_default().to_string()
        };
        QueryError::Open(project.display(&project.store), message)
    })?;
    let sql_error = |e: duckdb::Error| QueryError::Sql(e.to_string());
    let snapshots = snapshots(&conn, &project.runs).map_err(sql_error)?;
    let chosen = match run {
        Some(id) => Some(snapshots.iter().find(|(r, _)| *r == id).ok_or(QueryError::NoSnapshot(id))?),
        None => snapshots.last(),
    };
    // Only the snapshots may be read, and nothing written anywhere; then the settings lock.
    let allowed: Vec<String> = snapshots.iter().map(|(_, p)| literal(&p.display().to_string())).collect();
    conn.execute_batch(&format!("SET allowed_paths = [{}]", allowed.join(", "))).map_err(sql_error)?;
    if let Some((_, path)) = chosen {
        conn.execute_batch(&format!(
            "CREATE TEMP VIEW entity AS SELECT * FROM read_parquet({})",
            literal(&path.display().to_string())
        ))
        .map_err(sql_error)?;
        conn.execute_batch(&format!(
            "CREATE TEMP VIEW entities AS SELECT CAST(regexp_extract(filename, '([0-9]+)/{ENTITY_SNAPSHOT}$', 1) AS BIGINT) \
             AS run_id, * EXCLUDE (filename) FROM read_parquet([{}], union_by_name = true, filename = true)",
            allowed.join(", ")
        ))
        .map_err(sql_error)?;
    }
    conn.execute_batch("SET enable_external_access = false; SET lock_configuration = true").map_err(sql_error)?;
    let mut stmt = conn.prepare(sql).map_err(|e| {
        let message = e.to_string();
        if message.contains("read-only mode") {
            QueryError::Write(message.split('"').nth(1).unwrap_or(&first).to_string())
        } else if chosen.is_none() && (message.contains("entity") || message.contains("entities")) {
            QueryError::Sql(format!(
                "{message}\n(no run has an entity snapshot yet: `entity` and `entities` need a published run)"
            ))
        } else {
            QueryError::Sql(message)
        }
    })?;
    let batches: Vec<RecordBatch> = stmt
        .query_arrow([])
        .map_err(|e| {
            let message = e.to_string();
            match message.contains("read-only mode") {
                true => QueryError::Write(message.split('"').nth(1).unwrap_or(&first).to_string()),
                false => QueryError::Sql(message),
            }
        })?
        .collect();
    Ok(table(&stmt, &batches))
}

/// Every published run whose snapshot is on disk, by run id.
fn snapshots(conn: &Connection, runs_dir: &Path) -> duckdb::Result<Vec<(i64, PathBuf)>> {
    let mut stmt = conn.prepare("SELECT run_id FROM runs WHERE published ORDER BY run_id")?;
    let ids = stmt.query_map([], |r| r.get::<_, i64>(0))?.collect::<Result<Vec<_>, _>>()?;
    Ok(ids
        .into_iter()
        .map(|id| (id, runs_dir.join(id.to_string()).join(ENTITY_SNAPSHOT)))
        .filter(|(_, p)| p.is_file())
        .collect())
}

fn table(stmt: &duckdb::Statement, batches: &[RecordBatch]) -> Table {
    let schema = match batches.first() {
        Some(b) => b.schema(),
        None => stmt.schema(),
    };
    let kinds = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Boolean => Kind::Bool,
            t if t.is_numeric() => Kind::Number,
            _ => Kind::Text,
        })
        .collect();
    let mut rows = Vec::new();
    for batch in batches {
        for r in 0..batch.num_rows() {
            rows.push(batch.columns().iter().map(|c| cell(c, r)).collect());
        }
    }
    Table { columns: schema.fields().iter().map(|f| f.name().clone()).collect(), kinds, rows }
}

fn cell(array: &duckdb::arrow::array::ArrayRef, row: usize) -> Option<String> {
    if array.is_null(row) {
        return None;
    }
    match array.data_type() {
        DataType::Utf8 => return Some(array.as_string::<i32>().value(row).to_string()),
        // As DuckDB writes them: `2026-11-23 14:05:00`.
        DataType::Timestamp(..) => return Some(crate::entity::display_value(&crate::entity::cell(array, row))),
        _ => {}
    }
    duckdb::arrow::util::display::array_value_to_string(array, row).ok()
}

/// The first word of the SQL, past comments and brackets, in capitals.
fn first_keyword(sql: &str) -> String {
    let mut rest = sql.trim_start();
    loop {
        if let Some(r) = rest.strip_prefix("--") {
            rest = r.split_once('\n').map_or("", |(_, r)| r).trim_start();
        } else if let Some(r) = rest.strip_prefix("/*") {
            rest = r.split_once("*/").map_or("", |(_, r)| r).trim_start();
        } else if let Some(r) = rest.strip_prefix('(') {
            rest = r.trim_start();
        } else {
            break;
        }
    }
    rest.split(|c: char| !c.is_ascii_alphabetic()).next().unwrap_or("").to_ascii_uppercase()
}

fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_first_keyword_is_found_past_comments() {
        let cases = [
            ("select 1", "SELECT"),
            ("  -- a note\n  with x as (select 1) select * from x", "WITH"),
            ("/* c */ (SELECT 1)", "SELECT"),
            ("delete from runs", "DELETE"),
            ("", ""),
        ];
        for (sql, word) in cases {
            assert_eq!(super::first_keyword(sql), word, "{sql}");
        }
    }
}
