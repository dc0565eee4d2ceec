//! Outputs of a run: escalation lists (one CSV and one mail per owner) and the summary
//! report mail. Mail bodies are minijinja templates; a project overrides any default by
//! putting a file of the same name in `templates/`.

mod alerts;
mod calibration;
pub mod charts;
mod compile;
mod compile_tasks;
mod lists;
mod message;
pub mod posts;
pub mod report;
mod tasks;

pub use alerts::ALERTS_OUTPUT;
pub(crate) use compile::compile_collecting;
pub use compile::{compile_outputs, load_templates};
pub use lists::{Cells, OwnerList};
use lists::{ListMail, OwnerMail, collect_mails, evaluate_escalation, list_mail, mail_batches, render_one, rollup};
pub use message::{Attachment, Inline, Mail};
pub use posts::{Post, Stamp};
pub use tasks::{Tasks, posts as tasks_posts};

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::NaiveDate;
use lettre::message::Mailbox;
use minijinja::{Environment, Value, context};
use rayon::prelude::*;
use rhai::Engine;

use crate::config::job::Job;
use crate::entity::Entity;
use crate::rules::eval::results::Results;
use crate::rules::{Expr, RuleSet, SetOutcomes};
use crate::store::{Escalated, EscalatedMap};

#[derive(Debug)]
pub enum Output {
    Escalation(Box<Escalation>),
    Summary(Box<Summary>),
    Calibration(Box<Calibration>),
    Tasks(Box<Tasks>),
}

impl Output {
    /// The output's tasks, when it is a `tasks:` output.
    pub fn tasks(&self) -> Option<&Tasks> {
        match self {
            Output::Tasks(t) => Some(t),
            _ => None,
        }
    }
}

/// The rules measured against outcomes, mailed (`calibration.rs`).
#[derive(Debug)]
pub struct Calibration {
    pub name: String,
    pub title: String,
    pub to: Vec<Mailbox>,
    pub subject: String,
}

#[derive(Debug)]
pub struct Escalation {
    pub name: String,
    pub title: String,
    pub when: Expr,
    pub owner: Expr,
    pub columns: Vec<(String, Expr)>,
    pub order_by: Option<Expr>,
    pub subject: String,
    pub cc: Vec<Mailbox>,
    pub remind_after: Option<chrono::Duration>,
    pub rollup: Option<Expr>,
    pub channels: Vec<crate::config::channels::Channel>,
}

#[derive(Debug)]
pub struct Summary {
    pub name: String,
    pub title: String,
    pub to: Vec<Mailbox>,
    pub subject: String,
    pub report: Option<report::Report>,
    pub channels: Vec<crate::config::channels::Channel>,
}

/// Everything outputs read from a finished evaluation.
pub struct RunView<'a> {
    pub job: &'a Job,
    pub run_id: Option<i64>,
    pub as_of: NaiveDate,
    pub entity: &'a Entity,
    pub rule_sets: &'a [RuleSet],
    pub outcomes: &'a [SetOutcomes],
    pub engine: &'a Engine,
    pub templates: &'a Environment<'static>,
    pub rule_errors: usize,
    pub rejects: usize,
    pub warnings: &'a [String],
    /// What each escalation last listed, by (output, account): the row and when it was sent.
    pub escalated: &'a EscalatedMap,
    /// The latest published results before this run, for movements.
    pub previous: &'a crate::rules::previous::Previous,
    /// Per summary output: its red ARR on each earlier run, oldest first.
    pub history: &'a HashMap<String, Vec<(NaiveDate, f64)>>,
    /// The job's metrics this run, with their previous values, alerts and history.
    pub metrics: &'a crate::metrics::Measured,
    /// The rules measured against the outcomes, when the job has a calibration output.
    pub calibration: Option<&'a crate::validation::Validation>,
    /// Whether messages for the alert channels are rendered at all (not with `--no-mail`).
    pub render_posts: bool,
    /// A dry run: every channel's messages are rendered, on or off.
    pub preview: bool,
}

impl<'a> RunView<'a> {
    /// The evaluation as expressions over it read it.
    pub fn results(&self) -> Results<'a> {
        Results {
            as_of: self.as_of,
            entity: self.entity,
            rule_sets: self.rule_sets,
            outcomes: self.outcomes,
            engine: self.engine,
        }
    }
}

