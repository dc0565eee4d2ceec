//! The sandboxed rhai engine every rule expression runs in, and the helper functions
//! rule authors may call.
//!
//! Missing values are rhai's unit `()`. Their meaning is defined here, once:
//! - a comparison with a missing value is `false` (the rule does not fire; `explain`
//!   marks it n/a);
//! - arithmetic with a missing value gives a missing value;
//! - `is_missing(x)`, `present(x)` and `coalesce(x, fallback)` test and replace it.
//!
//! `/` always divides exactly (`3 / 4` is `0.75`), as in a spreadsheet and in DuckDB;
//! `div(a, b)` is integer division.

use chrono::NaiveDate;
use rhai::module_resolvers::DummyModuleResolver;
use rhai::{Array, Dynamic, Engine, FLOAT, INT, ImmutableString};

/// Upper bound on the work one expression may do for one account.
pub const MAX_OPERATIONS: u64 = 200_000;

pub use super::time::{Date, Timestamp};

/// Builds the engine for one run: `as_of` is the day `days_since` and `today()` count from.
pub fn build(as_of: NaiveDate, lookups: std::sync::Arc<super::lookup::Lookups>) -> Engine {
    let mut engine = Engine::new();
    sandbox(&mut engine);
    register_missing_semantics(&mut engine);
    super::time::register(&mut engine, as_of);
    register_helpers(&mut engine);
    super::lookup::register(&mut engine, lookups);
    engine
}

/// When a run must stop. Set as the run starts; until then nothing expires.
#[derive(Debug, Default)]
pub struct Deadline {
    at: std::sync::OnceLock<std::time::Instant>,
}

impl Deadline {
    /// Starts the budget: the run must end within `budget` from now.
    pub fn start(&self, budget: std::time::Duration) {
        let now = std::time::Instant::now();
        let _ = self.at.set(now.checked_add(budget).unwrap_or(now + std::time::Duration::from_secs(86_400 * 365)));
    }

    pub fn passed(&self) -> bool {
        self.at.get().is_some_and(|at| std::time::Instant::now() >= *at)
    }

    /// What is left of the budget (`None` before it starts).
    pub fn remaining(&self) -> Option<std::time::Duration> {
        self.at.get().map(|at| at.saturating_duration_since(std::time::Instant::now()))
    }
}

/// Every expression stops once `deadline` has passed, checked every 4096 operations. The
/// operation limit bounds a script's steps but not the native work inside one step (a
/// `contains` over a 100,000-element array is one operation), so time is checked too.
pub fn stop_at(engine: &mut Engine, deadline: std::sync::Arc<Deadline>) {
    engine.on_progress(move |ops| {
        (ops & 0xFFF == 0 && deadline.passed()).then(|| Dynamic::from("the job's time budget ran out"))
    });
}

/// No file or network access, no module loading, no printing, bounded work.
fn sandbox(engine: &mut Engine) {
    engine.set_module_resolver(DummyModuleResolver::new());
    engine.on_print(|_| {});
    engine.on_debug(|_, _, _| {});
    engine.disable_symbol("eval");
    engine.disable_symbol("print");
    engine.disable_symbol("debug");
    engine.set_strict_variables(true);
    // Registered operators below must win over the built-in ones.
    engine.set_fast_operators(false);
    engine.set_max_operations(MAX_OPERATIONS);
    engine.set_max_expr_depths(64, 32);
    engine.set_max_call_levels(32);
    engine.set_max_string_size(100_000);
    engine.set_max_array_size(100_000);
    engine.set_max_map_size(10_000);
    engine.set_max_variables(1_000);
    engine.set_max_functions(200);
    engine.set_max_modules(0);
    engine.set_optimization_level(rhai::OptimizationLevel::Simple);
}

macro_rules! missing_comparisons {
    ($engine:expr, $($t:ty),*) => {$(
        for op in ["<", "<=", ">", ">=", "==", "!="] {
            $engine.register_fn(op, |_: (), _: $t| false);
            $engine.register_fn(op, |_: $t, _: ()| false);
        }
        for op in ["+", "-", "*", "/", "%"] {
            $engine.register_fn(op, |_: (), _: $t| ());
            $engine.register_fn(op, |_: $t, _: ()| ());
        }
    )*};
}

