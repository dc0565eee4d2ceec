//! The stages of a started run, one function each, in the order they run. Each hands the
//! next what it needs and lets go of what no later stage reads.

use std::collections::HashMap;
use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::NaiveDate;

use super::plan::Plan;
use super::watchdog::Watchdog;
use super::{AccountError, RunError, RunOptions, RunReport, Stage, StageFailed, folder};
use crate::config::project::Project;
use crate::entity::Entity;
use crate::mail::{Delivery, Transport};
use crate::metrics::Measured;
use crate::outputs::{Output, Rendered, RunView, render};
use crate::rules::SetOutcomes;
use crate::rules::eval::Evaluator;
use crate::rules::previous::Previous;
use crate::store::{Publication, Store, StoreError};
use crate::warehouse::{self, Warehouse};

/// How many earlier days a metric's trend reads: a summary shows at most its `history`.
const METRIC_HISTORY: usize = 60;

/// What every stage of one run reads.
struct Run<'a> {
    project: &'a Project,
    plan: &'a Plan,
    store: &'a Store,
    options: RunOptions,
    progress: &'a dyn Fn(&str),
    dir: PathBuf,
    spill: PathBuf,
}

/// The run's results, from the rules stage to the outputs.
struct Evaluated {
    entity: Entity,
    previous: Previous,
    outcomes: Vec<SetOutcomes>,
    metrics: Measured,
}

/// Runs every stage, recording each one's time in `report`.
pub(super) fn execute(
    project: &Project,
    plan: &Plan,
    store: &Store,
    options: RunOptions,
    report: &mut RunReport,
    progress: &dyn Fn(&str),
) -> Result<(), StageFailed> {
    plan.deadline.start(plan.job.timeout);
    let watchdog = Watchdog::start(plan.deadline.clone());
    let (dir, spill) = folder::create(&project.runs, report.run_id).map_err(Stage::Load.failed())?;
    let run = Run { project, plan, store, options, progress, dir, spill };
    let warehouse = run.timed(Stage::Load, report, |r| run.load(&watchdog, r))?;
    let (entity, snapshot) = run.timed(Stage::Features, report, |r| run.features(&warehouse, r))?;
    let mut evaluated = run.timed(Stage::Rules, report, |r| run.rules(&warehouse, entity, r))?;
    if !plan.job.metrics.is_empty() {
        evaluated.metrics = run.timed(Stage::Metrics, report, |r| run.metrics(&warehouse, &evaluated, r))?;
    }
    // Nothing after the rules reads the warehouse: what it holds (the entity's table, its
    // buffers) goes back to the system before the outcomes are published and mailed.
    watchdog.watch(None);
    drop(warehouse);
    if let (Some(run_id), Some(snapshot)) = (report.run_id, snapshot) {
        run.timed(Stage::Publish, report, |r| run.publish(run_id, snapshot, &evaluated, r))?;
    }
    let (progress, started) = (run.progress, Instant::now());
    progress(Stage::Outputs.doing());
    run.in_time().map_err(Stage::Outputs.failed())?;
    let (mut rendered, delivery) = run.outputs(evaluated, report).map_err(Stage::Outputs.failed())?;
    // The tasks compared with the store once the accounts' data is let go: at 1M accounts
    // the comparison of 0.2M keys beside it peaked 0.3 GB higher.
    let stamp = crate::outputs::Stamp { job: plan.job.name.clone(), as_of: run.options.as_of, run_id: report.run_id };
    super::posts::track_all(store, &plan.outputs, &stamp, &run.options, &mut rendered, report)
        .map_err(Stage::Outputs.failed())?;
    super::posts::queue(store, &stamp, &run.options, &mut rendered, report).map_err(Stage::Outputs.failed())?;
    let delivering = delivery.as_ref().map_or(Duration::ZERO, |d| d.busy);
    report.stages.push((Stage::Outputs, started.elapsed().saturating_sub(delivering)));
    memory(Stage::Outputs);
    if let Some(delivery) = delivery {
        progress(Stage::Deliver.doing());
        let started = Instant::now();
        run.deliver(delivery, &rendered, report).map_err(Stage::Deliver.failed())?;
        // Mail was written while outputs rendered: its time counts here.
        report.stages.push((Stage::Deliver, started.elapsed() + delivering));
        memory(Stage::Deliver);
    }
    Ok(())
}

