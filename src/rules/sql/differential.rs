//! The differential test the vectorised path answers to: random expressions over random
//! rows, through rhai and through DuckDB, must agree on every row, or the SQL must fail (and
//! the rule set then runs in rhai).

use super::translate::*;
use super::*;
use crate::rules::lookup::Lookups;
use chrono::NaiveDate;
use rhai::Dynamic;

use proptest::prelude::*;
use rhai::Scope;

const AS_OF: (i32, u32, u32) = (2026, 11, 23);

#[derive(Debug, Clone)]
struct Row {
    i: Option<i64>,
    f: Option<f64>,
    s: Option<&'static str>,
    b: Option<bool>,
    d: Option<NaiveDate>,
    t: Option<chrono::NaiveDateTime>,
}

fn row() -> impl Strategy<Value = Row> {
    let int = prop_oneof![-20i64..20, Just(i64::MAX / 2), Just(i64::MIN / 2), Just(0)];
    // The constants of `num()` and the doubles next to them, where rhai's tolerance decides.
    let near = prop::sample::select(vec![0.5, 2.25, 3.0, -1.5, 1.0]).prop_flat_map(|c: f64| {
        (-4i32..5).prop_map(move |ulps| {
            let step = if ulps < 0 { f64::next_down } else { f64::next_up };
            (0..ulps.abs()).fold(c, |v, _| step(v))
        })
    });
    // And the values DuckDB and Rust treat differently: infinities, NaN, and one that
    // overflows when doubled.
    let float = prop_oneof![
        Just(0.0),
        Just(-0.0),
        Just(-1.5),
        Just(1e10),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(f64::NAN),
        Just(1e308),
        near,
        -100.0f64..100.0,
    ];
    let text = prop::sample::select(vec!["a", "b", "B", "ab", "", "Zürich"]);
    let day = (0i64..800).prop_map(|n| NaiveDate::from_ymd_opt(2025, 1, 1).unwrap() + chrono::Duration::days(n));
    // Moments anywhere in two years, and next to the boundaries rules draw: the run's
    // midnight and 30 days before it, to the second and the microsecond, and month ends.
    let midnight = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap().and_hms_opt(0, 0, 0).unwrap();
    let edges = vec![
        midnight(AS_OF.0, AS_OF.1, AS_OF.2),
        midnight(2026, 10, 24),
        midnight(2026, 1, 31),
        midnight(2024, 2, 29),
        midnight(2026, 12, 31),
    ];
    let near_edge = (
        prop::sample::select(edges),
        prop::sample::select(vec![-86_400_000_000i64, -1_000_000, -1, 0, 1, 1_000_000, 43_200_000_000]),
    )
        .prop_map(|(t, us)| t + chrono::Duration::microseconds(us));
    let anywhere = (0i64..730 * 86_400).prop_map(move |s| midnight(2025, 6, 1) + chrono::Duration::seconds(s));
    let moment = prop_oneof![near_edge, anywhere];
    (
        prop::option::weighted(0.8, int),
        prop::option::weighted(0.8, float),
        prop::option::weighted(0.8, text),
        prop::option::weighted(0.8, any::<bool>()),
        prop::option::weighted(0.8, day),
        prop::option::weighted(0.8, moment),
    )
        .prop_map(|(i, f, s, b, d, t)| Row { i, f, s, b, d, t })
}

