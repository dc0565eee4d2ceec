//! The webhook payload: one JSON envelope per request, its events in `events`, with the
//! schema in `docs/schemas/webhook.schema.json` generated from these types.

use serde::Serialize;

/// One webhook request's body.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Envelope {
    /// The payload's format: 1.
    pub schema_version: u32,
    /// The request's idempotency key, as in its `Idempotency-Key` header: the same on every
    /// retry of this request, so a receiver that saw it already can drop it.
    pub id: String,
    pub job: String,
    /// The day the run scored, `YYYY-MM-DD`.
    pub as_of: String,
    pub run_id: Option<i64>,
    /// The job's output that sent it (`metric_alerts` for metric alerts).
    pub output: String,
    pub events: Vec<Event>,
}

/// What happened, by `type`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[serde(tag = "type")]
pub enum Event {
    /// An escalation listed accounts for one owner.
    #[serde(rename = "escalation.listed")]
    EscalationListed(Listed),
    /// The run's summary report.
    #[serde(rename = "report.published")]
    ReportPublished(Report),
    /// A metric's `alert_when` held.
    #[serde(rename = "metric.alert")]
    MetricAlert(MetricAlert),
    /// A task's condition started to hold.
    #[serde(rename = "task.opened")]
    TaskOpened(Task),
    /// An open task's state (grade, owner or fields) changed.
    #[serde(rename = "task.updated")]
    TaskUpdated(Task),
    /// A task's condition no longer holds.
    #[serde(rename = "task.closed")]
    TaskClosed(Task),
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Listed {
    pub title: String,
    pub owner: String,
    /// The owner's route from the channel's routes file (or its fallback).
    pub route: Option<String>,
    /// The escalation's column labels, in order.
    pub columns: Vec<String>,
    pub accounts: Vec<ListedAccount>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ListedAccount {
    pub account_id: String,
    /// Each column's text, by label.
    pub values: indexmap::IndexMap<String, String>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Report {
    pub title: String,
    pub accounts: u64,
    pub total_arr: f64,
    pub rule_sets: Vec<ReportSet>,
    pub escalations: Vec<ReportEscalation>,
    /// Accounts a rule failed for.
    pub rule_errors: u64,
    /// Source rows rejected when loading.
    pub rejects: u64,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ReportSet {
    pub name: String,
    pub grades: Vec<ReportGrade>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ReportGrade {
    /// The grade, or `error` for accounts a rule failed for.
    pub grade: String,
    pub accounts: u64,
    pub arr: f64,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ReportEscalation {
    pub name: String,
    pub title: String,
    pub owners: u64,
    pub accounts: u64,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct MetricAlert {
    pub metric: String,
    pub title: String,
    /// The `by:` of a segment's alert; absent for the total's.
    pub segment_by: Option<String>,
    pub segment: Option<String>,
    pub value: Option<f64>,
    pub previous: Option<f64>,
    pub change: Option<f64>,
    /// The value as the report shows it.
    pub text: String,
    pub alert_when: Option<String>,
}

/// A task's event. The task is keyed by account, rule set and reason; `task_id` stays the
/// same from `task.opened` to `task.closed`, and a task that opens again later has a new one.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Task {
    /// The event's own id (`task_id` and its sequence number): unique, stable across retries.
    pub event_id: String,
    pub task_id: String,
    pub account_id: String,
    pub rule_set: String,
    /// The fired rule's id, or the tag, the task is about.
    pub reason: String,
    pub owner: Option<String>,
    /// The rule set's grade for the account when the event was made.
    pub grade: Option<String>,
    /// The task output's `fields`, by label.
    pub fields: indexmap::IndexMap<String, String>,
    /// The rule set's reasons for the account, as the lists show them.
    pub reasons: Vec<String>,
    /// The day the task opened.
    pub opened_on: String,
}