impl Run<'_> {
    /// Runs `stage`, telling the progress display, and records its time and memory.
    fn timed<T>(
        &self,
        stage: Stage,
        report: &mut RunReport,
        work: impl FnOnce(&mut RunReport) -> Result<T, RunError>,
    ) -> Result<T, StageFailed> {
        (self.progress)(stage.doing());
        let started = Instant::now();
        // No stage starts past the deadline; one that fails past it (an interrupted query)
        // failed for want of time. The rules stop their expressions without failing, so the
        // check before publishing is what keeps a late evaluation from being published.
        self.in_time().map_err(stage.failed())?;
        let value = work(report).map_err(|e| stage.failed()(self.in_time().err().unwrap_or(e)))?;
        report.stages.push((stage, started.elapsed()));
        memory(stage);
        Ok(value)
    }

    /// `Err` once the job's time budget has run out.
    fn in_time(&self) -> Result<(), RunError> {
        match self.plan.deadline.passed() {
            true => Err(RunError::Timeout { budget: self.plan.job.timeout }),
            false => Ok(()),
        }
    }

    /// Sources loaded, checked and locked; what loading found is kept even when it fails.
    fn load(&self, watchdog: &Watchdog, report: &mut RunReport) -> Result<Warehouse, RunError> {
        let warehouse = Warehouse::open(&self.project.warehouse, Some(&self.spill))?;
        watchdog.watch(Some(warehouse.interrupt_handle()));
        if let Some(engine) = &self.plan.job.engine_results {
            // The accounts and results another engine computed stand for the sources.
            let sets: Vec<&str> = self.plan.rule_sets.iter().map(|s| s.name.as_str()).collect();
            let rows = warehouse.load_engine_results(engine, &sets)?;
            report.row_counts.push(("engine_results".into(), rows));
            warehouse.lock()?;
            warehouse.set_as_of(self.options.as_of)?;
            return Ok(warehouse);
        }
        let mut found = warehouse::Found::default();
        let filled =
            warehouse::fill(&warehouse, &self.plan.job, self.options.as_of, warehouse::Sources::Loaded, &mut found);
        report.warnings.append(&mut found.warnings);
        report.row_counts.append(&mut found.row_counts);
        report.rejects.append(&mut found.rejects);
        filled?;
        self.no_sharp_drop(&report.row_counts)?;
        Ok(warehouse)
    }

    /// Fails when a source has far fewer rows than in the last published run (its
    /// `max_drop`): a truncated export would otherwise replace good results.
    fn no_sharp_drop(&self, counts: &[(String, u64)]) -> Result<(), RunError> {
        let before = self.store.last_row_counts(&self.plan.job.name, self.options.as_of)?;
        for source in &self.plan.job.sources {
            let (Some(&last), Some(&(_, now))) =
                (before.get(&source.name), counts.iter().find(|(name, _)| *name == source.name))
            else {
                continue;
            };
            if last > 0 && (now as f64) < last as f64 * (1.0 - source.max_drop) {
                return Err(RunError::Drop {
                    source_name: source.name.clone(),
                    rows: now,
                    last,
                    max_drop: source.max_drop,
                });
            }
        }
        Ok(())
    }

    /// The entity built and read, and its snapshot started beside the rules (for a
    /// recorded run).
    #[allow(clippy::type_complexity)]
    fn features(
        &self,
        warehouse: &Warehouse,
        report: &mut RunReport,
    ) -> Result<(Entity, Option<JoinHandle<Result<(), StoreError>>>), RunError> {
        let started = Instant::now();
        let job = &self.plan.job;
        let entity = match &job.engine_results {
            Some(engine) => {
                warehouse.engine_entity(&job.entity, &self.plan.schema, &engine.path)?;
                warehouse.entity(&job.entity, self.plan.schema.clone())?
            }
            None => warehouse.build_entity(job, self.plan.schema.clone())?,
        };
        report.accounts = entity.len();
        tracing::debug!(seconds = started.elapsed().as_secs_f64(), "Entity read.");
        let snapshot = report.run_id.map(|_| folder::spawn_snapshot(&self.dir, &entity));
        held(warehouse, &entity);
        Ok((entity, snapshot))
    }

    /// Every rule set for every account, with the last published results for `prev`.
    fn rules(&self, warehouse: &Warehouse, entity: Entity, report: &mut RunReport) -> Result<Evaluated, RunError> {
        let plan = self.plan;
        let previous = self.store.previous(&plan.job.name, self.options.as_of, plan.reads_prev())?;
        let vector =
            crate::rules::sql::Vectorise { conn: warehouse.connection(), schema: &plan.schema, lookups: &plan.lookups };
        let evaluator = Evaluator { engine: &plan.engine, templates: &plan.templates, as_of: self.options.as_of };
        let (outcomes, timings) = match plan.job.engine_results.is_some() {
            true => {
                let started = Instant::now();
                let outcomes = crate::rules::imported::read(
                    warehouse.connection(),
                    &warehouse::results_table,
                    &plan.job.entity.key,
                    entity.len(),
                    &plan.rule_sets,
                    self.options.as_of,
                )?;
                (outcomes, vec![started.elapsed() / plan.rule_sets.len().max(1) as u32; plan.rule_sets.len()])
            }
            false => evaluator.evaluate_timed(
                &plan.rule_sets,
                &entity,
                &previous,
                // KEEPWELL_VECTORISE=off evaluates every expression in rhai: for comparing the paths.
                (std::env::var("KEEPWELL_VECTORISE").as_deref() != Ok("off")).then_some(&vector),
            ),
        };
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
        held(warehouse, &entity);
        Ok(Evaluated { entity, previous, outcomes, metrics: Measured::default() })
    }

    /// The job's metrics over the accounts and their results, beside the previous run's
    /// values, the alerts that hold and each metric's history for the report.
    fn metrics(&self, warehouse: &Warehouse, e: &Evaluated, report: &mut RunReport) -> Result<Measured, RunError> {
        let (job, as_of) = (&self.plan.job, self.options.as_of);
        let sets: Vec<(&str, &SetOutcomes)> =
            self.plan.rule_sets.iter().map(|s| s.name.as_str()).zip(&e.outcomes).collect();
        let conn = warehouse.connection();
        let values = crate::metrics::compute(conn, &self.plan.schema, &sets, &job.metrics, &mut report.warnings)?;
        let previous = self.store.previous_metrics(&job.name, as_of)?;
        let alerts = crate::metrics::alerts(conn, &job.metrics, &values, &previous, &mut report.warnings);
        let history = self.store.metric_history(&job.name, as_of, METRIC_HISTORY)?;
        Ok(Measured { values, previous, alerts, history })
    }

    /// The run's results written to the store in one transaction, once the snapshot is.
    fn publish(
        &self,
        run_id: i64,
        snapshot: JoinHandle<Result<(), StoreError>>,
        e: &Evaluated,
        report: &mut RunReport,
    ) -> Result<(), RunError> {
        folder::await_snapshot(snapshot)?;
        let job = &self.plan.job;
        let publication = Publication {
            run_id,
            job: &job.name,
            as_of: self.options.as_of,
            entity: &e.entity,
            rule_sets: &self.plan.rule_sets,
            outcomes: &e.outcomes,
            previous: &e.previous,
            name_column: job.entity.name.as_deref(),
            owner_column: job.entity.owner.as_deref(),
            arr_column: job.entity.arr.as_deref(),
            staging: &self.spill,
            metrics: &e.metrics,
        };
        self.store.publish(&publication, &report.rejects)?;
        report.published = true;
        Ok(())
    }

    /// Lists and reports rendered, their mail handed to the delivery as it is rendered (so
    /// the run never holds all of it), or kept for a dry run's preview. The accounts' data
    /// goes back when this returns: recording the escalations needs none of it (at 1M
    /// accounts about 0.75 GB, where the store's upsert needs 0.1 GB).
    fn outputs(&self, e: Evaluated, report: &mut RunReport) -> Result<(Rendered, Option<Delivery<'_>>), RunError> {
        let (plan, options, store) = (self.plan, self.options, self.store);
        let escalated = store.escalated(&plan.job.name)?;
        let history = self.red_history()?;
        let calibration =
            super::calibrate::calibrate(plan, store, &self.project.runs, &options, report.run_id, report.published)
                .unwrap_or_else(|warning| {
                    report.warnings.push(warning.to_string());
                    None
                });
        let view = RunView {
            job: &plan.job,
            run_id: report.run_id,
            as_of: options.as_of,
            entity: &e.entity,
            rule_sets: &plan.rule_sets,
            outcomes: &e.outcomes,
            engine: &plan.engine,
            templates: &plan.templates,
            rule_errors: report.account_errors.len(),
            rejects: report.rejects.len(),
            warnings: &report.warnings,
            escalated: &escalated,
            previous: &e.previous,
            history: &history,
            metrics: &e.metrics,
            // Its charts take a second at most: a run without mail keeps the figures only.
            calibration: calibration.as_ref().filter(|_| !options.no_mail),
            render_posts: !options.no_mail,
            preview: options.dry_run,
        };
        let mut preview = Vec::new();
        let mut delivery = None;
        if !options.dry_run && !options.no_mail {
            let transport = Transport::from_settings(&self.project.mail, &self.project.outbox)?;
            let from = self
                .project
                .mail
                .from
                .parse()
                .map_err(|source| RunError::Sender { from: self.project.mail.from.clone(), source })?;
            delivery = Some(Delivery::start(store, transport, from, &plan.job.name, options.as_of, report.run_id)?);
        }
        let mut task_runs = Vec::new();
        let mut tasks = |_: &crate::outputs::Tasks, keys: crate::store::TaskRun| {
            task_runs.push(keys);
            Ok(())
        };
        let mails = &mut |mails| match delivery.as_mut() {
            Some(d) => Ok(d.send(mails)?),
            None if options.dry_run => {
                preview.extend(mails);
                Ok(())
            }
            None => Ok(()),
        };
        let rendered = render(&view, &plan.outputs, &self.dir, mails, &mut tasks);
        let mut rendered = match rendered {
            Ok(mut rendered) => {
                rendered.tasks = task_runs;
                rendered
            }
            Err(err) => {
                // What went out before the failure is still reported.
                if let Some(d) = delivery {
                    report.mails = d.sent;
                    report.warnings.extend(unsent(&d.failed));
                }
                return Err(err.into());
            }
        };
        report.warnings.append(&mut rendered.warnings);
        report.files = std::mem::take(&mut rendered.files);
        if !options.dry_run
            && report.published
            && let Some(run_id) = report.run_id
        {
            store.record_flagged(run_id, &plan.job.name, &std::mem::take(&mut rendered.flagged), &self.spill)?;
        }
        if options.dry_run {
            report.preview = preview;
        }
        Ok((rendered, delivery))
    }

    /// Per summary output with a red grade: its ARR on each earlier run, oldest first.
    fn red_history(&self) -> Result<HashMap<String, Vec<(NaiveDate, f64)>>, RunError> {
        let mut history = HashMap::new();
        for output in &self.plan.outputs {
            if let Output::Summary(s) = output
                && let Some((g, runs)) = s.report.as_ref().and_then(|r| r.red.as_ref().map(|g| (g, r.history)))
            {
                let points = self.store.grade_arr_history(
                    &self.plan.job.name,
                    &g.rule_set,
                    &g.grade,
                    self.options.as_of,
                    runs,
                )?;
                history.insert(s.name.clone(), points);
            }
        }
        Ok(history)
    }

    /// Mail queued for SMTP sent, and what each escalation listed remembered.
    fn deliver(&self, mut delivery: Delivery, rendered: &Rendered, report: &mut RunReport) -> Result<(), RunError> {
        delivery.finish()?;
        report.mails = std::mem::take(&mut delivery.sent);
        report.mails_already_sent = delivery.already_sent;
        report.warnings.extend(unsent(&delivery.failed));
        tracing::debug!(seconds = delivery.busy.as_secs_f64(), mails = report.mails.len(), "Mail delivered.");
        super::posts::deliver(self.project, self.store, &self.plan.job.name, report)?;
        let started = Instant::now();
        self.store.record_escalated(&self.plan.job.name, self.options.as_of, &rendered.escalated, &self.spill)?;
        tracing::debug!(
            seconds = started.elapsed().as_secs_f64(),
            accounts = rendered.escalated.len(),
            "Escalations recorded."
        );
        Ok(())
    }
}

/// The warnings for mail that could not be sent.
fn unsent(failed: &[String]) -> impl Iterator<Item = String> + '_ {
    failed.iter().map(|f| format!("mail not sent, kept in the outbox: {f}"))
}

/// Logs what the warehouse and the entity hold (debug level).
fn held(warehouse: &Warehouse, entity: &Entity) {
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

/// Logs the process's resident memory at the end of a stage (debug level), from
/// /proc/self/status where there is one.
fn memory(stage: Stage) {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status.lines().find(|l| l.starts_with(name)).and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
    };
    if let (Some(rss), Some(peak)) = (field("VmRSS:"), field("VmHWM:")) {
        tracing::debug!(stage = stage.as_str(), rss_mb = rss / 1024, peak_mb = peak / 1024, "Memory after the stage.");
    }
}
