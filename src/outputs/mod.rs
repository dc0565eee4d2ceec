//! Outputs of a run: escalation lists (one CSV and one mail per owner) and the summary
//! report mail. Mail bodies are minijinja templates; a project overrides any default by
//! putting a file of the same name in `templates/`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub mod charts;
mod message;
pub mod report;

use chrono::NaiveDate;
use lettre::message::Mailbox;
use minijinja::{Environment, Value, context};
use rayon::prelude::*;
use rhai::{Dynamic, Engine, Map, Scope};

use crate::config::diagnostic::{Diagnostic, Diagnostics, SourceFile};
use crate::config::job::Job;
use crate::config::job::raw::{RawColumn, RawEscalation, RawOutput, RawSummary};
use crate::config::yaml;
use crate::entity::{Entity, Schema, display_value};
use crate::rules::compile::{AS_OF, compile_expr};
use crate::rules::{Expr, OutcomeRef, RuleSet, SetOutcomes};
use crate::store::{Escalated, EscalatedMap};
pub use message::{Attachment, Inline, Mail};

/// Default templates, shipped inside the binary.
const DEFAULT_TEMPLATES: &[(&str, &str)] = &[
    ("escalation.html", include_str!("templates/escalation.html")),
    ("escalation.txt", include_str!("templates/escalation.txt")),
    ("escalation.subject", include_str!("templates/escalation.subject")),
    ("summary.html", include_str!("templates/summary.html")),
    ("summary.txt", include_str!("templates/summary.txt")),
    ("summary.subject", include_str!("templates/summary.subject")),
];

#[derive(Debug)]
pub enum Output {
    Escalation(Box<Escalation>),
    Summary(Box<Summary>),
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
}

#[derive(Debug)]
pub struct Summary {
    pub name: String,
    pub title: String,
    pub to: Vec<Mailbox>,
    pub subject: String,
    pub report: Option<report::Report>,
}

/// Adds the mail templates to `env` (made by [`crate::rules::reason::environment`]): the
/// project's `templates/` folder first, then the defaults.
pub fn load_templates(root: &Path, env: &mut Environment<'static>) -> Diagnostics {
    let mut diags = Diagnostics::default();
    for (name, default) in DEFAULT_TEMPLATES {
        let path = root.join("templates").join(name);
        let (source, file) = match std::fs::read_to_string(&path) {
            Ok(text) => (text.clone(), Some(SourceFile::new(format!("templates/{name}"), &path, text))),
            Err(_) => (default.to_string(), None),
        };
        if let Err(e) = env.add_template_owned(name.to_string(), source) {
            let span = match &file {
                Some(f) => f.span(e.line().unwrap_or(1), 1, 1),
                None => crate::config::diagnostic::Span::none(),
            };
            diags.push(Diagnostic::error(
                span,
                format!("template `{name}` does not parse: {}", e.detail().unwrap_or("syntax error")),
            ));
        }
    }
    diags
}

/// Compiles a job's outputs against the entity's columns and the rule sets' names.
pub fn compile_outputs(
    job: &Job,
    schema: &Schema,
    rule_sets: &[&str],
    compiled: &[RuleSet],
    engine: &Engine,
    env: &mut Environment<'static>,
) -> (Vec<Output>, Diagnostics) {
    let mut diags = Diagnostics::default();
    let mut names: Vec<&str> = rule_sets.to_vec();
    names.push(AS_OF);
    let mut outputs = Vec::new();
    for raw in &job.outputs {
        match raw {
            RawOutput::Escalation(e) => {
                if let Some(o) = escalation(job, e, schema, &names, engine, env, &mut diags) {
                    outputs.push(Output::Escalation(Box::new(o)));
                }
            }
            RawOutput::Summary(s) => {
                let report =
                    s.report.as_ref().map(|r| report::compile(job, r, schema, compiled, &names, engine, &mut diags));
                let mut summary = summary(job, s, env, &mut diags);
                match report {
                    Some(None) => continue,
                    Some(report) => summary.report = report,
                    None => {}
                }
                outputs.push(Output::Summary(Box::new(summary)))
            }
        }
    }
    (outputs, diags)
}

