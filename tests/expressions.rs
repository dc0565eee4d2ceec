//! The expression language's defined behaviour, as a table: expression, inputs, result.
//! Missing values, exact division and the date helpers are the parts users rely on.

use chrono::NaiveDate;
use rhai::{Dynamic, Scope};

fn as_of() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 23).expect("date")
}

/// Evaluates `expr` with `x` and `d` bound, and renders the result as text (`()` is missing).
fn eval(expr: &str, x: Dynamic, d: Dynamic) -> String {
    let engine = keepwell::rules::engine::build(as_of(), Default::default());
    let mut scope = Scope::new();
    scope.push_dynamic("x", x);
    scope.push_dynamic("d", d);
    match engine.eval_expression_with_scope::<Dynamic>(&mut scope, expr) {
        Ok(v) if v.is_unit() => "missing".into(),
        Ok(v) => keepwell::entity::display_value(&v),
        Err(e) => format!("error: {e}"),
    }
}

fn missing() -> Dynamic {
    Dynamic::UNIT
}

fn date(s: &str) -> Dynamic {
    Dynamic::from(NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date"))
}

#[test]
fn expressions_behave_as_documented() {
    let cases: Vec<(&str, Dynamic, Dynamic, &str)> = vec![
        // Comparisons with a missing value are false, both ways round.
        ("x < 7", missing(), missing(), "false"),
        ("x > 7", missing(), missing(), "false"),
        ("x == 7", missing(), missing(), "false"),
        ("x != 7", missing(), missing(), "false"),
        ("7 <= x", missing(), missing(), "false"),
        ("x == \"red\"", missing(), missing(), "false"),
        ("x == d", missing(), missing(), "false"),
        ("x in [\"a\", \"b\"]", missing(), missing(), "false"),
        ("x in [\"a\", \"b\"]", Dynamic::from("a"), missing(), "true"),
        // Arithmetic with a missing value is missing, so a comparison on it is false.
        ("x + 1", missing(), missing(), "missing"),
        ("x * 2 > 1", missing(), missing(), "false"),
        ("-x", missing(), missing(), "missing"),
        // Testing and replacing missing values.
        ("is_missing(x)", missing(), missing(), "true"),
        ("present(x)", missing(), missing(), "false"),
        ("present(x)", Dynamic::from_int(0), missing(), "true"),
        ("coalesce(x, 5) > 3", missing(), missing(), "true"),
        ("coalesce(x, 5)", Dynamic::from_int(2), missing(), "2"),
        // Division is exact, as in a spreadsheet; by zero it is missing.
        ("3 / 4", missing(), missing(), "0.75"),
        ("x / 4", Dynamic::from_int(3), missing(), "0.75"),
        ("x / 0", Dynamic::from_int(3), missing(), "missing"),
        ("div(7, 2)", missing(), missing(), "3"),
        ("pct(x, 200)", Dynamic::from_int(50), missing(), "25"),
        ("pct(x, 0)", Dynamic::from_int(50), missing(), "missing"),
        ("clamp(x, 0, 100)", Dynamic::from_int(150), missing(), "100"),
        ("round(x, 1)", Dynamic::from_float(2.345), missing(), "2.3"),
        // Dates: days counted from the run's as-of day.
        ("days_since(d)", missing(), date("2026-11-01"), "22"),
        ("days_until(d)", missing(), date("2026-12-01"), "8"),
        ("days_since(d) > 10", missing(), missing(), "false"),
        ("days_between(d, date(\"2026-11-30\"))", missing(), date("2026-11-01"), "29"),
        ("d < date(\"2026-12-01\")", missing(), date("2026-11-01"), "true"),
        ("same_quarter(d, today())", missing(), date("2026-10-01"), "true"),
        ("same_quarter(d, today())", missing(), date("2026-09-30"), "false"),
        ("quarter(d)", missing(), date("2026-05-05"), "2"),
        ("add_days(d, 3)", missing(), date("2026-02-27"), "2026-03-02"),
        // Text helpers and lists.
        ("lower(x) == \"travel\"", Dynamic::from("Travel"), missing(), "true"),
        ("in_list(x, [1, 2, 3])", Dynamic::from_float(2.0), missing(), "true"),
    ];
    let failures: Vec<String> = cases
        .into_iter()
        .filter_map(|(expr, x, d, expected)| {
            let actual = eval(expr, x.clone(), d.clone());
            (actual != expected)
                .then(|| format!("`{expr}` with x = {x:?}, d = {d:?}: expected {expected}, got {actual}"))
        })
        .collect();
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn rule_code_cannot_print_load_modules_or_eval() {
    let engine = keepwell::rules::engine::build(as_of(), Default::default());
    for (script, expected) in [
        ("print(\"hi\")", "reserved keyword 'print' is disabled"),
        ("eval(\"1\")", "reserved keyword 'eval' is disabled"),
        ("import \"os\" as os; 1", "Too many modules imported"),
    ] {
        let err = engine.eval::<Dynamic>(script).expect_err(script).to_string();
        assert!(err.contains(expected), "`{script}`: {err}");
    }
}

#[test]
fn an_endless_loop_is_stopped_by_the_operation_limit() {
    let engine = keepwell::rules::engine::build(as_of(), Default::default());
    let err = engine.eval::<Dynamic>("let n = 0; loop { n += 1; }").expect_err("runs forever").to_string();
    assert!(err.starts_with("Too many operations"), "{err}");
}
