//! Evaluating compiled rule sets for every account, in parallel, one bad account at a time.
//!
//! A set whose expressions all translate to SQL is assembled from its columns
//! (`columnar.rs`); the others, and every account whose assembly fails, are evaluated one
//! account at a time in rhai (`account.rs`).

mod account;
mod columnar;
pub mod results;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::NaiveDate;
use minijinja::Environment;
use rhai::{Dynamic, Engine, EvalAltResult, Map, Scope};

use crate::entity::Entity;
use crate::rules::outcomes::{Outcome, OutcomeRef, SetOutcomes, TextList, script_outcome};
use crate::rules::previous::Previous;
use crate::rules::{Body, Expr, RuleSet};

/// What one rule (or measure, or class) did for one account, for `explain`.
#[derive(Debug, Clone)]
pub struct RuleTrace {
    pub rule: Arc<str>,
    pub status: RuleStatus,
    /// The values the rule read, by name.
    pub inputs: Vec<(String, Dynamic)>,
    /// Points added (points rules) or the measure's score (scorecards).
    pub points: f64,
    pub reason: Option<String>,
    /// How a measure counted: its weight, or why it is N/A.
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RuleStatus {
    Fired,
    NotFired,
    /// Did not fire (or, for a measure, did not count) because a value it reads is missing.
    NotApplicable,
    Disabled,
    /// A measure that counted towards the score.
    Scored,
    Error(String),
}

/// The values of one account, wherever they come from.
pub trait RowValues: Sync {
    fn key(&self) -> &str;
    fn value(&self, column: &str) -> Dynamic;
}

/// One row of the entity table.
pub struct EntityRow<'a> {
    pub entity: &'a Entity,
    pub row: usize,
}

impl RowValues for EntityRow<'_> {
    fn key(&self) -> &str {
        &self.entity.keys[self.row]
    }

    fn value(&self, column: &str) -> Dynamic {
        self.entity.value(column, self.row)
    }
}

/// Of each rule set another reads, the fields it reads; `None` when it uses the whole
/// result (passes it on, or a reason template reads it).
pub type DepFields = HashMap<String, Option<std::collections::HashSet<String>>>;

/// The fields `set` reads of the rule sets it depends on, from its expressions.
fn dep_fields(set: &RuleSet) -> DepFields {
    let mut exprs: Vec<&Expr> = crate::rules::sql::expressions_of(set);
    if let Body::Script(s) = &set.body {
        exprs.push(&s.script);
    }
    let mut fields = crate::rules::reads::reads_of(exprs).owned_fields();
    // A reason template may read any field of what it names.
    for vars in set.reason_vars.values() {
        for v in vars {
            fields.insert(v.clone(), None);
        }
    }
    fields
}

/// What the rows of one rule set share in a run: its columns and the fields it reads.
struct Fast<'f> {
    columns: &'f crate::rules::sql::Columns,
    row: usize,
    fields: &'f DepFields,
}

/// Evaluates rule sets; holds what every account shares.
pub struct Evaluator<'a> {
    pub engine: &'a Engine,
    pub templates: &'a Environment<'static>,
    pub as_of: NaiveDate,
}

/// What evaluating one rule set for one account reads.
struct Ctx<'c> {
    set: &'c RuleSet,
    row: &'c dyn RowValues,
    done: &'c Done<'c>,
    previous: &'c Previous,
    /// The set's vectorised columns and this account's row in them.
    fast: Option<(&'c crate::rules::sql::Columns, usize)>,
    /// Of each rule set this one reads, the fields it reads (`None`: all of them).
    fields: Option<&'c DepFields>,
    /// The scope holds every name the set reads (otherwise names are added as needed).
    full: bool,
}

/// Results of the rule sets already evaluated, by name, for dependent sets to read.
pub type Done<'a> = [(&'a str, OutcomeRef<'a>)];

