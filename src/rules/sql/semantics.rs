//! How rhai's semantics are written in SQL: NaN-aware min and max, float comparisons with
//! rhai's tolerance, the integer ranges SQL accepts as rhai does, literals.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use rhai::Expr as RhaiExpr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Ty {
    Int,
    Float,
    Text,
    Bool,
    Date,
    Timestamp,
    TextList,
    Null,
}

impl Ty {
    pub(super) fn numeric(self) -> bool {
        matches!(self, Ty::Int | Ty::Float | Ty::Null)
    }
}

/// A translated expression: its SQL, its type, and for booleans whether it can be NULL.
#[derive(Debug, Clone)]
pub(super) struct Sql {
    pub(super) text: String,
    pub(super) ty: Ty,
    pub(super) nullable: bool,
}

impl Sql {
    pub(super) fn new(text: impl Into<String>, ty: Ty, nullable: bool) -> Sql {
        Sql { text: text.into(), ty, nullable }
    }
}

/// Rust's `f64::max` (`greatest`) or `f64::min` (`least`) of two doubles: a NaN is passed
/// over, where DuckDB orders it above every number.
pub(super) fn rust_float(f: &str, a: &str, b: &str) -> String {
    format!("(CASE WHEN isnan({a}) THEN {b} WHEN isnan({b}) THEN {a} ELSE {f}({a}, {b}) END)")
}

/// Whether a call is a comparison or an `in` list, which [`Translator::lax`] writes without
/// turning NULL into false.
pub(super) fn lax_call(name: &str, args: usize) -> bool {
    args == 2 && (comparison_op(name).is_some() || matches!(name, "contains" | "in_list"))
}

/// The SQL operator of a rhai comparison.
pub(super) fn comparison_op(name: &str) -> Option<&'static str> {
    Some(match name {
        "==" => "=",
        "!=" => "<>",
        "<" => "<",
        "<=" => "<=",
        ">" => ">",
        ">=" => ">=",
        _ => return None,
    })
}

/// The value of a number literal, as rhai converts it to compare it with a float.
pub(super) fn numeric_constant(e: &RhaiExpr) -> Option<f64> {
    match e {
        RhaiExpr::IntegerConstant(i, _) => Some(*i as f64),
        RhaiExpr::FloatConstant(f, _) => Some(**f),
        RhaiExpr::DynamicConstant(d, _) => d.as_float().ok().or_else(|| d.as_int().ok().map(|i| i as f64)),
        _ => None,
    }
}

/// rhai compares a float with a relative tolerance of `f64::EPSILON` (an absolute one when
/// either side is zero), so `1e-17 <= 0.0` is true there; the SQL does the same, NULL when
/// either side is missing. Against a number literal, the values the comparison accepts are
/// one range of doubles, found once here, so each row costs one `BETWEEN`; otherwise each
/// row computes rhai's formula.
pub(super) fn float_comparison(name: &str, x: &Sql, y: &Sql, constants: (Option<f64>, Option<f64>)) -> String {
    let (x, y) = (format!("CAST({} AS DOUBLE)", x.text), format!("CAST({} AS DOUBLE)", y.text));
    let range = match constants {
        (None, Some(c)) => AcceptedRange::find(name, |v| rhai_float_compare(name, v, c), c).map(|r| (r, &x)),
        (Some(c), None) => {
            // `c < v` accepts what `v > c` does.
            let mirrored = match name {
                "<" => ">",
                "<=" => ">=",
                ">" => "<",
                ">=" => "<=",
                same => same,
            };
            AcceptedRange::find(mirrored, |v| rhai_float_compare(name, c, v), c).map(|r| (r, &y))
        }
        _ => None,
    };
    if let Some((range, value)) = range {
        return range.sql(value);
    }
    let eps = float_literal(f64::EPSILON).text;
    // Rust's `max` passes over a NaN, where DuckDB's `greatest` returns it.
    let max = format!(
        "(CASE WHEN {x} * {y} = 0 THEN 1.0 WHEN isnan(abs({x})) THEN abs({y}) WHEN isnan(abs({y})) THEN abs({x}) \
         ELSE greatest(abs({x}), abs({y})) END)"
    );
    // NaN (from an infinity or a NaN) is rejected by rhai's `>`; DuckDB orders it above every number.
    let above = |v: String, bound: &str| format!("(NOT isnan({v}) AND {v} > {bound})");
    let zero = matches!(name, "==" | ">=" | "<=");
    let test = match name {
        "==" => format!("abs({x} - {y}) / {max} <= {eps}"),
        "!=" => above(format!("abs({x} - {y}) / {max}"), &eps),
        ">" => above(format!("({x} - {y}) / {max}"), &eps),
        ">=" => above(format!("({x} - {y}) / {max}"), &format!("-{eps}")),
        "<" => above(format!("({y} - {x}) / {max}"), &eps),
        _ => above(format!("({y} - {x}) / {max}"), &format!("-{eps}")),
    };
    // A zero `max` (NaN against zero) is rhai's own case; `greatest` passes over a missing
    // value, so that is tested first.
    format!("(CASE WHEN {x} IS NULL OR {y} IS NULL THEN NULL WHEN {max} = 0 THEN {zero} ELSE {test} END)")
}

