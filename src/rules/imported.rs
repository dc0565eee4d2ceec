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
    #[error(
        "the engine's results have more than one row for rule set `{set}` for {count} account(s), the first `{first}`"
    )]
    Duplicates { set: String, count: i64, first: String },
    #[error("reading the engine's results failed: {0}")]
    DuckDb(#[from] duckdb::Error),
}

const SEPARATOR: char = '\u{1f}';

/// The results of every set of `sets` from its table (`table_of` its name), for the `rows`
/// accounts of `kw_entity` whose key column is `key`. Each table is dropped once read, so
/// the warehouse lets go of the results as they come into keepwell.
pub fn read(
    conn: &Connection,
    table_of: &dyn Fn(&str) -> String,
    key: &str,
    rows: usize,
    sets: &[RuleSet],
    as_of: NaiveDate,
) -> Result<Vec<SetOutcomes>, ImportError> {
    let days: Vec<String> = {
        let all: Vec<String> = sets.iter().map(|s| format!("SELECT as_of FROM {}", table_of(&s.name))).collect();
        let all =
            if all.is_empty() { "SELECT NULL::DATE AS as_of WHERE false".to_string() } else { all.join(" UNION ALL ") };
        let mut stmt = conn.prepare(&format!("SELECT DISTINCT CAST(as_of AS VARCHAR) FROM ({all}) ORDER BY 1"))?;
        stmt.query_map([], |r| r.get::<_, Option<String>>(0))?
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .map(|d| d.unwrap_or_else(|| "no day".into()))
            .collect()
    };
    if days.iter().any(|d| *d != as_of.to_string()) {
        return Err(ImportError::OtherDay { found: days.join(", "), as_of });
    }
    let key = crate::warehouse::ident(key);
    let mut out = Vec::with_capacity(sets.len());
    for set in sets {
        let table = table_of(&set.name);
        let duplicates: (i64, Option<String>) = conn.query_row(
            &format!(
                "SELECT count(*), min(account) FROM (SELECT CAST(account AS VARCHAR) AS account FROM {table} \
                 GROUP BY 1 HAVING count(*) > 1)"
            ),
            [],
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
        // In no order (sorting 1M rows of text held more than the rows): each row goes to
        // its account's place, the entity's row number.
        let sql = format!(
            "SELECT e.rowid, r.account IS NOT NULL, CAST(r.score AS DOUBLE), CAST(r.grade AS VARCHAR), {}, {}, {} \
             FROM kw_entity e LEFT JOIN {table} r \
             ON CAST(r.account AS VARCHAR) = CAST(e.{key} AS VARCHAR)",
            list("fired"),
            list("tags"),
            list("reasons")
        );
        let grades = set.grade_names();
        let mut outcomes: Vec<Option<Outcome>> = vec![None; rows];
        let mut stmt = conn.prepare(&sql)?;
        let mut found = stmt.query([])?;
        while let Some(r) = found.next()? {
            let split = |s: Option<String>| -> Vec<String> {
                s.filter(|s| !s.is_empty()).map(|s| s.split(SEPARATOR).map(String::from).collect()).unwrap_or_default()
            };
            let row: i64 = r.get(0)?;
            let (present, score, grade): (bool, Option<f64>, Option<String>) = (r.get(1)?, r.get(2)?, r.get(3)?);
            let (fired, tags, reasons) = (split(r.get(4)?), split(r.get(5)?), split(r.get(6)?));
            if let Some(slot) = usize::try_from(row).ok().and_then(|i| outcomes.get_mut(i)) {
                *slot = Some(outcome(present, score, grade, fired, tags, reasons, &grades, &set.name));
            }
        }
        let outcomes: Vec<Outcome> = outcomes
            .into_iter()
            .map(|o| o.unwrap_or_else(|| outcome(false, None, None, vec![], vec![], vec![], &grades, &set.name)))
            .collect();
        drop(found);
        drop(stmt);
        out.push(SetOutcomes::from_outcomes(&outcomes));
        conn.execute_batch(&format!("DROP TABLE {table}; CHECKPOINT kw_warehouse"))?;
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