fn escalation(
    job: &Job,
    raw: &RawEscalation,
    schema: &Schema,
    names: &[&str],
    engine: &Engine,
    env: &mut Environment<'static>,
    diags: &mut Diagnostics,
) -> Option<Escalation> {
    let name = &raw.name.value;
    let mut expr = |src: &serde_saphyr::Spanned<String>, what: &str| {
        compile_collecting(engine, &job.file, src, schema, names, &format!("{what} of escalation `{name}`"), diags)
    };
    let when = expr(&raw.when, "`when`");
    let owner = expr(&raw.owner, "`owner`");
    let order_by = raw.order_by.as_ref().map(|o| expr(o, "`order_by`"));
    let rollup = raw.rollup.as_ref().map(|o| expr(o, "`rollup`"));
    let mut columns = Vec::new();
    for c in &raw.columns {
        let pairs: Vec<(String, String)> = match &c.value {
            RawColumn::Expression(e) => vec![(e.clone(), e.clone())],
            RawColumn::Labeled(m) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        };
        for (label, source) in pairs {
            let spanned = serde_saphyr::Spanned { value: source, referenced: c.referenced, defined: c.defined };
            columns.push(expr(&spanned, "a column").map(|e| (label, e)));
        }
    }
    let subject = template_override(
        env,
        &format!("{name}.subject"),
        raw.subject.as_ref(),
        &job.file,
        diags,
        "escalation.subject",
    );
    let title = raw.title.clone().unwrap_or_else(|| name.replace('_', " "));
    let remind_after = match &raw.remind_after {
        None => Some(None),
        Some(r) => match crate::config::job::parse_duration(&r.value) {
            Some(d) => Some(chrono::Duration::from_std(d).ok()),
            None => {
                diags.push(
                    Diagnostic::error(
                        yaml::span_of(&job.file, r, r.value.len()),
                        format!("`{}` is not a duration", r.value),
                    )
                    .with_hint("write a number and a unit, such as `7d`"),
                );
                None
            }
        },
    };
    Some(Escalation {
        name: name.clone(),
        title,
        when: when?,
        owner: owner?,
        columns: columns.into_iter().collect::<Option<Vec<_>>>()?,
        order_by: order_by.flatten(),
        subject,
        cc: raw.cc.iter().filter_map(|a| a.value.parse().ok()).collect(),
        remind_after: remind_after?,
        rollup: match rollup {
            Some(r) => Some(r?),
            None => None,
        },
    })
}

/// Compiles an output expression, adding its problems to `diags`; `None` when it does not
/// compile.
pub(crate) fn compile_collecting(
    engine: &Engine,
    file: &SourceFile,
    src: &serde_saphyr::Spanned<String>,
    schema: &Schema,
    names: &[&str],
    what: &str,
    diags: &mut Diagnostics,
) -> Option<Expr> {
    match compile_expr(engine, file, src, schema, names, what) {
        Ok((e, problems)) => {
            problems.into_iter().for_each(|d| diags.push(d));
            Some(e)
        }
        Err(d) => {
            diags.push(*d);
            None
        }
    }
}

fn summary(job: &Job, raw: &RawSummary, env: &mut Environment<'static>, diags: &mut Diagnostics) -> Summary {
    let name = &raw.name.value;
    Summary {
        name: name.clone(),
        title: raw.title.clone().unwrap_or_else(|| format!("{} summary", job.name)),
        to: raw.to.iter().filter_map(|a| a.value.parse().ok()).collect(),
        subject: template_override(
            env,
            &format!("{name}.subject"),
            raw.subject.as_ref(),
            &job.file,
            diags,
            "summary.subject",
        ),
        report: None,
    }
}

/// A subject line written in the job file, or the default template's name.
fn template_override(
    env: &mut Environment<'static>,
    name: &str,
    text: Option<&serde_saphyr::Spanned<String>>,
    file: &SourceFile,
    diags: &mut Diagnostics,
    default: &str,
) -> String {
    let Some(text) = text else {
        return default.to_string();
    };
    match env.add_template_owned(name.to_string(), text.value.clone()) {
        Ok(()) => name.to_string(),
        Err(e) => {
            diags.push(
                Diagnostic::error(
                    yaml::span_of(file, text, 1),
                    format!("subject `{}` does not parse: {}", text.value, e.detail().unwrap_or("syntax error")),
                )
                .with_hint("subjects are templates: `{{ count }} accounts need you`"),
            );
            default.to_string()
        }
    }
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
}

