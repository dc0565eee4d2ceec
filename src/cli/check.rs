//! `keepwell check`: every problem in every job and rule file, at once.

use crate::cli::ExitStatus;
use crate::config::diagnostic::Diagnostics;
use crate::config::project::Project;
use crate::rules::RuleSetSources;
use crate::run::plan::Plan;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this job (name or path); default: every job in jobs/.
    job: Option<String>,
}

pub fn execute(project: &Project, args: &Args) -> ExitStatus {
    let (rules, mut diags) = RuleSetSources::load(&project.root, &project.rules_dir());
    let jobs = match &args.job {
        Some(j) => vec![project.job_path(j)],
        None => project.job_paths(),
    };
    let today = chrono::Local::now().date_naive();
    for path in &jobs {
        if let Err(d) = Plan::compile(project, path, &rules, today) {
            diags.extend(d);
        }
    }
    let diags = dedup(diags).sorted();
    if !diags.is_empty() {
        eprintln!("{diags}");
    }
    let summary = format!(
        "checked {} job{} and {} rule set{}: {} error{}, {} warning{}",
        jobs.len(),
        plural(jobs.len()),
        rules.sets.len(),
        plural(rules.sets.len()),
        diags.errors(),
        plural(diags.errors()),
        diags.warnings(),
        plural(diags.warnings()),
    );
    if diags.has_errors() {
        eprintln!("{summary}");
        ExitStatus::Config
    } else {
        println!("{summary}");
        ExitStatus::Success
    }
}

/// Several jobs share rule sets; report each problem once.
fn dedup(diags: Diagnostics) -> Diagnostics {
    let mut seen = std::collections::HashSet::new();
    Diagnostics(diags.0.into_iter().filter(|d| seen.insert(d.to_string())).collect())
}

pub fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
