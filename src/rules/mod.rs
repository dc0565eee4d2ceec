//! Rule sets: parsed from `rules/*.yaml`, compiled once per run into rhai ASTs, then
//! evaluated for every account in parallel.

pub mod compile;
pub mod engine;
pub mod eval;
pub mod imported;
pub mod lookup;
pub mod outcomes;
pub mod previous;
pub mod raw;
pub mod reads;
pub mod reason;
pub mod sql;
pub mod time;

use std::sync::Arc;

use rhai::AST;

use crate::config::diagnostic::SourceFile;
use crate::config::yaml::TextMap;

pub use compile::{RuleSetSources, compile_rule_sets};
pub use eval::RuleTrace;
pub use outcomes::{Outcome, RuleError};
pub use outcomes::{OutcomeRef, SetOutcomes, TextList};

/// A compiled rule set, ready to evaluate.
#[derive(Debug)]
pub struct RuleSet {
    pub name: String,
    pub description: Option<String>,
    pub file: SourceFile,
    pub depends_on: Vec<String>,
    pub score: ScoreRange,
    pub grades: Vec<Grade>,
    pub body: Body,
    /// Entity columns read by any expression or template of this rule set, in first-use order.
    pub inputs: Vec<String>,
    /// The names each reason template reads, by template name: only those are passed to it.
    pub reason_vars: std::collections::HashMap<String, Vec<String>>,
    /// The reason templates that are plain text and values, written without minijinja.
    pub reason_parts: std::collections::HashMap<String, Vec<reason::Part>>,
    /// Whether any expression or reason reads `prev`, so it is only built when needed.
    pub reads_prev: bool,
}

/// What a rule set computes, by kind.
#[derive(Debug)]
pub enum Body {
    /// Points rules: the score is the base plus the points of every rule that fires.
    Points(Vec<Rule>),
    /// Weighted measures scored 0-100; a measure with missing inputs is N/A and its weight
    /// is spread over the others.
    Scorecard(Vec<Measure>),
    /// The first class whose condition holds, else the default.
    Classification { classes: Vec<Class>, default: Option<Arc<str>>, default_reason: Option<String> },
    /// A rhai script that returns `#{ score, grade, fired, reasons, tags }`.
    Script(Box<Script>),
}

#[derive(Debug)]
pub struct Script {
    pub script: Expr,
    pub file: SourceFile,
}

#[derive(Debug)]
pub struct Measure {
    pub id: Arc<str>,
    pub description: Option<String>,
    pub weight: f64,
    pub scoring: Scoring,
    pub manual: bool,
    pub reason: Option<String>,
    pub reason_below: f64,
}

#[derive(Debug)]
pub enum Scoring {
    /// The expression gives the score directly.
    Direct(Expr),
    /// The value scores as the first band whose `min` it reaches.
    Bands { value: Expr, bands: Vec<(Option<f64>, f64)> },
    /// The value (text) scores as listed.
    Map { value: Expr, map: Vec<(String, f64)> },
}

impl Scoring {
    pub fn expr(&self) -> &Expr {
        match self {
            Scoring::Direct(e) | Scoring::Bands { value: e, .. } | Scoring::Map { value: e, .. } => e,
        }
    }
}

#[derive(Debug)]
pub struct Class {
    pub id: Arc<str>,
    pub description: Option<String>,
    pub when: Expr,
    pub reason: Option<String>,
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
    Computed(Box<Expr>),
}

/// A compiled expression and what it reads.
#[derive(Debug)]
pub struct Expr {
    pub source: String,
    pub ast: AST,
    /// Variables the expression reads (entity columns, rule sets, `prev`, `as_of`).
    pub reads: Vec<String>,
    /// What it reads as a person sees it: `arr`, `risk.grade`, `prev.score`.
    pub shows: Vec<String>,
    pub map: TextMap,
}

