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
use crate::rules::lookup::Lookups;
use crate::rules::{RuleSet, RuleSetSources, compile_rule_sets};
use crate::warehouse::{self, PrepareError, Sources};

pub struct Plan {
    pub job: Job,
    pub schema: Schema,
    pub rule_sets: Vec<RuleSet>,
    pub outputs: Vec<Output>,
    pub engine: Engine,
    pub templates: Environment<'static>,
    pub lookups: Arc<Lookups>,
}

impl Plan {
    /// Whether a rule set reads `prev` (and so the scores of earlier runs for trends).
    pub fn reads_prev(&self) -> bool {
        self.rule_sets.iter().any(|s| s.reads_prev)
    }

    /// Compiles the job at `job_path` for a run on `as_of`; every problem is returned at once.
    pub fn compile(
        project: &Project,
        job_path: &Path,
        rules: &RuleSetSources,
        as_of: NaiveDate,
    ) -> Result<Plan, Diagnostics> {
        let (job, raw_outputs, mut diags) = Job::load(project, job_path)?;
        let schema = entity_schema(project, &job, as_of, &mut diags);
        let Some(schema) = schema else {
            return Err(diags);
        };
        let (lookups, d) = Lookups::load(&project.root, &project.rules_dir().join("lookups"));
        diags.extend(d);
        let lookups = Arc::new(lookups);
        let engine = crate::rules::engine::build(as_of, lookups.clone());
        let mut templates = crate::rules::reason::environment();
        diags.extend(load_templates(&project.root, &mut templates));
        let (rule_sets, d) =
            compile_rule_sets(rules, &job.rule_sets, Some(&job.file), &schema, &engine, &mut templates);
        diags.extend(d);
        let names: Vec<&str> = rules.names().collect();
        let (outputs, d) = compile_outputs(&job, &raw_outputs, &schema, &names, &rule_sets, &engine, &mut templates);
        diags.extend(d);
        if diags.has_errors() {
            return Err(diags);
        }
        Ok(Plan { job, schema, rule_sets, outputs, engine, templates, lookups })
    }
}

/// The entity view's columns, learned by building the features over empty source tables.
fn entity_schema(project: &Project, job: &Job, as_of: NaiveDate, diags: &mut Diagnostics) -> Option<Schema> {
    // A refused column type leaves its source undeclarable: the features would only fail
    // for want of it.
    if diags.0.iter().any(|d| d.code == Code::ColumnType) {
        return None;
    }
    let mut found = warehouse::Found::default();
    let warehouse = match warehouse::load(&project.warehouse, job, as_of, None, Sources::Declared, &mut found) {
        Ok(w) => w,
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
        diags.push(*d);
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
    Some(schema)
}