/// Rendered outputs: files written, warnings and what was listed. The mails go to the
/// caller's sink as they are rendered.
#[derive(Debug, Default)]
pub struct Rendered {
    pub files: Vec<PathBuf>,
    pub warnings: Vec<String>,
    /// Per escalation: owners and accounts listed.
    pub escalations: Vec<(String, usize, usize)>,
    /// Every account listed, to remember.
    pub escalated: Vec<Escalated>,
    /// Per escalation, every account its `when` held for (listed or left out until a
    /// reminder is due), kept in the store so validation can tell what each flagged.
    pub flagged: Vec<(Arc<str>, Vec<Arc<str>>)>,
    /// Messages for the alert channels (for channels that are on, or for a preview).
    pub posts: Vec<Post>,
    /// Per tasks output, the keys that hold this run (kept by the caller from the
    /// [`TaskSink`], to compare with the store once the accounts' data is let go).
    pub tasks: Vec<crate::store::TaskRun>,
}

/// Where rendered mail goes, a batch at a time: delivered, kept for a preview or dropped.
pub type MailSink<'s> = dyn FnMut(Vec<Mail>) -> Result<(), SinkError> + 's;

/// Where each tasks output's keys go as soon as they are evaluated.
pub type TaskSink<'s> = dyn FnMut(&Tasks, crate::store::TaskRun) -> Result<(), SinkError> + 's;

/// Why the sink refused mail: the delivery's own error, which outputs only pass on.
pub type SinkError = Box<dyn std::error::Error + Send + Sync>;

/// Why rendering an output failed; each names the file or template at fault.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("cannot create `{}`: {source}", path.display())]
    CreateDir { path: PathBuf, source: std::io::Error },
    #[error("cannot write `{}`: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    NoTemplate(minijinja::Error),
    #[error("template `{name}` failed: {source}")]
    Template { name: String, source: minijinja::Error },
    #[error("{0}")]
    Csv(#[from] csv::Error),
    #[error("{0}")]
    Text(#[from] std::string::FromUtf8Error),
    #[error(transparent)]
    Chart(#[from] charts::ChartError),
    #[error(transparent)]
    Sink(SinkError),
}

/// Whether a channel's messages are rendered: it is on, or the run is a preview.
fn carries(view: &RunView, c: &crate::config::channels::Channel) -> bool {
    view.render_posts && (view.preview || c.url().is_some())
}

impl OutputError {
    fn create_dir(path: &Path) -> impl FnOnce(std::io::Error) -> OutputError + '_ {
        move |source| OutputError::CreateDir { path: path.to_path_buf(), source }
    }

    fn write(path: &Path) -> impl FnOnce(std::io::Error) -> OutputError + '_ {
        move |source| OutputError::Write { path: path.to_path_buf(), source }
    }
}

