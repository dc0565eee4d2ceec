//! Expressions over a run's results, evaluated for every account: what escalations and
//! report sections show and filter on. They see every entity column, every rule set's
//! result and `as_of`, and are compiled and checked like rules (`rules::compile`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::NaiveDate;
use rayon::prelude::*;
use rhai::{Dynamic, Engine, EvalAltResult, Map, Scope};

use crate::entity::Entity;
use crate::rules::compile::AS_OF;
use crate::rules::outcomes::{OutcomeRef, SetOutcomes};
use crate::rules::reads::Reads;
use crate::rules::{Expr, RuleSet};

pub use crate::rules::reads::reads_of;

/// A finished evaluation, as expressions over it read it.
#[derive(Clone, Copy)]
pub struct Results<'a> {
    pub as_of: NaiveDate,
    pub entity: &'a Entity,
    pub rule_sets: &'a [RuleSet],
    pub outcomes: &'a [SetOutcomes],
    pub engine: &'a Engine,
}

impl Results<'_> {
    /// `expr` for the account whose values `scope` holds ([`fill_scope`]).
    pub fn eval(&self, expr: &Expr, scope: &mut Scope) -> Result<Dynamic, Box<EvalAltResult>> {
        self.engine.eval_ast_with_scope::<Dynamic>(scope, &expr.ast)
    }
}

/// Whether a condition holds for one account, or why it could not be evaluated (shared by
/// the accounts a grades-only condition is evaluated once for).
pub type Condition = Result<bool, Arc<EvalAltResult>>;

/// Whether `when` holds for each account (or why it failed). A condition that reads nothing
/// but rule sets' grades is evaluated once per combination of grades rather than once per
/// account: there are a handful of combinations and a million accounts.
pub fn evaluate_condition(view: &Results, when: &Expr) -> Vec<Condition> {
    let reads = reads_of([when]);
    let plan = reads.plan(view);
    let run = |scope: &mut Scope<'static>, row: usize| {
        fill_scope(scope, view, row, &plan);
        match view.eval(when, scope) {
            Ok(v) => Ok(v.as_bool().unwrap_or(false)),
            Err(e) => Err(Arc::from(e)),
        }
    };
    let grades_only = plan.columns.is_empty()
        && reads.names.iter().all(|n| *n == AS_OF || plan.sets.iter().any(|(s, _, _)| s == n))
        && plan.sets.iter().all(|(_, _, fields)| fields.is_some_and(|f| f.iter().all(|f| *f == "grade")));
    if !grades_only {
        return (0..view.entity.len()).into_par_iter().map_init(Scope::new, |scope, row| run(scope, row)).collect();
    }
    let mut known: HashMap<Vec<Option<&str>>, Condition> = HashMap::new();
    let mut key: Vec<Option<&str>> = Vec::with_capacity(plan.sets.len());
    let mut scope = Scope::new();
    (0..view.entity.len())
        .map(|row| {
            key.clear();
            key.extend(plan.sets.iter().map(|&(_, set, _)| view.outcomes[set].get(row).grade()));
            if let Some(hit) = known.get(key.as_slice()) {
                return hit.clone();
            }
            let hit = run(&mut scope, row);
            known.insert(key.clone(), hit.clone());
            hit
        })
        .collect()
}

/// How an output expression is read for each account: directly when it only names an
/// entity column or a field of a rule set's result (most list columns), else in rhai.
/// Both give the same text.
pub enum Cell<'a> {
    Column(&'a duckdb::arrow::array::ArrayRef),
    Field(usize, ResultField),
    Eval(&'a Expr),
}

#[derive(Clone, Copy)]
pub enum ResultField {
    Grade,
    Score,
    Reasons,
    Tags,
    Fired,
}

impl<'a> Cell<'a> {
    pub fn of(view: &'a Results, e: &'a Expr) -> Cell<'a> {
        let name = e.source.trim();
        let is_ident = |s: &str| {
            s.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        let set = |s: &str| view.rule_sets.iter().position(|r| r.name == s);
        match name.split_once('.') {
            None if is_ident(name) && name != AS_OF && set(name).is_none() => {
                view.entity.column(name).map_or(Cell::Eval(e), Cell::Column)
            }
            Some((s, field)) if is_ident(s) => {
                let field = match field {
                    "grade" => ResultField::Grade,
                    "score" => ResultField::Score,
                    "reasons" => ResultField::Reasons,
                    "tags" => ResultField::Tags,
                    "fired" => ResultField::Fired,
                    _ => return Cell::Eval(e),
                };
                set(s).map_or(Cell::Eval(e), |i| Cell::Field(i, field))
            }
            _ => Cell::Eval(e),
        }
    }
}

impl ResultField {
    /// The field's text, as `exact_value` writes the value rhai reads (a list's cell).
    pub fn text(self, o: OutcomeRef) -> String {
        let list = |l: crate::rules::TextList| l.iter().collect::<Vec<_>>().join("; ");
        match self {
            ResultField::Grade => o.grade().unwrap_or_default().to_string(),
            ResultField::Score => o.score().map(crate::entity::exact_float).unwrap_or_default(),
            ResultField::Reasons => list(o.reasons()),
            ResultField::Tags => list(o.tags()),
            ResultField::Fired => list(o.fired()),
        }
    }
}

/// Only the names in `plan` are filled, and of each rule set's result only the fields
/// read: building every result map and every column for each account was most of the time
/// outputs took.
pub fn fill_scope(scope: &mut Scope<'static>, view: &Results, row: usize, plan: &ScopePlan) {
    scope.clear();
    scope.push_dynamic(AS_OF, Dynamic::from(view.as_of));
    for &(name, set, fields) in &plan.sets {
        scope.push_dynamic(name, outcome_map(view.outcomes[set].get(row), fields));
    }
    for &(name, column) in &plan.columns {
        scope.push_dynamic(name, crate::entity::cell(column, row));
    }
}

/// Which rule sets and columns [`fill_scope`] fills, resolved once for all accounts: looking
/// every name up for every account was a fifth of the time outputs took at 1M accounts.
pub struct ScopePlan<'r> {
    sets: Vec<(&'r str, usize, Option<&'r HashSet<&'r str>>)>,
    columns: Vec<(&'r str, &'r duckdb::arrow::array::ArrayRef)>,
}

impl<'a> Reads<'a> {
    pub fn plan<'r>(&'r self, view: &'r Results) -> ScopePlan<'r> {
        let sets = view
            .rule_sets
            .iter()
            .enumerate()
            .filter(|(_, s)| self.names.contains(s.name.as_str()))
            .map(|(i, s)| (s.name.as_str(), i, self.fields.get(s.name.as_str()).and_then(Option::as_ref)))
            .collect();
        let columns = view
            .entity
            .schema
            .columns
            .iter()
            .filter(|(name, _)| self.names.contains(name.as_str()))
            .filter_map(|(name, _)| Some((name.as_str(), view.entity.column(name)?)))
            .collect();
        ScopePlan { sets, columns }
    }
}

/// A rule set's result as expressions see it; with `fields`, only those.
fn outcome_map(o: OutcomeRef, fields: Option<&HashSet<&str>>) -> Dynamic {
    let mut map = Map::new();
    super::insert_result_fields(&mut map, o, |f| fields.is_none_or(|set| set.contains(f)));
    Dynamic::from_map(map)
}
