//! A run's folder, `.keepwell/runs/<id>/`: its `run.json` for tools, the entity snapshot
//! that `explain` and `diff` read, the lists and report files, and a spill folder for the
//! warehouse and the store's staging.

use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::json;

use super::{RunError, RunReport};
use crate::entity::Entity;
use crate::store::StoreError;

/// The run's record for tools, beside the store row (schema: docs/run-artifact.md).
pub const RUN_ARTIFACT: &str = "run.json";

/// Writes `run.json`: status, timings per stage and rule set, row counts, rejects, warnings.
pub(super) fn write_artifact(path: &Path, r: &RunReport) -> std::io::Result<()> {
    let seconds = |d: &Duration| (d.as_secs_f64() * 1000.0).round() / 1000.0;
    let artifact = json!({
        "schema_version": 1,
        "run_id": r.run_id,
        "job": r.job,
        "as_of": r.as_of.to_string(),
        "status": r.status.as_str(),
        "published": r.published,
        "error": r.error,
        "started_at": r.started_at.to_rfc3339(),
        "finished_at": Utc::now().to_rfc3339(),
        "accounts": r.accounts,
        "stages": r.stages.iter().map(|(s, d)| json!({"stage": s, "seconds": seconds(d)})).collect::<Vec<_>>(),
        "rule_sets": r.rule_set_times.iter().map(|(s, d)| json!({"rule_set": s, "seconds": seconds(d)})).collect::<Vec<_>>(),
        "row_counts": r.row_counts.iter().map(|(s, n)| json!({"source": s, "rows": n})).collect::<Vec<_>>(),
        "rejects": r.rejects.iter().map(|x| json!({
            "source": x.source, "file": x.file, "line": x.line, "column": x.column, "reason": x.reason, "raw": x.raw
        })).collect::<Vec<_>>(),
        "account_errors": r.account_errors.iter().map(|e| json!({
            "rule_set": e.rule_set, "rule": e.rule, "account": e.account, "message": e.message
        })).collect::<Vec<_>>(),
        "warnings": r.warnings,
        "mails": r.mails,
    });
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    crate::outputs::write_whole(path, (serde_json::to_string_pretty(&artifact).unwrap_or_default() + "\n").as_bytes())
}

/// The entity rows of a run, kept beside it for `explain` and `diff`.
pub use crate::store::ENTITY_SNAPSHOT;

/// Creates the run's folder (`dry-run` for a dry run) and its spill folder inside it.
pub(super) fn create(runs: &Path, run_id: Option<i64>) -> Result<(PathBuf, PathBuf), RunError> {
    let dir = match run_id {
        Some(id) => runs.join(id.to_string()),
        None => runs.join("dry-run"),
    };
    let spill = dir.join("spill");
    for d in [&dir, &spill] {
        std::fs::create_dir_all(d).map_err(|source| RunError::Folder { path: d.clone(), source })?;
    }
    Ok((dir, spill))
}

/// Writes the entity snapshot on a thread of its own beside the rules stage, at the lowest
/// priority: it takes what the rules leave of the machine without slowing them. The run
/// waits for it before publishing.
pub(super) fn spawn_snapshot(dir: &Path, entity: &Entity) -> JoinHandle<Result<(), StoreError>> {
    let (path, batch) = (dir.join(ENTITY_SNAPSHOT), entity.batch.clone());
    std::thread::spawn(move || {
        background_priority();
        let started = Instant::now();
        let written = crate::store::write_parquet(&path, &batch, true);
        tracing::debug!(seconds = started.elapsed().as_secs_f64(), "Entity snapshot written.");
        written
    })
}

/// Waits for the snapshot [`spawn_snapshot`] writes.
pub(super) fn await_snapshot(snapshot: JoinHandle<Result<(), StoreError>>) -> Result<(), RunError> {
    let waited = Instant::now();
    snapshot.join().map_err(|_| RunError::SnapshotThread)??;
    tracing::debug!(seconds = waited.elapsed().as_secs_f64(), "Entity snapshot awaited.");
    Ok(())
}

/// Lowers the calling thread to the lowest scheduling priority (nice 19), where the system
/// allows it: its work then waits for cores the rest of the run leaves idle.
fn background_priority() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 19) {
        tracing::debug!(error = %e, "The thread's priority stays as it is.");
    }
}
