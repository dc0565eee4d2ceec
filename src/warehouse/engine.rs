//! The accounts and results another engine computed with `keepwell compile`'s script,
//! read in place of the sources and features: `entity/` and `results/` Parquet under the
//! job's `engine_results:` folder. Both are copied into the warehouse before it is locked
//! (a locked warehouse reads no file), the results as one table a rule set; the entity then
//! becomes the entity view.

use std::path::Path;

use super::{Warehouse, WarehouseError, ident, sql_string};
use crate::config::job::{EngineResults, EntitySpec};
use crate::entity::Schema;

/// The table of the engine's results for rule set `set`, one row per account; the rules
/// stage drops each once it has read it.
pub fn results_table(set: &str) -> String {
    ident(&format!("kw_engine_results_{set}"))
}
const ALL_RESULTS: &str = "kw_engine_results";
const ENTITY_TABLE: &str = "kw_engine_entity";

fn failed(message: String) -> WarehouseError {
    WarehouseError::Load { source_name: "engine_results".into(), message }
}

/// The Parquet files of `part` (`entity` or `results`) under the folder, as DuckDB reads
/// them; an error names the folder when it holds none.
fn files(engine: &EngineResults, part: &str) -> Result<String, WarehouseError> {
    let folder = engine.path.join(part);
    let found = std::fs::read_dir(&folder)
        .map(|entries| entries.flatten().any(|e| e.path().extension().is_some_and(|x| x == "parquet")))
        .unwrap_or(false);
    if !found {
        return Err(WarehouseError::NoFiles {
            source_name: "engine_results".into(),
            pattern: format!("{}/{part}/*.parquet", engine.display),
        });
    }
    Ok(sql_string(&format!("{}/*.parquet", folder.display())))
}

impl Warehouse {
    /// Copies the engine's entity, and its results as one table per rule set of `sets`
    /// ([`results_table`]), into the warehouse; returns the entity's rows.
    pub fn load_engine_results(&self, engine: &EngineResults, sets: &[&str]) -> Result<u64, WarehouseError> {
        let entity = files(engine, "entity")?;
        let results = files(engine, "results")?;
        self.conn.execute_batch(&format!(
            "CREATE TABLE {ENTITY_TABLE} AS SELECT * FROM read_parquet({entity}); \
             CREATE TABLE {ALL_RESULTS} AS SELECT * FROM read_parquet({results});"
        ))?;
        let columns: Vec<String> = {
            let mut stmt = self.conn.prepare(&format!("DESCRIBE {ALL_RESULTS}"))?;
            stmt.query_map([], |r| r.get::<_, String>(0))?.collect::<Result<_, _>>()?
        };
        let wanted = ["account", "rule_set", "score", "grade", "fired", "tags", "reasons", "as_of"];
        if let Some(missing) = wanted.iter().find(|c| !columns.iter().any(|have| have == *c)) {
            return Err(failed(format!(
                "`{}/results` has no column `{missing}`: it was not written by `keepwell compile`'s script",
                engine.display
            )));
        }
        // One table a set, each dropped once read, so the warehouse lets go of the results
        // as the rules stage takes them (at 1M accounts the 9M rows held 0.6 GB).
        for set in sets {
            self.conn.execute(
                &format!("CREATE TABLE {} AS SELECT * FROM {ALL_RESULTS} WHERE rule_set = ?", results_table(set)),
                [set],
            )?;
        }
        self.conn.execute_batch(&format!("DROP TABLE {ALL_RESULTS}; CHECKPOINT kw_warehouse"))?;
        let rows: i64 = self.conn.query_row(&format!("SELECT count(*) FROM {ENTITY_TABLE}"), [], |r| r.get(0))?;
        Ok(rows.max(0) as u64)
    }

    /// The engine's entity as the entity view, checked against the columns the job's
    /// features give (`schema`), then materialised as a run's entity is.
    pub fn engine_entity(&self, spec: &EntitySpec, schema: &Schema, path: &Path) -> Result<(), WarehouseError> {
        self.conn.execute_batch(&format!("CREATE VIEW {} AS SELECT * FROM {ENTITY_TABLE}", ident(&spec.view)))?;
        let found = self.describe(&spec.view)?;
        for (name, ty) in &schema.columns {
            match found.get(name) {
                None => {
                    return Err(failed(format!(
                        "the entity in {} has no column `{name}`, which the job's features give: compile the job again",
                        path.display()
                    )));
                }
                Some(t) if t != ty => {
                    return Err(failed(format!(
                        "column `{name}` of the entity in {} is {t:?}, where the job's features give {ty:?}",
                        path.display()
                    )));
                }
                Some(_) => {}
            }
        }
        self.materialise_entity(spec)?;
        self.conn.execute_batch(&format!("DROP VIEW {}; DROP TABLE {ENTITY_TABLE};", ident(&spec.view)))?;
        // The metrics and outputs read the entity view by name.
        self.conn.execute_batch(&format!("CREATE VIEW {} AS SELECT * FROM kw_entity", ident(&spec.view)))?;
        // Compressed, as a run's entity is once its sources are dropped.
        self.conn.execute_batch("CHECKPOINT kw_warehouse")?;
        Ok(())
    }
}
