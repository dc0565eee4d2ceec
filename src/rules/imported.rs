//! Rule-set results another engine computed (`engine_results:` in a job), read in place of
//! evaluating: one outcome per account and rule set, in the entity's row order. An account
//! the engine gave no row, or a grade its rule set does not give (results of other rules),
//! is an error for that account alone, as a rule that fails would be; results for another
//! day than the run's stop the run.

use std::sync::Arc;

use chrono::NaiveDate;
use duckdb::Connection;

use super::RuleSet;
use super::outcomes::{Outcome, RuleError, SetOutcomes};

/// Why the engine's results cannot stand for this run.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the engine's results are for {found}, the run is for {as_of}: run the compiled script for {as_of}")]
    OtherDay { found: String, as_of: NaiveDate },
    #[error("the engine's results have {count} accounts with more than one row for rule set `{set}` (first: {first})")]
    Duplicates { set: String, count: i64, first: String },
    #[error("reading the engine's results failed: {0}")]
    DuckDb(#[from] duckdb::Error),
}

const SEPARATOR: char = '\u{1f}';

/// The results of every set of `sets` from `table`, for the accounts of `kw_entity` whose
/// key column is `key`.
pub fn read(
    conn: &Connection,
    table: &str,
    key: &str,
    sets: &[RuleSet],
    as_of: NaiveDate,
) -> Result<Vec<SetOutcomes>, ImportError> {
    let days: Vec<String> = {
        let mut stmt = conn.prepare(&format!("SELECT DISTINCT CAST(as_of AS VARCHAR) FROM {table} ORDER BY 1"))?;
        stmt.query_map([], |r| r.get::<_, Option<String>>(0))?
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .map(|d| d.unwrap_or_else(|| "no day".into()))
            .collect()
    };
    if days.iter().any(|d| *d != as_of.to_string()) {
        return Err(ImportError::OtherDay { found: days.join(", "), as_of });
    }
    let key = format!("\"{}\"", key.replace('"', "\"\""));
    let mut out = Vec::with_capacity(sets.len());
    for set in sets {
        let duplicates: (i64, Option<String>) = conn.query_row(
            &format!(
                "SELECT count(*), min(account) FROM (SELECT CAST(account AS VARCHAR) AS account FROM {table} \
                 WHERE rule_set = ? GROUP BY 1 HAVING count(*) > 1)"
            ),
            [&set.name],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if duplicates.0 > 0 {
            return Err(ImportError::Duplicates {
                set: set.name.clone(),
                count: duplicates.0,
                first: duplicates.1.unwrap_or_default(),
            });
        }
        let list = |c: &str| format!("array_to_string(r.{c}, chr(31))");
        let sql = format!(
            "SELECT r.account IS NOT NULL, CAST(r.score AS DOUBLE), CAST(r.grade AS VARCHAR), {}, {}, {} \
             FROM kw_entity e LEFT JOIN (SELECT * FROM {table} WHERE rule_set = ?) r \
             ON CAST(r.account AS VARCHAR) = CAST(e.{key} AS VARCHAR) ORDER BY e.rowid",
            list("fired"),
            list("tags"),
            list("reasons")
        );
        let grades = set.grade_names();
        let mut stmt = conn.prepare(&sql)?;
        let outcomes = stmt
            .query_map([&set.name], |r| {
                let split = |s: Option<String>| -> Vec<String> {
                    s.filter(|s| !s.is_empty())
                        .map(|s| s.split(SEPARATOR).map(String::from).collect())
                        .unwrap_or_default()
                };
                let (found, score, grade): (bool, Option<f64>, Option<String>) = (r.get(0)?, r.get(1)?, r.get(2)?);
                let (fired, tags, reasons) = (split(r.get(3)?), split(r.get(4)?), split(r.get(5)?));
                Ok(outcome(found, score, grade, fired, tags, reasons, &grades, &set.name))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        out.push(SetOutcomes::from_outcomes(&outcomes));
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn outcome(
    found: bool,
    score: Option<f64>,
    grade: Option<String>,
    fired: Vec<String>,
    tags: Vec<String>,
    reasons: Vec<String>,
    grades: &[Arc<str>],
    set: &str,
) -> Outcome {
    let wrong = |message: String| Outcome {
        errors: vec![RuleError { rule: Arc::from("engine"), message }].into(),
        ..Outcome::default()
    };
    if !found {
        return wrong("the engine's results have no row for this account".into());
    }
    let grade = match grade {
        Some(g) => match grades.iter().find(|known| ***known == *g) {
            Some(known) => Some(known.clone()),
            None => {
                return wrong(format!("grade `{g}` is not one rule set `{set}` gives: the results are of other rules"));
            }
        },
        None => None,
    };
    Outcome {
        score,
        grade,
        fired: fired.iter().map(|f| Arc::from(f.as_str())).collect(),
        reasons: reasons.into(),
        tags: tags.iter().map(|t| Arc::from(t.as_str())).collect(),
        errors: Default::default(),
    }
}
