//! `keepwell demo-data`: write the demo extracts.

use std::path::PathBuf;
use std::time::Instant;

use chrono::NaiveDate;

use crate::authoring::demo_data::{DemoOptions, generate};
use crate::cli::ExitStatus;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// How many accounts.
    #[arg(long, default_value_t = 500)]
    accounts: usize,
    /// The same seed gives the same files.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// The day the data ends on.
    #[arg(long, default_value = "2026-11-23")]
    as_of: NaiveDate,
    /// Where to write the CSV files.
    #[arg(long, default_value = "fixtures")]
    out: PathBuf,
}

pub fn execute(args: &Args) -> ExitStatus {
    let started = Instant::now();
    let options = DemoOptions { accounts: args.accounts, seed: args.seed, as_of: args.as_of };
    match generate(&options, &args.out) {
        Ok(written) => {
            for (file, rows) in &written.files {
                println!("{:>12} rows  {}", rows, args.out.join(file).display());
            }
            println!("{} accounts in {:.1}s", args.accounts, started.elapsed().as_secs_f64());
            ExitStatus::Success
        }
        Err(e) => {
            eprintln!("error: cannot write to {}: {e}", args.out.display());
            ExitStatus::Failure
        }
    }
}
