//! `keepwell diff --base <revision or folder>`: which accounts a rule change moves, and why.

use std::fmt::Write as _;

use crate::authoring::diff::{Diff, DiffError, DiffOptions, SetDiff, diff, matrix_rows};
use crate::cli::{ExitStatus, money, table};
use crate::config::project::Project;
use crate::entity::format_float;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The rules to compare with: a git revision (`HEAD`, `main`) or a folder.
    #[arg(long, default_value = "HEAD")]
    base: String,
    /// The job whose data and rule sets to use (default: the project's only job).
    #[arg(long)]
    job: Option<String>,
    /// Load the job's sources now instead of using the rows of its last run.
    #[arg(long)]
    fresh: bool,
    /// How many changed accounts to list per rule set.
    #[arg(long, default_value_t = 20)]
    limit: usize,
    /// Machine-readable output.
    #[arg(long, conflicts_with = "markdown")]
    json: bool,
    /// Markdown, for a pull-request comment.
    #[arg(long)]
    markdown: bool,
}

pub fn execute(project: &Project, args: &Args) -> ExitStatus {
    let job = match crate::cli::job_path(project, args.job.as_deref()) {
        Ok(path) => path,
        Err(status) => return status,
    };
    let options = DiffOptions { base: &args.base, job: &job, fresh: args.fresh };
    match diff(project, &options) {
        Ok(d) if args.json => {
            println!("{}", serde_json::to_string_pretty(&d).unwrap_or_default());
            ExitStatus::Success
        }
        Ok(d) => {
            print!("{}", render(&d, args.limit, args.markdown));
            ExitStatus::Success
        }
        Err(DiffError::Config(diags)) => {
            eprintln!("{diags}");
            ExitStatus::Config
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitStatus::Failure
        }
    }
}

fn side(grade: &Option<String>, score: Option<f64>) -> String {
    let score = score.map(|s| format_float((s * 10.0).round() / 10.0)).unwrap_or_else(|| "-".into());
    format!("{} {score}", grade.as_deref().unwrap_or("none"))
}

fn render(d: &Diff, limit: usize, markdown: bool) -> String {
    let mut out = String::new();
    let title = format!(
        "Rules compared with `{}` on {} of job `{}` ({} accounts, as of {})",
        d.base, d.data, d.job, d.accounts, d.as_of
    );
    let _ = writeln!(out, "{}{title}\n", if markdown { "### " } else { "" });
    let unchanged: Vec<&str> = d
        .rule_sets
        .iter()
        .filter(|s| s.accounts.is_empty() && s.status == "changed")
        .map(|s| s.rule_set.as_str())
        .collect();
    for s in d.rule_sets.iter().filter(|s| !s.accounts.is_empty() || s.status != "changed") {
        render_set(&mut out, s, limit, markdown);
    }
    if !unchanged.is_empty() {
        let _ = writeln!(out, "No account changes in: {}.", unchanged.join(", "));
    }
    out
}

fn render_set(out: &mut String, s: &SetDiff, limit: usize, markdown: bool) {
    let headline = match s.status {
        "added" => format!("{}: new rule set", s.rule_set),
        "removed" => format!("{}: removed rule set", s.rule_set),
        _ => format!(
            "{}: {} account{} changed grade ({} ARR), {} changed score",
            s.rule_set,
            s.moved,
            if s.moved == 1 { "" } else { "s" },
            money(s.moved_arr),
            s.score_changed
        ),
    };
    let _ = writeln!(out, "{}{headline}\n", if markdown { "#### " } else { "" });
    let rows = matrix_rows(s);
    table(out, &rows, markdown);
    let mut changes: Vec<Vec<String>> =
        vec![["account", "name", "ARR", "before", "after", "rules"].map(String::from).to_vec()];
    for c in s.accounts.iter().take(limit) {
        changes.push(vec![
            c.account.clone(),
            c.name.clone().unwrap_or_default(),
            c.arr.map(money).unwrap_or_default(),
            side(&c.before_grade, c.before_score),
            side(&c.after_grade, c.after_score),
            c.rules.join(" "),
        ]);
    }
    if changes.len() > 1 {
        let _ = writeln!(out);
        table(out, &changes, markdown);
    }
    if s.accounts.len() > limit {
        let _ = writeln!(out, "\n... and {} more (--limit to see them)", s.accounts.len() - limit);
    }
    let _ = writeln!(out);
}
