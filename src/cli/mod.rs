//! The command line: clap derive here, one file per command, exit codes in one place.

mod check;
mod compile;
mod demo_data;
mod diff;
mod explain;
mod init;
mod outbox;
mod preview;
mod query;
mod run;
mod runs;
pub mod schema;
mod serve;
mod status;
mod test;
mod validate;

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::diagnostic::Diagnostics;
use crate::config::project::Project;

/// What a command's outcome means to the shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Success = 0,
    /// A run failed or was degraded, or a test failed.
    Failure = 1,
    /// Bad usage or bad configuration: nothing ran.
    Config = 2,
}

#[derive(Debug, Parser)]
#[command(
    name = "keepwell",
    version,
    about = "Rules as code for Customer Success: score every account every night and mail the lists."
)]
pub struct Cli {
    /// The project folder (default: the nearest folder with keepwell.yaml or jobs/).
    #[arg(long, short = 'C', global = true, env = "KEEPWELL_PROJECT")]
    project: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Only errors.
    #[arg(long, short, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// More detail (-vv for debug).
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a project: a job, an entity view and starter rules, from your extracts.
    Init(init::Args),
    /// Run a job now: load, score, publish, mail.
    Run(run::Args),
    /// Run every job that has a schedule, as a daemon.
    Serve(serve::Args),
    /// Each scheduled job: its next fire time and its last run.
    Status(status::Args),
    /// Check every job and rule file and report every problem at once.
    Check(check::Args),
    /// The outbox: every mail with its status; `outbox retry` sends what is pending or failed.
    Outbox(outbox::Args),
    /// Write every mail a job would send to a folder, as HTML and .eml, without sending.
    Preview(preview::Args),
    /// List recent runs with status and timings.
    Runs(runs::Args),
    /// Read-only SQL over the store; `entity` and `entities` are the runs' entity snapshots.
    Query(query::Args),
    /// Compare the rules with a git revision or folder: which accounts move, and why.
    Diff(diff::Args),
    /// Show why an account got its results: every rule, the values it read, what it added.
    Explain(explain::Args),
    /// Run the tests written in the rule files.
    Test(test::Args),
    /// Measure the rule sets against what happened: churn by grade, AUC, rules, escalations,
    /// the forecast, and the churn reasons' root causes.
    Validate(validate::Args),
    /// Write the job as one SQL script for Spark (or DuckDB): features, entity, every rule set.
    Compile(compile::Args),
    /// Write JSON Schemas of job and rule files for editors.
    Schema(schema::Args),
    /// Write a deterministic, realistic set of extracts to play with or benchmark on.
    DemoData(demo_data::Args),
}

/// `--quiet`: commands print only errors.
static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn quiet() -> bool {
    QUIET.load(std::sync::atomic::Ordering::Relaxed)
}

pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitStatus::Config as i32 } else { 0 };
        }
    };
    init_logging(&cli);
    QUIET.store(cli.quiet, std::sync::atomic::Ordering::Relaxed);
    // `keepwell outbox | head` ends quietly when the pipe closes, as other command-line
    // tools do, instead of panicking on the write. Sockets are unaffected (Rust sends with
    // MSG_NOSIGNAL); the daemon keeps ignoring the signal all the same.
    if !matches!(cli.command, Command::Serve(_)) {
        sigpipe::reset();
    }
    let status = match &cli.command {
        Command::DemoData(args) => demo_data::execute(args),
        Command::Schema(args) => schema::execute(args),
        Command::Init(args) => init::execute(args),
        command => match project(&cli) {
            // `check --format json` answers in JSON whatever failed, the settings included.
            Err(diags) if matches!(command, Command::Check(a) if a.json()) => check::settings_failed(&diags),
            Err(diags) => {
                eprint!("{diags}");
                ExitStatus::Config
            }
            Ok(project) => match command {
                Command::Run(args) => run::execute(&project, args),
                Command::Check(args) => check::execute(&project, args),
                Command::Runs(args) => runs::execute(&project, args),
                Command::Query(args) => query::execute(&project, args),
                Command::Outbox(args) => outbox::execute(&project, args),
                Command::Preview(args) => preview::execute(&project, args),
                Command::Serve(args) => serve::execute(&project, args),
                Command::Status(args) => status::execute(&project, args),
                Command::Test(args) => test::execute(&project, args),
                Command::Explain(args) => explain::execute(&project, args),
                Command::Diff(args) => diff::execute(&project, args),
                Command::Validate(args) => validate::execute(&project, args),
                Command::Compile(args) => compile::execute(&project, args),
                Command::DemoData(_) | Command::Schema(_) | Command::Init(_) => unreachable!("handled above"),
            },
        },
    };
    status as i32
}

