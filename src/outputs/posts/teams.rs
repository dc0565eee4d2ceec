//! A [`Chat`] as a Microsoft Teams message for a workflow webhook: one Adaptive Card (1.4)
//! with a title, a context line, a container with a fact set per item, and the owner
//! mentioned by their address (`msteams.entities`).

use serde_json::{Value as Json, json};

use super::{Chat, Route, clip, is_person};

pub(super) fn message(chat: &Chat, route: &Route) -> Json {
    // Teams mentions a person by their sign-in address: the route when it is one, else the
    // owner's own.
    let mention =
        route.target.as_deref().filter(|t| t.contains('@')).or(route.owner.as_deref().filter(|o| is_person(o)));
    let mut context = chat.context.clone();
    if let Some(m) = mention {
        context.push_str(&format!(" · for <at>{m}</at>"));
    }
    let mut body = vec![
        json!({"type": "TextBlock", "size": "Large", "weight": "Bolder", "text": clip(&chat.title, 300), "wrap": true}),
        json!({"type": "TextBlock", "isSubtle": true, "spacing": "None", "text": context, "wrap": true}),
    ];
    for item in &chat.items {
        let facts: Vec<Json> = item.facts.iter().map(|(t, v)| json!({"title": t, "value": clip(v, 1000)})).collect();
        body.push(json!({
            "type": "Container", "separator": true,
            "items": [
                {"type": "TextBlock", "weight": "Bolder", "text": clip(&item.heading, 300), "wrap": true},
                {"type": "FactSet", "facts": facts}
            ]
        }));
    }
    if let Some(more) = &chat.more {
        body.push(json!({"type": "TextBlock", "isSubtle": true, "text": more, "wrap": true}));
    }
    let mut card = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard", "version": "1.4", "body": body
    });
    if let Some(m) = mention {
        card["msteams"] = json!({"entities": [{"type": "mention", "text": format!("<at>{m}</at>"), "mentioned": {"id": m, "name": m}}]});
    }
    json!({
        "type": "message",
        "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": null, "content": card}]
    })
}
