//! `keepwell validate`: the figures of [`crate::validation`] for a job, from the store's
//! history; with a base (`--base`), the base rules and the working tree's are also replayed
//! on the runs' entity snapshots and judged side by side.

mod replay;

use std::path::Path;

use chrono::NaiveDate;

use crate::config::diagnostic::Diagnostics;
use crate::config::project::Project;
use crate::outputs::Output;
use crate::rules::RuleSetSources;
use crate::run::plan::Plan;
use crate::validation::{self, Context, Event, Evidence, History, Replay, Validation, ValidationError};

#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    #[error("{0}")]
    Config(Diagnostics),
    #[error(transparent)]
    Validation(ValidationError),
    #[error("there is no store yet at `{0}`: run the job first, so there is history to validate")]
    NoStore(String),
    #[error("job `{0}` has no published run in the store: run it first, so there is history to validate")]
    NoHistory(String),
    #[error("{0}")]
    Replay(String),
}

impl From<ValidationError> for ValidateError {
    fn from(e: ValidationError) -> Self {
        match e {
            ValidationError::Outcomes(d) => ValidateError::Config(d),
            other => ValidateError::Validation(other),
        }
    }
}

impl From<duckdb::Error> for ValidateError {
    fn from(e: duckdb::Error) -> Self {
        ValidateError::Validation(ValidationError::Store(e))
    }
}

pub struct ValidateOptions<'a> {
    pub job: &'a Path,
    /// Overrides the job's `validation: horizon`.
    pub horizon_days: Option<u32>,
    /// Only outcomes on or after this day.
    pub since: Option<NaiveDate>,
    /// Also replay these rules (a git revision or a folder) and the working tree's.
    pub base: Option<&'a str>,
}

/// The escalations' names, in the job's order.
pub fn escalations(plan: &Plan) -> Vec<String> {
    plan.outputs
        .iter()
        .filter_map(|o| match o {
            Output::Escalation(e) => Some(e.name.clone()),
            _ => None,
        })
        .collect()
}

pub fn validate(project: &Project, options: &ValidateOptions) -> Result<Validation, ValidateError> {
    let (sources, d) = RuleSetSources::load(&project.root, &project.rules_dir());
    if d.has_errors() {
        return Err(ValidateError::Config(d));
    }
    let today = chrono::Local::now().date_naive();
    let plan = Plan::compile_for_tests(project, options.job, &sources, today).map_err(ValidateError::Config)?;
    let horizon = options.horizon_days.unwrap_or(plan.job.validation.horizon_days);
    let events = validation::read_events(&plan.job, options.since)?;
    if !project.store.is_file() {
        return Err(ValidateError::NoStore(project.display(&project.store)));
    }
    let history = History::open(&project.store, &plan.job.name)?;
    if history.runs.is_empty() {
        return Err(ValidateError::NoHistory(plan.job.name.clone()));
    }
    let names = escalations(&plan);
    let ctx = Context { job: &plan.job, rule_sets: &plan.rule_sets, escalations: &names, runs_dir: &project.runs };
    let mut v = validation::measure(&ctx, &history, &events, horizon, options.since)?;
    if let Some(base) = options.base {
        v.replay = Some(replay_figures(project, options.job, base, &plan, &history, &events, horizon, today)?);
    }
    Ok(v)
}

/// The base rules and the working tree's, both evaluated on the stored snapshots a figure
/// reads, judged side by side.
#[allow(clippy::too_many_arguments)]
fn replay_figures(
    project: &Project,
    job: &Path,
    base: &str,
    work: &Plan,
    history: &History,
    events: &[Event],
    horizon: u32,
    today: NaiveDate,
) -> Result<Replay, ValidateError> {
    let base_dir = crate::authoring::diff::base_rules_dir(project, base).map_err(|e| match e {
        crate::authoring::diff::DiffError::Config(d) => ValidateError::Config(d),
        other => ValidateError::Replay(other.to_string()),
    })?;
    let (base_sources, d) = RuleSetSources::load(&project.root, &base_dir);
    if d.has_errors() {
        return Err(ValidateError::Config(d));
    }
    let base_plan = Plan::compile_for_tests(project, job, &base_sources, today).map_err(ValidateError::Config)?;
    let needed = validation::needed(history, events, horizon);
    let [base_side, work_side] = replay::replay(project, [&base_plan, work], history, &needed)?;
    let figures = |plan: &Plan, side| -> Result<_, ValidateError> {
        let names = escalations(plan);
        let ctx = Context { job: &plan.job, rule_sets: &plan.rule_sets, escalations: &names, runs_dir: &project.runs };
        Ok(validation::figures(&ctx, &Evidence::Replayed(side), history, events, horizon)?)
    };
    Ok(Replay {
        base: base.to_string(),
        runs: needed.len() as u64,
        missing_snapshots: base_side.missing.len() as u64,
        base_figures: figures(&base_plan, &base_side)?,
        work_figures: figures(work, &work_side)?,
    })
}
