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
    /// `human`: snippets on stderr; `json`: one JSON document on stdout for editors and CI
    /// (every diagnostic's code, severity, message, file, line, column, end and hint).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Human,
    Json,
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
    let status = if diags.has_errors() { ExitStatus::Config } else { ExitStatus::Success };
    if args.format == Format::Json {
        let doc = serde_json::json!({
            "jobs": jobs.len(),
            "rule_sets": rules.sets.len(),
            "errors": diags.errors(),
            "warnings": diags.warnings(),
            "diagnostics": diags.to_json(),
        });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return status;
    }
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
    } else {
        println!("{summary}");
    }
    status
}

/// Several jobs share rule sets; report each problem once.
fn dedup(diags: Diagnostics) -> Diagnostics {
    let mut seen = std::collections::HashSet::new();
    Diagnostics(diags.0.into_iter().filter(|d| seen.insert(d.to_string())).collect())
}

pub fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
