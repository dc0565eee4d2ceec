//! The outcomes file read into events: one per renewal or churn, every bad cell a located
//! error, all of them reported together.

use std::collections::HashMap;

use chrono::NaiveDate;
use serde::Serialize;

use crate::config::diagnostic::{Code, Diagnostic, Diagnostics, SourceFile, Span, did_you_mean};
use crate::config::job::{Format, OUTCOME_FIELDS, OutcomesSpec};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Renewed,
    Churned,
    Downsold,
    Expanded,
}

impl Kind {
    pub const ALL: [(&'static str, Kind); 4] = [
        ("renewed", Kind::Renewed),
        ("churned", Kind::Churned),
        ("downsold", Kind::Downsold),
        ("expanded", Kind::Expanded),
    ];

    /// Churned or downsold: ARR was lost, so its reasons are reviewed.
    pub fn lost(self) -> bool {
        matches!(self, Kind::Churned | Kind::Downsold)
    }
}

#[derive(Debug, Clone)]
pub struct Event {
    pub account: String,
    pub date: NaiveDate,
    pub kind: Kind,
    pub arr_before: Option<f64>,
    pub arr_after: Option<f64>,
    pub reasons: Vec<String>,
    pub note: String,
}

impl Event {
    pub fn churned(&self) -> bool {
        self.kind == Kind::Churned
    }

    /// ARR kept after the outcome: what the file says, else nothing for a churn and
    /// everything for a renewal.
    pub fn retained(&self) -> Option<f64> {
        match (self.arr_after, self.kind) {
            (Some(a), _) => Some(a),
            (None, Kind::Churned) => Some(0.0),
            (None, _) => self.arr_before,
        }
    }

