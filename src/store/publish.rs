//! Publishing a run: its accounts and outcomes staged as Parquet and written, with the
//! rejects, in one transaction.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::NaiveDate;
use duckdb::arrow::array::{
    Array, ArrayRef, Date32Array, Date32Builder, Float64Array, Int64Array, ListBuilder, StringArray, StringBuilder,
};
use duckdb::arrow::datatypes::{DataType, Field, Schema as ArrowSchema};
use duckdb::arrow::record_batch::RecordBatch;
use duckdb::params;
use rayon::prelude::*;

use super::{Store, StoreError};
use crate::entity::{Entity, display_value};
use crate::rules::outcomes::{Chunk, Texts};
use crate::rules::previous::{Previous, grade_since};
use crate::rules::{RuleSet, SetOutcomes};
use crate::warehouse::Reject;

/// What a run publishes.
pub struct Publication<'a> {
    pub run_id: i64,
    pub job: &'a str,
    pub as_of: NaiveDate,
    pub entity: &'a Entity,
    pub rule_sets: &'a [RuleSet],
    pub outcomes: &'a [SetOutcomes],
    pub previous: &'a Previous,
    pub name_column: Option<&'a str>,
    pub owner_column: Option<&'a str>,
    pub arr_column: Option<&'a str>,
    /// A folder for the files the outcomes travel through on their way into the store.
    pub staging: &'a Path,
    pub metrics: &'a crate::metrics::Measured,
}

