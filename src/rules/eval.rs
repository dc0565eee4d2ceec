//! Evaluating compiled rule sets for every account, in parallel, one bad account at a time.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{Datelike, NaiveDate};
use minijinja::Environment;
use rhai::{Dynamic, Engine, EvalAltResult, Map, Scope};
use thin_vec::ThinVec;

use super::compile::{AS_OF, PREV};
use super::engine::number;
use super::outcomes::{OutcomeRef, SetOutcomes, TextList};
use super::vector::Flags;
use super::{Body, Class, Expr, Measure, Points, Rule, RuleSet, Scoring};
use crate::entity::keys::KeyIndex;
use crate::entity::{Entity, to_template_value};

/// An account's result for one rule set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// `None` when a rule failed for this account (a partial score would mislead), for
    /// classifications, and for scorecards whose every measure is N/A.
    pub score: Option<f64>,
    pub grade: Option<Arc<str>>,
    // Thin vectors (one pointer, nothing allocated while empty): a run holds one outcome per
    // account and rule set, 9M of them at 1M accounts, and most lists are empty.
    pub fired: ThinVec<Arc<str>>,
    pub reasons: ThinVec<String>,
    pub tags: ThinVec<Arc<str>>,
    pub errors: ThinVec<RuleError>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RuleError {
    pub rule: Arc<str>,
    pub message: String,
}

/// An account's previous result for a rule set, from the last published run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PrevOutcome<'a> {
    pub as_of: NaiveDate,
    pub score: Option<f64>,
    pub grade: Option<&'a str>,
    pub grade_since: Option<NaiveDate>,
    /// Scores of the last few published runs, oldest first, this one included.
    pub scores: &'a [Option<f64>],
}

/// Previous results by rule set, then by account key, all from the run of one day: one index
/// of the accounts, shared by every set, and each set's outcomes in columns by that index.
/// Reading a store's earlier runs then takes one hash lookup an account (none while the rows
/// come in the same order as the first set's) instead of one a row, and no map per set; in
/// columns, with each set's few grades kept once, 9M outcomes take about 0.18 GB with the
/// accounts' index (as one struct each, with its grade's text, about 1 GB).
#[derive(Debug, Clone, Default)]
pub struct Previous {
    as_of: NaiveDate,
    accounts: KeyIndex,
    sets: HashMap<String, PrevColumns>,
}

/// One set's previous outcomes, by account slot.
#[derive(Debug, Clone, Default)]
struct PrevColumns {
    /// [`NO_OUTCOME`], [`NO_GRADE`] or an index into `grades`.
    grade: Vec<u32>,
    score: Vec<f64>,
    scored: Vec<bool>,
    /// Days from the common era (`NaiveDate::num_days_from_ce`), [`NO_DATE`] for none.
    since: Vec<i32>,
    grades: Vec<Arc<str>>,
    /// Each slot's scores (see [`PrevOutcome::scores`]); empty unless trends are read.
    scores: Vec<Vec<Option<f64>>>,
}

/// No date: out of chrono's range, so `from_num_days_from_ce_opt` gives `None`.
const NO_DATE: i32 = i32::MIN;

const NO_OUTCOME: u32 = u32::MAX;
const NO_GRADE: u32 = u32::MAX - 1;

impl PrevColumns {
    fn get(&self, as_of: NaiveDate, slot: usize) -> Option<PrevOutcome<'_>> {
        let grade = *self.grade.get(slot)?;
        if grade == NO_OUTCOME {
            return None;
        }
        Some(PrevOutcome {
            as_of,
            score: self.scored[slot].then(|| self.score[slot]),
            grade: (grade != NO_GRADE).then(|| &*self.grades[grade as usize]),
            grade_since: NaiveDate::from_num_days_from_ce_opt(self.since[slot]),
            scores: self.scores.get(slot).map_or(&[], Vec::as_slice),
        })
    }

    fn put(&mut self, slot: usize, outcome: &PrevOutcome) {
        if self.grade.len() <= slot {
            let len = slot + 1;
            self.grade.resize(len, NO_OUTCOME);
            self.score.resize(len, 0.0);
            self.scored.resize(len, false);
            self.since.resize(len, NO_DATE);
        }
        self.grade[slot] = match outcome.grade {
            None => NO_GRADE,
            Some(g) => match self.grades.iter().position(|known| &**known == g) {
                Some(i) => i as u32,
                None => {
                    self.grades.push(Arc::from(g));
                    u32::try_from(self.grades.len() - 1).ok().filter(|&i| i < NO_GRADE).expect("fewer grades")
                }
            },
        };
        self.score[slot] = outcome.score.unwrap_or_default();
        self.scored[slot] = outcome.score.is_some();
        self.since[slot] = outcome.grade_since.map_or(NO_DATE, |d| d.num_days_from_ce());
        if !outcome.scores.is_empty() {
            self.trend_mut(slot).extend_from_slice(outcome.scores);
        }
    }

    fn trend_mut(&mut self, slot: usize) -> &mut Vec<Option<f64>> {
        if self.scores.len() <= slot {
            self.scores.resize_with(slot + 1, Vec::new);
        }
        &mut self.scores[slot]
    }
}

