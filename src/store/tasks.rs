//! Tasks that open and close themselves: each run hands in the (account, rule set, reason)
//! keys whose condition holds, with their state, and the store tells what changed since the
//! task's last event: `opened` for a new key (or one closed longer ago than the cooldown),
//! `updated` for an open task whose state changed, `closed` for an open task whose key no
//! longer holds. Every event is kept in the `tasks` table, so the history is plain SQL, and
//! each key's last event in `task_state`, which each run reads (one row per key, however
//! long the history), so a rerun of the same day, seeing its own events, makes none again.

use std::collections::{HashMap, HashSet};
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
    pub state: u128,
    /// The fields and reasons, as JSON, sent with the events (one text for the items of an
    /// account's rule set).
    pub detail: Arc<str>,
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
    /// The state digest, as hex.
    pub state: String,
}

/// What [`Store::track_tasks`] found.
#[derive(Debug, Default)]
pub struct Tracked {
    pub opened: usize,
    pub updated: usize,
    pub closed: usize,
    /// The events, in key order.
    pub events: Vec<TaskEvent>,
    /// Set when the day is before the output's last event: tasks only move forward.
    pub backfill: Option<NaiveDate>,
}

/// A key's last event, as `task_state` keeps it.
struct Last {
    task_id: String,
    seq: i32,
    closed: bool,
    as_of: NaiveDate,
    opened_on: NaiveDate,
    owner: Option<String>,
    grade: Option<String>,
    state: String,
}

fn key(account: &str, set: &str, reason: &str) -> String {
    format!("{account}\u{1f}{set}\u{1f}{reason}")
}

