//! A `tasks:` output checked against the job: its rule sets, `by`, expressions, cooldown and
//! channels (webhooks only: task events are for systems, not chats), every problem located.

use rhai::Engine;
use serde_saphyr::Spanned;

use super::compile::compile_collecting;
use super::tasks::Tasks;
use crate::config::channels::{Channel, ChannelKind};
use crate::config::diagnostic::{Code, Diagnostic, Diagnostics, did_you_mean};
use crate::config::job::Job;
use crate::config::job::raw::RawTasks;
use crate::config::yaml::span_of;
use crate::entity::Schema;
use crate::rules::RuleSet;

#[allow(clippy::too_many_arguments)]
pub(super) fn tasks(
    job: &Job,
    raw: &RawTasks,
    channels: &[Channel],
    schema: &Schema,
    names: &[&str],
    compiled: &[RuleSet],
    engine: &Engine,
    diags: &mut Diagnostics,
) -> Option<Tasks> {
    let name = &raw.name.value;
    let file = &job.file;
    let before = diags.errors();
    if raw.rule_sets.is_empty() {
        diags.push(
            Diagnostic::error(
                Code::Channel,
                span_of(file, &raw.name, name.len()),
                format!("tasks `{name}` names no rule sets"),
            )
            .with_hint("add `rule_sets: [signals]`: each fired rule of theirs opens a task"),
        );
    }
    let mut rule_sets = Vec::new();
    for s in &raw.rule_sets {
        match compiled.iter().position(|r| r.name == s.value) {
            Some(i) => rule_sets.push(i),
            None => diags.push(
                Diagnostic::error(
                    Code::UnknownRuleSet,
                    span_of(file, s, s.value.len()),
                    format!("tasks `{name}` reads rule set `{}`, which the job does not run", s.value),
                )
                .with_hint_opt(did_you_mean(&s.value, compiled.iter().map(|r| r.name.as_str()))),
            ),
        }
    }
    let by_tag = match raw.by.as_ref().map(|b| b.value.as_str()) {
        None | Some("reason") => false,
        Some("tag") => true,
        Some(other) => {
            let b = raw.by.as_ref().expect("matched Some");
            diags.push(
                Diagnostic::error(
                    Code::UnknownValue,
                    span_of(file, b, other.len()),
                    format!("tasks `{name}`: unknown `by: {other}`"),
                )
                .with_hint("use `reason` (a task per fired rule) or `tag` (a task per tag)"),
            );
            false
        }
    };
    let mut expr = |src: &Spanned<String>, what: &str| {
        compile_collecting(engine, file, src, schema, names, &format!("{what} of tasks `{name}`"), diags)
    };
    let when = raw.when.as_ref().map(|w| expr(w, "`when`"));
    let owner = raw.owner.as_ref().map(|o| expr(o, "`owner`"));
    let fields: Vec<_> = super::compile::labeled(&raw.fields)
        .into_iter()
        .map(|(label, src)| expr(&src, "a field").map(|e| (label, e)))
        .collect();
    let cooldown_days = raw.cooldown.as_ref().and_then(|c| {
        match crate::config::job::parse_duration(&c.value).filter(|d| d.as_secs() % 86_400 == 0) {
            Some(d) => Some((d.as_secs() / 86_400) as i64),
            None => {
                diags.push(
                    Diagnostic::error(
                        Code::Duration,
                        span_of(file, c, c.value.len()),
                        format!("`{}` is not a number of days", c.value),
                    )
                    .with_hint("runs are daily: write the cooldown in days, such as `14d`"),
                );
                None
            }
        }
    });
    let found = crate::config::job::channels(channels, file, &raw.channels, "channels", diags);
    for (c, n) in found.iter().zip(&raw.channels) {
        if c.kind != ChannelKind::Webhook {
            diags.push(
                Diagnostic::error(
                    Code::Channel,
                    span_of(file, n, n.value.len()),
                    format!(
                        "tasks `{name}` sends to `{}`, a {} channel: task events go to webhooks",
                        c.name,
                        c.kind.as_str()
                    ),
                )
                .with_hint("name a `kind: webhook` channel; a CRM or a workflow tool turns the events into tasks"),
            );
        }
    }
    let batch = match raw.batch {
        Some(b) if b == 0 || b > 1000 => {
            diags.push(Diagnostic::error(
                Code::Channel,
                span_of(file, &raw.name, name.len()),
                format!("tasks `{name}`: batch must be 1 to 1000 events a request"),
            ));
            100
        }
        Some(b) => b,
        None => 100,
    };
    if diags.errors() > before {
        return None;
    }
    Some(Tasks {
        name: name.clone(),
        rule_sets,
        by_tag,
        when: when.flatten(),
        owner: owner.flatten(),
        fields: fields.into_iter().collect::<Option<Vec<_>>>()?,
        cooldown_days,
        channels: found,
        batch,
    })
}
