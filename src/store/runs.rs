//! The `runs` table: a run begins, finishes (published or not) and is listed.

use chrono::{DateTime, NaiveDate, Utc};
use duckdb::{OptionalExt, params};

use super::{Store, StoreError};

/// The runs this process has begun and not finished: never taken for interrupted ones.
static OURS: std::sync::Mutex<Vec<i64>> = std::sync::Mutex::new(Vec::new());
use crate::warehouse::Reject;

/// A row of `runs`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunRecord {
    pub run_id: i64,
    pub job: String,
    pub as_of: NaiveDate,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub status: String,
    pub published: bool,
    pub error: Option<String>,
    pub accounts: Option<i64>,
    /// Seconds per stage, as stored (JSON text); written out as a JSON object.
    #[serde(serialize_with = "json_text")]
    pub stages: Option<String>,
}

/// Stored JSON text written as the JSON it holds (`null` when it holds none).
fn json_text<S: serde::Serializer>(text: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    use serde::Serialize;
    let value: serde_json::Value =
        text.as_deref().and_then(|t| serde_json::from_str(t).ok()).unwrap_or(serde_json::Value::Null);
    value.serialize(s)
}

impl Store {
    pub fn begin_run(&self, job: &str, as_of: NaiveDate, started_at: DateTime<Utc>) -> Result<i64, StoreError> {
        let id: i64 = self.conn.query_row(
            "INSERT INTO runs (run_id, job, as_of, started_at, status) VALUES (nextval('run_ids'), ?, ?, ?, 'running') RETURNING run_id",
            params![job, as_of, started_at],
            |r| r.get(0),
        )?;
        if let Ok(mut ours) = OURS.lock() {
            ours.push(id);
        }
        Ok(id)
    }

    /// A run by id, or the latest published run of `job` (of any job when `None`).
    pub fn find_run(&self, run: Option<i64>, job: Option<&str>) -> Result<Option<RunRecord>, StoreError> {
        let runs = self.runs(job, 10_000)?;
        Ok(match run {
            Some(id) => runs.into_iter().find(|r| r.run_id == id),
            None => runs.into_iter().find(|r| r.published),
        })
    }

    pub fn record_rejects(&self, run_id: i64, rejects: &[Reject]) -> Result<(), StoreError> {
        let mut appender = self.conn.appender("rejects")?;
        for r in rejects {
            appender.append_row(params![
                run_id,
                r.source,
                r.file,
                r.line.map(|l| l as i64),
                r.column,
                r.reason,
                r.raw
            ])?;
        }
        appender.flush()?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub fn finish_run(
        &self,
        run_id: i64,
        status: &str,
        error: Option<&str>,
        accounts: Option<usize>,
        stages: &serde_json::Value,
        row_counts: &serde_json::Value,
        warnings: &[String],
    ) -> Result<(), StoreError> {
        if let Ok(mut ours) = OURS.lock() {
            ours.retain(|&id| id != run_id);
        }
        let warnings = serde_json::to_string(warnings).unwrap_or_else(|_| "[]".into());
        self.conn.execute(
            "UPDATE runs SET finished_at = now(), status = ?, error = ?, accounts = ?, stages = ?, row_counts = ?, \
             warnings = CAST(CAST(? AS JSON) AS VARCHAR[]) WHERE run_id = ?",
            params![
                status,
                error,
                accounts.map(|a| a as i64),
                stages.to_string(),
                row_counts.to_string(),
                warnings,
                run_id
            ],
        )?;
        Ok(())
    }

    /// Runs left `running` by a process that stopped mid-run become `failed`; they never
    /// published, so the last good results stand. The store's file lock keeps other
    /// processes out while this one holds it, so a running run is either this process's own
    /// (the daemon runs several jobs at once) or a stopped one's.
    pub fn recover_interrupted(&self) -> Result<usize, StoreError> {
        let ours: Vec<String> = OURS.lock().map(|o| o.iter().map(i64::to_string).collect()).unwrap_or_default();
        let not_ours =
            if ours.is_empty() { String::new() } else { format!(" AND run_id NOT IN ({})", ours.join(", ")) };
        Ok(self.conn.execute(
            &format!(
                "UPDATE runs SET status = 'failed', finished_at = now(), \
                 error = CASE WHEN published \
                     THEN 'interrupted: keepwell stopped after publishing the results, while mailing' \
                     ELSE 'interrupted: keepwell stopped during the run; nothing was published' END \
                 WHERE status = 'running'{not_ours}"
            ),
            [],
        )?)
    }

    /// Rows per source in the job's latest published run up to `as_of`, for a run to tell
    /// an extract much smaller than the last good one.
    pub fn last_row_counts(
        &self,
        job: &str,
        as_of: NaiveDate,
    ) -> Result<std::collections::HashMap<String, u64>, StoreError> {
        let counts: Option<String> = self
            .conn
            .query_row(
                "SELECT CAST(row_counts AS VARCHAR) FROM runs WHERE job = ? AND published AND as_of <= ? \
                 ORDER BY as_of DESC, run_id DESC LIMIT 1",
                params![job, as_of],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        Ok(counts.and_then(|c| serde_json::from_str(&c).ok()).unwrap_or_default())
    }

    /// When the job's latest run started, whatever its outcome.
    pub fn last_run_started(&self, job: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(self.conn.query_row("SELECT max(started_at) FROM runs WHERE job = ?", params![job], |r| r.get(0))?)
    }

    pub fn runs(&self, job: Option<&str>, limit: usize) -> Result<Vec<RunRecord>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT run_id, job, as_of, started_at, finished_at, status, published, error, accounts, CAST(stages AS VARCHAR) \
             FROM runs WHERE ? IS NULL OR job = ? ORDER BY run_id DESC LIMIT ?",
        )?;
        let rows = stmt.query_map(params![job, job, limit as i64], |r| {
            Ok(RunRecord {
                run_id: r.get(0)?,
                job: r.get(1)?,
                as_of: r.get(2)?,
                started_at: r.get(3)?,
                finished_at: r.get(4)?,
                status: r.get(5)?,
                published: r.get(6)?,
                error: r.get(7)?,
                accounts: r.get(8)?,
                stages: r.get(9)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }
}
