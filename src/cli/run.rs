//! `keepwell run <job>`: run a job now and say where its results went.

use std::fmt::Write as _;
use std::io::IsTerminal;

use chrono::NaiveDate;

use crate::cli::ExitStatus;
use crate::cli::check::plural;
use crate::config::project::Project;
use crate::run::{self, RunOptions, RunReport, RunStatus};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The job: a name in jobs/ (`nightly`) or a path (default: the project's only job).
    job: Option<String>,
    /// The day the run is for (default: today). Rules count days from it.
    #[arg(long, value_name = "YYYY-MM-DD")]
    as_of: Option<NaiveDate>,
    /// Evaluate everything but record nothing and send no mail.
    #[arg(long)]
    dry_run: bool,
    /// Record the results but send no mail and remember no escalation: for filling in the
    /// history of earlier days.
    #[arg(long, conflicts_with = "dry_run")]
    no_mail: bool,
}

pub fn execute(project: &Project, args: &Args) -> ExitStatus {
    let options = RunOptions {
        as_of: args.as_of.unwrap_or_else(|| chrono::Local::now().date_naive()),
        dry_run: args.dry_run,
        no_mail: args.no_mail,
    };
    let path = match crate::cli::job_path(project, args.job.as_deref()) {
        Ok(path) => path,
        Err(status) => return status,
    };
    let job = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
    // A spinner naming the stage, only for a person at a terminal.
    let spinner = (std::io::stdout().is_terminal() && !crate::cli::quiet()).then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {elapsed:>3} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        bar
    });
    let progress = |stage: &str| {
        if let Some(bar) = &spinner {
            bar.set_message(format!("{job}: {stage}"));
        }
    };
    let result = run::run_with_progress(project, &path, options, &progress);
    if let Some(bar) = &spinner {
        bar.finish_and_clear();
    }
    match result {
        Err(diags) => {
            eprintln!("{diags}");
            eprintln!(
                "the job was not run: {} error{} in its files (see `keepwell check`)",
                diags.errors(),
                plural(diags.errors())
            );
            ExitStatus::Config
        }
        Ok(report) => {
            if !crate::cli::quiet() {
                print!("{}", describe(project, &report, options.dry_run));
            } else if let Some(e) = &report.error {
                eprintln!("error: {e}");
            }
            match report.status {
                RunStatus::Succeeded => ExitStatus::Success,
                RunStatus::Degraded | RunStatus::Failed => ExitStatus::Failure,
            }
        }
    }
}

/// The summary a person reads after a run.
fn describe(project: &Project, r: &RunReport, dry_run: bool) -> String {
    let mut out = String::new();
    // Summed from zero: an empty f64 sum is -0.0, which prints as "-0.00s".
    let total: f64 = r.stages.iter().fold(0.0, |sum, (_, d)| sum + d.as_secs_f64());
    let run = match r.run_id {
        Some(id) => format!("run {id}"),
        None if dry_run => "dry run".to_string(),
        // The store could not be opened or the run begun: nothing was recorded.
        None => "not started".to_string(),
    };
    let _ = writeln!(out, "job {}, {run}, as of {}: {} in {total:.2}s", r.job, r.as_of, r.status.as_str());
    if let Some(e) = &r.error {
        let _ = writeln!(out, "  error    {e}");
    }
    if !r.row_counts.is_empty() {
        let loaded: Vec<String> = r.row_counts.iter().map(|(s, n)| format!("{s} {n}")).collect();
        let _ = writeln!(out, "  loaded   {} (rows), {} rejected", loaded.join(", "), r.rejects.len());
    }
    const SHOWN: usize = 5;
    for reject in r.rejects.iter().take(SHOWN) {
        let _ = writeln!(out, "           rejected {reject}");
    }
    if r.rejects.len() > SHOWN {
        let more = r.rejects.len() - SHOWN;
        let kept = if r.run_id.is_some() {
            "in the rejects table and run.json"
        } else {
            "not kept: a dry run records nothing"
        };
        let _ = writeln!(out, "           and {more} more reject{} ({kept})", if more == 1 { "" } else { "s" });
    }
    if r.accounts > 0 {
        let stages: Vec<String> = r.stages.iter().map(|(s, d)| format!("{s} {:.2}s", d.as_secs_f64())).collect();
        let _ = writeln!(out, "  scored   {} accounts ({})", r.accounts, stages.join(", "));
    }
    if !r.account_errors.is_empty() {
        let _ = writeln!(
            out,
            "  errors   {} rule error{} on single accounts (the others were scored):",
            r.account_errors.len(),
            plural(r.account_errors.len())
        );
        for e in r.account_errors.iter().take(5) {
            let _ = writeln!(
                out,
                "           rule `{}` of `{}` for account `{}`: {}",
                e.rule, e.rule_set, e.account, e.message
            );
        }
    }
    for w in &r.warnings {
        let _ = writeln!(out, "  warning  {w}");
    }
    if r.status != RunStatus::Failed && !dry_run {
        let _ =
            writeln!(out, "  results  {} (runs.run_id = {})", project.display(&r.store), r.run_id.unwrap_or_default());
    }
    if let Some(first) = r.files.first() {
        let dir = first.parent().and_then(|p| p.parent()).unwrap_or(first);
        let _ =
            writeln!(out, "  lists    {} CSV file{} in {}", r.files.len(), plural(r.files.len()), project.display(dir));
    }
    if r.mails_already_sent > 0 {
        let _ = writeln!(
            out,
            "  mail     {} message{} already sent for this day, not sent again",
            r.mails_already_sent,
            plural(r.mails_already_sent)
        );
    }
    if !r.mails.is_empty() {
        let where_to = match &project.mail.smtp {
            Some(smtp) => format!("sent through {}:{}", smtp.host, smtp.port),
            None => format!("written to {}", project.display(&project.outbox.join(&r.job).join(r.as_of.to_string()))),
        };
        let _ = writeln!(out, "  mail     {} message{} {where_to}", r.mails.len(), plural(r.mails.len()));
    }
    if !r.posts.is_empty() {
        // `slack cs (hooks.slack.com)` per post: counted by where they went.
        let mut by: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
        for p in &r.posts {
            *by.entry(p.as_str()).or_default() += 1;
        }
        let to: Vec<String> = by.iter().map(|(k, n)| format!("{n} to {k}")).collect();
        let _ = writeln!(out, "  posts    {}", to.join(", "));
    }
    for t in &r.tasks {
        let _ = match t.behind {
            Some(last) => writeln!(
                out,
                "  tasks    {}: not tracked, their last events are of {last} (tasks only move forward)",
                t.output
            ),
            None => writeln!(
                out,
                "  tasks    {}: {} opened, {} updated, {} closed",
                t.output, t.opened, t.updated, t.closed
            ),
        };
    }
    if r.status == RunStatus::Failed && r.published {
        let _ = writeln!(out, "  the results were published before the run failed; see the error above");
    } else if r.status == RunStatus::Failed {
        let _ = writeln!(out, "  nothing was published; the previous results are unchanged");
    }
    out
}
