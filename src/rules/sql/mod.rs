//! Vectorised evaluation: rule expressions that fall in a translatable subset are compiled
//! to DuckDB SQL and evaluated in the warehouse as whole columns; everything else runs in
//! rhai, row by row. Both paths give the same results.
//!
//! The subset: literals, columns, `as_of`, other rule sets' `grade`, `score`, `tags` and
//! `fired`; `+ - * /` and unary minus; comparisons; `&& || !`; `in` lists and `??`; the
//! helpers `is_missing`, `present`, `coalesce`, `days_since`, `days_until`,
//! `days_between`, `same_quarter`, `quarter`, `add_days`, `clamp`, `round`, `abs`, `min`,
//! `max`, `pct`, `lower`, `upper`, `in_list`, `date`, `today`, `money` and `lookup` (a table
//! column with a text key, read from a MAP literal of the table). Scripts made of `let`
//! bindings and a final result map translate too (see [`Translator::script`]).
//!
//! How the rhai semantics carry over:
//! - a comparison with a missing value is false: every comparison is `coalesce(.., false)`;
//! - arithmetic with a missing value is missing: SQL's NULL propagation;
//! - `/` divides exactly and by zero gives a missing value: `CAST(a AS DOUBLE) / nullif(b, 0)`;
//! - integers are 64-bit in both; where rhai would stop with an error for one account (an
//!   overflow), the SQL raises an error too, and the whole rule set falls back to rhai,
//!   which records the error against that account; `&&`, `||` and `!` on a value that can
//!   be missing (a bare boolean column) stay in rhai, where that is an error;
//! - text compares byte by byte in both; `round` uses the same formula (`round(x * 10^d) /
//!   10^d`, halves away from zero).

mod assemble;
mod columns;
mod semantics;
mod time;
mod translate;

pub use assemble::{AS_OF_VARIABLE, SetQuery, assemble};
pub use columns::{Column, Columns, Flags};
pub use translate::{ListField, ScriptSql, Translator};

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use chrono::NaiveDate;
use duckdb::Connection;
use duckdb::arrow::array::{Array, AsArray};
use duckdb::arrow::datatypes::DataType;

use crate::entity::Schema;
use crate::rules::lookup::Lookups;
use crate::rules::{Body, Expr, Points, RuleSet, Scoring, SetOutcomes};

use columns::{ScriptColumns, key};
use semantics::*;

/// What kind of result an expression gives where the rule set uses it.
#[derive(Clone, Copy)]
pub(super) enum Want {
    Condition,
    Number,
    Text,
}

/// Every expression of a rule set with the role it plays.
pub(super) fn expressions(set: &RuleSet) -> Vec<(&Expr, Want)> {
    let mut out = Vec::new();
    match &set.body {
        Body::Points(rules) => {
            for r in rules.iter().filter(|r| r.enabled) {
                out.push((&r.when, Want::Condition));
                if let Points::Computed(e) = &r.points {
                    out.push((e, Want::Number));
                }
            }
        }
        Body::Scorecard(measures) => {
            for m in measures {
                match &m.scoring {
                    Scoring::Direct(e) | Scoring::Bands { value: e, .. } => out.push((e, Want::Number)),
                    Scoring::Map { value, .. } => out.push((value, Want::Text)),
                }
            }
        }
        Body::Classification { classes, .. } => out.extend(classes.iter().map(|c| (&c.when, Want::Condition))),
        Body::Script(_) => {}
    }
    out
}

/// Every expression of a rule set except a script's.
pub fn expressions_of(set: &RuleSet) -> Vec<&Expr> {
    expressions(set).into_iter().map(|(e, _)| e).collect()
}

