//! One version of the rules replayed on the stored snapshots, as the figures read it: the
//! same questions as the store answers, from results computed again.

use std::collections::HashMap;

use chrono::NaiveDate;

use super::history::Stored;

/// One side's results, as if its rules had run on each stored day.
#[derive(Default)]
pub struct Replayed {
    /// (run, account) -> rule set -> results.
    pub results: HashMap<(i64, String), HashMap<String, Stored>>,
    /// (run, account) -> the tags and ids of every rule that fired.
    pub codes: HashMap<(i64, String), Vec<String>>,
    /// (run, account) -> the escalations whose `when` held.
    pub flagged: HashMap<(i64, String), Vec<String>>,
    pub runs: Vec<(i64, NaiveDate)>,
    /// Runs whose snapshot was gone.
    pub missing: Vec<i64>,
}

impl Replayed {
    pub fn results(&self, pairs: &[(i64, &str)]) -> HashMap<(i64, String, String), Stored> {
        let mut out = HashMap::new();
        for (run, account) in pairs {
            for (set, s) in self.results.get(&(*run, account.to_string())).into_iter().flatten() {
                out.insert((*run, account.to_string(), set.clone()), s.clone());
            }
        }
        out
    }

    pub fn fired_between(
        &self,
        windows: &[(usize, &str, NaiveDate, NaiveDate)],
    ) -> HashMap<usize, HashMap<String, NaiveDate>> {
        let mut out: HashMap<usize, HashMap<String, NaiveDate>> = HashMap::new();
        for (idx, account, since, until) in windows {
            for (run, day) in self.runs.iter().filter(|(_, d)| d >= since && d < until) {
                for code in self.codes.get(&(*run, account.to_string())).into_iter().flatten() {
                    let first = out.entry(*idx).or_default().entry(code.clone()).or_insert(*day);
                    *first = (*first).min(*day);
                }
            }
        }
        out
    }

    pub fn flagged(&self, pairs: &[(i64, &str)]) -> HashMap<String, Vec<(i64, String)>> {
        let mut out: HashMap<String, Vec<(i64, String)>> = HashMap::new();
        for (run, account) in pairs {
            for output in self.flagged.get(&(*run, account.to_string())).into_iter().flatten() {
                out.entry(output.clone()).or_default().push((*run, account.to_string()));
            }
        }
        out
    }
}
