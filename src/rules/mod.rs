//! Rule sets: parsed from `rules/*.yaml`, compiled once per run into rhai ASTs, then
//! evaluated for every account in parallel.

pub mod compile;
pub mod engine;
pub mod eval;
pub mod raw;
pub mod row;

use std::sync::Arc;

use rhai::AST;

use crate::diagnostic::SourceFile;
use crate::yaml::TextMap;

pub use compile::{RuleSetSources, compile_rule_sets};
pub use eval::{Outcome, RuleError, RuleTrace};

/// A compiled rule set, ready to evaluate.
#[derive(Debug)]
pub struct RuleSet {
    pub name: String,
    pub description: Option<String>,
    pub file: SourceFile,
    pub depends_on: Vec<String>,
    pub score: ScoreRange,
    pub grades: Vec<Grade>,
    pub rules: Vec<Rule>,
    /// Entity columns read by any expression or template of this rule set, in first-use order.
    pub inputs: Vec<String>,
}

#[derive(Debug, Clone, Copy)]
pub struct ScoreRange {
    pub base: f64,
    pub min: f64,
    pub max: f64,
}

/// Grades are ordered from the highest threshold down; the last has no threshold.
#[derive(Debug, Clone)]
pub struct Grade {
    pub name: Arc<str>,
    pub min: Option<f64>,
}

#[derive(Debug)]
pub struct Rule {
    pub id: Arc<str>,
    pub description: Option<String>,
    pub when: Expr,
    pub points: Points,
    pub tags: Vec<Arc<str>>,
    /// Name of the reason template in the run's template environment.
    pub reason: Option<String>,
    pub enabled: bool,
}

#[derive(Debug)]
pub enum Points {
    Fixed(f64),
    Computed(Expr),
}

/// A compiled expression and what it reads.
#[derive(Debug)]
pub struct Expr {
    pub source: String,
    pub ast: AST,
    /// Variables the expression reads (entity columns, rule sets, `prev`, `as_of`).
    pub reads: Vec<String>,
    pub map: TextMap,
}

impl RuleSet {
    /// The grade for a score: the first grade whose threshold the score reaches.
    pub fn grade_for(&self, score: f64) -> Option<Arc<str>> {
        self.grades
            .iter()
            .find(|g| g.min.is_none_or(|min| score >= min))
            .map(|g| g.name.clone())
    }
}
