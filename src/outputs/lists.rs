//! Escalation lists: which accounts each escalation lists, grouped by owner (and rolled up
//! to managers), written as CSV and mailed in batches.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use lettre::message::Mailbox;
use minijinja::{Environment, Value, context};
use rayon::prelude::*;
use rhai::Scope;

use crate::entity::exact_value;
use crate::rules::Expr;
use crate::rules::eval::results::{Cell, ResultField, evaluate_condition, fill_scope, reads_of};
use crate::store::Escalated;

use super::{Attachment, Escalation, Mail, MailSink, OutputError, Rendered, RunView, file_name, to_csv};

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
    /// Each row's account key, for channels that carry it.
    pub accounts: Vec<Arc<str>>,
}

/// An owner's list written to a file, and their mail (or why there is none).
pub(super) type OwnerMail = (PathBuf, Result<Mail, String>);

/// Owners' lists rendered at once on every core before their mail goes to the sink: enough
/// to keep the cores busy, few enough that a run never holds all its mail (1 GB at 1M
/// accounts).
pub(super) const MAIL_BATCH: usize = 256;

/// At most this many listed accounts per batch: a manager's roll-up can hold thousands,
/// and 256 of them at once were most of a run's peak memory.
pub(super) const MAIL_BATCH_ROWS: usize = 8 * 1024;

/// Consecutive batches of `items`, each of at most [`MAIL_BATCH`] items and, unless one item
/// alone has more, [`MAIL_BATCH_ROWS`] rows.
pub(super) fn mail_batches<T>(items: &[T], rows: impl Fn(&T) -> usize) -> Vec<&[T]> {
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

/// The manager roll-up: each manager gets every listed account of their owners, with the
/// owner as the first column.
pub(super) fn rollup(
    view: &RunView,
    e: &Escalation,
    labels: &[String],
    owners: &[OwnerList],
    out_dir: &Path,
    rendered: &mut Rendered,
    sink: &mut MailSink,
) -> Result<(), OutputError> {
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
    std::fs::create_dir_all(&dir).map_err(OutputError::create_dir(&dir))?;
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
        let per_manager: Vec<Result<OwnerMail, OutputError>> = batch
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
pub(super) struct ListMail<'a> {
    pub(super) output: &'a str,
    pub(super) title: String,
    /// The subject's template.
    pub(super) subject: &'a str,
    pub(super) cc: &'a [Mailbox],
    pub(super) columns: &'a [String],
    pub(super) dir: &'a Path,
}

/// One owner's list: its CSV written to the output's folder, and the mail that carries it
/// (or, for an owner who is not an email address, the warning `invalid` gives).
pub(super) fn list_mail(
    view: &RunView,
    spec: &ListMail,
    owner: &str,
    rows: &[Vec<&str>],
    invalid: impl Fn() -> String,
) -> Result<OwnerMail, OutputError> {
    let csv = to_csv(spec.columns, rows)?;
    let file_name = format!("{}.csv", file_name(owner));
    let path = spec.dir.join(&file_name);
    super::write_whole(&path, csv.as_bytes()).map_err(OutputError::write(&path))?;
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
pub(super) fn collect_mails(
    lists: Vec<Result<OwnerMail, OutputError>>,
    rendered: &mut Rendered,
    sink: &mut MailSink,
) -> Result<(), OutputError> {
    let mut mails = Vec::with_capacity(lists.len());
    for result in lists {
        let (path, mail) = result?;
        rendered.files.push(path);
        match mail {
            Ok(mail) => mails.push(mail),
            Err(warning) => rendered.warnings.push(warning),
        }
    }
    if mails.is_empty() { Ok(()) } else { sink(mails).map_err(OutputError::Sink) }
}

pub(super) fn render_one(env: &Environment<'static>, name: &str, ctx: &Value) -> Result<String, OutputError> {
    let t = env.get_template(name).map_err(OutputError::NoTemplate)?;
    t.render(ctx).map_err(|source| OutputError::Template { name: name.to_string(), source })
}

/// The accounts an escalation lists, grouped by owner, each owner's largest first.
pub(super) fn evaluate_escalation(
    view: &RunView,
    e: &Escalation,
    warnings: &mut Vec<String>,
    escalated: &mut Vec<Escalated>,
) -> (Vec<OwnerList>, Vec<Arc<str>>) {
    // Per owner: each row's order, cells, manager and account.
    type Rows = Vec<(f64, Cells, String, Arc<str>)>;
    let mut by_owner: BTreeMap<Arc<str>, Rows> = BTreeMap::new();
    let output: Arc<str> = Arc::from(e.name.as_str());
    let mut failures = 0usize;
    let mut first_failure = None;
    // Expressions that only name a column or a rule set's field are read directly; the
    // scope holds only what the others read.
    let results = view.results();
    let owner_expr = Cell::of(&results, &e.owner);
    let order_expr = e.order_by.as_ref().map(|o| Cell::of(&results, o));
    let rollup_expr = e.rollup.as_ref().map(|r| Cell::of(&results, r));
    let column_exprs: Vec<Cell> = e.columns.iter().map(|(_, c)| Cell::of(&results, c)).collect();
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
    let plan = reads.plan(&results);
    let hits = evaluate_condition(&results, &e.when);
    let flagged: Vec<Arc<str>> = hits
        .iter()
        .enumerate()
        .filter(|(_, h)| matches!(h, Ok(true)))
        .map(|(row, _)| view.entity.keys[row].clone())
        .collect();
    // `when` first, with only what it reads; the columns only for the accounts listed.
    let rows: Vec<Row> = (0..view.entity.len())
        .into_par_iter()
        .map_init(Scope::new, |scope, row| {
            let run = |expr: &Expr, scope: &mut Scope| results.eval(expr, scope);
            match &hits[row] {
                Err(err) => return Row::Failed(format!("account `{}`: {err}", view.entity.keys[row])),
                Ok(false) => return Row::Skip,
                Ok(true) => {}
            }
            if needs_scope {
                fill_scope(scope, &results, row, &plan);
            }
            let text = |c: &Cell, scope: &mut Scope| match c {
                Cell::Eval(expr) => run(expr, scope).map(|v| exact_value(&v)).unwrap_or_default(),
                Cell::Column(column) => exact_value(&crate::entity::cell(column, row)),
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
                escalated.push(Escalated {
                    output: output.clone(),
                    account: account.clone(),
                    owner: owner.clone(),
                    state,
                });
                by_owner.entry(owner).or_default().push((order, cells, manager, account));
            }
        }
    }
    if let Some(first) = first_failure {
        warnings.push(format!("escalation `{}`: `when` failed for {failures} accounts; first: {first}", e.name));
    }
    let lists = by_owner
        .into_iter()
        .map(|(owner, mut rows)| {
            rows.sort_by(|a, b| b.0.total_cmp(&a.0));
            let (mut list_rows, mut managers, mut accounts) = (Vec::new(), Vec::new(), Vec::new());
            for (_, r, m, a) in rows {
                list_rows.push(r);
                managers.push(m);
                accounts.push(a);
            }
            OwnerList { owner: owner.to_string(), rows: list_rows, managers, accounts }
        })
        .collect();
    (lists, flagged)
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
