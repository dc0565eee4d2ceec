//! Unit tests written inside rule files (`tests:`), run by `keepwell test`.
//!
//! Each test gives an entity row (columns left out are missing), optionally this rule set's
//! previous result and the results of rule sets it depends on, and the expected outcome.
//! Dependencies not given are evaluated on the same row.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{Duration, NaiveDate};
use minijinja::Environment;
use rhai::{Dynamic, Engine, Scope};

use crate::entity::{ColumnType, Schema, format_float};
use crate::rules::RuleSet;
use crate::rules::eval::{Evaluator, RowValues};
use crate::rules::outcomes::Outcome;
use crate::rules::outcomes::OutcomeRef;
use crate::rules::previous::{PrevOutcome, Previous};
use crate::rules::raw::{RawExpect, RawGiven, RawTest};

/// The result of one test.
#[derive(Debug, Clone)]
pub struct TestResult {
    pub name: String,
    /// `file:line` of the test.
    pub location: String,
    /// Empty when the test passed; otherwise one line per difference.
    pub failures: Vec<String>,
    /// What fired in the rule set under test, for coverage.
    pub fired: Vec<String>,
}

struct TestRow {
    values: HashMap<String, Dynamic>,
}

impl RowValues for TestRow {
    fn key(&self) -> &str {
        "test"
    }

    fn value(&self, column: &str) -> Dynamic {
        self.values.get(column).cloned().unwrap_or(Dynamic::UNIT)
    }
}

/// What the tests of one rule set need from the compiled job.
pub struct TestContext<'a> {
    pub sets: &'a [RuleSet],
    pub schema: &'a Schema,
    pub engine: &'a Engine,
    pub templates: &'a Environment<'static>,
    pub today: NaiveDate,
}

pub fn run_tests(ctx: &TestContext, set: &RuleSet, tests: &[RawTest]) -> Vec<TestResult> {
    tests.iter().map(|t| run_test(ctx, set, t)).collect()
}

fn run_test(ctx: &TestContext, set: &RuleSet, test: &RawTest) -> TestResult {
    let location = format!("{}:{}", set.file.display, test.name.referenced.line());
    let mut result = TestResult { name: test.name.value.clone(), location, failures: Vec::new(), fired: Vec::new() };
    let row = match test_row(ctx.schema, test) {
        Ok(row) => row,
        Err(failures) => {
            result.failures = failures;
            return result;
        }
    };
    let as_of = test.as_of.unwrap_or(ctx.today);
    let dated;
    let engine = if as_of == ctx.today {
        ctx.engine
    } else {
        let lookups = crate::rules::lookup::registry(ctx.engine).unwrap_or_default();
        dated = crate::rules::engine::build(as_of, lookups);
        &dated
    };
    let evaluator = Evaluator { engine, templates: ctx.templates, as_of };
    let prev_as_of = as_of - Duration::days(1);
    let mut previous = Previous::new(prev_as_of);
    if let Some(prev) = &test.prev {
        let scores: Vec<Option<f64>> =
            if prev.scores.is_empty() { vec![prev.score] } else { prev.scores.iter().map(|s| Some(*s)).collect() };
        let outcome = PrevOutcome {
            as_of: prev_as_of,
            score: prev.score,
            grade: prev.grade.as_deref(),
            grade_since: prev.days_in_grade.map(|d| prev_as_of - Duration::days(d)),
            scores: &scores,
        };
        previous.insert(&set.name, "test", &outcome);
    }
    for name in test.given.keys() {
        if !set.depends_on.contains(name) {
            result.failures.push(format!("`given` names `{name}`, which rule set `{}` does not depend on", set.name));
        }
    }
    let mut done: Vec<(String, Outcome)> = Vec::new();
    let mut scope = Scope::new();
    for s in chain(ctx.sets, set) {
        let outcome = match test.given.get(&s.name) {
            Some(given) => given_outcome(given),
            None => {
                let view: Vec<(&str, OutcomeRef)> = done.iter().map(|(n, o)| (n.as_str(), o.into())).collect();
                let prev = if s.name == set.name { &previous } else { &Previous::default() };
                evaluator.evaluate(s, &row, &view, prev, &mut scope, None)
            }
        };
        done.push((s.name.clone(), outcome));
    }
    let actual = done.pop().map(|(_, o)| o).unwrap_or_default();
    result.fired = actual.fired.iter().map(|f| f.to_string()).collect();
    result.failures.extend(compare(&test.expect, &actual));
    result
}

/// The rule set and everything it depends on, dependencies first.
fn chain<'a>(sets: &'a [RuleSet], target: &'a RuleSet) -> Vec<&'a RuleSet> {
    let mut needed = vec![target.name.clone()];
    let mut i = 0;
    while i < needed.len() {
        if let Some(s) = sets.iter().find(|s| s.name == needed[i]) {
            for d in &s.depends_on {
                if !needed.contains(d) {
                    needed.push(d.clone());
                }
            }
        }
        i += 1;
    }
    sets.iter().filter(|s| needed.contains(&s.name) && s.name != target.name).chain(std::iter::once(target)).collect()
}

