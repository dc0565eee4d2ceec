//! Validation: the rule sets measured against what happened. Each renewal or churn in the
//! job's outcomes file is matched with the results its account had `horizon` days before
//! (the latest published run on or before that day), and the figures say whether the grades,
//! scores, rules, escalations and forecast saw it coming. The store's history is what the
//! team saw at the time; a replay of other rules (`keepwell validate --base`) answers the
//! same questions from results computed again. `keepwell validate` prints the figures, a
//! job's `calibration` output mails them, and each run that has one keeps them.

mod events;
mod figures;
mod history;
mod replayed;
mod rootcause;
mod stats;
pub mod text;

pub use events::{Event, Kind};
pub use figures::{EscalationAt, EscalationFigures, Forecast, ForecastRow, Foreseen, GradeRow, RuleRow, SetFigures};
pub use history::{History, Stored};
pub use replayed::Replayed;
pub use rootcause::{ReasonRow, RootCause, Segment, SegmentReview};
pub use stats::{Rate, auc, roc, top_decile_lift};

use std::collections::{HashMap, HashSet};
use std::path::Path;

use chrono::{Duration, NaiveDate};
use serde::Serialize;

use crate::config::diagnostic::Diagnostics;
use crate::config::job::Job;
use crate::rules::{Body, RuleSet};
use figures::Scored;

/// The horizons each escalation's precision and recall are read at.
pub const ESCALATION_DAYS: [u32; 3] = [30, 60, 90];

#[derive(Debug, thiserror::Error)]
pub enum ValidationError {
    /// The outcomes file has bad rows (every one located).
    #[error("{0}")]
    Outcomes(Diagnostics),
    #[error(
        "job `{0}` has no outcomes to validate against: add an `outcomes:` block with the file of renewals and churns (docs/validation.md)"
    )]
    NoOutcomes(String),
    #[error("reading the store failed: {0}")]
    Store(#[from] duckdb::Error),
}

/// What the figures are read against: the job (its outcomes and `validation:` settings), the
/// rule sets as compiled, its escalations' names and where the runs' snapshots are.
pub struct Context<'a> {
    pub job: &'a Job,
    pub rule_sets: &'a [RuleSet],
    pub escalations: &'a [String],
    pub runs_dir: &'a Path,
}

/// The outcomes of the job, on or after `since`, oldest first.
pub fn read_events(job: &Job, since: Option<NaiveDate>) -> Result<Vec<Event>, ValidationError> {
    let spec = job.outcomes.as_ref().ok_or_else(|| ValidationError::NoOutcomes(job.name.clone()))?;
    let mut events = events::read(spec).map_err(ValidationError::Outcomes)?;
    if let Some(since) = since {
        events.retain(|e| e.date >= since);
    }
    events.sort_by(|a, b| a.date.cmp(&b.date).then(a.account.cmp(&b.account)));
    Ok(events)
}

/// Every figure, from the store's history.
pub fn measure(
    ctx: &Context,
    history: &History,
    events: &[Event],
    horizon: u32,
    since: Option<NaiveDate>,
) -> Result<Validation, ValidationError> {
    let job = ctx.job;
    let settings = &job.validation;
    let stored = Evidence::Stored(history);
    let (at_horizon, results) = results_at(&stored, history, events, horizon)?;
    let coverage = Coverage {
        events: events.len() as u64,
        renewed: events.iter().filter(|e| e.kind == Kind::Renewed).count() as u64,
        churned: events.iter().filter(|e| e.kind == Kind::Churned).count() as u64,
        downsold: events.iter().filter(|e| e.kind == Kind::Downsold).count() as u64,
        expanded: events.iter().filter(|e| e.kind == Kind::Expanded).count() as u64,
        scored: results.iter().filter(|r| !r.is_empty()).count() as u64,
        before_history: at_horizon.iter().filter(|r| r.is_none()).count() as u64,
        not_in_run: at_horizon.iter().zip(&results).filter(|(r, s)| r.is_some() && s.is_empty()).count() as u64,
        first_run: history.runs.first().map(|r| r.1),
        last_run: history.runs.last().map(|r| r.1),
    };
    let figures = figures(ctx, &stored, history, events, horizon)?;
    let lost: Vec<&Event> = events.iter().filter(|e| e.kind.lost()).collect();
    let dimensions = segments(ctx, history, &lost)?;
    let reasons = job.outcomes.as_ref().map(|o| o.reasons.clone()).unwrap_or_default();
    let root_cause =
        rootcause::root_cause(&lost, &reasons, &dimensions, settings.systemic_count, settings.systemic_share);
    Ok(Validation {
        job: job.name.clone(),
        outcomes_file: job.outcomes.as_ref().map(|o| o.display.clone()).unwrap_or_default(),
        horizon_days: horizon,
        since,
        min_count: settings.min_count,
        coverage,
        figures,
        root_cause,
        replay: None,
    })
}

