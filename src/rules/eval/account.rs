//! One account's rule set evaluated in rhai: each rule, measure or class in turn, with its
//! reasons, and a trace for `explain`.

use std::sync::Arc;

use rhai::{Dynamic, EvalAltResult, Map, Scope};

use super::{
    Ctx, Done, Evaluator, RowValues, RuleStatus, RuleTrace, describe, inputs_of, insert_result_fields, vars_of,
};
use crate::entity::to_template_value;
use crate::rules::compile::{AS_OF, PREV};
use crate::rules::engine::number;
use crate::rules::outcomes::{Outcome, OutcomeRef, RuleError, ScriptResult, script_outcome};
use crate::rules::previous::{PrevOutcome, Previous, grade_since};
use crate::rules::reason::ReasonError;
use crate::rules::{Class, Expr, Measure, Points, Rule, RuleSet, Scoring};

/// Why a condition or a measure gave no answer for an account: an error for that account.
#[derive(Debug, thiserror::Error)]
pub(super) enum ExprError {
    /// The expression failed (described as people read it).
    #[error("{0}")]
    Failed(String),
    #[error("the condition must give true or false, but gave {0}")]
    NotBool(String),
    #[error("`{field}` must give a number{purpose}, but gave {ty}")]
    NotNumber { field: &'static str, purpose: &'static str, ty: &'static str },
    #[error("`{key}` is not listed in the map of measure `{measure}`")]
    NotInMap { key: String, measure: Arc<str> },
}

impl Evaluator<'_> {
    pub(super) fn points(
        &self,
        ctx: &Ctx,
        rules: &[Rule],
        scope: &mut Scope<'static>,
        mut trace: Option<&mut Vec<RuleTrace>>,
    ) -> Outcome {
        let mut outcome = Outcome::default();
        let mut total = ctx.set.score.base;
        for rule in rules {
            let (status, points, mut reason) =
                if rule.enabled { self.run_rule(ctx, rule, scope) } else { (RuleStatus::Disabled, 0.0, None) };
            match &status {
                RuleStatus::Fired => {
                    total += points;
                    // The reason is kept twice only for `explain`.
                    let fired = if trace.is_some() { reason.clone() } else { reason.take() };
                    fire(&mut outcome, &rule.id, fired, &rule.tags);
                }
                RuleStatus::Error(message) => {
                    outcome.errors.push(RuleError { rule: rule.id.clone(), message: message.clone() })
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
                t.push(RuleTrace { rule: rule.id.clone(), status, inputs, points, reason, detail: None });
            }
        }
        outcome.score = Some(total);
        outcome
    }

    pub(super) fn run_rule(
        &self,
        ctx: &Ctx,
        rule: &Rule,
        scope: &mut Scope<'static>,
    ) -> (RuleStatus, f64, Option<String>) {
        let fired = match self.condition(ctx, &rule.when, scope) {
            Ok(Some(fired)) => fired,
            Ok(None) => return (RuleStatus::NotApplicable, 0.0, None),
            Err(e) => return (RuleStatus::Error(e.to_string()), 0.0, None),
        };
        if !fired {
            return (RuleStatus::NotFired, 0.0, None);
        }
        let points = match &rule.points {
            Points::Fixed(p) => *p,
            Points::Computed(e) => match self.value(ctx, e, scope) {
                Err(e) => return (RuleStatus::Error(describe(&e)), 0.0, None),
                Ok(v) if v.is_unit() => 0.0,
                Ok(v) => match number(&v) {
                    Some(p) => p,
                    None => {
                        return (
                            RuleStatus::Error(format!("`points` must give a number, but gave {}", v.type_name())),
                            0.0,
                            None,
                        );
                    }
                },
            },
        };
        match rule.reason.as_ref().map(|name| self.reason(ctx, name, scope, points)) {
            Some(Err(e)) => (RuleStatus::Error(e.to_string()), 0.0, None),
            Some(Ok(text)) => (RuleStatus::Fired, points, Some(text)),
            None => (RuleStatus::Fired, points, None),
        }
    }

    /// `Some(true)` fires, `Some(false)` does not, `None` did not fire because of a missing
    /// value it read.
    pub(super) fn condition(
        &self,
        ctx: &Ctx,
        when: &Expr,
        scope: &mut Scope<'static>,
    ) -> Result<Option<bool>, ExprError> {
        if let Some((columns, row)) = ctx.fast
            && let Some(fired) = columns.condition(when, row)
        {
            return Ok(Some(fired));
        }
        self.ensure(ctx, scope, &when.reads);
        let v = self
            .engine
            .eval_ast_with_scope::<Dynamic>(scope, &when.ast)
            .map_err(|e| ExprError::Failed(describe(&e)))?;
        let fired = if v.is_unit() { false } else { v.as_bool().map_err(|t| ExprError::NotBool(t.to_string()))? };
        let missing = !fired && when.shown_values(scope).iter().any(|(_, v)| v.is_unit());
        Ok(if missing { None } else { Some(fired) })
    }

    /// Weighted mean of the measures that have a score; N/A measures give their weight to
    /// the others.
    pub(super) fn scorecard(
        &self,
        ctx: &Ctx,
        measures: &[Measure],
        scope: &mut Scope<'static>,
        mut trace: Option<&mut Vec<RuleTrace>>,
    ) -> Outcome {
        let mut outcome = Outcome::default();
        let (mut weighted, mut weights) = (0.0, 0.0);
        for m in measures {
            let (status, score, reason) = match self.measure(ctx, m, scope) {
                Ok(Some(score)) => {
                    weighted += score * m.weight;
                    weights += m.weight;
                    let reason = if score < m.reason_below {
                        m.reason.as_ref().map(|n| self.reason(ctx, n, scope, score))
                    } else {
                        None
                    };
                    match reason {
                        Some(Err(e)) => (RuleStatus::Error(e.to_string()), score, None),
                        Some(Ok(text)) => {
                            // The reason is kept twice only for `explain`.
                            let shown = trace.is_some().then(|| text.clone());
                            fire(&mut outcome, &m.id, Some(text), &[]);
                            (RuleStatus::Scored, score, shown)
                        }
                        None => {
                            if score < m.reason_below {
                                fire(&mut outcome, &m.id, None, &[]);
                            }
                            (RuleStatus::Scored, score, None)
                        }
                    }
                }
                Ok(None) => (RuleStatus::NotApplicable, 0.0, None),
                Err(e) => (RuleStatus::Error(e.to_string()), 0.0, None),
            };
            if let RuleStatus::Error(message) = &status {
                outcome.errors.push(RuleError { rule: m.id.clone(), message: message.clone() });
            }
            if let Some(t) = trace.as_deref_mut() {
                // Built for `explain` only: formatting it for every account was measurable.
                let detail = match status {
                    RuleStatus::Scored => Some(format!("weight {}", m.weight)),
                    RuleStatus::NotApplicable => Some("N/A: its weight is spread over the other measures".into()),
                    _ => None,
                };
                t.push(RuleTrace {
                    rule: m.id.clone(),
                    status,
                    inputs: inputs_of(m.scoring.expr(), scope),
                    points: score,
                    reason,
                    detail,
                });
            }
        }
        outcome.score = (weights > 0.0).then(|| weighted / weights);
        outcome
    }

    /// A measure's score from 0 to 100, or `None` when its value is missing.
    pub(super) fn measure(&self, ctx: &Ctx, m: &Measure, scope: &mut Scope<'static>) -> Result<Option<f64>, ExprError> {
        let v = self.value(ctx, m.scoring.expr(), scope).map_err(|e| ExprError::Failed(describe(&e)))?;
        if v.is_unit() {
            return Ok(None);
        }
        let score = match &m.scoring {
            Scoring::Direct(_) => {
                number(&v).ok_or_else(|| ExprError::NotNumber { field: "score", purpose: "", ty: v.type_name() })?
            }
            Scoring::Bands { bands, .. } => {
                let x = number(&v).ok_or_else(|| ExprError::NotNumber {
                    field: "value",
                    purpose: " for bands",
                    ty: v.type_name(),
                })?;
                match bands.iter().find(|(min, _)| min.is_none_or(|m| x >= m)) {
                    Some((_, s)) => *s,
                    None => return Ok(None),
                }
            }
            Scoring::Map { map, .. } => {
                let key = crate::entity::display_value(&v);
                match map.iter().find(|(k, _)| *k == key) {
                    Some((_, s)) => *s,
                    None => {
                        return Err(ExprError::NotInMap { key, measure: m.id.clone() });
                    }
                }
            }
        };
        Ok(Some(score.clamp(0.0, 100.0)))
    }

    pub(super) fn classify(
        &self,
        ctx: &Ctx,
        classes: &[Class],
        default: (&Option<Arc<str>>, &Option<String>),
        scope: &mut Scope<'static>,
        mut trace: Option<&mut Vec<RuleTrace>>,
    ) -> Outcome {
        let mut outcome = Outcome::default();
        for c in classes {
            let (status, reason) = match self.condition(ctx, &c.when, scope) {
                Ok(Some(true)) => match c.reason.as_ref().map(|n| self.reason(ctx, n, scope, 0.0)) {
                    Some(Err(e)) => (RuleStatus::Error(e.to_string()), None),
                    Some(Ok(text)) => (RuleStatus::Fired, Some(text)),
                    None => (RuleStatus::Fired, None),
                },
                Ok(Some(false)) => (RuleStatus::NotFired, None),
                Ok(None) => (RuleStatus::NotApplicable, None),
                Err(e) => (RuleStatus::Error(e.to_string()), None),
            };
            let matched = status == RuleStatus::Fired;
            if let RuleStatus::Error(message) = &status {
                outcome.errors.push(RuleError { rule: c.id.clone(), message: message.clone() });
            }
            if let Some(t) = trace.as_deref_mut() {
                t.push(RuleTrace {
                    rule: c.id.clone(),
                    status,
                    inputs: inputs_of(&c.when, scope),
                    points: 0.0,
                    reason: reason.clone(),
                    detail: None,
                });
            }
            if matched {
                fire(&mut outcome, &c.id, reason, &[]);
                outcome.grade = Some(c.id.clone());
                return outcome;
            }
            if !outcome.errors.is_empty() {
                return outcome;
            }
        }
        let (class, reason) = default;
        outcome.grade = class.clone();
        if let Some(name) = reason {
            match self.reason(ctx, name, scope, 0.0) {
                Ok(text) => outcome.reasons.push(text),
                Err(e) => outcome.errors.push(RuleError { rule: Arc::from("default"), message: e.to_string() }),
            }
        }
        outcome
    }

    /// A script returns a map: `score` (graded by the set's grades) and/or `grade`, and
    /// optionally `fired`, `reasons` and `tags`.
    pub(super) fn script(
        &self,
        script: &Expr,
        scope: &mut Scope<'static>,
        trace: Option<&mut Vec<RuleTrace>>,
    ) -> Outcome {
        let mut outcome = Outcome::default();
        let id: Arc<str> = Arc::from("script");
        let result =
            self.engine.eval_ast_with_scope::<Dynamic>(scope, &script.ast).map_err(|e| describe(&e)).and_then(|v| {
                v.try_cast::<Map>().ok_or_else(|| {
                    "the script must end with a map such as #{ score: 40, reasons: [\"...\"] }".to_string()
                })
            });
        let status = match result {
            Ok(map) => {
                outcome = script_outcome(ScriptResult::of(&map));
                RuleStatus::Fired
            }
            Err(message) => {
                outcome.errors.push(RuleError { rule: id.clone(), message: message.clone() });
                RuleStatus::Error(message)
            }
        };
        if let Some(t) = trace {
            t.push(RuleTrace {
                rule: id,
                status,
                inputs: inputs_of(script, scope),
                points: outcome.score.unwrap_or(0.0),
                reason: None,
                detail: None,
            });
        }
        outcome
    }

    /// An expression's value: from its column when vectorised, else from rhai.
    pub(super) fn value(&self, ctx: &Ctx, e: &Expr, scope: &mut Scope<'static>) -> Result<Dynamic, Box<EvalAltResult>> {
        if let Some((columns, row)) = ctx.fast
            && let Some(v) = columns.value(e, row)
        {
            return Ok(v);
        }
        self.ensure(ctx, scope, &e.reads);
        self.engine.eval_ast_with_scope::<Dynamic>(scope, &e.ast)
    }

    pub(super) fn reason(
        &self,
        ctx: &Ctx,
        name: &str,
        scope: &mut Scope<'static>,
        points: f64,
    ) -> Result<String, ReasonError> {
        let vars = vars_of(ctx.set, name);
        self.ensure(ctx, scope, vars);
        if let Some(parts) = ctx.set.reason_parts.get(name)
            && let Some(text) = crate::rules::reason::render(parts, scope, points)
        {
            return Ok(text);
        }
        self.render_reason(name, vars, scope, points)
    }

    /// Adds to the scope whichever of `names` it does not hold yet.
    pub(super) fn ensure(&self, ctx: &Ctx, scope: &mut Scope<'static>, names: &[String]) {
        if ctx.full {
            return;
        }
        let key = ctx.row.key();
        for name in names {
            if scope.contains(name) {
                continue;
            }
            let value = if name == AS_OF {
                Dynamic::from(self.as_of)
            } else if name == PREV {
                self.prev_map(ctx.previous.get(&ctx.set.name, key))
            } else if ctx.set.depends_on.iter().any(|d| d == name) {
                let outcome = ctx.done.iter().find(|(n, _)| n == name).map(|&(_, o)| o);
                let fields = ctx.fields.and_then(|f| f.get(name.as_str())).and_then(Option::as_ref);
                self.outcome_map_of(outcome, ctx.previous.get(name, key), fields)
            } else {
                ctx.row.value(name)
            };
            scope.push_dynamic(name.clone(), value);
        }
    }

    /// Renders a reason with only the names it reads (converting every value in scope for
    /// every fired rule would dominate the run).
    pub(super) fn render_reason(
        &self,
        name: &str,
        vars: &[String],
        scope: &Scope<'static>,
        points: f64,
    ) -> Result<String, ReasonError> {
        let template = self.templates.get_template(name).map_err(ReasonError::NoTemplate)?;
        // Plain text (most class reasons) needs no rendering.
        let source = template.source();
        if !source.contains(['{', '\n']) {
            return Ok(source.to_string());
        }
        let mut ctx: std::collections::BTreeMap<String, minijinja::Value> =
            vars.iter().filter_map(|v| scope.get(v).map(|value| (v.clone(), to_template_value(value)))).collect();
        ctx.insert("points".into(), to_template_value(&Dynamic::from_float(points)));
        template.render(ctx).map_err(ReasonError::Render)
    }

    pub(super) fn fill_scope(
        &self,
        scope: &mut Scope<'static>,
        set: &RuleSet,
        row: &dyn RowValues,
        done: &Done,
        previous: &Previous,
    ) {
        scope.clear();
        let key = row.key();
        scope.push_dynamic(AS_OF, Dynamic::from(self.as_of));
        let prev = if set.reads_prev { self.prev_map(previous.get(&set.name, key)) } else { Dynamic::UNIT };
        scope.push_dynamic(PREV, prev);
        for dep in &set.depends_on {
            let outcome = done.iter().find(|(n, _)| n == dep).map(|&(_, o)| o);
            scope.push_dynamic(dep.clone(), self.outcome_map(outcome, previous.get(dep, key)));
        }
        for column in &set.inputs {
            scope.push_dynamic(column.clone(), row.value(column));
        }
    }

    /// `prev.score`, `prev.grade`, `prev.days_in_grade`, `prev.as_of`, `prev.scores`:
    /// missing on a first run.
    pub(super) fn prev_map(&self, prev: Option<PrevOutcome>) -> Dynamic {
        let mut map = Map::new();
        if let Some(p) = prev {
            map.insert("score".into(), p.score.map_or(Dynamic::UNIT, Dynamic::from_float));
            map.insert("grade".into(), p.grade.map_or(Dynamic::UNIT, |g| Dynamic::from(g.to_string())));
            map.insert(
                "days_in_grade".into(),
                p.grade_since.map_or(Dynamic::UNIT, |s| Dynamic::from_int((p.as_of - s).num_days())),
            );
            map.insert("as_of".into(), Dynamic::from(p.as_of));
            map.insert(
                "scores".into(),
                Dynamic::from_array(p.scores.iter().map(|s| s.map_or(Dynamic::UNIT, Dynamic::from_float)).collect()),
            );
        }
        Dynamic::from_map(map)
    }

    /// What a dependent rule set sees of this one: `risk.score`, `risk.grade`, `risk.tags`,
    /// `risk.fired`, `risk.reasons`, `risk.prev_grade`, `risk.days_in_grade`.
    pub fn outcome_map(&self, outcome: Option<OutcomeRef>, prev: Option<PrevOutcome>) -> Dynamic {
        self.outcome_map_of(outcome, prev, None)
    }

    /// [`Evaluator::outcome_map`] with only `fields`, when given.
    pub(super) fn outcome_map_of(
        &self,
        outcome: Option<OutcomeRef>,
        prev: Option<PrevOutcome>,
        fields: Option<&std::collections::HashSet<String>>,
    ) -> Dynamic {
        let mut map = Map::new();
        let wanted = |f: &str| fields.is_none_or(|set| set.contains(f));
        if let Some(o) = outcome {
            insert_result_fields(&mut map, o, wanted);
            if wanted("prev_grade") {
                map.insert(
                    "prev_grade".into(),
                    prev.and_then(|p| p.grade).map_or(Dynamic::UNIT, |g| Dynamic::from(g.to_string())),
                );
            }
            if wanted("days_in_grade") {
                let since = grade_since(o.grade(), prev, self.as_of);
                map.insert(
                    "days_in_grade".into(),
                    since.map_or(Dynamic::UNIT, |s| Dynamic::from_int((self.as_of - s).num_days())),
                );
            }
        }
        Dynamic::from_map(map)
    }
}

pub(super) fn fire(outcome: &mut Outcome, id: &Arc<str>, reason: Option<String>, tags: &[Arc<str>]) {
    outcome.fired.push(id.clone());
    outcome.reasons.extend(reason);
    for tag in tags {
        if !outcome.tags.contains(tag) {
            outcome.tags.push(tag.clone());
        }
    }
}
