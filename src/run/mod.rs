//! One run of a job, stage by stage: load, features, rules, publish, outputs, delivery.
//!
//! Configuration problems stop a run before it starts (and before it is recorded). Once
//! started, every outcome is recorded in the store: a failure leaves the previous published
//! results untouched, and errors on single accounts degrade the run instead of failing it.

pub mod plan;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{NaiveDate, Utc};
use serde_json::json;

use crate::config::diagnostic::Diagnostics;
use crate::config::project::Project;
use crate::mail::{Delivery, Transport};
use crate::outputs::{RunView, render};
use crate::rules::RuleSetSources;
use crate::rules::eval::Evaluator;
use crate::run::plan::Plan;
use crate::store::{Publication, Store};
use crate::warehouse::{self, Reject, Warehouse, WarehouseError};

/// The run's record for tools, beside the store row (schema: docs/run-artifact.md).
pub const RUN_ARTIFACT: &str = "run.json";

/// Writes `run.json`: status, timings per stage and rule set, row counts, rejects, warnings.
fn write_artifact(path: &Path, r: &RunReport) -> std::io::Result<()> {
    let seconds = |d: &Duration| (d.as_secs_f64() * 1000.0).round() / 1000.0;
    let artifact = json!({
        "schema_version": 1,
        "run_id": r.run_id,
        "job": r.job,
        "as_of": r.as_of.to_string(),
        "status": r.status.as_str(),
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
    std::fs::write(path, serde_json::to_string_pretty(&artifact).unwrap_or_default() + "\n")
}

/// The entity rows of a run, kept beside it for `explain` and `diff`.
pub const ENTITY_SNAPSHOT: &str = "entity.parquet";

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

#[derive(Debug, Clone)]
pub struct RunReport {
    pub job: String,
    pub run_id: Option<i64>,
    pub as_of: NaiveDate,
    pub status: RunStatus,
    pub error: Option<String>,
    pub accounts: usize,
    pub stages: Vec<(&'static str, Duration)>,
    pub rule_set_times: Vec<(String, Duration)>,
    pub started_at: chrono::DateTime<Utc>,
    pub row_counts: Vec<(String, u64)>,
    pub rejects: Vec<Reject>,
    pub account_errors: Vec<AccountError>,
    pub warnings: Vec<String>,
    pub mails: Vec<String>,
    /// Mail of this job and day sent by an earlier run, not sent again.
    pub mails_already_sent: usize,
    /// On a dry run: the mail the run would send.
    pub preview: Vec<crate::outputs::Mail>,
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
        preview: Vec::new(),
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
    let result = execute(project, &plan, &store, options, &mut report, progress);
    report.status = match result {
        Err(message) => {
            report.error = Some(message);
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
        if let Err(e) = write_artifact(&path, &report) {
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

fn execute(
    project: &Project,
    plan: &Plan,
    store: &Store,
    options: RunOptions,
    report: &mut RunReport,
    progress: &dyn Fn(&str),
) -> Result<(), String> {
    let run_dir = match report.run_id {
        Some(id) => project.runs.join(id.to_string()),
        None => project.runs.join("dry-run"),
    };
    std::fs::create_dir_all(&run_dir).map_err(|e| format!("cannot create `{}`: {e}", run_dir.display()))?;

    progress("loading sources");
    let started = Instant::now();
    let spill = run_dir.join("spill");
    std::fs::create_dir_all(&spill).map_err(|e| format!("cannot create `{}`: {e}", spill.display()))?;
    let mut found = warehouse::Found::default();
    let loaded = warehouse::load(
        &project.warehouse,
        &plan.job,
        options.as_of,
        Some(&spill),
        warehouse::Sources::Loaded,
        &mut found,
    );
    report.warnings.append(&mut found.warnings);
    report.row_counts.append(&mut found.row_counts);
    report.rejects.append(&mut found.rejects);
    let warehouse = loaded.map_err(|e| e.to_string())?;
    report.stages.push(("load", started.elapsed()));
    memory("load");

    progress("building features");
    let started = Instant::now();
    let entity = warehouse.build_entity(&plan.job, plan.schema.clone()).map_err(|e| match e {
        WarehouseError::Feature(d) => format!("{} ({})", d.message, d.location()),
        e => e.to_string(),
    })?;
    report.accounts = entity.len();
    tracing::debug!(seconds = started.elapsed().as_secs_f64(), "Entity read.");
    // The snapshot is written on a thread of its own beside the rules stage, at the lowest
    // priority: it takes what the rules leave of the machine without slowing them. The run
    // waits for it before publishing, in the publish stage.
    let snapshot = report.run_id.map(|_| {
        let (path, batch) = (run_dir.join(ENTITY_SNAPSHOT), entity.batch.clone());
        std::thread::spawn(move || {
            background_priority();
            let started = Instant::now();
            let written = crate::store::write_parquet(&path, &batch, true).map_err(|e| e.to_string());
            tracing::debug!(seconds = started.elapsed().as_secs_f64(), "Entity snapshot written.");
            written
        })
    });
    report.stages.push(("features", started.elapsed()));
    memory("features");
    held(&warehouse, &entity);

    progress("evaluating rules");
    let started = Instant::now();
    let previous = store.previous(&plan.job.name, options.as_of, plan.reads_prev()).map_err(|e| e.to_string())?;
    let vector =
        crate::rules::sql::Vectorise { conn: warehouse.connection(), schema: &plan.schema, lookups: &plan.lookups };
    let evaluator = Evaluator { engine: &plan.engine, templates: &plan.templates, as_of: options.as_of };
    let (outcomes, timings) = evaluator.evaluate_timed(
        &plan.rule_sets,
        &entity,
        &previous,
        // KEEPWELL_VECTORISE=off evaluates every expression in rhai: for comparing the paths.
        (std::env::var("KEEPWELL_VECTORISE").as_deref() != Ok("off")).then_some(&vector),
    );
    report.rule_set_times = plan.rule_sets.iter().map(|s| s.name.clone()).zip(timings).collect();
    for (set, results) in plan.rule_sets.iter().zip(&outcomes) {
        for (row, e) in results.errors() {
            report.account_errors.push(AccountError {
                rule_set: set.name.clone(),
                rule: e.rule.to_string(),
                account: entity.keys[row].to_string(),
                message: e.message.clone(),
            });
        }
    }
    report.stages.push(("rules", started.elapsed()));
    memory("rules");
    held(&warehouse, &entity);
    // Nothing after the rules reads the warehouse: what it holds (the entity's table, its
    // buffers) goes back to the system before the outcomes are published and mailed.
    drop(warehouse);

    if let Some(run_id) = report.run_id {
        progress("publishing results");
        let started = Instant::now();
        if let Some(snapshot) = snapshot {
            let waited = Instant::now();
            snapshot.join().map_err(|_| "writing the entity snapshot failed".to_string())??;
            tracing::debug!(seconds = waited.elapsed().as_secs_f64(), "Entity snapshot awaited.");
        }
        let publication = Publication {
            run_id,
            job: &plan.job.name,
            as_of: options.as_of,
            entity: &entity,
            rule_sets: &plan.rule_sets,
            outcomes: &outcomes,
            previous: &previous,
            name_column: plan.job.entity.name.as_deref(),
            owner_column: plan.job.entity.owner.as_deref(),
            arr_column: plan.job.entity.arr.as_deref(),
            staging: &spill,
        };
        store.publish(&publication, &report.rejects).map_err(|e| e.to_string())?;
        report.stages.push(("publish", started.elapsed()));
        memory("publish");
    }

    progress("writing lists and mail");
    let started = Instant::now();
    let escalated = store.escalated(&plan.job.name).map_err(|e| e.to_string())?;
    let mut history = std::collections::HashMap::new();
    for output in &plan.outputs {
        if let crate::outputs::Output::Summary(s) = output
            && let Some(red) = s.report.as_ref().and_then(|r| r.red.as_ref().map(|g| (g, r.history)))
        {
            let (g, runs) = red;
            let points = store
                .grade_arr_history(&plan.job.name, &g.rule_set, &g.grade, options.as_of, runs)
                .map_err(|e| e.to_string())?;
            history.insert(s.name.clone(), points);
        }
    }
    let view = RunView {
        job: &plan.job,
        run_id: report.run_id,
        as_of: options.as_of,
        entity: &entity,
        rule_sets: &plan.rule_sets,
        outcomes: &outcomes,
        engine: &plan.engine,
        templates: &plan.templates,
        rule_errors: report.account_errors.len(),
        rejects: report.rejects.len(),
        warnings: &report.warnings,
        escalated: &escalated,
        previous: &previous,
        history: &history,
    };
    // Mail goes out as it is rendered, a batch at a time, so the run never holds all of it.
    let mut preview = Vec::new();
    let mut delivery = None;
    if !options.dry_run && !options.no_mail {
        let transport = Transport::from_settings(&project.mail, &project.outbox).map_err(|e| e.to_string())?;
        let from: lettre::message::Mailbox = project
            .mail
            .from
            .parse()
            .map_err(|e| format!("mail.from `{}` is not an address: {e}", project.mail.from))?;
        delivery = Some(Delivery::start(store, transport, from, &plan.job.name, options.as_of, report.run_id)?);
    }
    let rendered = render(&view, &plan.outputs, &run_dir, &mut |mails| match delivery.as_mut() {
        Some(d) => d.send(mails),
        None if options.dry_run => {
            preview.extend(mails);
            Ok(())
        }
        None => Ok(()),
    });
    let rendered = match rendered {
        Ok(rendered) => rendered,
        Err(e) => {
            // What went out before the failure is still reported.
            if let Some(d) = delivery {
                report.mails = d.sent;
                report.warnings.extend(unsent(&d.failed));
            }
            return Err(e);
        }
    };
    report.warnings.extend(rendered.warnings);
    report.files = rendered.files;
    let delivering = delivery.as_ref().map_or(Duration::ZERO, |d| d.busy);
    report.stages.push(("outputs", started.elapsed().saturating_sub(delivering)));
    // What is left reads none of the accounts' data: it goes back before the escalations
    // are recorded (at 1M accounts about 0.75 GB, where the store's upsert needs 0.1 GB).
    drop((entity, outcomes, previous, escalated, history));
    memory("outputs");

    if options.dry_run {
        report.preview = preview;
        return Ok(());
    }
    let Some(mut delivery) = delivery else {
        return Ok(());
    };
    progress("delivering mail");
    let started = Instant::now();
    delivery.finish()?;
    report.mails = std::mem::take(&mut delivery.sent);
    report.mails_already_sent = delivery.already_sent;
    report.warnings.extend(unsent(&delivery.failed));
    tracing::debug!(seconds = delivery.busy.as_secs_f64(), mails = report.mails.len(), "Mail delivered.");
    store.record_escalated(&plan.job.name, options.as_of, &rendered.escalated, &spill).map_err(|e| e.to_string())?;
    tracing::debug!(
        seconds = started.elapsed().as_secs_f64(),
        accounts = rendered.escalated.len(),
        "Escalations recorded."
    );
    // Mail was written while outputs rendered: its time counts here.
    report.stages.push(("deliver", started.elapsed() + delivering));
    memory("deliver");
    Ok(())
}

/// The warnings for mail that could not be sent.
fn unsent(failed: &[String]) -> impl Iterator<Item = String> + '_ {
    failed.iter().map(|f| format!("mail not sent, kept in the outbox: {f}"))
}

/// Logs what the warehouse and the entity hold (debug level).
fn held(warehouse: &Warehouse, entity: &crate::entity::Entity) {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    let used: Option<i64> = warehouse
        .connection()
        .query_row("SELECT sum(memory_usage_bytes)::BIGINT FROM duckdb_memory()", [], |r| r.get(0))
        .ok();
    let entity_mb = entity.batch.get_array_memory_size() / 1_000_000;
    tracing::debug!(warehouse_mb = used.unwrap_or(0) / 1_000_000, entity_mb, "Memory held.");
}

/// Lowers the calling thread to the lowest scheduling priority (nice 19), where the system
/// allows it: its work then waits for cores the rest of the run leaves idle.
fn background_priority() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 19) {
        tracing::debug!(error = %e, "The thread's priority stays as it is.");
    }
}

/// Logs the process's resident memory at the end of a stage (debug level), from
/// /proc/self/status where there is one.
fn memory(stage: &str) {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status.lines().find(|l| l.starts_with(name)).and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
    };
    if let (Some(rss), Some(peak)) = (field("VmRSS:"), field("VmHWM:")) {
        tracing::debug!(stage, rss_mb = rss / 1024, peak_mb = peak / 1024, "Memory after the stage.");
    }
}
