//! A job's `metrics:` checked on their own: each has a value or a rate, a known format and a
//! name a table can hold. Their SQL is checked against the entity in `crate::metrics`.

use indexmap::IndexMap;
use serde_saphyr::Spanned;

use super::raw::RawMetric;
use crate::config::diagnostic::Code;
use crate::config::diagnostic::{Diagnostic, Diagnostics, SourceFile, Span, did_you_mean};
use crate::config::yaml::{self, TextMap};

/// A metric as the job defines it; its SQL is still text.
#[derive(Debug, Clone)]
pub struct Metric {
    pub name: String,
    pub title: String,
    pub measure: Measure,
    /// What a rate is of, in words (`of ARR`).
    pub of: Option<String>,
    pub filter: Option<Sql>,
    pub by: Option<Sql>,
    pub format: MetricFormat,
    /// How a rate's numerator and denominator read; by their values unless set.
    pub parts: Option<MetricFormat>,
    pub alert_when: Option<Sql>,
    /// The metric's name in the job file.
    pub span: Span,
}

/// What a metric aggregates.
#[derive(Debug, Clone)]
pub enum Measure {
    Value(Sql),
    Rate { numerator: Sql, denominator: Sql },
}

/// SQL text from the job file, with where each of its characters is in the file.
#[derive(Debug, Clone)]
pub struct Sql {
    pub text: String,
    pub field: &'static str,
    pub map: TextMap,
}

impl Sql {
    fn new(file: &SourceFile, field: &'static str, value: &Spanned<String>) -> Sql {
        Sql { text: value.value.trim_end().to_string(), field, map: TextMap::new(file, value) }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricFormat {
    /// A fraction shown as a percentage (0.052 is 5.2%).
    Percent,
    Money,
    Count,
    Number,
}

impl MetricFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            MetricFormat::Percent => "percent",
            MetricFormat::Money => "money",
            MetricFormat::Count => "count",
            MetricFormat::Number => "number",
        }
    }
}

const FORMATS: [&str; 4] = ["percent", "money", "count", "number"];

/// Checks each metric as written; what is wrong is pushed to `diags`, and a metric with
/// errors is left out.
pub fn metrics(file: &SourceFile, raw: &IndexMap<String, RawMetric>, diags: &mut Diagnostics) -> Vec<Metric> {
    raw.iter().filter_map(|(name, m)| metric(file, name, m, diags)).collect()
}

