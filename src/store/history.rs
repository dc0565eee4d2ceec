//! Earlier runs read back: the last published outcomes (for `prev`, movements and
//! `grade_since`), a grade's ARR over time, and one account's stored result.

use chrono::NaiveDate;
use duckdb::arrow::array::{Array, AsArray, Date32Array};
use duckdb::arrow::datatypes::{DataType, Date32Type, Float64Type};
use duckdb::params;

use super::{Store, StoreError};
use crate::rules::previous::{PrevOutcome, Previous};

/// A score and grade as a run stored them.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StoredOutcome {
    pub score: Option<f64>,
    pub grade: Option<String>,
}

impl Store {
    /// The latest published results of `job` for a day before `as_of`, with the scores of
    /// the last few published runs for trends.
    ///
    /// The latest run's rows are read first, then each earlier run's, oldest first, adding
    /// its scores to the accounts already there: grouping the runs' rows in DuckDB (9M
    /// groups at 1M accounts, each with its ordered scores) ran out of the store's memory,
    /// and each run's rows are contiguous in the store, so each is a short scan.
    ///
    /// Without `trends` only the latest run is read and `scores` are left empty: only rule
    /// sets that read `prev` use them (none of the shipped playbook's), and at 1M accounts
    /// they took about 1 GB and a second for each earlier run.
    pub fn previous(&self, job: &str, as_of: NaiveDate, trends: bool) -> Result<Previous, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT run_id, as_of FROM runs WHERE job = ? AND published AND as_of < ? \
             ORDER BY as_of DESC, run_id DESC LIMIT ?",
        )?;
        let recent: Vec<(i64, NaiveDate)> = stmt
            .query_map(params![job, as_of, HISTORY_RUNS], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let Some((&(latest, latest_as_of), mut earlier)) = recent.split_first() else {
            return Ok(Previous::default());
        };
        let mut previous = Previous::new(latest_as_of);
        if !trends {
            earlier = &[];
        }
        let date = |a: &Date32Array, i: usize| a.is_valid(i).then(|| a.value_as_date(i)).flatten();
        let mut stmt = self
            .conn
            .prepare("SELECT rule_set, account_id, score, grade, grade_since FROM outcomes WHERE run_id = ?")?;
        for run in std::iter::once(latest).chain(earlier.iter().rev().map(|&(run, _)| run)) {
            let started = std::time::Instant::now();
            let mut failed = None;
            // The rows of a set come in the order of the first set's, so the account after
            // the last one found is tried before a lookup.
            let (mut set, mut position) = (String::new(), 0);
            crate::warehouse::for_each_batch(&mut stmt, params![run], |batch| {
                let cast = |i: usize, to: &DataType| duckdb::arrow::compute::cast(batch.column(i), to);
                let columns = (|| -> Result<_, StoreError> {
                    Ok((
                        cast(0, &DataType::Utf8)?,
                        cast(1, &DataType::Utf8)?,
                        cast(2, &DataType::Float64)?,
                        cast(3, &DataType::Utf8)?,
                        cast(4, &DataType::Date32)?,
                    ))
                })();
                let (sets, accounts, scores, grades, since) = match columns {
                    Ok(c) => c,
                    Err(e) => {
                        failed.get_or_insert(e);
                        return;
                    }
                };
                let (sets, accounts, grades) =
                    (sets.as_string::<i32>(), accounts.as_string::<i32>(), grades.as_string::<i32>());
                let since = since.as_primitive::<Date32Type>();
                let scores = scores.as_primitive::<Float64Type>();
                for i in 0..batch.num_rows() {
                    if sets.value(i) != set {
                        set.clear();
                        set.push_str(sets.value(i));
                        position = 0;
                    }
                    let score = scores.is_valid(i).then(|| scores.value(i));
                    let Some(slot) = previous.slot(accounts.value(i), position, run == latest) else { continue };
                    position = slot + 1;
                    if run == latest {
                        let outcome = PrevOutcome {
                            as_of: latest_as_of,
                            score,
                            grade: grades.is_valid(i).then(|| grades.value(i)),
                            grade_since: date(since, i),
                            scores: &[],
                        };
                        previous.put(&set, slot, &outcome);
                    } else {
                        previous.push_score(&set, slot, score);
                    }
                }
            })?;
            if let Some(e) = failed {
                return Err(e);
            }
            tracing::debug!(run, seconds = started.elapsed().as_secs_f64(), "An earlier run's results read.");
        }
        // The latest score comes last.
        if trends {
            previous.push_own_scores();
        }
        self.release_cache();
        Ok(previous)
    }

    /// The ARR of the accounts with `grade` in `rule_set` on each of the last `limit` days
    /// `job` published before `as_of` (the day's latest run), oldest first.
    pub fn grade_arr_history(
        &self,
        job: &str,
        rule_set: &str,
        grade: &str,
        as_of: NaiveDate,
        limit: usize,
    ) -> Result<Vec<(NaiveDate, f64)>, StoreError> {
        let mut stmt = self.conn.prepare(
            "WITH days AS (SELECT as_of, max(run_id) AS run_id FROM runs WHERE job = ? AND published AND as_of < ? \
                           GROUP BY as_of ORDER BY as_of DESC LIMIT ?) \
             SELECT d.as_of, coalesce(sum(a.arr), 0)::DOUBLE FROM days d \
             LEFT JOIN outcomes o ON o.run_id = d.run_id AND o.rule_set = ? AND o.grade = ? \
             LEFT JOIN accounts a ON a.run_id = o.run_id AND a.account_id = o.account_id \
             GROUP BY d.as_of ORDER BY d.as_of",
        )?;
        let rows =
            stmt.query_map(params![job, as_of, limit as i64, rule_set, grade], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let rows = rows.collect::<Result<_, _>>()?;
        self.release_cache();
        Ok(rows)
    }

    /// The stored outcome of one account for one rule set in one run.
    pub fn outcome(&self, run_id: i64, account: &str, rule_set: &str) -> Result<Option<StoredOutcome>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT score, grade FROM outcomes WHERE run_id = ? AND account_id = ? AND rule_set = ?")?;
        let mut rows = stmt.query_map(params![run_id, account, rule_set], |r| {
            Ok(StoredOutcome { score: r.get(0)?, grade: r.get(1)? })
        })?;
        Ok(rows.next().transpose()?)
    }
}

