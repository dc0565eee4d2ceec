//! The results store: a DuckDB file with every run, every account's outcome per rule set,
//! and what went wrong, so history is plain SQL for any DuckDB client.
//!
//! A run's outcomes are written and published in one transaction at the end of the run:
//! a run that fails leaves the last published results as they were.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use duckdb::arrow::array::AsArray;
use duckdb::arrow::array::{
    Array, ArrayRef, Date32Array, Date32Builder, Float64Array, Int64Array, ListBuilder, StringArray, StringBuilder,
};
use duckdb::arrow::datatypes::{DataType, Date32Type, Field, Float64Type, Schema as ArrowSchema};
use duckdb::arrow::record_batch::RecordBatch;
use duckdb::{Connection, params};
use rayon::prelude::*;

use crate::entity::{Entity, display_value};
use crate::rules::RuleSet;
use crate::rules::SetOutcomes;
use crate::rules::eval::{PrevOutcome, Previous, grade_since};
use crate::rules::outcomes::{Chunk, Texts};
use crate::warehouse::Reject;

const SCHEMA: &str = r#"
CREATE SEQUENCE IF NOT EXISTS run_ids START 1;
CREATE TABLE IF NOT EXISTS runs (
    run_id BIGINT PRIMARY KEY,
    job VARCHAR NOT NULL,
    as_of DATE NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    status VARCHAR NOT NULL,
    published BOOLEAN NOT NULL DEFAULT false,
    error VARCHAR,
    accounts BIGINT,
    stages JSON,
    row_counts JSON,
    warnings VARCHAR[]
);
CREATE TABLE IF NOT EXISTS outcomes (
    run_id BIGINT NOT NULL,
    job VARCHAR NOT NULL,
    as_of DATE NOT NULL,
    account_id VARCHAR NOT NULL,
    rule_set VARCHAR NOT NULL,
    score DOUBLE,
    grade VARCHAR,
    grade_since DATE,
    fired VARCHAR[],
    reasons VARCHAR[],
    tags VARCHAR[],
    errors VARCHAR[]
);
CREATE TABLE IF NOT EXISTS accounts (
    run_id BIGINT NOT NULL,
    account_id VARCHAR NOT NULL,
    name VARCHAR,
    owner VARCHAR,
    arr DOUBLE
);
CREATE TABLE IF NOT EXISTS rule_errors (
    run_id BIGINT NOT NULL,
    rule_set VARCHAR NOT NULL,
    rule_id VARCHAR NOT NULL,
    account_id VARCHAR NOT NULL,
    message VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS rejects (
    run_id BIGINT NOT NULL,
    source VARCHAR NOT NULL,
    file VARCHAR NOT NULL,
    line BIGINT,
    "column" VARCHAR,
    reason VARCHAR NOT NULL,
    raw VARCHAR
);
CREATE TABLE IF NOT EXISTS outbox (
    job VARCHAR NOT NULL,
    as_of DATE NOT NULL,
    output VARCHAR NOT NULL,
    recipient VARCHAR NOT NULL,
    run_id BIGINT,
    subject VARCHAR,
    sender VARCHAR NOT NULL,
    envelope_to VARCHAR[] NOT NULL,
    message BLOB NOT NULL,
    status VARCHAR NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error VARCHAR,
    created_at TIMESTAMPTZ NOT NULL,
    sent_at TIMESTAMPTZ,
    delivered_to VARCHAR,
    PRIMARY KEY (job, as_of, output, recipient)
);
CREATE TABLE IF NOT EXISTS escalations (
    job VARCHAR NOT NULL,
    output VARCHAR NOT NULL,
    account_id VARCHAR NOT NULL,
    owner VARCHAR,
    state VARCHAR NOT NULL,
    first_sent DATE NOT NULL,
    last_sent DATE NOT NULL,
    PRIMARY KEY (job, output, account_id)
);
CREATE OR REPLACE VIEW published_outcomes AS
    SELECT o.* FROM outcomes o JOIN runs r USING (run_id) WHERE r.published;
CREATE OR REPLACE VIEW latest_outcomes AS
    SELECT o.* FROM published_outcomes o
    WHERE o.run_id IN (SELECT max(run_id) FROM runs WHERE published GROUP BY job);
"#;

/// The store's memory limit: it only writes and reads back results, and without a limit
/// DuckDB keeps every block it wrote cached (gigabytes after a large run). 256MB ran out on
/// the second day of a 1M-account job (before previous results were streamed).
const STORE_MEMORY_LIMIT: &str = "512MB";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the store `{path}`: {message}")]
    Open { path: PathBuf, message: String },
    #[error("the store failed: {0}")]
    DuckDb(#[from] duckdb::Error),
    #[error("the store failed: {0}")]
    Arrow(#[from] duckdb::arrow::error::ArrowError),
    #[error("cannot write `{path}`: {message}")]
    Staging { path: PathBuf, message: String },
}

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
    pub stages: Option<String>,
}

/// A mail in the store's outbox: one per job, day, output and recipient, so a rerun of the
/// same day never sends the same mail twice.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OutboxMail {
    pub job: String,
    pub as_of: NaiveDate,
    pub output: String,
    pub recipient: String,
    pub run_id: Option<i64>,
    pub subject: Option<String>,
    pub sender: String,
    pub envelope_to: Vec<String>,
    #[serde(skip)]
    pub message: Vec<u8>,
    /// `pending`, `sent` or `failed` (failed mail is retried).
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub delivered_to: Option<String>,
}