/// rhai's comparison of two floats (`rhai::func::builtin`, checked arithmetic), to the bit.
pub(super) fn rhai_float_compare(name: &str, x: f64, y: f64) -> bool {
    let max = if x * y == 0.0 { 1.0 } else { x.abs().max(y.abs()) };
    if max == 0.0 {
        return matches!(name, "==" | ">=" | "<=");
    }
    match name {
        "==" => (x - y).abs() / max <= f64::EPSILON,
        "!=" => (x - y).abs() / max > f64::EPSILON,
        ">" => (x - y) / max > f64::EPSILON,
        ">=" => (x - y) / max > -f64::EPSILON,
        "<" => (y - x) / max > f64::EPSILON,
        _ => (y - x) / max > -f64::EPSILON,
    }
}

/// The finite doubles a comparison with a constant accepts: from `lo` to `hi`, or all but
/// those (`!=`). Infinities and NaN are never accepted (rhai's formula gives NaN for them).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct AcceptedRange {
    pub(super) lo: f64,
    pub(super) hi: f64,
    pub(super) outside: bool,
}

impl AcceptedRange {
    /// The range `accepts` describes around the constant `c`, comparing a value with `c` by
    /// `op` (the constant on the right), or `None` when `c` is outside
    /// the magnitudes whose shape is known (near zero the tolerance is absolute) or the
    /// range found does not agree with `accepts` on every value checked: then the formula
    /// runs row by row.
    pub(super) fn find(op: &str, accepts: impl Fn(f64) -> bool, c: f64) -> Option<AcceptedRange> {
        if !(1e-10..=1e300).contains(&c.abs())
            || [f64::INFINITY, f64::NEG_INFINITY, f64::NAN].iter().any(|v| accepts(*v))
        {
            return None;
        }
        // The last value on the same side as `v`, walking from `v` a few ulps at a time.
        let edge = |mut v: f64, step: fn(f64) -> f64| -> Option<f64> {
            let inside = accepts(v);
            for _ in 0..64 {
                let next = step(v);
                if accepts(next) != inside {
                    return Some(v);
                }
                v = next;
            }
            None
        };
        type Step = fn(f64) -> f64;
        let (down, up): (Step, Step) = (f64::next_down, f64::next_up);
        let at_c = accepts(c);
        let range = match (op, at_c) {
            (">" | ">=", true) => AcceptedRange { lo: edge(c, down)?, hi: f64::MAX, outside: false },
            (">" | ">=", false) => AcceptedRange { lo: edge(c, up)?.next_up(), hi: f64::MAX, outside: false },
            ("<" | "<=", true) => AcceptedRange { lo: f64::MIN, hi: edge(c, up)?, outside: false },
            ("<" | "<=", false) => AcceptedRange { lo: f64::MIN, hi: edge(c, down)?.next_down(), outside: false },
            ("==", true) => AcceptedRange { lo: edge(c, down)?, hi: edge(c, up)?, outside: false },
            ("!=", false) => AcceptedRange { lo: edge(c, down)?, hi: edge(c, up)?, outside: true },
            _ => return None,
        };
        let mut samples =
            vec![0.0, -0.0, f64::MIN_POSITIVE, 5e-324, 1e-300, 1e-10, f64::EPSILON, 0.5, 1.0, 1e300, f64::MAX];
        samples.extend([c, c / 2.0, c * 2.0, c * (1.0 + 1e-15), c * (1.0 - 1e-15), range.lo, range.hi]);
        samples.extend(samples.clone().iter().map(|v| -v));
        for bound in [range.lo, range.hi, c] {
            let (mut down, mut up) = (bound, bound);
            for _ in 0..256 {
                (down, up) = (down.next_down(), up.next_up());
                samples.extend([down, up]);
            }
        }
        // And doubles spread over every magnitude, from a fixed sequence.
        let mut bits = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..2048 {
            bits = bits.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            samples.push(f64::from_bits(bits));
        }
        let agrees = samples.iter().filter(|v| v.is_finite()).all(|v| accepts(*v) == range.contains(*v));
        agrees.then_some(range)
    }

