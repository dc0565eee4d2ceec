//! The run's warehouse: an in-memory DuckDB database that holds the loaded extracts and the
//! feature views. Once sources are loaded it is locked: no file or network access, and no
//! way to change that from user SQL.

mod engine;
mod files;
pub mod freshness;
mod prepare;
pub mod spark;

pub use engine::results_table;
pub use files::{Layout, located};
pub use prepare::{Found, PrepareError, Sources, fill, load};

use files::{delimiter, delimiter_hint, locate_missing_keys, source_display};

use std::path::{Path, PathBuf};

use duckdb::arrow::array::{Array, ArrayRef, UInt64Array};
use duckdb::arrow::compute::concat;
use duckdb::arrow::record_batch::RecordBatch;
use duckdb::{Connection, Statement};
use rayon::prelude::*;

use crate::config::diagnostic::Code;
use crate::config::diagnostic::{Diagnostic, SourceFile, did_you_mean};
use crate::config::job::{Column, EntitySpec, Feature, Format, Source};
use crate::config::project::WarehouseSettings;
use crate::entity::{ColumnType, Entity, Schema};

/// A row that could not be loaded, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Reject {
    pub source: String,
    pub file: String,
    /// 1-based line (CSV, JSON lines) or row (Parquet) in the file, when known.
    pub line: Option<u64>,
    pub column: Option<String>,
    pub reason: String,
    /// The raw line or value, as read.
    pub raw: Option<String>,
}

impl std::fmt::Display for Reject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(column) = &self.column {
            write!(f, ": column `{column}`")?;
        }
        write!(f, ": {}", self.reason)
    }
}

#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    pub rows: u64,
    pub files: Vec<PathBuf>,
    pub rejects: Vec<Reject>,
}

/// Why a stage of the warehouse failed; each names the source, file or view at fault.
#[derive(Debug, thiserror::Error)]
pub enum WarehouseError {
    #[error("source `{source_name}`: no file matches `{pattern}`")]
    NoFiles { source_name: String, pattern: String },
    #[error("source `{source_name}`: `{file}` has no column `{column}`{hint}")]
    MissingColumn { source_name: String, file: String, column: String, hint: String },
    #[error("source `{source_name}`: {count} rows rejected, more than max_rejects ({max}); first: {first}")]
    TooManyRejects { source_name: String, count: usize, max: u64, first: String },
    #[error(
        "source `{source_name}`: {rows} rows, fewer than its min_rows of {min}: the extract looks empty or cut short, \
         so the run stopped before publishing anything"
    )]
    TooFewRows { source_name: String, rows: u64, min: u64 },
    #[error("source `{source_name}`: duplicate primary key ({key}) in {count} groups: {examples}")]
    DuplicateKeys { source_name: String, key: String, count: u64, examples: String },
    #[error("the entity view `{view}` has {count} accounts with more than one row: {examples}")]
    DuplicateAccounts { view: String, count: u64, examples: String },
    #[error("{0}")]
    Feature(Box<Diagnostic>),
    #[error("source `{source_name}`: {message}")]
    Load { source_name: String, message: String },
    #[error("the warehouse failed: {0}")]
    DuckDb(#[from] duckdb::Error),
}

pub struct Warehouse {
    conn: Connection,
}

/// The warehouse's memory limit unless `warehouse.memory_limit` sets one: beyond it DuckDB
/// spills to the run's folder. Measured on the shipped job at 1M accounts (2 cores), whose
/// sources take 2.1 GB in DuckDB, with the entity compressed once the sources are dropped:
/// with 1.2GB the features take 9.3-10.2 s and the run peaks at 1.40 GiB (in the features);
/// with 1.3GB 9.2-10 s and 1.49 GiB; with 1.6GB 9.1 s and 1.8 GiB. Before the entity was
/// compressed, 1GB took 10.4 s, 2.5GB 7.5-7.9 s (with a 2.6 GB peak) and 3.5GB 5.8 s (4.1
/// GB). DuckDB's own default (80% of the machine) held 4.3 GB. With the features reading only
/// what was known on `as_of` (issue 23) 1.2GB peaked at 1,446 MiB (1.52 GB, over the 1.5 GB
/// target); 1.1GB peaks at 1,340-1,350 MiB with the features in 9.9-11.2 s (10.4 s before).
pub const DEFAULT_MEMORY_LIMIT: &str = "1.1GB";

