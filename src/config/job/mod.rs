//! Jobs: what to load, how to shape it, which rule sets to run and where results go.
//!
//! A job file is parsed into [`raw::RawJob`], then checked here into a [`Job`]; the parts that
//! need the entity view's columns (rule and output expressions) are compiled once the
//! warehouse has described it.

mod metric;
mod outcomes;
pub mod raw;
mod sql_type;

pub use metric::{Measure, Metric, MetricFormat, Sql};
pub use outcomes::{DEFAULT_REASONS, FIELDS as OUTCOME_FIELDS, OutcomesSpec, ValidationSpec, horizon_days};
pub use sql_type::{SqlType, TypeError};

use std::path::PathBuf;
use std::time::Duration;

use serde_saphyr::Spanned;

use crate::config::diagnostic::Code;
use crate::config::diagnostic::{Diagnostic, Diagnostics, SourceFile, Span, did_you_mean};
use crate::config::project::Project;
use crate::config::yaml;
use raw::{RawJob, RawOutput};

#[derive(Debug)]
pub struct Job {
    pub name: String,
    pub description: Option<String>,
    pub file: SourceFile,
    pub sources: Vec<Source>,
    pub features: Vec<Feature>,
    pub entity: EntitySpec,
    pub rule_sets: Vec<Spanned<String>>,
    pub schedule: Option<Schedule>,
    /// How long a run may take: past it the run stops and fails, publishing nothing.
    pub timeout: Duration,
    /// Who is mailed when a scheduled run fails: `on_failure`, else the owners.
    pub on_failure: Vec<lettre::message::Mailbox>,
    /// Who owns the job: mailed when a metric's alert holds.
    pub owners: Vec<lettre::message::Mailbox>,
    /// Channels that carry the metric alerts too.
    pub alert_channels: Vec<crate::config::channels::Channel>,
    /// Population numbers computed every run.
    pub metrics: Vec<Metric>,
    /// What happened to accounts, for `keepwell validate`; runs never read it.
    pub outcomes: Option<OutcomesSpec>,
    /// How `keepwell validate` judges the rule sets.
    pub validation: ValidationSpec,
    /// Where runs read the accounts and results another engine computed, if they do.
    pub engine_results: Option<EngineResults>,
    /// The job `extends` a base with errors: what it inherits is incomplete, so nothing
    /// that follows from it (its sources, features) is checked further.
    pub base_broken: bool,
}

/// The folder of `entity/` and `results/` Parquet that `keepwell compile`'s script writes.
#[derive(Debug, Clone)]
pub struct EngineResults {
    /// Absolute path of the folder.
    pub path: PathBuf,
    /// The path as written.
    pub display: String,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Parquet,
    Json,
}

#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    /// Absolute path or glob.
    pub pattern: String,
    pub display: String,
    pub format: Format,
    pub delimiter: Option<String>,
    /// Declared columns and their DuckDB types; the file's other columns are loaded too,
    /// typed as DuckDB infers them, unless the source is `strict`.
    pub columns: Vec<Column>,
    /// Only the declared columns, exactly typed.
    pub strict: bool,
    pub primary_key: Vec<String>,
    pub max_rejects: u64,
    /// The fewest rows the extract may have.
    pub min_rows: u64,
    /// The largest drop in rows from the last published run, as a fraction (1.0: any).
    pub max_drop: f64,
    pub max_age: Option<Duration>,
    pub loaded_at: Option<String>,
    pub on_stale: OnStale,
    /// The `path:` value.
    pub span: Span,
    /// The `primary_key:` value.
    pub key_span: Option<Span>,
}

#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub sql_type: SqlType,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct Feature {
    /// The view's name: the file name without `.sql`.
    pub name: String,
    pub sql: String,
    pub file: SourceFile,
}

#[derive(Debug, Clone)]
pub struct EntitySpec {
    pub view: String,
    pub key: String,
    pub name: Option<String>,
    pub arr: Option<String>,
    pub owner: Option<String>,
    pub span: Span,
    /// Where each named column was declared, for "no such column" errors.
    pub column_spans: Vec<(String, Span)>,
}

