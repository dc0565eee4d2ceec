//! Metrics: population numbers (churn rate, share of ARR at risk, expected retained ARR)
//! computed every run by SQL aggregates over the run's accounts, each with its rule sets'
//! results as struct columns (`health.grade`, `forecast.score`, `risk.tags`,
//! `signals.fired`), so the numbers use the same words as the rules.
//!
//! `check.rs` checks a job's metrics against the entity before any data is read, each
//! problem located in the job file; `compute.rs` computes them over a run's accounts and
//! tells which alerts hold. The store keeps the values as a time series.

mod check;
mod compute;

pub use check::check;
pub use compute::{MetricError, alerts, compute};

use std::collections::HashMap;

use chrono::NaiveDate;

use crate::config::job::{Metric, MetricFormat};
use crate::entity::Schema;
use crate::warehouse::ident;

/// One computed number: a metric's total (no segment) or its value in one segment.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricValue {
    pub metric: String,
    /// The `by:` the segment is of, as written; `None` for the total.
    pub segment_by: Option<String>,
    /// The segment's value as text (`None` for the total, or for accounts without one).
    pub segment: Option<String>,
    /// numerator / denominator for a rate (`None` when the denominator is 0), else the value.
    pub value: Option<f64>,
    pub numerator: Option<f64>,
    pub denominator: Option<f64>,
}

impl MetricValue {
    /// Whether this is the metric's total rather than a segment's value.
    pub fn is_total(&self) -> bool {
        self.segment_by.is_none()
    }

    /// The same metric and segment: what a previous run's value is matched on.
    pub fn same_place(&self, other: &MetricValue) -> bool {
        self.metric == other.metric && self.segment_by == other.segment_by && self.segment == other.segment
    }
}

/// A metric whose `alert_when` holds this run, in its total or in a segment.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub value: MetricValue,
    pub previous: Option<f64>,
}

impl Alert {
    pub fn change(&self) -> Option<f64> {
        Some(self.value.value? - self.previous?)
    }
}

/// A run's metrics: what they are today, what they were, and which alerts hold.
#[derive(Debug, Default)]
pub struct Measured {
    pub values: Vec<MetricValue>,
    /// The values of the job's previous published run (before this run's day).
    pub previous: Vec<MetricValue>,
    pub alerts: Vec<Alert>,
    /// Each metric's total on the days before this run (the day's latest published run),
    /// oldest first.
    pub history: History,
}

/// Each metric's total by day, oldest first.
pub type History = HashMap<String, Vec<(NaiveDate, Option<f64>)>>;

impl Measured {
    /// A metric's value today, in its total or a segment.
    pub fn total(&self, metric: &str) -> Option<&MetricValue> {
        self.values.iter().find(|v| v.metric == metric && v.is_total())
    }

    /// The previous run's value in the same place as `v`.
    pub fn previous_of(&self, v: &MetricValue) -> Option<f64> {
        self.previous.iter().find(|p| p.same_place(v)).and_then(|p| p.value)
    }

    /// Whether `v`'s alert holds.
    pub fn alerted(&self, v: &MetricValue) -> bool {
        self.alerts.iter().any(|a| a.value.same_place(v))
    }
}

/// The struct every rule set's results are in the metrics' input.
const RESULT_TYPE: &str = "STRUCT(grade VARCHAR, score DOUBLE, tags VARCHAR[], fired VARCHAR[])";
/// The fields of [`RESULT_TYPE`] and their SQL types.
const RESULT_FIELDS: [(&str, &str); 4] =
    [("grade", "VARCHAR"), ("score", "DOUBLE"), ("tags", "VARCHAR[]"), ("fired", "VARCHAR[]")];
/// The view metrics read.
const INPUT: &str = "kw_metric_input";

/// The entity's columns, less any a rule set's results take the name of.
fn entity_columns(schema: &Schema, sets: &[&str]) -> String {
    let shadowed: Vec<String> = schema.names().filter(|c| sets.contains(c)).map(ident).collect();
    match shadowed.is_empty() {
        true => "e.*".to_string(),
        false => format!("e.* EXCLUDE ({})", shadowed.join(", ")),
    }
}

/// How a value of this metric reads: `12.5%`, `$1,234`, `1,234`, `12.35`.
pub fn format_value(format: MetricFormat, v: Option<f64>, currency: &str) -> String {
    let Some(v) = v else { return "n/a".to_string() };
    match format {
        MetricFormat::Percent => format!("{:.1}%", v * 100.0),
        MetricFormat::Money => crate::rules::engine::money_in(v, currency),
        MetricFormat::Count => thousands(v.round()),
        MetricFormat::Number => match v.fract() == 0.0 && v.abs() < 1e15 {
            true => thousands(v),
            false => format!("{v:.2}"),
        },
    }
}

/// How a change of this metric reads: `up 1.2 points`, `down $3,000`, `unchanged`.
pub fn format_change(format: MetricFormat, change: Option<f64>, currency: &str) -> Option<String> {
    let c = change?;
    let magnitude = |v: f64| match format {
        MetricFormat::Percent => {
            let points = v * 100.0;
            format!("{points:.1} point{}", if format!("{points:.1}") == "1.0" { "" } else { "s" })
        }
        _ => format_value(format, Some(v), currency),
    };
    let shown = magnitude(c.abs());
    Some(match c {
        _ if shown == magnitude(0.0) => "unchanged".to_string(),
        c if c > 0.0 => format!("up {shown}"),
        _ => format!("down {shown}"),
    })
}

fn thousands(v: f64) -> String {
    let n = v as i64;
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    format!("{}{out}", if n < 0 { "-" } else { "" })
}

/// The metrics among `metrics` a summary shows, by name.
pub fn find<'a>(metrics: &'a [Metric], name: &str) -> Option<&'a Metric> {
    metrics.iter().find(|m| m.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_changes_read_in_their_format() {
        assert_eq!(format_value(MetricFormat::Percent, Some(0.125), "$"), "12.5%");
        assert_eq!(format_value(MetricFormat::Money, Some(1234567.4), "€"), "€1,234,567");
        assert_eq!(format_value(MetricFormat::Count, Some(12345.0), "$"), "12,345");
        assert_eq!(format_value(MetricFormat::Number, Some(2.0 / 3.0), "$"), "0.67");
        assert_eq!(format_value(MetricFormat::Number, None, "$"), "n/a");
        assert_eq!(format_change(MetricFormat::Percent, Some(0.012), "$").as_deref(), Some("up 1.2 points"));
        assert_eq!(format_change(MetricFormat::Percent, Some(-0.01), "$").as_deref(), Some("down 1.0 point"));
        assert_eq!(format_change(MetricFormat::Money, Some(-3000.0), "£").as_deref(), Some("down £3,000"));
        assert_eq!(format_change(MetricFormat::Count, Some(0.2), "$").as_deref(), Some("unchanged"));
        assert_eq!(format_change(MetricFormat::Count, None, "$"), None);
    }
}
