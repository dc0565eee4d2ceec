//! Replay: rule sets evaluated again on the entity snapshots the runs stored, so the base
//! rules (a git revision or a folder) and the working-tree rules can be judged on the same
//! history. `diff` with hindsight.

use std::collections::{HashMap, HashSet};

use super::ValidateError;
use crate::config::project::Project;
use crate::entity::Entity;
use crate::outputs::Output;
use crate::rules::eval::Evaluator;
use crate::rules::eval::results::{Results, evaluate_condition};
use crate::rules::previous::Previous;
use crate::run::plan::Plan;
use crate::store::{ENTITY_SNAPSHOT, Store};
use crate::validation::{History, Replayed, Stored};
use crate::warehouse::Warehouse;

/// Evaluates `plans` (base, working tree) on each stored run `needed` names, for the
/// accounts it names there only (each account's results are its own: a subset evaluates
/// as the whole would).
pub fn replay(
    project: &Project,
    plans: [&Plan; 2],
    history: &History,
    needed: &HashMap<i64, HashSet<String>>,
) -> Result<[Replayed; 2], ValidateError> {
    let reads_prev = plans.iter().any(|p| p.reads_prev());
    let store = if reads_prev { Some(Store::open_read_only(&project.store).map_err(store_error)?) } else { None };
    let mut sides = [Replayed::default(), Replayed::default()];
    for &(run, as_of) in &history.runs {
        let Some(accounts) = needed.get(&run) else { continue };
        let path = project.runs.join(run.to_string()).join(ENTITY_SNAPSHOT);
        if !path.is_file() {
            sides.iter_mut().for_each(|s| s.missing.push(run));
            continue;
        }
        let work = plans[1];
        let unreadable = |e: String| ValidateError::Replay(format!("cannot read the snapshot of run {run}: {e}"));
        let whole = Warehouse::read_snapshot(&path, &work.job.entity, work.schema.clone())
            .map_err(|e| unreadable(e.to_string()))?;
        let keep: duckdb::arrow::array::BooleanArray =
            whole.keys.iter().map(|k| Some(accounts.contains(&**k))).collect();
        let batch =
            duckdb::arrow::compute::filter_record_batch(&whole.batch, &keep).map_err(|e| unreadable(e.to_string()))?;
        let entity =
            Entity::new(&whole.key_column, whole.schema.clone(), batch).map_err(|e| unreadable(e.to_string()))?;
        drop(whole);
        let previous = match &store {
            Some(s) => s.previous(&work.job.name, as_of, true).map_err(store_error)?,
            None => Previous::default(),
        };
        let rows: Vec<usize> = (0..entity.len()).collect();
        for (side, plan) in sides.iter_mut().zip(plans) {
            side.runs.push((run, as_of));
            // Each day's `as_of` is its own: date helpers (`days_since`) read it.
            let engine = crate::rules::engine::build(as_of, plan.lookups.clone());
            let evaluator = Evaluator { engine: &engine, templates: &plan.templates, as_of };
            let outcomes = evaluator.evaluate_all(&plan.rule_sets, &entity, &previous);
            for &row in &rows {
                let key = (run, entity.keys[row].to_string());
                let mut by_set = HashMap::new();
                let mut codes = Vec::new();
                for (set, out) in plan.rule_sets.iter().zip(&outcomes) {
                    let o = out.get(row);
                    codes.extend(o.tags().iter().chain(o.fired().iter()).map(str::to_string));
                    by_set.insert(
                        set.name.clone(),
                        Stored { score: o.score(), grade: o.grade().map(str::to_string), fired: o.fired().to_vec() },
                    );
                }
                side.results.insert(key.clone(), by_set);
                side.codes.insert(key, codes);
            }
            let view =
                Results { as_of, entity: &entity, rule_sets: &plan.rule_sets, outcomes: &outcomes, engine: &engine };
            for output in &plan.outputs {
                let Output::Escalation(e) = output else { continue };
                let hits = evaluate_condition(&view, &e.when);
                for &row in rows.iter().filter(|&&row| matches!(hits[row], Ok(true))) {
                    side.flagged.entry((run, entity.keys[row].to_string())).or_default().push(e.name.clone());
                }
            }
        }
    }
    Ok(sides)
}

fn store_error(e: crate::store::StoreError) -> ValidateError {
    ValidateError::Replay(e.to_string())
}