/// A listed row's cells as one text, joined by U+001F, and where each ends: at 1M accounts
/// a `String` a cell took 0.2 GB more for the 265k rows listed.
#[derive(Debug, Clone)]
pub struct Cells {
    text: Box<str>,
    ends: Box<[u32]>,
}

impl Cells {
    pub fn new(cells: impl IntoIterator<Item = String>) -> Cells {
        let (mut text, mut ends) = (String::new(), Vec::new());
        for (i, cell) in cells.into_iter().enumerate() {
            if i > 0 {
                text.push('\u{1f}');
            }
            text.push_str(&cell);
            ends.push(u32::try_from(text.len()).expect("a row shorter than 4 GB"));
        }
        Cells { text: text.into(), ends: ends.into() }
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let starts = std::iter::once(0).chain(self.ends.iter().map(|&e| e as usize + 1));
        starts.zip(self.ends.iter()).map(|(start, &end)| &self.text[start..end as usize])
    }

    /// What the row showed, for `remind_after` to tell whether it changed: the XXH3-128
    /// digest of its cells (joined by U+001F), which the store keeps as [`crate::store::state_text`]. A
    /// digest rather than the text: at 1M accounts the rows' text took 85 MB in the store's
    /// upsert of 265k listed accounts, which then needed 0.37 GB and 1.2 s (with digests
    /// 0.09 GB and 0.6 s).
    pub fn state(&self) -> u128 {
        twox_hash::XxHash3_128::oneshot(self.text.as_bytes())
    }
}

/// One owner's part of an escalation list.
#[derive(Debug, Clone)]
pub struct OwnerList {
    pub owner: String,
    pub rows: Vec<Cells>,
    /// Each row's manager, for the roll-up (empty without one).
    pub managers: Vec<String>,
}

/// An owner's list written to a file, and their mail (or why there is none).
type OwnerMail = (PathBuf, Result<Mail, String>);

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
}

/// Where rendered mail goes, a batch at a time: delivered, kept for a preview or dropped.
pub type MailSink<'s> = dyn FnMut(Vec<Mail>) -> Result<(), String> + 's;

/// Owners' lists rendered at once on every core before their mail goes to the sink: enough
/// to keep the cores busy, few enough that a run never holds all its mail (1 GB at 1M
/// accounts).
const MAIL_BATCH: usize = 256;

/// At most this many listed accounts per batch: a manager's roll-up can hold thousands,
/// and 256 of them at once were most of a run's peak memory.
const MAIL_BATCH_ROWS: usize = 8 * 1024;

/// Consecutive batches of `items`, each of at most [`MAIL_BATCH`] items and, unless one item
/// alone has more, [`MAIL_BATCH_ROWS`] rows.
fn mail_batches<T>(items: &[T], rows: impl Fn(&T) -> usize) -> Vec<&[T]> {
    let mut batches = Vec::new();
    let (mut start, mut count) = (0, 0);
    for (i, item) in items.iter().enumerate() {
        let n = rows(item);
        if i > start && (i - start == MAIL_BATCH || count + n > MAIL_BATCH_ROWS) {
            batches.push(&items[start..i]);
            (start, count) = (i, 0);
        }
        count += n;
    }
    if start < items.len() {
        batches.push(&items[start..]);
    }
    batches
}

/// Renders every output, handing mail to `sink` in batches as it is rendered.
pub fn render(view: &RunView, outputs: &[Output], out_dir: &Path, sink: &mut MailSink) -> Result<Rendered, String> {
    let mut rendered = Rendered::default();
    // Each escalation's lists are rendered as soon as it is evaluated and then let go: the
    // summary needs only their counts (at 1M accounts the 265k rows listed took 0.15 GB).
    let mut lists: Vec<(&Escalation, usize, usize)> = Vec::new();
    for output in outputs {
        let Output::Escalation(e) = output else { continue };
        let started = std::time::Instant::now();
        let owners = evaluate_escalation(view, e, &mut rendered.warnings, &mut rendered.escalated);
        tracing::debug!(output = %e.name, seconds = started.elapsed().as_secs_f64(), "Escalation evaluated.");
        let accounts = owners.iter().map(|o| o.rows.len()).sum();
        rendered.escalations.push((e.name.clone(), owners.len(), accounts));
        lists.push((e, owners.len(), accounts));
        let started = std::time::Instant::now();
        let dir = out_dir.join(&e.name);
        std::fs::create_dir_all(&dir).map_err(|err| format!("cannot create `{}`: {err}", dir.display()))?;
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
            let per_owner: Vec<Result<OwnerMail, String>> = batch
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
            sink(vec![mail])?;
        }
    }
    Ok(rendered)
}

