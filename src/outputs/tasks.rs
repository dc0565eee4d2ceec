//! The `tasks:` output: which (account, rule set, reason) keys hold this run, with each
//! task's state, for the store to compare with the tasks' last events; and the events it
//! finds as webhook payloads.

use std::sync::Arc;

use rayon::prelude::*;
use rhai::Scope;

use super::posts::{self, Post, webhook};
use super::{OutputError, RunView};
use crate::config::channels::Channel;
use crate::entity::exact_value;
use crate::rules::Expr;
use crate::rules::eval::results::{Cell, evaluate_condition, fill_scope, reads_of};
use crate::store::{TaskEvent, TaskNow, TaskRun};

#[derive(Debug)]
pub struct Tasks {
    pub name: String,
    /// The rule sets (by their index among the job's) whose fired rules or tags open tasks.
    pub rule_sets: Vec<usize>,
    pub by_tag: bool,
    pub when: Option<Expr>,
    /// The owner, else the entity's owner column.
    pub owner: Option<Expr>,
    pub fields: Vec<(String, Expr)>,
    pub cooldown_days: Option<i64>,
    pub channels: Vec<Channel>,
    pub batch: usize,
}

/// The keys that hold this run for `t`, and the accounts whose state cannot be told.
pub(super) fn evaluate(view: &RunView, t: &Tasks, warnings: &mut Vec<String>) -> Result<TaskRun, OutputError> {
    let results = view.results();
    let owner_column = view.job.entity.owner.as_deref().and_then(|c| view.entity.column(c));
    let owner_expr = t.owner.as_ref().map(|o| Cell::of(&results, o));
    let field_exprs: Vec<Cell> = t.fields.iter().map(|(_, e)| Cell::of(&results, e)).collect();
    let evaluated: Vec<&Expr> = owner_expr
        .iter()
        .chain(&field_exprs)
        .filter_map(|c| match c {
            Cell::Eval(e) => Some(*e),
            _ => None,
        })
        .collect();
    let reads = reads_of(evaluated.iter().copied());
    let plan = reads.plan(&results);
    let needs_scope = !evaluated.is_empty();
    let hits = t.when.as_ref().map(|w| evaluate_condition(&results, w));
    let labels: Vec<&str> = t.fields.iter().map(|(l, _)| l.as_str()).collect();
    let set_names: Vec<Arc<str>> = t.rule_sets.iter().map(|&i| Arc::from(view.rule_sets[i].name.as_str())).collect();
    // Each set's grades, shared by the tasks rather than one text each.
    let grades: Vec<Vec<Arc<str>>> = view.rule_sets.iter().map(|s| s.grade_names()).collect();
    type Row = (Vec<TaskNow>, Vec<(Arc<str>, Arc<str>)>, Option<String>);
    let rows: Vec<Row> = (0..view.entity.len())
        .into_par_iter()
        .map_init(Scope::new, |scope, row| {
            let account = &view.entity.keys[row];
            let (mut now, mut unknown) = (Vec::new(), Vec::new());
            match hits.as_ref().map(|h| &h[row]) {
                Some(Err(e)) => {
                    // Whether the account's tasks hold cannot be told: none are closed.
                    unknown.extend(set_names.iter().map(|s| (account.clone(), s.clone())));
                    return (now, unknown, Some(format!("account `{account}`: {e}")));
                }
                Some(Ok(false)) => return (now, unknown, None),
                Some(Ok(true)) | None => {}
            }
            if needs_scope {
                fill_scope(scope, &results, row, &plan);
            }
            let text = |c: &Cell, scope: &mut Scope| match c {
                Cell::Eval(expr) => results.eval(expr, scope).map(|v| exact_value(&v)).unwrap_or_default(),
                Cell::Column(column) => exact_value(&crate::entity::cell(column, row)),
                Cell::Field(set, field) => field.text(view.outcomes[*set].get(row)),
            };
            let owner = match &owner_expr {
                Some(c) => Some(text(c, scope)),
                None => owner_column.map(|c| exact_value(&crate::entity::cell(c, row))),
            }
            .filter(|o| !o.is_empty());
            let fields: Vec<String> = field_exprs.iter().map(|c| text(c, scope)).collect();
            for (&set, name) in t.rule_sets.iter().zip(&set_names) {
                let outcome = view.outcomes[set].get(row);
                if !outcome.errors().is_empty() {
                    unknown.push((account.clone(), name.clone()));
                    continue;
                }
                let items = if t.by_tag { outcome.tags() } else { outcome.fired() };
                if items.is_empty() {
                    continue;
                }
                let grade = outcome.grade().map(|g| grades[set].iter().find(|k| &***k == g).cloned().unwrap_or_else(|| Arc::from(g)));
                let mut digest = String::new();
                for part in [grade.as_deref().unwrap_or(""), owner.as_deref().unwrap_or("")].into_iter().chain(fields.iter().map(String::as_str)) {
                    digest.push_str(part);
                    digest.push('\u{1f}');
                }
                let state = twox_hash::XxHash3_128::oneshot(digest.as_bytes());
                let detail = serde_json::json!({
                    "fields": labels.iter().zip(&fields).map(|(l, v)| (l.to_string(), serde_json::json!(v))).collect::<serde_json::Map<_, _>>(),
                    "reasons": outcome.reasons().to_vec(),
                })
                .to_string();
                let detail: Arc<str> = Arc::from(detail);
                for item in items.iter() {
                    now.push(TaskNow {
                        account: account.clone(),
                        rule_set: name.clone(),
                        reason: Arc::from(item),
                        owner: owner.clone(),
                        grade: grade.clone(),
                        state,
                        detail: detail.clone(),
                    });
                }
            }
            (now, unknown, None)
        })
        .filter(|(n, u, f)| !n.is_empty() || !u.is_empty() || f.is_some())
        .collect();
    let mut run = TaskRun { output: t.name.clone(), cooldown_days: t.cooldown_days, ..TaskRun::default() };
    run.now.reserve_exact(rows.iter().map(|r| r.0.len()).sum());
    let (mut failures, mut first) = (0usize, None);
    for (now, unknown, failure) in rows {
        run.now.extend(now);
        run.unknown.extend(unknown);
        if let Some(f) = failure {
            failures += 1;
            first.get_or_insert(f);
        }
    }
    if let Some(first) = first {
        warnings.push(format!(
            "tasks `{}`: `when` failed for {failures} accounts, whose tasks are left as they were; first: {first}",
            t.name
        ));
    }
    Ok(run)
}

