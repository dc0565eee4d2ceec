//! Messages for the alert channels: each escalation owner's list, the summary's headline and
//! the metric alerts as a Slack Block Kit message, a Teams Adaptive Card or a webhook's JSON
//! (`webhook.rs`), keyed in the outbox like mail so each is delivered once.
//!
//! Slack and Teams messages are rendered from one [`Chat`]: a title, a line of context, and
//! items each with a heading and facts, so the two chats always say the same.

mod slack;
mod teams;
pub mod webhook;

use serde_json::Value as Json;

use super::lists::Cells;
use super::{OwnerList, RunView};
use crate::config::channels::{Channel, ChannelKind};
use webhook::{Envelope, Event};

/// A message rendered for one channel: the body and what keys it in the outbox.
#[derive(Debug, Clone)]
pub struct Post {
    /// The output that produced it.
    pub output: String,
    pub channel: String,
    pub kind: ChannelKind,
    /// What keys it within the output and day: the channel and the owner (or batch).
    pub recipient: String,
    /// One line for listings (`keepwell outbox`, the preview).
    pub summary: String,
    /// The JSON body.
    pub body: String,
}

/// The idempotency key of the outbox entry `(job, as_of, output, recipient)`: the first 32
/// hex digits of its SHA-256, the same on every retry.
pub fn idempotency_key(job: &str, as_of: chrono::NaiveDate, output: &str, recipient: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{job}\u{1f}{as_of}\u{1f}{output}\u{1f}{recipient}").as_bytes());
    hex::encode(&digest[..16])
}