impl Previous {
    /// No outcomes yet; those added are of the run of `as_of`.
    pub fn new(as_of: NaiveDate) -> Previous {
        Previous { as_of, ..Previous::default() }
    }

    /// The day of the run the outcomes come from; `None` when there are none.
    pub fn as_of(&self) -> Option<NaiveDate> {
        (!self.accounts.is_empty()).then_some(self.as_of)
    }

    pub fn get(&self, set: &str, account: &str) -> Option<PrevOutcome<'_>> {
        let slot = self.accounts.get(account)?;
        self.sets.get(set)?.get(self.as_of, slot)
    }

    /// The outcomes of one set, for looking up many accounts.
    pub fn set(&self, set: &str) -> Option<PrevSet<'_>> {
        self.sets.get(set).map(|outcomes| PrevSet { accounts: &self.accounts, outcomes, as_of: self.as_of })
    }

    /// Every previous outcome with its set and account, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, PrevOutcome<'_>)> {
        let (as_of, keys) = (self.as_of, &self.accounts);
        self.sets.iter().flat_map(move |(set, outcomes)| {
            keys.iter().enumerate().filter_map(move |(slot, key)| Some((set.as_str(), key, outcomes.get(as_of, slot)?)))
        })
    }

    /// The slot of `account`, `hint` first: rows that come in the order of the first set's
    /// need no lookup. `None` when it is new and `add` is false.
    pub fn slot(&mut self, account: &str, hint: usize, add: bool) -> Option<usize> {
        if hint < self.accounts.len() && self.accounts.key(hint) == account {
            return Some(hint);
        }
        if add { Some(self.accounts.insert(account)) } else { self.accounts.get(account) }
    }

    /// Sets the outcome of `account` in `set` (its `as_of` is the one of the whole).
    pub fn insert(&mut self, set: &str, account: &str, outcome: &PrevOutcome) {
        let slot = self.slot(account, usize::MAX, true).expect("added");
        self.put(set, slot, outcome);
    }

    /// Sets the outcome at `slot` (from [`Previous::slot`]) in `set`.
    pub fn put(&mut self, set: &str, slot: usize, outcome: &PrevOutcome) {
        debug_assert_eq!(outcome.as_of, self.as_of, "previous outcomes are of one run");
        self.columns_mut(set).put(slot, outcome);
    }

    fn columns_mut(&mut self, set: &str) -> &mut PrevColumns {
        if !self.sets.contains_key(set) {
            self.sets.insert(set.to_string(), PrevColumns::default());
        }
        self.sets.get_mut(set).expect("inserted")
    }

    /// Adds `score` to the scores of the outcome at `slot` in `set`, if it has one.
    pub fn push_score(&mut self, set: &str, slot: usize, score: Option<f64>) {
        let Some(columns) = self.sets.get_mut(set) else { return };
        if columns.grade.get(slot).is_some_and(|&g| g != NO_OUTCOME) {
            columns.trend_mut(slot).push(score);
        }
    }

    /// Ends each outcome's scores with its own score.
    pub fn push_own_scores(&mut self) {
        for columns in self.sets.values_mut() {
            for slot in 0..columns.grade.len() {
                if columns.grade[slot] != NO_OUTCOME {
                    let score = columns.scored[slot].then(|| columns.score[slot]);
                    columns.trend_mut(slot).push(score);
                }
            }
        }
    }
}

/// One set's previous outcomes (see [`Previous::set`]).
#[derive(Debug, Clone, Copy)]
pub struct PrevSet<'a> {
    accounts: &'a KeyIndex,
    outcomes: &'a PrevColumns,
    as_of: NaiveDate,
}