/// Renders every output, handing mail to `sink` in batches as it is rendered.
pub fn render(
    view: &RunView,
    outputs: &[Output],
    out_dir: &Path,
    sink: &mut MailSink,
    tasks: &mut TaskSink,
) -> Result<Rendered, OutputError> {
    let mut rendered = Rendered::default();
    // Each escalation's lists are rendered as soon as it is evaluated and then let go: the
    // summary needs only their counts (at 1M accounts the 265k rows listed took 0.15 GB).
    let mut lists: Vec<(&Escalation, usize, usize)> = Vec::new();
    for output in outputs {
        let Output::Escalation(e) = output else { continue };
        let started = std::time::Instant::now();
        let (owners, flagged) = evaluate_escalation(view, e, &mut rendered.warnings, &mut rendered.escalated);
        rendered.flagged.push((Arc::from(e.name.as_str()), flagged));
        tracing::debug!(output = %e.name, seconds = started.elapsed().as_secs_f64(), "Escalation evaluated.");
        let accounts = owners.iter().map(|o| o.rows.len()).sum();
        rendered.escalations.push((e.name.clone(), owners.len(), accounts));
        lists.push((e, owners.len(), accounts));
        let started = std::time::Instant::now();
        let dir = out_dir.join(&e.name);
        std::fs::create_dir_all(&dir).map_err(OutputError::create_dir(&dir))?;
        let labels: Vec<String> = e.columns.iter().map(|(l, _)| l.clone()).collect();
        let spec = ListMail {
            output: &e.name,
            title: e.title.clone(),
            subject: &e.subject,
            cc: &e.cc,
            columns: &labels,
            dir: &dir,
        };
        // One CSV and one mail per owner, rendered on every core.
        for batch in mail_batches(&owners, |o| o.rows.len()) {
            let per_owner: Vec<Result<OwnerMail, OutputError>> = batch
                .par_iter()
                .map(|list| {
                    let rows: Vec<Vec<&str>> = list.rows.iter().map(|r| r.iter().collect()).collect();
                    list_mail(view, &spec, &list.owner, &rows, || {
                        format!(
                            "escalation `{}`: owner `{}` is not an email address; their list was written to a file only",
                            e.name, list.owner
                        )
                    })
                })
                .collect();
            collect_mails(per_owner, &mut rendered, sink)?;
        }
        if e.rollup.is_some() {
            rollup(view, e, &labels, &owners, out_dir, &mut rendered, sink)?;
        }
        let channels: Vec<_> = e.channels.iter().filter(|c| carries(view, c)).cloned().collect();
        rendered.posts.extend(posts::escalation(view, &e.name, &e.title, &labels, &channels, &owners));
        tracing::debug!(output = %e.name, seconds = started.elapsed().as_secs_f64(), "Escalation lists rendered.");
    }
    for output in outputs {
        if let Output::Summary(s) = output {
            let started = std::time::Instant::now();
            let built = match &s.report {
                Some(r) => Some(report::build(view, r, &s.name, out_dir)?),
                None => None,
            };
            let mut ctx = summary_context(view, s, &lists);
            let channels: Vec<_> = s.channels.iter().filter(|c| carries(view, c)).cloned().collect();
            if !channels.is_empty() {
                let json = serde_json::to_value(&ctx).unwrap_or_default();
                rendered.posts.extend(posts::summary(view, &s.name, &s.title, &channels, &json));
            }
            let (mut inline, mut attachments) = (Vec::new(), Vec::new());
            if let Some(built) = built {
                ctx = context! { report => built.context, ..ctx };
                inline = built.inline;
                attachments.extend(built.attachment);
                rendered.files.extend(built.files);
            }
            let mail = Mail {
                output: s.name.clone(),
                to: s.to.clone(),
                cc: Vec::new(),
                subject: render_one(view.templates, &s.subject, &ctx)?,
                text: render_one(view.templates, "summary.txt", &ctx)?,
                html: render_one(view.templates, "summary.html", &ctx)?,
                inline,
                attachments,
            };
            tracing::debug!(output = %s.name, seconds = started.elapsed().as_secs_f64(), "Summary rendered.");
            sink(vec![mail]).map_err(OutputError::Sink)?;
        }
    }
    for output in outputs {
        if let Output::Calibration(c) = output
            && let Some(mail) = calibration::mail(view, c)?
        {
            sink(vec![mail]).map_err(OutputError::Sink)?;
        }
    }
    if let Some(mail) = alerts::mail(view, outputs)? {
        sink(vec![mail]).map_err(OutputError::Sink)?;
    }
    rendered.posts.extend(alerts::posts(view, outputs, &|c| carries(view, c)));
    // Tasks last, once every list has been let go: their keys (0.1 GB at 1M accounts) never
    // add to the lists' memory.
    for output in outputs {
        if let Output::Tasks(t) = output {
            let run = tasks::evaluate(view, t, &mut rendered.warnings)?;
            tasks(t, run).map_err(OutputError::Sink)?;
        }
    }
    Ok(rendered)
}