impl Evaluator<'_> {
    /// Every rule set (in dependency order) for every account. Index: `[set]`, then row.
    pub fn evaluate_all(&self, sets: &[RuleSet], entity: &Entity, previous: &Previous) -> Vec<SetOutcomes> {
        self.evaluate_timed(sets, entity, previous, None).0
    }

    /// [`Evaluator::evaluate_all`], with the time each rule set took. With `vector`, the
    /// expressions that translate to SQL are evaluated there as columns.
    pub fn evaluate_timed(
        &self,
        sets: &[RuleSet],
        entity: &Entity,
        previous: &Previous,
        vector: Option<&crate::rules::sql::Vectorise>,
    ) -> (Vec<SetOutcomes>, Vec<std::time::Duration>) {
        let mut results: Vec<SetOutcomes> = Vec::with_capacity(sets.len());
        let mut timings = Vec::with_capacity(sets.len());
        let mut uploaded = std::collections::BTreeSet::new();
        for set in sets {
            let started = std::time::Instant::now();
            // The warehouse works on this thread; the rows then go to every core.
            let columns = match vector {
                Some(v) => {
                    let done: Vec<(&str, &SetOutcomes)> =
                        sets.iter().zip(&results).map(|(s, r)| (s.name.as_str(), r)).collect();
                    crate::rules::sql::evaluate(v, set, self.as_of, &done, entity.len(), &mut uploaded)
                }
                None => crate::rules::sql::Columns::default(),
            };
            let in_warehouse = started.elapsed();
            let fields = dep_fields(set);
            // Only the sets this one reads, in a buffer each thread reuses.
            let read: Vec<(&str, &SetOutcomes)> = sets
                .iter()
                .zip(&results)
                .filter(|(s, _)| set.depends_on.contains(&s.name))
                .map(|(s, r)| (s.name.as_str(), r))
                .collect();
            let columnar = self.columnar(set, &columns, entity, &read, previous, &fields);
            let outcomes = columnar.unwrap_or_else(|| {
                SetOutcomes::evaluate(
                    entity.len(),
                    || (Scope::new(), Vec::with_capacity(read.len())),
                    |(scope, done), row| {
                        done.clear();
                        done.extend(read.iter().map(|(name, r)| (*name, r.get(row))));
                        let fast = Some(Fast { columns: &columns, row, fields: &fields });
                        self.evaluate_with(set, &EntityRow { entity, row }, done, previous, scope, None, fast)
                    },
                )
            });
            results.push(outcomes);
            timings.push(started.elapsed());
            tracing::debug!(
                rule_set = %set.name,
                warehouse_seconds = in_warehouse.as_secs_f64(),
                rows_seconds = (started.elapsed() - in_warehouse).as_secs_f64(),
                "Rule set evaluated."
            );
        }
        if let Some(v) = vector {
            crate::rules::sql::drop_uploaded(v.conn, &uploaded);
        }
        (results, timings)
    }

    /// One rule set for one account; with `trace`, records what each rule did.
    pub fn evaluate(
        &self,
        set: &RuleSet,
        row: &dyn RowValues,
        done: &Done,
        previous: &Previous,
        scope: &mut Scope<'static>,
        trace: Option<&mut Vec<RuleTrace>>,
    ) -> Outcome {
        self.evaluate_with(set, row, done, previous, scope, trace, None)
    }

    /// [`Evaluator::evaluate`], reading the expressions in `fast` from their columns; the
    /// scope then only gets the names the rest (rhai expressions, reasons) read.
    #[allow(clippy::too_many_arguments)]
    fn evaluate_with(
        &self,
        set: &RuleSet,
        row: &dyn RowValues,
        done: &Done,
        previous: &Previous,
        scope: &mut Scope<'static>,
        trace: Option<&mut Vec<RuleTrace>>,
        fast: Option<Fast>,
    ) -> Outcome {
        let full = fast.is_none() || trace.is_some();
        if full {
            self.fill_scope(scope, set, row, done, previous);
        } else {
            scope.clear();
        }
        let fast = if full { None } else { fast };
        let ctx = Ctx {
            set,
            row,
            done,
            previous,
            fast: fast.as_ref().filter(|f| !f.columns.is_empty()).map(|f| (f.columns, f.row)),
            fields: fast.as_ref().map(|f| f.fields),
            full,
        };
        let mut outcome = match &set.body {
            Body::Points(rules) => self.points(&ctx, rules, scope, trace),
            Body::Scorecard(measures) => self.scorecard(&ctx, measures, scope, trace),
            Body::Classification { classes, default, default_reason } => {
                self.classify(&ctx, classes, (default, default_reason), scope, trace)
            }
            Body::Script(s) => match ctx.fast.and_then(|(columns, row)| columns.script_result(row)) {
                Some(result) => script_outcome(result),
                None => {
                    self.ensure(&ctx, scope, &s.script.reads);
                    self.script(&s.script, scope, trace)
                }
            },
        };
        if !outcome.errors.is_empty() {
            outcome.score = None;
            outcome.grade = None;
        } else if let Some(score) = outcome.score {
            let score = score.clamp(set.score.min, set.score.max);
            outcome.score = Some(score);
            if outcome.grade.is_none() {
                outcome.grade = set.grade_for(score);
            }
        }
        outcome
    }
}

/// Into `map`, the fields of `o` that rule expressions and outputs read, those `wanted`.
pub(crate) fn insert_result_fields(map: &mut Map, o: OutcomeRef, wanted: impl Fn(&str) -> bool) {
    let strings = |v: TextList| Dynamic::from_array(v.iter().map(|s| Dynamic::from(s.to_string())).collect());
    if wanted("score") {
        map.insert("score".into(), o.score().map_or(Dynamic::UNIT, Dynamic::from_float));
    }
    if wanted("grade") {
        map.insert("grade".into(), o.grade().map_or(Dynamic::UNIT, |g| Dynamic::from(g.to_string())));
    }
    if wanted("tags") {
        map.insert("tags".into(), strings(o.tags()));
    }
    if wanted("fired") {
        map.insert("fired".into(), strings(o.fired()));
    }
    if wanted("reasons") {
        map.insert("reasons".into(), strings(o.reasons()));
    }
}

fn inputs_of(expr: &Expr, scope: &Scope<'static>) -> Vec<(String, Dynamic)> {
    expr.shown_values(scope)
}

/// A rhai error as one readable sentence.
fn describe(e: &EvalAltResult) -> String {
    match e {
        EvalAltResult::ErrorTooManyOperations(_) => format!(
            "stopped after {} operations, the limit for one expression (is there an endless loop?)",
            crate::rules::engine::MAX_OPERATIONS
        ),
        EvalAltResult::ErrorFunctionNotFound(sig, _) => {
            format!("no function `{sig}` (are the value types what you expect?)")
        }
        // A helper's own error (a date out of range): its message says it all.
        EvalAltResult::ErrorRuntime(message, _) => message.to_string(),
        other => {
            let text = other.to_string();
            match text.find(" (line ") {
                Some(i) => text[..i].to_string(),
                None => text,
            }
        }
    }
}

fn vars_of<'a>(set: &'a RuleSet, template: &str) -> &'a [String] {
    set.reason_vars.get(template).map_or(&[], Vec::as_slice)
}