fn metric(file: &SourceFile, name: &str, m: &RawMetric, diags: &mut Diagnostics) -> Option<Metric> {
    let span = name_span(file, name);
    let mut ok = true;
    if !super::is_identifier(name) {
        diags.push(
            Diagnostic::error(Code::BadName, span.clone(), format!("metric name `{name}` cannot be a column name"))
                .with_hint("use letters, digits and `_`, starting with a letter"),
        );
        ok = false;
    }
    let sql = |field: &'static str, v: &Option<Spanned<String>>, diags: &mut Diagnostics| -> Option<Sql> {
        let v = v.as_ref()?;
        if v.value.trim().is_empty() {
            diags.push(Diagnostic::error(
                Code::Metric,
                yaml::span_of(file, v, 1),
                format!("metric `{name}` has an empty `{field}`"),
            ));
            return None;
        }
        Some(Sql::new(file, field, v))
    };
    let value = sql("value", &m.value, diags);
    let numerator = sql("numerator", &m.numerator, diags);
    let denominator = sql("denominator", &m.denominator, diags);
    let measure = match (value, numerator, denominator) {
        (Some(v), None, None) => Some(Measure::Value(v)),
        (None, Some(numerator), Some(denominator)) => Some(Measure::Rate { numerator, denominator }),
        (v, n, d) => {
            let message = match (v.is_some(), n.is_some(), d.is_some()) {
                (true, _, _) => format!("metric `{name}` has a `value` and a rate: keep one"),
                (false, true, false) => format!("metric `{name}` has a `numerator` but no `denominator`"),
                (false, false, true) => format!("metric `{name}` has a `denominator` but no `numerator`"),
                _ => format!("metric `{name}` says nothing to compute"),
            };
            // Fields that were written but empty have their own error.
            let empty = [&m.value, &m.numerator, &m.denominator]
                .iter()
                .any(|f| f.as_ref().is_some_and(|v| v.value.trim().is_empty()));
            if !empty {
                diags.push(Diagnostic::error(Code::Metric, span.clone(), message).with_hint(
                    "write `value: <aggregate>` (`sum(arr)`), or a rate as `numerator:` and `denominator:` (`count(*) FILTER (WHERE health.grade = 'red')` over `count(*)`)",
                ));
            }
            None
        }
    };
    let parse = |f: &Spanned<String>, field: &str, diags: &mut Diagnostics| match f.value.trim() {
        "percent" if field == "format" => Some(MetricFormat::Percent),
        "money" => Some(MetricFormat::Money),
        "count" => Some(MetricFormat::Count),
        "number" => Some(MetricFormat::Number),
        other => {
            let known: &[&str] = if field == "format" { &FORMATS } else { &FORMATS[1..] };
            let listed: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
            diags.push(
                Diagnostic::error(
                    Code::UnknownValue,
                    yaml::span_of(file, f, f.value.len()),
                    format!("metric `{name}` has an unknown {field} `{other}`"),
                )
                .with_hint(
                    did_you_mean(other, known.iter().copied()).unwrap_or_else(|| format!("use {}", listed.join(", "))),
                ),
            );
            None
        }
    };
    let format = match &m.format {
        None => Some(match measure {
            Some(Measure::Rate { .. }) => MetricFormat::Percent,
            _ => MetricFormat::Number,
        }),
        Some(f) => parse(f, "format", diags),
    };
    let parts = m.parts.as_ref().map(|p| parse(p, "parts", diags));
    let filter = sql("where", &m.filter, diags);
    let by = sql("by", &m.by, diags);
    let alert_when = sql("alert_when", &m.alert_when, diags);
    if parts.is_some_and(|p| p.is_none())
        || m.filter.is_some() && filter.is_none()
        || m.by.is_some() && by.is_none()
        || m.alert_when.is_some() && alert_when.is_none()
        || !ok
    {
        return None;
    }
    Some(Metric {
        name: name.to_string(),
        title: m.title.clone().unwrap_or_else(|| words(name)),
        measure: measure?,
        of: m.of.clone(),
        filter,
        by,
        format: format?,
        parts: parts.flatten(),
        alert_when,
        span,
    })
}

/// `red_arr_share` as `Red ARR share`: words, the first capitalised, short ones that are
/// abbreviations (`arr`, `nrr`, `mrr`, `csm`) in capitals.
fn words(name: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    for (i, w) in name.split('_').filter(|w| !w.is_empty()).enumerate() {
        let lower = w.to_lowercase();
        let word = if ["arr", "mrr", "nrr", "grr", "csm", "nps", "csat", "ttfv", "qbr", "ebr"].contains(&lower.as_str())
        {
            lower.to_uppercase()
        } else if i == 0 {
            let mut c = lower.chars();
            c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
        } else {
            lower
        };
        out.push(word);
    }
    out.join(" ")
}

/// Where `name:` is written under `metrics:` (the key has no position of its own).
fn name_span(file: &SourceFile, name: &str) -> Span {
    let mut in_metrics = false;
    for line in 1.. {
        let Some(text) = file.line_text(line) else { break };
        if text.starts_with("metrics:") {
            in_metrics = true;
            continue;
        }
        if in_metrics && !text.starts_with([' ', '#']) && !text.trim().is_empty() {
            in_metrics = false;
        }
        let trimmed = text.trim_start();
        if in_metrics && trimmed.strip_prefix(name).is_some_and(|rest| rest.trim_start().starts_with(':')) {
            let col = text.len() - trimmed.len() + 1;
            return file.span(line, col, name.len());
        }
    }
    file.start()
}

#[cfg(test)]
mod tests {
    use super::words;

    #[test]
    fn names_read_as_words() {
        assert_eq!(words("red_arr_share"), "Red ARR share");
        assert_eq!(words("accounts_past_ttfv"), "Accounts past TTFV");
        assert_eq!(words("churn_rate"), "Churn rate");
    }
}