/// What a chat message says, for Slack and Teams alike.
#[derive(Debug, Clone, Default)]
pub(crate) struct Chat {
    pub title: String,
    pub context: String,
    /// The notification's one line.
    pub text: String,
    pub items: Vec<ChatItem>,
    /// A last line: how many more there are, and where to find them.
    pub more: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct ChatItem {
    pub heading: String,
    pub facts: Vec<(String, String)>,
}

/// Where a chat message goes: a Slack channel or user, and whom to mention.
#[derive(Debug, Clone, Default)]
pub(crate) struct Route {
    /// The routed target (`U024BE7LH`, `#cs-emea`, `C0123`), or none for the channel's own.
    pub target: Option<String>,
    /// The owner the message is for, to mention.
    pub owner: Option<String>,
}

fn render_chat(channel: &Channel, chat: &Chat, route: &Route) -> String {
    let body = match channel.kind {
        ChannelKind::Slack => slack::message(chat, route),
        ChannelKind::Teams => teams::message(chat, route),
        ChannelKind::Webhook => Json::Null,
    };
    serde_json::to_string(&body).unwrap_or_default()
}

/// Which run a post is from.
#[derive(Debug, Clone)]
pub struct Stamp {
    pub job: String,
    pub as_of: chrono::NaiveDate,
    pub run_id: Option<i64>,
}

impl Stamp {
    pub fn of(view: &RunView) -> Stamp {
        Stamp { job: view.job.name.clone(), as_of: view.as_of, run_id: view.run_id }
    }
}

fn envelope(stamp: &Stamp, output: &str, recipient: &str, events: Vec<Event>) -> String {
    let env = Envelope {
        schema_version: 1,
        id: idempotency_key(&stamp.job, stamp.as_of, output, recipient),
        job: stamp.job.clone(),
        as_of: stamp.as_of.to_string(),
        run_id: stamp.run_id,
        output: output.to_string(),
        events,
    };
    serde_json::to_string(&env).unwrap_or_default()
}

/// Each owner's list for every channel of the escalation.
pub(super) fn escalation(
    view: &RunView,
    output: &str,
    title: &str,
    labels: &[String],
    channels: &[Channel],
    owners: &[OwnerList],
) -> Vec<Post> {
    let mut posts = Vec::new();
    for channel in channels {
        for list in owners {
            let recipient = format!("{}:{}", channel.name, list.owner);
            let summary = format!("{title}: {} accounts for {}", list.rows.len(), list.owner);
            let route = channel.route(&list.owner).map(str::to_string);
            let body = match channel.kind {
                ChannelKind::Webhook => {
                    let accounts = list
                        .rows
                        .iter()
                        .zip(&list.accounts)
                        .map(|(row, account)| webhook::ListedAccount {
                            account_id: account.to_string(),
                            values: labels.iter().cloned().zip(row.iter().map(str::to_string)).collect(),
                        })
                        .collect();
                    let listed = webhook::Listed {
                        title: title.to_string(),
                        owner: list.owner.clone(),
                        route,
                        columns: labels.to_vec(),
                        accounts,
                    };
                    envelope(&Stamp::of(view), output, &recipient, vec![Event::EscalationListed(listed)])
                }
                _ => {
                    let chat = list_chat(view, title, &list.owner, labels, &list.rows, channel.max_accounts);
                    render_chat(channel, &chat, &Route { target: route, owner: Some(list.owner.clone()) })
                }
            };
            posts.push(Post {
                output: output.to_string(),
                channel: channel.name.clone(),
                kind: channel.kind,
                recipient,
                summary,
                body,
            });
        }
    }
    posts
}

fn list_chat(view: &RunView, title: &str, owner: &str, labels: &[String], rows: &[Cells], max: usize) -> Chat {
    let items = rows
        .iter()
        .take(max)
        .map(|row| {
            let mut cells = labels.iter().zip(row.iter());
            let heading = cells.next().map(|(_, v)| v.to_string()).unwrap_or_default();
            ChatItem {
                heading,
                facts: cells.filter(|(_, v)| !v.is_empty()).map(|(l, v)| (l.clone(), v.to_string())).collect(),
            }
        })
        .collect();
    let n = rows.len();
    let accounts = format!("{n} account{}", if n == 1 { "" } else { "s" });
    Chat {
        title: format!("{title}: {accounts}"),
        context: format!("{} · {}", view.job.name, view.as_of),
        text: format!("{title}: {accounts} for {owner} ({}, {})", view.job.name, view.as_of),
        items,
        more: (n > max).then(|| format!("and {} more in the mail and the list's CSV", n - max)),
    }
}

/// The summary's headline for every channel of the summary. `ctx` is the summary mail's
/// context as JSON.
pub(super) fn summary(view: &RunView, output: &str, title: &str, channels: &[Channel], ctx: &Json) -> Vec<Post> {
    let number = |v: &Json| v.as_f64().unwrap_or(0.0);
    let count = |v: &Json| v.as_u64().unwrap_or_else(|| number(v) as u64);
    let currency = ctx["currency"].as_str().unwrap_or("$");
    let sets: Vec<webhook::ReportSet> = ctx["rule_sets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| webhook::ReportSet {
            name: s["name"].as_str().unwrap_or_default().to_string(),
            grades: s["grades"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|g| webhook::ReportGrade {
                    grade: g["grade"].as_str().unwrap_or_default().to_string(),
                    accounts: count(&g["accounts"]),
                    arr: number(&g["arr"]),
                })
                .collect(),
        })
        .collect();
    let escalations: Vec<webhook::ReportEscalation> = ctx["escalations"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| webhook::ReportEscalation {
            name: e["name"].as_str().unwrap_or_default().to_string(),
            title: e["title"].as_str().unwrap_or_default().to_string(),
            owners: count(&e["owners"]),
            accounts: count(&e["accounts"]),
        })
        .collect();
    let report = webhook::Report {
        title: title.to_string(),
        accounts: count(&ctx["accounts"]),
        total_arr: number(&ctx["total_arr"]),
        rule_sets: sets,
        escalations,
        rule_errors: count(&ctx["rule_errors"]),
        rejects: count(&ctx["rejects"]),
    };
    let money = |v: f64| crate::rules::engine::money_in(v, currency);
    let mut items = vec![ChatItem {
        heading: "Accounts".to_string(),
        facts: vec![("Accounts".into(), report.accounts.to_string()), ("ARR".into(), money(report.total_arr))],
    }];
    for set in &report.rule_sets {
        items.push(ChatItem {
            heading: set.name.clone(),
            facts: set.grades.iter().map(|g| (g.grade.clone(), format!("{} · {}", g.accounts, money(g.arr)))).collect(),
        });
    }
    if !report.escalations.is_empty() {
        items.push(ChatItem {
            heading: "Escalations".to_string(),
            facts: report
                .escalations
                .iter()
                .map(|e| (e.title.clone(), format!("{} accounts for {} owners", e.accounts, e.owners)))
                .collect(),
        });
    }
    let chat = Chat {
        title: title.to_string(),
        context: format!("{} · {}", view.job.name, view.as_of),
        text: format!("{title}: {} accounts, {} ARR ({})", report.accounts, money(report.total_arr), view.as_of),
        items,
        more: None,
    };
    let summary = format!("{title}: {} accounts", report.accounts);
    channels
        .iter()
        .map(|channel| {
            let recipient = channel.name.clone();
            let body = match channel.kind {
                ChannelKind::Webhook => {
                    envelope(&Stamp::of(view), output, &recipient, vec![Event::ReportPublished(report.clone())])
                }
                _ => render_chat(channel, &chat, &Route { target: channel.fallback.clone(), owner: None }),
            };
            Post {
                output: output.to_string(),
                channel: channel.name.clone(),
                kind: channel.kind,
                recipient,
                summary: summary.clone(),
                body,
            }
        })
        .collect()
}

