//! The latest published results before a run, handed in from the store: each rule set's
//! outcomes by account, kept in columns, for `prev`, movements and `grade_since`.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{Datelike, NaiveDate};

use crate::entity::keys::KeyIndex;

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

/// The day an account entered its current grade: carried over while the grade holds.
pub fn grade_since(grade: Option<&str>, prev: Option<PrevOutcome>, as_of: NaiveDate) -> Option<NaiveDate> {
    grade?;
    match prev {
        Some(p) if p.grade == grade => p.grade_since.or(Some(p.as_of)),
        _ => Some(as_of),
    }
}
