//! A job compiled against its rule sets: everything checked, every expression compiled,
//! before any data is read. `check` stops here; `run` goes on to execute it.

use std::path::Path;
use std::sync::Arc;

use chrono::NaiveDate;
use minijinja::Environment;
use rhai::Engine;

use crate::config::diagnostic::Code;
use crate::config::diagnostic::{Diagnostic, Diagnostics, did_you_mean};
use crate::config::job::Job;
use crate::config::project::Project;
use crate::entity::Schema;
use crate::outputs::{Output, compile_outputs, load_templates};
use crate::rules::engine::Deadline;
use crate::rules::lookup::Lookups;
use crate::rules::{RuleSet, RuleSetSources, compile_rule_sets};
use crate::run::watchdog::Watchdog;
use crate::warehouse::{self, PrepareError, Sources, Warehouse};

pub struct Plan {
    pub job: Job,
    pub schema: Schema,
    pub rule_sets: Vec<RuleSet>,
    pub outputs: Vec<Output>,
    pub engine: Engine,
    pub templates: Environment<'static>,
    pub lookups: Arc<Lookups>,
    /// When a run of this plan must stop (its job's `timeout`), set as the run starts.
    pub deadline: Arc<Deadline>,
    /// What compiling found that is worth saying but stops nothing.
    pub warnings: Diagnostics,
}

impl Plan {
    /// Whether a rule set reads `prev` (and so the scores of earlier runs for trends).
    pub fn reads_prev(&self) -> bool {
        self.rule_sets.iter().any(|s| s.reads_prev)
    }

    /// Compiles the job at `job_path` for a run on `as_of`; every problem is returned at once.
    /// Its sources' files must be there: their headers give the columns.
    pub fn compile(
        project: &Project,
        job_path: &Path,
        rules: &RuleSetSources,
        as_of: NaiveDate,
    ) -> Result<Plan, Diagnostics> {
        Self::compile_with(project, job_path, rules, as_of, Sources::Inspected)
    }

    /// [`Plan::compile`] where the extracts may be missing (rule tests in CI): a source
    /// without its files is declared from its `columns:`.
    pub fn compile_for_tests(
        project: &Project,
        job_path: &Path,
        rules: &RuleSetSources,
        as_of: NaiveDate,
    ) -> Result<Plan, Diagnostics> {
        Self::compile_with(project, job_path, rules, as_of, Sources::Declared)
    }

    fn compile_with(
        project: &Project,
        job_path: &Path,
        rules: &RuleSetSources,
        as_of: NaiveDate,
        sources: Sources,
    ) -> Result<Plan, Diagnostics> {
        let (job, raw_outputs, mut diags) = Job::load(project, job_path)?;
        // A job whose results another engine computed runs where the extracts are not.
        let sources = if job.engine_results.is_some() { Sources::Declared } else { sources };
        let checked = entity_schema(project, &job, as_of, sources, &mut diags);
        let Some((schema, warehouse)) = checked else {
            return Err(diags);
        };
        let (lookups, d) = Lookups::load(&project.root, &project.rules_dir().join("lookups"));
        diags.extend(d);
        let lookups = Arc::new(lookups);
        let mut engine = crate::rules::engine::build(as_of, lookups.clone());
        let deadline = Arc::new(Deadline::default());
        crate::rules::engine::stop_at(&mut engine, deadline.clone());
        let mut templates = crate::rules::reason::environment();
        diags.extend(load_templates(&project.root, &mut templates));
        let (rule_sets, d) =
            compile_rule_sets(rules, &job.rule_sets, Some(&job.file), &schema, &engine, &mut templates);
        diags.extend(d);
        // Metrics read every rule set the run evaluates, dependencies too; one that did not
        // compile is still a name they may use.
        let mut evaluated: Vec<&str> = rule_sets.iter().map(|s| s.name.as_str()).collect();
        for listed in &job.rule_sets {
            if !evaluated.contains(&listed.value.as_str()) {
                evaluated.push(&listed.value);
            }
        }
        job.validation.check_names(&evaluated, &schema.names().collect::<Vec<_>>(), &mut diags);
        crate::metrics::check(warehouse.connection(), &job.entity.view, &schema, &evaluated, &job.metrics, &mut diags);
        if job.owners.is_empty()
            && let Some(m) = job.metrics.iter().find(|m| m.alert_when.is_some())
        {
            diags.push(
                Diagnostic::warning(
                    Code::Metric,
                    m.span.clone(),
                    format!("metric `{}` has an `alert_when`, but the job has no `owners` to mail", m.name),
                )
                .with_hint("add `owners: [\"you@example.com\"]` to the job; the alert still leads the report"),
            );
        }
        drop(warehouse);
        let names: Vec<&str> = rules.names().collect();
        let (outputs, d) = compile_outputs(
            &job,
            &raw_outputs,
            &project.channels,
            &schema,
            &names,
            &rule_sets,
            &engine,
            &mut templates,
        );
        diags.extend(d);
        if diags.has_errors() {
            return Err(diags);
        }
        Ok(Plan { job, schema, rule_sets, outputs, engine, templates, lookups, deadline, warnings: diags })
    }
}

