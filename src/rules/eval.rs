//! Evaluating compiled rule sets for every account, in parallel, one bad account at a time.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::NaiveDate;
use minijinja::Environment;
use rayon::prelude::*;
use rhai::{Dynamic, Engine, EvalAltResult, Map, Scope};

use super::compile::{AS_OF, PREV};
use super::row::{Entity, to_template_value};
use super::{Expr, Points, RuleSet};

/// An account's result for one rule set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// `None` when a rule failed for this account: a partial score would mislead.
    pub score: Option<f64>,
    pub grade: Option<Arc<str>>,
    pub fired: Vec<Arc<str>>,
    pub reasons: Vec<String>,
    pub tags: Vec<Arc<str>>,
    pub errors: Vec<RuleError>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RuleError {
    pub rule: Arc<str>,
    pub message: String,
}

/// An account's previous result for a rule set, from the last published run.
#[derive(Debug, Clone, PartialEq)]
pub struct PrevOutcome {
    pub as_of: NaiveDate,
    pub score: Option<f64>,
    pub grade: Option<String>,
    pub grade_since: Option<NaiveDate>,
}

/// Previous results by rule set, then by account key.
#[derive(Debug, Clone, Default)]
pub struct Previous {
    pub by_set: HashMap<String, HashMap<Arc<str>, PrevOutcome>>,
}

impl Previous {
    pub fn get(&self, set: &str, account: &str) -> Option<&PrevOutcome> {
        self.by_set.get(set).and_then(|m| m.get(account))
    }
}

/// What one rule did for one account, for `explain`.
#[derive(Debug, Clone)]
pub struct RuleTrace {
    pub rule: Arc<str>,
    pub status: RuleStatus,
    /// The values the rule read, by name.
    pub inputs: Vec<(String, Dynamic)>,
    pub points: f64,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RuleStatus {
    Fired,
    NotFired,
    /// Did not fire because a value it reads is missing.
    NotApplicable,
    Disabled,
    Error(String),
}

/// Evaluates rule sets; holds what every account shares.
pub struct Evaluator<'a> {
    pub engine: &'a Engine,
    pub templates: &'a Environment<'static>,
    pub as_of: NaiveDate,
}