/// The manager roll-up: each manager gets every listed account of their owners, with the
/// owner as the first column.
fn rollup(
    view: &RunView,
    e: &Escalation,
    labels: &[String],
    owners: &[OwnerList],
    out_dir: &Path,
    rendered: &mut Rendered,
    sink: &mut MailSink,
) -> Result<(), String> {
    // The owners' rows by reference: at 1M accounts a copy of them took 0.15 GB.
    let mut by_manager: BTreeMap<&str, Vec<Vec<&str>>> = BTreeMap::new();
    for list in owners {
        for (row, manager) in list.rows.iter().zip(&list.managers) {
            let cells = std::iter::once(list.owner.as_str()).chain(row.iter()).collect();
            by_manager.entry(manager.as_str()).or_default().push(cells);
        }
    }
    let name = format!("{}_rollup", e.name);
    let dir = out_dir.join(&name);
    std::fs::create_dir_all(&dir).map_err(|err| format!("cannot create `{}`: {err}", dir.display()))?;
    let columns: Vec<String> = std::iter::once("Owner".to_string()).chain(labels.iter().cloned()).collect();
    let spec = ListMail {
        output: &name,
        title: format!("{} (team roll-up)", e.title),
        subject: "escalation.subject",
        cc: &[],
        columns: &columns,
        dir: &dir,
    };
    let mut managers = Vec::new();
    for (manager, rows) in by_manager {
        if manager.parse::<Mailbox>().is_ok() {
            managers.push((manager, rows));
        } else {
            rendered
                .warnings
                .push(format!("escalation `{}`: manager `{manager}` is not an email address; no roll-up sent", e.name));
        }
    }
    for batch in mail_batches(&managers, |(_, rows)| rows.len()) {
        let per_manager: Vec<Result<OwnerMail, String>> = batch
            .par_iter()
            .map(|(manager, rows)| {
                list_mail(view, &spec, manager, rows, || format!("`{manager}` is not an email address"))
            })
            .collect();
        collect_mails(per_manager, rendered, sink)?;
    }
    Ok(())
}

/// What the lists of one escalation (or its roll-up) share.
struct ListMail<'a> {
    output: &'a str,
    title: String,
    /// The subject's template.
    subject: &'a str,
    cc: &'a [Mailbox],
    columns: &'a [String],
    dir: &'a Path,
}

/// One owner's list: its CSV written to the output's folder, and the mail that carries it
/// (or, for an owner who is not an email address, the warning `invalid` gives).
fn list_mail(
    view: &RunView,
    spec: &ListMail,
    owner: &str,
    rows: &[Vec<&str>],
    invalid: impl Fn() -> String,
) -> Result<OwnerMail, String> {
    let csv = to_csv(spec.columns, rows)?;
    let file_name = format!("{}.csv", safe_file_name(owner));
    let path = spec.dir.join(&file_name);
    std::fs::write(&path, &csv).map_err(|err| format!("cannot write `{}`: {err}", path.display()))?;
    let Ok(to) = owner.parse::<Mailbox>() else {
        return Ok((path, Err(invalid())));
    };
    let cells: Vec<Value> = rows.iter().map(|r| r.iter().map(|&c| Value::from(c)).collect()).collect();
    let ctx = context! {
        job => view.job.name.clone(), as_of => view.as_of.to_string(), title => spec.title.clone(), output => spec.output,
        owner => owner, columns => spec.columns.to_vec(), rows => cells, count => rows.len(),
    };
    let mail = Mail {
        output: spec.output.to_string(),
        to: vec![to],
        cc: spec.cc.to_vec(),
        subject: render_one(view.templates, spec.subject, &ctx)?,
        text: render_one(view.templates, "escalation.txt", &ctx)?,
        html: render_one(view.templates, "escalation.html", &ctx)?,
        inline: Vec::new(),
        attachments: vec![Attachment { file_name, content_type: "text/csv".into(), body: csv }],
    };
    Ok((path, Ok(mail)))
}

