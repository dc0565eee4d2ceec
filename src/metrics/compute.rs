//! Metrics computed over a run's accounts in the warehouse, where the entity already is:
//! the rule sets' results the metrics read are uploaded beside it, in its row order, and
//! each metric is one aggregate query for its total and one for its segments.

use duckdb::Connection;

use super::{Alert, INPUT, MetricValue, RESULT_FIELDS, RESULT_TYPE, entity_columns};
use crate::config::job::{Measure, Metric};
use crate::entity::Schema;
use crate::rules::SetOutcomes;
use crate::warehouse::ident;

#[derive(Debug, thiserror::Error)]
pub enum MetricError {
    #[error("the metrics' input cannot be built: {0}")]
    DuckDb(#[from] duckdb::Error),
}

/// Computes every metric over `kw_entity` and the results of `sets` (in its row order). A
/// metric whose SQL fails on this run's data is left out with a warning: the others, and
/// the run, go on.
pub fn compute(
    conn: &Connection,
    schema: &Schema,
    sets: &[(&str, &SetOutcomes)],
    metrics: &[Metric],
    warnings: &mut Vec<String>,
) -> Result<Vec<MetricValue>, MetricError> {
    if metrics.is_empty() {
        return Ok(Vec::new());
    }
    input(conn, schema, sets, metrics)?;
    let mut values = Vec::new();
    for m in metrics {
        match metric(conn, m) {
            Ok(mut v) => values.append(&mut v),
            Err(e) => warnings.push(format!(
                "metric `{}` failed and is not kept this run: {}",
                m.name,
                e.to_string().lines().next().unwrap_or_default()
            )),
        }
    }
    Ok(values)
}

/// The view metrics read: the entity's columns and a struct of results per rule set, with
/// only the fields some metric names uploaded (a rule set's lists are the costly part).
fn input(conn: &Connection, schema: &Schema, sets: &[(&str, &SetOutcomes)], metrics: &[Metric]) -> duckdb::Result<()> {
    let texts: Vec<String> = metrics.iter().flat_map(sql_texts).map(|t| t.to_lowercase()).collect();
    let mut joins = String::new();
    let mut columns = vec![entity_columns(schema, &sets.iter().map(|(n, _)| *n).collect::<Vec<_>>())];
    for (i, (name, outcomes)) in sets.iter().enumerate() {
        let fields: Vec<String> = RESULT_FIELDS
            .iter()
            .map(|(field, ty)| {
                if !reads(&texts, name, field) {
                    return Ok(format!("{field} := NULL::{ty}"));
                }
                let table = format!("kw_metric_{i}_{field}");
                crate::rules::sql::upload_field(conn, &table, field, outcomes)?;
                joins.push_str(&format!(" POSITIONAL JOIN {}", ident(&table)));
                Ok(format!("{field} := {}.{}", ident(&table), ident(field)))
            })
            .collect::<duckdb::Result<_>>()?;
        columns.push(format!("struct_pack({})::{RESULT_TYPE} AS {}", fields.join(", "), ident(name)));
    }
    conn.execute_batch(&format!(
        "CREATE OR REPLACE TEMP VIEW {INPUT} AS SELECT {} FROM kw_entity e{joins}",
        columns.join(", ")
    ))
}

/// Every piece of SQL a metric has, for telling which results it reads.
fn sql_texts(m: &Metric) -> Vec<String> {
    let mut texts: Vec<String> = match &m.measure {
        Measure::Value(v) => vec![v.text.clone()],
        Measure::Rate { numerator, denominator } => vec![numerator.text.clone(), denominator.text.clone()],
    };
    texts.extend(m.filter.iter().chain(&m.by).map(|s| s.text.clone()));
    texts
}

/// Whether some text reads `set.field`, or the whole struct `set`.
fn reads(texts: &[String], set: &str, field: &str) -> bool {
    let set = set.to_lowercase();
    let is_name = |c: char| c.is_alphanumeric() || c == '_';
    texts.iter().any(|t| {
        t.match_indices(&set).any(|(at, _)| {
            if t[..at].chars().next_back().is_some_and(|c| is_name(c) || c == '.') {
                return false;
            }
            let after = &t[at + set.len()..];
            match after.strip_prefix('.') {
                Some(rest) => {
                    let name: String = rest.chars().take_while(|&c| is_name(c)).collect();
                    name == field || !RESULT_FIELDS.iter().any(|(f, _)| *f == name)
                }
                None => !after.chars().next().is_some_and(is_name),
            }
        })
    })
}

/// A metric's total and, with `by:`, its value in each segment.
fn metric(conn: &Connection, m: &Metric) -> duckdb::Result<Vec<MetricValue>> {
    let (numerator, denominator) = match &m.measure {
        Measure::Value(v) => (v.text.as_str(), None),
        Measure::Rate { numerator, denominator } => (numerator.text.as_str(), Some(denominator.text.as_str())),
    };
    let aggregates = format!(
        "(\n{numerator}\n)::DOUBLE, {}",
        denominator.map_or("NULL::DOUBLE".to_string(), |d| format!("(\n{d}\n)::DOUBLE"))
    );
    let filter = m.filter.as_ref().map_or(String::new(), |f| format!(" WHERE (\n{}\n)", f.text));
    let value = |n: Option<f64>, d: Option<f64>| match denominator {
        None => n,
        Some(_) => match (n, d) {
            (Some(n), Some(d)) if d != 0.0 => Some(n / d),
            _ => None,
        },
    };
    let total: (Option<f64>, Option<f64>) =
        conn.query_row(&format!("SELECT {aggregates} FROM {INPUT}{filter}"), [], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let rate = |(n, d): (Option<f64>, Option<f64>)| match denominator {
        None => (None, None),
        Some(_) => (n, d),
    };
    let (n, d) = rate(total);
    let mut values = vec![MetricValue {
        metric: m.name.clone(),
        segment_by: None,
        segment: None,
        value: value(total.0, total.1),
        numerator: n,
        denominator: d,
    }];
    if let Some(by) = &m.by {
        let sql = format!(
            "SELECT CAST((\n{}\n) AS VARCHAR) AS kw_segment, {aggregates} FROM {INPUT}{filter} GROUP BY 1 ORDER BY 1 NULLS LAST",
            by.text
        );
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, Option<String>>(0)?, r.get(1)?, r.get(2)?)))?;
        for row in rows {
            let (segment, n, d): (Option<String>, Option<f64>, Option<f64>) = row?;
            let (kept_n, kept_d) = rate((n, d));
            values.push(MetricValue {
                metric: m.name.clone(),
                segment_by: Some(by.text.trim().to_string()),
                segment,
                value: value(n, d),
                numerator: kept_n,
                denominator: kept_d,
            });
        }
    }
    Ok(values)
}