fn num() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("i".to_string()),
        Just("f".to_string()),
        (-5i64..6).prop_map(|n| n.to_string()),
        prop::sample::select(vec!["0.5", "2.25", "0.0", "3.0", "0.9312243053344349", "(1.0 / 3.0)"])
            .prop_map(String::from),
        Just("4611686018427387904".to_string()),
        Just("days_since(d)".to_string()),
        Just("days_until(d)".to_string()),
        Just("quarter(d)".to_string()),
        Just("coalesce(i, 7)".to_string()),
        Just("round(f, 1)".to_string()),
        Just("days_since(t)".to_string()),
        Just("days_until(t)".to_string()),
        Just("hours_since(t)".to_string()),
        Just("hours_between(d, t)".to_string()),
        Just("days_between(t, d)".to_string()),
        Just("months_between(d, t)".to_string()),
        Just("months_between(t, as_of)".to_string()),
        Just("quarter(t)".to_string()),
    ];
    leaf.prop_recursive(3, 16, 2, |inner| {
        prop_oneof![
            (inner.clone(), prop::sample::select(vec!["+", "-", "*", "/"]), inner.clone())
                .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
            inner.clone().prop_map(|a| format!("(-{a})")),
            inner.clone().prop_map(|a| format!("clamp({a}, 0, 10)")),
            inner.clone().prop_map(|a| format!("abs({a})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("min({a}, {b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("max({a}, {b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("pct({a}, {b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("coalesce({a}, {b})")),
        ]
    })
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("s".to_string()),
        Just("\"a\"".to_string()),
        Just("lower(s)".to_string()),
        Just("upper(s)".to_string()),
        Just("(s + \"x\")".to_string()),
    ]
}

fn condition() -> impl Strategy<Value = String> {
    let cmp = prop::sample::select(vec!["<", "<=", ">", ">=", "==", "!="]);
    let leaf = prop_oneof![
        Just("b".to_string()),
        Just("true".to_string()),
        Just("is_missing(i)".to_string()),
        Just("present(s)".to_string()),
        Just("same_quarter(d, as_of)".to_string()),
        Just("(b == true)".to_string()),
        Just("(d < date(\"2026-01-01\"))".to_string()),
        Just("(d >= as_of)".to_string()),
        Just("(t <= add_days(as_of, -30))".to_string()),
        Just("(t > d)".to_string()),
        Just("(d == t)".to_string()),
        Just("(t == datetime(\"2026-10-24 00:00:00\"))".to_string()),
        Just("(t < datetime(\"2026-01-31T12:00\"))".to_string()),
        Just("(start_of_month(t) == start_of_quarter(d))".to_string()),
        Just("(add_months(d, 1) < t)".to_string()),
        Just("(add_months(t, -1) >= add_hours(d, 12))".to_string()),
        Just("(date(t) == d)".to_string()),
        Just("(datetime(d) <= t)".to_string()),
        Just("same_quarter(t, as_of)".to_string()),
        Just("(start_of_year(t) > add_days(t, -100))".to_string()),
        Just("(s in [\"a\", \"B\"])".to_string()),
        Just("(i in [1, 2, 3])".to_string()),
        (num(), cmp.clone(), num()).prop_map(|(a, op, b)| format!("({a} {op} {b})")),
        (text(), cmp, text()).prop_map(|(a, op, b)| format!("({a} {op} {b})")),
    ];
    leaf.prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} && {b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} || {b})")),
            inner.prop_map(|a| format!("(!{a})")),
        ]
    })
}

use super::tests::schema;

fn as_of() -> NaiveDate {
    NaiveDate::from_ymd_opt(AS_OF.0, AS_OF.1, AS_OF.2).unwrap()
}

fn table(rows: &[Row]) -> Connection {
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch("CREATE TABLE kw_entity (i BIGINT, f DOUBLE, s VARCHAR, b BOOLEAN, d DATE, t TIMESTAMP)")
        .unwrap();
    let mut appender = conn.appender("kw_entity").unwrap();
    for r in rows {
        appender.append_row(duckdb::params![r.i, r.f, r.s, r.b, r.d, r.t]).unwrap();
    }
    appender.flush().unwrap();
    drop(appender);
    conn
}

fn scope(r: &Row) -> Scope<'static> {
    let mut scope = Scope::new();
    scope.push_dynamic(super::super::compile::AS_OF, Dynamic::from(as_of()));
    scope.push_dynamic("i", r.i.map_or(Dynamic::UNIT, Dynamic::from_int));
    scope.push_dynamic("f", r.f.map_or(Dynamic::UNIT, Dynamic::from_float));
    scope.push_dynamic("s", r.s.map_or(Dynamic::UNIT, |s| Dynamic::from(s.to_string())));
    scope.push_dynamic("b", r.b.map_or(Dynamic::UNIT, Dynamic::from_bool));
    scope.push_dynamic("d", r.d.map_or(Dynamic::UNIT, Dynamic::from));
    scope.push_dynamic("t", r.t.map_or(Dynamic::UNIT, Dynamic::from));
    scope
}