/// Which of a rule set's expressions translate to SQL, by rule id: for `explain`.
pub fn paths(set: &RuleSet, schema: &Schema, as_of: NaiveDate, lookups: &Lookups) -> HashMap<String, bool> {
    let mut t = Translator::new(schema, &set.depends_on, as_of, lookups);
    let mut out = HashMap::new();
    let mut note = |id: &str, ok: bool| {
        let e = out.entry(id.to_string()).or_insert(true);
        *e = *e && ok;
    };
    match &set.body {
        Body::Points(rules) => {
            for r in rules {
                let mut ok = t.condition(&r.when).is_some();
                if let Points::Computed(e) = &r.points {
                    ok = ok && t.number(e).is_some();
                }
                note(&r.id, ok);
            }
        }
        Body::Scorecard(measures) => {
            for m in measures {
                let ok = match &m.scoring {
                    Scoring::Direct(e) | Scoring::Bands { value: e, .. } => t.number(e).is_some(),
                    Scoring::Map { value, .. } => t.text(value).is_some(),
                };
                note(&m.id, ok);
            }
        }
        Body::Classification { classes, .. } => {
            for c in classes {
                note(&c.id, t.condition(&c.when).is_some());
            }
        }
        Body::Script(s) => note("script", t.script(&s.script).is_some()),
    }
    out
}

/// Evaluates the translatable expressions of `set` in the warehouse. `done` holds the
/// outcomes of the rule sets evaluated before, to upload those this one reads. An error
/// (an overflow, a missing value where rhai would stop) gives no columns: the set then
/// runs in rhai.
pub fn evaluate(
    v: &Vectorise,
    set: &RuleSet,
    as_of: NaiveDate,
    done: &[(&str, &SetOutcomes)],
    rows: usize,
    uploaded: &mut BTreeSet<String>,
) -> Columns {
    let (conn, schema, lookups) = (v.conn, v.schema, v.lookups);
    let mut t = Translator::new(schema, &set.depends_on, as_of, lookups);
    let mut selected: Vec<(&Expr, Want, String)> = Vec::new();
    for (e, want) in expressions(set) {
        let sql = match want {
            Want::Condition => t.condition(e),
            Want::Number => t.number(e),
            Want::Text => t.text(e),
        };
        match sql {
            Some(sql) => selected.push((e, want, sql)),
            None => tracing::debug!(rule_set = %set.name, expression = %e.source, "Runs in rhai."),
        }
    }
    let mut total = expressions(set).len();
    let script = match &set.body {
        Body::Script(s) => {
            total += 1;
            let sql = t.script(&s.script);
            if sql.is_none() {
                tracing::debug!(rule_set = %set.name, "The script runs in rhai.");
            }
            sql
        }
        _ => None,
    };
    if selected.is_empty() && script.is_none() {
        return Columns::default();
    }
    let vectorised = selected.len() + usize::from(script.is_some());
    match run(conn, &t, &selected, script.as_ref(), done, rows, uploaded) {
        Ok(columns) => {
            tracing::debug!(rule_set = %set.name, vectorised, expressions = total, "Evaluated in the warehouse.");
            columns
        }
        Err(e) => {
            tracing::debug!(rule_set = %set.name, error = %e, "Vectorised evaluation failed; the rule set runs in rhai.");
            Columns::default()
        }
    }
}

/// Why a rule set's SQL could not give its columns; the set then runs in rhai, which
/// records any error against the account it belongs to.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    #[error("the warehouse failed: {0}")]
    DuckDb(#[from] duckdb::Error),
    #[error("a rule set this one reads was not evaluated")]
    DependencyMissing,
    #[error("{got} rows instead of {expected}")]
    Rows { got: usize, expected: usize },
    #[error("a result column is missing")]
    MissingColumn,
    #[error("a result column holds values of more than one kind")]
    Mixed,
    #[error("unexpected result type {0}")]
    Type(DataType),
}

