//! The report's metrics: the headline cards (the metrics the job puts there, led by any
//! whose alert holds) and the metrics section, each metric with its value, what a rate is
//! of, its change since the previous run, its segments and a small trend chart.

use minijinja::{Value, context};

use super::charts::{self, PALETTE};
use super::{Charts, Ctx};
use crate::config::job::{Measure, Metric, MetricFormat};
use crate::metrics::{Measured, MetricValue, find, format_change, format_value};
use crate::outputs::{Inline, OutputError};

/// How many segments each metric lists; the store has them all.
const SEGMENT_ROWS: usize = 12;

/// The headline cards and the metrics section.
pub(super) fn build(c: Ctx, charts: &mut Charts) -> Result<(Vec<Value>, Vec<Value>), OutputError> {
    let (view, report) = (c.view, c.report);
    let metrics = &view.job.metrics;
    let mut headline: Vec<&str> = Vec::new();
    // Alerts first, in the job's order, then the headline the job sets.
    for m in metrics {
        if view.metrics.alerts.iter().any(|a| a.value.metric == m.name) {
            headline.push(&m.name);
        }
    }
    for name in &report.headline {
        if !headline.contains(&name.as_str()) {
            headline.push(name);
        }
    }
    let cards = headline.iter().filter_map(|n| find(metrics, n)).map(|m| entry(c, m, false)).collect();
    let mut section = Vec::new();
    for name in &report.metrics {
        let Some(m) = find(metrics, name) else { continue };
        let mut e = entry(c, m, true);
        let trend = trend(c, m);
        if trend.len() >= 2 {
            let cid = format!("metric-{}", m.name);
            let color = if view.metrics.alerts.iter().any(|a| a.value.metric == m.name && a.value.is_total()) {
                charts::grade_color("red", 0)
            } else {
                PALETTE[0]
            };
            let png = charts::sparkline(&trend, color)?;
            charts.inline.push(Inline { cid: cid.clone(), content_type: "image/png".into(), body: png });
            e = context! { chart => context! { cid => cid, width => charts::SPARK_WIDTH, height => charts::SPARK_HEIGHT,
            alt => format!("{} over the last {} runs", m.title, trend.len()) }, runs => trend.len(),
            trend => trend.iter().map(|v| format_value(m.format, *v, &report.wording.currency)).collect::<Vec<_>>(), ..e };
        }
        section.push(e);
    }
    Ok((cards, section))
}

/// The metric's totals on the last runs, today's last.
fn trend(c: Ctx, m: &Metric) -> Vec<Option<f64>> {
    let mut points: Vec<Option<f64>> =
        c.view.metrics.history.get(&m.name).map(|h| h.iter().map(|(_, v)| *v).collect()).unwrap_or_default();
    points.push(c.view.metrics.total(&m.name).and_then(|v| v.value));
    let keep = points.len().saturating_sub(c.report.history);
    points.split_off(keep)
}

/// One metric as the templates show it: its total and, in the section, its segments.
fn entry(c: Ctx, m: &Metric, segments: bool) -> Value {
    let measured = c.view.metrics;
    let none = MetricValue {
        metric: m.name.clone(),
        segment_by: None,
        segment: None,
        value: None,
        numerator: None,
        denominator: None,
    };
    let total = measured.total(&m.name).unwrap_or(&none);
    let segment_rows: Vec<&MetricValue> = match segments {
        true => measured.values.iter().filter(|v| v.metric == m.name && !v.is_total()).collect(),
        false => Vec::new(),
    };
    let alerted_segments: Vec<String> = measured
        .alerts
        .iter()
        .filter(|a| a.value.metric == m.name && !a.value.is_total())
        .map(|a| segment_name(&a.value))
        .collect();
    let shown: Vec<Value> = segment_rows.iter().take(SEGMENT_ROWS).map(|v| value(c, m, v)).collect();
    context! {
        name => m.name.clone(), title => m.title.clone(), format => m.format.as_str(),
        alert_when => m.alert_when.as_ref().map(|a| a.text.clone()),
        segment_by => m.by.as_ref().map(|b| b.text.trim().to_string()),
        segments => shown, more_segments => segment_rows.len().saturating_sub(SEGMENT_ROWS),
        alerted_segments => alerted_segments, ..value(c, m, total)
    }
}

fn value(c: Ctx, m: &Metric, v: &MetricValue) -> Value {
    value_of(c.view.metrics, m, v, &c.report.wording.currency)
}

/// One value of a metric: as text, with what it is of, its parts and its change.
pub(crate) fn value_of(measured: &Measured, m: &Metric, v: &MetricValue, currency: &str) -> Value {
    let previous = measured.previous_of(v);
    let change = v.value.zip(previous).map(|(a, b)| a - b);
    let parts = match (&m.measure, v.numerator, v.denominator) {
        (Measure::Rate { .. }, Some(n), Some(d)) => {
            let format = m.parts.unwrap_or(match n.fract() == 0.0 && d.fract() == 0.0 {
                true => MetricFormat::Count,
                false => MetricFormat::Number,
            });
            Some(format!("{} of {}", format_value(format, Some(n), currency), format_value(format, Some(d), currency)))
        }
        _ => None,
    };
    // A percentage always says what it is of: the metric's `of`, else its parts.
    let of = match m.format {
        MetricFormat::Percent => m.of.clone().map(|o| with_of(&o)),
        _ => None,
    };
    context! {
        segment => segment_name(v), value => v.value, text => format_value(m.format, v.value, currency),
        of => of, parts => parts, previous => previous, change => change,
        previous_text => format_value(m.format, previous, currency),
        change_text => format_change(m.format, change, currency), alert => measured.alerted(v),
    }
}

/// `of ARR` as written, or `ARR` made into it.
fn with_of(of: &str) -> String {
    let of = of.trim();
    match of.starts_with("of ") {
        true => of.to_string(),
        false => format!("of {of}"),
    }
}

pub(crate) fn segment_name(v: &MetricValue) -> String {
    match (&v.segment_by, &v.segment) {
        (None, _) => "all accounts".to_string(),
        (Some(_), Some(s)) => s.clone(),
        (Some(by), None) => format!("no {by}"),
    }
}
