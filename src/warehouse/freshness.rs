//! The freshness gate: a source older than its `max_age` stops the run before anything is
//! published or mailed (or, with `on_stale: warn`, lets it go on with a warning). Age is the
//! newest file's modification time, or the newest `loaded_at` value when the source has one.

use std::path::Path;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

use crate::config::job::{OnStale, Source};

/// What the gate found for one source.
#[derive(Debug, Clone, PartialEq)]
pub enum Freshness {
    Fresh,
    /// Stale, and the source says to go on: the warning to record.
    Warn(String),
    /// Stale, and the run must stop: the error.
    Fail(String),
}

/// Checks the files' modification times (before loading).
pub fn check_files(source: &Source, now: SystemTime) -> Freshness {
    let (Some(max_age), None) = (source.max_age, &source.loaded_at) else { return Freshness::Fresh };
    let newest = glob::glob(&source.pattern)
        .map(|paths| paths.filter_map(Result::ok).filter_map(|p| modified(&p)).max())
        .ok()
        .flatten();
    let Some(newest) = newest else { return Freshness::Fresh };
    let age = now.duration_since(newest).unwrap_or_default();
    judge(source, age, max_age, &format!("`{}` was last written", source.display))
}

/// Checks the newest `loaded_at` value (after loading).
pub fn check_loaded_at(source: &Source, newest: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Freshness {
    let (Some(max_age), Some(column)) = (source.max_age, &source.loaded_at) else { return Freshness::Fresh };
    let Some(newest) = newest else {
        return verdict(source, format!("source `{}` has no `{column}` value, so its age is unknown", source.name));
    };
    let age = (now - newest).to_std().unwrap_or_default();
    judge(source, age, max_age, &format!("its newest `{column}` is"))
}

fn judge(source: &Source, age: Duration, max_age: Duration, what: &str) -> Freshness {
    if age <= max_age {
        return Freshness::Fresh;
    }
    verdict(
        source,
        format!("source `{}` is stale: {what} {} ago, more than max_age {}", source.name, human(age), human(max_age)),
    )
}

fn verdict(source: &Source, message: String) -> Freshness {
    match source.on_stale {
        OnStale::Fail => Freshness::Fail(message),
        OnStale::Warn => Freshness::Warn(message),
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// `2d 3h`, `26h 5m`, `45m`, `30s`.
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    let (days, hours, minutes) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, 0) => format!("{h}h"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, 0, _) => format!("{d}d"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}