#[derive(Debug, Clone)]
pub struct Schedule {
    pub cron: croner::Cron,
    pub cron_text: String,
    pub timezone: chrono_tz::Tz,
    pub retries: u32,
    pub retry_delay: Duration,
    pub catch_up: CatchUp,
}

/// What the daemon does with fire times it missed while it was down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatchUp {
    /// Run the latest missed fire time once.
    Latest,
    None,
}

/// What a stale source does to the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnStale {
    Fail,
    Warn,
}

impl Job {
    /// Reads and checks a job file. A file that parses gives a job and every problem found
    /// in it, so checks of the rule sets can go on; one that does not parse gives only errors.
    /// Reads and checks the job at `path`. Its outputs come back as written: they read the
    /// entity's columns and the rule sets' results, which only the plan knows, so
    /// [`crate::run::plan::Plan::compile`] compiles them and nothing keeps them raw.
    pub fn load(project: &Project, path: &std::path::Path) -> Result<(Job, Vec<RawOutput>, Diagnostics), Diagnostics> {
        let display = project.display(path);
        let (raw, file) = yaml::read::<RawJob>(path, &display).map_err(|d| Diagnostics(vec![*d]))?;
        let mut diags = Diagnostics::default();
        let stem = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
        let name = raw.name.as_ref().map_or(stem, |n| n.value.clone());
        match &raw.name {
            Some(n) => folder_name(&file, n, "job", &mut diags),
            None if !is_folder_name(&name) => diags.push(
                Diagnostic::error(Code::BadName, file.start(), format!("job name `{name}` cannot be a folder name"))
                    .with_hint("name the job with `name:` (letters, digits, `_` and `-`), or rename its file"),
            ),
            None => {}
        }
        let mut base_broken = false;
        // The base's own errors are its root cause: each says it is in the base this job extends.
        let from_base = |d: Diagnostics, diags: &mut Diagnostics, broken: &mut bool| {
            for mut problem in d.0 {
                if problem.severity == crate::config::diagnostic::Severity::Error {
                    *broken = true;
                }
                let note = format!("in the base job that `{display}` extends");
                problem.hint = Some(match problem.hint.take() {
                    Some(h) => format!("{h} ({note})"),
                    None => note,
                });
                diags.push(problem);
            }
        };
        let base = match &raw.extends {
            Some(ext) => {
                let base_path = project.root.join(&ext.value);
                let span = yaml::span_of(&file, ext, ext.value.len());
                if base_path == path {
                    diags.push(Diagnostic::error(Code::Job, span, format!("job `{name}` extends itself")));
                    None
                } else if !base_path.is_file() {
                    base_broken = true;
                    diags.push(
                        Diagnostic::error(Code::Unreadable, span, format!("cannot read the base job `{}`", ext.value))
                            .with_hint("`extends` takes a job file's path relative to the project folder"),
                    );
                    None
                } else if let Err(e) = crate::config::project::inside(&project.root, &base_path) {
                    base_broken = true;
                    diags.push(Diagnostic::error(
                        Code::Unreadable,
                        span,
                        format!("cannot read the base job `{}`: {e}", ext.value),
                    ));
                    None
                } else {
                    match Job::load(project, &base_path) {
                        Ok((base, _, d)) => {
                            from_base(d, &mut diags, &mut base_broken);
                            base_broken |= base.base_broken;
                            Some(base)
                        }
                        Err(d) => {
                            from_base(d, &mut diags, &mut base_broken);
                            None
                        }
                    }
                }
            }
            None => None,
        };
        let mut sources: Vec<Source> = base.as_ref().map(|b| b.sources.clone()).unwrap_or_default();
        for (n, s) in &raw.sources {
            if let Some(source) = source(project, &file, n, s, &mut diags) {
                sources.retain(|x| x.name != source.name);
                sources.push(source);
            }
        }
        let features = match (&raw.features, &base) {
            (Some(f), _) => features(project, &file, f, &sources, &mut diags),
            (None, Some(b)) => b.features.clone(),
            (None, None) => Vec::new(),
        };
        let entity = match (&raw.entity, &base) {
            (Some(e), _) => Some(entity(&file, e, &sources, &features, &mut diags)),
            (None, Some(b)) => Some(b.entity.clone()),
            (None, None) => None,
        };
        let rule_sets = raw.rule_sets.clone().or_else(|| base.as_ref().map(|b| b.rule_sets.clone()));
        let (Some(entity), Some(rule_sets)) = (entity, rule_sets) else {
            // With a broken base, its errors are the cause: "no entity" would only follow.
            if base_broken {
                return Err(diags);
            }
            let missing = if raw.entity.is_none() { "entity" } else { "rule_sets" };
            diags.push(
                Diagnostic::error(Code::Job, file.start(), format!("job `{name}` has no `{missing}`")).with_hint(
                    "every job names its entity view and the rule sets it runs, or `extends` a job that does",
                ),
            );
            return Err(diags);
        };
        let schedule = raw.schedule.as_ref().and_then(|s| schedule(&file, s, &mut diags));
        let mut output_names = std::collections::HashSet::new();
        for output in &raw.outputs {
            check_addresses(&file, output, &mut diags);
            let output_name = match output {
                RawOutput::Escalation(e) => &e.name,
                RawOutput::Summary(s) => &s.name,
                RawOutput::Calibration(c) => &c.name,
                RawOutput::Tasks(t) => &t.name,
            };
            // Outputs share the job's folder and its outbox, keyed by their names (metric
            // alerts go out as `metric_alerts`).
            if output_name.value == "metric_alerts" {
                diags.push(
                    Diagnostic::error(
                        Code::Duplicate,
                        yaml::span_of(&file, output_name, output_name.value.len()),
                        "output name `metric_alerts` is the metric alerts' own".to_string(),
                    )
                    .with_hint("name the output something else"),
                );
            } else if !output_names.insert(output_name.value.as_str()) {
                diags.push(Diagnostic::error(
                    Code::Duplicate,
                    yaml::span_of(&file, output_name, output_name.value.len()),
                    format!("output name `{}` is used twice in job `{name}`", output_name.value),
                ));
            }
        }
        let owners: Vec<lettre::message::Mailbox> = match raw.owners.is_empty() {
            true => base.as_ref().map(|b| b.owners.clone()).unwrap_or_default(),
            false => raw.owners.iter().filter_map(|a| address(&file, a, &mut diags)).collect(),
        };
        let mut on_failure: Vec<lettre::message::Mailbox> =
            raw.on_failure.iter().filter_map(|a| address(&file, a, &mut diags)).collect();
        if raw.on_failure.is_empty() {
            on_failure = owners.clone();
        }
        let alert_channels = match (raw.alert_channels.is_empty(), &base) {
            (true, Some(b)) => b.alert_channels.clone(),
            _ => channels(&project.channels, &file, &raw.alert_channels, "alert_channels", &mut diags),
        };
        let metrics = match (&raw.metrics, &base) {
            (Some(m), _) => metric::metrics(&file, m, &mut diags),
            (None, Some(b)) => b.metrics.clone(),
            (None, None) => Vec::new(),
        };
        let outcomes = match (&raw.outcomes, &base) {
            (Some(o), _) => Some(outcomes::outcomes(project, &file, o, &mut diags)),
            (None, Some(b)) => b.outcomes.clone(),
            (None, None) => None,
        };
        let validation = match (&raw.validation, &base) {
            (Some(v), _) => outcomes::validation(&file, v, &mut diags),
            (None, Some(b)) => b.validation.clone(),
            (None, None) => ValidationSpec::default(),
        };
        let engine_results = match (&raw.engine_results, &base) {
            (Some(p), _) => {
                let path = PathBuf::from(&p.value);
                let path = if path.is_absolute() { path } else { project.root.join(path) };
                Some(EngineResults { path, display: p.value.clone(), span: yaml::span_of(&file, p, p.value.len()) })
            }
            (None, Some(b)) => b.engine_results.clone(),
            (None, None) => None,
        };
        let timeout = match &raw.timeout {
            Some(t) => parse_duration(&t.value).filter(|d| !d.is_zero()).unwrap_or_else(|| {
                diags.push(
                    Diagnostic::error(
                        Code::Duration,
                        yaml::span_of(&file, t, t.value.len()),
                        format!("`{}` is not a duration", t.value),
                    )
                    .with_hint("write a number above 0 and a unit: `30m`, `2h`"),
                );
                DEFAULT_TIMEOUT
            }),
            None => base.as_ref().map_or(DEFAULT_TIMEOUT, |b| b.timeout),
        };
        let job = Job {
            name,
            description: raw.description,
            file,
            sources,
            features,
            entity,
            rule_sets,
            schedule,
            timeout,
            on_failure,
            owners,
            alert_channels,
            metrics,
            outcomes,
            validation,
            engine_results,
            base_broken,
        };
        Ok((job, raw.outputs, diags))
    }
}