/// The files of rendered lists, in order, and their mails to the sink; warnings for the
/// lists without mail.
fn collect_mails(
    lists: Vec<Result<OwnerMail, String>>,
    rendered: &mut Rendered,
    sink: &mut MailSink,
) -> Result<(), String> {
    let mut mails = Vec::with_capacity(lists.len());
    for result in lists {
        let (path, mail) = result?;
        rendered.files.push(path);
        match mail {
            Ok(mail) => mails.push(mail),
            Err(warning) => rendered.warnings.push(warning),
        }
    }
    if mails.is_empty() { Ok(()) } else { sink(mails) }
}

fn render_one(env: &Environment<'static>, name: &str, ctx: &Value) -> Result<String, String> {
    let t = env.get_template(name).map_err(|e| e.to_string())?;
    t.render(ctx).map_err(|e| format!("template `{name}` failed: {e}"))
}

/// The accounts an escalation lists, grouped by owner, each owner's largest first.
fn evaluate_escalation(
    view: &RunView,
    e: &Escalation,
    warnings: &mut Vec<String>,
    escalated: &mut Vec<Escalated>,
) -> Vec<OwnerList> {
    let mut by_owner: BTreeMap<Arc<str>, Vec<(f64, Cells, String)>> = BTreeMap::new();
    let output: Arc<str> = Arc::from(e.name.as_str());
    let mut failures = 0usize;
    let mut first_failure = None;
    // Expressions that only name a column or a rule set's field are read directly; the
    // scope holds only what the others read.
    let owner_expr = Cell::of(view, &e.owner);
    let order_expr = e.order_by.as_ref().map(|o| Cell::of(view, o));
    let rollup_expr = e.rollup.as_ref().map(|r| Cell::of(view, r));
    let column_exprs: Vec<Cell> = e.columns.iter().map(|(_, c)| Cell::of(view, c)).collect();
    let evaluated = || {
        [&owner_expr]
            .into_iter()
            .chain(order_expr.as_ref())
            .chain(rollup_expr.as_ref())
            .chain(&column_exprs)
            .filter_map(|c| match c {
                Cell::Eval(e) => Some(*e),
                _ => None,
            })
    };
    let needs_scope = evaluated().next().is_some();
    let reads = reads_of(evaluated());
    enum Row {
        Skip,
        Failed(String),
        Listed { owner: String, order: f64, cells: Cells, manager: String, account: Arc<str>, state: u128 },
    }
    let plan = reads.plan(view);
    let hits = evaluate_condition(view, &e.when);
    // `when` first, with only what it reads; the columns only for the accounts listed.
    let rows: Vec<Row> = (0..view.entity.len())
        .into_par_iter()
        .map_init(Scope::new, |scope, row| {
            let run = |expr: &Expr, scope: &mut Scope| view.engine.eval_ast_with_scope::<Dynamic>(scope, &expr.ast);
            match &hits[row] {
                Err(err) => return Row::Failed(format!("account `{}`: {err}", view.entity.keys[row])),
                Ok(false) => return Row::Skip,
                Ok(true) => {}
            }
            if needs_scope {
                fill_scope(scope, view, row, &plan);
            }
            let text = |c: &Cell, scope: &mut Scope| match c {
                Cell::Eval(expr) => run(expr, scope).map(|v| display_value(&v)).unwrap_or_default(),
                Cell::Column(column) => display_value(&crate::entity::cell(column, row)),
                Cell::Field(set, field) => field.text(view.outcomes[*set].get(row)),
            };
            let owner = text(&owner_expr, scope);
            let owner = if owner.is_empty() { "unassigned".to_string() } else { owner };
            let order = match &order_expr {
                Some(Cell::Eval(expr)) => run(expr, scope).ok().and_then(|v| crate::rules::engine::number(&v)),
                Some(Cell::Column(c)) => crate::rules::engine::number(&crate::entity::cell(c, row)),
                // Only a score is a number; grades and lists are not.
                Some(Cell::Field(set, ResultField::Score)) => view.outcomes[*set].get(row).score(),
                Some(Cell::Field(..)) | None => None,
            }
            .unwrap_or(0.0);
            let cells = Cells::new(column_exprs.iter().map(|c| text(c, scope)));
            let account = view.entity.keys[row].clone();
            let state = cells.state();
            // Unchanged since it was last sent, and not yet time to remind: leave it out.
            if let Some(remind) = e.remind_after
                && let Some((last_state, last_sent)) = view.escalated.get(&e.name, &account)
                && last_state == state
                && view.as_of - last_sent < remind
            {
                return Row::Skip;
            }
            let manager = rollup_expr.as_ref().map(|r| text(r, scope)).unwrap_or_default();
            Row::Listed { owner, order, cells, manager, account, state }
        })
        // Only the rows listed or failed are kept (a `Row` for each of 1M accounts took 0.14 GB).
        .filter(|row| !matches!(row, Row::Skip))
        .collect();
    for row in rows {
        match row {
            Row::Skip => {}
            Row::Failed(message) => {
                failures += 1;
                first_failure.get_or_insert(message);
            }
            Row::Listed { owner, order, cells, manager, account, state } => {
                // One text for each owner, shared by their rows.
                let owner = match by_owner.get_key_value(owner.as_str()) {
                    Some((known, _)) => known.clone(),
                    None => Arc::from(owner),
                };
                escalated.push(Escalated { output: output.clone(), account, owner: owner.clone(), state });
                by_owner.entry(owner).or_default().push((order, cells, manager));
            }
        }
    }
    if let Some(first) = first_failure {
        warnings.push(format!("escalation `{}`: `when` failed for {failures} accounts; first: {first}", e.name));
    }
    by_owner
        .into_iter()
        .map(|(owner, mut rows)| {
            rows.sort_by(|a, b| b.0.total_cmp(&a.0));
            let (rows, managers) = rows.into_iter().map(|(_, r, m)| (r, m)).unzip();
            OwnerList { owner: owner.to_string(), rows, managers }
        })
        .collect()
}

