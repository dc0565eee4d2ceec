//! The warehouse sequence every command shares, written once: open, load the sources (or
//! declare them empty, to learn the entity's schema), check them and their freshness, lock,
//! set `as_of`, build the features and the entity. `run`, `diff` and `check` all come here,
//! so none of them skips a step another takes.

use std::path::Path;

use chrono::{NaiveDate, Utc};

use super::freshness::{self, Freshness};
use super::{Reject, Warehouse, WarehouseError};
use crate::config::diagnostic::Diagnostic;
use crate::config::job::Job;
use crate::config::project::WarehouseSettings;
use crate::entity::{Entity, Schema};

/// What the sources are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sources {
    /// Loaded from their files, checked and their freshness tested.
    Loaded,
    /// Created as empty tables of the columns they would load, from their files' headers
    /// (which must be there) and declared types: the features then run on no rows, which
    /// is how `check` learns the entity's schema without reading any data.
    Inspected,
    /// As `Inspected`, but a source whose files are missing is declared from its
    /// `columns:` alone (`keepwell test` runs where the extracts are not).
    Declared,
}

/// What loading the sources found, kept by the caller even when loading fails.
#[derive(Debug, Default)]
pub struct Found {
    /// Rows loaded per source, in the job's order.
    pub row_counts: Vec<(String, u64)>,
    pub rejects: Vec<Reject>,
    /// Stale sources that only warn.
    pub warnings: Vec<String>,
}

/// Why preparing the warehouse failed.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error(transparent)]
    Warehouse(#[from] WarehouseError),
    /// Sources declared wrong (their columns), each located in the job file.
    #[error("{}", .0.iter().map(|d| d.message.as_str()).collect::<Vec<_>>().join("; "))]
    Declare(Vec<Diagnostic>),
    /// A source older than its freshness allows.
    #[error("{0}")]
    Stale(String),
}

/// The load stage: opens the warehouse (spilling to `spill`), loads or declares every
/// source of `job`, checks them, locks the warehouse and sets `as_of`. What loading finds
/// goes into `found` as it is found, so a failure keeps the rejects and warnings before it.
pub fn load(
    settings: &WarehouseSettings,
    job: &Job,
    as_of: NaiveDate,
    spill: Option<&Path>,
    sources: Sources,
    found: &mut Found,
) -> Result<Warehouse, PrepareError> {
    let warehouse = Warehouse::open(settings, spill)?;
    fill(&warehouse, job, as_of, sources, found)?;
    Ok(warehouse)
}

/// [`load`] into a warehouse already open: a run opens it first, so the run's watchdog can
/// interrupt a load that outlasts the job's time budget.
pub fn fill(
    warehouse: &Warehouse,
    job: &Job,
    as_of: NaiveDate,
    sources: Sources,
    found: &mut Found,
) -> Result<(), PrepareError> {
    match sources {
        Sources::Inspected | Sources::Declared => {
            // Every source is declared, so each mistake is reported at once.
            let required = sources == Sources::Inspected;
            let wrong: Vec<Diagnostic> =
                job.sources.iter().filter_map(|s| warehouse.declare(s, required).err()).map(|d| *d).collect();
            if !wrong.is_empty() {
                return Err(PrepareError::Declare(wrong));
            }
        }
        Sources::Loaded => load_files(warehouse, job, found)?,
    }
    warehouse.lock()?;
    warehouse.set_as_of(as_of)?;
    Ok(())
}

fn load_files(warehouse: &Warehouse, job: &Job, found: &mut Found) -> Result<(), PrepareError> {
    let fresh = |f: Freshness, warnings: &mut Vec<String>| match f {
        Freshness::Fresh => Ok(()),
        Freshness::Warn(w) => {
            warnings.push(w);
            Ok(())
        }
        Freshness::Fail(e) => Err(PrepareError::Stale(e)),
    };
    for source in &job.sources {
        fresh(freshness::check_files(source, std::time::SystemTime::now()), &mut found.warnings)?;
    }
    for source in &job.sources {
        let report = warehouse.load(source)?;
        if let Some(column) = &source.loaded_at {
            let newest = warehouse.newest(&source.name, column)?;
            fresh(freshness::check_loaded_at(source, newest, Utc::now()), &mut found.warnings)?;
        }
        tracing::info!(source = %source.name, rows = report.rows, rejects = report.rejects.len(), "Source loaded.");
        found.row_counts.push((source.name.clone(), report.rows));
        let started = std::time::Instant::now();
        let checked = warehouse.check_loaded(source, &report);
        tracing::debug!(source = %source.name, seconds = started.elapsed().as_secs_f64(), "Source checked.");
        found.rejects.extend(report.rejects);
        checked?;
    }
    Ok(())
}

impl Warehouse {
    /// The features stage: builds the feature views and materialises the entity, checking
    /// it has one row per account, then lets the sources go (the rest of a run reads only
    /// the entity) and reads it into Arrow.
    pub fn build_entity(&self, job: &Job, schema: Schema) -> Result<Entity, WarehouseError> {
        self.create_features(&job.features).map_err(WarehouseError::Feature)?;
        self.materialise_entity(&job.entity)?;
        self.release_sources(job.sources.iter().map(|s| s.name.as_str()))?;
        self.entity(&job.entity, schema)
    }
}
