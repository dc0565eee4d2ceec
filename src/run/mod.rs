//! One run of a job, stage by stage: load, features, rules, publish, outputs, delivery.
//!
//! Configuration problems stop a run before it starts (and before it is recorded). Once
//! started, every outcome is recorded in the store: a failure leaves the previous published
//! results untouched, and errors on single accounts degrade the run instead of failing it.

mod calibrate;
mod folder;
pub mod plan;
mod posts;
mod stages;
mod watchdog;

pub use folder::{ENTITY_SNAPSHOT, RUN_ARTIFACT};

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{NaiveDate, Utc};
use serde_json::json;

use crate::config::diagnostic::Diagnostic;
use crate::config::diagnostic::Diagnostics;
use crate::config::project::Project;
use crate::mail::DeliveryError;
use crate::outputs::OutputError;
use crate::rules::RuleSetSources;
use crate::run::plan::Plan;
use crate::store::{Store, StoreError};
use crate::warehouse::{PrepareError, Reject, WarehouseError};

#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    pub as_of: NaiveDate,
    /// Evaluate everything, but record nothing and send nothing.
    pub dry_run: bool,
    /// Record results but write and send no mail: for backfilling history.
    pub no_mail: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Succeeded,
    /// Published, but some accounts, rules or mails failed.
    Degraded,
    Failed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Succeeded => "succeeded",
            RunStatus::Degraded => "degraded",
            RunStatus::Failed => "failed",
        }
    }
}

/// A rule that failed for one account.
#[derive(Debug, Clone)]
pub struct AccountError {
    pub rule_set: String,
    pub rule: String,
    pub account: String,
    pub message: String,
}

/// A tasks output's events in one run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TaskCounts {
    pub output: String,
    pub opened: usize,
    pub updated: usize,
    pub closed: usize,
    /// Not tracked: the day is before this output's last events, of this day.
    pub behind: Option<NaiveDate>,
}

#[derive(Debug, Clone)]
pub struct RunReport {
    pub job: String,
    pub run_id: Option<i64>,
    pub as_of: NaiveDate,
    pub status: RunStatus,
    pub error: Option<String>,
    pub accounts: usize,
    pub stages: Vec<(Stage, Duration)>,
    pub rule_set_times: Vec<(String, Duration)>,
    pub started_at: chrono::DateTime<Utc>,
    pub row_counts: Vec<(String, u64)>,
    pub rejects: Vec<Reject>,
    pub account_errors: Vec<AccountError>,
    pub warnings: Vec<String>,
    pub mails: Vec<String>,
    /// Mail of this job and day sent by an earlier run, not sent again.
    pub mails_already_sent: usize,
    /// Whether the run's results were published (a run can fail after publishing, while
    /// mailing).
    pub published: bool,
    /// On a dry run: the mail the run would send.
    pub preview: Vec<crate::outputs::Mail>,
    /// On a dry run: what the alert channels would carry, on or off.
    pub preview_posts: Vec<crate::outputs::Post>,
    /// Where each alert channel's post went.
    pub posts: Vec<String>,
    /// Per tasks output: the events this run made.
    pub tasks: Vec<TaskCounts>,
    pub files: Vec<PathBuf>,
    pub store: PathBuf,
}

/// Runs a job. `Err` means the job or rule files are wrong and nothing ran.
pub fn run(project: &Project, job_path: &Path, options: RunOptions) -> Result<RunReport, Diagnostics> {
    run_with_progress(project, job_path, options, &|_| {})
}

