//! A job's metrics checked against its entity before any data is read: each SQL field is
//! bound by DuckDB over a view with the entity's columns and the rule sets' results, and
//! what fails is located in the job file where the field is written.

use duckdb::Connection;

use super::{INPUT, RESULT_TYPE, entity_columns};
use crate::config::diagnostic::Code;
use crate::config::diagnostic::{Diagnostic, Diagnostics, Span};
use crate::config::job::{Measure, Metric, Sql};
use crate::entity::Schema;
use crate::warehouse::ident;

/// What a field must give.
#[derive(Clone, Copy, PartialEq)]
enum Gives {
    /// An aggregate number over the accounts.
    Aggregate,
    /// A condition on each account.
    Condition,
    /// A value per account to group by.
    Segment,
    /// A condition on the value and its change.
    Alert,
}

/// Checks every metric over `view` (the entity view, built over the sources' tables),
/// with a struct column of results for each of `sets`.
pub fn check(
    conn: &Connection,
    view: &str,
    schema: &Schema,
    sets: &[&str],
    metrics: &[Metric],
    diags: &mut Diagnostics,
) {
    if metrics.is_empty() {
        return;
    }
    let results: Vec<String> = sets.iter().map(|s| format!("NULL::{RESULT_TYPE} AS {}", ident(s))).collect();
    let columns = std::iter::once(entity_columns(schema, sets)).chain(results).collect::<Vec<_>>().join(", ");
    let created =
        conn.execute_batch(&format!("CREATE OR REPLACE TEMP VIEW {INPUT} AS SELECT {columns} FROM {} e", ident(view)));
    if let Err(e) = created {
        if let Some(m) = metrics.first() {
            diags.push(Diagnostic::error(Code::Warehouse, m.span.clone(), format!("cannot check the metrics: {e}")));
        }
        return;
    }
    for m in metrics {
        let fields: Vec<(&Sql, Gives)> = match &m.measure {
            Measure::Value(v) => vec![(v, Gives::Aggregate)],
            Measure::Rate { numerator, denominator } => {
                vec![(numerator, Gives::Aggregate), (denominator, Gives::Aggregate)]
            }
        }
        .into_iter()
        .chain(m.filter.iter().map(|f| (f, Gives::Condition)))
        .chain(m.by.iter().map(|b| (b, Gives::Segment)))
        .chain(m.alert_when.iter().map(|a| (a, Gives::Alert)))
        .collect();
        for (sql, gives) in fields {
            if let Some(d) = check_field(conn, m, sql, gives) {
                diags.push(d);
            }
        }
    }
    let _ = conn.execute_batch(&format!("DROP VIEW IF EXISTS {INPUT}"));
}

/// The statement a field is checked by; the field's text starts on line 2.
fn statement(sql: &Sql, gives: Gives) -> String {
    let text = &sql.text;
    match gives {
        Gives::Aggregate => format!("DESCRIBE SELECT\n{text}\nFROM {INPUT} GROUP BY ()"),
        Gives::Condition => format!("DESCRIBE SELECT\n{text}\nFROM {INPUT}"),
        Gives::Segment => format!("DESCRIBE SELECT\n{text}\nFROM {INPUT} GROUP BY 1"),
        Gives::Alert => format!(
            "DESCRIBE SELECT\n{text}\nFROM (SELECT NULL::DOUBLE AS value, NULL::DOUBLE AS previous, NULL::DOUBLE AS change, \
             NULL::DOUBLE AS numerator, NULL::DOUBLE AS denominator)"
        ),
    }
}

