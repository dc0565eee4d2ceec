//! A job's outputs compiled against the entity's columns and the rule sets: expressions
//! checked and compiled like rules, templates loaded, every problem located.

use std::path::Path;

use minijinja::Environment;
use rhai::Engine;

use crate::config::channels::Channel;
use crate::config::diagnostic::Code;
use crate::config::diagnostic::{Diagnostic, Diagnostics, SourceFile};
use crate::config::job::Job;
use crate::config::job::raw::{RawColumn, RawEscalation, RawOutput, RawSummary};
use crate::config::yaml;
use crate::entity::Schema;
use crate::rules::compile::{AS_OF, compile_expr};
use crate::rules::{Expr, RuleSet};

use super::{Calibration, Escalation, Output, Summary, report};

/// Default templates, shipped inside the binary.
pub(super) const DEFAULT_TEMPLATES: &[(&str, &str)] = &[
    ("escalation.html", include_str!("templates/escalation.html")),
    ("escalation.txt", include_str!("templates/escalation.txt")),
    ("escalation.subject", include_str!("templates/escalation.subject")),
    ("summary.html", include_str!("templates/summary.html")),
    ("summary.txt", include_str!("templates/summary.txt")),
    ("summary.subject", include_str!("templates/summary.subject")),
    ("alert.html", include_str!("templates/alert.html")),
    ("alert.txt", include_str!("templates/alert.txt")),
    ("alert.subject", include_str!("templates/alert.subject")),
    ("calibration.html", include_str!("templates/calibration.html")),
    ("calibration.txt", include_str!("templates/calibration.txt")),
    ("calibration.subject", include_str!("templates/calibration.subject")),
];

/// Adds the mail templates to `env` (made by [`crate::rules::reason::environment`]): the
/// project's `templates/` folder first, then the defaults.
pub fn load_templates(root: &Path, env: &mut Environment<'static>) -> Diagnostics {
    let mut diags = Diagnostics::default();
    for (name, default) in DEFAULT_TEMPLATES {
        let path = root.join("templates").join(name);
        let display = format!("templates/{name}");
        let (source, file) = match crate::config::project::read_inside(root, &path) {
            Ok(text) => (text.clone(), Some(SourceFile::new(display, &path, text))),
            Err(e) if e.not_found() => (default.to_string(), None),
            Err(e) => {
                diags.push(Diagnostic::error(
                    Code::Unreadable,
                    crate::config::diagnostic::Span::file_only(&display, &path),
                    format!("cannot read `{display}`: {e}"),
                ));
                continue;
            }
        };
        if let Err(e) = env.add_template_owned(name.to_string(), source) {
            let span = match &file {
                Some(f) => f.span(e.line().unwrap_or(1), 1, 1),
                None => crate::config::diagnostic::Span::none(),
            };
            diags.push(Diagnostic::error(
                Code::Template,
                span,
                format!("template `{name}` does not parse: {}", e.detail().unwrap_or("syntax error")),
            ));
        }
    }
    diags
}

/// Compiles a job's outputs against the entity's columns and the rule sets' names.
#[allow(clippy::too_many_arguments)]
pub fn compile_outputs(
    job: &Job,
    raw_outputs: &[RawOutput],
    channels: &[Channel],
    schema: &Schema,
    rule_sets: &[&str],
    compiled: &[RuleSet],
    engine: &Engine,
    env: &mut Environment<'static>,
) -> (Vec<Output>, Diagnostics) {
    let mut diags = Diagnostics::default();
    let mut names: Vec<&str> = rule_sets.to_vec();
    names.push(AS_OF);
    let mut outputs = Vec::new();
    for raw in raw_outputs {
        match raw {
            RawOutput::Escalation(e) => {
                let found = chat_channels(job, channels, &e.channels, &mut diags);
                if let Some(mut o) = escalation(job, e, schema, &names, engine, env, &mut diags) {
                    o.channels = found;
                    outputs.push(Output::Escalation(Box::new(o)));
                }
            }
            RawOutput::Tasks(t) => {
                if let Some(o) =
                    super::compile_tasks::tasks(job, t, channels, schema, &names, compiled, engine, &mut diags)
                {
                    outputs.push(Output::Tasks(Box::new(o)));
                }
            }
            RawOutput::Summary(s) => {
                let report =
                    s.report.as_ref().map(|r| report::compile(job, r, schema, compiled, &names, engine, &mut diags));
                let mut summary = summary(job, s, env, &mut diags);
                summary.channels = chat_channels(job, channels, &s.channels, &mut diags);
                match report {
                    Some(None) => continue,
                    Some(report) => summary.report = report,
                    None => {}
                }
                outputs.push(Output::Summary(Box::new(summary)))
            }
            RawOutput::Calibration(c) => {
                if job.outcomes.is_none() {
                    diags.push(
                        Diagnostic::error(
                            Code::Outcomes,
                            crate::config::yaml::span_of(&job.file, &c.name, c.name.value.len()),
                            format!("calibration `{}` needs outcomes to measure the rules against", c.name.value),
                        )
                        .with_hint(
                            "add an `outcomes:` block naming the file of renewals and churns (docs/validation.md)",
                        ),
                    );
                    continue;
                }
                let name = &c.name.value;
                outputs.push(Output::Calibration(Box::new(Calibration {
                    name: name.clone(),
                    title: c.title.clone().unwrap_or_else(|| format!("{} calibration", job.name)),
                    to: c.to.iter().filter_map(|a| a.value.parse().ok()).collect(),
                    subject: template_override(
                        env,
                        &format!("{name}.subject"),
                        c.subject.as_ref(),
                        &job.file,
                        &mut diags,
                        "calibration.subject",
                    ),
                })))
            }
        }
    }
    (outputs, diags)
}

