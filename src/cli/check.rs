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

impl Args {
    pub fn json(&self) -> bool {
        self.format == Format::Json
    }
}

/// `keepwell.yaml` did not read: nothing else was checked.
pub fn settings_failed(diags: &Diagnostics) -> ExitStatus {
    let doc = serde_json::json!({
        "jobs": 0, "rule_sets": 0, "errors": diags.errors(), "warnings": diags.warnings(),
        "diagnostics": diags.to_json(), "sources_outside_the_project": [],
    });
    println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    ExitStatus::Config
}

pub fn execute(project: &Project, args: &Args) -> ExitStatus {
    let (rules, mut diags) = RuleSetSources::load(&project.root, &project.rules_dir());
    let jobs = match &args.job {
        Some(j) => vec![project.job_path(j)],
        None => project.job_paths(),
    };
    let today = chrono::Local::now().date_naive();
    // Sources may live outside the project (extract folders often do): where each of those
    // resolves is shown, so a path that reaches somewhere unexpected is seen.
    let mut outside: Vec<(String, String, String)> = Vec::new();
    let root = project.root.canonicalize().unwrap_or_else(|_| project.root.clone());
    for path in &jobs {
        match Plan::compile(project, path, &rules, today) {
            Err(d) => diags.extend(d),
            Ok(plan) => {
                diags.extend(Diagnostics(plan.warnings.0.clone()));
                for source in &plan.job.sources {
                    let resolved = resolved(&source.pattern);
                    if !resolved.starts_with(&root) {
                        outside.push((plan.job.name.clone(), source.name.clone(), resolved.display().to_string()));
                    }
                }
            }
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
            "sources_outside_the_project": outside
                .iter()
                .map(|(job, source, path)| serde_json::json!({"job": job, "source": source, "path": path}))
                .collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return status;
    }
    if !diags.is_empty() {
        eprintln!("{diags}");
    }
    for (job, source, path) in &outside {
        println!("source `{source}` of job `{job}` reads {path}, outside the project");
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

/// A source's path with `..` and symlinks resolved, as far as the part before any glob
/// exists.
fn resolved(pattern: &str) -> std::path::PathBuf {
    let path = std::path::Path::new(pattern);
    let fixed: std::path::PathBuf =
        path.components().take_while(|c| !c.as_os_str().to_string_lossy().contains(['*', '?', '['])).collect();
    let rest = path.strip_prefix(&fixed).unwrap_or(std::path::Path::new(""));
    match fixed.canonicalize() {
        Ok(real) if rest.as_os_str().is_empty() => real,
        Ok(real) => real.join(rest),
        Err(_) => path.to_path_buf(),
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