fn project(cli: &Cli) -> Result<Project, Diagnostics> {
    match &cli.project {
        Some(dir) => Project::open(&dir.canonicalize().unwrap_or_else(|_| dir.clone())),
        None => Project::discover(&std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."))),
    }
}

fn init_logging(cli: &Cli) {
    let level = if cli.quiet {
        "error"
    } else {
        match cli.verbose {
            // A daemon's log is its only voice: fire times, runs and skips are worth seeing.
            0 if matches!(cli.command, Command::Serve(_)) => "info",
            0 => "warn",
            1 => "info",
            _ => "debug",
        }
    };
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_from_env("KEEPWELL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    // lettre logs the SMTP transcript at debug level, `AUTH PLAIN <user and password in
    // base64>` included: nothing of lettre's below info is ever written, whatever the
    // verbosity or KEEPWELL_LOG asks for. ureq logs each request with its URL (a Slack
    // webhook's URL is its secret) and headers (a bot token): the same for it.
    let no_secrets = tracing_subscriber::filter::filter_fn(|meta| {
        let noisy = ["lettre", "ureq"].iter().any(|t| meta.target().starts_with(t));
        !(noisy && *meta.level() > tracing::Level::INFO)
    });
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_target(false);
    let layer = match cli.log_format {
        LogFormat::Json => layer.json().boxed(),
        LogFormat::Text => layer.boxed(),
    };
    let _ = tracing_subscriber::registry().with(filter).with(no_secrets).with(layer).try_init();
}

/// The job a command acts on: the one named (a name in jobs/ or a path), or the project's
/// only job. With several and none named, or a name that is no job, says which there are
/// (exit 2).
pub fn job_path(project: &Project, given: Option<&str>) -> Result<PathBuf, ExitStatus> {
    let names: Vec<String> =
        project.job_paths().iter().filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().to_string())).collect();
    let listed = if names.is_empty() {
        "the project has no job in jobs/ (`keepwell init` writes one)".to_string()
    } else {
        format!("the project's jobs: {}", names.join(", "))
    };
    match given {
        Some(job) => {
            let path = project.job_path(job);
            if path.is_file() {
                return Ok(path);
            }
            let hint = crate::config::diagnostic::did_you_mean(job, names.iter().map(String::as_str))
                .map(|h| format!(" ({h})"))
                .unwrap_or_default();
            eprintln!("error: there is no job `{job}`{hint}; {listed}");
            Err(ExitStatus::Config)
        }
        None => match project.job_paths().as_slice() {
            [only] => Ok(only.clone()),
            _ => {
                eprintln!("error: name the job; {listed}");
                Err(ExitStatus::Config)
            }
        },
    }
}

/// An amount as tables show it: `1,234` (the currency is the report's to say).
pub(crate) fn money(v: f64) -> String {
    crate::rules::engine::money(v).replace('$', "")
}

/// Rows as aligned text, or as a Markdown table; the first row is the header.
pub(crate) fn table(out: &mut String, rows: &[Vec<String>], markdown: bool) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> =
        (0..cols).map(|c| rows.iter().map(|r| r.get(c).map_or(0, |v| v.chars().count())).max().unwrap_or(0)).collect();
    for (i, r) in rows.iter().enumerate() {
        let cells: Vec<String> =
            (0..cols).map(|c| format!("{:<w$}", r.get(c).cloned().unwrap_or_default(), w = widths[c])).collect();
        if markdown {
            let _ = writeln!(out, "| {} |", cells.join(" | "));
            if i == 0 {
                let _ = writeln!(out, "|{}|", widths.iter().map(|w| "-".repeat(w + 2)).collect::<Vec<_>>().join("|"));
            }
        } else {
            let _ = writeln!(out, "  {}", cells.join("  ").trim_end());
        }
    }
}