/// A rendered mail to queue.
pub struct QueuedMail {
    pub output: String,
    pub recipient: String,
    pub subject: String,
    pub to: Vec<String>,
    pub message: Vec<u8>,
}

/// A score and grade as a run stored them.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StoredOutcome {
    pub score: Option<f64>,
    pub grade: Option<String>,
}

/// What a run publishes.
pub struct Publication<'a> {
    pub run_id: i64,
    pub job: &'a str,
    pub as_of: NaiveDate,
    pub entity: &'a Entity,
    pub rule_sets: &'a [RuleSet],
    pub outcomes: &'a [SetOutcomes],
    pub previous: &'a Previous,
    pub name_column: Option<&'a str>,
    pub owner_column: Option<&'a str>,
    pub arr_column: Option<&'a str>,
    /// A folder for the files the outcomes travel through on their way into the store.
    pub staging: &'a Path,
}

pub struct Store {
    conn: Connection,
}

impl Store {
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Open { path: path.to_path_buf(), message: e.to_string() })?;
        }
        let conn = Connection::open(path).map_err(|e| {
            let message = e.to_string();
            let message = if message.contains("lock") {
                format!("it is in use by another process ({})", message.lines().next().unwrap_or(""))
            } else {
                message
            };
            StoreError::Open { path: path.to_path_buf(), message }
        })?;
        conn.execute_batch(&format!("SET memory_limit = '{STORE_MEMORY_LIMIT}'"))?;
        conn.execute_batch(SCHEMA)?;
        Ok(Store { conn })
    }

    /// Lets go of the blocks DuckDB keeps cached after a large read or write (lowering the
    /// limit evicts them; they are read back from the file if needed): at 1M accounts,
    /// after reading the last run's 9M outcomes, the store held about 0.5 GB through the
    /// rest of the run.
    fn release_cache(&self) {
        let result =
            self.conn.execute_batch(&format!("SET memory_limit = '16MB'; SET memory_limit = '{STORE_MEMORY_LIMIT}'"));
        if let Err(e) = result {
            tracing::debug!(error = %e, "The store's cache stays.");
            let _ = self.conn.execute_batch(&format!("SET memory_limit = '{STORE_MEMORY_LIMIT}'"));
        }
    }

    pub fn begin_run(&self, job: &str, as_of: NaiveDate, started_at: DateTime<Utc>) -> Result<i64, StoreError> {
        let id: i64 = self.conn.query_row(
            "INSERT INTO runs (run_id, job, as_of, started_at, status) VALUES (nextval('run_ids'), ?, ?, ?, 'running') RETURNING run_id",
            params![job, as_of, started_at],
            |r| r.get(0),
        )?;
        Ok(id)
    }

    /// The latest published results of `job` for a day before `as_of`, with the scores of
    /// the last few published runs for trends.
    ///
    /// The latest run's rows are read first, then each earlier run's, oldest first, adding
    /// its scores to the accounts already there: grouping the runs' rows in DuckDB (9M
    /// groups at 1M accounts, each with its ordered scores) ran out of the store's memory,
    /// and each run's rows are contiguous in the store, so each is a short scan.
    ///
    /// Without `trends` only the latest run is read and `scores` are left empty: only rule
    /// sets that read `prev` use them (none of the shipped playbook's), and at 1M accounts
    /// they took about 1 GB and a second for each earlier run.
    pub fn previous(&self, job: &str, as_of: NaiveDate, trends: bool) -> Result<Previous, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT run_id, as_of FROM runs WHERE job = ? AND published AND as_of < ? \
             ORDER BY as_of DESC, run_id DESC LIMIT ?",
        )?;
        let recent: Vec<(i64, NaiveDate)> = stmt
            .query_map(params![job, as_of, HISTORY_RUNS], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let Some((&(latest, latest_as_of), mut earlier)) = recent.split_first() else {
            return Ok(Previous::default());
        };
        let mut previous = Previous::new(latest_as_of);
        if !trends {
            earlier = &[];
        }
        let date = |a: &Date32Array, i: usize| a.is_valid(i).then(|| a.value_as_date(i)).flatten();
        let mut stmt = self
            .conn
            .prepare("SELECT rule_set, account_id, score, grade, grade_since FROM outcomes WHERE run_id = ?")?;
        for run in std::iter::once(latest).chain(earlier.iter().rev().map(|&(run, _)| run)) {
            let started = std::time::Instant::now();
            let mut failed = None;
            // The rows of a set come in the order of the first set's, so the account after
            // the last one found is tried before a lookup.
            let (mut set, mut position) = (String::new(), 0);
            crate::warehouse::for_each_batch(&mut stmt, params![run], |batch| {
                let cast = |i: usize, to: &DataType| duckdb::arrow::compute::cast(batch.column(i), to);
                let columns = (|| -> Result<_, StoreError> {
                    Ok((
                        cast(0, &DataType::Utf8)?,
                        cast(1, &DataType::Utf8)?,
                        cast(2, &DataType::Float64)?,
                        cast(3, &DataType::Utf8)?,
                        cast(4, &DataType::Date32)?,
                    ))
                })();
                let (sets, accounts, scores, grades, since) = match columns {
                    Ok(c) => c,
                    Err(e) => {
                        failed.get_or_insert(e);
                        return;
                    }
                };
                let (sets, accounts, grades) =
                    (sets.as_string::<i32>(), accounts.as_string::<i32>(), grades.as_string::<i32>());
                let since = since.as_primitive::<Date32Type>();
                let scores = scores.as_primitive::<Float64Type>();
                for i in 0..batch.num_rows() {
                    if sets.value(i) != set {
                        set.clear();
                        set.push_str(sets.value(i));
                        position = 0;
                    }
                    let score = scores.is_valid(i).then(|| scores.value(i));
                    let Some(slot) = previous.slot(accounts.value(i), position, run == latest) else { continue };
                    position = slot + 1;
                    if run == latest {
                        let outcome = PrevOutcome {
                            as_of: latest_as_of,
                            score,
                            grade: grades.is_valid(i).then(|| grades.value(i)),
                            grade_since: date(since, i),
                            scores: &[],
                        };
                        previous.put(&set, slot, &outcome);
                    } else {
                        previous.push_score(&set, slot, score);
                    }
                }
            })?;
            if let Some(e) = failed {
                return Err(e);
            }
            tracing::debug!(run, seconds = started.elapsed().as_secs_f64(), "An earlier run's results read.");
        }
        // The latest score comes last.
        if trends {
            previous.push_own_scores();
        }
        self.release_cache();
        Ok(previous)
    }

    /// The ARR of the accounts with `grade` in `rule_set` on each of the last `limit` days
    /// `job` published before `as_of` (the day's latest run), oldest first.
    pub fn grade_arr_history(
        &self,
        job: &str,
        rule_set: &str,
        grade: &str,
        as_of: NaiveDate,
        limit: usize,
    ) -> Result<Vec<(NaiveDate, f64)>, StoreError> {
        let mut stmt = self.conn.prepare(
            "WITH days AS (SELECT as_of, max(run_id) AS run_id FROM runs WHERE job = ? AND published AND as_of < ? \
                           GROUP BY as_of ORDER BY as_of DESC LIMIT ?) \
             SELECT d.as_of, coalesce(sum(a.arr), 0)::DOUBLE FROM days d \
             LEFT JOIN outcomes o ON o.run_id = d.run_id AND o.rule_set = ? AND o.grade = ? \
             LEFT JOIN accounts a ON a.run_id = o.run_id AND a.account_id = o.account_id \
             GROUP BY d.as_of ORDER BY d.as_of",
        )?;
        let rows =
            stmt.query_map(params![job, as_of, limit as i64, rule_set, grade], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let rows = rows.collect::<Result<_, _>>()?;
        self.release_cache();
        Ok(rows)
    }

    /// Writes outcomes, account facts, rule errors and rejects, and publishes the run, in one
    /// transaction.
    pub fn publish(&self, p: &Publication, rejects: &[Reject]) -> Result<(), StoreError> {
        self.conn.execute_batch("BEGIN TRANSACTION")?;
        let result = self.write_publication(p, rejects);
        match result {
            Ok(()) => {
                self.conn.execute("UPDATE runs SET published = true WHERE run_id = ?", params![p.run_id])?;
                let started = std::time::Instant::now();
                self.conn.execute_batch("COMMIT")?;
                // Whatever the commit left to compress waits for a checkpoint, which would
                // otherwise fall on whichever later write fills the WAL: done here, its time
                // counts in the publish stage.
                self.conn.execute_batch("CHECKPOINT")?;
                self.release_cache();
                tracing::debug!(seconds = started.elapsed().as_secs_f64(), "Publication committed.");
                Ok(())
            }
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    fn write_publication(&self, p: &Publication, rejects: &[Reject]) -> Result<(), StoreError> {
        let started = std::time::Instant::now();
        // Each rule set's outcomes become one Parquet file, written on every core, which
        // DuckDB then reads in parallel with its lists as lists: appending the rows through
        // duckdb-rs converted every value on one thread and took more than twice as long.
        // The accounts' facts go the same way, beside them.
        let accounts = p.staging.join("accounts.parquet");
        let (files, staged): (Result<Vec<PathBuf>, StoreError>, Result<(), StoreError>) = rayon::join(
            || {
                (0..p.rule_sets.len())
                    .into_par_iter()
                    .map(|i| {
                        let path = p.staging.join(format!("outcomes-{i}.parquet"));
                        let (schema, batches) = outcomes_batches(p, i);
                        write_parquet_batches(&path, schema, batches, false)?;
                        Ok(path)
                    })
                    .collect()
            },
            || write_parquet(&accounts, &accounts_batch(p)?, false),
        );
        let files = files?;
        staged?;
        tracing::debug!(seconds = started.elapsed().as_secs_f64(), "Outcomes staged.");
        let list: Vec<String> = files.iter().map(|f| crate::warehouse::sql_string(&f.display().to_string())).collect();
        let inserted = self.conn.execute_batch(&format!(
            "INSERT INTO outcomes ({OUTCOME_COLUMNS}) SELECT {OUTCOME_COLUMNS} FROM read_parquet([{}])",
            list.join(", ")
        ));
        for f in &files {
            let _ = std::fs::remove_file(f);
        }
        inserted?;
        tracing::debug!(seconds = started.elapsed().as_secs_f64(), "Outcomes appended.");
        let inserted = self.conn.execute_batch(&format!(
            "INSERT INTO accounts (run_id, account_id, name, owner, arr) \
             SELECT run_id, account_id, name, owner, arr FROM read_parquet({})",
            crate::warehouse::sql_string(&accounts.display().to_string())
        ));
        let _ = std::fs::remove_file(&accounts);
        inserted?;
        tracing::debug!(seconds = started.elapsed().as_secs_f64(), "Accounts appended.");
        let mut errors = self.conn.appender("rule_errors")?;
        for (set, outcomes) in p.rule_sets.iter().zip(p.outcomes) {
            for (row, e) in outcomes.errors() {
                errors.append_row(params![p.run_id, set.name, &*e.rule, &*p.entity.keys[row], e.message])?;
            }
        }
        errors.flush()?;
        drop(errors);
        self.record_rejects(p.run_id, rejects)
    }

    /// A run by id, or the latest published run of `job` (of any job when `None`).
    pub fn find_run(&self, run: Option<i64>, job: Option<&str>) -> Result<Option<RunRecord>, StoreError> {
        let runs = self.runs(job, 10_000)?;
        Ok(match run {
            Some(id) => runs.into_iter().find(|r| r.run_id == id),
            None => runs.into_iter().find(|r| r.published),
        })
    }

    /// The stored outcome of one account for one rule set in one run.
    pub fn outcome(&self, run_id: i64, account: &str, rule_set: &str) -> Result<Option<StoredOutcome>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT score, grade FROM outcomes WHERE run_id = ? AND account_id = ? AND rule_set = ?")?;
        let mut rows = stmt.query_map(params![run_id, account, rule_set], |r| {
            Ok(StoredOutcome { score: r.get(0)?, grade: r.get(1)? })
        })?;
        Ok(rows.next().transpose()?)
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

    /// Queues a run's mail, in one statement, except mail with the same job, day, output and
    /// recipient that was already sent (a rerun of the same day). Returns how many were
    /// already sent.
    pub fn enqueue(
        &self,
        job: &str,
        as_of: NaiveDate,
        run_id: Option<i64>,
        sender: &str,
        mails: &[QueuedMail],
    ) -> Result<usize, StoreError> {
        self.conn.execute_batch(
            "CREATE OR REPLACE TEMP TABLE kw_outbox (output VARCHAR, recipient VARCHAR, subject VARCHAR, envelope_to VARCHAR, message BLOB)",
        )?;
        let mut appender = self.conn.appender("kw_outbox")?;
        for m in mails {
            let to = serde_json::to_string(&m.to).unwrap_or_else(|_| "[]".into());
            appender.append_row(params![m.output, m.recipient, m.subject, to, m.message])?;
        }
        appender.flush()?;
        drop(appender);
        let sent = "EXISTS (SELECT 1 FROM outbox o WHERE o.job = ? AND o.as_of = ? AND o.output = k.output \
                    AND o.recipient = k.recipient AND o.status = 'sent')";
        let already: i64 = self.conn.query_row(
            &format!("SELECT count(*) FROM kw_outbox k WHERE {sent}"),
            params![job, as_of],
            |r| r.get(0),
        )?;
        self.conn.execute(
            &format!(
                "INSERT INTO outbox SELECT ?, ?, output, recipient, ?, subject, ?, CAST(CAST(envelope_to AS JSON) AS VARCHAR[]), \
                 message, 'pending', 0, NULL, now(), NULL, NULL FROM kw_outbox k WHERE NOT {sent} \
                 ON CONFLICT (job, as_of, output, recipient) DO UPDATE SET run_id = excluded.run_id, subject = excluded.subject, \
                 sender = excluded.sender, envelope_to = excluded.envelope_to, message = excluded.message, status = 'pending'"
            ),
            params![job, as_of, run_id, sender, job, as_of],
        )?;
        self.conn.execute_batch("DROP TABLE kw_outbox")?;
        Ok(already as usize)
    }

    /// The (output, recipient) pairs of `job`'s mail already sent for `as_of`.
    pub fn sent_for(
        &self,
        job: &str,
        as_of: NaiveDate,
    ) -> Result<std::collections::HashSet<(String, String)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT output, recipient FROM outbox WHERE job = ? AND as_of = ? AND status = 'sent'")?;
        let rows = stmt.query_map(params![job, as_of], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records mail delivered as it was queued (to the outbox folder, where writing the same
    /// file again is harmless): sent mail is kept without its message, failed mail with it
    /// for `keepwell outbox retry`.
    pub fn record_delivered(
        &self,
        job: &str,
        as_of: NaiveDate,
        run_id: Option<i64>,
        sender: &str,
        mails: &[(QueuedMail, Result<String, String>)],
    ) -> Result<(), StoreError> {
        if mails.is_empty() {
            return Ok(());
        }
        self.conn.execute_batch(
            "CREATE OR REPLACE TEMP TABLE kw_delivered (output VARCHAR, recipient VARCHAR, subject VARCHAR, \
             envelope_to VARCHAR, message BLOB, ok BOOLEAN, detail VARCHAR)",
        )?;
        let mut appender = self.conn.appender("kw_delivered")?;
        for (m, result) in mails {
            let to = serde_json::to_string(&m.to).unwrap_or_else(|_| "[]".into());
            let (ok, detail, message): (bool, &str, &[u8]) = match result {
                Ok(path) => (true, path, &[]),
                Err(e) => (false, e, &m.message),
            };
            appender.append_row(params![m.output, m.recipient, m.subject, to, message, ok, detail])?;
        }
        appender.flush()?;
        drop(appender);
        self.conn.execute(
            "INSERT INTO outbox SELECT ?, ?, output, recipient, ?, subject, ?, CAST(CAST(envelope_to AS JSON) AS VARCHAR[]), \
             message, CASE WHEN ok THEN 'sent' ELSE 'failed' END, 1, CASE WHEN ok THEN NULL ELSE detail END, now(), \
             CASE WHEN ok THEN now() END, CASE WHEN ok THEN detail END FROM kw_delivered \
             ON CONFLICT (job, as_of, output, recipient) DO UPDATE SET run_id = excluded.run_id, subject = excluded.subject, \
             sender = excluded.sender, envelope_to = excluded.envelope_to, message = excluded.message, \
             status = excluded.status, attempts = outbox.attempts + 1, last_error = excluded.last_error, \
             sent_at = excluded.sent_at, delivered_to = excluded.delivered_to",
            params![job, as_of, run_id, sender],
        )?;
        self.conn.execute_batch("DROP TABLE kw_delivered")?;
        Ok(())
    }

    /// The next `limit` mails not yet sent, in key order after `after` (the `page_key` of the
    /// last mail of the previous page), so a large outbox is sent a page at a time.
    pub fn unsent_page(
        &self,
        job: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<OutboxMail>, StoreError> {
        let key = "concat_ws(chr(31), job, CAST(as_of AS VARCHAR), output, recipient)";
        let sql = format!(
            "SELECT job, as_of, output, recipient, run_id, subject, sender, CAST(to_json(envelope_to) AS VARCHAR), message, \
             status, attempts, last_error, sent_at, delivered_to FROM outbox \
             WHERE status <> 'sent' AND (?::VARCHAR IS NULL OR job = ?) AND (?::VARCHAR IS NULL OR {key} > ?) \
             ORDER BY {key} LIMIT ?"
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map(params![job, job, after, after, limit as i64], outbox_mail)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// The outbox, newest first, optionally of one status.
    pub fn outbox(&self, status: Option<&str>, limit: usize) -> Result<Vec<OutboxMail>, StoreError> {
        self.outbox_where("(? IS NULL OR status = ?)", status, limit)
    }

    fn outbox_where(&self, filter: &str, value: Option<&str>, limit: usize) -> Result<Vec<OutboxMail>, StoreError> {
        let order = if filter.starts_with("status <>") {
            "created_at, job, output, recipient"
        } else {
            "created_at DESC, job, output, recipient"
        };
        let sql = format!(
            "SELECT job, as_of, output, recipient, run_id, subject, sender, CAST(to_json(envelope_to) AS VARCHAR), message, status, \
             attempts, last_error, sent_at, delivered_to FROM outbox WHERE {filter} ORDER BY {order} LIMIT ?"
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map(params![value, value, limit as i64], outbox_mail)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Records the outcome of delivery attempts, all in one statement.
    pub fn mark(&self, attempts: &[(&OutboxMail, Result<String, String>)]) -> Result<(), StoreError> {
        if attempts.is_empty() {
            return Ok(());
        }
        self.conn.execute_batch(
            "CREATE OR REPLACE TEMP TABLE kw_marks (job VARCHAR, as_of DATE, output VARCHAR, recipient VARCHAR, \
             ok BOOLEAN, detail VARCHAR)",
        )?;
        let mut appender = self.conn.appender("kw_marks")?;
        for (m, result) in attempts {
            let (ok, detail) = match result {
                Ok(to) => (true, to),
                Err(e) => (false, e),
            };
            appender.append_row(params![m.job, m.as_of, m.output, m.recipient, ok, detail])?;
        }
        appender.flush()?;
        drop(appender);
        self.conn.execute_batch(
            "UPDATE outbox SET status = CASE WHEN k.ok THEN 'sent' ELSE 'failed' END, attempts = outbox.attempts + 1, \
                    sent_at = CASE WHEN k.ok THEN now() ELSE outbox.sent_at END, \
                    last_error = CASE WHEN k.ok THEN NULL ELSE k.detail END, \
                    delivered_to = CASE WHEN k.ok THEN k.detail ELSE outbox.delivered_to END \
             FROM kw_marks k WHERE outbox.job = k.job AND outbox.as_of = k.as_of AND outbox.output = k.output \
                    AND outbox.recipient = k.recipient; \
             DROP TABLE kw_marks;",
        )?;
        Ok(())
    }

    /// What each escalation of `job` last listed: (output, account) -> (row's state, day
    /// sent), the state as a [`crate::outputs::state_digest`].
    pub fn escalated(&self, job: &str) -> Result<crate::outputs::EscalatedMap, StoreError> {
        let mut stmt =
            self.conn.prepare("SELECT output, account_id, state, last_sent FROM escalations WHERE job = ?")?;
        let mut escalated = crate::outputs::EscalatedMap::default();
        let mut rows = stmt.query(params![job])?;
        while let Some(r) = rows.next()? {
            let (output, account, state): (String, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
            escalated.insert(&output, &account, crate::outputs::state_digest(&state), r.get(3)?);
        }
        self.release_cache();
        Ok(escalated)
    }

    /// Remembers what was listed today, for `remind_after`: appended to a staging table and
    /// merged in one statement (row-by-row upserts are slow in DuckDB).
    pub fn record_escalated(
        &self,
        job: &str,
        as_of: NaiveDate,
        listed: &[crate::outputs::Escalated],
        staging: &Path,
    ) -> Result<(), StoreError> {
        // Staged as Parquet like the outcomes, so DuckDB compresses the rows as it inserts
        // them (hundreds of thousands at 1M accounts).
        let mut columns = [StringBuilder::new(), StringBuilder::new(), StringBuilder::new(), StringBuilder::new()];
        for e in listed {
            let state = crate::outputs::state_text(e.state);
            for (b, v) in columns.iter_mut().zip([&*e.output, &*e.account, &*e.owner, &state]) {
                b.append_value(v);
            }
        }
        let names = ["output", "account_id", "owner", "state"];
        let schema = ArrowSchema::new(names.map(|n| Field::new(n, DataType::Utf8, false)).to_vec());
        let arrays: Vec<ArrayRef> = columns.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef).collect();
        let path = staging.join("escalated.parquet");
        write_parquet(&path, &RecordBatch::try_new(Arc::new(schema), arrays)?, false)?;
        let result = self.conn.execute_batch(&format!(
            "INSERT INTO escalations SELECT {job}, output, account_id, owner, state, DATE '{as_of}', DATE '{as_of}' \
             FROM read_parquet({path}) \
             ON CONFLICT (job, output, account_id) DO UPDATE SET owner = excluded.owner, state = excluded.state, \
             last_sent = excluded.last_sent",
            job = crate::warehouse::sql_string(job),
            path = crate::warehouse::sql_string(&path.display().to_string())
        ));
        let _ = std::fs::remove_file(&path);
        result?;
        Ok(())
    }

    /// Runs left `running` by a process that stopped mid-run become `failed`; they never
    /// published, so the last good results stand.
    pub fn recover_interrupted(&self) -> Result<usize, StoreError> {
        Ok(self.conn.execute(
            "UPDATE runs SET status = 'failed', finished_at = now(), \
             error = 'interrupted: keepwell stopped during the run; nothing was published' WHERE status = 'running'",
            [],
        )?)
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

/// Rows in a DuckDB row group.
/// How many published runs `previous` reads scores from for trends, the latest included.
const HISTORY_RUNS: i64 = 6;

const DUCKDB_ROW_GROUP: usize = 122_880;

/// The columns of `outcomes`, in the order the staged files hold them.
const OUTCOME_COLUMNS: &str =
    "run_id, job, as_of, account_id, rule_set, score, grade, grade_since, fired, reasons, tags, errors";

/// Writes `batch` to a Parquet file (Snappy-compressed when `compress`), in row groups of
/// DuckDB's own row-group size: DuckDB then writes each one compressed into the store as it
/// inserts it. With other sizes the partial row groups stayed uncompressed until the next
/// checkpoint, which then took seconds (5-8 s for 9M outcomes).
pub fn write_parquet(path: &Path, batch: &RecordBatch, compress: bool) -> Result<(), StoreError> {
    write_parquet_batches(path, batch.schema(), std::iter::once(Ok(batch.clone())), compress)
}

/// [`write_parquet`] for batches of `schema`, written as they come.
fn write_parquet_batches(
    path: &Path,
    schema: Arc<ArrowSchema>,
    batches: impl Iterator<Item = Result<RecordBatch, StoreError>>,
    compress: bool,
) -> Result<(), StoreError> {
    use parquet::arrow::ArrowWriter;
    use parquet::basic::Compression;
    use parquet::file::properties::WriterProperties;
    let failed = |message: String| StoreError::Staging { path: path.to_path_buf(), message };
    let file = std::fs::File::create(path).map_err(|e| failed(e.to_string()))?;
    let props = WriterProperties::builder()
        .set_compression(if compress { Compression::SNAPPY } else { Compression::UNCOMPRESSED })
        .set_max_row_group_row_count(Some(DUCKDB_ROW_GROUP))
        .build();
    let mut writer = ArrowWriter::try_new(file, schema, Some(props)).map_err(|e| failed(e.to_string()))?;
    for batch in batches {
        writer.write(&batch?).map_err(|e| failed(e.to_string()))?;
    }
    writer.close().map_err(|e| failed(e.to_string()))?;
    Ok(())
}

/// Each account's name, owner and ARR as the run saw them, as text and a number.
fn accounts_batch(p: &Publication) -> Result<RecordBatch, StoreError> {
    let rows = p.entity.len();
    // Chunks of accounts converted on every core.
    let ranges: Vec<(usize, usize)> = (0..rows).step_by(CONVERT).map(|f| (f, (f + CONVERT).min(rows))).collect();
    let text = |column: Option<&str>| -> StringArray {
        let parts: Vec<Vec<Option<String>>> = ranges
            .par_iter()
            .map(|&(from, to)| {
                (from..to)
                    .map(|row| column.map(|c| display_value(&p.entity.value(c, row))).filter(|s| !s.is_empty()))
                    .collect()
            })
            .collect();
        parts.into_iter().flatten().collect()
    };
    let arr: Float64Array = (0..rows)
        .into_par_iter()
        .map(|row| p.arr_column.and_then(|c| crate::rules::engine::number(&p.entity.value(c, row))))
        .collect::<Vec<_>>()
        .into_iter()
        .collect();
    let schema = ArrowSchema::new(vec![
        Field::new("run_id", DataType::Int64, false),
        Field::new("account_id", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("owner", DataType::Utf8, true),
        Field::new("arr", DataType::Float64, true),
    ]);
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(vec![p.run_id; rows])),
        Arc::new(StringArray::from_iter_values(p.entity.keys.iter().map(|k| &**k))),
        Arc::new(text(p.name_column)),
        Arc::new(text(p.owner_column)),
        Arc::new(arr),
    ];
    Ok(RecordBatch::try_new(Arc::new(schema), columns)?)
}

/// Accounts per task when converting values for the store.
const CONVERT: usize = 16 * 1024;

/// The outcomes of the `set`-th rule set, one row per account, a batch per chunk: the
/// results' own arrays with the run's columns beside them.
fn outcomes_batches(
    p: &Publication,
    set: usize,
) -> (Arc<ArrowSchema>, impl Iterator<Item = Result<RecordBatch, StoreError>>) {
    let (rule_set, outcomes) = (&p.rule_sets[set], &p.outcomes[set]);
    // The set's previous results, found once rather than for each account.
    let previous = p.previous.set(&rule_set.name);
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch");
    let days = move |d: NaiveDate| (d - epoch).num_days() as i32;
    let list = || DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
    // The lists are kept as keys into each chunk's texts: lists of a dictionary, unless a
    // chunk kept texts (more than a key holds), when every chunk is written as texts.
    let list_type = |texts: fn(&Chunk) -> &Texts| {
        let mut types = outcomes.chunks().iter().map(|c| texts(c).data_type());
        let first = types.next().unwrap_or_else(list);
        if types.all(|t| t == first) { first } else { list() }
    };
    let fired_type = list_type(|c| &c.fired);
    let reasons_type = list_type(|c| &c.reasons);
    let tags_type = list_type(|c| &c.tags);
    let schema = Arc::new(ArrowSchema::new(vec![
        Field::new("run_id", DataType::Int64, false),
        Field::new("job", DataType::Utf8, false),
        Field::new("as_of", DataType::Date32, false),
        Field::new("account_id", DataType::Utf8, false),
        Field::new("rule_set", DataType::Utf8, false),
        Field::new("score", DataType::Float64, true),
        Field::new("grade", DataType::Utf8, true),
        Field::new("grade_since", DataType::Date32, true),
        Field::new("fired", fired_type.clone(), true),
        Field::new("reasons", reasons_type.clone(), true),
        Field::new("tags", tags_type.clone(), true),
        Field::new("errors", list(), true),
    ]));
    let batches = outcomes.chunks().iter().enumerate().map({
        let schema = schema.clone();
        move |(n, chunk)| {
            let first = n * crate::rules::outcomes::CHUNK;
            let rows = chunk.len();
            let keys = &p.entity.keys[first..first + rows];
            let mut since = Date32Builder::with_capacity(rows);
            for (i, key) in keys.iter().enumerate() {
                let grade = chunk.grade.is_valid(i).then(|| chunk.grade.value(i));
                since.append_option(grade_since(grade, previous.and_then(|m| m.get(key)), p.as_of).map(days));
            }
            let mut errors = ListBuilder::new(StringBuilder::new());
            let mut next = chunk.errors().peekable();
            for i in 0..rows {
                while let Some((_, e)) = next.next_if(|(row, _)| *row == i) {
                    errors.values().append_value(format!("{}: {}", e.rule, e.message));
                }
                errors.append(true);
            }
            let list = |texts: &Texts, to: &DataType| -> Result<ArrayRef, StoreError> {
                let array: ArrayRef = Arc::new(texts.to_list_array());
                Ok(if array.data_type() == to { array } else { duckdb::arrow::compute::cast(&array, to)? })
            };
            let columns: Vec<ArrayRef> = vec![
                Arc::new(Int64Array::from(vec![p.run_id; rows])),
                Arc::new(StringArray::from_iter_values(std::iter::repeat_n(p.job, rows))),
                Arc::new(Date32Array::from(vec![days(p.as_of); rows])),
                Arc::new(StringArray::from_iter_values(keys.iter().map(|k| &**k))),
                Arc::new(StringArray::from_iter_values(std::iter::repeat_n(rule_set.name.as_str(), rows))),
                Arc::new(chunk.score.clone()),
                Arc::new(chunk.grade.clone()),
                Arc::new(since.finish()),
                list(&chunk.fired, &fired_type)?,
                list(&chunk.reasons, &reasons_type)?,
                list(&chunk.tags, &tags_type)?,
                Arc::new(errors.finish()),
            ];
            Ok(RecordBatch::try_new(schema.clone(), columns)?)
        }
    });
    (schema, batches)
}

fn outbox_mail(r: &duckdb::Row) -> duckdb::Result<OutboxMail> {
    let to: String = r.get(7)?;
    Ok(OutboxMail {
        job: r.get(0)?,
        as_of: r.get(1)?,
        output: r.get(2)?,
        recipient: r.get(3)?,
        run_id: r.get(4)?,
        subject: r.get(5)?,
        sender: r.get(6)?,
        envelope_to: serde_json::from_str(&to).unwrap_or_default(),
        message: r.get(8)?,
        status: r.get(9)?,
        attempts: r.get(10)?,
        last_error: r.get(11)?,
        sent_at: r.get(12)?,
        delivered_to: r.get(13)?,
    })
}

impl OutboxMail {
    /// Where this mail sorts in the outbox, for paging (see [`Store::unsent_page`]).
    pub fn page_key(&self) -> String {
        format!("{}\u{1f}{}\u{1f}{}\u{1f}{}", self.job, self.as_of, self.output, self.recipient)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The query `previous` replaced (it grouped in DuckDB and ran out of memory at 100k
    /// accounts with a few days of history), kept as the reference for what it returns.
    const REFERENCE: &str = "WITH recent AS (SELECT run_id, as_of FROM runs WHERE job = ? AND published AND as_of < ? \
            ORDER BY as_of DESC, run_id DESC LIMIT 6), \
         latest AS (SELECT run_id FROM recent ORDER BY as_of DESC, run_id DESC LIMIT 1), \
         history AS (SELECT o.rule_set, o.account_id, \
                            string_agg(coalesce(CAST(o.score AS VARCHAR), ''), ',' ORDER BY r.as_of, r.run_id) AS scores \
                     FROM outcomes o JOIN recent r USING (run_id) GROUP BY ALL) \
         SELECT o.rule_set, o.account_id, o.as_of, o.score, o.grade, o.grade_since, h.scores \
         FROM outcomes o JOIN latest USING (run_id) LEFT JOIN history h USING (rule_set, account_id)";

    fn reference(store: &Store, job: &str, as_of: NaiveDate) -> Vec<String> {
        let mut stmt = store.conn.prepare(REFERENCE).unwrap();
        let rows = stmt.query_map(params![job, as_of], |r| {
            let scores: Option<String> = r.get(6)?;
            let scores: Vec<Option<f64>> =
                scores.unwrap_or_default().split(',').map(|s| s.parse::<f64>().ok()).collect();
            Ok(format!(
                "{} {} {} {:?} {:?} {:?} {:?}",
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, NaiveDate>(2)?,
                r.get::<_, Option<f64>>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, Option<NaiveDate>>(5)?,
                scores
            ))
        });
        let mut rows: Vec<String> = rows.unwrap().map(Result::unwrap).collect();
        rows.sort();
        rows
    }

    fn streamed(store: &Store, job: &str, as_of: NaiveDate, trends: bool) -> Vec<String> {
        let previous = store.previous(job, as_of, trends).unwrap();
        let mut rows: Vec<String> = previous
            .iter()
            .map(|(set, account, p)| {
                format!("{set} {account} {} {:?} {:?} {:?} {:?}", p.as_of, p.score, p.grade, p.grade_since, p.scores)
            })
            .collect();
        rows.sort();
        rows
    }

    /// Over nine runs (two on one day, one unpublished, one of another job), accounts that
    /// come and go, missing scores and grades: the streamed history is the reference's, on
    /// every day, including days with no history at all.
    #[test]
    fn previous_results_match_the_grouping_query() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store.duckdb")).unwrap();
        let day = |d: u32| NaiveDate::from_ymd_opt(2026, 11, d).unwrap();
        let runs = [(1, "nightly", 2, true), (2, "nightly", 3, true), (3, "nightly", 4, false), (4, "weekly", 4, true)]
            .into_iter()
            .chain([(5, "nightly", 5, true), (6, "nightly", 5, true), (7, "nightly", 6, true)])
            .chain([(8, "nightly", 9, true), (9, "nightly", 10, true), (10, "nightly", 11, true)]);
        for (run, job, d, published) in runs {
            store
                .conn
                .execute(
                    "INSERT INTO runs (run_id, job, as_of, started_at, status, published) VALUES (?, ?, ?, now(), 'succeeded', ?)",
                    params![run, job, day(d), published],
                )
                .unwrap();
            for account in 0..12i64 {
                // Accounts come and go: account `a` is missing from runs where `run % (a + 2) == 0`.
                if run % (account + 2) == 0 {
                    continue;
                }
                for set in ["risk", "health"] {
                    let score = (account + run) % 5 != 0;
                    let grade = (account * run) % 7 != 3;
                    store
                        .conn
                        .execute(
                            "INSERT INTO outcomes (run_id, job, as_of, account_id, rule_set, score, grade, grade_since) \
                             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            params![
                                run,
                                job,
                                day(d),
                                format!("A{account}"),
                                set,
                                score.then_some((account * 10 + run) as f64 / 4.0),
                                grade.then(|| format!("g{}", (account + run) % 3)),
                                day(1 + (account as u32 % 3)),
                            ],
                        )
                        .unwrap();
                }
            }
        }
        for d in 1..=12 {
            for job in ["nightly", "weekly"] {
                let want = reference(&store, job, day(d));
                assert_eq!(streamed(&store, job, day(d), true), want, "{job} on day {d}");
                // Without trends: the same outcomes, with no scores.
                let without: Vec<String> =
                    want.iter().map(|row| format!("{} []", &row[..row.rfind(" [").unwrap()])).collect();
                assert_eq!(streamed(&store, job, day(d), false), without, "{job} on day {d}, no trends");
            }
        }
        // Run 10 lacks A0, A3 and A8: nine accounts in two sets.
        assert_eq!(streamed(&store, "nightly", day(12), true).len(), 2 * 9);
    }
}
