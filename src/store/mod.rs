//! The results store: a DuckDB file with every run, every account's outcome per rule set,
//! and what went wrong, so history is plain SQL for any DuckDB client.
//!
//! A run's outcomes are written and published in one transaction at the end of the run:
//! a run that fails leaves the last published results as they were.

mod calibration;
mod escalations;
mod history;
mod metrics;
mod outbox;
mod posts;
mod publish;
mod runs;
mod tasks;

pub use calibration::CalibrationRow;
pub use escalations::{Escalated, EscalatedMap, state_digest, state_text};
pub use history::StoredOutcome;
pub use outbox::{Attempt, OutboxMail, QueuedMail};
pub use posts::{PostResult, QueuedPost};
pub use publish::{Publication, write_parquet};
pub use runs::RunRecord;
pub use tasks::{TaskEvent, TaskNow, TaskRun, Tracked};

/// Each published run's accounts and feature values, in its folder under the runs folder.
pub const ENTITY_SNAPSHOT: &str = "entity.parquet";

use std::path::{Path, PathBuf};

use duckdb::Connection;

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
CREATE TABLE IF NOT EXISTS flagged (
    run_id BIGINT NOT NULL,
    job VARCHAR NOT NULL,
    output VARCHAR NOT NULL,
    account_id VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS calibration (
    run_id BIGINT NOT NULL,
    job VARCHAR NOT NULL,
    as_of DATE NOT NULL,
    horizon_days INTEGER NOT NULL,
    rule_set VARCHAR NOT NULL,
    grade VARCHAR,
    accounts BIGINT NOT NULL,
    churned BIGINT NOT NULL,
    rate DOUBLE,
    low DOUBLE,
    high DOUBLE,
    auc DOUBLE,
    top_decile_lift DOUBLE
);
CREATE TABLE IF NOT EXISTS metrics (
    run_id BIGINT NOT NULL,
    job VARCHAR NOT NULL,
    as_of DATE NOT NULL,
    metric VARCHAR NOT NULL,
    segment_by VARCHAR,
    segment VARCHAR,
    value DOUBLE,
    numerator DOUBLE,
    denominator DOUBLE,
    previous DOUBLE,
    alert BOOLEAN NOT NULL
);
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS channel VARCHAR;
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS next_attempt TIMESTAMPTZ;
CREATE TABLE IF NOT EXISTS tasks (
    task_id VARCHAR NOT NULL,
    seq INTEGER NOT NULL,
    job VARCHAR NOT NULL,
    output VARCHAR NOT NULL,
    account_id VARCHAR NOT NULL,
    rule_set VARCHAR NOT NULL,
    reason VARCHAR NOT NULL,
    event VARCHAR NOT NULL,
    as_of DATE NOT NULL,
    run_id BIGINT,
    opened_on DATE NOT NULL,
    owner VARCHAR,
    grade VARCHAR,
    state VARCHAR NOT NULL,
    detail JSON,
    recorded_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS task_state (
    task_id VARCHAR NOT NULL,
    seq INTEGER NOT NULL,
    job VARCHAR NOT NULL,
    output VARCHAR NOT NULL,
    account_id VARCHAR NOT NULL,
    rule_set VARCHAR NOT NULL,
    reason VARCHAR NOT NULL,
    event VARCHAR NOT NULL,
    as_of DATE NOT NULL,
    run_id BIGINT,
    opened_on DATE NOT NULL,
    owner VARCHAR,
    grade VARCHAR,
    state VARCHAR NOT NULL,
    detail JSON,
    recorded_at TIMESTAMPTZ NOT NULL
);
CREATE OR REPLACE VIEW open_tasks AS SELECT * FROM task_state WHERE event <> 'closed';
CREATE OR REPLACE VIEW published_metrics AS
    SELECT m.* FROM metrics m JOIN runs r USING (run_id) WHERE r.published;
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
        let store = Store { conn };
        // Holding the store's lock, no other process is running a job on it: a run still
        // marked running was stopped (killed, or the machine went down) and never finished.
        let interrupted = store.recover_interrupted()?;
        if interrupted > 0 {
            tracing::warn!(runs = interrupted, "Runs left running by a process that stopped are marked failed.");
        }
        Ok(store)
    }

    /// The store opened only to read (`validate` replaying history): no schema is created
    /// and nothing is recovered, and a run may hold it at the same time.
    pub fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        let open = |e: duckdb::Error| StoreError::Open { path: path.to_path_buf(), message: e.to_string() };
        let config = duckdb::Config::default().access_mode(duckdb::AccessMode::ReadOnly).map_err(open)?;
        let conn = Connection::open_with_flags(path, config).map_err(open)?;
        conn.execute_batch(&format!("SET memory_limit = '{STORE_MEMORY_LIMIT}'"))?;
        Ok(Store { conn })
    }

    /// Runs `work` in one transaction: all of it is kept, or none when it fails.
    pub fn atomically<T, E: From<StoreError>>(&self, work: impl FnOnce(&Store) -> Result<T, E>) -> Result<T, E> {
        self.conn.execute_batch("BEGIN TRANSACTION").map_err(StoreError::from)?;
        match work(self) {
            Ok(v) => {
                self.conn.execute_batch("COMMIT").map_err(StoreError::from)?;
                // Never inside the transaction: a limit DuckDB cannot meet fails the statement,
                // and a failed statement aborts the transaction it is in.
                self.release_cache();
                Ok(v)
            }
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    /// Another connection to the store, for readers in the same process (`validation`).
    pub fn connection(&self) -> Result<Connection, StoreError> {
        Ok(self.conn.try_clone()?)
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
}