pub(super) fn run(
    conn: &Connection,
    t: &Translator,
    selected: &[(&Expr, Want, String)],
    script: Option<&ScriptSql>,
    done: &[(&str, &SetOutcomes)],
    rows: usize,
    uploaded: &mut BTreeSet<String>,
) -> Result<Columns, SqlError> {
    let mut joins = String::new();
    for (dep, field) in &t.deps_used {
        let table = dep_table(dep, field);
        if !uploaded.contains(&table) {
            let outcomes = done.iter().find(|(n, _)| n == dep).map(|(_, o)| *o).ok_or(SqlError::DependencyMissing)?;
            let started = std::time::Instant::now();
            upload_field(conn, &table, field, outcomes)?;
            tracing::debug!(rule_set = %dep, field = %field, seconds = started.elapsed().as_secs_f64(), "Results uploaded for the sets that read them.");
            uploaded.insert(table.clone());
        }
        joins.push_str(&format!(" POSITIONAL JOIN {}", ident(&table)));
    }
    // Conditions travel 64 to a column, as the bits of a mask (one column each took longer
    // to sort and read back than to evaluate); the other values one column each.
    let (conditions, values): (Vec<_>, Vec<_>) =
        selected.iter().partition(|(_, want, _)| matches!(want, Want::Condition));
    let masks: Vec<&[&(&Expr, Want, String)]> = conditions.chunks(64).collect();
    let mut select: Vec<String> = masks
        .iter()
        .map(|group| {
            let bits: Vec<String> = group
                .iter()
                .enumerate()
                .map(|(bit, (_, _, sql))| {
                    format!("(CASE WHEN {sql} THEN {}::UBIGINT ELSE 0::UBIGINT END)", 1u64 << bit)
                })
                .collect();
            bits.join(" | ")
        })
        .collect();
    select.extend(values.iter().map(|(_, _, sql)| sql.clone()));
    if let Some(s) = script {
        select.extend(s.score.iter().chain(&s.grade).cloned());
        select.extend(s.lists.iter().map(|(_, sql)| sql.clone()));
    }
    let results = select.len();
    // The overflow checks as one column: `least` evaluates every argument on every row.
    if !t.checks.is_empty() {
        select.push(format!("least({})", t.checks.join(", ")));
    }
    let select: Vec<String> = select.iter().enumerate().map(|(i, sql)| format!("{sql} AS c{i}")).collect();
    // Sorted by row even without joined tables: DuckDB documents a single table's order as
    // kept through SELECT, but at 1M accounts the results of a set that joins nothing came
    // back out of order without it (the bench's check against the SQL baseline caught it).
    let sql = format!("SELECT {} FROM kw_entity e{joins} ORDER BY e.rowid", select.join(", "));
    tracing::trace!(sql = %sql, "Rule set query.");
    let mut stmt = conn.prepare(&sql)?;
    let mut batches = Vec::new();
    crate::warehouse::for_each_batch(&mut stmt, [], |batch| batches.push(batch))?;
    let mut columns = (0..results).map(|i| {
        let mut column = None;
        for batch in &batches {
            append(&mut column, batch.column(i).as_ref())?;
        }
        let column = column.unwrap_or(Column::Bool(Vec::new()));
        match column.len() {
            len if len == rows => Ok(column),
            len => Err(SqlError::Rows { got: len, expected: rows }),
        }
    });
    let mut by_expr = Vec::with_capacity(selected.len());
    for group in &masks {
        let words = match columns.next().ok_or(SqlError::MissingColumn)?? {
            Column::Masks(words) => Arc::new(words),
            empty if empty.len() == 0 => Arc::new(Vec::new()),
            _ => return Err(SqlError::Mixed),
        };
        for (bit, (e, _, _)) in group.iter().enumerate() {
            by_expr.push((key(e), Column::Bit(words.clone(), bit as u32)));
        }
    }
    for (e, _, _) in values {
        by_expr.push((key(e), columns.next().ok_or(SqlError::MissingColumn)??));
    }
    let script = match script {
        Some(s) => Some(ScriptColumns {
            score: s.score.as_ref().map(|_| columns.next().ok_or(SqlError::MissingColumn)).transpose()?.transpose()?,
            grade: s.grade.as_ref().map(|_| columns.next().ok_or(SqlError::MissingColumn)).transpose()?.transpose()?,
            lists: s
                .lists
                .iter()
                .map(|(field, _)| Ok((*field, columns.next().ok_or(SqlError::MissingColumn)??)))
                .collect::<Result<_, SqlError>>()?,
        }),
        None => None,
    };
    Ok(Columns { by_expr, script })
}

