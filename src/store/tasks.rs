//! Tasks that open and close themselves: each run hands in the (account, rule set, reason)
//! keys whose condition holds, with their state, and the store tells what changed since the
//! task's last event: `opened` for a new key (or one closed longer ago than the cooldown),
//! `updated` for an open task whose state changed, `closed` for an open task whose key no
//! longer holds. Every event is kept in the `tasks` table, so the history is plain SQL and
//! a rerun of the same day, seeing its own events, makes none again.

use std::sync::Arc;

use chrono::NaiveDate;
use duckdb::params;

use super::{Store, StoreError};

/// A key whose condition holds this run, with the task's state.
#[derive(Debug, Clone)]
pub struct TaskNow {
    pub account: Arc<str>,
    pub rule_set: Arc<str>,
    pub reason: Arc<str>,
    pub owner: Option<String>,
    pub grade: Option<Arc<str>>,
    /// A digest of what counts as a change: the grade, the owner and the fields.
    pub state: String,
    /// The fields and reasons, as JSON, sent with the events.
    pub detail: String,
}

/// One tasks output's run: which keys hold, and which (account, rule set) pairs cannot be
/// told (a rule failed for them), whose open tasks are left as they are.
#[derive(Debug, Clone, Default)]
pub struct TaskRun {
    pub output: String,
    pub now: Vec<TaskNow>,
    pub unknown: Vec<(Arc<str>, Arc<str>)>,
    /// A closed task does not open again for this many days.
    pub cooldown_days: Option<i64>,
}

/// An event, as kept in the `tasks` table.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TaskEvent {
    pub task_id: String,
    pub seq: i32,
    pub event: String,
    pub account_id: String,
    pub rule_set: String,
    pub reason: String,
    pub owner: Option<String>,
    pub grade: Option<String>,
    pub detail: Option<String>,
    pub opened_on: NaiveDate,
}

/// What [`Store::track_tasks`] found.
#[derive(Debug, Default)]
pub struct Tracked {
    pub opened: usize,
    pub updated: usize,
    pub closed: usize,
    /// The events, when asked for.
    pub events: Vec<TaskEvent>,
    /// Set when the day is before the output's last event: tasks only move forward.
    pub backfill: Option<NaiveDate>,
}

