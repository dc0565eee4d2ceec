//! Lookup tables: CSV files in `rules/lookups/` that rules read with
//! `lookup("table", key, "column")`, such as the risk weight of each region. The first column
//! is the key. Teams edit these as data, not code.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use rhai::{Dynamic, Engine};

use crate::config::diagnostic::Code;
use crate::config::diagnostic::{Diagnostic, Diagnostics, Span};

#[derive(Debug, Clone, Default)]
pub struct Lookups {
    tables: HashMap<String, Table>,
}

#[derive(Debug, Clone)]
pub struct Table {
    /// The key column first.
    pub columns: Vec<String>,
    rows: HashMap<String, Vec<Dynamic>>,
}

impl Table {
    /// The values of the `index`-th value column (after the key), in no particular order.
    pub fn values(&self, index: usize) -> impl Iterator<Item = &Dynamic> {
        self.rows.values().filter_map(move |r| r.get(index))
    }

    /// Each key with its values.
    pub fn rows(&self) -> impl Iterator<Item = (&String, &Vec<Dynamic>)> {
        self.rows.iter()
    }
}

impl Lookups {
    /// Reads every `*.csv` in `dir`; a missing folder means no lookup tables.
    pub fn load(root: &Path, dir: &Path) -> (Lookups, Diagnostics) {
        let mut lookups = Lookups::default();
        let mut diags = Diagnostics::default();
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .map(|e| {
                e.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "csv"))
                    .collect()
            })
            .unwrap_or_default();
        paths.sort();
        for path in paths {
            let display = crate::config::project::display_path(root, &path);
            let name = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
            match read_table(root, &path) {
                Ok(table) => {
                    lookups.tables.insert(name, table);
                }
                Err(message) => diags.push(Diagnostic::error(
                    Code::Lookup,
                    Span::file_only(&display, &path),
                    format!("lookup table `{display}`: {message}"),
                )),
            }
        }
        (lookups, diags)
    }

    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tables.keys().map(String::as_str)
    }

    /// The value in `column` for `key`; missing when the table, key or column is not there.
    pub fn get(&self, table: &str, key: &Dynamic, column: &str) -> Dynamic {
        let Some(t) = self.tables.get(table) else {
            return Dynamic::UNIT;
        };
        let Some(i) = t.columns.iter().skip(1).position(|c| c == column) else {
            return Dynamic::UNIT;
        };
        if key.is_unit() {
            return Dynamic::UNIT;
        }
        let key = crate::entity::display_value(key);
        t.rows.get(&key).and_then(|r| r.get(i)).cloned().unwrap_or(Dynamic::UNIT)
    }
}

/// Why a lookup table cannot be read.
#[derive(Debug, thiserror::Error)]
enum TableError {
    #[error("{0}")]
    Csv(#[from] csv::Error),
    #[error(transparent)]
    Read(#[from] crate::config::project::ReadError),
    #[error("needs a key column and at least one value column{}", if *.semicolons { " (the header is one column: the file seems to use `;` between fields; lookup tables use `,`)" } else { "" })]
    TooFewColumns { semicolons: bool },
    /// A column of numbers with text among them: lookups of the text give text, which no
    /// comparison with a number holds for, and rules silently stop firing.
    #[error(
        "column `{column}` mixes numbers and text: line {line} has `{value}` (write numbers without separators or units)"
    )]
    Mixed { column: String, line: usize, value: String },
    #[error("line {line}: the key `{key}` appears twice")]
    DuplicateKey { line: usize, key: String },
}

fn read_table(root: &Path, path: &Path) -> Result<Table, TableError> {
    let text = crate::config::project::read_inside(root, path)?;
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let columns: Vec<String> = reader.headers()?.iter().map(|h| h.trim().to_string()).collect();
    if columns.len() < 2 {
        return Err(TableError::TooFewColumns { semicolons: columns.first().is_some_and(|c| c.contains(';')) });
    }
    let mut rows = HashMap::new();
    // Per value column: whether it holds a number, and the first text's line and value.
    let mut kinds: Vec<(bool, Option<(usize, String)>)> = vec![(false, None); columns.len() - 1];
    for (i, record) in reader.records().enumerate() {
        let record = record?;
        let line = i + 2;
        let key = record.get(0).unwrap_or("").trim().to_string();
        if rows.contains_key(&key) {
            return Err(TableError::DuplicateKey { line, key });
        }
        let values: Vec<Dynamic> = record.iter().skip(1).map(parse_value).collect();
        for ((number, text), (v, raw)) in kinds.iter_mut().zip(values.iter().zip(record.iter().skip(1))) {
            if v.is_int() || v.is_float() {
                *number = true;
            } else if v.is_string() {
                text.get_or_insert_with(|| (line, raw.trim().to_string()));
            }
        }
        rows.insert(key, values);
    }
    for (column, kind) in columns.iter().skip(1).zip(kinds) {
        if let (true, Some((line, value))) = kind {
            return Err(TableError::Mixed { column: column.clone(), line, value });
        }
    }
    Ok(Table { columns, rows })
}

/// Numbers become numbers, `true`/`false` booleans, empty cells missing, the rest text.
fn parse_value(s: &str) -> Dynamic {
    let s = s.trim();
    if s.is_empty() {
        Dynamic::UNIT
    } else if let Ok(i) = s.parse::<i64>() {
        Dynamic::from_int(i)
    } else if let Ok(f) = s.parse::<f64>() {
        Dynamic::from_float(f)
    } else if let Ok(b) = s.parse::<bool>() {
        Dynamic::from_bool(b)
    } else {
        Dynamic::from(s.to_string())
    }
}

/// Registers `lookup(...)` and keeps the tables in the engine for compile-time checks.
pub fn register(engine: &mut Engine, lookups: Arc<Lookups>) {
    let shared = lookups.clone();
    engine.register_fn("lookup", move |table: &str, key: Dynamic, column: &str| shared.get(table, &key, column));
    engine.set_default_tag(Dynamic::from(lookups));
}

/// The tables an engine was built with.
pub fn registry(engine: &Engine) -> Option<Arc<Lookups>> {
    engine.default_tag().clone().try_cast::<Arc<Lookups>>()
}