/// [`run`], calling `progress` as each stage starts (for a progress display).
pub fn run_with_progress(
    project: &Project,
    job_path: &Path,
    options: RunOptions,
    progress: &dyn Fn(&str),
) -> Result<RunReport, Diagnostics> {
    let (rules, diags) = RuleSetSources::load(&project.root, &project.rules_dir());
    if diags.has_errors() {
        return Err(diags);
    }
    let plan = Plan::compile(project, job_path, &rules, options.as_of)?;
    let mut report = RunReport {
        job: plan.job.name.clone(),
        run_id: None,
        as_of: options.as_of,
        status: RunStatus::Failed,
        error: None,
        accounts: 0,
        stages: Vec::new(),
        rule_set_times: Vec::new(),
        started_at: Utc::now(),
        row_counts: Vec::new(),
        rejects: Vec::new(),
        account_errors: Vec::new(),
        warnings: Vec::new(),
        mails: Vec::new(),
        mails_already_sent: 0,
        published: false,
        preview: Vec::new(),
        preview_posts: Vec::new(),
        posts: Vec::new(),
        tasks: Vec::new(),
        files: Vec::new(),
        store: project.store.clone(),
    };
    let store = match Store::open(&project.store) {
        Ok(s) => s,
        Err(e) => {
            report.error = Some(e.to_string());
            return Ok(report);
        }
    };
    if !options.dry_run {
        match store.begin_run(&plan.job.name, options.as_of, Utc::now()) {
            Ok(id) => report.run_id = Some(id),
            Err(e) => {
                report.error = Some(e.to_string());
                return Ok(report);
            }
        }
    }
    tracing::info!(job = %plan.job.name, run_id = ?report.run_id, as_of = %options.as_of, "Run started.");
    let result = stages::execute(project, &plan, &store, options, &mut report, progress);
    report.status = match result {
        Err(failed) => {
            tracing::debug!(stage = %failed.stage, error = ?failed.source, "A stage failed.");
            report.error = Some(failed.to_string());
            RunStatus::Failed
        }
        Ok(()) if !report.account_errors.is_empty() || !report.warnings.is_empty() => RunStatus::Degraded,
        Ok(()) => RunStatus::Succeeded,
    };
    if let Some(run_id) = report.run_id {
        let stages: serde_json::Map<String, serde_json::Value> =
            report.stages.iter().map(|(s, d)| (s.to_string(), json!(d.as_secs_f64()))).collect();
        let counts: serde_json::Map<String, serde_json::Value> =
            report.row_counts.iter().map(|(s, n)| (s.clone(), json!(n))).collect();
        let finished = store.finish_run(
            run_id,
            report.status.as_str(),
            report.error.as_deref(),
            Some(report.accounts),
            &serde_json::Value::Object(stages),
            &serde_json::Value::Object(counts),
            &report.warnings,
        );
        if let Err(e) = finished {
            report.status = RunStatus::Failed;
            report.error = Some(e.to_string());
        }
        if report.status == RunStatus::Failed && !report.rejects.is_empty() {
            let _ = store.record_rejects(run_id, &report.rejects);
        }
    }
    if let Some(run_id) = report.run_id {
        let path = project.runs.join(run_id.to_string()).join(RUN_ARTIFACT);
        if let Err(e) = folder::write_artifact(&path, &report) {
            tracing::warn!(path = %path.display(), error = %e, "Could not write the run artifact.");
        }
    }
    match report.status {
        RunStatus::Failed => {
            tracing::error!(job = %report.job, run_id = ?report.run_id, error = report.error.as_deref().unwrap_or(""), "Run failed.")
        }
        status => {
            tracing::info!(job = %report.job, run_id = ?report.run_id, status = status.as_str(), accounts = report.accounts, "Run finished.")
        }
    }
    Ok(report)
}

/// The stages of a run, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Load,
    Features,
    Rules,
    Metrics,
    Publish,
    Outputs,
    Deliver,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Load => "load",
            Stage::Features => "features",
            Stage::Rules => "rules",
            Stage::Metrics => "metrics",
            Stage::Publish => "publish",
            Stage::Outputs => "outputs",
            Stage::Deliver => "deliver",
        }
    }

    /// What the stage is doing, for a progress display.
    pub fn doing(self) -> &'static str {
        match self {
            Stage::Load => "loading sources",
            Stage::Features => "building features",
            Stage::Rules => "evaluating rules",
            Stage::Metrics => "computing metrics",
            Stage::Publish => "publishing results",
            Stage::Outputs => "writing lists and mail",
            Stage::Deliver => "delivering mail",
        }
    }

    /// Wraps an error of this stage.
    fn failed(self) -> impl FnOnce(RunError) -> StageFailed {
        move |source| StageFailed { stage: self, source: Box::new(source) }
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A started run that failed: the stage, and why. It reads as its cause.
#[derive(Debug, thiserror::Error)]
#[error("{source}")]
pub struct StageFailed {
    pub stage: Stage,
    pub source: Box<RunError>,
}

/// Why a stage failed, with the stage's own error as the source.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot create `{}`: {source}", path.display())]
    Folder { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Prepare(#[from] PrepareError),
    /// A feature view failed: its message and where it is.
    #[error("{} ({})", .0.message, .0.location())]
    Feature(Box<Diagnostic>),
    #[error(transparent)]
    Warehouse(WarehouseError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Metrics(#[from] crate::metrics::MetricError),
    #[error(transparent)]
    Imported(#[from] crate::rules::imported::ImportError),
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
    #[error("mail.from `{from}` is not an address: {source}")]
    Sender { from: String, source: lettre::address::AddressError },
    #[error("writing the entity snapshot failed")]
    SnapshotThread,
    #[error(
        "source `{source_name}`: {rows} rows, {:.0}% fewer than the {last} of the last published run \
         (max_drop: {:.0}%), so the run stopped before publishing anything",
        100.0 * (1.0 - *rows as f64 / *last as f64),
        100.0 * max_drop
    )]
    Drop { source_name: String, rows: u64, last: u64, max_drop: f64 },
    #[error("the run took longer than its time budget of {} (`timeout:` in the job) and was stopped", crate::warehouse::freshness::human(*budget))]
    Timeout { budget: std::time::Duration },
}

impl From<WarehouseError> for RunError {
    fn from(e: WarehouseError) -> Self {
        match e {
            WarehouseError::Feature(d) => RunError::Feature(d),
            e => RunError::Warehouse(e),
        }
    }
}
