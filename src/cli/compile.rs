//! `keepwell compile <job> --target spark|duckdb`: the job as one SQL script for another
//! engine, checked here, so a rule that cannot run there is found before the cluster is.

use std::path::PathBuf;

use chrono::NaiveDate;

use crate::authoring::compile::{Options, Target, compile};
use crate::cli::ExitStatus;
use crate::config::project::Project;
use crate::rules::RuleSetSources;
use crate::run::plan::Plan;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The job (name or path; default: the project's only job).
    job: Option<String>,
    /// The engine the script is for: `spark` (Spark SQL) or `duckdb` (the SQL keepwell runs).
    #[arg(long, value_enum)]
    target: Target,
    /// Write `<job>.<target>.sql` into this folder instead of printing the script.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Score for this day, written into the script (default: Spark's variable `${as_of}`,
    /// DuckDB's `getvariable('as_of')`, set when the script runs).
    #[arg(long)]
    as_of: Option<NaiveDate>,
    /// Read the sources from this folder of Parquet (`<source>.parquet` each), typed as the
    /// job declares them; default: the sources are tables of the session already.
    #[arg(long)]
    sources: Option<String>,
    /// The folder the script writes `entity/` and `results/` to, as Parquet.
    #[arg(long, default_value = "keepwell-results")]
    results: String,
}

pub fn execute(project: &Project, args: &Args) -> ExitStatus {
    let path = match crate::cli::job_path(project, args.job.as_deref()) {
        Ok(p) => p,
        Err(status) => return status,
    };
    let (rules, diags) = RuleSetSources::load(&project.root, &project.rules_dir());
    if diags.has_errors() {
        eprintln!("{diags}");
        return ExitStatus::Config;
    }
    let as_of = args.as_of.unwrap_or_else(|| chrono::Local::now().date_naive());
    // The extracts need not be here: the sources are declared from the job's columns.
    let plan = match Plan::compile_for_tests(project, &path, &rules, as_of) {
        Ok(plan) => plan,
        Err(d) => {
            eprintln!("{d}");
            return ExitStatus::Config;
        }
    };
    let options = Options {
        target: args.target,
        as_of: args.as_of,
        sources: args.sources.clone(),
        results: args.results.clone(),
    };
    let compiled = match compile(&plan, as_of, &options) {
        Ok(c) => c,
        Err(d) => {
            eprintln!("{}", d.sorted());
            eprintln!("nothing written: the job does not compile for {}", target_name(args.target));
            return ExitStatus::Config;
        }
    };
    if !compiled.warnings.is_empty() {
        eprintln!("{}", compiled.warnings);
    }
    match &args.out {
        None => print!("{}", compiled.script),
        Some(folder) => {
            let file = folder.join(format!("{}.{}.sql", plan.job.name, target_name(args.target)));
            if let Err(e) = std::fs::create_dir_all(folder).and_then(|_| std::fs::write(&file, &compiled.script)) {
                eprintln!("error: cannot write {}: {e}", file.display());
                return ExitStatus::Failure;
            }
            if !crate::cli::quiet() {
                println!(
                    "compiled job `{}` for {}: {} rule set(s), {} feature view(s) -> {}",
                    plan.job.name,
                    target_name(args.target),
                    compiled.rule_sets,
                    plan.job.features.len(),
                    file.display()
                );
            }
        }
    }
    ExitStatus::Success
}

fn target_name(target: Target) -> &'static str {
    match target {
        Target::Duckdb => "duckdb",
        Target::Spark => "spark",
    }
}
