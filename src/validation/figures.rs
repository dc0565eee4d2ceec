//! The figures, computed from events matched with what the store kept: per rule set (grades,
//! AUC, top-decile lift, rules), per escalation (precision and recall), the forecast, and
//! whether the signals saw each stated reason coming.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::events::Event;
use super::history::Stored;
use super::stats::{Rate, auc, roc, top_decile_lift};

/// An event with the results its account had in the run read for it.
pub struct Scored<'a> {
    pub event: &'a Event,
    /// Per rule set.
    pub results: &'a HashMap<String, Stored>,
}

#[derive(Debug, Serialize)]
pub struct SetFigures {
    pub rule_set: String,
    /// `risk` (a higher score means more risk) or `health` (a higher score is healthier).
    pub direction: &'static str,
    pub accounts: u64,
    pub churned: u64,
    pub base_rate: Option<f64>,
    pub grades: Vec<GradeRow>,
    /// Over the accounts with a score.
    pub auc: Option<f64>,
    pub top_decile_lift: Option<f64>,
    /// The ROC curve as (false-positive rate, true-positive rate) points.
    pub roc: Vec<(f64, f64)>,
    pub rules: Vec<RuleRow>,
    /// Rules that fired on none of the churned accounts.
    pub never_on_churned: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct GradeRow {
    pub grade: String,
    pub churn: Rate,
    pub lift: Option<f64>,
    /// Of all churned ARR (ARR before the outcome).
    pub churned_arr_share: Option<f64>,
    pub too_few: bool,
}

#[derive(Debug, Serialize)]
pub struct RuleRow {
    pub rule: String,
    pub fired: Rate,
    pub not_fired: Rate,
    /// Churn rate when it fired over the base rate.
    pub lift: Option<f64>,
    pub too_few: bool,
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

/// One rule set's figures over the events scored at the horizon. `grades` is its grade
/// order; `rules` its declared rule ids (others seen fired are added).
pub fn set_figures(
    name: &str,
    healthier: bool,
    grades: &[String],
    rules: &[String],
    scored: &[Scored],
    min_count: u64,
) -> SetFigures {
    let rows: Vec<(&Event, &Stored)> = scored.iter().filter_map(|s| Some((s.event, s.results.get(name)?))).collect();
    let accounts = rows.len() as u64;
    let churned = rows.iter().filter(|(e, _)| e.churned()).count() as u64;
    let base = Rate::new(churned, accounts).rate;
    // `+ 0.0` here and below: an empty sum of floats is -0.0, which would print as `-0.0%`.
    let churned_arr: f64 =
        rows.iter().filter(|(e, _)| e.churned()).filter_map(|(e, _)| e.arr_before).sum::<f64>() + 0.0;
    let mut order: Vec<String> = grades.to_vec();
    for (_, s) in &rows {
        let g = s.grade.clone().unwrap_or_else(|| "none".into());
        if !order.contains(&g) {
            order.push(g);
        }
    }
    let grades = order
        .into_iter()
        .filter_map(|g| {
            let in_grade: Vec<&(&Event, &Stored)> =
                rows.iter().filter(|(_, s)| s.grade.as_deref().unwrap_or("none") == g).collect();
            if in_grade.is_empty() {
                return None;
            }
            let k = in_grade.iter().filter(|(e, _)| e.churned()).count() as u64;
            let arr: f64 =
                in_grade.iter().filter(|(e, _)| e.churned()).filter_map(|(e, _)| e.arr_before).sum::<f64>() + 0.0;
            let churn = Rate::new(k, in_grade.len() as u64);
            Some(GradeRow {
                grade: g,
                lift: ratio(churn.rate, base),
                churned_arr_share: (churned_arr > 0.0).then(|| arr / churned_arr),
                too_few: churn.of < min_count,
                churn,
            })
        })
        .collect();
    // Riskier first: a health score counts down.
    let sign = if healthier { -1.0 } else { 1.0 };
    let points: Vec<(f64, bool)> =
        rows.iter().filter_map(|(e, s)| s.score.filter(|x| x.is_finite()).map(|x| (sign * x, e.churned()))).collect();
    let mut ids: Vec<String> = rules.to_vec();
    for (_, s) in &rows {
        for f in &s.fired {
            if !ids.contains(f) {
                ids.push(f.clone());
            }
        }
    }
    let rules: Vec<RuleRow> = ids
        .iter()
        .map(|id| {
            let (mut f, mut fk, mut n, mut nk) = (0, 0, 0, 0);
            for (e, s) in &rows {
                let churned = u64::from(e.churned());
                if s.fired.contains(id) {
                    f += 1;
                    fk += churned;
                } else {
                    n += 1;
                    nk += churned;
                }
            }
            let fired = Rate::new(fk, f);
            RuleRow {
                rule: id.clone(),
                lift: ratio(fired.rate, base),
                too_few: f < min_count,
                fired,
                not_fired: Rate::new(nk, n),
            }
        })
        .collect();
    let never_on_churned = rules.iter().filter(|r| r.fired.count == 0).map(|r| r.rule.clone()).collect();
    SetFigures {
        rule_set: name.to_string(),
        direction: if healthier { "health" } else { "risk" },
        accounts,
        churned,
        base_rate: base,
        grades,
        auc: auc(&points),
        top_decile_lift: top_decile_lift(&points),
        roc: roc(&points),
        rules,
        never_on_churned,
    }
}

#[derive(Debug, Serialize)]
pub struct EscalationFigures {
    pub output: String,
    pub horizons: Vec<EscalationAt>,
}

#[derive(Debug, Serialize)]
pub struct EscalationAt {
    pub days: u32,
    /// Events whose account was scored that many days before.
    pub accounts: u64,
    pub flagged: u64,
    pub churned: u64,
    /// Flagged and churned.
    pub caught: u64,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
}

/// Precision and recall at one horizon: `flags[i]` whether event `i`'s account was flagged.
pub fn escalation_at(days: u32, events: &[(&Event, bool)]) -> EscalationAt {
    let flagged = events.iter().filter(|(_, f)| *f).count() as u64;
    let churned = events.iter().filter(|(e, _)| e.churned()).count() as u64;
    let caught = events.iter().filter(|(e, f)| *f && e.churned()).count() as u64;
    EscalationAt {
        days,
        accounts: events.len() as u64,
        flagged,
        churned,
        caught,
        precision: (flagged > 0).then(|| caught as f64 / flagged as f64),
        recall: (churned > 0).then(|| caught as f64 / churned as f64),
    }
}

#[derive(Debug, Serialize)]
pub struct Forecast {
    pub rule_set: String,
    /// The rule set the categories are grades of.
    pub category: Option<String>,
    pub rows: Vec<ForecastRow>,
    pub overall: ForecastRow,
}

#[derive(Debug, Serialize)]
pub struct ForecastRow {
    pub category: String,
    pub accounts: u64,
    /// ARR before the outcomes.
    pub arr_before: f64,
    /// ARR before times the forecast's score, in percent.
    pub expected: f64,
    pub actual: f64,
    /// Actual less expected.
    pub error: f64,
    /// The error over the expected.
    pub error_share: Option<f64>,
}

fn forecast_row(category: String, rows: &[(f64, f64, f64)]) -> ForecastRow {
    let arr_before: f64 = rows.iter().map(|r| r.0).sum::<f64>() + 0.0;
    let expected: f64 = rows.iter().map(|r| r.1).sum::<f64>() + 0.0;
    let actual: f64 = rows.iter().map(|r| r.2).sum::<f64>() + 0.0;
    ForecastRow {
        category,
        accounts: rows.len() as u64,
        arr_before,
        expected,
        actual,
        error: actual - expected,
        error_share: (expected != 0.0).then(|| (actual - expected) / expected),
    }
}

/// Expected against actual retained ARR, per category (in the category set's grade order).
pub fn forecast(set: &str, category: Option<(&str, &[String])>, scored: &[Scored]) -> Forecast {
    let mut by: BTreeMap<String, Vec<(f64, f64, f64)>> = BTreeMap::new();
    let mut all = Vec::new();
    for s in scored {
        let (Some(stored), Some(before), Some(actual)) = (s.results.get(set), s.event.arr_before, s.event.retained())
        else {
            continue;
        };
        let Some(score) = stored.score else { continue };
        let row = (before, before * score / 100.0, actual);
        all.push(row);
        if let Some((c, _)) = category {
            let grade = s.results.get(c).and_then(|r| r.grade.clone()).unwrap_or_else(|| "none".into());
            by.entry(grade).or_default().push(row);
        }
    }
    let mut rows: Vec<ForecastRow> = Vec::new();
    if let Some((_, order)) = category {
        for g in order {
            if let Some(r) = by.remove(g) {
                rows.push(forecast_row(g.clone(), &r));
            }
        }
        rows.extend(by.into_iter().map(|(g, r)| forecast_row(g, &r)));
    }
    Forecast {
        rule_set: set.to_string(),
        category: category.map(|(c, _)| c.to_string()),
        rows,
        overall: forecast_row("all".into(), &all),
    }
}

#[derive(Debug, Serialize)]
pub struct Foreseen {
    pub reason: String,
    /// Churned and downsold accounts that gave the reason.
    pub accounts: u64,
    /// Those on which a rule tagged with the reason (or with its id) fired within the horizon
    /// before the outcome.
    pub seen: u64,
    pub share: Option<f64>,
    /// Days from the first run it fired to the outcome, the median over those seen.
    pub median_lead_days: Option<f64>,
    /// No rule of the job is tagged with the reason: nothing could have seen it.
    pub no_signal: bool,
}

/// Per reason given: `seen[i]` the day the matching signal first fired before lost event
/// `i`, if it did.
pub fn foreseen(reasons: &[String], lost: &[(&Event, HashMap<String, i64>)], signals: &[String]) -> Vec<Foreseen> {
    reasons
        .iter()
        .filter_map(|r| {
            let giving: Vec<&(&Event, HashMap<String, i64>)> =
                lost.iter().filter(|(e, _)| e.reasons.contains(r)).collect();
            if giving.is_empty() {
                return None;
            }
            let mut leads: Vec<i64> = giving.iter().filter_map(|(_, seen)| seen.get(r).copied()).collect();
            leads.sort_unstable();
            let seen = leads.len() as u64;
            let median = match leads.len() {
                0 => None,
                n if n % 2 == 1 => Some(leads[n / 2] as f64),
                n => Some((leads[n / 2 - 1] + leads[n / 2]) as f64 / 2.0),
            };
            Some(Foreseen {
                reason: r.clone(),
                accounts: giving.len() as u64,
                seen,
                share: Some(seen as f64 / giving.len() as f64),
                median_lead_days: median,
                no_signal: !signals.contains(r),
            })
        })
        .collect()
}
