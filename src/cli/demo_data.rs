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
    /// Days of history before `--as-of`: the extracts are dated over it and `outcomes.csv`
    /// records the renewals and churns of its last weeks (0: one snapshot, no outcomes).
    #[arg(long, default_value_t = 0)]
    history_days: i64,
    /// Where to write the CSV files.
    #[arg(long, default_value = "fixtures")]
    out: PathBuf,
}

pub fn execute(args: &Args) -> ExitStatus {
    let started = Instant::now();
    if args.history_days != 0 && args.history_days < 120 {
        eprintln!(
            "error: --history-days takes 0 (no history) or at least 120 days, so outcomes have runs 98 days before them"
        );
        return ExitStatus::Config;
    }
    let options =
        DemoOptions { accounts: args.accounts, seed: args.seed, as_of: args.as_of, history_days: args.history_days };
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
