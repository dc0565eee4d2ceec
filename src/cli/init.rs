//! `keepwell init [DIR] [--from FILE ...]`: a new project that checks and runs at once.

use std::path::PathBuf;

use crate::authoring::init::{plan, write_all};
use crate::cli::ExitStatus;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The project folder (default: the current folder); created when missing.
    dir: Option<PathBuf>,
    /// Extracts to start from (CSV, Parquet or JSON): each becomes a source, its columns
    /// typed by DuckDB, the account key guessed. Without, a small sample extract is written.
    #[arg(long, value_name = "FILE")]
    from: Vec<PathBuf>,
    /// The job's name.
    #[arg(long, default_value = "nightly")]
    job: String,
}

pub fn execute(args: &Args) -> ExitStatus {
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from("."));
    if !crate::config::job::is_folder_name(&args.job) {
        eprintln!("error: `{}` cannot be a job's name: use letters, digits, `-` and `_`", args.job);
        return ExitStatus::Config;
    }
    let today = chrono::Local::now().date_naive();
    let created = match plan(&dir, &args.from, &args.job, today).and_then(|c| write_all(&dir, &c).map(|()| c)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitStatus::Config;
        }
    };
    println!("created a keepwell project in {}", dir.display());
    for path in created.sample.iter().chain(created.files.iter().map(|(p, _)| p)) {
        println!("  {path}");
    }
    for e in &created.extracts {
        let key = match (&e.key, &e.account) {
            (Some(k), _) => format!("key `{k}` (distinct on every row)"),
            (None, Some(a)) => format!("rows counted per `{a}`"),
            _ => "no key found: set `entity.key`".into(),
        };
        println!("source `{}`: {}, {} rows, {} columns; {key}", e.name, e.path, e.rows, e.columns.len());
    }
    let cd = if args.dir.is_some() { format!("cd {} && ", dir.display()) } else { String::new() };
    println!("next: {cd}keepwell check && keepwell test && keepwell run {}", created.job);
    ExitStatus::Success
}