/// The metrics' values whose `alert_when` holds, given the previous run's values.
pub fn alerts(
    conn: &Connection,
    metrics: &[Metric],
    values: &[MetricValue],
    previous: &[MetricValue],
    warnings: &mut Vec<String>,
) -> Vec<Alert> {
    let mut alerts = Vec::new();
    for m in metrics {
        let Some(when) = &m.alert_when else { continue };
        let mine: Vec<(&MetricValue, Option<f64>)> = values
            .iter()
            .filter(|v| v.metric == m.name)
            .map(|v| (v, previous.iter().find(|p| p.same_place(v)).and_then(|p| p.value)))
            .collect();
        if mine.is_empty() {
            continue;
        }
        let number = |v: Option<f64>| match v.filter(|x| x.is_finite()) {
            Some(x) => format!("{x:?}::DOUBLE"),
            None => "NULL::DOUBLE".to_string(),
        };
        let rows: Vec<String> = mine
            .iter()
            .enumerate()
            .map(|(i, (v, p))| {
                let change = v.value.zip(*p).map(|(a, b)| a - b);
                format!(
                    "({i}, {}, {}, {}, {}, {})",
                    number(v.value),
                    number(*p),
                    number(change),
                    number(v.numerator),
                    number(v.denominator)
                )
            })
            .collect();
        let sql = format!(
            "SELECT i FROM (VALUES {}) t(i, value, previous, change, numerator, denominator) WHERE (\n{}\n) ORDER BY i",
            rows.join(", "),
            when.text
        );
        let held: duckdb::Result<Vec<i32>> =
            conn.prepare(&sql).and_then(|mut s| s.query_map([], |r| r.get(0))?.collect());
        match held {
            Ok(held) => alerts.extend(
                held.into_iter()
                    .filter_map(|i| mine.get(i as usize))
                    .map(|(v, p)| Alert { value: (*v).clone(), previous: *p }),
            ),
            Err(e) => warnings.push(format!(
                "metric `{}`: `alert_when` failed: {}",
                m.name,
                e.to_string().lines().next().unwrap_or_default()
            )),
        }
    }
    alerts
}

#[cfg(test)]
mod tests {
    use super::reads;

    #[test]
    fn only_the_results_named_are_read() {
        let t = |s: &str| vec![s.to_lowercase()];
        assert!(reads(&t("count(*) FILTER (WHERE health.grade = 'red')"), "health", "grade"));
        assert!(!reads(&t("count(*) FILTER (WHERE health.grade = 'red')"), "health", "score"));
        assert!(!reads(&t("sum(health_score)"), "health", "score"));
        assert!(!reads(&t("sum(x.health.score)"), "health", "score"));
        // The whole struct, or a field it does not know (DuckDB's error then names it).
        assert!(reads(&t("count(health)"), "health", "tags"));
        assert!(reads(&t("sum(arr * forecast.score / 100)"), "forecast", "score"));
    }
}
