//! A job's `outcomes:` (what happened to each account) and `validation:` (how `keepwell
//! validate` judges the rule sets against it), checked as written. The rule set names it
//! holds are checked against the job's rule sets once they are compiled.

use std::path::PathBuf;

use serde_saphyr::Spanned;

use super::raw::{RawOutcomes, RawValidation};
use super::{Format, parse_duration};
use crate::config::diagnostic::{Code, Diagnostic, Diagnostics, SourceFile, Span, did_you_mean};
use crate::config::project::Project;
use crate::config::yaml;

/// DOMAIN.md §6's ten reasons customers churn, the codes the shipped signals tag.
pub const DEFAULT_REASONS: [&str; 10] = [
    "champion_change",
    "new_executive",
    "integration_gaps",
    "expectations",
    "scalability",
    "price_to_value",
    "service_quality",
    "failed_onboarding",
    "language",
    "change_management",
];

/// The fields an outcome row has, each read from the column of the same name unless
/// `columns:` maps it.
pub const FIELDS: [&str; 7] = ["account", "date", "outcome", "arr_before", "arr_after", "reasons", "note"];

const DEFAULT_COLUMNS: [&str; 7] = ["account_id", "date", "outcome", "arr_before", "arr_after", "reasons", "note"];

#[derive(Debug, Clone)]
pub struct OutcomesSpec {
    /// Absolute path of the file.
    pub path: PathBuf,
    /// The path as written.
    pub display: String,
    pub format: Format,
    /// The file's column for each of [`FIELDS`], in that order.
    pub columns: [String; 7],
    /// The reason codes rows may give.
    pub reasons: Vec<String>,
    /// The `path:` value.
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct ValidationSpec {
    /// Days between the grade read and the outcome.
    pub horizon_days: u32,
    pub min_count: u64,
    /// The rule sets judged (empty: all of the job's), with where each was named.
    pub rule_sets: Vec<(String, Span)>,
    pub higher_is_healthier: Vec<(String, Span)>,
    pub forecast: Option<(String, Span)>,
    pub category: Option<(String, Span)>,
    /// Entity columns, `set.grade` or `owner`, with where each was named.
    pub segments: Vec<(String, Span)>,
    pub systemic_count: u64,
    /// A fraction.
    pub systemic_share: f64,
}

impl Default for ValidationSpec {
    fn default() -> Self {
        ValidationSpec {
            horizon_days: 90,
            min_count: 10,
            rule_sets: Vec::new(),
            higher_is_healthier: Vec::new(),
            forecast: None,
            category: None,
            segments: Vec::new(),
            systemic_count: 3,
            systemic_share: 0.2,
        }
    }
}

pub(super) fn outcomes(
    project: &Project,
    file: &SourceFile,
    raw: &RawOutcomes,
    diags: &mut Diagnostics,
) -> OutcomesSpec {
    let span = yaml::span_of(file, &raw.path, raw.path.value.len());
    let lower = raw.path.value.to_ascii_lowercase();
    let format = if lower.ends_with(".parquet") {
        Format::Parquet
    } else if lower.ends_with(".json") || lower.ends_with(".ndjson") || lower.ends_with(".jsonl") {
        Format::Json
    } else {
        Format::Csv
    };
    let mut columns = DEFAULT_COLUMNS.map(String::from);
    for (field, column) in &raw.columns {
        match FIELDS.iter().position(|f| f == field) {
            Some(i) => columns[i] = column.value.clone(),
            None => diags.push(
                Diagnostic::error(
                    Code::Outcomes,
                    yaml::span_of(file, column, column.value.len()),
                    format!("`{field}` is not a field of an outcome"),
                )
                .with_hint(did_you_mean(field, FIELDS).unwrap_or_else(|| format!("map one of: {}", FIELDS.join(", ")))),
            ),
        }
    }
    let reasons = match &raw.reasons {
        None => DEFAULT_REASONS.map(String::from).to_vec(),
        Some(list) => {
            let mut reasons: Vec<String> = Vec::new();
            for r in list {
                let code = r.value.trim().to_ascii_lowercase();
                if code.is_empty() || code.contains(['|', ';', ',']) {
                    diags.push(
                        Diagnostic::error(
                            Code::Outcomes,
                            yaml::span_of(file, r, r.value.len()),
                            format!("reason code `{}` cannot be told apart in a row", r.value),
                        )
                        .with_hint("a reason code is one word without `|`, `;` or `,`: `price_to_value`"),
                    );
                } else if !reasons.contains(&code) {
                    reasons.push(code);
                }
            }
            reasons
        }
    };
    let path = PathBuf::from(&raw.path.value);
    let path = if path.is_absolute() { path } else { project.root.join(path) };
    OutcomesSpec { path, display: raw.path.value.clone(), format, columns, reasons, span }
}

pub(super) fn validation(file: &SourceFile, raw: &RawValidation, diags: &mut Diagnostics) -> ValidationSpec {
    let mut spec = ValidationSpec::default();
    let named = |v: &Spanned<String>| (v.value.clone(), yaml::span_of(file, v, v.value.len()));
    if let Some(h) = &raw.horizon {
        match horizon_days(&h.value) {
            Some(days) => spec.horizon_days = days,
            None => diags.push(
                Diagnostic::error(
                    Code::Outcomes,
                    yaml::span_of(file, h, h.value.len()),
                    format!("horizon `{}` is not a number of days", h.value),
                )
                .with_hint("write how long before its outcome an account's grade is read: `90d`, `12w`"),
            ),
        }
    }
    if let Some(n) = raw.min_count {
        spec.min_count = n.max(1);
    }
    spec.rule_sets = raw.rule_sets.iter().flatten().map(named).collect();
    spec.higher_is_healthier = raw.higher_is_healthier.iter().map(named).collect();
    spec.forecast = raw.forecast.as_ref().map(named);
    spec.category = raw.category.as_ref().map(named);
    spec.segments = raw.segments.iter().flatten().map(named).collect();
    if let Some(s) = &raw.systemic {
        if let Some(c) = s.count {
            spec.systemic_count = c.max(1);
        }
        if let Some(share) = &s.share {
            match parse_share(&share.value) {
                Some(f) => spec.systemic_share = f,
                None => diags.push(
                    Diagnostic::error(
                        Code::Outcomes,
                        yaml::span_of(file, share, share.value.len()),
                        format!("share `{}` is not a percentage from 0% to 100%", share.value),
                    )
                    .with_hint("write `20%` or `0.2`: the share of churned accounts or of lost ARR"),
                ),
            }
        }
    }
    spec
}

/// `90d`, `12w`, or a duration in whole days (`2160h`).
pub fn horizon_days(text: &str) -> Option<u32> {
    let text = text.trim();
    let days = match text.strip_suffix('w') {
        Some(weeks) => weeks.trim().parse::<u32>().ok()?.checked_mul(7)?,
        None => {
            let d = parse_duration(text)?;
            if d.as_secs() % 86_400 != 0 {
                return None;
            }
            u32::try_from(d.as_secs() / 86_400).ok()?
        }
    };
    (days > 0).then_some(days)
}

/// `20%` or `0.2`, as a fraction from 0 to 1.
fn parse_share(text: &str) -> Option<f64> {
    let text = text.trim();
    let value = match text.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().ok()? / 100.0,
        None => text.parse::<f64>().ok()?,
    };
    (0.0..=1.0).contains(&value).then_some(value)
}

