//! The scoring's quality over time: each run with a calibration output keeps its validation
//! figures, a row per rule set (`grade` NULL: the set as a whole, with its AUC and top-decile
//! lift) and per grade (its churn rate and 95% interval).

use chrono::NaiveDate;
use duckdb::params;

use super::{Store, StoreError};

/// One row of the `calibration` table.
#[derive(Debug, Clone, Default)]
pub struct CalibrationRow {
    pub rule_set: String,
    /// `None` for the rule set as a whole.
    pub grade: Option<String>,
    pub accounts: u64,
    pub churned: u64,
    pub rate: Option<f64>,
    pub low: Option<f64>,
    pub high: Option<f64>,
    pub auc: Option<f64>,
    pub top_decile_lift: Option<f64>,
}

impl Store {
    /// Keeps a run's calibration figures (a run recorded again replaces its rows).
    pub fn record_calibration(
        &self,
        run_id: i64,
        job: &str,
        as_of: NaiveDate,
        horizon_days: u32,
        rows: &[CalibrationRow],
    ) -> Result<(), StoreError> {
        self.conn.execute("DELETE FROM calibration WHERE run_id = ?", params![run_id])?;
        let mut appender = self.conn.appender("calibration")?;
        for r in rows {
            appender.append_row(params![
                run_id,
                job,
                as_of,
                horizon_days,
                r.rule_set,
                r.grade,
                r.accounts,
                r.churned,
                r.rate,
                r.low,
                r.high,
                r.auc,
                r.top_decile_lift,
            ])?;
        }
        appender.flush()?;
        Ok(())
    }
}