impl<'a> PrevSet<'a> {
    pub fn get(self, account: &str) -> Option<PrevOutcome<'a>> {
        self.outcomes.get(self.as_of, self.accounts.get(account)?)
    }
}

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

/// What the rows of one rule set share in a run: its columns and the fields it reads.
struct Fast<'f> {
    columns: &'f super::vector::Columns,
    row: usize,
    fields: &'f DepFields,
}

/// What a rule set assembled from its columns reads for the accounts still evaluated one
/// at a time (their reasons, or all of them when something fails).
struct Assembly<'a> {
    set: &'a RuleSet,
    columns: &'a super::vector::Columns,
    entity: &'a Entity,
    read: &'a [(&'a str, &'a SetOutcomes)],
    previous: &'a Previous,
    fields: &'a DepFields,
}

/// Buffers each thread reuses from account to account when assembling a set.
struct Scratch<'a, 'p> {
    scope: Scope<'static>,
    done: Vec<(&'a str, OutcomeRef<'a>)>,
    /// The rules or measures that fired, by index, with their points or score.
    fired: Vec<(usize, f64)>,
    /// The reason templates to write, with the points they show.
    wanted: Vec<(&'p str, f64)>,
    reasons: Vec<String>,
    tags: Vec<&'p str>,
}

impl Scratch<'_, '_> {
    fn new(sets_read: usize) -> Self {
        Scratch {
            scope: Scope::new(),
            done: Vec::with_capacity(sets_read),
            fired: Vec::new(),
            wanted: Vec::new(),
            reasons: Vec::new(),
            tags: Vec::new(),
        }
    }
}

/// The fields `set` reads of the rule sets it depends on, from its expressions.
fn dep_fields(set: &RuleSet) -> DepFields {
    let mut fields: DepFields = HashMap::new();
    let mut exprs: Vec<&Expr> = super::vector::expressions_of(set);
    if let Body::Script(s) = &set.body {
        exprs.push(&s.script);
    }
    for e in exprs {
        for shown in &e.shows {
            match shown.split_once('.') {
                Some((dep, field)) => {
                    if let Some(set) = fields.entry(dep.to_string()).or_insert_with(|| Some(Default::default())) {
                        set.insert(field.to_string());
                    }
                }
                None => {
                    fields.insert(shown.clone(), None);
                }
            }
        }
    }
    // A reason template may read any field of what it names.
    for vars in set.reason_vars.values() {
        for v in vars {
            fields.insert(v.clone(), None);
        }
    }
    fields
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
    fast: Option<(&'c super::vector::Columns, usize)>,
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
        vector: Option<&super::vector::Vectorise>,
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
                    super::vector::evaluate(v, set, self.as_of, &done, entity.len(), &mut uploaded)
                }
                None => super::vector::Columns::default(),
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
            super::vector::drop_uploaded(v.conn, &uploaded);
        }
        (results, timings)
    }

    /// A points or classification set whose every condition and points expression was
    /// evaluated in the warehouse, assembled from its columns a chunk at a time, without an
    /// outcome per account. Only reasons are still rendered per account (for the rules that
    /// fired); an account whose reason fails is evaluated the general way, so it records the
    /// same error. `None` when some expression runs in rhai.
    fn columnar(
        &self,
        set: &RuleSet,
        columns: &super::vector::Columns,
        entity: &Entity,
        read: &[(&str, &SetOutcomes)],
        previous: &Previous,
        fields: &DepFields,
    ) -> Option<SetOutcomes> {
        let assembly = Assembly { set, columns, entity, read, previous, fields };
        /// What one rule contributes, with its columns.
        struct Plan<'p> {
            id: &'p str,
            when: Flags<'p>,
            points: Result<f64, &'p [Option<f64>]>,
            tags: &'p [Arc<str>],
            reason: Option<&'p str>,
        }
        let plan: Vec<Plan> = match &set.body {
            Body::Points(rules) => rules
                .iter()
                .filter(|r| r.enabled)
                .map(|r| {
                    Some(Plan {
                        id: &r.id,
                        when: columns.flags(&r.when)?,
                        points: match &r.points {
                            Points::Fixed(p) => Ok(*p),
                            Points::Computed(e) => Err(columns.numbers(e)?),
                        },
                        tags: &r.tags,
                        reason: r.reason.as_deref(),
                    })
                })
                .collect::<Option<_>>()?,
            Body::Classification { classes, .. } => classes
                .iter()
                .map(|c| {
                    let when = columns.flags(&c.when)?;
                    Some(Plan { id: &c.id, when, points: Ok(0.0), tags: &[], reason: c.reason.as_deref() })
                })
                .collect::<Option<_>>()?,
            Body::Scorecard(measures) => {
                return self.scorecard_columnar(&assembly, measures);
            }
            Body::Script(_) => return None,
        };
        let rows = entity.len();
        if plan.iter().any(|p| p.when.len() != rows || p.points.is_err_and(|v| v.len() != rows)) {
            return None;
        }
        let classes = matches!(set.body, Body::Classification { .. });
        let (default, default_reason) = match &set.body {
            Body::Classification { default, default_reason, .. } => (default.as_deref(), default_reason.as_deref()),
            _ => (None, None),
        };
        // The conditions as the warehouse packs them: rule `i` is bit `i % 64` of mask
        // `i / 64`. Then only the rules that fire are visited, by the masks' set bits.
        let masks: Option<Vec<&[u64]>> =
            plan.chunks(64)
                .map(|group| {
                    let Flags::Bits(words, 0) = group[0].when else { return None };
                    let packed = group.iter().enumerate().all(
                        |(bit, p)| matches!(p.when, Flags::Bits(w, b) if std::ptr::eq(w, words) && b as usize == bit),
                    );
                    packed.then_some(words)
                })
                .collect();
        // The fired rules are kept as keys into the rules' ids.
        let ids: Vec<&str> = plan.iter().map(|p| p.id).collect();
        let outcomes = SetOutcomes::build_with_ids(
            rows,
            Some(&ids),
            || Scratch::new(read.len()),
            |Scratch { scope, done, fired, wanted, reasons, tags }, row, chunk| {
                // The rules that fire, with their points; for classes, the first match.
                fired.clear();
                let mut total = set.score.base;
                // Counts rule `i` as fired; true when no other rule is to be looked at.
                let mut fire = |i: usize| {
                    let points = match plan[i].points {
                        Ok(points) => points,
                        Err(column) => column[row].unwrap_or(0.0),
                    };
                    total += points;
                    fired.push((i, points));
                    classes
                };
                match &masks {
                    Some(masks) => {
                        'masks: for (group, words) in masks.iter().enumerate() {
                            let mut word = words[row];
                            while word != 0 {
                                let bit = word.trailing_zeros() as usize;
                                word &= word - 1;
                                if fire(group * 64 + bit) {
                                    break 'masks;
                                }
                            }
                        }
                    }
                    None => {
                        for (i, p) in plan.iter().enumerate() {
                            if p.when.get(row) && fire(i) {
                                break;
                            }
                        }
                    }
                }
                wanted.clear();
                match fired.first() {
                    None if classes => wanted.extend(default_reason.map(|r| (r, 0.0))),
                    _ => wanted.extend(fired.iter().filter_map(|&(i, p)| Some((plan[i].reason?, p)))),
                }
                if !self.assembled_reasons(&assembly, row, scope, done, wanted, reasons) {
                    // The general path records the error as a failed rule does.
                    self.assembled_generally(&assembly, row, scope, done, chunk);
                    return;
                }
                tags.clear();
                for &(i, _) in fired.iter() {
                    chunk.fired.key(i as u16, plan[i].id);
                    for tag in plan[i].tags {
                        if !tags.contains(&&**tag) {
                            tags.push(tag);
                        }
                    }
                }
                reasons.iter().for_each(|r| chunk.reasons.item(r));
                tags.iter().for_each(|t| chunk.tags.item(t));
                if classes {
                    let grade = fired.first().map_or(default, |&(i, _)| Some(plan[i].id));
                    chunk.end_row(None, grade);
                } else {
                    let score = total.clamp(set.score.min, set.score.max);
                    chunk.end_row(Some(score), set.grade_name(score));
                }
            },
        );
        Some(outcomes)
    }

    /// [`Evaluator::columnar`] for a scorecard whose every measure's value was evaluated in
    /// the warehouse: the weighted mean of the measures that have a score, the measures
    /// below their `reason_below` fired with their reasons. An account with an error (a text
    /// the map does not list, a reason that fails) is evaluated the general way.
    fn scorecard_columnar(&self, assembly: &Assembly, measures: &[Measure]) -> Option<SetOutcomes> {
        use super::vector::Column;
        let &Assembly { set, columns, entity, read, .. } = assembly;
        let rows = entity.len();
        let values: Vec<&Column> = measures
            .iter()
            .map(|m| {
                let column = columns.column(m.scoring.expr())?;
                let fits = match (&m.scoring, column) {
                    (Scoring::Map { .. }, Column::Text(v)) => v.len() == rows,
                    (Scoring::Direct(_) | Scoring::Bands { .. }, Column::Number(v)) => v.len() == rows,
                    _ => false,
                };
                fits.then_some(column)
            })
            .collect::<Option<_>>()?;
        let outcomes = SetOutcomes::build(
            rows,
            || Scratch::new(read.len()),
            |Scratch { scope, done, fired, wanted, reasons, .. }, row, chunk| {
                let (mut weighted, mut weights) = (0.0, 0.0);
                fired.clear();
                let mut failed = false;
                for (i, (m, column)) in measures.iter().zip(&values).enumerate() {
                    // A measure's score from 0 to 100, or none when its value is missing.
                    let score = match (&m.scoring, column) {
                        (Scoring::Direct(_), Column::Number(v)) => v[row],
                        (Scoring::Bands { bands, .. }, Column::Number(v)) => v[row]
                            .and_then(|x| bands.iter().find(|(min, _)| min.is_none_or(|m| x >= m)).map(|&(_, s)| s)),
                        (Scoring::Map { map, .. }, Column::Text(v)) => match &v[row] {
                            None => None,
                            Some(key) => match map.iter().find(|(k, _)| k == key) {
                                Some(&(_, s)) => Some(s),
                                None => {
                                    failed = true;
                                    break;
                                }
                            },
                        },
                        _ => unreachable!("checked above"),
                    };
                    let Some(score) = score.map(|s| s.clamp(0.0, 100.0)) else { continue };
                    weighted += score * m.weight;
                    weights += m.weight;
                    if score < m.reason_below {
                        fired.push((i, score));
                    }
                }
                wanted.clear();
                wanted.extend(fired.iter().filter_map(|&(i, score)| Some((measures[i].reason.as_deref()?, score))));
                if failed || !self.assembled_reasons(assembly, row, scope, done, wanted, reasons) {
                    // The general path records the error as a failed measure does.
                    self.assembled_generally(assembly, row, scope, done, chunk);
                    return;
                }
                fired.iter().for_each(|&(i, _)| chunk.fired.item(&measures[i].id));
                reasons.iter().for_each(|r| chunk.reasons.item(r));
                match (weights > 0.0).then(|| weighted / weights) {
                    Some(score) => {
                        let score = score.clamp(set.score.min, set.score.max);
                        chunk.end_row(Some(score), set.grade_name(score));
                    }
                    None => chunk.end_row(None, None),
                }
            },
        );
        Some(outcomes)
    }

    /// Writes the reasons `wanted` (template and points, in order) of an account of a set
    /// assembled from its columns into `out`; `false` when one of them fails.
    fn assembled_reasons<'a>(
        &self,
        a: &Assembly<'a>,
        row: usize,
        scope: &mut Scope<'static>,
        done: &mut Vec<(&'a str, OutcomeRef<'a>)>,
        wanted: &[(&str, f64)],
        out: &mut Vec<String>,
    ) -> bool {
        out.clear();
        if wanted.is_empty() {
            return true;
        }
        scope.clear();
        done.clear();
        done.extend(a.read.iter().map(|(name, r)| (*name, r.get(row))));
        let here = EntityRow { entity: a.entity, row };
        let ctx = Ctx {
            set: a.set,
            row: &here,
            done,
            previous: a.previous,
            fast: Some((a.columns, row)),
            fields: Some(a.fields),
            full: false,
        };
        for &(name, points) in wanted {
            match self.reason(&ctx, name, scope, points) {
                Ok(text) => out.push(text),
                Err(_) => return false,
            }
        }
        true
    }

    /// An account of a set assembled from its columns evaluated the general way instead, for
    /// the errors it records.
    fn assembled_generally<'a>(
        &self,
        a: &Assembly<'a>,
        row: usize,
        scope: &mut Scope<'static>,
        done: &mut Vec<(&'a str, OutcomeRef<'a>)>,
        chunk: &mut super::outcomes::ChunkBuilder,
    ) {
        done.clear();
        done.extend(a.read.iter().map(|(name, r)| (*name, r.get(row))));
        let fast = Some(Fast { columns: a.columns, row, fields: a.fields });
        let here = EntityRow { entity: a.entity, row };
        chunk.push(&self.evaluate_with(a.set, &here, done, a.previous, scope, None, fast));
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

    fn points(
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

    fn run_rule(&self, ctx: &Ctx, rule: &Rule, scope: &mut Scope<'static>) -> (RuleStatus, f64, Option<String>) {
        let fired = match self.condition(ctx, &rule.when, scope) {
            Ok(Some(fired)) => fired,
            Ok(None) => return (RuleStatus::NotApplicable, 0.0, None),
            Err(message) => return (RuleStatus::Error(message), 0.0, None),
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
            Some(Err(message)) => (RuleStatus::Error(message), 0.0, None),
            Some(Ok(text)) => (RuleStatus::Fired, points, Some(text)),
            None => (RuleStatus::Fired, points, None),
        }
    }

    /// `Some(true)` fires, `Some(false)` does not, `None` did not fire because of a missing
    /// value it read.
    fn condition(&self, ctx: &Ctx, when: &Expr, scope: &mut Scope<'static>) -> Result<Option<bool>, String> {
        if let Some((columns, row)) = ctx.fast
            && let Some(fired) = columns.condition(when, row)
        {
            return Ok(Some(fired));
        }
        self.ensure(ctx, scope, &when.reads);
        let v = self.engine.eval_ast_with_scope::<Dynamic>(scope, &when.ast).map_err(|e| describe(&e))?;
        let fired = if v.is_unit() {
            false
        } else {
            v.as_bool().map_err(|t| format!("the condition must give true or false, but gave {t}"))?
        };
        let missing = !fired && when.shown_values(scope).iter().any(|(_, v)| v.is_unit());
        Ok(if missing { None } else { Some(fired) })
    }

    /// Weighted mean of the measures that have a score; N/A measures give their weight to
    /// the others.
    fn scorecard(
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
                        Some(Err(message)) => (RuleStatus::Error(message), score, None),
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
                Err(message) => (RuleStatus::Error(message), 0.0, None),
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
    fn measure(&self, ctx: &Ctx, m: &Measure, scope: &mut Scope<'static>) -> Result<Option<f64>, String> {
        let v = self.value(ctx, m.scoring.expr(), scope).map_err(|e| describe(&e))?;
        if v.is_unit() {
            return Ok(None);
        }
        let score = match &m.scoring {
            Scoring::Direct(_) => {
                number(&v).ok_or_else(|| format!("`score` must give a number, but gave {}", v.type_name()))?
            }
            Scoring::Bands { bands, .. } => {
                let x = number(&v)
                    .ok_or_else(|| format!("`value` must give a number for bands, but gave {}", v.type_name()))?;
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
                        return Err(format!("`{key}` is not listed in the map of measure `{}`", m.id));
                    }
                }
            }
        };
        Ok(Some(score.clamp(0.0, 100.0)))
    }

    fn classify(
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
                    Some(Err(message)) => (RuleStatus::Error(message), None),
                    Some(Ok(text)) => (RuleStatus::Fired, Some(text)),
                    None => (RuleStatus::Fired, None),
                },
                Ok(Some(false)) => (RuleStatus::NotFired, None),
                Ok(None) => (RuleStatus::NotApplicable, None),
                Err(message) => (RuleStatus::Error(message), None),
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
                Err(message) => outcome.errors.push(RuleError { rule: Arc::from("default"), message }),
            }
        }
        outcome
    }

    /// A script returns a map: `score` (graded by the set's grades) and/or `grade`, and
    /// optionally `fired`, `reasons` and `tags`.
    fn script(&self, script: &Expr, scope: &mut Scope<'static>, trace: Option<&mut Vec<RuleTrace>>) -> Outcome {
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
    fn value(&self, ctx: &Ctx, e: &Expr, scope: &mut Scope<'static>) -> Result<Dynamic, Box<EvalAltResult>> {
        if let Some((columns, row)) = ctx.fast
            && let Some(v) = columns.value(e, row)
        {
            return Ok(v);
        }
        self.ensure(ctx, scope, &e.reads);
        self.engine.eval_ast_with_scope::<Dynamic>(scope, &e.ast)
    }

    fn reason(&self, ctx: &Ctx, name: &str, scope: &mut Scope<'static>, points: f64) -> Result<String, String> {
        let vars = vars_of(ctx.set, name);
        self.ensure(ctx, scope, vars);
        if let Some(parts) = ctx.set.reason_parts.get(name)
            && let Some(text) = super::reason::render(parts, scope, points)
        {
            return Ok(text);
        }
        self.render_reason(name, vars, scope, points)
    }

    /// Adds to the scope whichever of `names` it does not hold yet.
    fn ensure(&self, ctx: &Ctx, scope: &mut Scope<'static>, names: &[String]) {
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
    fn render_reason(
        &self,
        name: &str,
        vars: &[String],
        scope: &Scope<'static>,
        points: f64,
    ) -> Result<String, String> {
        let template = self.templates.get_template(name).map_err(|e| e.to_string())?;
        // Plain text (most class reasons) needs no rendering.
        let source = template.source();
        if !source.contains(['{', '\n']) {
            return Ok(source.to_string());
        }
        let mut ctx: std::collections::BTreeMap<String, minijinja::Value> =
            vars.iter().filter_map(|v| scope.get(v).map(|value| (v.clone(), to_template_value(value)))).collect();
        ctx.insert("points".into(), to_template_value(&Dynamic::from_float(points)));
        template.render(ctx).map_err(|e| format!("the reason could not be written: {e}"))
    }

    fn fill_scope(
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
    fn prev_map(&self, prev: Option<PrevOutcome>) -> Dynamic {
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
    fn outcome_map_of(
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

/// What a script returned, from rhai's map or from its translated columns.
#[derive(Debug, Default, PartialEq)]
pub struct ScriptResult {
    pub score: Option<f64>,
    pub grade: Option<String>,
    pub fired: Vec<String>,
    pub reasons: Vec<String>,
    pub tags: Vec<String>,
}

impl ScriptResult {
    /// What rhai's map holds: lists are shown as text, anything else in them is ignored.
    pub fn of(map: &Map) -> ScriptResult {
        let strings = |key: &str| -> Vec<String> {
            map.get(key)
                .and_then(|v| v.clone().into_array().ok())
                .unwrap_or_default()
                .iter()
                .map(crate::entity::display_value)
                .collect()
        };
        ScriptResult {
            score: map.get("score").and_then(number),
            grade: map.get("grade").filter(|g| !g.is_unit()).map(crate::entity::display_value),
            fired: strings("fired"),
            reasons: strings("reasons"),
            tags: strings("tags"),
        }
    }
}

/// A script's outcome: neither a score nor a grade is an error.
fn script_outcome(r: ScriptResult) -> Outcome {
    let mut outcome = Outcome {
        score: r.score,
        grade: r.grade.map(|g| Arc::from(g.as_str())),
        fired: r.fired.iter().map(|s| Arc::from(s.as_str())).collect(),
        reasons: r.reasons.into(),
        tags: r.tags.iter().map(|s| Arc::from(s.as_str())).collect(),
        errors: ThinVec::new(),
    };
    if outcome.score.is_none() && outcome.grade.is_none() {
        outcome.errors.push(RuleError {
            rule: Arc::from("script"),
            message: "the script returned neither `score` nor `grade`".into(),
        });
    }
    outcome
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

fn fire(outcome: &mut Outcome, id: &Arc<str>, reason: Option<String>, tags: &[Arc<str>]) {
    outcome.fired.push(id.clone());
    outcome.reasons.extend(reason);
    for tag in tags {
        if !outcome.tags.contains(tag) {
            outcome.tags.push(tag.clone());
        }
    }
}

/// The day an account entered its current grade: carried over while the grade holds.
pub fn grade_since(grade: Option<&str>, prev: Option<PrevOutcome>, as_of: NaiveDate) -> Option<NaiveDate> {
    grade?;
    match prev {
        Some(p) if p.grade == grade => p.grade_since.or(Some(p.as_of)),
        _ => Some(as_of),
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

fn vars_of<'a>(set: &'a RuleSet, template: &str) -> &'a [String] {
    set.reason_vars.get(template).map_or(&[], Vec::as_slice)
}