/// Rows in a DuckDB row group.
/// How many published runs `previous` reads scores from for trends, the latest included.
const HISTORY_RUNS: i64 = 6;

#[cfg(test)]
mod tests {
    use super::*;

    /// The query `previous` replaced (it grouped in DuckDB and ran out of memory at 100k
    /// accounts with a few days of history), kept as the reference for what it returns.
    const REFERENCE: &str = "WITH recent AS (SELECT run_id, as_of FROM runs WHERE job = ? AND published AND as_of < ? \
            ORDER BY as_of DESC, run_id DESC LIMIT 6), \
         latest AS (SELECT run_id FROM recent ORDER BY as_of DESC, run_id DESC LIMIT 1), \
         history AS (SELECT o.rule_set, o.account_id, \
                            string_agg(coalesce(CAST(o.score AS VARCHAR), ''), ',' ORDER BY r.as_of, r.run_id) AS scores \
                     FROM outcomes o JOIN recent r USING (run_id) GROUP BY ALL) \
         SELECT o.rule_set, o.account_id, o.as_of, o.score, o.grade, o.grade_since, h.scores \
         FROM outcomes o JOIN latest USING (run_id) LEFT JOIN history h USING (rule_set, account_id)";

    fn reference(store: &Store, job: &str, as_of: NaiveDate) -> Vec<String> {
        let mut stmt = store.conn.prepare(REFERENCE).unwrap();
        let rows = stmt.query_map(params![job, as_of], |r| {
            let scores: Option<String> = r.get(6)?;
            let scores: Vec<Option<f64>> =
                scores.unwrap_or_default().split(',').map(|s| s.parse::<f64>().ok()).collect();
            Ok(format!(
                "{} {} {} {:?} {:?} {:?} {:?}",
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, NaiveDate>(2)?,
                r.get::<_, Option<f64>>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, Option<NaiveDate>>(5)?,
                scores
            ))
        });
        let mut rows: Vec<String> = rows.unwrap().map(Result::unwrap).collect();
        rows.sort();
        rows
    }

    fn streamed(store: &Store, job: &str, as_of: NaiveDate, trends: bool) -> Vec<String> {
        let previous = store.previous(job, as_of, trends).unwrap();
        let mut rows: Vec<String> = previous
            .iter()
            .map(|(set, account, p)| {
                format!("{set} {account} {} {:?} {:?} {:?} {:?}", p.as_of, p.score, p.grade, p.grade_since, p.scores)
            })
            .collect();
        rows.sort();
        rows
    }

    /// Over nine runs (two on one day, one unpublished, one of another job), accounts that
    /// come and go, missing scores and grades: the streamed history is the reference's, on
    /// every day, including days with no history at all.
    #[test]
    fn previous_results_match_the_grouping_query() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store.duckdb")).unwrap();
        let day = |d: u32| NaiveDate::from_ymd_opt(2026, 11, d).unwrap();
        let runs = [(1, "nightly", 2, true), (2, "nightly", 3, true), (3, "nightly", 4, false), (4, "weekly", 4, true)]
            .into_iter()
            .chain([(5, "nightly", 5, true), (6, "nightly", 5, true), (7, "nightly", 6, true)])
            .chain([(8, "nightly", 9, true), (9, "nightly", 10, true), (10, "nightly", 11, true)]);
        for (run, job, d, published) in runs {
            store
                .conn
                .execute(
                    "INSERT INTO runs (run_id, job, as_of, started_at, status, published) VALUES (?, ?, ?, now(), 'succeeded', ?)",
                    params![run, job, day(d), published],
                )
                .unwrap();
            for account in 0..12i64 {
                // Accounts come and go: account `a` is missing from runs where `run % (a + 2) == 0`.
                if run % (account + 2) == 0 {
                    continue;
                }
                for set in ["risk", "health"] {
                    let score = (account + run) % 5 != 0;
                    let grade = (account * run) % 7 != 3;
                    store
                        .conn
                        .execute(
                            "INSERT INTO outcomes (run_id, job, as_of, account_id, rule_set, score, grade, grade_since) \
                             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            params![
                                run,
                                job,
                                day(d),
                                format!("A{account}"),
                                set,
                                score.then_some((account * 10 + run) as f64 / 4.0),
                                grade.then(|| format!("g{}", (account + run) % 3)),
                                day(1 + (account as u32 % 3)),
                            ],
                        )
                        .unwrap();
                }
            }
        }
        for d in 1..=12 {
            for job in ["nightly", "weekly"] {
                let want = reference(&store, job, day(d));
                assert_eq!(streamed(&store, job, day(d), true), want, "{job} on day {d}");
                // Without trends: the same outcomes, with no scores.
                let without: Vec<String> =
                    want.iter().map(|row| format!("{} []", &row[..row.rfind(" [").unwrap()])).collect();
                assert_eq!(streamed(&store, job, day(d), false), without, "{job} on day {d}, no trends");
            }
        }
        // Run 10 lacks A0, A3 and A8: nine accounts in two sets.
        assert_eq!(streamed(&store, "nightly", day(12), true).len(), 2 * 9);
    }
}
