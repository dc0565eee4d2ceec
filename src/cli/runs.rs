//! `keepwell runs`: recent runs, newest first.

use crate::cli::ExitStatus;
use crate::config::project::Project;
use crate::store::Store;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only runs of this job.
    #[arg(long)]
    job: Option<String>,
    /// How many runs to show.
    #[arg(long, default_value_t = 20)]
    limit: usize,
    /// One JSON object per run.
    #[arg(long)]
    json: bool,
}

pub fn execute(project: &Project, args: &Args) -> ExitStatus {
    let store = match Store::open(&project.store) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitStatus::Failure;
        }
    };
    let runs = match store.runs(args.job.as_deref(), args.limit) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitStatus::Failure;
        }
    };
    if args.json {
        for r in &runs {
            println!("{}", serde_json::to_string(r).unwrap_or_default());
        }
        return ExitStatus::Success;
    }
    if runs.is_empty() {
        println!("no runs yet in {}", project.display(&project.store));
        return ExitStatus::Success;
    }
    println!(
        "{:>5}  {:<16} {:<10}  {:<9}  {:>8}  {:>8}  {:<20}  error",
        "run", "job", "as of", "status", "accounts", "seconds", "started (UTC)"
    );
    for r in &runs {
        let seconds = r
            .finished_at
            .map(|f| format!("{:.2}", (f - r.started_at).num_milliseconds() as f64 / 1000.0))
            .unwrap_or_default();
        println!(
            "{:>5}  {:<16} {:<10}  {:<9}  {:>8}  {:>8}  {:<20}  {}",
            r.run_id,
            r.job,
            r.as_of,
            r.status,
            r.accounts.map(|a| a.to_string()).unwrap_or_default(),
            seconds,
            r.started_at.format("%Y-%m-%d %H:%M:%S"),
            r.error.as_deref().unwrap_or("")
        );
    }
    ExitStatus::Success
}
