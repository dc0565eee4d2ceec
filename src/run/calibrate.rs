//! A run's calibration: when the job has a `calibration` output, its rules measured against
//! the outcomes on the store's history (this run included), for the mail, and kept in the
//! store's `calibration` table so the scoring's quality has a history of its own.

use crate::outputs::Output;
use crate::store::{CalibrationRow, Store, StoreError};
use crate::validation::{self, Context, History, Validation, ValidationError};

use super::RunOptions;
use super::plan::Plan;

/// Why a run has no calibration figures: a warning, the rest of the run goes on.
#[derive(Debug, thiserror::Error)]
pub(super) enum CalibrationError {
    #[error("calibration: {0}")]
    Validation(#[from] ValidationError),
    #[error("calibration: {0}")]
    Store(#[from] StoreError),
}

impl From<duckdb::Error> for CalibrationError {
    fn from(e: duckdb::Error) -> Self {
        CalibrationError::Validation(ValidationError::Store(e))
    }
}

/// The figures, or why there are none.
pub(super) fn calibrate(
    plan: &Plan,
    store: &Store,
    runs_dir: &std::path::Path,
    options: &RunOptions,
    run_id: Option<i64>,
    published: bool,
) -> Result<Option<Validation>, CalibrationError> {
    if !plan.outputs.iter().any(|o| matches!(o, Output::Calibration(_))) {
        return Ok(None);
    }
    let job = &plan.job;
    let events = validation::read_events(job, None)?;
    let history = History::over(store.connection()?, &job.name)?;
    let escalations: Vec<String> = plan
        .outputs
        .iter()
        .filter_map(|o| match o {
            Output::Escalation(e) => Some(e.name.clone()),
            _ => None,
        })
        .collect();
    let ctx = Context { job, rule_sets: &plan.rule_sets, escalations: &escalations, runs_dir };
    let horizon = job.validation.horizon_days;
    let v = validation::measure(&ctx, &history, &events, horizon, None)?;
    // Nothing in reach of the history yet (a new team, a new job): no mail, no figures.
    if v.coverage.scored == 0 {
        return Ok(None);
    }
    if let (Some(run_id), true, false) = (run_id, published, options.dry_run) {
        let mut rows = Vec::new();
        for s in &v.figures.rule_sets {
            rows.push(CalibrationRow {
                rule_set: s.rule_set.clone(),
                accounts: s.accounts,
                churned: s.churned,
                rate: s.base_rate,
                auc: s.auc,
                top_decile_lift: s.top_decile_lift,
                ..Default::default()
            });
            rows.extend(s.grades.iter().map(|g| CalibrationRow {
                rule_set: s.rule_set.clone(),
                grade: Some(g.grade.clone()),
                accounts: g.churn.of,
                churned: g.churn.count,
                rate: g.churn.rate,
                low: g.churn.low,
                high: g.churn.high,
                ..Default::default()
            }));
        }
        store.record_calibration(run_id, &job.name, options.as_of, horizon, &rows)?;
    }
    Ok(Some(v))
}