impl Expr {
    /// The values of what the expression reads, in `scope`; a field of a missing map is
    /// missing.
    pub fn shown_values(&self, scope: &rhai::Scope) -> Vec<(String, rhai::Dynamic)> {
        self.shows
            .iter()
            .filter_map(|path| {
                let (var, field) = match path.split_once('.') {
                    Some((v, f)) => (v, Some(f)),
                    None => (path.as_str(), None),
                };
                let value = scope.get(var)?.clone();
                let value = match field {
                    None => value,
                    Some(f) => {
                        value.try_cast::<rhai::Map>().and_then(|m| m.get(f).cloned()).unwrap_or(rhai::Dynamic::UNIT)
                    }
                };
                Some((path.clone(), value))
            })
            .collect()
    }
}

impl RuleSet {
    /// Every compiled expression of the rule set.
    pub fn expressions(&self) -> Vec<&Expr> {
        match &self.body {
            Body::Points(rules) => rules
                .iter()
                .flat_map(|r| {
                    let points = match &r.points {
                        Points::Computed(e) => Some(&**e),
                        Points::Fixed(_) => None,
                    };
                    std::iter::once(&r.when).chain(points)
                })
                .collect(),
            Body::Scorecard(measures) => measures.iter().map(|m| m.scoring.expr()).collect(),
            Body::Classification { classes, .. } => classes.iter().map(|c| &c.when).collect(),
            Body::Script(s) => vec![&s.script],
        }
    }

    /// Names of the reason templates of the rule set.
    pub fn reason_templates(&self) -> Vec<&str> {
        match &self.body {
            Body::Points(rules) => rules.iter().filter_map(|r| r.reason.as_deref()).collect(),
            Body::Scorecard(measures) => measures.iter().filter_map(|m| m.reason.as_deref()).collect(),
            Body::Classification { classes, default_reason, .. } => {
                classes.iter().filter_map(|c| c.reason.as_deref()).chain(default_reason.as_deref()).collect()
            }
            Body::Script(_) => Vec::new(),
        }
    }

    /// The ids a test can see fire: enabled rules, measures (below their threshold) and
    /// classes. Scripts name their own.
    pub fn rule_ids(&self) -> Vec<Arc<str>> {
        match &self.body {
            Body::Points(rules) => rules.iter().filter(|r| r.enabled).map(|r| r.id.clone()).collect(),
            Body::Scorecard(measures) => measures.iter().map(|m| m.id.clone()).collect(),
            Body::Classification { classes, .. } => classes.iter().map(|c| c.id.clone()).collect(),
            Body::Script(_) => Vec::new(),
        }
    }

    /// Every grade (or class) the rule set can give, best known order first.
    pub fn grade_names(&self) -> Vec<Arc<str>> {
        match &self.body {
            Body::Classification { classes, default, .. } => {
                let mut names: Vec<Arc<str>> = classes.iter().map(|c| c.id.clone()).collect();
                names.extend(default.clone().filter(|d| !names.contains(d)));
                names
            }
            _ => self.grades.iter().map(|g| g.name.clone()).collect(),
        }
    }

    /// `points`, `scorecard`, `classification` or `script`.
    pub fn kind(&self) -> &'static str {
        match self.body {
            Body::Points(_) => "points",
            Body::Scorecard(_) => "scorecard",
            Body::Classification { .. } => "classification",
            Body::Script(_) => "script",
        }
    }

    /// The grade for a score: the first grade whose threshold the score reaches.
    pub fn grade_for(&self, score: f64) -> Option<Arc<str>> {
        self.grade_of(score).map(|g| g.name.clone())
    }

    /// [`RuleSet::grade_for`] without a new reference to the name.
    pub fn grade_name(&self, score: f64) -> Option<&str> {
        self.grade_of(score).map(|g| &*g.name)
    }

    fn grade_of(&self, score: f64) -> Option<&Grade> {
        self.grades.iter().find(|g| g.min.is_none_or(|min| score >= min))
    }
}