fn register_missing_semantics(engine: &mut Engine) {
    missing_comparisons!(engine, INT, FLOAT, ImmutableString, bool, Date, Timestamp);
    for op in ["<", "<=", ">", ">=", "==", "!="] {
        engine.register_fn(op, |_: (), _: ()| false);
    }
    for op in ["+", "-", "*", "/", "%"] {
        engine.register_fn(op, |_: (), _: ()| ());
    }
    engine.register_fn("-", |_: ()| ());
    // `x in [..]` with a missing x is false.
    engine.register_fn("contains", |_: &mut Array, _: ()| false);
    engine.register_fn("/", |a: INT, b: INT| divide(a as FLOAT, b as FLOAT));
    engine.register_fn("/", |a: FLOAT, b: INT| divide(a, b as FLOAT));
    engine.register_fn("/", |a: INT, b: FLOAT| divide(a as FLOAT, b));
    engine.register_fn("/", |a: FLOAT, b: FLOAT| divide(a, b));
    engine.register_fn("div", |a: INT, b: INT| if b == 0 { Dynamic::UNIT } else { Dynamic::from_int(a.div_euclid(b)) });
    engine.register_fn("is_missing", |x: Dynamic| x.is_unit());
    engine.register_fn("present", |x: Dynamic| !x.is_unit());
    engine.register_fn("coalesce", |x: Dynamic, fallback: Dynamic| if x.is_unit() { fallback } else { x });
}

/// Division by zero gives a missing value rather than an error or infinity.
fn divide(a: FLOAT, b: FLOAT) -> Dynamic {
    if b == 0.0 { Dynamic::UNIT } else { Dynamic::from_float(a / b) }
}

fn register_helpers(engine: &mut Engine) {
    engine.register_fn("pct", |a: Dynamic, b: Dynamic| match (number(&a), number(&b)) {
        (Some(a), Some(b)) if b != 0.0 => Dynamic::from_float(a / b * 100.0),
        _ => Dynamic::UNIT,
    });
    engine.register_fn("clamp", |x: Dynamic, lo: Dynamic, hi: Dynamic| match (number(&x), number(&lo), number(&hi)) {
        (Some(x), Some(lo), Some(hi)) => Dynamic::from_float(x.max(lo).min(hi)),
        _ => Dynamic::UNIT,
    });
    engine.register_fn("round", |x: FLOAT, digits: INT| {
        let f = 10f64.powi(digits as i32);
        (x * f).round() / f
    });
    engine.register_fn("round", |_: (), _: INT| ());
    engine.register_fn("abs", |_: ()| ());
    engine.register_fn("min", |_: (), _: Dynamic| ());
    engine.register_fn("min", |_: Dynamic, _: ()| ());
    engine.register_fn("max", |_: (), _: Dynamic| ());
    engine.register_fn("max", |_: Dynamic, _: ()| ());
    engine.register_fn("lower", |s: &str| s.to_lowercase());
    engine.register_fn("lower", |_: ()| ());
    engine.register_fn("upper", |s: &str| s.to_uppercase());
    engine.register_fn("upper", |_: ()| ());
    engine.register_fn("money", |x: Dynamic| number(&x).map_or(String::new(), money));
    engine.register_fn("trend", |values: Array| trend(&values).map_or(Dynamic::UNIT, Dynamic::from_float));
    engine.register_fn("trend", |_: ()| ());
    engine.register_fn("pct_change", |a: Dynamic, b: Dynamic| match (number(&a), number(&b)) {
        (Some(a), Some(b)) if a != 0.0 => Dynamic::from_float((b - a) / a.abs() * 100.0),
        _ => Dynamic::UNIT,
    });
    engine.register_fn("in_list", |x: Dynamic, list: Array| !x.is_unit() && list.iter().any(|v| same(v, &x)));
}

/// A number as f64, for helpers that accept ints and floats alike.
pub fn number(v: &Dynamic) -> Option<f64> {
    if let Ok(i) = v.as_int() { Some(i as f64) } else { v.as_float().ok() }
}