    /// ARR lost: before less after (never below nothing).
    pub fn lost_arr(&self) -> f64 {
        match (self.arr_before, self.retained()) {
            (Some(b), Some(a)) => (b - a).max(0.0),
            _ => 0.0,
        }
    }
}

/// A row's cells by field (in [`OUTCOME_FIELDS`] order), with where each cell is.
struct Row {
    cells: [Option<String>; 7],
    spans: [Span; 7],
}

pub fn read(spec: &OutcomesSpec) -> Result<Vec<Event>, Diagnostics> {
    let rows = match spec.format {
        Format::Csv => read_csv(spec)?,
        Format::Parquet | Format::Json => read_duckdb(spec)?,
    };
    let mut diags = Diagnostics::default();
    let mut events = Vec::with_capacity(rows.len());
    let mut seen: HashMap<(String, NaiveDate), Span> = HashMap::new();
    for row in rows {
        if let Some(event) = event(spec, &row, &mut diags) {
            let key = (event.account.clone(), event.date);
            if seen.contains_key(&key) {
                diags.push(
                    Diagnostic::error(
                        Code::Outcomes,
                        row.spans[0].clone(),
                        format!("account `{}` has two outcomes on {}", event.account, event.date),
                    )
                    .with_hint("keep one row per account and day: the renewal's outcome"),
                );
                continue;
            }
            seen.insert(key, row.spans[0].clone());
            events.push(event);
        }
    }
    if diags.has_errors() { Err(diags) } else { Ok(events) }
}

fn event(spec: &OutcomesSpec, row: &Row, diags: &mut Diagnostics) -> Option<Event> {
    let cell = |i: usize| row.cells[i].as_deref().map(str::trim).filter(|c| !c.is_empty());
    let error = |i: usize, message: String, hint: Option<String>| {
        Diagnostic::error(Code::Outcomes, row.spans[i].clone(), message).with_hint_opt(hint)
    };
    let before = diags.errors();
    let account = match cell(0) {
        Some(a) => a.to_string(),
        None => {
            diags.push(error(0, format!("the `{}` column is empty", spec.columns[0]), None));
            String::new()
        }
    };
    let date = match cell(1).map(|d| (d, NaiveDate::parse_from_str(d, "%Y-%m-%d"))) {
        Some((_, Ok(d))) => Some(d),
        Some((d, Err(_))) => {
            diags.push(error(1, format!("`{d}` is not a date"), Some("write it as `YYYY-MM-DD`: `2026-09-30`".into())));
            None
        }
        None => {
            diags.push(error(1, format!("the `{}` column is empty", spec.columns[1]), None));
            None
        }
    };
    let kind = match cell(2) {
        Some(k) => match Kind::ALL.iter().find(|(name, _)| name.eq_ignore_ascii_case(k)) {
            Some((_, kind)) => Some(*kind),
            None => {
                let names = Kind::ALL.map(|(n, _)| n);
                let hint = did_you_mean(&k.to_ascii_lowercase(), names)
                    .unwrap_or_else(|| format!("use one of: {}", names.join(", ")));
                diags.push(error(2, format!("`{k}` is not an outcome"), Some(hint)));
                None
            }
        },
        None => {
            diags.push(error(2, format!("the `{}` column is empty", spec.columns[2]), None));
            None
        }
    };
    let money = |i: usize, diags: &mut Diagnostics| match cell(i) {
        None => None,
        Some(v) => match v.replace([',', '_'], "").parse::<f64>() {
            Ok(n) if n.is_finite() && n >= 0.0 => Some(n),
            _ => {
                diags.push(error(
                    i,
                    format!("`{v}` in `{}` is not an amount", spec.columns[i]),
                    Some("write a number without currency: `48000` or `48000.50`".into()),
                ));
                None
            }
        },
    };
    let arr_before = money(3, diags);
    let arr_after = money(4, diags);
    // An amount that is there but unreadable has its own error already.
    if let Some(k @ (Kind::Downsold | Kind::Expanded)) = kind
        && (cell(3).is_none() || cell(4).is_none())
    {
        let name = Kind::ALL.iter().find(|(_, x)| *x == k).map_or("", |(n, _)| n);
        diags.push(error(
            2,
            format!("a `{name}` outcome needs the ARR before and after"),
            Some(format!("fill `{}` and `{}`", spec.columns[3], spec.columns[4])),
        ));
    }
    let mut reasons: Vec<String> = Vec::new();
    for code in cell(5).unwrap_or_default().split(['|', ';', ',']).map(str::trim).filter(|c| !c.is_empty()) {
        let code = code.to_ascii_lowercase();
        if !spec.reasons.contains(&code) {
            let hint = did_you_mean(&code, spec.reasons.iter().map(String::as_str)).unwrap_or_else(|| {
                "add it to the job's `outcomes: reasons:` list, or use one of its codes".to_string()
            });
            diags.push(error(5, format!("`{code}` is not a reason code of this job"), Some(hint)));
        } else if !reasons.contains(&code) {
            reasons.push(code);
        }
    }
    if diags.errors() > before {
        return None;
    }
    Some(Event {
        account,
        date: date?,
        kind: kind?,
        arr_before,
        arr_after,
        reasons,
        note: cell(6).unwrap_or_default().to_string(),
    })
}

/// Which of the file's columns holds each field; a required field (or one the job maps)
/// missing from the header is an error at the job's `path:`.
fn positions(spec: &OutcomesSpec, header: &[String], diags: &mut Diagnostics) -> [Option<usize>; 7] {
    let mut at = [None; 7];
    for (i, column) in spec.columns.iter().enumerate() {
        at[i] = header.iter().position(|h| h.trim() == column);
        let default = column == default_column(i);
        if at[i].is_none() && (i < 3 || !default) {
            diags.push(
                Diagnostic::error(
                    Code::Outcomes,
                    spec.span.clone(),
                    format!(
                        "outcomes file `{}` has no column `{column}` (the `{}` field)",
                        spec.display, OUTCOME_FIELDS[i]
                    ),
                )
                .with_hint(
                    did_you_mean(column, header.iter().map(String::as_str))
                        .unwrap_or_else(|| format!("map it under `columns:`: `{}: your_column`", OUTCOME_FIELDS[i])),
                ),
            );
        }
    }
    at
}

fn default_column(i: usize) -> &'static str {
    ["account_id", "date", "outcome", "arr_before", "arr_after", "reasons", "note"][i]
}