fn source(
    project: &Project,
    file: &SourceFile,
    name: &str,
    raw: &raw::RawSource,
    diags: &mut Diagnostics,
) -> Option<Source> {
    let span = yaml::span_of(file, &raw.path, raw.path.value.len());
    if !is_identifier(name) {
        diags.push(
            Diagnostic::error(Code::BadName, span.clone(), format!("source name `{name}` cannot be a table name"))
                .with_hint("use letters, digits and `_`, starting with a letter"),
        );
    }
    let format = match raw.format.as_ref().map(|f| f.value.as_str()) {
        Some("csv") | Some("tsv") => Format::Csv,
        Some("parquet") => Format::Parquet,
        Some("json") | Some("ndjson") | Some("jsonl") => Format::Json,
        Some(other) => {
            let f = raw.format.as_ref().expect("format is set");
            diags.push(
                Diagnostic::error(
                    Code::UnknownValue,
                    yaml::span_of(file, f, other.len()),
                    format!("unknown format `{other}` for source `{name}`"),
                )
                .with_hint("use `csv`, `parquet` or `json`"),
            );
            return None;
        }
        None => {
            let p = raw.path.value.to_ascii_lowercase();
            if p.ends_with(".parquet") {
                Format::Parquet
            } else if p.ends_with(".json") || p.ends_with(".ndjson") || p.ends_with(".jsonl") {
                Format::Json
            } else {
                Format::Csv
            }
        }
    };
    let columns: Vec<Column> = raw
        .columns
        .iter()
        .map(|(c, t)| {
            let span = yaml::span_of(file, t, t.value.len());
            let sql_type = SqlType::parse(&t.value).unwrap_or_else(|e| {
                let hint = match &e {
                    TypeError::Word(w) => did_you_mean(&w.to_ascii_uppercase(), sql_type::words()),
                    _ => None,
                };
                diags.push(
                    Diagnostic::error(
                        Code::ColumnType,
                        span.clone(),
                        format!("`{}` is not a DuckDB type (column `{c}` of source `{name}`)", t.value),
                    )
                    .with_hint(hint.unwrap_or_else(|| e.to_string())),
                );
                // Checking goes on as if it were text; the job has an error and never runs.
                SqlType::varchar()
            });
            Column { name: c.clone(), sql_type, span }
        })
        .collect();
    let primary_key = raw.primary_key.as_ref().map(|k| k.value.to_vec()).unwrap_or_default();
    // Without `strict`, undeclared columns of the file load too: the warehouse checks the
    // key and `loaded_at` against the file's header.
    if raw.strict && columns.is_empty() {
        diags.push(
            Diagnostic::error(Code::Job, span.clone(), format!("source `{name}` is strict but declares no columns"))
                .with_hint(
                    "list its columns under `columns:`, or leave out `strict: true` to load every column of the file",
                ),
        );
    }
    for key in primary_key.iter().filter(|_| raw.strict) {
        if !columns.iter().any(|c| c.name == *key) {
            let k = raw.primary_key.as_ref().expect("primary key is set");
            diags.push(
                Diagnostic::error(
                    Code::UnknownColumn,
                    yaml::span_of(file, k, key.len()),
                    format!("primary key `{key}` of source `{name}` is not a declared column"),
                )
                .with_hint_opt(did_you_mean(key, columns.iter().map(|c| c.name.as_str()))),
            );
        }
    }
    let max_age = raw.max_age.as_ref().and_then(|a| match parse_duration(&a.value) {
        Some(d) => Some(d),
        None => {
            diags.push(
                Diagnostic::error(
                    Code::Duration,
                    yaml::span_of(file, a, a.value.len()),
                    format!("`{}` is not a duration", a.value),
                )
                .with_hint("write a number and a unit: `90m`, `26h` or `2d`"),
            );
            None
        }
    });
    let on_stale = match raw.on_stale.as_ref().map(|o| o.value.as_str()) {
        None | Some("fail") => OnStale::Fail,
        Some("warn") => OnStale::Warn,
        Some(other) => {
            let o = raw.on_stale.as_ref().expect("on_stale is set");
            diags.push(
                Diagnostic::error(
                    Code::UnknownValue,
                    yaml::span_of(file, o, other.len()),
                    format!("unknown on_stale `{other}` for source `{name}`"),
                )
                .with_hint("use `fail` (stop the run) or `warn` (go on and say so)"),
            );
            OnStale::Fail
        }
    };
    if let Some(col) = &raw.loaded_at
        && raw.strict
        && !columns.iter().any(|c| c.name == *col)
    {
        diags.push(
            Diagnostic::error(
                Code::UnknownColumn,
                span.clone(),
                format!("loaded_at `{col}` of source `{name}` is not a declared column"),
            )
            .with_hint_opt(did_you_mean(col, columns.iter().map(|c| c.name.as_str()))),
        );
    }
    let max_drop = match &raw.max_drop {
        None => DEFAULT_MAX_DROP,
        Some(d) => {
            match d.value.trim().strip_suffix('%').and_then(|p| p.trim().parse::<f64>().ok()) {
                Some(p) if (0.0..=100.0).contains(&p) => p / 100.0,
                _ => {
                    diags.push(
                    Diagnostic::error(
                        Code::UnknownValue,
                        yaml::span_of(file, d, d.value.len()),
                        format!("max_drop `{}` of source `{name}` is not a percentage from 0% to 100%", d.value),
                    )
                    .with_hint("write how much smaller than the last run the extract may be: `50%`; `100%` allows any drop"),
                );
                    DEFAULT_MAX_DROP
                }
            }
        }
    };
    let path = PathBuf::from(&raw.path.value);
    let absolute = if path.is_absolute() { path } else { project.root.join(path) };
    Some(Source {
        name: name.to_string(),
        pattern: absolute.display().to_string(),
        display: raw.path.value.clone(),
        format,
        delimiter: raw.delimiter.clone(),
        columns,
        strict: raw.strict,
        primary_key,
        key_span: raw.primary_key.as_ref().map(|k| yaml::span_of(file, k, 1)),
        max_rejects: raw.max_rejects.unwrap_or(0),
        min_rows: raw.min_rows.unwrap_or(1),
        max_drop,
        max_age,
        loaded_at: raw.loaded_at.clone(),
        on_stale,
        span,
    })
}