fn same(a: &Dynamic, b: &Dynamic) -> bool {
    match (number(a), number(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a.to_string() == b.to_string() && a.type_name() == b.type_name(),
    }
}

/// The least-squares slope of the values per step, oldest first; missing values are skipped,
/// and fewer than two values give a missing trend.
pub fn trend(values: &[Dynamic]) -> Option<f64> {
    let points: Vec<(f64, f64)> =
        values.iter().enumerate().filter_map(|(i, v)| number(v).map(|y| (i as f64, y))).collect();
    if points.len() < 2 {
        return None;
    }
    let n = points.len() as f64;
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let cov: f64 = points.iter().map(|(x, y)| (x - mean_x) * (y - mean_y)).sum();
    let var: f64 = points.iter().map(|(x, _)| (x - mean_x).powi(2)).sum();
    Some(cov / var)
}

/// `$1,234,567`: whole currency units with thousands separators.
pub fn money(v: f64) -> String {
    money_in(v, "$")
}

/// [`money`] in another currency: `€1,234`, `£1,234`, `CHF 1,234` (a code is spaced).
pub fn money_in(v: f64, currency: &str) -> String {
    let n = v.round() as i64;
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    let space = if currency.chars().last().is_some_and(char::is_alphabetic) { " " } else { "" };
    format!("{}{currency}{space}{out}", if n < 0 { "-" } else { "" })
}

/// The functions rules can call, by name, with the numbers of arguments each takes: what
/// `check` holds calls to. Every engine [`build`] makes registers the same functions.
pub fn functions(engine: &Engine) -> &'static std::collections::HashMap<String, std::collections::BTreeSet<usize>> {
    static FUNCTIONS: std::sync::OnceLock<std::collections::HashMap<String, std::collections::BTreeSet<usize>>> =
        std::sync::OnceLock::new();
    FUNCTIONS.get_or_init(|| {
        let mut table: std::collections::HashMap<String, std::collections::BTreeSet<usize>> = Default::default();
        for signature in engine.gen_fn_signatures(true) {
            if let Some((name, arity)) = name_and_arity(&signature)
                && !name.contains('$')
            {
                table.entry(name.to_string()).or_default().insert(arity);
            }
        }
        // Keywords rhai handles itself.
        for (name, arities) in [("type_of", &[1][..]), ("is_def_var", &[1]), ("is_def_fn", &[2]), ("Fn", &[1])] {
            table.entry(name.into()).or_default().extend(arities);
        }
        table
    })
}

/// `add_days(_: Date, _: i64) -> Date` is (`add_days`, 2).
fn name_and_arity(signature: &str) -> Option<(&str, usize)> {
    let open = signature.find('(')?;
    let (mut depth, mut commas, mut any) = (0i32, 0, false);
    for c in signature[open + 1..].chars() {
        match c {
            '(' | '<' => depth += 1,
            ')' if depth == 0 => break,
            ')' | '>' => depth -= 1,
            ',' if depth == 0 => commas += 1,
            c if !c.is_whitespace() => any = true,
            _ => {}
        }
    }
    Some((&signature[..open], if any { commas + 1 } else { 0 }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn signatures_give_names_and_arities() {
        let cases = [
            (
                "add_days(_: Date, _: i64) -> core::result::Result<chrono::NaiveDate,alloc::boxed::Box<E>>",
                ("add_days", 2),
            ),
            ("contains(_: &mut array, _: ()) -> bool", ("contains", 2)),
            ("today() -> Date", ("today", 0)),
            ("lookup(_: string, _: Dynamic, _: string) -> Dynamic", ("lookup", 3)),
        ];
        for (signature, expected) in cases {
            assert_eq!(super::name_and_arity(signature), Some(expected), "{signature}");
        }
        let engine = super::build(chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(), Default::default());
        let functions = super::functions(&engine);
        assert_eq!(functions.get("add_months").map(|a| a.iter().copied().collect::<Vec<_>>()), Some(vec![2]));
        assert!(functions.contains_key("len") && functions.contains_key("days_since"));
    }
}
