//! `keepwell status`: each scheduled job, its next fire time and its last run.

use chrono::Utc;

use crate::cli::ExitStatus;
use crate::config::project::Project;
use crate::scheduler::daemon::{ServeError, scheduled_jobs};
use crate::scheduler::next_fire;
use crate::store::Store;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn execute(project: &Project, _args: &Args) -> ExitStatus {
    let jobs = match scheduled_jobs(project) {
        Ok(j) => j,
        Err(ServeError::Config(d)) => {
            eprintln!("{d}");
            return ExitStatus::Config;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitStatus::Failure;
        }
    };
    if jobs.is_empty() {
        println!("no job has a schedule");
        return ExitStatus::Success;
    }
    let store = Store::open(&project.store);
    println!(
        "{:<16} {:<16} {:<18} {:<26} {:<10} {:>8}  last as of",
        "job", "cron", "time zone", "next fire (local)", "last run", "seconds"
    );
    for (_, job) in &jobs {
        let schedule = job.schedule.as_ref().expect("scheduled");
        let next = next_fire(schedule, Utc::now())
            .map(|t| t.format("%Y-%m-%d %H:%M %Z").to_string())
            .unwrap_or_else(|| "never".into());
        let last = store.as_ref().ok().and_then(|s| s.runs(Some(&job.name), 1).ok()).and_then(|r| r.into_iter().next());
        let (status, seconds, as_of) = match &last {
            Some(r) => (
                r.status.clone(),
                r.finished_at
                    .map(|f| format!("{:.1}", (f - r.started_at).num_milliseconds() as f64 / 1000.0))
                    .unwrap_or_default(),
                r.as_of.to_string(),
            ),
            None => ("never".into(), String::new(), String::new()),
        };
        println!(
            "{:<16} {:<16} {:<18} {:<26} {:<10} {:>8}  {}",
            job.name,
            schedule.cron_text,
            schedule.timezone.name(),
            next,
            status,
            seconds,
            as_of
        );
    }
    ExitStatus::Success
}