impl Warehouse {
    /// `spill_dir` is where DuckDB may spill to disk; it becomes readable to feature SQL, so
    /// it must be a folder of keepwell's own (`None`: no spilling).
    pub fn open(settings: &WarehouseSettings, spill_dir: Option<&Path>) -> Result<Self, WarehouseError> {
        let conn = Connection::open_in_memory()?;
        if let Some(threads) = settings.threads {
            conn.execute_batch(&format!("SET threads = {threads}"))?;
        }
        let limit = settings.memory_limit.as_deref().unwrap_or(DEFAULT_MEMORY_LIMIT);
        conn.execute_batch(&format!("SET memory_limit = {}", sql_string(limit)))?;
        // Memory DuckDB frees goes back to the system as it goes, not at exit: otherwise the
        // sources' 2-3 GB at 1M accounts stayed resident through the rest of the run.
        conn.execute_batch("SET allocator_background_threads = true")?;
        // TIMESTAMPTZ values read in UTC in rules and in feature SQL alike, whatever the
        // machine's zone (rules see them as UTC moments).
        conn.execute_batch("SET TimeZone = 'UTC'")?;
        let spill = spill_dir.map_or(String::new(), |d| d.display().to_string());
        conn.execute_batch(&format!("SET temp_directory = {}", sql_string(&spill)))?;
        // An in-memory database that compresses its tables when checkpointed (DuckDB's own
        // in-memory database never does): see [`Warehouse::release_sources`].
        conn.execute_batch("ATTACH ':memory:' AS kw_warehouse (COMPRESS); USE kw_warehouse")?;
        Ok(Warehouse { conn })
    }

    /// Creates `source` as an empty table of the columns it would load, so `check` can
    /// build the feature views and learn the entity's columns without reading any rows.
    /// With `files_required` its files must be there (their headers are read); without, a
    /// source whose files are missing is declared from its `columns:` alone.
    pub fn declare(&self, source: &Source, files_required: bool) -> Result<(), Box<Diagnostic>> {
        for c in &source.columns {
            if let Err(e) = self.conn.execute_batch(&format!("SELECT CAST(NULL AS {})", c.sql_type)) {
                return Err(Box::new(
                    Diagnostic::error(
                        Code::ColumnType,
                        c.span.clone(),
                        format!(
                            "`{}` is not a DuckDB type (column `{}` of source `{}`)",
                            c.sql_type, c.name, source.name
                        ),
                    )
                    .with_hint(first_line(&e.to_string())),
                ));
            }
        }
        let columns = match self.layout(source) {
            Ok(layout) => layout.columns,
            Err(WarehouseError::NoFiles { .. }) if !files_required && !source.columns.is_empty() => {
                source.columns.clone()
            }
            Err(e) => return Err(Box::new(files::located(source, e))),
        };
        let cols: Vec<String> = columns.iter().map(|c| format!("{} {}", ident(&c.name), c.sql_type)).collect();
        self.conn.execute_batch(&format!("CREATE TABLE {} ({})", ident(&source.name), cols.join(", "))).map_err(|e| {
            Box::new(Diagnostic::error(
                Code::Source,
                source.span.clone(),
                format!("source `{}`: {}", source.name, first_line(&e.to_string())),
            ))
        })
    }

