//! `keepwell explain <account>`: every rule set and rule for one account, with the values read.

use std::fmt::Write as _;

use crate::authoring::explain::{ExplainError, Explanation, explain};
use crate::cli::ExitStatus;
use crate::config::project::Project;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The account's key.
    account: String,
    /// The job (default: the project's only job, or the job of `--run`).
    #[arg(long)]
    job: Option<String>,
    /// A run id (default: the job's latest published run).
    #[arg(long)]
    run: Option<i64>,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

pub fn execute(project: &Project, args: &Args) -> ExitStatus {
    // A run id names its job; otherwise the job named, or the project's only one.
    let job = match (&args.job, args.run) {
        (_, Some(_)) => args.job.clone(),
        (job, None) => match crate::cli::job_path(project, job.as_deref()) {
            Ok(path) => match crate::config::job::Job::load(project, &path) {
                Ok((job, _, _)) => Some(job.name),
                Err(d) => {
                    eprintln!("{d}");
                    return ExitStatus::Config;
                }
            },
            Err(status) => return status,
        },
    };
    match explain(project, &args.account, job.as_deref(), args.run) {
        Ok(e) if args.json => {
            println!("{}", serde_json::to_string_pretty(&e).unwrap_or_default());
            ExitStatus::Success
        }
        Ok(e) => {
            print!("{}", render(&e));
            ExitStatus::Success
        }
        Err(ExplainError::Config(d)) => {
            eprintln!("{d}");
            ExitStatus::Config
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitStatus::Failure
        }
    }
}

fn render(e: &Explanation) -> String {
    let fmt = crate::entity::format_float;
    let mut out = String::new();
    let name = e.name.as_deref().map(|n| format!(" ({n})")).unwrap_or_default();
    let _ = writeln!(out, "account {}{name}: job {}, run {}, as of {}", e.account, e.job, e.run_id, e.as_of);
    for s in &e.rule_sets {
        let score = s.score.map(|v| fmt((v * 10.0).round() / 10.0)).unwrap_or_else(|| "-".into());
        let path = match s.path {
            "sql" => "in the warehouse",
            "rhai" => "in rhai",
            _ => "partly in the warehouse",
        };
        let _ = writeln!(
            out,
            "\n{} ({}, {path}): {} -> {}",
            s.rule_set,
            s.kind,
            score,
            s.grade.as_deref().unwrap_or("no grade")
        );
        let width = s.steps.iter().map(|st| st.id.len()).max().unwrap_or(0);
        for st in &s.steps {
            let value = match (st.status.as_str(), st.value) {
                ("fired", Some(v)) if s.kind == "points" => format!("{:+}", v),
                ("scored", Some(v)) => format!("{}/100", fmt((v * 10.0).round() / 10.0)),
                _ => String::new(),
            };
            let inputs: Vec<String> = st
                .inputs
                .iter()
                .map(|(k, v)| match v {
                    serde_json::Value::Null => format!("{k} = missing"),
                    serde_json::Value::Number(n) => format!("{k} = {}", fmt(n.as_f64().unwrap_or_default())),
                    serde_json::Value::Object(_) => format!("{k} = {}", v),
                    other => format!("{k} = {other}"),
                })
                .collect();
            let _ = writeln!(out, "  {:<9} {:<width$}  {:>8}  {}", st.status, st.id, value, inputs.join(", "));
            let rhai = (s.path == "mixed" && st.path == "rhai").then(|| "evaluated in rhai, row by row".to_string());
            for extra in [&st.reason, &st.detail, &st.error, &rhai].into_iter().flatten() {
                let _ = writeln!(out, "  {:<9} {:<width$}            {extra}", "", "");
            }
        }
        let _ = writeln!(out, "  = {}", s.summary);
        if let Some(stored) = &s.stored {
            let _ = writeln!(
                out,
                "  ! run {} stored {} -> {}: the rules have changed since",
                e.run_id,
                stored.score.map(fmt).unwrap_or_else(|| "-".into()),
                stored.grade.as_deref().unwrap_or("no grade")
            );
        }
    }
    out
}