impl Store {
    /// Compares `run` with each key's last event and, when `record`, keeps the events in
    /// `tasks` and the keys' new last events in `task_state` (the caller holds the
    /// transaction that keeps them with their posts).
    pub fn track_tasks(
        &self,
        job: &str,
        as_of: NaiveDate,
        run_id: Option<i64>,
        run: TaskRun,
        record: bool,
    ) -> Result<Tracked, StoreError> {
        let latest: Option<NaiveDate> = self.conn.query_row(
            "SELECT max(as_of) FROM task_state WHERE job = ? AND output = ?",
            params![job, run.output],
            |r| r.get(0),
        )?;
        if let Some(last) = latest.filter(|l| *l > as_of) {
            return Ok(Tracked { backfill: Some(last), ..Tracked::default() });
        }
        let mut last = self.task_states(job, &run.output)?;
        let unknown: HashSet<(Arc<str>, Arc<str>)> = run.unknown.into_iter().collect();
        let mut tracked = Tracked::default();
        let mut events = Vec::new();
        let mut seen = HashSet::new();
        for now in run.now {
            let k = key(&now.account, &now.rule_set, &now.reason);
            // A tag given twice is one task.
            if !seen.insert(k.clone()) {
                continue;
            }
            let state = format!("{:032x}", now.state);
            let (task_id, seq, opened_on, event) = match last.remove(&k) {
                Some(l) if !l.closed && l.state == state => continue,
                Some(l) if !l.closed => (l.task_id, l.seq + 1, l.opened_on, "updated"),
                Some(l) if run.cooldown_days.is_some_and(|d| (as_of - l.as_of).num_days() < d) => continue,
                _ => {
                    // A new task's id: the key and the day it opened, so one that opens again
                    // later has another.
                    let digest = twox_hash::XxHash3_128::oneshot(
                        format!("{job}\u{1f}{}\u{1f}{k}\u{1f}{as_of}", run.output).as_bytes(),
                    );
                    (format!("{:020x}", digest >> 48), 0, as_of, "opened")
                }
            };
            events.push(TaskEvent {
                task_id,
                seq,
                event: event.to_string(),
                account_id: now.account.to_string(),
                rule_set: now.rule_set.to_string(),
                reason: now.reason.to_string(),
                owner: now.owner,
                grade: now.grade.map(|g| g.to_string()),
                detail: Some(now.detail.to_string()),
                opened_on,
                state,
            });
        }
        drop(seen);
        // What is left open no longer holds, unless a rule failed for it.
        for (k, l) in last {
            if l.closed {
                continue;
            }
            let mut parts = k.split('\u{1f}');
            let (account, set, reason) =
                (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            if unknown.contains(&(Arc::from(account), Arc::from(set))) {
                continue;
            }
            events.push(TaskEvent {
                task_id: l.task_id,
                seq: l.seq + 1,
                event: "closed".to_string(),
                account_id: account.to_string(),
                rule_set: set.to_string(),
                reason: reason.to_string(),
                owner: l.owner,
                grade: l.grade,
                // Read below, for the closed tasks only.
                detail: None,
                opened_on: l.opened_on,
                state: l.state,
            });
        }
        self.closed_details(job, &run.output, &mut events)?;
        events.sort_by(|a, b| (&a.account_id, &a.rule_set, &a.reason).cmp(&(&b.account_id, &b.rule_set, &b.reason)));
        for e in &events {
            match e.event.as_str() {
                "opened" => tracked.opened += 1,
                "updated" => tracked.updated += 1,
                _ => tracked.closed += 1,
            }
        }
        if record && !events.is_empty() {
            self.record_task_events(job, &run.output, as_of, run_id, &events)?;
        }
        tracked.events = events;
        Ok(tracked)
    }

    /// A closed task's event carries the fields and reasons of its last event, read here
    /// for the closed ones only: the last events of every open task (about 300 bytes each,
    /// 0.2M of them at 1M accounts) are not held for the few that close.
    fn closed_details(&self, job: &str, output: &str, events: &mut [TaskEvent]) -> Result<(), StoreError> {
        if !events.iter().any(|e| e.event == "closed") {
            return Ok(());
        }
        self.conn.execute_batch(
            "CREATE OR REPLACE TEMP TABLE kw_task_closed (account_id VARCHAR, rule_set VARCHAR, reason VARCHAR)",
        )?;
        let mut appender = self.conn.appender("kw_task_closed")?;
        for e in events.iter().filter(|e| e.event == "closed") {
            appender.append_row(params![e.account_id, e.rule_set, e.reason])?;
        }
        appender.flush()?;
        drop(appender);
        let mut details = HashMap::new();
        {
            let mut stmt = self.conn.prepare(
                "SELECT s.account_id, s.rule_set, s.reason, CAST(s.detail AS VARCHAR) FROM task_state s \
                 JOIN kw_task_closed c USING (account_id, rule_set, reason) WHERE s.job = ? AND s.output = ?",
            )?;
            let rows = stmt.query_map(params![job, output], |r| {
                let (a, s, k): (String, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
                Ok((key(&a, &s, &k), r.get::<_, Option<String>>(3)?))
            })?;
            for row in rows {
                let (k, detail) = row?;
                details.insert(k, detail);
            }
        }
        self.conn.execute_batch("DROP TABLE kw_task_closed")?;
        for e in events.iter_mut().filter(|e| e.event == "closed") {
            e.detail = details.remove(&key(&e.account_id, &e.rule_set, &e.reason)).flatten();
        }
        Ok(())
    }

    /// Each key's last event for one tasks output.
    fn task_states(&self, job: &str, output: &str) -> Result<HashMap<String, Last>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT account_id, rule_set, reason, task_id, seq, event = 'closed', as_of, opened_on, owner, grade, state \
             FROM task_state WHERE job = ? AND output = ?",
        )?;
        let rows = stmt.query_map(params![job, output], |r| {
            let (a, s, k): (String, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
            Ok((
                key(&a, &s, &k),
                Last {
                    task_id: r.get(3)?,
                    seq: r.get(4)?,
                    closed: r.get(5)?,
                    as_of: r.get(6)?,
                    opened_on: r.get(7)?,
                    owner: r.get(8)?,
                    grade: r.get(9)?,
                    state: r.get(10)?,
                },
            ))
        })?;
        let states = rows.collect::<Result<HashMap<_, _>, _>>()?;
        Ok(states)
    }

    /// Appends the events to `tasks` and makes them their keys' last events.
    fn record_task_events(
        &self,
        job: &str,
        output: &str,
        as_of: NaiveDate,
        run_id: Option<i64>,
        events: &[TaskEvent],
    ) -> Result<(), StoreError> {
        self.conn.execute_batch(
            "CREATE OR REPLACE TEMP TABLE kw_task_events (task_id VARCHAR, seq INTEGER, event VARCHAR, account_id VARCHAR, \
             rule_set VARCHAR, reason VARCHAR, owner VARCHAR, grade VARCHAR, state VARCHAR, detail VARCHAR, opened_on DATE)",
        )?;
        let mut appender = self.conn.appender("kw_task_events")?;
        for e in events {
            appender.append_row(params![
                e.task_id,
                e.seq,
                e.event,
                e.account_id,
                e.rule_set,
                e.reason,
                e.owner,
                e.grade,
                e.state,
                e.detail,
                e.opened_on
            ])?;
        }
        appender.flush()?;
        drop(appender);
        let columns = "task_id, seq, job, output, account_id, rule_set, reason, event, as_of, run_id, opened_on, owner, \
                       grade, state, detail, recorded_at";
        let select = "SELECT task_id, seq, ?, ?, account_id, rule_set, reason, event, ?, ?, opened_on, owner, grade, state, \
                      CAST(detail AS JSON), now() FROM kw_task_events";
        self.conn.execute(&format!("INSERT INTO tasks ({columns}) {select}"), params![job, output, as_of, run_id])?;
        // No index on `task_state` (one on its 0.2M keys at 1M accounts held 0.1 GB): the
        // keys with events are replaced by a join.
        self.conn.execute(
            "DELETE FROM task_state s USING kw_task_events e WHERE s.job = ? AND s.output = ? \
             AND s.account_id = e.account_id AND s.rule_set = e.rule_set AND s.reason = e.reason",
            params![job, output],
        )?;
        self.conn
            .execute(&format!("INSERT INTO task_state ({columns}) {select}"), params![job, output, as_of, run_id])?;
        self.conn.execute_batch("DROP TABLE kw_task_events")?;
        Ok(())
    }
}
