//! Why an account got its results: every rule set and every rule, re-evaluated with a trace on
//! the exact rows a run saw (its entity snapshot).

use std::path::Path;

use chrono::NaiveDate;
use rhai::Scope;
use serde::Serialize;

use crate::config::project::Project;
use crate::entity::{display_value, to_json};
use crate::rules::OutcomeRef;
use crate::rules::eval::{EntityRow, Evaluator, RuleStatus, RuleTrace};
use crate::rules::outcomes::Outcome;
use crate::rules::{Body, RuleSet, RuleSetSources};
use crate::run::ENTITY_SNAPSHOT;
use crate::run::plan::Plan;
use crate::store::{Store, StoredOutcome};
use crate::warehouse::Warehouse;

#[derive(Debug, Serialize)]
pub struct Explanation {
    pub account: String,
    pub name: Option<String>,
    pub job: String,
    pub run_id: i64,
    pub as_of: NaiveDate,
    pub rule_sets: Vec<SetExplanation>,
}

#[derive(Debug, Serialize)]
pub struct SetExplanation {
    pub rule_set: String,
    pub kind: &'static str,
    pub score: Option<f64>,
    pub grade: Option<String>,
    /// What the run stored, when the current rules give something else.
    pub stored: Option<StoredOutcome>,
    pub steps: Vec<Step>,
    /// Where the run evaluates this set's expressions: `sql` (all in the warehouse),
    /// `rhai` (all row by row) or `mixed`.
    pub path: &'static str,
    /// How the score was reached, in words.
    pub summary: String,
    pub errors: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Step {
    pub id: String,
    /// `fired`, `not fired`, `n/a`, `disabled`, `scored`, `error`.
    pub status: String,
    pub inputs: serde_json::Map<String, serde_json::Value>,
    /// Points added, or a measure's score.
    pub value: Option<f64>,
    pub reason: Option<String>,
    pub detail: Option<String>,
    pub error: Option<String>,
    /// `sql` when a run evaluates this rule's expressions in the warehouse, else `rhai`.
    pub path: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error("{0}")]
    Config(crate::config::diagnostic::Diagnostics),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Snapshot(#[from] crate::warehouse::WarehouseError),
}

pub fn explain(
    project: &Project,
    account: &str,
    job: Option<&str>,
    run: Option<i64>,
) -> Result<Explanation, ExplainError> {
    let store = Store::open(&project.store)?;
    let record = store.find_run(run, job)?.ok_or_else(|| {
        ExplainError::NotFound(match (run, job) {
            (Some(r), _) => {
                format!("there is no run {r} in {}", project.display(&project.store))
            }
            (None, Some(j)) => {
                format!("job `{j}` has no published run yet: run `keepwell run {j}` first")
            }
            (None, None) => "there is no published run yet: run a job first".into(),
        })
    })?;
    let (rules, diags) = RuleSetSources::load(&project.root, &project.rules_dir());
    if diags.has_errors() {
        return Err(ExplainError::Config(diags));
    }
    let plan =
        Plan::compile(project, &project.job_path(&record.job), &rules, record.as_of).map_err(ExplainError::Config)?;
    let snapshot = project.runs.join(record.run_id.to_string()).join(ENTITY_SNAPSHOT);
    let entity = load_snapshot(&snapshot, &plan)?;
    let row = entity.row_of(account).ok_or_else(|| {
        ExplainError::NotFound(format!("account `{account}` is not in run {} of `{}`", record.run_id, record.job))
    })?;
    let previous = store.previous(&record.job, record.as_of, plan.reads_prev())?;
    let evaluator = Evaluator { engine: &plan.engine, templates: &plan.templates, as_of: record.as_of };
    let mut done: Vec<(String, Outcome)> = Vec::new();
    let mut sets = Vec::new();
    let mut scope = Scope::new();
    for set in &plan.rule_sets {
        let mut trace = Vec::new();
        let view: Vec<(&str, OutcomeRef)> = done.iter().map(|(n, o)| (n.as_str(), o.into())).collect();
        let outcome = evaluator.evaluate(
            set,
            &EntityRow { entity: &entity, row },
            &view,
            &previous,
            &mut scope,
            Some(&mut trace),
        );
        let paths = crate::rules::sql::paths(set, &plan.schema, record.as_of, &plan.lookups);
        let in_sql = paths.values().filter(|v| **v).count();
        let path = match in_sql {
            0 => "rhai",
            n if n == paths.len() => "sql",
            _ => "mixed",
        };
        let stored = store.outcome(record.run_id, account, &set.name)?;
        let stored = stored.filter(|s| s.score != outcome.score || s.grade.as_deref() != outcome.grade.as_deref());
        sets.push(SetExplanation {
            rule_set: set.name.clone(),
            kind: set.kind(),
            score: outcome.score,
            grade: outcome.grade.as_deref().map(str::to_string),
            stored,
            steps: trace
                .into_iter()
                .map(|t| {
                    let sql = paths.get(&*t.rule).copied().unwrap_or(false);
                    step(t, if sql { "sql" } else { "rhai" })
                })
                .collect(),
            path,
            summary: summary(set, &outcome),
            errors: outcome.errors.iter().map(|e| format!("{}: {}", e.rule, e.message)).collect(),
        });
        done.push((set.name.clone(), outcome));
    }
    let name = plan.job.entity.name.as_deref().map(|c| display_value(&entity.value(c, row)));
    Ok(Explanation {
        account: account.to_string(),
        name,
        job: record.job,
        run_id: record.run_id,
        as_of: record.as_of,
        rule_sets: sets,
    })
}

fn load_snapshot(path: &Path, plan: &Plan) -> Result<crate::entity::Entity, ExplainError> {
    if !path.exists() {
        return Err(ExplainError::NotFound(format!(
            "the rows of this run are not kept (`{}` is missing)",
            path.display()
        )));
    }
    Ok(Warehouse::read_snapshot(path, &plan.job.entity, plan.schema.clone())?)
}

fn step(t: RuleTrace, path: &'static str) -> Step {
    let (status, error) = match &t.status {
        RuleStatus::Fired => ("fired", None),
        RuleStatus::NotFired => ("not fired", None),
        RuleStatus::NotApplicable => ("n/a", None),
        RuleStatus::Disabled => ("disabled", None),
        RuleStatus::Scored => ("scored", None),
        RuleStatus::Error(m) => ("error", Some(m.clone())),
    };
    let value = match t.status {
        RuleStatus::Fired | RuleStatus::Scored => Some(t.points),
        _ => None,
    };
    Step {
        id: t.rule.to_string(),
        status: status.to_string(),
        inputs: t.inputs.iter().map(|(k, v)| (k.clone(), to_json(v))).collect(),
        value,
        reason: t.reason,
        detail: t.detail,
        error,
        path,
    }
}

/// How the result came about, in one sentence.
fn summary(set: &RuleSet, o: &Outcome) -> String {
    let fmt = crate::entity::format_float;
    let grade = o.grade.as_deref().unwrap_or("no grade");
    if !o.errors.is_empty() {
        return "not scored: a rule failed for this account".into();
    }
    match &set.body {
        Body::Points(_) => {
            let score = o.score.unwrap_or_default();
            let threshold = set.grades.iter().find(|g| Some(&*g.name) == o.grade.as_deref()).and_then(|g| g.min);
            let (min, max) = (set.score.min, set.score.max);
            let limits = match (min.is_finite(), max.is_finite()) {
                (false, false) => "with no limits".to_string(),
                (true, false) => format!("kept at least {}", fmt(min)),
                (false, true) => format!("kept at most {}", fmt(max)),
                (true, true) => format!("kept within {}..{}", fmt(min), fmt(max)),
            };
            format!(
                "base {} plus the points of the rules that fired, {limits}: {} -> {grade}{}",
                fmt(set.score.base),
                fmt(score),
                threshold.map(|m| format!(" (at least {})", fmt(m))).unwrap_or_default()
            )
        }
        Body::Scorecard(_) => match o.score {
            Some(s) => {
                format!("weighted mean of the measures that have data: {} -> {grade}", fmt((s * 10.0).round() / 10.0))
            }
            None => "every measure is N/A: no score".into(),
        },
        Body::Classification { .. } => match o.fired.first() {
            Some(c) => format!("the first class that matches: {c}"),
            None => format!("no class matched: the default, {grade}"),
        },
        Body::Script(_) => format!("the script's result: {} -> {grade}", o.score.map_or("no score".into(), fmt)),
    }
}