/// The example that was wrong when timestamps were cut to dates: an event at 00:00:01 on
/// the day 30 days before `as_of` is less than 30 days old. Both paths, every row, and the
/// SQL must run (a fallback would hide a wrong translation).
#[test]
fn timestamps_keep_their_time_of_day_in_both_paths() {
    let engine = super::super::engine::build(as_of(), Default::default());
    let schema = schema();
    let lookups = Lookups::default();
    let at = |s: &str| crate::rules::time::parse_timestamp(s);
    let moments = [
        "2026-10-24 00:00:00",
        "2026-10-24 00:00:01",
        "2026-10-23 23:59:59",
        "2026-10-24 00:00:00.000001",
        "2026-10-24 13:00:00",
        "2026-11-22 23:59:59",
    ];
    let rows: Vec<Row> = moments
        .iter()
        .map(|m| Row { i: None, f: None, s: None, b: None, d: NaiveDate::from_ymd_opt(2026, 10, 24), t: at(m) })
        .collect();
    let cases: [(&str, Want, [&str; 6]); 6] = [
        ("t <= add_days(as_of, -30)", Want::Condition, ["true", "false", "true", "false", "false", "false"]),
        ("days_since(t) >= 30", Want::Condition, ["true", "false", "true", "false", "false", "false"]),
        ("t > d", Want::Condition, ["false", "true", "false", "true", "true", "true"]),
        ("days_since(t)", Want::Number, ["30", "29", "30", "29", "29", "0"]),
        ("hours_since(t)", Want::Number, ["720", "719.9997", "720.0003", "720", "707", "0.0003"]),
        ("months_between(t, datetime(\"2026-11-24 00:00:00\"))", Want::Number, ["1", "0", "1", "0", "0", "0"]),
    ];
    let mut t = Translator::new(&schema, &[], as_of(), &lookups);
    for (source, want, expected) in cases {
        let (file, src) = super::test_source("test.yaml", source);
        let e = match crate::rules::compile::compile_expr(&engine, &file, &src, &schema, &["as_of"], "x") {
            Ok((e, _)) => e,
            Err(d) => panic!("`{source}`: {d:?}"),
        };
        let sql = match want {
            Want::Condition => t.condition(&e),
            _ => t.number(&e),
        }
        .unwrap_or_else(|| panic!("`{source}` translates"));
        let columns = run(&table(&rows), &t, &[(&e, want, sql)], None, &[], rows.len(), &mut BTreeSet::new())
            .unwrap_or_else(|err| panic!("`{source}` runs in SQL: {err}"));
        for (n, r) in rows.iter().enumerate() {
            let rhai = engine.eval_ast_with_scope::<Dynamic>(&mut scope(r), &e.ast).unwrap();
            let (rhai, sql) = match want {
                Want::Condition => (rhai.to_string(), columns.condition(&e, n).unwrap().to_string()),
                _ => (
                    crate::entity::format_float(super::super::engine::number(&rhai).unwrap()),
                    crate::entity::format_float(super::super::engine::number(&columns.value(&e, n).unwrap()).unwrap()),
                ),
            };
            assert_eq!((rhai.as_str(), sql.as_str()), (expected[n], expected[n]), "`{source}` at {}", moments[n]);
        }
    }
}

/// Conditions come back 64 to a column: with more than 64, and numbers among them, each
/// expression still reads its own results.
#[test]
fn many_conditions_share_masks_and_keep_their_own_results() {
    let engine = super::super::engine::build(as_of(), Default::default());
    let schema = schema();
    let lookups = Lookups::default();
    let mut t = Translator::new(&schema, &[], as_of(), &lookups);
    let rows: Vec<Row> = (-3..140)
        .map(|n| Row { i: (n % 7 != 0).then_some(n), f: Some(n as f64 / 2.0), s: None, b: None, d: None, t: None })
        .collect();
    let conditions: Vec<Expr> =
        (0..130).map(|k| compile_for_test(&engine, &schema, &[], &format!("i > {k}")).unwrap()).collect();
    let number = compile_for_test(&engine, &schema, &[], "f * 2").unwrap();
    let mut selected: Vec<(&Expr, Want, String)> =
        conditions.iter().map(|e| (e, Want::Condition, t.condition(e).unwrap())).collect();
    selected.insert(70, (&number, Want::Number, t.number(&number).unwrap()));
    let columns = run(&table(&rows), &t, &selected, None, &[], rows.len(), &mut BTreeSet::new()).unwrap();
    for (n, r) in rows.iter().enumerate() {
        for (k, e) in conditions.iter().enumerate() {
            let expected = r.i.is_some_and(|i| i > k as i64);
            assert_eq!(columns.condition(e, n), Some(expected), "i > {k} on {r:?}");
            assert_eq!(columns.flags(e).map(|f| f.get(n)), Some(expected), "i > {k} on {r:?}");
        }
        let got = columns.value(&number, n).and_then(|v| v.as_float().ok());
        assert_eq!(got, r.f.map(|f| f * 2.0));
    }
}