fn summary_context(view: &RunView, s: &Summary, lists: &[(&Escalation, usize, usize)]) -> Value {
    let arr_col = view.job.entity.arr.as_deref().and_then(|c| view.entity.column(c));
    let arr: Vec<Option<f64>> = (0..view.entity.len())
        .into_par_iter()
        .map(|r| arr_col.and_then(|c| crate::rules::engine::number(&crate::entity::cell(c, r))))
        .collect();
    let total_arr: f64 = arr.iter().flatten().sum();
    // In the order the job lists its rule sets; dependencies it does not list come last.
    let listed = |name: &str| view.job.rule_sets.iter().position(|r| r.value == name).unwrap_or(usize::MAX);
    let mut ordered: Vec<(&RuleSet, &SetOutcomes)> = view.rule_sets.iter().zip(view.outcomes).collect();
    ordered.sort_by_key(|(set, _)| listed(&set.name));
    let sets: Vec<Value> = ordered
        .into_par_iter()
        .map(|(set, outcomes)| {
            let grade_names = set.grade_names();
            // Accounts and ARR per grade, the last slot for accounts without one (errors).
            let mut accounts = vec![0usize; grade_names.len() + 1];
            let mut sums = vec![0.0f64; grade_names.len() + 1];
            for (o, arr) in outcomes.iter().zip(&arr) {
                let slot = match o.grade() {
                    None => Some(grade_names.len()),
                    Some(g) => grade_names.iter().position(|n| &**n == g),
                };
                if let Some(slot) = slot {
                    accounts[slot] += 1;
                    if let Some(a) = arr {
                        sums[slot] += a;
                    }
                }
            }
            let mut grades: Vec<Value> = Vec::new();
            for (slot, name) in grade_names.iter().map(|g| Some(&**g)).chain([None]).enumerate() {
                if accounts[slot] == 0 && name.is_none() {
                    continue;
                }
                grades.push(context! { grade => name.unwrap_or("error"), accounts => accounts[slot], arr => sums[slot],
                    share => if view.entity.is_empty() { 0.0 } else { accounts[slot] as f64 * 100.0 / view.entity.len() as f64 } });
            }
            context! { name => set.name.clone(), description => set.description.clone(), grades => grades }
        })
        .collect();
    let escalations: Vec<Value> = lists
        .iter()
        .map(|&(e, owners, accounts)| context! { name => e.name.clone(), title => e.title.clone(), owners => owners, accounts => accounts })
        .collect();
    let default = report::Wording::default();
    let wording = s.report.as_ref().map_or(&default, |r| &r.wording);
    context! {
        currency => wording.currency.clone(), amount => wording.amount.clone(), titles => wording.titles_context(),
        job => view.job.name.clone(), description => view.job.description.clone(), title => s.title.clone(), run_id => view.run_id,
        as_of => view.as_of.to_string(), accounts => view.entity.len(), total_arr => total_arr, rule_sets => sets,
        escalations => escalations, rule_errors => view.rule_errors, rejects => view.rejects, warnings => view.warnings.to_vec(),
    }
}

pub(crate) fn to_csv<S: AsRef<[u8]>>(labels: &[String], rows: &[Vec<S>]) -> Result<String, OutputError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(labels)?;
    for r in rows {
        w.write_record(r)?;
    }
    Ok(String::from_utf8(w.into_inner().map_err(|e| csv::Error::from(e.into_error()))?)?)
}

/// Writes `bytes` to `path` whole or not at all: into a temporary file beside it, then
/// renamed over it. A full disk or a killed process leaves no empty or cut-off file behind
/// (a truncated `.eml` would look like a sent mail).
pub fn write_whole(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let written = std::fs::write(&temp, bytes).and_then(|()| std::fs::rename(&temp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

/// The one way a name from the data (an owner, a recipient) becomes a file name: what is
/// not a letter, digit or one of `@._+-` becomes `_`, and a name that had to change gets a
/// digest of its original, so `team/a@x.com` and `team_a@x.com` never share a file. Names
/// that need no change (most email addresses) stay as they are.
pub fn file_name(s: &str) -> String {
    let safe: String =
        s.chars().map(|c| if c.is_ascii_alphanumeric() || "@._+-".contains(c) { c } else { '_' }).collect();
    // A name of dots alone (`.`, `..`) is a folder's name, not a file's.
    if safe == s && !s.is_empty() && !s.chars().all(|c| c == '.') {
        return safe;
    }
    format!("{safe}-{:08x}", twox_hash::XxHash3_128::oneshot(s.as_bytes()) as u32)
}
