use super::translate::*;
use super::*;
use crate::entity::{ColumnType, Schema};
use crate::rules::lookup::Lookups;
use chrono::NaiveDate;

/// The columns test expressions read: one of each kind.
pub(super) fn schema() -> Schema {
    Schema {
        columns: vec![
            ("i".into(), ColumnType::Integer),
            ("f".into(), ColumnType::Float),
            ("s".into(), ColumnType::Text),
            ("b".into(), ColumnType::Bool),
            ("d".into(), ColumnType::Date),
            ("t".into(), ColumnType::Timestamp),
            ("country".into(), ColumnType::Text),
        ],
    }
}

fn translate(src: &str, want: Want) -> Option<String> {
    let lookups = Lookups::default();
    let engine = super::super::engine::build(NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(), Default::default());
    let schema = schema();
    let deps = vec!["risk".to_string()];
    let e = compile_for_test(&engine, &schema, &["risk", "prev"], src).expect("compiles");
    let mut t = Translator::new(&schema, &deps, NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(), &lookups);
    match want {
        Want::Condition => t.condition(&e),
        Want::Number => t.number(&e),
        Want::Text => t.text(&e),
    }
}

/// The lookup table scripts in these tests read.
pub(super) fn rates() -> Lookups {
    // A folder of its own for each call: tests run on several threads at once.
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    std::fs::write(dir.join("rates.csv"), "segment,rate\nx_a,75\nx_b,40\n_a,5\n").unwrap();
    let (lookups, diags) = Lookups::load(dir, dir);
    assert!(diags.is_empty());
    lookups
}

const SCRIPT: &str = r#"
    let marked = b == true;
    let key = coalesce(s, "a");
    let rate = if marked { 0 } else { lookup("rates", `${risk.grade}_${key}`, "rate") };
    let rate = coalesce(rate, 100);
    let kept = coalesce(f, 0.0) * rate / 100;
    let note = if marked { ": marked" } else { "" };
    #{
        score: rate,
        reasons: [`keeps ${money(kept)} of ${money(f)} (${rate}%)${note} on ${d} ${i} ${b}`],
        tags: if rate < 100 { ["churn_risk"] } else { ["growth"] },
    }
"#;

#[test]
fn a_script_of_lets_and_a_map_translates() {
    let engine = super::super::engine::build(NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(), Default::default());
    let schema = schema();
    let deps = vec!["risk".to_string()];
    let e = script_for_test(&engine, &schema, &["risk"], SCRIPT).expect("compiles");
    let lookups = rates();
    let mut t = Translator::new(&schema, &deps, NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(), &lookups);
    let sql = t.script(&e).expect("translates");
    assert!(sql.score.is_some() && sql.grade.is_none());
    assert_eq!(sql.lists.iter().map(|(f, _)| *f).collect::<Vec<_>>(), [ListField::Reasons, ListField::Tags]);
}

#[test]
fn the_subset_translates() {
    let cases = [
        ("i > 3", Want::Condition, Some("CAST(e.\"i\" AS BIGINT) > CAST(3 AS BIGINT)")),
        ("s in [\"a\", \"b\"]", Want::Condition, Some("CAST(e.\"s\" AS VARCHAR) IN ('a', 'b')")),
        ("\"cash\" in risk.tags", Want::Condition, Some("list_contains(\"d_risk__tags\".\"tags\", 'cash')")),
        ("b", Want::Condition, Some("e.\"b\"")),
        (
            "i > 3 && (s == \"a\" || !(i < 9))",
            Want::Condition,
            Some(
                "(CAST(e.\"i\" AS BIGINT) > CAST(3 AS BIGINT) AND (CAST(e.\"s\" AS VARCHAR) = 'a' OR \
                 (NOT (CAST(e.\"i\" AS BIGINT) < CAST(9 AS BIGINT)) IS TRUE)))",
            ),
        ),
        // rhai's tolerance, worked out once: the doubles `f > 2.5` accepts start 2 ulps up.
        (
            "f > 2.5",
            Want::Condition,
            Some(
                "(CAST(CAST(e.\"f\" AS DOUBLE) AS DOUBLE) BETWEEN CAST('2.500000000000001' AS DOUBLE) \
                 AND CAST('1.7976931348623157e308' AS DOUBLE))",
            ),
        ),
        ("b && i > 3", Want::Condition, None),
        (
            "i / 0",
            Want::Number,
            Some(
                "CAST((CAST(CAST(e.\"i\" AS BIGINT) AS DOUBLE) / nullif(CAST(CAST(0 AS BIGINT) AS DOUBLE), 0)) AS DOUBLE)",
            ),
        ),
        ("prev.score > 1", Want::Condition, None),
        ("i % 2 == 0", Want::Condition, None),
        ("i", Want::Condition, None),
    ];
    for (src, want, expected) in cases {
        assert_eq!(translate(src, want).as_deref(), expected, "{src}");
    }
}