pub(super) fn append(column: &mut Option<Column>, a: &dyn Array) -> Result<(), SqlError> {
    match a.data_type() {
        DataType::Boolean => {
            let a = a.as_boolean();
            let Column::Bool(v) = column.get_or_insert_with(|| Column::Bool(Vec::new())) else {
                return Err(SqlError::Mixed);
            };
            v.extend((0..a.len()).map(|i| a.is_valid(i) && a.value(i)));
        }
        DataType::UInt64 => {
            let a = a.as_primitive::<duckdb::arrow::datatypes::UInt64Type>();
            let Column::Masks(v) = column.get_or_insert_with(|| Column::Masks(Vec::new())) else {
                return Err(SqlError::Mixed);
            };
            v.extend((0..a.len()).map(|i| if a.is_valid(i) { a.value(i) } else { 0 }));
        }
        DataType::Float64 => {
            let a = a.as_primitive::<duckdb::arrow::datatypes::Float64Type>();
            let Column::Number(v) = column.get_or_insert_with(|| Column::Number(Vec::new())) else {
                return Err(SqlError::Mixed);
            };
            v.extend((0..a.len()).map(|i| a.is_valid(i).then(|| a.value(i))));
        }
        DataType::Utf8 => {
            let a = a.as_string::<i32>();
            let Column::Text(v) = column.get_or_insert_with(|| Column::Text(Vec::new())) else {
                return Err(SqlError::Mixed);
            };
            v.extend((0..a.len()).map(|i| a.is_valid(i).then(|| a.value(i).to_string())));
        }
        DataType::List(_) => {
            let a = a.as_list::<i32>();
            let Column::List(v) = column.get_or_insert_with(|| Column::List(Vec::new())) else {
                return Err(SqlError::Mixed);
            };
            // Read through the offsets: slicing each row's list allocates.
            let items = a.values().as_string_opt::<i32>().ok_or(SqlError::Mixed)?;
            let offsets = a.value_offsets();
            v.reserve(a.len());
            for i in 0..a.len() {
                let (from, to) = (offsets[i] as usize, offsets[i + 1] as usize);
                let list = if a.is_valid(i) { from..to } else { 0..0 };
                v.push(
                    list.map(|j| if items.is_valid(j) { items.value(j).to_string() } else { String::new() }).collect(),
                );
            }
        }
        DataType::Null => {
            // An all-NULL column (`CAST(NULL AS ..)` folded away): missing everywhere.
            let Column::Number(v) = column.get_or_insert_with(|| Column::Number(Vec::new())) else {
                return Err(SqlError::Mixed);
            };
            v.extend((0..a.len()).map(|_| None));
        }
        other => return Err(SqlError::Type(other.clone())),
    }
    Ok(())
}

/// Drops the tables of rule-set results uploaded during a run's rules stage.
pub fn drop_uploaded(conn: &Connection, uploaded: &BTreeSet<String>) {
    for table in uploaded {
        let _ = conn.execute_batch(&format!("DROP TABLE IF EXISTS {}", ident(table)));
    }
}

/// The view of a rule set's results by account in a compiled job (`keepwell compile`).
pub fn dep_view(set: &str) -> String {
    format!("kw_rs_{set}")
}

/// The table holding one field of a rule set's results, row by row.
pub(super) fn dep_table(set: &str, field: &str) -> String {
    format!("d_{set}__{field}")
}

