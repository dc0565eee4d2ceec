//! A source's files before any row is read: which files match, the first one's header and
//! the types DuckDB reads its columns as, and so the table the source loads into (its
//! [`Layout`]). `check` stops here; a load goes on to read the rows.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::config::diagnostic::{Code, Diagnostic, did_you_mean};
use crate::config::job::{Column, Format, Source, SqlType};

use super::{Reject, Warehouse, WarehouseError, first_line, load_error, sql_string};

/// The table one source loads into.
#[derive(Debug, Clone)]
pub struct Layout {
    pub files: Vec<PathBuf>,
    /// Every column loaded, in the first file's order, typed: as declared, or as DuckDB
    /// reads the file. A strict source loads only its declared columns.
    pub columns: Vec<Column>,
    /// The date and timestamp formats DuckDB's sniffer found in a CSV file, for the columns
    /// whose types were inferred.
    pub date_format: Option<String>,
    pub timestamp_format: Option<String>,
}

/// What DuckDB's CSV sniffer found in a file.
#[derive(Debug, Default)]
struct Sniffed {
    types: HashMap<String, String>,
    date_format: Option<String>,
    timestamp_format: Option<String>,
}

impl Warehouse {
    /// The table `source` loads into, from its declared columns and its first file.
    pub fn layout(&self, source: &Source) -> Result<Layout, WarehouseError> {
        let files = resolve(source)?;
        let header = self.header(source, &files[0])?;
        let names: Vec<String> = header.iter().map(|(n, _)| n.clone()).collect();
        let missing = |column: &str| WarehouseError::MissingColumn {
            source_name: source.name.clone(),
            file: source_display(source, &files[0]),
            column: column.to_string(),
            hint: delimiter_hint(source, &names)
                .or_else(|| did_you_mean(column, names.iter().map(String::as_str)))
                .map(|h| format!(" ({h})"))
                .unwrap_or_default(),
        };
        if let Some(c) = source.columns.iter().find(|c| !names.contains(&c.name)) {
            return Err(missing(&c.name));
        }
        let declared = |name: &str| source.columns.iter().find(|c| c.name == name);
        let (columns, sniffed) = if source.strict {
            (source.columns.clone(), Sniffed::default())
        } else {
            if let Some(twice) = names.iter().enumerate().find(|(i, n)| !n.is_empty() && names[..*i].contains(n)) {
                return Err(WarehouseError::Load {
                    source_name: source.name.clone(),
                    message: format!(
                        "`{}`: the header names `{}` twice; rename one in the extract",
                        source_display(source, &files[0]),
                        twice.1
                    ),
                });
            }
            let inferred = header.iter().any(|(n, _)| declared(n).is_none());
            let sniffed = match source.format {
                Format::Csv if inferred => self.sniff(source, &files[0]),
                _ => Sniffed::default(),
            };
            let columns = header
                .iter()
                .filter(|(n, _)| !n.is_empty())
                .map(|(name, file_type)| match declared(name) {
                    Some(c) => c.clone(),
                    None => {
                        let t = file_type.as_ref().or_else(|| sniffed.types.get(name));
                        Column {
                            name: name.clone(),
                            // A type DuckDB gives that keepwell does not load (a STRUCT in
                            // JSON, say) is read as its text.
                            sql_type: t.and_then(|t| SqlType::parse(t).ok()).unwrap_or_else(SqlType::varchar),
                            span: source.span.clone(),
                        }
                    }
                })
                .collect();
            (columns, sniffed)
        };
        let loaded = |name: &str| columns.iter().any(|c: &Column| c.name == name);
        if let Some(key) = source.primary_key.iter().chain(&source.loaded_at).find(|k| !loaded(k)) {
            return Err(missing(key));
        }
        // The sniffer's formats apply to the inferred columns of their type only.
        let inferred_type = |t: &str| columns.iter().any(|c| declared(&c.name).is_none() && c.sql_type.as_str() == t);
        Ok(Layout {
            date_format: sniffed.date_format.filter(|_| inferred_type("DATE")),
            timestamp_format: sniffed.timestamp_format.filter(|_| inferred_type("TIMESTAMP")),
            files,
            columns,
        })
    }