/// The entity view's columns, learned by building the features over empty source tables,
/// and the warehouse they were built in, for checking the metrics over it.
fn entity_schema(
    project: &Project,
    job: &Job,
    as_of: NaiveDate,
    sources: Sources,
    diags: &mut Diagnostics,
) -> Option<(Schema, Warehouse)> {
    // A refused column type leaves its source undeclarable: the features would only fail
    // for want of it.
    if diags.0.iter().any(|d| d.code == Code::ColumnType) || job.base_broken {
        return None;
    }
    // The features run over empty tables, but a query can be slow on no rows too: checking
    // has the job's time budget, as a run does.
    let deadline = Arc::new(Deadline::default());
    deadline.start(job.timeout);
    let watchdog = Watchdog::start(deadline.clone());
    let warehouse = match Warehouse::open(&project.warehouse, None) {
        Ok(w) => w,
        Err(e) => {
            diags.push(Diagnostic::error(Code::Warehouse, job.file.start(), e.to_string()));
            return None;
        }
    };
    watchdog.watch(Some(warehouse.interrupt_handle()));
    let mut found = warehouse::Found::default();
    match warehouse::fill(&warehouse, job, as_of, sources, &mut found) {
        Ok(()) => {}
        Err(PrepareError::Declare(wrong)) => {
            diags.extend(Diagnostics(wrong));
            return None;
        }
        Err(e) => {
            diags.push(Diagnostic::error(Code::Warehouse, job.file.start(), e.to_string()));
            return None;
        }
    };
    if let Err(d) = warehouse.create_features(&job.features) {
        diags.push(match deadline.passed() {
            true => Diagnostic::error(
                Code::Feature,
                d.span.clone(),
                format!(
                    "the feature views took longer than the job's time budget of {} to build on empty tables",
                    crate::warehouse::freshness::human(job.timeout)
                ),
            )
            .with_hint(
                "a query this slow without rows will not finish on the extracts; `timeout:` in the job sets the budget",
            ),
            false => *d,
        });
        return None;
    }
    let schema = match warehouse.describe(&job.entity.view) {
        Ok(s) => s,
        Err(e) => {
            diags.push(Diagnostic::error(
                Code::EntityView,
                job.entity.span.clone(),
                format!("cannot read the entity view `{}`: {e}", job.entity.view),
            ));
            return None;
        }
    };
    for (column, span) in &job.entity.column_spans {
        if schema.get(column).is_none() {
            diags.push(
                Diagnostic::error(
                    Code::UnknownColumn,
                    span.clone(),
                    format!("the entity view `{}` has no column `{column}`", job.entity.view),
                )
                .with_hint_opt(did_you_mean(column, schema.names())),
            );
        }
    }
    Some((schema, warehouse))
}