/// One field of a rule set's results (`grade`, `score`, `tags` or `fired`) as a one-column
/// table in row order, for the sets that read it: only what they read is uploaded.
/// Uploads one field of a rule set's results as a one-column table `table`, in row order.
pub fn upload_field(conn: &Connection, table: &str, field: &str, outcomes: &SetOutcomes) -> duckdb::Result<()> {
    use duckdb::arrow::array::{ArrayRef, Float64Builder, StringBuilder};
    use std::sync::Arc;
    let (column, ty, sql_type): (ArrayRef, DataType, &str) = match field {
        "grade" => {
            let mut b = StringBuilder::with_capacity(outcomes.len(), outcomes.len() * 8);
            outcomes.iter().for_each(|o| b.append_option(o.grade()));
            (Arc::new(b.finish()), DataType::Utf8, "VARCHAR")
        }
        "score" => {
            let mut b = Float64Builder::with_capacity(outcomes.len());
            outcomes.iter().for_each(|o| b.append_option(o.score()));
            (Arc::new(b.finish()), DataType::Float64, "DOUBLE")
        }
        _ => {
            // Lists travel as text joined by a separator no tag or rule id holds.
            let mut b = StringBuilder::new();
            for o in outcomes.iter() {
                let list = if field == "tags" { o.tags() } else { o.fired() };
                b.append_value(list.iter().collect::<Vec<_>>().join("\u{1f}"));
            }
            (Arc::new(b.finish()), DataType::Utf8, "VARCHAR")
        }
    };
    let name = ident(table);
    let staged = matches!(field, "grade" | "score");
    let target = if staged { name.clone() } else { "kw_dep".to_string() };
    conn.execute_batch(&format!("CREATE OR REPLACE TEMP TABLE {target} (v {sql_type})"))?;
    let schema = duckdb::arrow::datatypes::Schema::new(vec![duckdb::arrow::datatypes::Field::new("v", ty, true)]);
    let batch = duckdb::arrow::record_batch::RecordBatch::try_new(Arc::new(schema), vec![column])
        .map_err(|e| duckdb::Error::ToSqlConversionFailure(Box::new(e)))?;
    {
        let mut appender = conn.appender(if staged { table } else { "kw_dep" })?;
        appender.append_record_batch(batch)?;
        appender.flush()?;
    }
    if staged {
        return conn.execute_batch(&format!("ALTER TABLE {name} RENAME COLUMN v TO {}", ident(field)));
    }
    conn.execute_batch(&format!(
        "CREATE OR REPLACE TEMP TABLE {name} AS SELECT CASE WHEN v = '' THEN []::VARCHAR[] ELSE string_split(v, chr(31)) END AS {} FROM kw_dep; \
         DROP TABLE kw_dep;",
        ident(field)
    ))
}

/// The warehouse connection and what translation needs, for the rules stage.
pub struct Vectorise<'a> {
    pub conn: &'a Connection,
    pub schema: &'a Schema,
    pub lookups: &'a Lookups,
}

/// Compiles `source` as a rule expression over `schema` and the rule sets `names`, as a rule
/// file would be (for tests).
pub fn compile_for_test(engine: &rhai::Engine, schema: &Schema, names: &[&str], source: &str) -> Option<Expr> {
    let (file, src) = test_source("test.yaml", source);
    let names: Vec<&str> = names.iter().copied().chain([crate::rules::compile::AS_OF]).collect();
    crate::rules::compile::compile_expr(engine, &file, &src, schema, &names, "a test expression").ok().map(|(e, _)| e)
}

/// Compiles `source` as a rule set's script (for tests).
pub fn script_for_test(engine: &rhai::Engine, schema: &Schema, names: &[&str], source: &str) -> Option<Expr> {
    let (file, src) = test_source("test.rhai", source);
    let names: Vec<&str> = names.iter().copied().chain([crate::rules::compile::AS_OF]).collect();
    crate::rules::compile::compile_script(engine, &file, &src, schema, &names, "a test script").ok()
}

/// `source` as if read from a file named `name`, without a location in it.
pub(super) fn test_source(
    name: &str,
    source: &str,
) -> (crate::config::diagnostic::SourceFile, serde_saphyr::Spanned<String>) {
    let file =
        crate::config::diagnostic::SourceFile::new(name.to_string(), std::path::Path::new(name), source.to_string());
    let src = serde_saphyr::Spanned {
        value: source.to_string(),
        referenced: serde_saphyr::Location::UNKNOWN,
        defined: serde_saphyr::Location::UNKNOWN,
    };
    (file, src)
}

#[cfg(test)]
mod differential;
#[cfg(test)]
mod tests;