    /// A file's column names, and for Parquet and JSON the types the file gives them.
    pub(super) fn header(&self, source: &Source, file: &Path) -> Result<Vec<(String, Option<String>)>, WarehouseError> {
        let reader = match source.format {
            // The first line as the source's delimiter splits it: DuckDB's sniffer guessed
            // another delimiter, or no header at all when a later row was ragged, and the
            // load then reported "no column" for a column the header has.
            Format::Csv => return Ok(csv_header(source, file)?.into_iter().map(|n| (n, None)).collect()),
            Format::Parquet => format!("read_parquet({})", sql_string(&file.display().to_string())),
            Format::Json => format!("read_json({}, format = 'auto')", sql_string(&file.display().to_string())),
        };
        let mut stmt =
            self.conn.prepare(&format!("DESCRIBE SELECT * FROM {reader}")).map_err(|e| load_error(source, file, e))?;
        let names = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, Some(r.get::<_, String>(1)?))))
            .map_err(|e| load_error(source, file, e))?;
        names.collect::<Result<Vec<_>, _>>().map_err(|e| load_error(source, file, e))
    }

    /// The types DuckDB's sniffer reads a CSV file's columns as (from its first 20,480
    /// rows), and the date formats it found. A file it cannot sniff gives no types: its
    /// undeclared columns load as text.
    fn sniff(&self, source: &Source, file: &Path) -> Sniffed {
        let sniff =
            format!("sniff_csv({}, header = true{})", sql_string(&file.display().to_string()), delimiter(source));
        let found = (|| -> duckdb::Result<Sniffed> {
            let (date_format, timestamp_format) =
                self.conn.query_row(&format!("SELECT DateFormat, TimestampFormat FROM {sniff}"), [], |r| {
                    Ok((r.get::<_, Option<String>>(0)?, r.get::<_, Option<String>>(1)?))
                })?;
            let mut stmt =
                self.conn.prepare(&format!("SELECT c.name, c.type FROM (SELECT unnest(Columns) AS c FROM {sniff})"))?;
            let types = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
            Ok(Sniffed {
                types: types.collect::<Result<_, _>>()?,
                date_format: date_format.filter(|f| !f.is_empty()),
                timestamp_format: timestamp_format.filter(|f| !f.is_empty()),
            })
        })();
        found.unwrap_or_else(|e| {
            tracing::warn!(source = %source.name, error = %first_line(&e.to_string()), "Column types could not be inferred; undeclared columns load as text.");
            Sniffed::default()
        })
    }
}

/// A layout's problem located in the job file: a missing file at the source's `path:`, a
/// missing column at its declaration (or at `primary_key:`).
pub fn located(source: &Source, e: WarehouseError) -> Diagnostic {
    match e {
        WarehouseError::NoFiles { .. } => Diagnostic::error(Code::SourceFile, source.span.clone(), e.to_string())
            .with_hint(closest_file(source).unwrap_or_else(|| {
                "check the path (relative to the project), or that the extract has been written".into()
            })),
        WarehouseError::MissingColumn { source_name, file, column, hint } => {
            let span = match source.columns.iter().find(|c| c.name == column) {
                Some(c) => c.span.clone(),
                None if source.primary_key.contains(&column) => source.key_span.clone().unwrap_or(source.span.clone()),
                None => source.span.clone(),
            };
            let hint = hint.trim().trim_start_matches('(').trim_end_matches(')').to_string();
            Diagnostic::error(
                Code::SourceColumn,
                span,
                format!("source `{source_name}`: `{file}` has no column `{column}`"),
            )
            .with_hint_opt((!hint.is_empty()).then_some(hint))
        }
        other => Diagnostic::error(Code::SourceFile, source.span.clone(), other.to_string()),
    }
}

pub(super) fn resolve(source: &Source) -> Result<Vec<PathBuf>, WarehouseError> {
    let mut files: Vec<PathBuf> = glob::glob(&source.pattern)
        .map(|paths| paths.filter_map(Result::ok).filter(|p| p.is_file()).collect())
        .unwrap_or_default();
    files.sort();
    if files.is_empty() {
        return Err(WarehouseError::NoFiles { source_name: source.name.clone(), pattern: source.display.clone() });
    }
    Ok(files)
}