/// A float compared with a number literal is one `BETWEEN` worked out from rhai's
/// tolerance; with anything else, rhai's formula row by row. Both must accept exactly the
/// doubles rhai accepts: around each constant ulp by ulp, far from it, and infinities and
/// NaN (which rhai's formula rejects, and DuckDB orders above every number).
#[test]
fn float_comparisons_accept_what_rhai_accepts() {
    let engine = super::super::engine::build(as_of(), Default::default());
    let schema = schema();
    let lookups = Lookups::default();
    let constants = [
        "0.5",
        "2.25",
        "3.0",
        "-1.5",
        "59.5",
        "0.1",
        "0.3333333333333333",
        "123456.789",
        "1e-10",
        "-7e-10",
        "1e300",
        "7",
        "-3",
        "0.0",
        "1e-300",
    ];
    let mut values = vec![0.0, -0.0, f64::INFINITY, f64::NEG_INFINITY, f64::NAN, f64::MAX, f64::MIN, 5e-324, 1e-20];
    for c in constants {
        let c: f64 = c.parse().unwrap();
        values.extend([c / 2.0, c * 2.0, -c, c * (1.0 + 1e-15), c * (1.0 - 1e-15)]);
        let (mut down, mut up) = (c, c);
        values.push(c);
        for _ in 0..8 {
            (down, up) = (down.next_down(), up.next_up());
            values.extend([down, up]);
        }
    }
    let rows: Vec<Row> = values
        .iter()
        .enumerate()
        .map(|(n, f)| Row { i: Some(n as i64 % 5), f: Some(*f), s: None, b: None, d: None, t: None })
        .collect();
    let mut sources = Vec::new();
    for op in ["<", "<=", ">", ">=", "==", "!="] {
        sources.push(format!("f {op} i"));
        for c in constants {
            sources.extend([format!("f {op} {c}"), format!("{c} {op} f")]);
        }
    }
    let exprs: Vec<Expr> = sources.iter().map(|src| compile_for_test(&engine, &schema, &[], src).unwrap()).collect();
    let mut t = Translator::new(&schema, &[], as_of(), &lookups);
    let selected: Vec<(&Expr, Want, String)> =
        exprs.iter().map(|e| (e, Want::Condition, t.condition(e).expect("translates"))).collect();
    let between = selected.iter().filter(|(_, _, sql)| sql.contains("BETWEEN")).count();
    assert!(between > sources.len() * 3 / 4, "most comparisons with a constant are one range: {between}");
    let columns = run(&table(&rows), &t, &selected, None, &[], rows.len(), &mut BTreeSet::new()).unwrap();
    for (e, _, sql) in &selected {
        for (n, r) in rows.iter().enumerate() {
            let rhai = engine.eval_ast_with_scope::<Dynamic>(&mut scope(r), &e.ast).unwrap().as_bool().unwrap();
            assert_eq!(columns.condition(e, n), Some(rhai), "`{}` with f = {:?}\nSQL: {sql}", e.source, r.f);
        }
    }
}

/// Both paths for one expression; `Err` from SQL means "falls back", which is always fine.
fn check(source: &str, rows: &[Row], want: Want) -> Result<(), TestCaseError> {
    let engine = super::super::engine::build(as_of(), Default::default());
    let schema = schema();
    let Some(e) = compile_for_test(&engine, &schema, &[], source) else { return Ok(()) };
    let lookups = Lookups::default();
    let mut t = Translator::new(&schema, &[], as_of(), &lookups);
    let sql = match want {
        Want::Condition => t.condition(&e),
        _ => t.number(&e),
    };
    let Some(sql) = sql else { return Ok(()) };
    let conn = table(rows);
    let Ok(columns) = run(&conn, &t, &[(&e, want, sql.clone())], None, &[], rows.len(), &mut BTreeSet::new()) else {
        return Ok(());
    };
    for (n, r) in rows.iter().enumerate() {
        let rhai = engine.eval_ast_with_scope::<Dynamic>(&mut scope(r), &e.ast);
        match want {
            Want::Condition => {
                let expected = match &rhai {
                    Ok(v) if v.is_unit() => Some(false),
                    Ok(v) => v.as_bool().ok(),
                    Err(_) => None,
                };
                let got = columns.condition(&e, n);
                prop_assert_eq!(got, expected, "`{}` on {:?}\nSQL: {}\nrhai: {:?}", source, r, sql, rhai);
            }
            _ => {
                let expected = match &rhai {
                    Ok(v) if v.is_unit() => Some(None),
                    Ok(v) => super::super::engine::number(v).map(Some),
                    Err(_) => None,
                };
                let got = columns.value(&e, n).map(|v| super::super::engine::number(&v));
                let same = match (got, expected) {
                    (Some(Some(a)), Some(Some(b))) => a == b || (a.is_nan() && b.is_nan()),
                    (a, b) => a == b,
                };
                prop_assert!(same, "`{}` on {:?}\nSQL: {}\nrhai: {:?}\ngot {:?}", source, r, sql, rhai, got);
            }
        }
    }
    Ok(())
}