impl Evaluator<'_> {
    /// Every rule set (in dependency order) for every account. Index: `[set][row]`.
    pub fn evaluate_all(
        &self,
        sets: &[RuleSet],
        entity: &Entity,
        previous: &Previous,
    ) -> Vec<Vec<Outcome>> {
        let mut results: Vec<Vec<Outcome>> = Vec::with_capacity(sets.len());
        for set in sets {
            let done: Vec<(&str, &[Outcome])> = sets
                .iter()
                .zip(&results)
                .map(|(s, r)| (s.name.as_str(), r.as_slice()))
                .collect();
            let outcomes: Vec<Outcome> = (0..entity.len())
                .into_par_iter()
                .map_init(Scope::new, |scope, row| {
                    self.evaluate_row(set, entity, row, &done, previous, scope, None)
                })
                .collect();
            results.push(outcomes);
        }
        results
    }

    /// One rule set for one account; with `trace`, records what each rule did.
    #[allow(clippy::too_many_arguments)]
    pub fn evaluate_row(
        &self,
        set: &RuleSet,
        entity: &Entity,
        row: usize,
        done: &[(&str, &[Outcome])],
        previous: &Previous,
        scope: &mut Scope<'static>,
        mut trace: Option<&mut Vec<RuleTrace>>,
    ) -> Outcome {
        self.fill_scope(scope, set, entity, row, done, previous);
        let mut outcome = Outcome::default();
        let mut total = set.score.base;
        for rule in &set.rules {
            if !rule.enabled {
                if let Some(t) = trace.as_deref_mut() {
                    t.push(RuleTrace {
                        rule: rule.id.clone(),
                        status: RuleStatus::Disabled,
                        inputs: inputs_of(&rule.when, scope),
                        points: 0.0,
                        reason: None,
                    });
                }
                continue;
            }
            let (status, points, reason) = match self.run_rule(rule, scope) {
                Ok(Some(points)) => {
                    let reason = rule
                        .reason
                        .as_ref()
                        .map(|name| self.render_reason(name, scope, points));
                    match reason {
                        Some(Err(message)) => (RuleStatus::Error(message), 0.0, None),
                        Some(Ok(text)) => (RuleStatus::Fired, points, Some(text)),
                        None => (RuleStatus::Fired, points, None),
                    }
                }
                Ok(None) => {
                    let missing = rule
                        .when
                        .reads
                        .iter()
                        .any(|r| scope.get(r).is_some_and(Dynamic::is_unit));
                    (
                        if missing {
                            RuleStatus::NotApplicable
                        } else {
                            RuleStatus::NotFired
                        },
                        0.0,
                        None,
                    )
                }
                Err(message) => (RuleStatus::Error(message), 0.0, None),
            };
            match &status {
                RuleStatus::Fired => {
                    total += points;
                    outcome.fired.push(rule.id.clone());
                    outcome.reasons.extend(reason.clone());
                    for tag in &rule.tags {
                        if !outcome.tags.contains(tag) {
                            outcome.tags.push(tag.clone());
                        }
                    }
                }
                RuleStatus::Error(message) => {
                    outcome.errors.push(RuleError {
                        rule: rule.id.clone(),
                        message: message.clone(),
                    });
                }
                _ => {}
            }
            if let Some(t) = trace.as_deref_mut() {
                let mut inputs = inputs_of(&rule.when, scope);
                if let Points::Computed(e) = &rule.points {
                    for (k, v) in inputs_of(e, scope) {
                        if !inputs.iter().any(|(n, _)| *n == k) {
                            inputs.push((k, v));
                        }
                    }
                }
                t.push(RuleTrace {
                    rule: rule.id.clone(),
                    status,
                    inputs,
                    points,
                    reason,
                });
            }
        }
        if outcome.errors.is_empty() {
            let score = total.clamp(set.score.min, set.score.max);
            outcome.score = Some(score);
            outcome.grade = set.grade_for(score);
        }
        outcome
    }

    /// `Ok(Some(points))` when the rule fires, `Ok(None)` when it does not.
    fn run_rule(
        &self,
        rule: &super::Rule,
        scope: &mut Scope<'static>,
    ) -> Result<Option<f64>, String> {
        let fired = self
            .engine
            .eval_ast_with_scope::<Dynamic>(scope, &rule.when.ast)
            .map_err(|e| describe(&e))?;
        let fired = if fired.is_unit() {
            false
        } else {
            fired
                .as_bool()
                .map_err(|t| format!("`when` must give true or false, but gave {t}"))?
        };
        if !fired {
            return Ok(None);
        }
        match &rule.points {
            Points::Fixed(p) => Ok(Some(*p)),
            Points::Computed(e) => {
                let v = self
                    .engine
                    .eval_ast_with_scope::<Dynamic>(scope, &e.ast)
                    .map_err(|e| describe(&e))?;
                if v.is_unit() {
                    Ok(Some(0.0))
                } else {
                    super::engine::number(&v).map(Some).ok_or_else(|| {
                        format!("`points` must give a number, but gave {}", v.type_name())
                    })
                }
            }
        }
    }

    fn render_reason(
        &self,
        name: &str,
        scope: &Scope<'static>,
        points: f64,
    ) -> Result<String, String> {
        let template = self
            .templates
            .get_template(name)
            .map_err(|e| e.to_string())?;
        let mut ctx: std::collections::BTreeMap<String, minijinja::Value> = scope
            .iter_raw()
            .map(|(k, _, v)| (k.to_string(), to_template_value(v)))
            .collect();
        ctx.insert("points".into(), minijinja::Value::from(points));
        template
            .render(ctx)
            .map_err(|e| format!("the reason could not be written: {e}"))
    }

    fn fill_scope(
        &self,
        scope: &mut Scope<'static>,
        set: &RuleSet,
        entity: &Entity,
        row: usize,
        done: &[(&str, &[Outcome])],
        previous: &Previous,
    ) {
        scope.clear();
        let key = &entity.keys[row];
        scope.push_dynamic(AS_OF, Dynamic::from(self.as_of));
        scope.push_dynamic(PREV, self.prev_map(previous.get(&set.name, key)));
        for dep in &set.depends_on {
            let outcome = done
                .iter()
                .find(|(n, _)| n == dep)
                .and_then(|(_, o)| o.get(row));
            scope.push_dynamic(
                dep.clone(),
                self.outcome_map(outcome, previous.get(dep, key)),
            );
        }
        for column in &set.inputs {
            scope.push_dynamic(column.clone(), entity.value(column, row));
        }
    }

    /// `prev.score`, `prev.grade`, `prev.days_in_grade`, `prev.as_of`: missing on a first run.
    fn prev_map(&self, prev: Option<&PrevOutcome>) -> Dynamic {
        let mut map = Map::new();
        if let Some(p) = prev {
            map.insert(
                "score".into(),
                p.score.map_or(Dynamic::UNIT, Dynamic::from_float),
            );
            map.insert(
                "grade".into(),
                p.grade.clone().map_or(Dynamic::UNIT, Dynamic::from),
            );
            map.insert(
                "days_in_grade".into(),
                p.grade_since.map_or(Dynamic::UNIT, |s| {
                    Dynamic::from_int((p.as_of - s).num_days())
                }),
            );
            map.insert("as_of".into(), Dynamic::from(p.as_of));
        }
        Dynamic::from_map(map)
    }

    /// What a dependent rule set sees of this one: `risk.score`, `risk.grade`, `risk.tags`,
    /// `risk.fired`, `risk.prev_grade`, `risk.days_in_grade`.
    fn outcome_map(&self, outcome: Option<&Outcome>, prev: Option<&PrevOutcome>) -> Dynamic {
        let mut map = Map::new();
        if let Some(o) = outcome {
            map.insert(
                "score".into(),
                o.score.map_or(Dynamic::UNIT, Dynamic::from_float),
            );
            map.insert(
                "grade".into(),
                o.grade
                    .as_deref()
                    .map_or(Dynamic::UNIT, |g| Dynamic::from(g.to_string())),
            );
            map.insert(
                "tags".into(),
                Dynamic::from_array(
                    o.tags
                        .iter()
                        .map(|t| Dynamic::from(t.to_string()))
                        .collect(),
                ),
            );
            map.insert(
                "fired".into(),
                Dynamic::from_array(
                    o.fired
                        .iter()
                        .map(|t| Dynamic::from(t.to_string()))
                        .collect(),
                ),
            );
            let prev_grade = prev.and_then(|p| p.grade.clone());
            map.insert(
                "prev_grade".into(),
                prev_grade.clone().map_or(Dynamic::UNIT, Dynamic::from),
            );
            let since = grade_since(o.grade.as_deref(), prev, self.as_of);
            map.insert(
                "days_in_grade".into(),
                since.map_or(Dynamic::UNIT, |s| {
                    Dynamic::from_int((self.as_of - s).num_days())
                }),
            );
        }
        Dynamic::from_map(map)
    }
}

/// The day an account entered its current grade: carried over while the grade holds.
pub fn grade_since(
    grade: Option<&str>,
    prev: Option<&PrevOutcome>,
    as_of: NaiveDate,
) -> Option<NaiveDate> {
    grade?;
    match prev {
        Some(p) if p.grade.as_deref() == grade => p.grade_since.or(Some(p.as_of)),
        _ => Some(as_of),
    }
}

fn inputs_of(expr: &Expr, scope: &Scope<'static>) -> Vec<(String, Dynamic)> {
    expr.reads
        .iter()
        .filter_map(|r| scope.get(r).map(|v| (r.clone(), v.clone())))
        .collect()
}

/// A rhai error as one readable sentence.
fn describe(e: &EvalAltResult) -> String {
    match e {
        EvalAltResult::ErrorTooManyOperations(_) => format!(
            "stopped after {} operations, the limit for one expression (is there an endless loop?)",
            super::engine::MAX_OPERATIONS
        ),
        EvalAltResult::ErrorFunctionNotFound(sig, _) => {
            format!("no function `{sig}` (are the value types what you expect?)")
        }
        other => {
            let text = other.to_string();
            match text.find(" (line ") {
                Some(i) => text[..i].to_string(),
                None => text,
            }
        }
    }
}