impl ValidationSpec {
    /// Every rule set `validation:` names is one the job evaluates, and every segment is an
    /// entity column, `owner` or a rule set's `grade`.
    pub fn check_names(&self, rule_sets: &[&str], columns: &[&str], diags: &mut Diagnostics) {
        let sets = self
            .rule_sets
            .iter()
            .chain(&self.higher_is_healthier)
            .chain(self.forecast.iter())
            .chain(self.category.iter());
        for (name, span) in sets {
            if !rule_sets.contains(&name.as_str()) {
                diags.push(
                    Diagnostic::error(
                        Code::Outcomes,
                        span.clone(),
                        format!("`validation:` names rule set `{name}`, which this job does not run"),
                    )
                    .with_hint_opt(did_you_mean(name, rule_sets.iter().copied())),
                );
            }
        }
        for (segment, span) in &self.segments {
            let known = match segment.split_once('.') {
                Some((set, "grade")) => rule_sets.contains(&set),
                Some(_) => false,
                None => segment == "owner" || columns.contains(&segment.as_str()),
            };
            if !known {
                let candidates: Vec<String> = columns
                    .iter()
                    .map(|c| c.to_string())
                    .chain(rule_sets.iter().map(|s| format!("{s}.grade")))
                    .chain(["owner".to_string()])
                    .collect();
                diags.push(
                    Diagnostic::error(
                        Code::Outcomes,
                        span.clone(),
                        format!("segment `{segment}` is not an entity column, `owner` or a rule set's `grade`"),
                    )
                    .with_hint_opt(did_you_mean(segment, candidates.iter().map(String::as_str))),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{horizon_days, parse_share};

    #[test]
    fn horizons_and_shares_read_as_written() {
        assert_eq!(horizon_days("90d"), Some(90));
        assert_eq!(horizon_days("12w"), Some(84));
        assert_eq!(horizon_days("48h"), Some(2));
        assert_eq!(horizon_days("36h"), None);
        assert_eq!(horizon_days("0d"), None);
        assert_eq!(horizon_days("soon"), None);
        assert_eq!(parse_share("20%"), Some(0.2));
        assert_eq!(parse_share("0.35"), Some(0.35));
        assert_eq!(parse_share("120%"), None);
    }
}