/// The events as webhook payloads, for each of the output's channels that `carries` says.
pub fn posts(stamp: &posts::Stamp, t: &Tasks, events: &[TaskEvent], carries: &dyn Fn(&Channel) -> bool) -> Vec<Post> {
    if events.is_empty() {
        return Vec::new();
    }
    let events: Vec<webhook::Event> = events.iter().map(event).collect();
    t.channels
        .iter()
        .filter(|c| carries(c))
        .flat_map(|c| posts::task_batches(stamp, &t.name, c, events.clone(), t.batch))
        .collect()
}

fn event(e: &TaskEvent) -> webhook::Event {
    let detail: serde_json::Value = e.detail.as_deref().and_then(|d| serde_json::from_str(d).ok()).unwrap_or_default();
    let fields = detail["fields"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect())
        .unwrap_or_default();
    let reasons = detail["reasons"]
        .as_array()
        .map(|a| a.iter().filter_map(|r| r.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let task = webhook::Task {
        event_id: format!("{}-{}", e.task_id, e.seq),
        task_id: e.task_id.clone(),
        account_id: e.account_id.clone(),
        rule_set: e.rule_set.clone(),
        reason: e.reason.clone(),
        owner: e.owner.clone(),
        grade: e.grade.clone(),
        fields,
        reasons,
        opened_on: e.opened_on.to_string(),
    };
    match e.event.as_str() {
        "opened" => webhook::Event::TaskOpened(task),
        "updated" => webhook::Event::TaskUpdated(task),
        _ => webhook::Event::TaskClosed(task),
    }
}