/// Found by `numbers_agree`: whole days were written without brackets, so `hours * days`
/// was read as `(hours * micros) // day` and came out one ulp away.
#[test]
fn hours_times_days_agree_to_the_bit() {
    let t = crate::rules::time::parse_timestamp("2025-06-19 22:28:49");
    let row = Row { i: None, f: None, s: None, b: None, d: None, t };
    for source in ["abs((hours_since(t) * days_since(t)))", "(hours_since(t) * days_since(t))", "(hours_until(t) * 3)"]
    {
        check(source, std::slice::from_ref(&row), Want::Number).unwrap_or_else(|e| panic!("{e}"));
    }
}

/// A script in the translatable shape, from random parts: a let-bound number, an `if`,
/// interpolation of every kind, `money`, list literals, a lookup with a built key.
fn script() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec!["s", "i", "b", "d", "k", "risk.grade", "n", "a"]);
    let int = prop::sample::select(vec!["coalesce(i, 3)", "(i + 1)", "days_since(d)", "quarter(d)", "i", "7"]);
    (num(), int, condition(), condition(), text(), text(), piece.clone(), piece).prop_map(
        |(num, int, c1, c2, t1, t2, p1, p2)| {
            format!(
                "let a = {num};\nlet n = {int};\nlet k = if {c1} {{ {t1} }} else {{ {t2} }};\n\
                 let r = coalesce(lookup(\"rates\", `${{risk.grade}}_${{k}}`, \"rate\"), n);\n\
                 #{{ score: a, grade: k, reasons: [`${{{p1}}} and ${{{p2}}}: ${{r}}`, money(a), k],\n\
                 tags: if {c2} {{ [\"x\", k] }} else {{ [] }} }}"
            )
        },
    )
}

/// Both paths for one script over `rows`, with `grades` as the results of `risk`.
fn check_script(source: &str, rows: &[Row], grades: &[Option<&str>]) -> Result<(), TestCaseError> {
    let engine = super::super::engine::build(as_of(), Default::default());
    let schema = schema();
    let deps = vec!["risk".to_string()];
    let Some(e) = super::script_for_test(&engine, &schema, &["risk"], source) else { return Ok(()) };
    let lookups = super::tests::rates();
    let mut t = Translator::new(&schema, &deps, as_of(), &lookups);
    let Some(sql) = t.script(&e) else { return Ok(()) };
    let risk: Vec<crate::rules::Outcome> = (0..rows.len())
        .map(|n| crate::rules::Outcome {
            grade: grades[n % grades.len()].map(std::sync::Arc::from),
            ..Default::default()
        })
        .collect();
    let conn = table(rows);
    let stored = SetOutcomes::from_outcomes(&risk);
    let Ok(columns) = run(&conn, &t, &[], Some(&sql), &[("risk", &stored)], rows.len(), &mut BTreeSet::new()) else {
        return Ok(());
    };
    let engine = super::super::engine::build(as_of(), std::sync::Arc::new(lookups.clone()));
    for (n, r) in rows.iter().enumerate() {
        let mut scope = scope(r);
        let mut risk_map = rhai::Map::new();
        risk_map
            .insert("grade".into(), risk[n].grade.as_deref().map_or(Dynamic::UNIT, |g| Dynamic::from(g.to_string())));
        scope.push_dynamic("risk", Dynamic::from_map(risk_map));
        let rhai = engine.eval_ast_with_scope::<rhai::Map>(&mut scope, &e.ast);
        let expected = rhai.as_ref().ok().map(crate::rules::outcomes::ScriptResult::of);
        let got = columns.script_result(n);
        prop_assert_eq!(&got, &expected, "script:\n{}\non {:?}\nrhai: {:?}\nSQL: {:?}", source, r, rhai, sql);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn scripts_agree(
        source in script(),
        rows in prop::collection::vec(row(), 1..12),
        grades in prop::collection::vec(prop::option::weighted(0.8, prop::sample::select(vec!["x", "y", ""])), 1..4),
    ) {
        check_script(&source, &rows, &grades)?;
    }

    #[test]
    fn conditions_agree(source in condition(), rows in prop::collection::vec(row(), 1..12)) {
        check(&source, &rows, Want::Condition)?;
    }

    #[test]
    fn numbers_agree(source in num(), rows in prop::collection::vec(row(), 1..12)) {
        check(&source, &rows, Want::Number)?;
    }
}
