//! `keepwell validate [job]`: the rule sets measured against what happened to the accounts.

use std::fmt::Write as _;

use crate::authoring::validate::{ValidateError, ValidateOptions, validate};
use crate::cli::{ExitStatus, money, table};
use crate::config::project::Project;
use crate::validation::text::{self, interval, pct, times};
use crate::validation::{Rate, Replay, RootCause, SetFigures, Validation, ValidationError};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The job whose history and outcomes to use (default: the project's only job).
    job: Option<String>,
    /// How long before each outcome the grades are read: `90d`, `12w` (default: the job's
    /// `validation: horizon`, else 90 days).
    #[arg(long)]
    horizon: Option<String>,
    /// Only outcomes on or after this day (YYYY-MM-DD).
    #[arg(long)]
    since: Option<chrono::NaiveDate>,
    /// Replay these rules (a git revision such as `HEAD` or `main`, or a folder) and the
    /// working tree's on the stored snapshots, and set their figures side by side.
    #[arg(long)]
    base: Option<String>,
    /// Machine-readable output.
    #[arg(long, conflicts_with = "markdown")]
    json: bool,
    /// Markdown, for a pull request or a wiki page.
    #[arg(long)]
    markdown: bool,
}

pub fn execute(project: &Project, args: &Args) -> ExitStatus {
    let job = match crate::cli::job_path(project, args.job.as_deref()) {
        Ok(path) => path,
        Err(status) => return status,
    };
    let horizon_days = match args.horizon.as_deref().map(|h| (h, crate::config::job::horizon_days(h))) {
        None => None,
        Some((_, Some(days))) => Some(days),
        Some((h, None)) => {
            eprintln!("error: `--horizon {h}` is not a number of days: write `90d` or `12w`");
            return ExitStatus::Config;
        }
    };
    match validate(project, &ValidateOptions { job: &job, horizon_days, since: args.since, base: args.base.as_deref() })
    {
        Ok(v) if args.json => {
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            ExitStatus::Success
        }
        Ok(v) => {
            print!("{}", render(&v, args.markdown));
            ExitStatus::Success
        }
        Err(ValidateError::Config(diags)) => {
            eprint!("{diags}");
            ExitStatus::Config
        }
        Err(
            e @ (ValidateError::Validation(ValidationError::NoOutcomes(_))
            | ValidateError::NoStore(_)
            | ValidateError::NoHistory(_)),
        ) => {
            eprintln!("error: {e}");
            ExitStatus::Config
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitStatus::Failure
        }
    }
}