/// Whether `when` holds for each account (or why it failed). A condition that reads nothing
/// but rule sets' grades is evaluated once per combination of grades rather than once per
/// account: there are a handful of combinations and a million accounts.
pub(crate) fn evaluate_condition(view: &RunView, when: &Expr) -> Vec<Result<bool, String>> {
    let reads = reads_of([when]);
    let plan = reads.plan(view);
    let run = |scope: &mut Scope<'static>, row: usize| {
        fill_scope(scope, view, row, &plan);
        match view.engine.eval_ast_with_scope::<Dynamic>(scope, &when.ast) {
            Ok(v) => Ok(v.as_bool().unwrap_or(false)),
            Err(e) => Err(e.to_string()),
        }
    };
    let grades_only = plan.columns.is_empty()
        && reads.names.iter().all(|n| *n == AS_OF || plan.sets.iter().any(|(s, _, _)| s == n))
        && plan.sets.iter().all(|(_, _, fields)| fields.is_some_and(|f| f.iter().all(|f| *f == "grade")));
    if !grades_only {
        return (0..view.entity.len()).into_par_iter().map_init(Scope::new, |scope, row| run(scope, row)).collect();
    }
    let mut known: HashMap<Vec<Option<&str>>, Result<bool, String>> = HashMap::new();
    let mut key: Vec<Option<&str>> = Vec::with_capacity(plan.sets.len());
    let mut scope = Scope::new();
    (0..view.entity.len())
        .map(|row| {
            key.clear();
            key.extend(plan.sets.iter().map(|&(_, set, _)| view.outcomes[set].get(row).grade()));
            if let Some(hit) = known.get(key.as_slice()) {
                return hit.clone();
            }
            let hit = run(&mut scope, row);
            known.insert(key.clone(), hit.clone());
            hit
        })
        .collect()
}