fn features(
    project: &Project,
    file: &SourceFile,
    raw: &[Spanned<String>],
    sources: &[Source],
    diags: &mut Diagnostics,
) -> Vec<Feature> {
    let mut features: Vec<Feature> = Vec::new();
    for f in raw {
        let span = yaml::span_of(file, f, f.value.len());
        let path = project.root.join(&f.value);
        let name = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
        let sql = match crate::config::project::read_inside(&project.root, &path) {
            Ok(sql) => sql,
            Err(e) => {
                diags.push(
                    Diagnostic::error(Code::Unreadable, span, format!("cannot read feature SQL `{}`: {e}", f.value))
                        .with_hint("feature paths are relative to the project folder"),
                );
                continue;
            }
        };
        if features.iter().any(|x| x.name == name) || sources.iter().any(|s| s.name == name) {
            diags.push(
                Diagnostic::error(
                    Code::Duplicate,
                    span,
                    format!("feature view `{name}` has the name of another source or feature"),
                )
                .with_hint("each source and each feature file needs its own name"),
            );
            continue;
        }
        if !is_identifier(&name) {
            diags.push(
                Diagnostic::error(Code::BadName, span, format!("feature file name `{name}` cannot be a view name"))
                    .with_hint("use letters, digits and `_`, starting with a letter"),
            );
            continue;
        }
        features.push(Feature { name, file: SourceFile::new(f.value.clone(), &path, sql.clone()), sql });
    }
    features
}