    /// Loads one source into a typed table; bad rows become [`Reject`]s, never silent drops.
    pub fn load(&self, source: &Source) -> Result<LoadReport, WarehouseError> {
        let layout = self.layout(source)?;
        let files = &layout.files;
        let mut report = LoadReport { files: files.clone(), ..LoadReport::default() };
        let cols: Vec<String> = layout.columns.iter().map(|c| format!("{} {}", ident(&c.name), c.sql_type)).collect();
        self.conn.execute_batch(&format!("CREATE TABLE {} ({})", ident(&source.name), cols.join(", ")))?;
        for file in files {
            let header: Vec<String> = self.header(source, file)?.into_iter().map(|(n, _)| n).collect();
            // Every file of a glob has the columns the first one gave the table.
            for c in &layout.columns {
                if !header.contains(&c.name) {
                    return Err(WarehouseError::MissingColumn {
                        source_name: source.name.clone(),
                        file: source_display(source, file),
                        column: c.name.clone(),
                        hint: delimiter_hint(source, &header)
                            .or_else(|| did_you_mean(&c.name, header.iter().map(String::as_str)))
                            .map(|h| format!(" ({h})"))
                            .unwrap_or_default(),
                    });
                }
            }
            let rejects = match source.format {
                Format::Csv => self.load_csv(source, &layout, file, &header)?,
                Format::Parquet | Format::Json => self.load_typed(source, &layout.columns, file)?,
            };
            report.rejects.extend(rejects);
        }
        let mut missing = self.reject_missing_keys(source, layout.columns.len())?;
        if !missing.is_empty() && source.format == Format::Csv {
            locate_missing_keys(source, files, &mut missing);
        }
        report.rejects.extend(missing);
        report.rows =
            self.conn.query_row(&format!("SELECT count(*) FROM {}", ident(&source.name)), [], |r| r.get::<_, i64>(0))?
                as u64;
        Ok(report)
    }

    /// After [`Warehouse::load`]: fails when a source has more rejects than it allows, fewer
    /// rows than its `min_rows`, or duplicate primary keys.
    pub fn check_loaded(&self, source: &Source, report: &LoadReport) -> Result<(), WarehouseError> {
        if report.rows < source.min_rows {
            return Err(WarehouseError::TooFewRows {
                source_name: source.name.clone(),
                rows: report.rows,
                min: source.min_rows,
            });
        }
        if report.rejects.len() as u64 > source.max_rejects {
            return Err(WarehouseError::TooManyRejects {
                source_name: source.name.clone(),
                count: report.rejects.len(),
                max: source.max_rejects,
                first: report.rejects[0].to_string(),
            });
        }
        self.check_duplicates(source, report.rows)
    }

