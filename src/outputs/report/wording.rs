//! The report in the team's own words: the currency amounts are written in, what the amount
//! is called (ARR, MRR, revenue) and each section's title.

use minijinja::{Value, context};

use crate::config::diagnostic::Code;
use crate::config::diagnostic::{Diagnostic, Diagnostics, SourceFile};
use crate::config::job::raw::RawReport;
use crate::config::yaml;

#[derive(Debug, Clone)]
pub struct Wording {
    /// What amounts start with: `$`, `€`, `CHF`.
    pub currency: String,
    /// What the amount is called: `ARR`, `MRR`, `revenue`.
    pub amount: String,
    pub titles: Titles,
}

impl Default for Wording {
    fn default() -> Self {
        Wording { currency: "$".into(), amount: "ARR".into(), titles: Titles::default() }
    }
}

/// Section titles; `{amount}`, `{grade}`, `{rule_set}` and `{quarter}` are filled in.
#[derive(Debug, Clone)]
pub struct Titles {
    pub metrics: String,
    pub movements: String,
    pub new_red: String,
    pub recoveries: String,
    pub stage_changes: String,
    pub newly_expected_churn: String,
    pub top: String,
    pub renewals: String,
    pub forecast: String,
    pub grades: String,
    pub escalations: String,
}

impl Default for Titles {
    fn default() -> Self {
        Titles {
            metrics: "Metrics".into(),
            movements: "Since the previous run".into(),
            new_red: "New {grade}".into(),
            recoveries: "Recoveries".into(),
            stage_changes: "{Rule_set} changes".into(),
            newly_expected_churn: "Newly expected churn".into(),
            top: "Top accounts at risk".into(),
            renewals: "Renewals in {quarter} by risk".into(),
            forecast: "Retained {amount} forecast".into(),
            grades: "Grades by rule set".into(),
            escalations: "Escalations sent".into(),
        }
    }
}

impl Wording {
    /// The titles for templates, with the amount's name filled in.
    pub fn titles_context(&self) -> Value {
        let t = &self.titles;
        let fill = |s: &str| s.replace("{amount}", &self.amount);
        context! {
            metrics => fill(&t.metrics), movements => fill(&t.movements), top => fill(&t.top),
            renewals => fill(&t.renewals), forecast => fill(&t.forecast), grades => fill(&t.grades),
            escalations => fill(&t.escalations),
        }
    }

    /// A title with its placeholders filled.
    pub fn fill(&self, title: &str, grade: &str, rule_set: &str) -> String {
        title
            .replace("{amount}", &self.amount)
            .replace("{grade}", grade)
            .replace("{rule_set}", rule_set)
            .replace("{Rule_set}", &super::capitalize(rule_set))
    }
}

/// The settings as written, checked.
pub(super) fn compile(file: &SourceFile, raw: &RawReport, diags: &mut Diagnostics) -> Option<Wording> {
    let mut wording = Wording::default();
    if let Some(c) = &raw.currency {
        let text = c.value.trim();
        if text.is_empty() || text.chars().count() > 8 || text.chars().any(|ch| ch.is_ascii_digit() || ch.is_control())
        {
            diags.push(
                Diagnostic::error(
                    Code::UnknownValue,
                    yaml::span_of(file, c, c.value.len().max(1)),
                    format!("`{}` is not a currency", c.value),
                )
                .with_hint("write an ISO code (`USD`, `EUR`, `GBP`) or the symbol to put before amounts (`€`)"),
            );
            return None;
        }
        wording.currency = symbol(text).to_string();
    }
    if let Some(a) = raw.amount.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
        wording.amount = a.to_string();
    }
    if let Some(t) = &raw.titles {
        let mine = &mut wording.titles;
        let set = |slot: &mut String, v: &Option<String>| {
            if let Some(v) = v.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
                *slot = v.to_string();
            }
        };
        set(&mut mine.metrics, &t.metrics);
        set(&mut mine.movements, &t.movements);
        set(&mut mine.new_red, &t.new_red);
        set(&mut mine.recoveries, &t.recoveries);
        set(&mut mine.stage_changes, &t.stage_changes);
        set(&mut mine.newly_expected_churn, &t.newly_expected_churn);
        set(&mut mine.top, &t.top);
        set(&mut mine.renewals, &t.renewals);
        set(&mut mine.forecast, &t.forecast);
        set(&mut mine.grades, &t.grades);
        set(&mut mine.escalations, &t.escalations);
    }
    Some(wording)
}

/// The symbol of a common ISO currency code; anything else is written as given.
fn symbol(code: &str) -> &str {
    match code.to_ascii_uppercase().as_str() {
        "USD" => "$",
        "EUR" => "€",
        "GBP" => "£",
        "JPY" | "CNY" => "¥",
        "INR" => "₹",
        "KRW" => "₩",
        "BRL" => "R$",
        "AUD" => "A$",
        "CAD" => "C$",
        "NZD" => "NZ$",
        "ILS" => "₪",
        _ => code,
    }
}

#[cfg(test)]
mod tests {
    use super::symbol;

    #[test]
    fn codes_become_symbols_and_others_stay() {
        assert_eq!(symbol("EUR"), "€");
        assert_eq!(symbol("gbp"), "£");
        assert_eq!(symbol("CHF"), "CHF");
        assert_eq!(symbol("€"), "€");
    }
}