/// How an output expression is read for each account: directly when it only names an
/// entity column or a field of a rule set's result (most list columns), else in rhai.
/// Both give the same text.
enum Cell<'a> {
    Column(&'a duckdb::arrow::array::ArrayRef),
    Field(usize, ResultField),
    Eval(&'a Expr),
}

#[derive(Clone, Copy)]
enum ResultField {
    Grade,
    Score,
    Reasons,
    Tags,
    Fired,
}

impl<'a> Cell<'a> {
    fn of(view: &'a RunView, e: &'a Expr) -> Cell<'a> {
        let name = e.source.trim();
        let is_ident = |s: &str| {
            s.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        let set = |s: &str| view.rule_sets.iter().position(|r| r.name == s);
        match name.split_once('.') {
            None if is_ident(name) && name != AS_OF && set(name).is_none() => {
                view.entity.column(name).map_or(Cell::Eval(e), Cell::Column)
            }
            Some((s, field)) if is_ident(s) => {
                let field = match field {
                    "grade" => ResultField::Grade,
                    "score" => ResultField::Score,
                    "reasons" => ResultField::Reasons,
                    "tags" => ResultField::Tags,
                    "fired" => ResultField::Fired,
                    _ => return Cell::Eval(e),
                };
                set(s).map_or(Cell::Eval(e), |i| Cell::Field(i, field))
            }
            _ => Cell::Eval(e),
        }
    }
}

impl ResultField {
    /// The field's text, as `display_value` shows the value rhai reads.
    fn text(self, o: OutcomeRef) -> String {
        let list = |l: crate::rules::TextList| l.iter().collect::<Vec<_>>().join("; ");
        match self {
            ResultField::Grade => o.grade().unwrap_or_default().to_string(),
            ResultField::Score => o.score().map(crate::entity::format_float).unwrap_or_default(),
            ResultField::Reasons => list(o.reasons()),
            ResultField::Tags => list(o.tags()),
            ResultField::Fired => list(o.fired()),
        }
    }
}

/// Output expressions see every entity column, every rule set's results and `as_of`.
/// What a group of output expressions reads: the names, and of each rule set the fields
/// (`None`: the whole result, when an expression uses the set as a value).
pub(crate) struct Reads<'a> {
    names: HashSet<&'a str>,
    fields: HashMap<&'a str, Option<HashSet<&'a str>>>,
}

/// Every variable the expressions read.
pub(crate) fn reads_of<'a>(exprs: impl IntoIterator<Item = &'a Expr>) -> Reads<'a> {
    let mut reads = Reads { names: HashSet::new(), fields: HashMap::new() };
    for e in exprs {
        reads.names.extend(e.reads.iter().map(String::as_str));
        for shown in &e.shows {
            match shown.split_once('.') {
                Some((set, field)) => {
                    if let Some(Some(fields)) =
                        Some(reads.fields.entry(set).or_insert_with(|| Some(HashSet::new())).as_mut())
                    {
                        fields.insert(field);
                    }
                }
                None => {
                    reads.fields.insert(shown.as_str(), None);
                }
            }
        }
    }
    reads
}

/// Only the names in `plan` are filled, and of each rule set's result only the fields
/// read: building every result map and every column for each account was most of the time
/// outputs took.
pub(crate) fn fill_scope(scope: &mut Scope<'static>, view: &RunView, row: usize, plan: &ScopePlan) {
    scope.clear();
    scope.push_dynamic(AS_OF, Dynamic::from(view.as_of));
    for &(name, set, fields) in &plan.sets {
        scope.push_dynamic(name, outcome_map(view.outcomes[set].get(row), fields));
    }
    for &(name, column) in &plan.columns {
        scope.push_dynamic(name, crate::entity::cell(column, row));
    }
}

/// Which rule sets and columns [`fill_scope`] fills, resolved once for all accounts: looking
/// every name up for every account was a fifth of the time outputs took at 1M accounts.
pub(crate) struct ScopePlan<'r> {
    sets: Vec<(&'r str, usize, Option<&'r HashSet<&'r str>>)>,
    columns: Vec<(&'r str, &'r duckdb::arrow::array::ArrayRef)>,
}

impl<'a> Reads<'a> {
    pub(crate) fn plan<'r>(&'r self, view: &'r RunView) -> ScopePlan<'r> {
        let sets = view
            .rule_sets
            .iter()
            .enumerate()
            .filter(|(_, s)| self.names.contains(s.name.as_str()))
            .map(|(i, s)| (s.name.as_str(), i, self.fields.get(s.name.as_str()).and_then(Option::as_ref)))
            .collect();
        let columns = view
            .entity
            .schema
            .columns
            .iter()
            .filter(|(name, _)| self.names.contains(name.as_str()))
            .filter_map(|(name, _)| Some((name.as_str(), view.entity.column(name)?)))
            .collect();
        ScopePlan { sets, columns }
    }
}

/// A rule set's result as expressions see it; with `fields`, only those.
fn outcome_map(o: OutcomeRef, fields: Option<&HashSet<&str>>) -> Dynamic {
    let mut map = Map::new();
    crate::rules::eval::insert_result_fields(&mut map, o, |f| fields.is_none_or(|set| set.contains(f)));
    Dynamic::from_map(map)
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
    context! {
        job => view.job.name.clone(), description => view.job.description.clone(), title => s.title.clone(), run_id => view.run_id,
        as_of => view.as_of.to_string(), accounts => view.entity.len(), total_arr => total_arr, rule_sets => sets,
        escalations => escalations, rule_errors => view.rule_errors, rejects => view.rejects, warnings => view.warnings.to_vec(),
    }
}