fn given_outcome(given: &RawGiven) -> Outcome {
    Outcome {
        score: given.score,
        grade: given.grade.as_deref().map(Arc::from),
        fired: given.fired.iter().map(|f| Arc::from(f.as_str())).collect(),
        reasons: Default::default(),
        tags: given.tags.iter().map(|t| Arc::from(t.as_str())).collect(),
        errors: Default::default(),
    }
}

/// The test's row, each value typed by the entity view's column.
fn test_row(schema: &Schema, test: &RawTest) -> Result<TestRow, Vec<String>> {
    let mut values = HashMap::new();
    let mut failures = Vec::new();
    for (column, value) in &test.row {
        match schema.get(column) {
            None => failures.push(format!(
                "the row names `{column}`, which is not a column of the entity view{}",
                crate::config::diagnostic::did_you_mean(column, schema.names())
                    .map(|h| format!(" ({h})"))
                    .unwrap_or_default()
            )),
            Some(t) => match typed(value, t) {
                Ok(v) => {
                    values.insert(column.clone(), v);
                }
                Err(message) => failures.push(format!("the row's `{column}`: {message}")),
            },
        }
    }
    if failures.is_empty() { Ok(TestRow { values }) } else { Err(failures) }
}

/// Why a test row's value does not fit its column.
#[derive(Debug, thiserror::Error)]
enum ValueError {
    #[error("`{0}` is not a date (YYYY-MM-DD)")]
    NotADate(String),
    #[error("{0} is not a whole number")]
    NotWhole(serde_json::Number),
    #[error("`{0}` is not a timestamp (YYYY-MM-DD HH:MM:SS)")]
    NotATimestamp(String),
    #[error("`{0}` is text, and the column is true or false: write true or false (without quotes)")]
    NotABool(String),
    #[error("`{0}` is text, and the column holds numbers: write the number without quotes")]
    NotANumber(String),
    #[error("a value cannot be a map")]
    Map,
}

fn typed(value: &serde_json::Value, t: &ColumnType) -> Result<Dynamic, ValueError> {
    use serde_json::Value as J;
    Ok(match (value, t) {
        (J::Null, _) => Dynamic::UNIT,
        (J::String(s), ColumnType::Date) => {
            Dynamic::from(NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| ValueError::NotADate(s.clone()))?)
        }
        (J::String(s), ColumnType::Timestamp) => {
            Dynamic::from(crate::rules::time::parse_timestamp(s).ok_or_else(|| ValueError::NotATimestamp(s.clone()))?)
        }
        (J::String(s), ColumnType::Bool) => return Err(ValueError::NotABool(s.clone())),
        (J::String(s), ColumnType::Integer | ColumnType::Float) => return Err(ValueError::NotANumber(s.clone())),
        (J::Number(n), ColumnType::Integer) => match n.as_i64() {
            Some(i) => Dynamic::from_int(i),
            None => return Err(ValueError::NotWhole(n.clone())),
        },
        (J::Number(n), _) => Dynamic::from_float(n.as_f64().unwrap_or_default()),
        (J::String(s), _) => Dynamic::from(s.clone()),
        (J::Bool(b), _) => Dynamic::from_bool(*b),
        (J::Array(items), _) => {
            Dynamic::from_array(items.iter().map(|i| typed(i, &ColumnType::Text)).collect::<Result<_, _>>()?)
        }
        (J::Object(_), _) => return Err(ValueError::Map),
    })
}

fn compare(expect: &RawExpect, actual: &Outcome) -> Vec<String> {
    let mut failures: Vec<String> =
        actual.errors.iter().map(|e| format!("rule `{}` failed: {}", e.rule, e.message)).collect();
    let show = |v: Option<f64>| v.map_or("none".to_string(), format_float);
    if let Some(score) = expect.score
        && actual.score.is_none_or(|a| (a - score).abs() > 1e-9)
    {
        failures.push(format!("score: expected {}, got {}", format_float(score), show(actual.score)));
    }
    for (label, expected) in [("grade", &expect.grade), ("class", &expect.class)] {
        if let Some(g) = expected
            && actual.grade.as_deref().unwrap_or("none") != g
        {
            failures.push(format!("{label}: expected {g}, got {}", actual.grade.as_deref().unwrap_or("none")));
        }
    }
    let list = |v: &[String]| format!("[{}]", v.join(", "));
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    if let Some(fired) = &expect.fired {
        let actual_fired = sorted(actual.fired.iter().map(|f| f.to_string()).collect());
        if sorted(fired.clone()) != actual_fired {
            failures.push(format!("fired: expected {}, got {}", list(fired), list(&actual_fired)));
        }
    }
    if let Some(tags) = &expect.tags {
        let actual_tags = sorted(actual.tags.iter().map(|f| f.to_string()).collect());
        if sorted(tags.clone()) != actual_tags {
            failures.push(format!("tags: expected {}, got {}", list(tags), list(&actual_tags)));
        }
    }
    if let Some(reasons) = &expect.reasons
        && reasons[..] != actual.reasons[..]
    {
        failures.push(format!("reasons: expected {}, got {}", list(reasons), list(&actual.reasons)));
    }
    failures
}
