//! Dates and timestamps inside rules, one definition for both evaluation paths (the SQL
//! translation in `sql/translate.rs` writes the same meaning in DuckDB).
//!
//! - A DATE column is a [`Date`]; a TIMESTAMP column (and TIMESTAMPTZ, read in UTC) is a
//!   [`Timestamp`] and keeps its time of day, to the microsecond.
//! - A date compared with a timestamp is that day at midnight: `last_event_at <=
//!   add_days(as_of, -30)` holds for an event up to 00:00:00 of that day, as in SQL.
//! - The run's moment is `as_of` at midnight: `hours_since` and `days_since` count to it.
//! - Counting whole days or months between moments rounds down: `days_since(ts)` is the
//!   number of whole days from `ts` to the run's moment; `months_between(a, b)` the number
//!   of whole months from `a` to `b` (negative when `b` is earlier).
//! - Adding months keeps the day of the month, or the month's last day when it has fewer
//!   (`add_months(date("2026-01-31"), 1)` is 2026-02-28), as DuckDB does.

use chrono::{Datelike, Months, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use rhai::{Dynamic, Engine, EvalAltResult, INT};

pub use crate::entity::format_timestamp;

/// A calendar day, the type of DATE columns inside rules.
pub type Date = NaiveDate;
/// A moment to the microsecond, the type of TIMESTAMP columns inside rules.
pub type Timestamp = NaiveDateTime;

pub const MICROS_PER_HOUR: i64 = 3_600_000_000;
pub const MICROS_PER_DAY: i64 = 86_400_000_000;

type Fallible<T> = Result<T, Box<EvalAltResult>>;

/// Midnight at the start of a day.
pub fn midnight(d: Date) -> Timestamp {
    d.and_time(NaiveTime::MIN)
}

/// A date or timestamp as a moment (a date at midnight); `None` for anything else.
pub fn moment(v: &Dynamic) -> Option<Timestamp> {
    if let Some(t) = v.read_lock::<Timestamp>() { Some(*t) } else { v.read_lock::<Date>().map(|d| midnight(*d)) }
}

/// Parses `YYYY-MM-DD HH:MM[:SS[.ffffff]]` (or with `T`), or a bare date at midnight.
pub fn parse_timestamp(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, format) {
            return Some(t);
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().map(midnight)
}

/// Microseconds from `a` to `b`.
fn micros_between(a: Timestamp, b: Timestamp) -> Fallible<i64> {
    (b - a).num_microseconds().ok_or_else(|| format!("the time from {a} to {b} is too long to count").into())
}

/// Whole days from `a` to `b`, rounded down.
pub fn whole_days(a: Timestamp, b: Timestamp) -> Fallible<INT> {
    Ok(micros_between(a, b)?.div_euclid(MICROS_PER_DAY))
}

/// Hours from `a` to `b`, with the fraction.
pub fn hours(a: Timestamp, b: Timestamp) -> Fallible<f64> {
    Ok(micros_between(a, b)? as f64 / MICROS_PER_HOUR as f64)
}

fn shift_months<T>(
    x: T,
    n: INT,
    add: impl Fn(T, Months) -> Option<T>,
    sub: impl Fn(T, Months) -> Option<T>,
) -> Option<T> {
    let months = Months::new(u32::try_from(n.unsigned_abs()).ok()?);
    if n >= 0 { add(x, months) } else { sub(x, months) }
}

pub fn add_months_date(d: Date, n: INT) -> Option<Date> {
    shift_months(d, n, |d, m| d.checked_add_months(m), |d, m| d.checked_sub_months(m))
}

pub fn add_months_timestamp(t: Timestamp, n: INT) -> Option<Timestamp> {
    shift_months(t, n, |t, m| t.checked_add_months(m), |t, m| t.checked_sub_months(m))
}

/// Whole months from `a` to `b`: the most `n` with `add_months(a, n) <= b` when `a <= b`,
/// and minus the months from `b` to `a` otherwise.
pub fn months_between(a: Timestamp, b: Timestamp) -> Fallible<INT> {
    if a > b {
        return months_between(b, a).map(|m| -m);
    }
    let m = (b.year() as INT - a.year() as INT) * 12 + b.month() as INT - a.month() as INT;
    let landed = add_months_timestamp(a, m).ok_or_else(|| format!("months_between({a}, {b}) is out of range"))?;
    Ok(if landed > b { m - 1 } else { m })
}

fn out_of_range(what: String) -> Box<EvalAltResult> {
    format!("{what} is out of the range of dates").into()
}

fn quarter_start(d: Date) -> Date {
    Date::from_ymd_opt(d.year(), (d.month() - 1) / 3 * 3 + 1, 1).unwrap_or(d)
}

/// Registers the date and timestamp type and every helper over them; `as_of` is the run's day.
pub fn register(engine: &mut Engine, as_of: Date) {
    let now = midnight(as_of);
    engine.register_type_with_name::<Date>("Date");
    engine.register_type_with_name::<Timestamp>("Timestamp");
    engine.register_fn("to_string", |d: &mut Date| d.format("%Y-%m-%d").to_string());
    engine.register_fn("to_debug", |d: &mut Date| d.format("%Y-%m-%d").to_string());
    engine.register_fn("to_string", |t: &mut Timestamp| format_timestamp(t));
    engine.register_fn("to_debug", |t: &mut Timestamp| format_timestamp(t));
    register_comparisons(engine);
    engine.register_fn("-", |a: Date, b: Date| (a - b).num_days());

    engine.register_fn("date", |s: &str| {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").map(Dynamic::from).unwrap_or(Dynamic::UNIT)
    });
    engine.register_fn("date", |d: Date| d);
    engine.register_fn("date", |t: Timestamp| t.date());
    engine.register_fn("date", |_: ()| ());
    engine.register_fn("datetime", |s: &str| parse_timestamp(s).map_or(Dynamic::UNIT, Dynamic::from));
    engine.register_fn("datetime", midnight);
    engine.register_fn("datetime", |t: Timestamp| t);
    engine.register_fn("datetime", |_: ()| ());
    engine.register_fn("today", move || as_of);

    engine.register_fn("days_between", |a: Date, b: Date| (b - a).num_days());
    engine.register_fn("days_since", move |d: Date| (as_of - d).num_days());
    engine.register_fn("days_until", move |d: Date| (d - as_of).num_days());
    engine.register_fn("days_since", move |t: Timestamp| whole_days(t, now));
    engine.register_fn("days_until", move |t: Timestamp| whole_days(now, t));
    engine.register_fn("hours_since", move |t: Timestamp| hours(t, now));
    engine.register_fn("hours_since", move |d: Date| hours(midnight(d), now));
    engine.register_fn("hours_until", move |t: Timestamp| hours(now, t));
    engine.register_fn("hours_until", move |d: Date| hours(now, midnight(d)));
    for f in ["days_since", "days_until", "hours_since", "hours_until"] {
        engine.register_fn(f, |_: ()| ());
    }
    engine.register_fn("days_between", |a: Dynamic, b: Dynamic| -> Fallible<Dynamic> {
        match (moment(&a), moment(&b)) {
            (Some(a), Some(b)) => whole_days(a, b).map(Dynamic::from_int),
            _ => Ok(Dynamic::UNIT),
        }
    });
    engine.register_fn("hours_between", |a: Dynamic, b: Dynamic| -> Fallible<Dynamic> {
        match (moment(&a), moment(&b)) {
            (Some(a), Some(b)) => hours(a, b).map(Dynamic::from_float),
            _ => Ok(Dynamic::UNIT),
        }
    });
    engine.register_fn("months_between", |a: Dynamic, b: Dynamic| -> Fallible<Dynamic> {
        match (moment(&a), moment(&b)) {
            (Some(a), Some(b)) => months_between(a, b).map(Dynamic::from_int),
            _ => Ok(Dynamic::UNIT),
        }
    });

    engine.register_fn("add_days", |d: Date, n: INT| -> Fallible<Date> {
        chrono::Duration::try_days(n)
            .and_then(|days| d.checked_add_signed(days))
            .ok_or_else(|| out_of_range(format!("add_days({d}, {n})")))
    });
    engine.register_fn("add_days", |t: Timestamp, n: INT| -> Fallible<Timestamp> {
        chrono::Duration::try_days(n)
            .and_then(|days| t.checked_add_signed(days))
            .ok_or_else(|| out_of_range(format!("add_days({t}, {n})")))
    });
    engine.register_fn("add_hours", |t: Timestamp, n: INT| -> Fallible<Timestamp> {
        chrono::Duration::try_hours(n)
            .and_then(|h| t.checked_add_signed(h))
            .ok_or_else(|| out_of_range(format!("add_hours({t}, {n})")))
    });
    engine.register_fn("add_hours", |d: Date, n: INT| -> Fallible<Timestamp> {
        chrono::Duration::try_hours(n)
            .and_then(|h| midnight(d).checked_add_signed(h))
            .ok_or_else(|| out_of_range(format!("add_hours({d}, {n})")))
    });
    engine.register_fn("add_months", |d: Date, n: INT| -> Fallible<Date> {
        add_months_date(d, n).ok_or_else(|| out_of_range(format!("add_months({d}, {n})")))
    });
    engine.register_fn("add_months", |t: Timestamp, n: INT| -> Fallible<Timestamp> {
        add_months_timestamp(t, n).ok_or_else(|| out_of_range(format!("add_months({t}, {n})")))
    });
    for f in ["add_days", "add_hours", "add_months"] {
        engine.register_fn(f, |_: (), _: INT| ());
    }

    engine.register_fn("start_of_month", |d: Date| d.with_day(1).unwrap_or(d));
    engine.register_fn("start_of_month", |t: Timestamp| t.date().with_day(1).unwrap_or(t.date()));
    engine.register_fn("start_of_quarter", quarter_start);
    engine.register_fn("start_of_quarter", |t: Timestamp| quarter_start(t.date()));
    engine.register_fn("start_of_year", |d: Date| d.with_ordinal(1).unwrap_or(d));
    engine.register_fn("start_of_year", |t: Timestamp| t.date().with_ordinal(1).unwrap_or(t.date()));
    for f in ["start_of_month", "start_of_quarter", "start_of_year", "quarter"] {
        engine.register_fn(f, |_: ()| ());
    }

    engine.register_get("year", |d: &mut Date| d.year() as INT);
    engine.register_get("month", |d: &mut Date| d.month() as INT);
    engine.register_get("day", |d: &mut Date| d.day() as INT);
    engine.register_get("year", |t: &mut Timestamp| t.year() as INT);
    engine.register_get("month", |t: &mut Timestamp| t.month() as INT);
    engine.register_get("day", |t: &mut Timestamp| t.day() as INT);
    engine.register_get("hour", |t: &mut Timestamp| t.hour() as INT);
    engine.register_get("minute", |t: &mut Timestamp| t.minute() as INT);
    engine.register_get("second", |t: &mut Timestamp| t.second() as INT);
    engine.register_fn("quarter", |d: Date| ((d.month() - 1) / 3 + 1) as INT);
    engine.register_fn("quarter", |t: Timestamp| ((t.month() - 1) / 3 + 1) as INT);
    engine.register_fn("same_quarter", |a: Dynamic, b: Dynamic| match (moment(&a), moment(&b)) {
        (Some(a), Some(b)) => quarter_start(a.date()) == quarter_start(b.date()),
        _ => false,
    });
}

/// Dates with dates, timestamps with timestamps, and a date with a timestamp as its midnight.
fn register_comparisons(engine: &mut Engine) {
    macro_rules! compare {
        ($($op:tt),*) => {$(
            engine.register_fn(stringify!($op), |a: Date, b: Date| a $op b);
            engine.register_fn(stringify!($op), |a: Timestamp, b: Timestamp| a $op b);
            engine.register_fn(stringify!($op), |a: Date, b: Timestamp| midnight(a) $op b);
            engine.register_fn(stringify!($op), |a: Timestamp, b: Date| a $op midnight(b));
        )*};
    }
    compare!(<, <=, >, >=, ==, !=);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> Date {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn at(s: &str) -> Timestamp {
        parse_timestamp(s).unwrap()
    }

    #[test]
    fn months_between_counts_whole_months() {
        let cases = [
            ("2026-01-31", "2026-02-28", 1),
            ("2026-01-31", "2026-02-27", 0),
            ("2026-01-15", "2027-01-15", 12),
            ("2026-01-15", "2027-01-14", 11),
            ("2026-03-31", "2026-02-28", -1),
            ("2026-03-15", "2026-03-01", 0),
            ("2024-02-29", "2025-02-28", 12),
        ];
        for (a, b, months) in cases {
            assert_eq!(months_between(midnight(day(a)), midnight(day(b))).unwrap(), months, "{a} to {b}");
        }
        assert_eq!(months_between(at("2026-01-15 10:00"), at("2026-02-15 09:59")).unwrap(), 0);
        assert_eq!(months_between(at("2026-01-15 10:00"), at("2026-02-15 10:00")).unwrap(), 1);
    }

    #[test]
    fn adding_months_keeps_the_day_or_takes_the_last() {
        assert_eq!(add_months_date(day("2026-01-31"), 1), Some(day("2026-02-28")));
        assert_eq!(add_months_date(day("2026-03-31"), -1), Some(day("2026-02-28")));
        assert_eq!(add_months_date(day("2026-11-23"), -12), Some(day("2025-11-23")));
        assert_eq!(add_months_timestamp(at("2024-02-29 23:59:59"), 12), Some(at("2025-02-28 23:59:59")));
    }

    #[test]
    fn whole_days_round_down_to_the_second() {
        let now = midnight(day("2026-11-23"));
        assert_eq!(whole_days(at("2026-10-24 00:00:00"), now).unwrap(), 30);
        assert_eq!(whole_days(at("2026-10-24 00:00:01"), now).unwrap(), 29);
        assert_eq!(whole_days(at("2026-11-23 00:00:01"), now).unwrap(), -1);
        assert_eq!(hours(at("2026-11-22 23:30:00"), now).unwrap(), 0.5);
    }

    #[test]
    fn timestamps_read_and_write_as_duckdb_does() {
        for s in ["2026-11-23 14:05:00", "2026-11-23 14:05:00.5", "2026-11-23 14:05:00.123456"] {
            assert_eq!(format_timestamp(&at(s)), s);
        }
        assert_eq!(format_timestamp(&at("2026-11-23T14:05")), "2026-11-23 14:05:00");
        assert_eq!(format_timestamp(&at("2026-11-23")), "2026-11-23 00:00:00");
        assert_eq!(parse_timestamp("23/11/2026"), None);
    }
}