pub(super) fn escalation(
    job: &Job,
    raw: &RawEscalation,
    schema: &Schema,
    names: &[&str],
    engine: &Engine,
    env: &mut Environment<'static>,
    diags: &mut Diagnostics,
) -> Option<Escalation> {
    let name = &raw.name.value;
    let mut expr = |src: &serde_saphyr::Spanned<String>, what: &str| {
        compile_collecting(engine, &job.file, src, schema, names, &format!("{what} of escalation `{name}`"), diags)
    };
    let when = expr(&raw.when, "`when`");
    let owner = expr(&raw.owner, "`owner`");
    let order_by = raw.order_by.as_ref().map(|o| expr(o, "`order_by`"));
    let rollup = raw.rollup.as_ref().map(|o| expr(o, "`rollup`"));
    let columns: Vec<_> =
        labeled(&raw.columns).into_iter().map(|(label, src)| expr(&src, "a column").map(|e| (label, e))).collect();
    let subject = template_override(
        env,
        &format!("{name}.subject"),
        raw.subject.as_ref(),
        &job.file,
        diags,
        "escalation.subject",
    );
    let title = raw.title.clone().unwrap_or_else(|| name.replace('_', " "));
    let remind_after = match &raw.remind_after {
        None => Some(None),
        Some(r) => match crate::config::job::parse_duration(&r.value) {
            Some(d) => Some(chrono::Duration::from_std(d).ok()),
            None => {
                diags.push(
                    Diagnostic::error(
                        Code::Duration,
                        yaml::span_of(&job.file, r, r.value.len()),
                        format!("`{}` is not a duration", r.value),
                    )
                    .with_hint("write a number and a unit, such as `7d`"),
                );
                None
            }
        },
    };
    Some(Escalation {
        name: name.clone(),
        title,
        when: when?,
        owner: owner?,
        columns: columns.into_iter().collect::<Option<Vec<_>>>()?,
        order_by: order_by.flatten(),
        subject,
        cc: raw.cc.iter().filter_map(|a| a.value.parse().ok()).collect(),
        remind_after: remind_after?,
        rollup: match rollup {
            Some(r) => Some(r?),
            None => None,
        },
        channels: Vec::new(),
    })
}

/// Columns (or fields) as written: `expression`, or `{ label: expression }`, each with the
/// position of its entry.
pub(super) fn labeled(raw: &[serde_saphyr::Spanned<RawColumn>]) -> Vec<(String, serde_saphyr::Spanned<String>)> {
    let mut out = Vec::new();
    for c in raw {
        let pairs: Vec<(String, String)> = match &c.value {
            RawColumn::Expression(e) => vec![(e.clone(), e.clone())],
            RawColumn::Labeled(m) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        };
        for (label, value) in pairs {
            out.push((label, serde_saphyr::Spanned { value, referenced: c.referenced, defined: c.defined }));
        }
    }
    out
}

/// Compiles an output expression, adding its problems to `diags`; `None` when it does not
/// compile.
pub(crate) fn compile_collecting(
    engine: &Engine,
    file: &SourceFile,
    src: &serde_saphyr::Spanned<String>,
    schema: &Schema,
    names: &[&str],
    what: &str,
    diags: &mut Diagnostics,
) -> Option<Expr> {
    match compile_expr(engine, file, src, schema, names, what) {
        Ok((e, problems)) => {
            problems.into_iter().for_each(|d| diags.push(d));
            Some(e)
        }
        Err(d) => {
            diags.push(*d);
            None
        }
    }
}

pub(super) fn summary(job: &Job, raw: &RawSummary, env: &mut Environment<'static>, diags: &mut Diagnostics) -> Summary {
    let name = &raw.name.value;
    Summary {
        name: name.clone(),
        title: raw.title.clone().unwrap_or_else(|| format!("{} summary", job.name)),
        to: raw.to.iter().filter_map(|a| a.value.parse().ok()).collect(),
        subject: template_override(
            env,
            &format!("{name}.subject"),
            raw.subject.as_ref(),
            &job.file,
            diags,
            "summary.subject",
        ),
        report: None,
        channels: Vec::new(),
    }
}

/// The project's channels an output names (any kind).
fn chat_channels(
    job: &Job,
    channels: &[Channel],
    names: &[serde_saphyr::Spanned<String>],
    diags: &mut Diagnostics,
) -> Vec<Channel> {
    crate::config::job::channels(channels, &job.file, names, "channels", diags)
}

/// A subject line written in the job file, or the default template's name.
pub(super) fn template_override(
    env: &mut Environment<'static>,
    name: &str,
    text: Option<&serde_saphyr::Spanned<String>>,
    file: &SourceFile,
    diags: &mut Diagnostics,
    default: &str,
) -> String {
    let Some(text) = text else {
        return default.to_string();
    };
    match env.add_template_owned(name.to_string(), text.value.clone()) {
        Ok(()) => name.to_string(),
        Err(e) => {
            diags.push(
                Diagnostic::error(
                    Code::Template,
                    yaml::span_of(file, text, 1),
                    format!("subject `{}` does not parse: {}", text.value, e.detail().unwrap_or("syntax error")),
                )
                .with_hint("subjects are templates: `{{ count }} accounts need you`"),
            );
            default.to_string()
        }
    }
}
