//! `keepwell query "<SQL>"`: read-only SQL over the store, with `entity` (one run's entity
//! snapshot) and `entities` (every run's) as views, printed as a table, CSV or JSON.

use crate::authoring::query::{Kind, Table, query};
use crate::cli::ExitStatus;
use crate::config::project::Project;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// One statement that reads: SELECT, WITH, FROM, DESCRIBE, SHOW, SUMMARIZE...
    sql: String,
    /// The run whose entity snapshot is the view `entity` (default: the latest published).
    #[arg(long)]
    run: Option<i64>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    Table,
    Csv,
    Json,
}

pub fn execute(project: &Project, args: &Args) -> ExitStatus {
    match query(project, &args.sql, args.run) {
        Ok(t) => {
            print!(
                "{}",
                match args.format {
                    Format::Table => table(&t),
                    Format::Csv => csv(&t),
                    Format::Json => json(&t),
                }
            );
            ExitStatus::Success
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitStatus::Config
        }
    }
}

/// Columns padded to their widest cell, numbers to the right; NULL as an empty cell.
fn table(t: &Table) -> String {
    let cells: Vec<Vec<String>> =
        t.rows.iter().map(|r| r.iter().map(|c| c.clone().unwrap_or_default()).collect()).collect();
    let widths: Vec<usize> = (0..t.columns.len())
        .map(|i| cells.iter().map(|r| r[i].chars().count()).chain([t.columns[i].chars().count()]).max().unwrap_or(0))
        .collect();
    let line = |row: &[String]| {
        let padded: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, c)| match t.kinds[i] {
                Kind::Number => format!("{c:>w$}", w = widths[i]),
                _ => format!("{c:<w$}", w = widths[i]),
            })
            .collect();
        padded.join("  ").trim_end().to_string() + "\n"
    };
    let mut out = line(&t.columns);
    out.push_str(&line(&widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>()));
    for row in &cells {
        out.push_str(&line(row));
    }
    out.push_str(&format!("({} row{})\n", t.rows.len(), if t.rows.len() == 1 { "" } else { "s" }));
    out
}

fn csv(t: &Table) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(&t.columns);
    for row in &t.rows {
        let _ = w.write_record(row.iter().map(|c| c.as_deref().unwrap_or("")));
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// An array of objects, one per row: numbers and booleans as JSON's own.
fn json(t: &Table) -> String {
    let rows: Vec<serde_json::Value> = t
        .rows
        .iter()
        .map(|row| {
            let object = row.iter().zip(&t.columns).zip(&t.kinds).map(|((cell, name), kind)| {
                let value = match (cell, kind) {
                    (None, _) => serde_json::Value::Null,
                    (Some(c), Kind::Number) => {
                        serde_json::from_str::<serde_json::Number>(c).map_or_else(|_| c.clone().into(), Into::into)
                    }
                    (Some(c), Kind::Bool) => (c == "true").into(),
                    (Some(c), Kind::Text) => c.clone().into(),
                };
                (name.clone(), value)
            });
            serde_json::Value::Object(object.collect())
        })
        .collect();
    serde_json::to_string_pretty(&rows).unwrap_or_default() + "\n"
}