    pub(super) fn contains(&self, v: f64) -> bool {
        v.is_finite() && ((self.lo..=self.hi).contains(&v) != self.outside)
    }

    /// DuckDB orders NaN above every number, so the finite bounds keep it out too.
    pub(super) fn sql(&self, value: &str) -> String {
        let between =
            |lo: f64, hi: f64| format!("{value} BETWEEN {} AND {}", float_literal(lo).text, float_literal(hi).text);
        if self.outside {
            format!("({} AND NOT ({}))", between(f64::MIN, f64::MAX), between(self.lo, self.hi))
        } else {
            format!("({})", between(self.lo, self.hi))
        }
    }
}

/// A list literal of text (or missing values, which rhai's results show as empty text).
pub(super) fn text_list(items: Vec<Sql>) -> Option<Sql> {
    if !items.iter().all(|i| matches!(i.ty, Ty::Text | Ty::Null)) {
        return None;
    }
    let items: Vec<String> = items.into_iter().map(|i| format!("coalesce(CAST({} AS VARCHAR), '')", i.text)).collect();
    Some(Sql::new(format!("CAST([{}] AS VARCHAR[])", items.join(", ")), Ty::TextList, false))
}

pub(super) fn coalesce(parts: Vec<Sql>) -> Option<Sql> {
    let kinds: BTreeSet<_> = parts.iter().map(|p| p.ty).filter(|t| *t != Ty::Null).collect();
    if kinds.len() > 1 || kinds.contains(&Ty::TextList) {
        return None;
    }
    let ty = kinds.into_iter().next().unwrap_or(Ty::Null);
    let nullable = parts.iter().all(|p| p.nullable);
    let texts: Vec<String> = parts.into_iter().map(|p| p.text).collect();
    Some(Sql::new(format!("coalesce({})", texts.join(", ")), ty, nullable))
}

pub(super) fn int_literal(i: i64) -> Sql {
    Sql::new(format!("CAST({i} AS BIGINT)"), Ty::Int, false)
}

/// A double as DuckDB reads it back to the bit: from text. A literal with a decimal point
/// would be read as a DECIMAL first, and its conversion rounds twice: one in 70 doubles of 16
/// or 17 digits, such as the `0.3333333333333333` rhai folds `1.0 / 3.0` into, came back one
/// ulp away.
pub(super) fn float_literal(f: f64) -> Sql {
    let text = if f.is_finite() { format!("{f:?}") } else { f.to_string() };
    Sql::new(format!("CAST('{text}' AS DOUBLE)"), Ty::Float, false)
}

pub(super) fn text_literal(s: &str) -> Sql {
    Sql::new(format!("'{}'", s.replace('\'', "''")), Ty::Text, false)
}

pub(super) fn date_literal(d: NaiveDate) -> Sql {
    Sql::new(format!("DATE '{}'", d.format("%Y-%m-%d")), Ty::Date, false)
}

pub(super) fn timestamp_literal(t: chrono::NaiveDateTime) -> Sql {
    Sql::new(format!("TIMESTAMP '{}'", crate::rules::time::format_timestamp(&t)), Ty::Timestamp, false)
}

/// A date or timestamp as a TIMESTAMP (a date at midnight), as [`crate::rules::time`] compares them.
pub(super) fn moment(x: &Sql) -> Option<String> {
    match x.ty {
        Ty::Timestamp => Some(x.text.clone()),
        Ty::Date => Some(format!("CAST({} AS TIMESTAMP)", x.text)),
        _ => None,
    }
}

pub(super) fn is_moment(ty: Ty) -> bool {
    matches!(ty, Ty::Date | Ty::Timestamp)
}

/// `x` divided by a positive `d`, rounded down (DuckDB's `//` rounds towards zero).
pub(super) fn floor_div(x: &str, d: i64) -> String {
    // Bracketed whole: `h * x // d` would be read `(h * x) // d`.
    format!("((({x}) - ((({x}) % {d}) + {d}) % {d}) // {d})")
}

/// Whole months from `a` to `b` (both TIMESTAMP), as [`crate::rules::time::months_between`].
pub(super) fn months_between(a: &str, b: &str) -> String {
    let forward = |a: &str, b: &str| {
        let m = format!("((year({b}) - year({a})) * 12 + month({b}) - month({a}))");
        format!("({m} - CASE WHEN {a} + to_months(CAST({m} AS INTEGER)) > {b} THEN 1 ELSE 0 END)")
    };
    format!("CAST(CASE WHEN {a} <= {b} THEN {} ELSE -{} END AS BIGINT)", forward(a, b), forward(b, a))
}

pub(super) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