pub(crate) fn to_csv<S: AsRef<[u8]>>(labels: &[String], rows: &[Vec<S>]) -> Result<String, String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(labels).map_err(|e| e.to_string())?;
    for r in rows {
        w.write_record(r).map_err(|e| e.to_string())?;
    }
    String::from_utf8(w.into_inner().map_err(|e| e.to_string())?).map_err(|e| e.to_string())
}

pub(crate) fn safe_file_name(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || "@._-".contains(c) { c } else { '_' }).collect()
}

#[cfg(test)]
mod tests {
    use super::{Cells, MAIL_BATCH, MAIL_BATCH_ROWS, mail_batches};
    use crate::store::{EscalatedMap, state_digest, state_text};

    fn cells(cells: &[&str]) -> Cells {
        Cells::new(cells.iter().map(|c| c.to_string()))
    }

    /// A row's cells come back as they went in, empty ones included.
    #[test]
    fn cells_keep_each_cell() {
        for row in [&["Acme", "$120,000", "red"][..], &["", "x", ""], &[""], &[], &["a\u{1f}b", "c"]] {
            assert_eq!(cells(row).iter().collect::<Vec<_>>(), row);
        }
    }

    /// A row's state is a digest of its cells; a state kept as text (by stores written before
    /// digests) compares equal to the same row's digest, and a digest is kept as it is.
    #[test]
    fn listing_states_are_digests_of_the_cells() {
        let state = cells(&["Acme", "$120,000", "red"]).state();
        let text = state_text(state);
        assert_eq!(text.len(), 35);
        assert!(text.starts_with("x3:"), "{text}");
        assert_eq!(state_digest("Acme\u{1f}$120,000\u{1f}red"), state);
        assert_eq!(state_digest(&text), state);
        // Hex of another length, or not hex, is an older store's text.
        assert_ne!(state_digest(&text[..34]), state);
        assert_eq!(state_digest("x3:zz"), twox_hash::XxHash3_128::oneshot(b"x3:zz"));
        assert_ne!(cells(&["Acme", "$120,000", "amber"]).state(), state);
        // The cells' boundaries count: not the same as one cell holding both.
        assert_ne!(cells(&["Acme$120,000", "red"]).state(), state);
    }

    #[test]
    fn escalated_map_finds_each_output_s_accounts() {
        let day = |d| chrono::NaiveDate::from_ymd_opt(2026, 11, d).unwrap();
        let mut map = EscalatedMap::default();
        assert!(map.is_empty());
        map.insert("at_risk", "A1", 1, day(1));
        map.insert("swarm", "A1", 2, day(2));
        map.insert("at_risk", "A2", 3, day(3));
        map.insert("at_risk", "A1", 4, day(4));
        assert_eq!(map.len(), 3);
        assert_eq!(map.get("at_risk", "A1"), Some((4, day(4))));
        assert_eq!(map.get("swarm", "A1"), Some((2, day(2))));
        assert_eq!(map.get("at_risk", "A2"), Some((3, day(3))));
        assert_eq!(map.get("swarm", "A2"), None);
        assert_eq!(map.get("renewals", "A1"), None);
    }

    #[test]
    fn mail_batches_hold_few_mails_and_few_rows() {
        let sizes = |items: &[usize]| -> Vec<Vec<usize>> {
            mail_batches(items, |&n| n).into_iter().map(<[usize]>::to_vec).collect()
        };
        assert_eq!(sizes(&[]), Vec::<Vec<usize>>::new());
        assert_eq!(sizes(&[3, 4]), [vec![3, 4]]);
        let big = MAIL_BATCH_ROWS;
        // One list larger than the limit goes alone; the rest fill batches up to it.
        assert_eq!(
            sizes(&[1, big + 5, big / 2, big / 2, 1]),
            [vec![1], vec![big + 5], vec![big / 2, big / 2], vec![1]]
        );
        let many = vec![1; MAIL_BATCH * 2 + 1];
        assert_eq!(sizes(&many).iter().map(Vec::len).collect::<Vec<_>>(), [MAIL_BATCH, MAIL_BATCH, 1]);
    }
}
