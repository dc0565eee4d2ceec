//! Dates and timestamps in SQL, meaning what [`crate::rules::time`] means in rhai: a date
//! beside a timestamp is its midnight, the run's moment is `as_of` at midnight, whole days
//! and months round down.

use crate::rules::time::{MICROS_PER_DAY, MICROS_PER_HOUR, midnight};

use super::semantics::*;
use super::translate::Translator;

impl Translator<'_> {
    /// A date or time helper over translated arguments; `None` when it is not one (or not
    /// over these types).
    pub(super) fn time_call(&mut self, name: &str, a: &[Sql]) -> Option<Sql> {
        let as_of = self.as_of_date().text;
        let now = match &self.as_of_sql {
            Some(_) => format!("CAST({as_of} AS TIMESTAMP)"),
            None => timestamp_literal(midnight(self.as_of)).text,
        };
        let int = |text: String| Some(Sql::new(text, Ty::Int, true));
        // Microseconds from `x` to `y`; DuckDB fails on an overflow, and the set runs in rhai.
        let micros = |x: &Sql, y: &Sql| Some(format!("(epoch_us({}) - epoch_us({}))", moment(y)?, moment(x)?));
        let hours = |us: String| {
            let per_hour = float_literal(MICROS_PER_HOUR as f64).text;
            Some(Sql::new(format!("(CAST({us} AS DOUBLE) / {per_hour})"), Ty::Float, true))
        };
        let now_sql = Sql::new(now.clone(), Ty::Timestamp, false);
        match (name, a) {
            ("days_since", [d]) if d.ty == Ty::Date => int(format!("CAST({as_of} - {} AS BIGINT)", d.text)),
            ("days_until", [d]) if d.ty == Ty::Date => int(format!("CAST({} - {as_of} AS BIGINT)", d.text)),
            ("days_between", [x, y]) if x.ty == Ty::Date && y.ty == Ty::Date => {
                int(format!("CAST({} - {} AS BIGINT)", y.text, x.text))
            }
            ("days_since", [t]) if t.ty == Ty::Timestamp => int(floor_div(&micros(t, &now_sql)?, MICROS_PER_DAY)),
            ("days_until", [t]) if t.ty == Ty::Timestamp => int(floor_div(&micros(&now_sql, t)?, MICROS_PER_DAY)),
            ("days_between", [x, y]) if is_moment(x.ty) && is_moment(y.ty) => {
                int(floor_div(&micros(x, y)?, MICROS_PER_DAY))
            }
            ("hours_since", [t]) if is_moment(t.ty) => hours(micros(t, &now_sql)?),
            ("hours_until", [t]) if is_moment(t.ty) => hours(micros(&now_sql, t)?),
            ("hours_between", [x, y]) if is_moment(x.ty) && is_moment(y.ty) => hours(micros(x, y)?),
            ("months_between", [x, y]) if is_moment(x.ty) && is_moment(y.ty) => {
                int(months_between(&moment(x)?, &moment(y)?))
            }
            ("date", [t]) if is_moment(t.ty) => Some(Sql::new(format!("CAST({} AS DATE)", t.text), Ty::Date, true)),
            ("datetime", [t]) if is_moment(t.ty) => Some(Sql::new(moment(t)?, Ty::Timestamp, true)),
            ("same_quarter", [x, y]) if is_moment(x.ty) && is_moment(y.ty) => Some(Sql::new(
                format!(
                    "coalesce(date_trunc('quarter', CAST({} AS DATE)) = date_trunc('quarter', CAST({} AS DATE)), false)",
                    x.text, y.text
                ),
                Ty::Bool,
                false,
            )),
            ("quarter", [d]) if is_moment(d.ty) => int(format!("CAST(quarter({}) AS BIGINT)", d.text)),
            ("start_of_month" | "start_of_quarter" | "start_of_year", [d]) if is_moment(d.ty) => {
                let part = name.trim_start_matches("start_of_");
                Some(Sql::new(format!("CAST(date_trunc('{part}', CAST({} AS DATE)) AS DATE)", d.text), Ty::Date, true))
            }
            ("add_days", [d, n]) if is_moment(d.ty) && n.ty == Ty::Int => {
                let cast = if d.ty == Ty::Date { "DATE" } else { "TIMESTAMP" };
                Some(Sql::new(format!("CAST({} + to_days(CAST({} AS INTEGER)) AS {cast})", d.text, n.text), d.ty, true))
            }
            ("add_hours", [d, n]) if is_moment(d.ty) && n.ty == Ty::Int => {
                Some(Sql::new(format!("({} + to_hours(CAST({} AS BIGINT)))", moment(d)?, n.text), Ty::Timestamp, true))
            }
            ("add_months", [d, n]) if is_moment(d.ty) && n.ty == Ty::Int => {
                let cast = if d.ty == Ty::Date { "DATE" } else { "TIMESTAMP" };
                Some(Sql::new(
                    format!("CAST({} + to_months(CAST({} AS INTEGER)) AS {cast})", d.text, n.text),
                    d.ty,
                    true,
                ))
            }
            _ => None,
        }
    }
}