fn entity(
    file: &SourceFile,
    e: &raw::RawEntity,
    sources: &[Source],
    features: &[Feature],
    diags: &mut Diagnostics,
) -> EntitySpec {
    let view = &e.view.value;
    let span = yaml::span_of(file, &e.view, view.len());
    if !features.iter().any(|f| f.name == *view) && !sources.iter().any(|s| s.name == *view) {
        let names = features.iter().map(|f| f.name.as_str()).chain(sources.iter().map(|s| s.name.as_str()));
        diags.push(
            Diagnostic::error(
                Code::EntityView,
                span.clone(),
                format!("entity view `{view}` is not a feature or a source of this job"),
            )
            .with_hint_opt(
                did_you_mean(view, names).or_else(|| Some("name one of the feature files, without `.sql`".into())),
            ),
        );
    }
    let mut column_spans = vec![(e.key.value.clone(), yaml::span_of(file, &e.key, e.key.value.len()))];
    for c in [&e.name, &e.arr, &e.owner].into_iter().flatten() {
        column_spans.push((c.value.clone(), yaml::span_of(file, c, c.value.len())));
    }
    EntitySpec {
        view: view.clone(),
        key: e.key.value.clone(),
        name: e.name.as_ref().map(|c| c.value.clone()),
        arr: e.arr.as_ref().map(|c| c.value.clone()),
        owner: e.owner.as_ref().map(|c| c.value.clone()),
        span,
        column_spans,
    }
}