impl Store {
    /// Compares `run` with each task's last event and, when `record`, keeps the events (in
    /// one transaction). `events` reads them back (for channels and previews).
    pub fn track_tasks(
        &self,
        job: &str,
        as_of: NaiveDate,
        run_id: Option<i64>,
        run: &TaskRun,
        record: bool,
        events: bool,
    ) -> Result<Tracked, StoreError> {
        let latest: Option<NaiveDate> = self.conn.query_row(
            "SELECT max(as_of) FROM tasks WHERE job = ? AND output = ?",
            params![job, run.output],
            |r| r.get(0),
        )?;
        if let Some(last) = latest.filter(|l| *l > as_of) {
            return Ok(Tracked { backfill: Some(last), ..Tracked::default() });
        }
        self.conn.execute_batch(
            "CREATE OR REPLACE TEMP TABLE kw_task_now (account_id VARCHAR, rule_set VARCHAR, reason VARCHAR, owner VARCHAR, \
             grade VARCHAR, state VARCHAR, detail VARCHAR);
             CREATE OR REPLACE TEMP TABLE kw_task_unknown (account_id VARCHAR, rule_set VARCHAR);",
        )?;
        let mut appender = self.conn.appender("kw_task_now")?;
        for t in &run.now {
            appender.append_row(params![
                &*t.account,
                &*t.rule_set,
                &*t.reason,
                t.owner,
                t.grade.as_deref(),
                t.state,
                t.detail
            ])?;
        }
        appender.flush()?;
        drop(appender);
        let mut appender = self.conn.appender("kw_task_unknown")?;
        for (account, set) in &run.unknown {
            appender.append_row(params![&**account, &**set])?;
        }
        appender.flush()?;
        drop(appender);
        let key = "account_id, rule_set, reason";
        self.conn.execute(
            &format!(
                "CREATE OR REPLACE TEMP TABLE kw_task_last AS SELECT * FROM tasks WHERE job = ? AND output = ? \
                 QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY as_of DESC, run_id DESC NULLS FIRST, seq DESC) = 1"
            ),
            params![job, run.output],
        )?;
        // A new task's id: the key and the day it opened, so one that opens again later has
        // another.
        let new_id = "substr(md5(concat_ws(chr(31), ?, ?, n.account_id, n.rule_set, n.reason, CAST(?::DATE AS VARCHAR))), 1, 20)";
        self.conn.execute(
            &format!(
                "CREATE OR REPLACE TEMP TABLE kw_task_events AS
                 SELECT {new_id} AS task_id, 0 AS seq, 'opened' AS event, n.account_id, n.rule_set, n.reason, n.owner,
                        n.grade, n.state, n.detail, ?::DATE AS opened_on
                   FROM kw_task_now n LEFT JOIN kw_task_last l USING ({key})
                  WHERE l.task_id IS NULL OR (l.event = 'closed' AND (?::BIGINT IS NULL OR l.as_of + ?::BIGINT::INTEGER <= ?::DATE))
                 UNION ALL
                 SELECT l.task_id, l.seq + 1, 'updated', n.account_id, n.rule_set, n.reason, n.owner, n.grade, n.state,
                        n.detail, l.opened_on
                   FROM kw_task_now n JOIN kw_task_last l USING ({key})
                  WHERE l.event <> 'closed' AND n.state IS DISTINCT FROM l.state
                 UNION ALL
                 SELECT l.task_id, l.seq + 1, 'closed', l.account_id, l.rule_set, l.reason, l.owner, l.grade, l.state,
                        CAST(l.detail AS VARCHAR), l.opened_on
                   FROM kw_task_last l
                  WHERE l.event <> 'closed'
                    AND NOT EXISTS (SELECT 1 FROM kw_task_now n WHERE n.account_id = l.account_id
                                    AND n.rule_set = l.rule_set AND n.reason = l.reason)
                    AND NOT EXISTS (SELECT 1 FROM kw_task_unknown u WHERE u.account_id = l.account_id
                                    AND u.rule_set = l.rule_set)"
            ),
            params![job, run.output, as_of, as_of, run.cooldown_days, run.cooldown_days, as_of],
        )?;
        let (opened, updated, closed): (i64, i64, i64) = self.conn.query_row(
            "SELECT count(*) FILTER (WHERE event = 'opened'), count(*) FILTER (WHERE event = 'updated'), \
             count(*) FILTER (WHERE event = 'closed') FROM kw_task_events",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let mut tracked = Tracked {
            opened: opened as usize,
            updated: updated as usize,
            closed: closed as usize,
            ..Tracked::default()
        };
        if events {
            let mut stmt = self.conn.prepare(
                "SELECT task_id, seq, event, account_id, rule_set, reason, owner, grade, detail, opened_on \
                 FROM kw_task_events ORDER BY account_id, rule_set, reason",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(TaskEvent {
                    task_id: r.get(0)?,
                    seq: r.get(1)?,
                    event: r.get(2)?,
                    account_id: r.get(3)?,
                    rule_set: r.get(4)?,
                    reason: r.get(5)?,
                    owner: r.get(6)?,
                    grade: r.get(7)?,
                    detail: r.get(8)?,
                    opened_on: r.get(9)?,
                })
            })?;
            tracked.events = rows.collect::<Result<_, _>>()?;
        }
        if record {
            self.conn.execute(
                "INSERT INTO tasks SELECT task_id, seq, ?, ?, account_id, rule_set, reason, event, ?, ?, opened_on, owner, \
                 grade, state, CAST(detail AS JSON), now() FROM kw_task_events",
                params![job, run.output, as_of, run_id],
            )?;
        }
        self.conn.execute_batch(
            "DROP TABLE kw_task_now; DROP TABLE kw_task_unknown; DROP TABLE kw_task_last; DROP TABLE kw_task_events;",
        )?;
        Ok(tracked)
    }
}