/// The metric alerts for the job's `alert_channels`. `alerts` are the alert mail's
/// per-alert contexts as JSON, beside the alerts they describe.
pub(super) fn alerts(view: &RunView, output: &str, alerts: &[(Json, &crate::metrics::Alert)]) -> Vec<Post> {
    let events: Vec<webhook::MetricAlert> = alerts
        .iter()
        .map(|(ctx, a)| webhook::MetricAlert {
            metric: a.value.metric.clone(),
            title: ctx["title"].as_str().unwrap_or_default().to_string(),
            segment_by: a.value.segment_by.clone(),
            segment: (!a.value.is_total()).then(|| ctx["segment"].as_str().unwrap_or_default().to_string()),
            value: a.value.value,
            previous: a.previous,
            change: a.change(),
            text: ctx["text"].as_str().unwrap_or_default().to_string(),
            alert_when: ctx["alert_when"].as_str().map(str::to_string),
        })
        .collect();
    let items = alerts
        .iter()
        .map(|(ctx, _)| {
            let s = |k: &str| ctx[k].as_str().unwrap_or_default().to_string();
            let heading = match ctx["segment_by"].as_str() {
                Some(by) => format!("{}, {by} {}", s("title"), s("segment")),
                None => s("title"),
            };
            let mut facts = vec![("Now".to_string(), s("text"))];
            let previous = match ctx["change_text"].as_str().filter(|c| !c.is_empty()) {
                Some(change) => format!("{} ({change})", s("previous_text")),
                None => s("previous_text"),
            };
            facts.push(("Previous run".to_string(), previous));
            facts.push(("Alert when".to_string(), s("alert_when")));
            ChatItem { heading, facts }
        })
        .collect();
    let n = alerts.len();
    let chat = Chat {
        title: format!("{n} metric alert{}", if n == 1 { "" } else { "s" }),
        context: format!("{} · {}", view.job.name, view.as_of),
        text: format!("{n} metric alert{} in job {} ({})", if n == 1 { "" } else { "s" }, view.job.name, view.as_of),
        items,
        more: None,
    };
    view.job
        .alert_channels
        .iter()
        .map(|channel| {
            let recipient = channel.name.clone();
            let body = match channel.kind {
                ChannelKind::Webhook => envelope(
                    &Stamp::of(view),
                    output,
                    &recipient,
                    events.iter().cloned().map(Event::MetricAlert).collect(),
                ),
                _ => render_chat(channel, &chat, &Route { target: channel.fallback.clone(), owner: None }),
            };
            Post {
                output: output.to_string(),
                channel: channel.name.clone(),
                kind: channel.kind,
                recipient,
                summary: chat.text.clone(),
                body,
            }
        })
        .collect()
}

/// Task events for a webhook channel, `batch` to a request, in the order given.
pub(super) fn task_batches(
    stamp: &Stamp,
    output: &str,
    channel: &Channel,
    events: Vec<Event>,
    batch: usize,
) -> Vec<Post> {
    let mut posts = Vec::new();
    let mut events = events.into_iter().peekable();
    while events.peek().is_some() {
        let chunk: Vec<Event> = events.by_ref().take(batch.max(1)).collect();
        let ids: Vec<&str> = chunk
            .iter()
            .map(|e| match e {
                Event::TaskOpened(t) | Event::TaskUpdated(t) | Event::TaskClosed(t) => t.event_id.as_str(),
                _ => "",
            })
            .collect();
        // The batch is named by its events, so the same events make the same request.
        let recipient = format!("{}:{}", channel.name, idempotency_key("", stamp.as_of, output, &ids.join(",")));
        let summary = format!("{} task event{}", chunk.len(), if chunk.len() == 1 { "" } else { "s" });
        let body = envelope(stamp, output, &recipient, chunk);
        posts.push(Post {
            output: output.to_string(),
            channel: channel.name.clone(),
            kind: channel.kind,
            recipient,
            summary,
            body,
        });
    }
    posts
}

/// A Slack user or Teams principal id rather than a channel: `U…`/`W…` ids, or an address.
pub(crate) fn is_person(target: &str) -> bool {
    let id = |p: char| target.starts_with(p) && target.len() >= 9 && target.chars().all(|c| c.is_ascii_alphanumeric());
    id('U') || id('W') || target.contains('@')
}

/// `text` cut to `max` characters, with `…` when it was longer.
pub(crate) fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
    s.push('…');
    s
}