fn check_field(conn: &Connection, m: &Metric, sql: &Sql, gives: Gives) -> Option<Diagnostic> {
    let field = sql.field;
    let described: Result<String, duckdb::Error> =
        conn.prepare(&statement(sql, gives)).and_then(|mut s| s.query_row([], |r| r.get::<_, String>(1)));
    let ty = match described {
        Ok(ty) => ty,
        Err(e) => {
            let message = e.to_string();
            let headline = message.lines().next().unwrap_or(&message);
            let headline = headline.split_once(" Error: ").map_or(headline, |(_, rest)| rest);
            let hint = message
                .lines()
                .find(|l| {
                    l.starts_with("Candidate bindings")
                        || l.starts_with("Candidate Entries")
                        || l.starts_with("Did you mean")
                })
                .map(str::to_string)
                .or_else(|| hint_for(&message, gives));
            return Some(
                Diagnostic::error(
                    Code::Metric,
                    locate(sql, &message),
                    format!("metric `{}`: `{field}` fails: {headline}", m.name),
                )
                .with_hint_opt(hint),
            );
        }
    };
    let numeric = |t: &str| {
        [
            "TINYINT",
            "SMALLINT",
            "INTEGER",
            "BIGINT",
            "HUGEINT",
            "UTINYINT",
            "USMALLINT",
            "UINTEGER",
            "UBIGINT",
            "UHUGEINT",
            "FLOAT",
            "DOUBLE",
            "DECIMAL",
        ]
        .iter()
        .any(|n| t.starts_with(n))
    };
    let wrong = match gives {
        Gives::Aggregate if !numeric(&ty) => {
            Some(("a number", "an aggregate such as `count(*)`, `sum(arr)` or `avg(health.score)`"))
        }
        Gives::Condition | Gives::Alert if ty != "BOOLEAN" && ty != "\"NULL\"" => {
            Some(("true or false", "a condition such as `segment = 'SMB'` or `change > 0.02`"))
        }
        _ => None,
    };
    wrong.map(|(want, example)| {
        Diagnostic::error(
            Code::Metric,
            sql.map.start(sql.text.lines().next().map_or(1, |l| l.chars().count())),
            format!("metric `{}`: `{field}` gives {}, not {want}", m.name, ty.to_lowercase()),
        )
        .with_hint(format!("`{field}` takes {example}"))
    })
}

fn hint_for(message: &str, gives: Gives) -> Option<String> {
    if message.contains("must appear in the GROUP BY") {
        return Some("a metric's value is one number over all the accounts: aggregate it, as in `sum(arr)`, `count(*)`, `avg(health.score)`".into());
    }
    if message.contains("GROUP BY clause cannot contain aggregates") && gives == Gives::Segment {
        return Some("`by` splits the accounts by a column or an expression of each account's, such as `segment` or `impact.grade`".into());
    }
    if message.contains("aggregate") && gives == Gives::Condition {
        return Some("`where` picks accounts one at a time: it cannot aggregate".into());
    }
    if gives == Gives::Alert && message.contains("not found") {
        return Some("`alert_when` reads `value`, `previous`, `change`, `numerator` and `denominator`".into());
    }
    None
}

/// Where in the field DuckDB's error points: its `LINE n:` and caret (the field starts on
/// line 2 of the statement), or a name it quotes, else the field's start.
fn locate(sql: &Sql, message: &str) -> Span {
    let lines: Vec<&str> = message.lines().collect();
    let text_lines: Vec<&str> = sql.text.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        let Some(rest) = l.strip_prefix("LINE ") else { continue };
        let Some((n, snippet)) = rest.split_once(": ") else { continue };
        let Ok(n) = n.trim().parse::<usize>() else { continue };
        let prefix = l.len() - snippet.len();
        let (caret, width) = match lines.get(i + 1) {
            Some(c) => (c.find('^').unwrap_or(prefix).saturating_sub(prefix), c.matches('^').count().max(1)),
            None => (0, 1),
        };
        // The statement's line n is the field's line n - 1; past its end is its end.
        let Some(line) = n.checked_sub(1).filter(|&k| k >= 1) else { break };
        if line > text_lines.len() {
            let last = text_lines.len().max(1);
            let end = text_lines.last().map_or(1, |t| t.chars().count() + 1);
            return sql.map.span(last, end, 1);
        }
        let text = text_lines[line - 1];
        // A long line is cut to a window around the error, marked by `...`.
        let (core, cut) = match snippet.strip_prefix("...") {
            Some(c) => (c, 3),
            None => (snippet, 0),
        };
        let core = core.strip_suffix("...").unwrap_or(core);
        let start = text.find(core).map_or(0, |s| text[..s].chars().count());
        let col = start + caret.saturating_sub(cut);
        // One caret under a name underlines the whole name.
        let name = text.chars().skip(col).take_while(|c| c.is_alphanumeric() || *c == '_').count();
        return sql.map.span(line, col + 1, if width == 1 { name.max(1) } else { width });
    }
    // `Could not find key "grde" in struct`: the quoted name is in the text.
    if let Some(name) = message.split('"').nth(1)
        && let Some(at) = find_word(&sql.text, name)
    {
        return sql.map.span_at_offset(&sql.text, at, name.chars().count());
    }
    sql.map.start(1)
}

/// The byte offset of `word` in `text` standing alone (not inside a longer name).
fn find_word(text: &str, word: &str) -> Option<usize> {
    let is_name = |c: char| c.is_alphanumeric() || c == '_';
    text.match_indices(word).map(|(i, _)| i).find(|&i| {
        !text[..i].chars().next_back().is_some_and(is_name)
            && !text[i + word.len()..].chars().next().is_some_and(is_name)
    })
}
