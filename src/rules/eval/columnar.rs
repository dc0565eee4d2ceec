//! Rule sets assembled from the columns their SQL computed, a chunk at a time.

use std::sync::Arc;

use rhai::Scope;

use super::{Ctx, DepFields, EntityRow, Evaluator, Fast};
use crate::entity::Entity;
use crate::rules::Body;
use crate::rules::outcomes::OutcomeRef;
use crate::rules::outcomes::SetOutcomes;
use crate::rules::previous::Previous;
use crate::rules::sql::Flags;
use crate::rules::{Measure, Points, RuleSet, Scoring};

/// What a rule set assembled from its columns reads for the accounts still evaluated one
/// at a time (their reasons, or all of them when something fails).
pub(super) struct Assembly<'a> {
    set: &'a RuleSet,
    columns: &'a crate::rules::sql::Columns,
    entity: &'a Entity,
    read: &'a [(&'a str, &'a SetOutcomes)],
    previous: &'a Previous,
    fields: &'a DepFields,
}

/// Buffers each thread reuses from account to account when assembling a set.
pub(super) struct Scratch<'a, 'p> {
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
    pub(super) fn new(sets_read: usize) -> Self {
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

impl Evaluator<'_> {
    /// A points or classification set whose every condition and points expression was
    /// evaluated in the warehouse, assembled from its columns a chunk at a time, without an
    /// outcome per account. Only reasons are still rendered per account (for the rules that
    /// fired); an account whose reason fails is evaluated the general way, so it records the
    /// same error. `None` when some expression runs in rhai.
    pub(super) fn columnar(
        &self,
        set: &RuleSet,
        columns: &crate::rules::sql::Columns,
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
    pub(super) fn scorecard_columnar(&self, assembly: &Assembly, measures: &[Measure]) -> Option<SetOutcomes> {
        use crate::rules::sql::Column;
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
    pub(super) fn assembled_reasons<'a>(
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
    pub(super) fn assembled_generally<'a>(
        &self,
        a: &Assembly<'a>,
        row: usize,
        scope: &mut Scope<'static>,
        done: &mut Vec<(&'a str, OutcomeRef<'a>)>,
        chunk: &mut crate::rules::outcomes::ChunkBuilder,
    ) {
        done.clear();
        done.extend(a.read.iter().map(|(name, r)| (*name, r.get(row))));
        let fast = Some(Fast { columns: a.columns, row, fields: a.fields });
        let here = EntityRow { entity: a.entity, row };
        chunk.push(&self.evaluate_with(a.set, &here, done, a.previous, scope, None, fast));
    }
}