fn heading(out: &mut String, markdown: bool, level: usize, text: &str) {
    match markdown {
        true => {
            let _ = writeln!(out, "{} {text}\n", "#".repeat(level + 2));
        }
        false => {
            let _ = writeln!(out, "{text}\n");
        }
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

pub fn render(v: &Validation, markdown: bool) -> String {
    let mut out = String::new();
    let c = &v.coverage;
    let title = format!(
        "Validation of job `{}` against `{}`: grades read {} days before each outcome",
        v.job, v.outcomes_file, v.horizon_days
    );
    heading(&mut out, markdown, 1, &title);
    let since = v.since.map(|d| format!(" since {d}")).unwrap_or_default();
    let runs = match (c.first_run, c.last_run) {
        (Some(a), Some(b)) => format!("published runs from {a} to {b}"),
        _ => "no published runs".into(),
    };
    let _ = writeln!(
        out,
        "{}{since}: {} renewed, {} churned, {} downsold, {} expanded. {} scored {} days before ({runs}); \
         {} earlier than the history, {} not yet in the run then.\n",
        plural(c.events, "outcome", "outcomes"),
        c.renewed,
        c.churned,
        c.downsold,
        c.expanded,
        c.scored,
        v.horizon_days,
        c.before_history,
        c.not_in_run
    );
    if c.scored == 0 {
        let _ = writeln!(
            out,
            "Nothing to measure yet: no outcome has a published run {} days before it. Record outcomes as they \
             happen (or a shorter `--horizon`), and validate again.",
            v.horizon_days
        );
        return out;
    }
    for s in &v.figures.rule_sets {
        rule_set(&mut out, s, v.min_count, markdown);
    }
    escalations(&mut out, v, markdown);
    forecast(&mut out, v, markdown);
    foreseen(&mut out, v, markdown);
    root_cause(&mut out, &v.root_cause, markdown);
    if let Some(r) = &v.replay {
        replay(&mut out, r, markdown);
    }
    out
}

fn replay(out: &mut String, r: &Replay, markdown: bool) {
    let missing = match r.missing_snapshots {
        0 => String::new(),
        n => format!(" ({} without a snapshot left out)", plural(n, "run", "runs")),
    };
    let title = format!(
        "Replay: `{}` (base) and the working tree (new), both evaluated on the snapshots of {}{missing}",
        r.base,
        plural(r.runs, "run", "runs")
    );
    heading(out, markdown, 2, &title);
    let mut rows = vec![
        ["rule set", "accounts", "AUC base", "AUC new", "top-decile base", "top-decile new"].map(String::from).to_vec(),
    ];
    for new in &r.work_figures.rule_sets {
        let base = r.base_figures.rule_sets.iter().find(|b| b.rule_set == new.rule_set);
        rows.push(vec![
            new.rule_set.clone(),
            new.accounts.to_string(),
            text::auc(base.and_then(|b| b.auc)),
            text::auc(new.auc),
            times(base.and_then(|b| b.top_decile_lift)),
            times(new.top_decile_lift),
        ]);
    }
    table(out, &rows, markdown);
    let _ = writeln!(out);
    let mut rows = vec![
        ["rule set", "grade", "base accounts", "churned", "churn rate", "new accounts", "churned", "churn rate"]
            .map(String::from)
            .to_vec(),
    ];
    for new in &r.work_figures.rule_sets {
        let base = r.base_figures.rule_sets.iter().find(|b| b.rule_set == new.rule_set);
        let mut grades: Vec<&str> = base.into_iter().flat_map(|b| b.grades.iter().map(|g| g.grade.as_str())).collect();
        for g in &new.grades {
            if !grades.contains(&g.grade.as_str()) {
                grades.push(&g.grade);
            }
        }
        for grade in grades {
            let side =
                |f: Option<&SetFigures>| f.and_then(|f| f.grades.iter().find(|g| g.grade == grade)).map(|g| g.churn);
            let cells = |r: Option<Rate>| match r {
                Some(r) => [r.of.to_string(), r.count.to_string(), pct(r.rate)],
                None => ["0".into(), "0".into(), "-".into()],
            };
            let mut row = vec![new.rule_set.clone(), grade.to_string()];
            row.extend(cells(side(base)));
            row.extend(cells(side(Some(new))));
            rows.push(row);
        }
    }
    table(out, &rows, markdown);
    let _ = writeln!(out);
    let (Some(new), Some(base)) = (&r.work_figures.escalations, &r.base_figures.escalations) else { return };
    for e in new {
        let Some(b) = base.iter().find(|b| b.output == e.output) else { continue };
        for (n, o) in e.horizons.iter().zip(&b.horizons) {
            let (alarms_new, alarms_old) = (n.flagged - n.caught, o.flagged - o.caught);
            let cost = match alarms_new.cmp(&alarms_old) {
                std::cmp::Ordering::Greater => {
                    format!(
                        "at the cost of {}",
                        plural(alarms_new - alarms_old, "more false alarm", "more false alarms")
                    )
                }
                std::cmp::Ordering::Less => {
                    format!("with {}", plural(alarms_old - alarms_new, "false alarm fewer", "fewer false alarms"))
                }
                std::cmp::Ordering::Equal => format!("with as many false alarms ({alarms_new})"),
            };
            let _ = writeln!(
                out,
                "{}{} at {} days: the new rules flag {} of {}, the old {}, {cost}; precision {} against {}",
                if markdown { "- " } else { "  " },
                e.output,
                n.days,
                n.caught,
                plural(n.churned, "churner", "churners"),
                o.caught,
                pct(n.precision),
                pct(o.precision)
            );
        }
    }
    let _ = writeln!(out);
}

fn rule_set(out: &mut String, s: &SetFigures, min_count: u64, markdown: bool) {
    let direction = if s.direction == "health" { "a higher score is healthier" } else { "a higher score is riskier" };
    let auc = text::auc(s.auc);
    let title = format!(
        "{} ({direction}): {} accounts, {} churned, base rate {}; AUC {auc}, top-decile lift {}",
        s.rule_set,
        s.accounts,
        s.churned,
        pct(s.base_rate),
        times(s.top_decile_lift)
    );
    heading(out, markdown, 2, &title);
    let mut rows = vec![
        ["grade", "accounts", "churned", "churn rate", "95% interval", "lift", "churned ARR", ""]
            .map(String::from)
            .to_vec(),
    ];
    for g in &s.grades {
        rows.push(vec![
            g.grade.clone(),
            g.churn.of.to_string(),
            g.churn.count.to_string(),
            pct(g.churn.rate),
            interval(&g.churn),
            times(g.lift),
            pct(g.churned_arr_share),
            if g.too_few { "too few to tell".into() } else { String::new() },
        ]);
    }
    table(out, &rows, markdown);
    let _ = writeln!(out);
    let mut rows = vec![
        ["rule", "fired", "churned", "churn rate", "95% interval", "not fired", "churn rate", "lift", ""]
            .map(String::from)
            .to_vec(),
    ];
    for r in &s.rules {
        rows.push(vec![
            r.rule.clone(),
            r.fired.of.to_string(),
            r.fired.count.to_string(),
            pct(r.fired.rate),
            interval(&r.fired),
            r.not_fired.of.to_string(),
            pct(r.not_fired.rate),
            times(r.lift),
            if r.too_few { format!("too few to tell (under {min_count})") } else { String::new() },
        ]);
    }
    if rows.len() > 1 {
        table(out, &rows, markdown);
        let _ = writeln!(out);
    }
    if !s.never_on_churned.is_empty() && s.churned > 0 {
        let _ = writeln!(out, "Never fired on a churned account: {}.\n", s.never_on_churned.join(", "));
    }
}

fn escalations(out: &mut String, v: &Validation, markdown: bool) {
    let Some(escalations) = &v.figures.escalations else {
        let _ = writeln!(out, "Escalations: no run has recorded what its escalations flagged yet.\n");
        return;
    };
    if escalations.is_empty() {
        return;
    }
    heading(
        out,
        markdown,
        2,
        "Escalations: precision (churned of those flagged) and recall (flagged of those churned)",
    );
    let mut rows = vec![
        ["escalation", "days before", "accounts", "flagged", "churned", "caught", "precision", "recall"]
            .map(String::from)
            .to_vec(),
    ];
    for e in escalations {
        for h in &e.horizons {
            rows.push(vec![
                e.output.clone(),
                h.days.to_string(),
                h.accounts.to_string(),
                h.flagged.to_string(),
                h.churned.to_string(),
                h.caught.to_string(),
                pct(h.precision),
                pct(h.recall),
            ]);
        }
    }
    table(out, &rows, markdown);
    let _ = writeln!(out);
}

fn forecast(out: &mut String, v: &Validation, markdown: bool) {
    let Some(f) = &v.figures.forecast else { return };
    let by = f.category.as_ref().map(|c| format!(" by `{c}` grade")).unwrap_or_default();
    let title = format!("Forecast: ARR before times the `{}` score, against the ARR kept{by}", f.rule_set);
    heading(out, markdown, 2, &title);
    let mut rows = vec![
        ["category", "accounts", "ARR before", "expected", "actual", "error", "error %"].map(String::from).to_vec(),
    ];
    for r in f.rows.iter().chain(std::iter::once(&f.overall)) {
        rows.push(vec![
            r.category.clone(),
            r.accounts.to_string(),
            money(r.arr_before),
            money(r.expected),
            money(r.actual),
            money(r.error),
            pct(r.error_share),
        ]);
    }
    table(out, &rows, markdown);
    let _ = writeln!(out);
}

fn foreseen(out: &mut String, v: &Validation, markdown: bool) {
    if v.figures.foreseen.is_empty() {
        return;
    }
    let title = format!(
        "Did we see it coming: churned and downsold accounts by the reason given, and the share on which \
         a rule tagged with it fired in the {} days before",
        v.horizon_days
    );
    heading(out, markdown, 2, &title);
    let mut rows = vec![["reason", "accounts", "seen", "share", "median lead", ""].map(String::from).to_vec()];
    for f in &v.figures.foreseen {
        rows.push(vec![
            f.reason.clone(),
            f.accounts.to_string(),
            f.seen.to_string(),
            pct(f.share),
            f.median_lead_days.map_or("-".into(), |d| format!("{d} days")),
            if f.no_signal { "no rule is tagged with it".into() } else { String::new() },
        ]);
    }
    table(out, &rows, markdown);
    let _ = writeln!(out);
}

fn root_cause(out: &mut String, r: &RootCause, markdown: bool) {
    if r.accounts == 0 {
        return;
    }
    let title = format!(
        "Root cause: {} churned or downsold, {} ARR lost; a reason is systemic with at least {} and {} \
         of the accounts or of the ARR lost",
        plural(r.accounts, "account", "accounts"),
        money(r.lost_arr),
        plural(r.systemic_count, "account", "accounts"),
        pct(Some(r.systemic_share))
    );
    heading(out, markdown, 2, &title);
    let mut rows = vec![
        ["reason", "accounts", "share", "ARR lost", "ARR share", "verdict", "accounts"].map(String::from).to_vec(),
    ];
    for row in &r.overall {
        rows.push(vec![
            row.reason.clone(),
            row.accounts.to_string(),
            pct(Some(row.share)),
            money(row.lost_arr),
            pct(row.arr_share),
            if row.systemic { "systemic".into() } else { "one-off".into() },
            row.account_ids.join(" "),
        ]);
    }
    table(out, &rows, markdown);
    let _ = writeln!(out);
    for d in &r.segments {
        let systemic: Vec<String> = d
            .segments
            .iter()
            .flat_map(|s| {
                s.reasons.iter().filter(|x| x.systemic).map(move |x| {
                    format!(
                        "{}: {} ({} of {}, {} of the ARR lost): {}",
                        s.segment,
                        x.reason,
                        x.accounts,
                        s.accounts,
                        pct(x.arr_share),
                        x.account_ids.join(" ")
                    )
                })
            })
            .collect();
        let verdict =
            if systemic.is_empty() { " no reason is systemic within a segment".to_string() } else { String::new() };
        let _ = writeln!(out, "By {}:{verdict}", d.by);
        for line in systemic {
            let _ = writeln!(out, "{}{line}", if markdown { "- " } else { "  " });
        }
        let _ = writeln!(out);
    }
}
