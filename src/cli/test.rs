//! `keepwell test`: the `tests:` blocks of the rule files.

use std::collections::HashSet;

use crate::authoring::testing::{TestContext, run_tests};
use crate::cli::ExitStatus;
use crate::config::project::Project;
use crate::rules::RuleSetSources;
use crate::run::plan::Plan;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only the tests of these rule sets.
    rule_sets: Vec<String>,
    /// Fail when a rule set has no tests, or a rule, measure or class is not seen firing in
    /// any test.
    #[arg(long)]
    strict: bool,
}

pub fn execute(project: &Project, args: &Args) -> ExitStatus {
    let (rules, diags) = RuleSetSources::load(&project.root, &project.rules_dir());
    if diags.has_errors() {
        eprintln!("{diags}");
        return ExitStatus::Config;
    }
    let known: Vec<&str> = rules.names().collect();
    let unknown: Vec<&String> = args.rule_sets.iter().filter(|r| !known.contains(&r.as_str())).collect();
    if !unknown.is_empty() {
        for name in unknown {
            let hint = crate::config::diagnostic::did_you_mean(name, known.iter().copied())
                .map(|h| format!(" ({h})"))
                .unwrap_or_default();
            eprintln!("error: there is no rule set `{name}`{hint}; the project's rule sets: {}", known.join(", "));
        }
        return ExitStatus::Config;
    }
    let today = chrono::Local::now().date_naive();
    let (mut passed, mut failed) = (0usize, 0usize);
    let mut tested: HashSet<String> = HashSet::new();
    for path in project.job_paths() {
        let plan = match Plan::compile_for_tests(project, &path, &rules, today) {
            Ok(plan) => plan,
            Err(d) => {
                eprintln!("{d}");
                eprintln!(
                    "the rule sets of `{}` were not tested: fix the errors above (see `keepwell check`)",
                    project.display(&path)
                );
                return ExitStatus::Config;
            }
        };
        let ctx = TestContext {
            sets: &plan.rule_sets,
            schema: &plan.schema,
            engine: &plan.engine,
            templates: &plan.templates,
            today,
        };
        for set in &plan.rule_sets {
            if !args.rule_sets.is_empty() && !args.rule_sets.contains(&set.name) {
                continue;
            }
            if !tested.insert(set.name.clone()) {
                continue;
            }
            let Some((_, raw, _)) = rules.sets.iter().find(|(n, _, _)| *n == set.name) else {
                continue;
            };
            if raw.tests.is_empty() {
                if args.strict {
                    println!("{}\n  FAIL  no tests: with --strict every rule set has tests", set.file.display);
                    failed += 1;
                } else {
                    println!("{}: no tests", set.file.display);
                }
                continue;
            }
            println!("{}", set.file.display);
            let results = run_tests(&ctx, set, &raw.tests);
            let uncovered: Vec<String> = set
                .rule_ids()
                .iter()
                .filter(|id| !results.iter().any(|r| r.fired.iter().any(|f| **f == ***id)))
                .map(|id| id.to_string())
                .collect();
            for result in results {
                if result.failures.is_empty() {
                    passed += 1;
                    println!("  ok    {}", result.name);
                } else {
                    failed += 1;
                    println!("  FAIL  {} ({})", result.name, result.location);
                    for f in &result.failures {
                        println!("        {f}");
                    }
                }
            }
            if !uncovered.is_empty() {
                println!(
                    "  {}  no test sees these fire: {}",
                    if args.strict { "FAIL" } else { "note" },
                    uncovered.join(", ")
                );
                if args.strict {
                    failed += 1;
                }
            }
        }
    }
    for name in rules.names() {
        if !tested.contains(name) && (args.rule_sets.is_empty() || args.rule_sets.iter().any(|r| r == name)) {
            println!("{name}: not used by any job, so not tested (tests need a job's entity view)");
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 { ExitStatus::Failure } else { ExitStatus::Success }
}