fn read_csv(spec: &OutcomesSpec) -> Result<Vec<Row>, Diagnostics> {
    let unreadable = |e: String| {
        Diagnostics(vec![
            Diagnostic::error(
                Code::Unreadable,
                spec.span.clone(),
                format!("cannot read outcomes `{}`: {e}", spec.display),
            )
            .with_hint("the path is relative to the project folder"),
        ])
    };
    let text = std::fs::read_to_string(&spec.path).map_err(|e| unreadable(e.to_string()))?;
    let file = SourceFile::new(spec.display.clone(), &spec.path, text.clone());
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(text.as_bytes());
    let header: Vec<String> =
        reader.headers().map_err(|e| unreadable(e.to_string()))?.iter().map(String::from).collect();
    let mut diags = Diagnostics::default();
    let at = positions(spec, &header, &mut diags);
    if diags.has_errors() {
        return Err(diags);
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(1, |p| p.line() as usize);
                diags.push(Diagnostic::error(Code::Outcomes, file.span(line, 1, 0), format!("unreadable row: {e}")));
                continue;
            }
        };
        let line = record.position().map_or(1, |p| p.line() as usize);
        let line_text = file.line_text(line).unwrap_or_default();
        let cells = at.map(|i| i.and_then(|i| record.get(i)).map(String::from));
        let spans = std::array::from_fn(|f| {
            let (col, len) = at[f].map_or((1, 0), |i| field_position(line_text, i));
            file.span(line, col, len)
        });
        rows.push(Row { cells, spans });
    }
    if diags.has_errors() { Err(diags) } else { Ok(rows) }
}

/// The 1-based column and the width of field `index` of a CSV line (quotes respected).
fn field_position(line: &str, index: usize) -> (usize, usize) {
    let (mut field, mut quoted, mut start) = (0, false, 0);
    for (i, c) in line.chars().enumerate() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                if field == index {
                    return (start + 1, i - start);
                }
                field += 1;
                start = i + 1;
            }
            _ => {}
        }
    }
    if field == index { (start + 1, line.chars().count() - start) } else { (1, 0) }
}

fn read_duckdb(spec: &OutcomesSpec) -> Result<Vec<Row>, Diagnostics> {
    let fail = |e: String| {
        Diagnostics(vec![Diagnostic::error(
            Code::Unreadable,
            spec.span.clone(),
            format!("cannot read outcomes `{}`: {e}", spec.display),
        )])
    };
    let conn = duckdb::Connection::open_in_memory().map_err(|e| fail(e.to_string()))?;
    let path = crate::warehouse::sql_string(&spec.path.display().to_string());
    let from = match spec.format {
        Format::Parquet => format!("read_parquet({path})"),
        _ => format!("read_json_auto({path})"),
    };
    let mut stmt = conn.prepare(&format!("SELECT * FROM {from}")).map_err(|e| fail(e.to_string()))?;
    let batches: Vec<_> = stmt.query_arrow([]).map_err(|e| fail(e.to_string()))?.collect();
    let header: Vec<String> = stmt.column_names();
    let mut diags = Diagnostics::default();
    let at = positions(spec, &header, &mut diags);
    if diags.has_errors() {
        return Err(diags);
    }
    let mut rows = Vec::new();
    let mut number = 0usize;
    for batch in batches {
        let columns: Vec<Option<Vec<Option<String>>>> =
            at.iter().map(|i| i.map(|i| text_column(batch.column(i)))).collect();
        for r in 0..batch.num_rows() {
            number += 1;
            let cells = std::array::from_fn(|f| columns[f].as_ref().and_then(|c| c[r].clone()));
            let span = Span::file_only(&format!("{} (row {number})", spec.display), &spec.path);
            rows.push(Row { cells, spans: std::array::from_fn(|_| span.clone()) });
        }
    }
    Ok(rows)
}

/// A column's cells as text; a list of reasons joined with `|`.
fn text_column(array: &duckdb::arrow::array::ArrayRef) -> Vec<Option<String>> {
    use duckdb::arrow::array::Array;
    (0..array.len())
        .map(|row| {
            if array.is_null(row) {
                return None;
            }
            let v = crate::entity::cell(array, row);
            Some(match v.clone().into_array() {
                Ok(items) => items.iter().map(crate::entity::exact_value).collect::<Vec<_>>().join("|"),
                Err(_) => crate::entity::exact_value(&v),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::field_position;

    #[test]
    fn fields_are_found_where_they_are_written() {
        let line = r#"A1,2026-09-30,"churned, sadly",1200"#;
        assert_eq!(field_position(line, 0), (1, 2));
        assert_eq!(field_position(line, 1), (4, 10));
        assert_eq!(field_position(line, 2), (15, 16));
        assert_eq!(field_position(line, 3), (32, 4));
        assert_eq!(field_position(line, 9), (1, 0));
    }
}