/// The file as the user named it: the job's path when it is not a glob.
pub(super) fn source_display(source: &Source, file: &Path) -> String {
    if source.pattern == file.display().to_string() {
        source.display.clone()
    } else {
        let dir = Path::new(&source.display).parent().unwrap_or(Path::new(""));
        dir.join(file.file_name().unwrap_or_default()).display().to_string()
    }
}

/// The delimiter a CSV source is read with.
pub(super) fn delimiter_byte(source: &Source) -> u8 {
    match &source.delimiter {
        Some(d) => d.bytes().next().unwrap_or(b','),
        None if source.display.ends_with(".tsv") => b'\t',
        None => b',',
    }
}

/// A CSV file's header, split by the source's delimiter.
pub(super) fn csv_header(source: &Source, file: &Path) -> Result<Vec<String>, WarehouseError> {
    let fail = |message: String| WarehouseError::Load {
        source_name: source.name.clone(),
        message: format!("`{}`: {message}", source_display(source, file)),
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter_byte(source))
        .flexible(true)
        .from_path(file)
        .map_err(|e| fail(e.to_string()))?;
    let header = reader.byte_headers().map_err(|e| fail(e.to_string()))?;
    header
        .iter()
        .map(|h| {
            String::from_utf8(h.to_vec())
                .map(|h| h.trim().to_string())
                .map_err(|_| fail("the header is not UTF-8 text (save the extract as UTF-8)".into()))
        })
        .collect()
}

/// Gives each empty-key reject of a CSV source its file and line: the rows with an empty
/// key, in file order, are the rejects in order (both come from the same rows).
pub(super) fn locate_missing_keys(source: &Source, files: &[PathBuf], rejects: &mut [Reject]) {
    let mut lines = Vec::new();
    for file in files {
        let Ok(mut reader) = csv::ReaderBuilder::new().delimiter(delimiter_byte(source)).flexible(true).from_path(file)
        else {
            return;
        };
        let Ok(header) = reader.byte_headers().cloned() else { return };
        let keys: Vec<usize> = source
            .primary_key
            .iter()
            .filter_map(|k| header.iter().position(|h| String::from_utf8_lossy(h).trim() == k.as_str()))
            .collect();
        let mut record = csv::ByteRecord::new();
        while let Ok(true) = reader.read_byte_record(&mut record) {
            if keys.iter().any(|&k| record.get(k).is_none_or(|v| v.iter().all(u8::is_ascii_whitespace))) {
                let line = record.position().map(|p| p.line());
                lines.push((source_display(source, file), line));
            }
        }
    }
    if lines.len() == rejects.len() {
        for (reject, (file, line)) in rejects.iter_mut().zip(lines) {
            reject.file = file;
            reject.line = line;
        }
    }
}

/// A hint for a header that came out as one column: the file uses another delimiter.
pub(super) fn delimiter_hint(source: &Source, header: &[String]) -> Option<String> {
    let [only] = header else { return None };
    let used = [';', '\t', '|', ',']
        .into_iter()
        .find(|d| only.contains(*d) && *d as u32 != u32::from(delimiter_byte(source)))?;
    let shown = if used == '\t' { "\\t".to_string() } else { used.to_string() };
    Some(format!(
        "the header is one column: the file seems to use `{shown}` between fields; set `delimiter: \"{shown}\"` on the source"
    ))
}

pub(super) fn delimiter(source: &Source) -> String {
    match &source.delimiter {
        Some(d) => format!(", delim = {}", sql_string(d)),
        None if source.display.ends_with(".tsv") => ", delim = '\t'".into(),
        None => String::new(),
    }
}

/// The file next to a missing one whose name is closest to it: `did you mean
/// `data/accounts.csv`?` for `data/acounts.csv`.
fn closest_file(source: &Source) -> Option<String> {
    let pattern = Path::new(&source.pattern);
    if source.pattern.contains(['*', '?', '[']) {
        return None;
    }
    let wanted = pattern.file_name()?.to_string_lossy().to_string();
    let names: Vec<String> = std::fs::read_dir(pattern.parent()?)
        .ok()?
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    let found = did_you_mean(&wanted, names.iter().map(String::as_str))?;
    let shown = Path::new(&source.display).parent().unwrap_or(Path::new(""));
    let name = found.trim_start_matches("did you mean `").trim_end_matches("`?");
    Some(format!("did you mean `{}`?", shown.join(name).display()))
}