/// The (run, account) pairs a figure reads, by run: the run each horizon picks, and every
/// run in the window before a lost account's outcome. A replay evaluates only these.
pub fn needed(history: &History, events: &[Event], horizon: u32) -> HashMap<i64, HashSet<String>> {
    let mut needed: HashMap<i64, HashSet<String>> = HashMap::new();
    for e in events {
        for days in ESCALATION_DAYS.into_iter().chain([horizon]) {
            if let Some((run, _)) = history.run_at(e.date - Duration::days(i64::from(days))) {
                needed.entry(run).or_default().insert(e.account.clone());
            }
        }
        if e.kind.lost() {
            let since = e.date - Duration::days(i64::from(horizon));
            for (run, _) in history.runs.iter().filter(|(_, d)| *d >= since && *d < e.date) {
                needed.entry(*run).or_default().insert(e.account.clone());
            }
        }
    }
    needed
}

#[derive(Debug, Serialize)]
pub struct Validation {
    pub job: String,
    pub outcomes_file: String,
    pub horizon_days: u32,
    pub since: Option<NaiveDate>,
    pub min_count: u64,
    pub coverage: Coverage,
    #[serde(flatten)]
    pub figures: Figures,
    pub root_cause: RootCause,
    /// With `--base`: both rule versions evaluated on the stored snapshots.
    pub replay: Option<Replay>,
}

/// What judges one version of the rules.
#[derive(Debug, Serialize)]
pub struct Figures {
    pub rule_sets: Vec<SetFigures>,
    /// `None` when no run recorded what its escalations flagged.
    pub escalations: Option<Vec<EscalationFigures>>,
    pub forecast: Option<Forecast>,
    pub foreseen: Vec<Foreseen>,
}

#[derive(Debug, Serialize)]
pub struct Replay {
    pub base: String,
    /// Runs evaluated again.
    pub runs: u64,
    /// Runs whose entity snapshot was gone, left out.
    pub missing_snapshots: u64,
    pub base_figures: Figures,
    pub work_figures: Figures,
}

#[derive(Debug, Serialize)]
pub struct Coverage {
    pub events: u64,
    pub renewed: u64,
    pub churned: u64,
    pub downsold: u64,
    pub expanded: u64,
    /// Events whose account was scored `horizon` days before.
    pub scored: u64,
    /// Events earlier than the history reaches (no run `horizon` days before).
    pub before_history: u64,
    /// Events with a run that early whose account was not in it (a newer customer).
    pub not_in_run: u64,
    pub first_run: Option<NaiveDate>,
    pub last_run: Option<NaiveDate>,
}

/// Where results come from: the store (what the runs gave), or a replay of other rules.
pub enum Evidence<'a> {
    Stored(&'a History),
    Replayed(&'a Replayed),
}

impl Evidence<'_> {
    fn results(&self, pairs: &[(i64, &str)]) -> Result<HashMap<(i64, String, String), Stored>, ValidationError> {
        match self {
            Evidence::Stored(h) => Ok(h.results(pairs)?),
            Evidence::Replayed(r) => Ok(r.results(pairs)),
        }
    }

    fn fired_between(
        &self,
        windows: &[(usize, &str, NaiveDate, NaiveDate)],
    ) -> Result<HashMap<usize, HashMap<String, NaiveDate>>, ValidationError> {
        match self {
            Evidence::Stored(h) => Ok(h.fired_between(windows)?),
            Evidence::Replayed(r) => Ok(r.fired_between(windows)),
        }
    }

    fn has_flagged(&self) -> Result<bool, ValidationError> {
        match self {
            Evidence::Stored(h) => Ok(h.has_flagged()?),
            Evidence::Replayed(_) => Ok(true),
        }
    }

    fn flagged(&self, pairs: &[(i64, &str)]) -> Result<HashMap<String, Vec<(i64, String)>>, ValidationError> {
        match self {
            Evidence::Stored(h) => Ok(h.flagged(pairs)?),
            Evidence::Replayed(r) => Ok(r.flagged(pairs)),
        }
    }
}