    /// DuckDB's CSV reader types the declared columns and keeps each bad row in its reject
    /// tables with file, line and column; undeclared columns are read as text and dropped.
    fn load_csv(
        &self,
        source: &Source,
        layout: &Layout,
        file: &Path,
        header: &[String],
    ) -> Result<Vec<Reject>, WarehouseError> {
        let types: Vec<String> = header
            .iter()
            .map(|h| {
                let t = layout.columns.iter().find(|c| c.name == *h).map_or("VARCHAR", |c| c.sql_type.as_str());
                format!("{}: {}", sql_string(h), sql_string(t))
            })
            .collect();
        let select: Vec<String> = layout.columns.iter().map(|c| ident(&c.name)).collect();
        let mut formats = String::new();
        if let Some(f) = &layout.date_format {
            formats.push_str(&format!(", dateformat = {}", sql_string(f)));
        }
        if let Some(f) = &layout.timestamp_format {
            formats.push_str(&format!(", timestampformat = {}", sql_string(f)));
        }
        let sql = format!(
            "INSERT INTO {table} SELECT {cols} FROM read_csv({file}, header = true, columns = {{{types}}}, store_rejects = true, \
             rejects_table = 'kw_reject_errors', rejects_scan = 'kw_reject_scans', auto_detect = false{delim}{formats})",
            table = ident(&source.name),
            cols = select.join(", "),
            file = sql_string(&file.display().to_string()),
            types = types.join(", "),
            delim = delimiter(source),
        );
        self.conn.execute_batch(&sql).map_err(|e| load_error(source, file, e))?;
        let mut stmt = self.conn.prepare(
            "SELECT e.line, e.column_name, e.error_message, e.csv_line FROM kw_reject_errors e \
             WHERE e.scan_id = (SELECT max(scan_id) FROM kw_reject_scans) ORDER BY e.line, e.column_idx",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(Reject {
                source: source.name.clone(),
                file: source_display(source, file),
                line: r.get::<_, Option<i64>>(0)?.map(|l| l as u64),
                column: r.get(1)?,
                reason: r.get(2)?,
                raw: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Parquet and JSON carry their own types: each declared column is cast, and a value that
    /// does not cast rejects its row.
    fn load_typed(&self, source: &Source, columns: &[Column], file: &Path) -> Result<Vec<Reject>, WarehouseError> {
        let path = sql_string(&file.display().to_string());
        let reader = match source.format {
            Format::Parquet => {
                format!("(SELECT *, file_row_number + 1 AS kw_row FROM read_parquet({path}, file_row_number = true))")
            }
            _ => format!("(SELECT *, row_number() OVER () AS kw_row FROM read_json({path}, format = 'auto'))"),
        };
        self.conn
            .execute_batch(&format!("CREATE OR REPLACE TEMP TABLE kw_raw AS SELECT * FROM {reader}"))
            .map_err(|e| load_error(source, file, e))?;
        let mut rejects = Vec::new();
        for c in columns {
            let col = ident(&c.name);
            let sql = format!(
                "SELECT kw_row, CAST({col} AS VARCHAR) FROM kw_raw WHERE {col} IS NOT NULL AND TRY_CAST({col} AS {t}) IS NULL ORDER BY kw_row",
                t = c.sql_type
            );
            let mut stmt = self.conn.prepare(&sql).map_err(|e| load_error(source, file, e))?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?)))?;
            for row in rows {
                let (line, value) = row?;
                rejects.push(Reject {
                    source: source.name.clone(),
                    file: source_display(source, file),
                    line: Some(line as u64),
                    column: Some(c.name.clone()),
                    reason: format!("could not convert {:?} to {}", value.clone().unwrap_or_default(), c.sql_type),
                    raw: value,
                });
            }
        }
        let casts: Vec<String> =
            columns.iter().map(|c| format!("TRY_CAST({} AS {})", ident(&c.name), c.sql_type)).collect();
        let bad: Vec<String> = rejects.iter().filter_map(|r| r.line).map(|l| l.to_string()).collect();
        let filter = if bad.is_empty() { String::new() } else { format!(" WHERE kw_row NOT IN ({})", bad.join(",")) };
        self.conn.execute_batch(&format!(
            "INSERT INTO {} SELECT {} FROM kw_raw{filter}; DROP TABLE kw_raw",
            ident(&source.name),
            casts.join(", ")
        ))?;
        Ok(rejects)
    }

    /// A row without its primary key cannot be matched to anything: reject it.
    fn reject_missing_keys(&self, source: &Source, n: usize) -> Result<Vec<Reject>, WarehouseError> {
        if source.primary_key.is_empty() {
            return Ok(Vec::new());
        }
        let cond: Vec<String> = source.primary_key.iter().map(|k| format!("{} IS NULL", ident(k))).collect();
        let table = ident(&source.name);
        let cond = cond.join(" OR ");
        let mut stmt = self.conn.prepare(&format!("SELECT CAST(COLUMNS(*) AS VARCHAR) FROM {table} WHERE {cond}"))?;
        let rows = stmt.query_map([], |r| {
            let values: Vec<String> = (0..n)
                .map(|i| r.get::<_, Option<String>>(i).map(|v| v.unwrap_or_default()))
                .collect::<Result<_, _>>()?;
            Ok(values.join(","))
        })?;
        let rejects = rows
            .map(|raw| {
                Ok(Reject {
                    source: source.name.clone(),
                    file: source.display.clone(),
                    line: None,
                    column: Some(source.primary_key.join(", ")),
                    reason: "the primary key is empty".into(),
                    raw: Some(raw?),
                })
            })
            .collect::<Result<Vec<_>, duckdb::Error>>()?;
        if !rejects.is_empty() {
            self.conn.execute_batch(&format!("DELETE FROM {table} WHERE {cond}"))?;
        }
        Ok(rejects)
    }

    fn check_duplicates(&self, source: &Source, rows: u64) -> Result<(), WarehouseError> {
        if source.primary_key.is_empty() {
            return Ok(());
        }
        let key: Vec<String> = source.primary_key.iter().map(|k| ident(k)).collect();
        let key = key.join(", ");
        let t = ident(&source.name);
        // First a 64-bit hash of each key, radix-sorted here, looking for neighbours that are
        // equal: over 30M rows that is under half the time DuckDB took to sort them and
        // compare neighbours (which was itself under half the time of grouping by the key).
        // Equal keys have equal hashes, so no repeated hash means no repeated key; only the
        // rows of a repeated hash are grouped by the key.
        let mut stmt = self.conn.prepare(&format!("SELECT hash({key}) FROM {t}"))?;
        let mut hashes = HashBuckets::new(rows);
        let mut unread = false;
        for_each_batch(&mut stmt, [], |batch| match batch.column(0).as_any().downcast_ref::<UInt64Array>() {
            Some(column) => hashes.extend(column.values()),
            // Not the type `hash` gives: the exact check below decides.
            None => unread = true,
        })?;
        let repeated = unread || hashes.any_repeated();
        drop(hashes);
        if !repeated {
            return Ok(());
        }
        let sql = format!(
            "SELECT CAST(concat_ws(', ', {key}) AS VARCHAR) AS k, n, groups FROM \
             (SELECT {key}, count(*) AS n, count(*) OVER () AS groups FROM {t} \
              WHERE hash({key}) IN (SELECT hash({key}) AS h FROM {t} GROUP BY h HAVING count(*) > 1) \
              GROUP BY {key} HAVING count(*) > 1) \
             ORDER BY n DESC, k LIMIT 5"
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let rows: Vec<(String, i64, i64)> =
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<Result<_, _>>()?;
        if let Some((_, _, groups)) = rows.first() {
            let examples: Vec<String> = rows.iter().map(|(k, n, _)| format!("`{k}` ({n} rows)")).collect();
            return Err(WarehouseError::DuplicateKeys {
                source_name: source.name.clone(),
                key: source.primary_key.join(", "),
                count: *groups as u64,
                examples: examples.join(", "),
            });
        }
        Ok(())
    }

    /// The newest value of a timestamp column, for the freshness gate.
    pub fn newest(&self, table: &str, column: &str) -> Result<Option<chrono::DateTime<chrono::Utc>>, WarehouseError> {
        let sql = format!("SELECT CAST(max({}) AS TIMESTAMPTZ) FROM {}", ident(column), ident(table));
        Ok(self.conn.query_row(&sql, [], |r| r.get(0))?)
    }

    /// After loading, user SQL may read only the loaded tables: no files, no network, no
    /// extension installs, and the settings cannot be changed back.
    pub fn lock(&self) -> Result<(), WarehouseError> {
        self.conn.execute_batch(
            "SET enable_external_access = false; \
             SET autoinstall_known_extensions = false; \
             SET autoload_known_extensions = false; \
             SET lock_configuration = true;",
        )?;
        Ok(())
    }

    /// Feature SQL reads the run's day as `getvariable('as_of')`.
    pub fn set_as_of(&self, as_of: chrono::NaiveDate) -> Result<(), WarehouseError> {
        self.conn.execute_batch(&format!("SET VARIABLE as_of = DATE '{as_of}'"))?;
        Ok(())
    }

    /// Creates each feature as a view, in order.
    pub fn create_features(&self, features: &[Feature]) -> Result<(), Box<Diagnostic>> {
        for f in features {
            let sql = f.sql.trim().trim_end_matches(';');
            if let Err(e) = self.conn.execute_batch(&format!("CREATE VIEW {} AS\n{}", ident(&f.name), sql)) {
                return Err(Box::new(sql_diagnostic(&f.file, &f.name, &e.to_string())));
            }
        }
        Ok(())
    }

    /// The entity view's columns and types.
    pub fn describe(&self, view: &str) -> Result<Schema, duckdb::Error> {
        let mut stmt = self.conn.prepare(&format!("DESCRIBE SELECT * FROM {}", ident(view)))?;
        let columns = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
            .map(|c| c.map(|(n, t)| (n, ColumnType::from_duckdb(&t))))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Schema { columns })
    }

    /// Reads the entity of a past run from its snapshot, as `explain` and `diff` need.
    pub fn read_snapshot(path: &Path, spec: &EntitySpec, schema: Schema) -> Result<Entity, WarehouseError> {
        let warehouse = Warehouse { conn: Connection::open_in_memory()? };
        warehouse.conn.execute_batch(&format!(
            "CREATE VIEW {} AS SELECT * FROM read_parquet({})",
            ident(&spec.view),
            sql_string(&path.display().to_string())
        ))?;
        warehouse.read_entity(spec, schema)
    }

    /// Drops the loaded sources once the entity is materialised: the rest of the run reads
    /// only `kw_entity`, and the sources are most of the memory a run holds. Then compresses
    /// `kw_entity` (a checkpoint of the warehouse's database): at 1M accounts it held 0.55 GB
    /// through the rules and takes about 0.06 GB compressed, for 0.85 s.
    pub fn release_sources<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Result<(), WarehouseError> {
        for name in names {
            self.conn.execute_batch(&format!("DROP TABLE IF EXISTS {}", ident(name)))?;
        }
        let started = std::time::Instant::now();
        self.conn.execute_batch("CHECKPOINT kw_warehouse")?;
        tracing::debug!(seconds = started.elapsed().as_secs_f64(), "Entity compressed.");
        Ok(())
    }

    /// The connection, for evaluating rule expressions as columns over `kw_entity`.
    /// Stops whatever the warehouse is running, from another thread (for time budgets).
    pub fn interrupt_handle(&self) -> std::sync::Arc<duckdb::InterruptHandle> {
        self.conn.interrupt_handle()
    }

    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Reads the entity view once, checking it has one row per account.
    pub fn read_entity(&self, spec: &EntitySpec, schema: Schema) -> Result<Entity, WarehouseError> {
        self.materialise_entity(spec)?;
        self.entity(spec, schema)
    }

    /// Materialises the entity view as `kw_entity` in key order, checking it has one row
    /// per account: after this the sources can go.
    pub fn materialise_entity(&self, spec: &EntitySpec) -> Result<(), WarehouseError> {
        let view = ident(&spec.view);
        let key = ident(&spec.key);
        let started = std::time::Instant::now();
        self.conn.execute_batch(&format!("CREATE TABLE kw_entity AS SELECT * FROM {view} ORDER BY {key}"))?;
        tracing::debug!(seconds = started.elapsed().as_secs_f64(), "Entity materialised.");
        let sql = format!(
            "SELECT CAST({key} AS VARCHAR), count(*) AS n, count(*) OVER () FROM kw_entity GROUP BY ALL HAVING count(*) > 1 ORDER BY n DESC, 1 LIMIT 5"
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let rows: Vec<(Option<String>, i64, i64)> =
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<Result<_, _>>()?;
        if let Some((_, _, groups)) = rows.first() {
            let examples: Vec<String> = rows
                .iter()
                .map(|(k, n, _)| format!("`{}` ({n} rows)", k.clone().unwrap_or_else(|| "NULL".into())))
                .collect();
            return Err(WarehouseError::DuplicateAccounts {
                view: spec.view.clone(),
                count: *groups as u64,
                examples: examples.join(", "),
            });
        }
        tracing::debug!(seconds = started.elapsed().as_secs_f64(), "Entity keys checked.");
        Ok(())
    }

    /// The materialised entity, read into Arrow.
    pub fn entity(&self, spec: &EntitySpec, schema: Schema) -> Result<Entity, WarehouseError> {
        let mut stmt = self.conn.prepare("SELECT * FROM kw_entity")?;
        let mut batches = Vec::new();
        for_each_batch(&mut stmt, [], |batch| batches.push(batch))?;
        let schema_ref = match batches.first() {
            Some(b) => b.schema(),
            None => stmt.schema(),
        };
        let failed = |e: duckdb::arrow::error::ArrowError| WarehouseError::Load {
            source_name: spec.view.clone(),
            message: e.to_string(),
        };
        // Column by column, each column's pieces freed once joined: joining whole batches
        // held the entity twice (0.8 GB at 1M accounts, the run's peak).
        let batch = if batches.is_empty() {
            RecordBatch::new_empty(schema_ref)
        } else {
            let mut pieces: Vec<Vec<ArrayRef>> = vec![Vec::with_capacity(batches.len()); schema_ref.fields().len()];
            for batch in batches {
                for (column, array) in pieces.iter_mut().zip(batch.columns()) {
                    column.push(array.clone());
                }
            }
            let columns = pieces
                .into_iter()
                .map(|column| concat(&column.iter().map(|a| a.as_ref()).collect::<Vec<&dyn Array>>()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(failed)?;
            RecordBatch::try_new(schema_ref, columns).map_err(failed)?
        };
        Entity::new(&spec.key, schema, batch)
            .map_err(|e| WarehouseError::Load { source_name: spec.view.clone(), message: e.to_string() })
    }
}

/// Runs a statement and gives its result to `each` a batch at a time, as DuckDB produces
/// them: DuckDB never holds the whole result (`query_arrow` materialises it first, which
/// held the entity twice over at 1M accounts), and a failure is an error, not a panic.
pub fn for_each_batch<P: duckdb::Params>(
    stmt: &mut Statement,
    params: P,
    mut each: impl FnMut(RecordBatch),
) -> duckdb::Result<()> {
    drop(stmt.stream_arrow(params)?);
    while let Some(array) = stmt.step()? {
        each(RecordBatch::from(&array));
    }
    Ok(())
}

/// 64-bit hashes of a source's keys, kept in 256 buckets by their top byte: equal hashes
/// share a bucket, so each bucket is sorted on its own. Sorting them as one vector needed
/// a copy as large as it (0.24 GB more at 30M rows, on top of the warehouse at its limit).
struct HashBuckets {
    buckets: Vec<Vec<u64>>,
}

impl HashBuckets {
    /// Buckets for about `rows` hashes, each with room for an even share and some more.
    fn new(rows: u64) -> Self {
        let share = usize::try_from(rows / 256).unwrap_or(0);
        HashBuckets { buckets: (0..256).map(|_| Vec::with_capacity(share + share / 16 + 16)).collect() }
    }

    fn extend(&mut self, hashes: &[u64]) {
        for &h in hashes {
            self.buckets[(h >> 56) as usize].push(h);
        }
    }

    fn any_repeated(&mut self) -> bool {
        self.buckets.par_iter_mut().any(|bucket| {
            radsort::sort(bucket);
            bucket.windows(2).any(|w| w[0] == w[1])
        })
    }
}

fn load_error(source: &Source, file: &Path, e: duckdb::Error) -> WarehouseError {
    WarehouseError::Load {
        source_name: source.name.clone(),
        message: format!("`{}`: {}", source_display(source, file), first_line(&e.to_string())),
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or(s).to_string()
}

/// Turns DuckDB's `LINE n:` and caret into a located diagnostic in the feature file
/// (the `CREATE VIEW` wrapper takes line 1, so the file's line n is DuckDB's line n + 1).
pub fn sql_diagnostic(file: &SourceFile, view: &str, message: &str) -> Diagnostic {
    let mut lines = message.lines();
    let headline = lines.next().unwrap_or(message).to_string();
    let mut span = file.start();
    let all: Vec<&str> = message.lines().collect();
    for (i, l) in all.iter().enumerate() {
        if let Some(rest) = l.strip_prefix("LINE ")
            && let Some((n, _)) = rest.split_once(':')
            && let Ok(n) = n.trim().parse::<usize>()
        {
            let prefix = format!("LINE {n}: ");
            let col = all.get(i + 1).and_then(|c| c.find('^')).map_or(1, |c| c.saturating_sub(prefix.len()) + 1);
            if n > 1 {
                span = file.span(n - 1, col, 1);
            }
        }
    }
    let hint = message
        .lines()
        .find(|l| l.starts_with("Candidate bindings") || l.starts_with("Did you mean"))
        .map(str::to_string);
    Diagnostic::error(Code::Feature, span, format!("feature view `{view}` fails: {headline}")).with_hint_opt(hint)
}

pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

pub fn sql_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::HashBuckets;

    /// A repeated hash is found whichever bucket it falls in and however the hashes came
    /// in batches; distinct hashes, including ones that differ only in their top byte or
    /// only in their lowest bit, are not.
    #[test]
    fn hash_buckets_find_exactly_the_repeated_hashes() {
        let distinct: Vec<u64> = (1..10_000u64).map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15)).collect();
        let mut edges = vec![0, 1, u64::MAX, u64::MAX - 1, 1 << 56, (1 << 56) | 1];
        edges.extend(&distinct);
        for rows in [0, edges.len() as u64, 1 << 20] {
            let mut buckets = HashBuckets::new(rows);
            edges.chunks(999).for_each(|batch| buckets.extend(batch));
            assert!(!buckets.any_repeated(), "rows {rows}");
        }
        for repeated in [0, u64::MAX, 1 << 56, distinct[4321]] {
            let mut buckets = HashBuckets::new(edges.len() as u64);
            buckets.extend(&edges);
            buckets.extend(&[repeated]);
            assert!(buckets.any_repeated(), "{repeated:#x}");
        }
    }
}