impl Store {
    /// Writes outcomes, account facts, rule errors and rejects, and publishes the run, in one
    /// transaction.
    pub fn publish(&self, p: &Publication, rejects: &[Reject]) -> Result<(), StoreError> {
        self.conn.execute_batch("BEGIN TRANSACTION")?;
        let result = self.write_publication(p, rejects);
        match result {
            Ok(()) => {
                self.conn.execute("UPDATE runs SET published = true WHERE run_id = ?", params![p.run_id])?;
                let started = std::time::Instant::now();
                self.conn.execute_batch("COMMIT")?;
                // Whatever the commit left to compress waits for a checkpoint, which would
                // otherwise fall on whichever later write fills the WAL: done here, its time
                // counts in the publish stage.
                self.conn.execute_batch("CHECKPOINT")?;
                self.release_cache();
                tracing::debug!(seconds = started.elapsed().as_secs_f64(), "Publication committed.");
                Ok(())
            }
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    fn write_publication(&self, p: &Publication, rejects: &[Reject]) -> Result<(), StoreError> {
        let started = std::time::Instant::now();
        // Each rule set's outcomes become one Parquet file, written on every core, which
        // DuckDB then reads in parallel with its lists as lists: appending the rows through
        // duckdb-rs converted every value on one thread and took more than twice as long.
        // The accounts' facts go the same way, beside them.
        let accounts = p.staging.join("accounts.parquet");
        let (files, staged): (Result<Vec<PathBuf>, StoreError>, Result<(), StoreError>) = rayon::join(
            || {
                (0..p.rule_sets.len())
                    .into_par_iter()
                    .map(|i| {
                        let path = p.staging.join(format!("outcomes-{i}.parquet"));
                        let (schema, batches) = outcomes_batches(p, i);
                        write_parquet_batches(&path, schema, batches, false)?;
                        Ok(path)
                    })
                    .collect()
            },
            || write_parquet(&accounts, &accounts_batch(p)?, false),
        );
        let files = files?;
        staged?;
        tracing::debug!(seconds = started.elapsed().as_secs_f64(), "Outcomes staged.");
        let list: Vec<String> = files.iter().map(|f| crate::warehouse::sql_string(&f.display().to_string())).collect();
        let inserted = self.conn.execute_batch(&format!(
            "INSERT INTO outcomes ({OUTCOME_COLUMNS}) SELECT {OUTCOME_COLUMNS} FROM read_parquet([{}])",
            list.join(", ")
        ));
        for f in &files {
            let _ = std::fs::remove_file(f);
        }
        inserted?;
        tracing::debug!(seconds = started.elapsed().as_secs_f64(), "Outcomes appended.");
        let inserted = self.conn.execute_batch(&format!(
            "INSERT INTO accounts (run_id, account_id, name, owner, arr) \
             SELECT run_id, account_id, name, owner, arr FROM read_parquet({})",
            crate::warehouse::sql_string(&accounts.display().to_string())
        ));
        let _ = std::fs::remove_file(&accounts);
        inserted?;
        tracing::debug!(seconds = started.elapsed().as_secs_f64(), "Accounts appended.");
        let mut errors = self.conn.appender("rule_errors")?;
        for (set, outcomes) in p.rule_sets.iter().zip(p.outcomes) {
            for (row, e) in outcomes.errors() {
                errors.append_row(params![p.run_id, set.name, &*e.rule, &*p.entity.keys[row], e.message])?;
            }
        }
        errors.flush()?;
        drop(errors);
        self.write_metrics(p.run_id, p.job, p.as_of, p.metrics)?;
        self.record_rejects(p.run_id, rejects)
    }
}

const DUCKDB_ROW_GROUP: usize = 122_880;

/// The columns of `outcomes`, in the order the staged files hold them.
const OUTCOME_COLUMNS: &str =
    "run_id, job, as_of, account_id, rule_set, score, grade, grade_since, fired, reasons, tags, errors";

/// Writes `batch` to a Parquet file (Snappy-compressed when `compress`), in row groups of
/// DuckDB's own row-group size: DuckDB then writes each one compressed into the store as it
/// inserts it. With other sizes the partial row groups stayed uncompressed until the next
/// checkpoint, which then took seconds (5-8 s for 9M outcomes).
pub fn write_parquet(path: &Path, batch: &RecordBatch, compress: bool) -> Result<(), StoreError> {
    write_parquet_batches(path, batch.schema(), std::iter::once(Ok(batch.clone())), compress)
}

/// [`write_parquet`] for batches of `schema`, written as they come.
fn write_parquet_batches(
    path: &Path,
    schema: Arc<ArrowSchema>,
    batches: impl Iterator<Item = Result<RecordBatch, StoreError>>,
    compress: bool,
) -> Result<(), StoreError> {
    use parquet::arrow::ArrowWriter;
    use parquet::basic::Compression;
    use parquet::file::properties::WriterProperties;
    let failed = |message: String| StoreError::Staging { path: path.to_path_buf(), message };
    let file = std::fs::File::create(path).map_err(|e| failed(e.to_string()))?;
    let props = WriterProperties::builder()
        .set_compression(if compress { Compression::SNAPPY } else { Compression::UNCOMPRESSED })
        .set_max_row_group_row_count(Some(DUCKDB_ROW_GROUP))
        .build();
    let mut writer = ArrowWriter::try_new(file, schema, Some(props)).map_err(|e| failed(e.to_string()))?;
    for batch in batches {
        writer.write(&batch?).map_err(|e| failed(e.to_string()))?;
    }
    writer.close().map_err(|e| failed(e.to_string()))?;
    Ok(())
}

/// Each account's name, owner and ARR as the run saw them, as text and a number.
fn accounts_batch(p: &Publication) -> Result<RecordBatch, StoreError> {
    let rows = p.entity.len();
    // Chunks of accounts converted on every core.
    let ranges: Vec<(usize, usize)> = (0..rows).step_by(CONVERT).map(|f| (f, (f + CONVERT).min(rows))).collect();
    let text = |column: Option<&str>| -> StringArray {
        let parts: Vec<Vec<Option<String>>> = ranges
            .par_iter()
            .map(|&(from, to)| {
                (from..to)
                    .map(|row| column.map(|c| display_value(&p.entity.value(c, row))).filter(|s| !s.is_empty()))
                    .collect()
            })
            .collect();
        parts.into_iter().flatten().collect()
    };
    let arr: Float64Array = (0..rows)
        .into_par_iter()
        .map(|row| p.arr_column.and_then(|c| crate::rules::engine::number(&p.entity.value(c, row))))
        .collect::<Vec<_>>()
        .into_iter()
        .collect();
    let schema = ArrowSchema::new(vec![
        Field::new("run_id", DataType::Int64, false),
        Field::new("account_id", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("owner", DataType::Utf8, true),
        Field::new("arr", DataType::Float64, true),
    ]);
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(vec![p.run_id; rows])),
        Arc::new(StringArray::from_iter_values(p.entity.keys.iter().map(|k| &**k))),
        Arc::new(text(p.name_column)),
        Arc::new(text(p.owner_column)),
        Arc::new(arr),
    ];
    Ok(RecordBatch::try_new(Arc::new(schema), columns)?)
}

/// Accounts per task when converting values for the store.
const CONVERT: usize = 16 * 1024;

/// The outcomes of the `set`-th rule set, one row per account, a batch per chunk: the
/// results' own arrays with the run's columns beside them.
fn outcomes_batches(
    p: &Publication,
    set: usize,
) -> (Arc<ArrowSchema>, impl Iterator<Item = Result<RecordBatch, StoreError>>) {
    let (rule_set, outcomes) = (&p.rule_sets[set], &p.outcomes[set]);
    // The set's previous results, found once rather than for each account.
    let previous = p.previous.set(&rule_set.name);
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch");
    let days = move |d: NaiveDate| (d - epoch).num_days() as i32;
    let list = || DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
    // The lists are kept as keys into each chunk's texts: lists of a dictionary, unless a
    // chunk kept texts (more than a key holds), when every chunk is written as texts.
    let list_type = |texts: fn(&Chunk) -> &Texts| {
        let mut types = outcomes.chunks().iter().map(|c| texts(c).data_type());
        let first = types.next().unwrap_or_else(list);
        if types.all(|t| t == first) { first } else { list() }
    };
    let fired_type = list_type(|c| &c.fired);
    let reasons_type = list_type(|c| &c.reasons);
    let tags_type = list_type(|c| &c.tags);
    let schema = Arc::new(ArrowSchema::new(vec![
        Field::new("run_id", DataType::Int64, false),
        Field::new("job", DataType::Utf8, false),
        Field::new("as_of", DataType::Date32, false),
        Field::new("account_id", DataType::Utf8, false),
        Field::new("rule_set", DataType::Utf8, false),
        Field::new("score", DataType::Float64, true),
        Field::new("grade", DataType::Utf8, true),
        Field::new("grade_since", DataType::Date32, true),
        Field::new("fired", fired_type.clone(), true),
        Field::new("reasons", reasons_type.clone(), true),
        Field::new("tags", tags_type.clone(), true),
        Field::new("errors", list(), true),
    ]));
    let batches = outcomes.chunks().iter().enumerate().map({
        let schema = schema.clone();
        move |(n, chunk)| {
            let first = n * crate::rules::outcomes::CHUNK;
            let rows = chunk.len();
            let keys = &p.entity.keys[first..first + rows];
            let mut since = Date32Builder::with_capacity(rows);
            for (i, key) in keys.iter().enumerate() {
                let grade = chunk.grade.is_valid(i).then(|| chunk.grade.value(i));
                since.append_option(grade_since(grade, previous.and_then(|m| m.get(key)), p.as_of).map(days));
            }
            let mut errors = ListBuilder::new(StringBuilder::new());
            let mut next = chunk.errors().peekable();
            for i in 0..rows {
                while let Some((_, e)) = next.next_if(|(row, _)| *row == i) {
                    errors.values().append_value(format!("{}: {}", e.rule, e.message));
                }
                errors.append(true);
            }
            let list = |texts: &Texts, to: &DataType| -> Result<ArrayRef, StoreError> {
                let array: ArrayRef = Arc::new(texts.to_list_array());
                Ok(if array.data_type() == to { array } else { duckdb::arrow::compute::cast(&array, to)? })
            };
            let columns: Vec<ArrayRef> = vec![
                Arc::new(Int64Array::from(vec![p.run_id; rows])),
                Arc::new(StringArray::from_iter_values(std::iter::repeat_n(p.job, rows))),
                Arc::new(Date32Array::from(vec![days(p.as_of); rows])),
                Arc::new(StringArray::from_iter_values(keys.iter().map(|k| &**k))),
                Arc::new(StringArray::from_iter_values(std::iter::repeat_n(rule_set.name.as_str(), rows))),
                Arc::new(chunk.score.clone()),
                Arc::new(chunk.grade.clone()),
                Arc::new(since.finish()),
                list(&chunk.fired, &fired_type)?,
                list(&chunk.reasons, &reasons_type)?,
                list(&chunk.tags, &tags_type)?,
                Arc::new(errors.finish()),
            ];
            Ok(RecordBatch::try_new(schema.clone(), columns)?)
        }
    });
    (schema, batches)
}
