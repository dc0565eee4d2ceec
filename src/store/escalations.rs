//! What each escalation last listed, so `remind_after` repeats an account only when its
//! row changed or the reminder is due.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use chrono::NaiveDate;
use duckdb::arrow::array::{ArrayRef, StringBuilder};
use duckdb::arrow::datatypes::{DataType, Field, Schema as ArrowSchema};
use duckdb::arrow::record_batch::RecordBatch;
use duckdb::params;

use super::{Store, StoreError, write_parquet};
use crate::entity::keys::KeyIndex;

impl Store {
    /// What each escalation of `job` last listed: (output, account) -> (row's state, day
    /// sent), the state as a [`state_digest`].
    pub fn escalated(&self, job: &str) -> Result<EscalatedMap, StoreError> {
        let mut stmt =
            self.conn.prepare("SELECT output, account_id, state, last_sent FROM escalations WHERE job = ?")?;
        let mut escalated = EscalatedMap::default();
        let mut rows = stmt.query(params![job])?;
        while let Some(r) = rows.next()? {
            let (output, account, state): (String, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
            escalated.insert(&output, &account, state_digest(&state), r.get(3)?);
        }
        self.release_cache();
        Ok(escalated)
    }

    /// Remembers what was listed today, for `remind_after`: appended to a staging table and
    /// merged in one statement (row-by-row upserts are slow in DuckDB).
    pub fn record_escalated(
        &self,
        job: &str,
        as_of: NaiveDate,
        listed: &[Escalated],
        staging: &Path,
    ) -> Result<(), StoreError> {
        // Staged as Parquet like the outcomes, so DuckDB compresses the rows as it inserts
        // them (hundreds of thousands at 1M accounts).
        let mut columns = [StringBuilder::new(), StringBuilder::new(), StringBuilder::new(), StringBuilder::new()];
        for e in listed {
            let state = state_text(e.state);
            for (b, v) in columns.iter_mut().zip([&*e.output, &*e.account, &*e.owner, &state]) {
                b.append_value(v);
            }
        }
        let names = ["output", "account_id", "owner", "state"];
        let schema = ArrowSchema::new(names.map(|n| Field::new(n, DataType::Utf8, false)).to_vec());
        let arrays: Vec<ArrayRef> = columns.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef).collect();
        let path = staging.join("escalated.parquet");
        write_parquet(&path, &RecordBatch::try_new(Arc::new(schema), arrays)?, false)?;
        let result = self.conn.execute_batch(&format!(
            "INSERT INTO escalations SELECT {job}, output, account_id, owner, state, DATE '{as_of}', DATE '{as_of}' \
             FROM read_parquet({path}) \
             ON CONFLICT (job, output, account_id) DO UPDATE SET owner = excluded.owner, state = excluded.state, \
             last_sent = excluded.last_sent",
            job = crate::warehouse::sql_string(job),
            path = crate::warehouse::sql_string(&path.display().to_string())
        ));
        let _ = std::fs::remove_file(&path);
        result?;
        Ok(())
    }
}

impl Store {
    /// Every account each escalation's `when` held for in run `run_id`, so `keepwell
    /// validate` can tell what an escalation flagged ahead of an outcome.
    pub fn record_flagged(
        &self,
        run_id: i64,
        job: &str,
        flagged: &[(Arc<str>, Vec<Arc<str>>)],
        staging: &Path,
    ) -> Result<(), StoreError> {
        let (mut outputs, mut accounts) = (StringBuilder::new(), StringBuilder::new());
        for (output, listed) in flagged {
            for account in listed {
                outputs.append_value(output);
                accounts.append_value(account);
            }
        }
        let schema = ArrowSchema::new(["output", "account_id"].map(|n| Field::new(n, DataType::Utf8, false)).to_vec());
        let arrays: Vec<ArrayRef> = vec![Arc::new(outputs.finish()), Arc::new(accounts.finish())];
        let path = staging.join("flagged.parquet");
        write_parquet(&path, &RecordBatch::try_new(Arc::new(schema), arrays)?, false)?;
        let result = self.conn.execute_batch(&format!(
            "DELETE FROM flagged WHERE run_id = {run_id}; \
             INSERT INTO flagged SELECT {run_id}, {job}, output, account_id FROM read_parquet({path})",
            job = crate::warehouse::sql_string(job),
            path = crate::warehouse::sql_string(&path.display().to_string())
        ));
        let _ = std::fs::remove_file(&path);
        result?;
        Ok(())
    }
}

/// What each escalation last listed, by output and account: the row's listed row's state (`outputs::Cells::state`) and
/// the day it was sent. Each output's accounts in a [`KeyIndex`] and digests as numbers: at
/// 1M accounts a map of `String`s took 72 MB for the 265k accounts listed, this 15 MB.
#[derive(Debug, Default)]
pub struct EscalatedMap {
    outputs: HashMap<String, (KeyIndex, Vec<(u128, NaiveDate)>)>,
}

impl EscalatedMap {
    pub fn insert(&mut self, output: &str, account: &str, state: u128, sent: NaiveDate) {
        if !self.outputs.contains_key(output) {
            self.outputs.insert(output.to_string(), Default::default());
        }
        let (accounts, last) = self.outputs.get_mut(output).expect("inserted");
        let slot = accounts.insert(account);
        if slot == last.len() {
            last.push((state, sent));
        } else {
            last[slot] = (state, sent);
        }
    }

    /// The state `output` last listed `account` with, and the day it was sent.
    pub fn get(&self, output: &str, account: &str) -> Option<(u128, NaiveDate)> {
        let (accounts, last) = self.outputs.get(output)?;
        Some(last[accounts.get(account)?])
    }

    pub fn len(&self) -> usize {
        self.outputs.values().map(|(accounts, _)| accounts.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A listed row's state (`outputs::Cells::state`) as the store keeps it: `x3:` and the digest in hex.
pub fn state_text(state: u128) -> String {
    format!("x3:{state:032x}")
}

/// A state as the store kept it, as a digest: stores written before digests kept the row's
/// joined cells themselves, which then still compare equal to an unchanged row.
pub fn state_digest(stored: &str) -> u128 {
    let digest = stored.strip_prefix("x3:").filter(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()));
    match digest {
        Some(hex) => u128::from_str_radix(hex, 16).expect("32 hex digits"),
        None => twox_hash::XxHash3_128::oneshot(stored.as_bytes()),
    }
}

/// An account an escalation listed, to remember for `remind_after`.
#[derive(Debug, Clone)]
pub struct Escalated {
    pub output: Arc<str>,
    pub account: Arc<str>,
    pub owner: Arc<str>,
    /// The row's listed row's state (`outputs::Cells::state`).
    pub state: u128,
}