/// Everything that judges the rules: per rule set, escalation, the forecast and each reason.
pub fn figures(
    ctx: &Context,
    evidence: &Evidence,
    history: &History,
    events: &[Event],
    horizon: u32,
) -> Result<Figures, ValidationError> {
    let settings = &ctx.job.validation;
    let (_, results) = results_at(evidence, history, events, horizon)?;
    let scored: Vec<Scored> = events
        .iter()
        .zip(&results)
        .filter(|(_, r)| !r.is_empty())
        .map(|(event, results)| Scored { event, results })
        .collect();
    let judged: Vec<&str> = match settings.rule_sets.is_empty() {
        true => ctx.rule_sets.iter().map(|s| s.name.as_str()).collect(),
        false => settings.rule_sets.iter().map(|(n, _)| n.as_str()).collect(),
    };
    let rule_sets = judged
        .iter()
        .filter_map(|name| ctx.rule_sets.iter().find(|s| s.name == *name))
        .map(|set| {
            let healthier = settings.higher_is_healthier.iter().any(|(n, _)| *n == set.name);
            let grades: Vec<String> = set.grades.iter().map(|g| g.name.to_string()).collect();
            figures::set_figures(&set.name, healthier, &grades, &rule_ids(&set.body), &scored, settings.min_count)
        })
        .collect();
    let escalations = match evidence.has_flagged()? {
        true => Some(escalation_figures(ctx, evidence, history, events)?),
        false => None,
    };
    let grades_of = |name: &str| -> Vec<String> {
        ctx.rule_sets
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.grades.iter().map(|g| g.name.to_string()).collect())
            .unwrap_or_default()
    };
    let forecast = settings.forecast.as_ref().map(|(set, _)| {
        let category = settings.category.as_ref().map(|(c, _)| (c.clone(), grades_of(c)));
        figures::forecast(set, category.as_ref().map(|(c, g)| (c.as_str(), g.as_slice())), &scored)
    });
    let lost: Vec<(usize, &Event)> = events.iter().enumerate().filter(|(_, e)| e.kind.lost()).collect();
    let windows: Vec<(usize, &str, NaiveDate, NaiveDate)> = lost
        .iter()
        .filter(|(_, e)| !e.reasons.is_empty())
        .map(|(i, e)| (*i, e.account.as_str(), e.date - Duration::days(i64::from(horizon)), e.date))
        .collect();
    let fired = evidence.fired_between(&windows)?;
    let with_leads: Vec<(&Event, HashMap<String, i64>)> = lost
        .iter()
        .map(|(i, e)| {
            let leads = fired
                .get(i)
                .map(|codes| codes.iter().map(|(code, first)| (code.clone(), (e.date - *first).num_days())).collect());
            (*e, leads.unwrap_or_default())
        })
        .collect();
    let reasons = ctx.job.outcomes.as_ref().map(|o| o.reasons.clone()).unwrap_or_default();
    let foreseen = figures::foreseen(&reasons, &with_leads, &signals(ctx.rule_sets));
    Ok(Figures { rule_sets, escalations, forecast, foreseen })
}

type AtRun = Option<(i64, NaiveDate)>;

/// One account's results in a run, by rule set.
type Results = HashMap<String, Stored>;

/// Each event's run `days` before it and its account's results in it, by rule set (empty
/// when there is no run that early, or the account was not in it).
fn results_at(
    evidence: &Evidence,
    history: &History,
    events: &[Event],
    days: u32,
) -> Result<(Vec<AtRun>, Vec<Results>), ValidationError> {
    let at: Vec<AtRun> = events.iter().map(|e| history.run_at(e.date - Duration::days(i64::from(days)))).collect();
    let pairs: Vec<(i64, &str)> =
        events.iter().zip(&at).filter_map(|(e, r)| r.map(|(run, _)| (run, e.account.as_str()))).collect();
    let mut stored = evidence.results(&pairs)?;
    let mut by_pair: HashMap<(i64, String), Results> = HashMap::new();
    for ((run, account, set), s) in stored.drain() {
        by_pair.entry((run, account)).or_default().insert(set, s);
    }
    let results = events
        .iter()
        .zip(&at)
        .map(|(e, r)| r.and_then(|(run, _)| by_pair.get(&(run, e.account.clone())).cloned()).unwrap_or_default())
        .collect();
    Ok((at, results))
}

