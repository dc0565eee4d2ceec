//! The metrics of every published run: a time series any DuckDB client can chart, written
//! with the run's outcomes and read back for changes and trends.

use chrono::NaiveDate;
use duckdb::params;

use super::{Store, StoreError};
use crate::metrics::{History, Measured, MetricValue};

impl Store {
    /// Writes a run's metric values (inside the publishing transaction).
    pub(super) fn write_metrics(
        &self,
        run_id: i64,
        job: &str,
        as_of: NaiveDate,
        metrics: &Measured,
    ) -> Result<(), StoreError> {
        let mut rows = self.conn.appender("metrics")?;
        for v in &metrics.values {
            rows.append_row(params![
                run_id,
                job,
                as_of,
                v.metric,
                v.segment_by,
                v.segment,
                v.value.filter(|x| x.is_finite()),
                v.numerator,
                v.denominator,
                metrics.previous_of(v),
                metrics.alerted(v),
            ])?;
        }
        rows.flush()?;
        Ok(())
    }

    /// Every metric value of `job`'s latest published run before `as_of`.
    pub fn previous_metrics(&self, job: &str, as_of: NaiveDate) -> Result<Vec<MetricValue>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT metric, segment_by, segment, value, numerator, denominator FROM metrics WHERE run_id = \
             (SELECT run_id FROM runs WHERE job = ? AND published AND as_of < ? ORDER BY as_of DESC, run_id DESC LIMIT 1)",
        )?;
        let rows = stmt.query_map(params![job, as_of], |r| {
            Ok(MetricValue {
                metric: r.get(0)?,
                segment_by: r.get(1)?,
                segment: r.get(2)?,
                value: r.get(3)?,
                numerator: r.get(4)?,
                denominator: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Each metric's total on the last `limit` days `job` published before `as_of` (the
    /// day's latest run), oldest first.
    pub fn metric_history(&self, job: &str, as_of: NaiveDate, limit: usize) -> Result<History, StoreError> {
        let mut stmt = self.conn.prepare(
            "WITH days AS (SELECT as_of, max(run_id) AS run_id FROM runs WHERE job = ? AND published AND as_of < ? \
                           GROUP BY as_of ORDER BY as_of DESC LIMIT ?) \
             SELECT m.metric, d.as_of, m.value FROM days d JOIN metrics m ON m.run_id = d.run_id \
             WHERE m.segment_by IS NULL ORDER BY d.as_of",
        )?;
        let rows = stmt.query_map(params![job, as_of, limit as i64], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, NaiveDate>(1)?, r.get::<_, Option<f64>>(2)?))
        })?;
        let mut history = History::new();
        for row in rows {
            let (metric, day, value) = row?;
            history.entry(metric).or_default().push((day, value));
        }
        Ok(history)
    }
}
