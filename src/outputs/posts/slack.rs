//! A [`Chat`] as a Slack Block Kit message: a header, a context line, a section per item
//! and a last context line for the rest. Slack's limits are kept: 150 characters in a
//! header, 3000 in a section, 50 blocks (the channel's `max_accounts` is at most 45).

use serde_json::{Value as Json, json};

use super::{Chat, Route, clip, is_person};

pub(super) fn message(chat: &Chat, route: &Route) -> Json {
    let mut context = escape(&chat.context);
    match (&route.target, &route.owner) {
        (Some(t), _) if is_person(t) && !t.contains('@') => context.push_str(&format!(" · for <@{t}>")),
        (_, Some(owner)) => context.push_str(&format!(" · for {}", escape(owner))),
        _ => {}
    }
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": clip(&chat.title, 150), "emoji": false}}),
        json!({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]}),
    ];
    for item in &chat.items {
        let mut text = format!("*{}*", escape(&item.heading));
        for (label, value) in &item.facts {
            text.push_str(&format!("\n*{}:* {}", escape(label), escape(value)));
        }
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": clip(&text, 3000)}}));
    }
    if let Some(more) = &chat.more {
        blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": escape(more)}]}));
    }
    let mut message = json!({"text": clip(&chat.text, 3000), "blocks": blocks});
    if let Some(target) = &route.target {
        message["channel"] = json!(target);
    }
    message
}

/// Slack's three control characters, escaped as its docs ask: `&`, `<` and `>`.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