fn schedule(file: &SourceFile, raw: &raw::RawSchedule, diags: &mut Diagnostics) -> Option<Schedule> {
    let cron = match raw.cron.value.parse::<croner::Cron>() {
        Ok(c) => Some(c),
        Err(e) => {
            diags.push(
                Diagnostic::error(
                    Code::Schedule,
                    yaml::span_of(file, &raw.cron, raw.cron.value.len()),
                    format!("bad cron expression `{}`: {e}", raw.cron.value),
                )
                .with_hint("five fields: minute hour day-of-month month day-of-week, for example `30 5 * * 1-5`"),
            );
            None
        }
    };
    let timezone = match &raw.timezone {
        None => Some(chrono_tz::UTC),
        Some(tz) => match tz.value.parse::<chrono_tz::Tz>() {
            Ok(t) => Some(t),
            Err(_) => {
                let names = chrono_tz::TZ_VARIANTS.iter().map(|t| t.name());
                diags.push(
                    Diagnostic::error(
                        Code::Schedule,
                        yaml::span_of(file, tz, tz.value.len()),
                        format!("unknown time zone `{}`", tz.value),
                    )
                    .with_hint_opt(
                        did_you_mean(&tz.value, names)
                            .or_else(|| Some("use an IANA name such as `Europe/Berlin`".into())),
                    ),
                );
                None
            }
        },
    };
    let retry_delay = match &raw.retry_delay {
        None => Some(Duration::from_secs(60)),
        Some(d) => parse_duration(&d.value).or_else(|| {
            diags.push(
                Diagnostic::error(
                    Code::Duration,
                    yaml::span_of(file, d, d.value.len()),
                    format!("`{}` is not a duration", d.value),
                )
                .with_hint("write a number and a unit: `30s`, `5m` or `1h`"),
            );
            None
        }),
    };
    let catch_up = match raw.catch_up.as_ref().map(|c| c.value.as_str()) {
        None | Some("latest") => Some(CatchUp::Latest),
        Some("none") => Some(CatchUp::None),
        Some(other) => {
            let c = raw.catch_up.as_ref().expect("catch_up is set");
            diags.push(
                Diagnostic::error(
                    Code::UnknownValue,
                    yaml::span_of(file, c, other.len()),
                    format!("unknown catch_up `{other}`"),
                )
                .with_hint("use `latest` (run the latest missed time once) or `none`"),
            );
            None
        }
    };
    Some(Schedule {
        cron: cron?,
        cron_text: raw.cron.value.clone(),
        timezone: timezone?,
        retries: raw.retries.unwrap_or(0),
        retry_delay: retry_delay?,
        catch_up: catch_up?,
    })
}