fn escalation_figures(
    ctx: &Context,
    evidence: &Evidence,
    history: &History,
    events: &[Event],
) -> Result<Vec<EscalationFigures>, ValidationError> {
    let outputs = ctx.escalations;
    let mut figures: Vec<EscalationFigures> =
        outputs.iter().map(|o| EscalationFigures { output: o.to_string(), horizons: Vec::new() }).collect();
    for days in ESCALATION_DAYS {
        let (at, results) = results_at(evidence, history, events, days)?;
        let scored: Vec<(&Event, i64)> = events
            .iter()
            .zip(at.iter().zip(&results))
            .filter_map(|(e, (r, s))| Some((e, r.filter(|_| !s.is_empty())?.0)))
            .collect();
        let pairs: Vec<(i64, &str)> = scored.iter().map(|(e, run)| (*run, e.account.as_str())).collect();
        let flagged = evidence.flagged(&pairs)?;
        for f in &mut figures {
            let hits: HashSet<(i64, &str)> =
                flagged.get(&f.output).into_iter().flatten().map(|(r, a)| (*r, a.as_str())).collect();
            let marked: Vec<(&Event, bool)> =
                scored.iter().map(|(e, run)| (*e, hits.contains(&(*run, e.account.as_str())))).collect();
            f.horizons.push(figures::escalation_at(days, &marked));
        }
    }
    Ok(figures)
}

/// A rule set's own rule ids, in the order written.
fn rule_ids(body: &Body) -> Vec<String> {
    match body {
        Body::Points(rules) => rules.iter().map(|r| r.id.to_string()).collect(),
        Body::Scorecard(measures) => measures.iter().map(|m| m.id.to_string()).collect(),
        Body::Classification { classes, .. } => classes.iter().map(|c| c.id.to_string()).collect(),
        Body::Script(_) => Vec::new(),
    }
}

/// Every code a reason can be matched with: the rules' tags and ids.
fn signals(rule_sets: &[RuleSet]) -> Vec<String> {
    let mut codes: Vec<String> = Vec::new();
    for set in rule_sets {
        if let Body::Points(rules) = &set.body {
            for r in rules {
                codes.extend(r.tags.iter().map(|t| t.to_string()));
            }
        }
        codes.extend(rule_ids(&set.body));
    }
    codes.sort();
    codes.dedup();
    codes
}

/// Each lost event's segment in every dimension the review splits by, read from the last
/// run before the outcome: an entity column (from the run's snapshot), `owner`, or a rule
/// set's grade. Without `segments:`, the owner and the impact category's grade.
fn segments(ctx: &Context, history: &History, lost: &[&Event]) -> Result<Vec<(String, Vec<String>)>, ValidationError> {
    let settings = &ctx.job.validation;
    let mut names: Vec<String> = settings.segments.iter().map(|(s, _)| s.clone()).collect();
    if names.is_empty() {
        if ctx.job.entity.owner.is_some() {
            names.push("owner".into());
        }
        if let Some((c, _)) = &settings.category {
            names.push(format!("{c}.grade"));
        }
    }
    let at: Vec<AtRun> = lost.iter().map(|e| history.run_before(e.date)).collect();
    let pairs: Vec<(i64, &str)> =
        lost.iter().zip(&at).filter_map(|(e, r)| r.map(|(run, _)| (run, e.account.as_str()))).collect();
    let unknown = "(not in history)".to_string();
    let mut dimensions = Vec::new();
    for name in names {
        let values: HashMap<(i64, String), String> = match name.split_once('.') {
            Some((set, "grade")) => history
                .results(&pairs)?
                .into_iter()
                .filter(|((_, _, s), _)| s == set)
                .map(|((run, account, _), s)| ((run, account), s.grade.unwrap_or_else(|| "none".into())))
                .collect(),
            _ if name == "owner" => history.owners(&pairs)?,
            _ => history.column(ctx.runs_dir, &ctx.job.entity.key, &name, &pairs)?,
        };
        let column = lost
            .iter()
            .zip(&at)
            .map(|(e, r)| {
                r.and_then(|(run, _)| values.get(&(run, e.account.clone())).cloned()).unwrap_or_else(|| unknown.clone())
            })
            .collect();
        dimensions.push((name, column));
    }
    Ok(dimensions)
}
