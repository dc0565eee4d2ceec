//! `keepwell serve`: the daemon that runs every scheduled job.

use crate::cli::ExitStatus;
use crate::config::project::Project;
use crate::scheduler::daemon::{ServeError, serve};

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn execute(project: &Project, _args: &Args) -> ExitStatus {
    match serve(project) {
        Ok(()) => ExitStatus::Success,
        Err(ServeError::Config(d)) => {
            eprintln!("{d}");
            ExitStatus::Config
        }
        Err(e @ ServeError::Locked { .. }) => {
            eprintln!("error: {e}");
            ExitStatus::Config
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitStatus::Failure
        }
    }
}