fn check_addresses(file: &SourceFile, output: &RawOutput, diags: &mut Diagnostics) {
    let (name, addresses): (&Spanned<String>, Vec<&Spanned<String>>) = match output {
        RawOutput::Escalation(e) => (&e.name, e.cc.iter().collect()),
        RawOutput::Summary(s) => (&s.name, s.to.iter().collect()),
        RawOutput::Calibration(c) => (&c.name, c.to.iter().collect()),
        RawOutput::Tasks(t) => (&t.name, Vec::new()),
    };
    folder_name(file, name, "output", diags);
    for a in addresses {
        address(file, a, diags);
    }
}

/// The project's channels named in `field`, each unknown name a located error.
pub fn channels(
    available: &[crate::config::channels::Channel],
    file: &SourceFile,
    names: &[Spanned<String>],
    field: &str,
    diags: &mut Diagnostics,
) -> Vec<crate::config::channels::Channel> {
    let mut found = Vec::new();
    for n in names {
        match crate::config::channels::find(available, &n.value) {
            Ok(c) => found.push(c.clone()),
            Err(unknown) => diags.push(
                Diagnostic::error(
                    Code::Channel,
                    yaml::span_of(file, n, n.value.len()),
                    format!("`{field}` names channel `{}`, which keepwell.yaml does not define", n.value),
                )
                .with_hint(unknown.hint),
            ),
        }
    }
    found
}

/// A name that becomes a folder (a job's outputs and mail, an output's lists): letters,
/// digits, `_` and `-`, so no name can reach outside keepwell's folders (`../`, `/etc`).
pub fn is_folder_name(name: &str) -> bool {
    name.len() <= 100
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn folder_name(file: &SourceFile, name: &Spanned<String>, what: &str, diags: &mut Diagnostics) {
    if !is_folder_name(&name.value) {
        diags.push(
            Diagnostic::error(
                Code::BadName,
                yaml::span_of(file, name, name.value.len()),
                format!("{what} name `{}` cannot be a folder name", name.value),
            )
            .with_hint("use letters, digits, `_` and `-`, starting with a letter or digit"),
        );
    }
}

fn address(file: &SourceFile, a: &Spanned<String>, diags: &mut Diagnostics) -> Option<lettre::message::Mailbox> {
    match a.value.parse::<lettre::message::Mailbox>() {
        Ok(m) => Some(m),
        Err(_) => {
            diags.push(
                Diagnostic::error(
                    Code::Address,
                    yaml::span_of(file, a, a.value.len()),
                    format!("`{}` is not an email address", a.value),
                )
                .with_hint("write `name@example.com` or `Name <name@example.com>`"),
            );
            None
        }
    }
}

/// How much smaller than in the last published run an extract may be when its source sets
/// no `max_drop`: half. A nightly extract rarely halves; a truncated export often does.
pub const DEFAULT_MAX_DROP: f64 = 0.5;

/// A run's time budget when its job sets none: the shipped 1M-account job takes about a
/// minute on 2 cores, so an hour is room enough for any real job and stops a runaway one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3600);

/// `90m`, `26h`, `2d`, `45s`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = text.split_at(split);
    let n: u64 = n.parse().ok()?;
    let secs = match unit.trim() {
        "s" => Some(n),
        "m" | "min" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        "d" => n.checked_mul(86_400),
        _ => return None,
    };
    secs.map(Duration::from_secs)
}

pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
