//! The project's alert channels (`channels:` in `keepwell.yaml`): Slack, Microsoft Teams and
//! signed webhooks, each with its address and secrets read from environment variables, and
//! an optional lookup that routes each owner's messages to their own Slack user or channel.
//!
//! A channel whose address variable is unset is off: runs send nothing to it (mail to the
//! outbox folder stays the embedded default) and `keepwell preview` still shows what it
//! would carry.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use indexmap::IndexMap;
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::config::diagnostic::{Code, Diagnostic, Diagnostics, SourceFile, Span, did_you_mean};
use crate::config::yaml::span_of;

/// A channel as written in `keepwell.yaml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawChannel {
    kind: Spanned<String>,
    /// The environment variable holding the URL (never the URL itself: it is a secret).
    url_env: Spanned<String>,
    /// Slack only: a bot token, sent as `Authorization: Bearer`, for `chat.postMessage`.
    token_env: Option<Spanned<String>>,
    /// Webhooks: the environment variable holding the HMAC-SHA256 signing secret.
    secret_env: Option<Spanned<String>>,
    /// A CSV file with `owner` and `target` columns: owner e-mail → Slack user or channel.
    routes: Option<Spanned<String>>,
    /// Where owners without a route go.
    fallback: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    attempts: Option<Spanned<u32>>,
    max_wait: Option<Spanned<String>>,
    max_accounts: Option<Spanned<usize>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    Slack,
    Teams,
    Webhook,
}

impl ChannelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Slack => "slack",
            ChannelKind::Teams => "teams",
            ChannelKind::Webhook => "webhook",
        }
    }
}

/// A checked channel.
#[derive(Debug, Clone)]
pub struct Channel {
    pub name: String,
    pub kind: ChannelKind,
    pub url_env: String,
    pub token_env: Option<String>,
    pub secret_env: Option<String>,
    /// Owner e-mail (lower case) → target.
    pub routes: HashMap<String, String>,
    pub fallback: Option<String>,
    /// How long one request may take.
    pub timeout: Duration,
    /// Attempts per message within one delivery.
    pub attempts: u32,
    /// The longest `Retry-After` waited for within a delivery; a longer one leaves the
    /// message for later.
    pub max_wait: Duration,
    /// Accounts shown in one Slack or Teams message (the rest are counted).
    pub max_accounts: usize,
}

impl Channel {
    /// The channel's URL, when its variable is set: `None` means the channel is off.
    pub fn url(&self) -> Option<String> {
        std::env::var(&self.url_env).ok().filter(|u| !u.trim().is_empty())
    }

    /// Where `owner`'s messages go: their route, else the fallback.
    pub fn route(&self, owner: &str) -> Option<&str> {
        self.routes.get(&owner.trim().to_lowercase()).or(self.fallback.as_ref()).map(String::as_str)
    }
}

const KINDS: [&str; 3] = ["slack", "teams", "webhook"];

/// Checks every channel, collecting every problem.
pub(super) fn compile(
    root: &Path,
    file: &SourceFile,
    raw: IndexMap<String, RawChannel>,
) -> (Vec<Channel>, Diagnostics) {
    let mut diags = Diagnostics::default();
    let mut channels = Vec::new();
    for (name, r) in raw {
        let err = |code: Code, span: Span, message: String| Diagnostic::error(code, span, message);
        let kind = match r.kind.value.as_str() {
            "slack" => Some(ChannelKind::Slack),
            "teams" => Some(ChannelKind::Teams),
            "webhook" => Some(ChannelKind::Webhook),
            other => {
                diags.push(
                    err(
                        Code::Channel,
                        span_of(file, &r.kind, other.len()),
                        format!("channel `{name}`: unknown kind `{other}`"),
                    )
                    .with_hint(did_you_mean(other, KINDS).unwrap_or_else(|| "use slack, teams or webhook".into())),
                );
                None
            }
        };
        let env_name = |v: &Spanned<String>, field: &str, diags: &mut Diagnostics| {
            let ok = !v.value.is_empty() && v.value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                diags.push(
                    err(
                        Code::Channel,
                        span_of(file, v, v.value.len().max(1)),
                        format!("channel `{name}`: `{field}` must name an environment variable, not hold a value"),
                    )
                    .with_hint(
                        "write the variable's name, such as KEEPWELL_SLACK_WEBHOOK_URL, and set it where keepwell runs",
                    ),
                );
            }
            v.value.clone()
        };
        let url_env = env_name(&r.url_env, "url_env", &mut diags);
        let token_env = r.token_env.as_ref().map(|t| env_name(t, "token_env", &mut diags));
        let secret_env = r.secret_env.as_ref().map(|t| env_name(t, "secret_env", &mut diags));
        let only = |field: &str, value: &Option<Spanned<String>>, allowed: ChannelKind, diags: &mut Diagnostics| {
            if let (Some(v), Some(k)) = (value, kind)
                && k != allowed
            {
                diags.push(err(
                    Code::Channel,
                    span_of(file, v, v.value.len()),
                    format!("channel `{name}`: `{field}` is for {} channels, not {}", allowed.as_str(), k.as_str()),
                ));
            }
        };
        only("token_env", &r.token_env, ChannelKind::Slack, &mut diags);
        only("secret_env", &r.secret_env, ChannelKind::Webhook, &mut diags);
        if kind == Some(ChannelKind::Webhook) && secret_env.is_none() {
            diags.push(
                err(Code::Channel, span_of(file, &r.kind, r.kind.value.len()), format!("channel `{name}`: a webhook needs `secret_env`"))
                    .with_hint("name the environment variable holding the signing secret; receivers verify each request with it (docs/alerts.md)"),
            );
        }
        let duration = |v: &Option<Spanned<String>>, field: &str, default: u64, diags: &mut Diagnostics| match v {
            None => Duration::from_secs(default),
            Some(v) => match crate::config::job::parse_duration(&v.value).filter(|d| !d.is_zero()) {
                Some(d) => d,
                None => {
                    diags.push(
                        err(
                            Code::Duration,
                            span_of(file, v, v.value.len()),
                            format!("channel `{name}`: {field} `{}` is not a duration", v.value),
                        )
                        .with_hint("write a number above 0 and a unit: `30s`, `5m`"),
                    );
                    Duration::from_secs(default)
                }
            },
        };
        let timeout = duration(&r.timeout, "timeout", 30, &mut diags);
        let max_wait = duration(&r.max_wait, "max_wait", 60, &mut diags);
        let positive = |v: &Option<Spanned<u32>>, default: u32, diags: &mut Diagnostics| match v {
            Some(v) if v.value == 0 => {
                diags.push(err(
                    Code::Channel,
                    span_of(file, v, 1),
                    format!("channel `{name}`: attempts must be 1 or more"),
                ));
                default
            }
            Some(v) => v.value,
            None => default,
        };
        let attempts = positive(&r.attempts, 5, &mut diags);
        let max_accounts = match &r.max_accounts {
            Some(v) if v.value == 0 || v.value > 45 => {
                diags.push(
                    err(Code::Channel, span_of(file, v, 2), format!("channel `{name}`: max_accounts must be 1 to 45"))
                        .with_hint("Slack allows 50 blocks a message; keepwell keeps 5 for the title and the count of the rest"),
                );
                20
            }
            Some(v) => v.value,
            None => 20,
        };
        let routes = match &r.routes {
            None => HashMap::new(),
            Some(p) => read_routes(root, file, &name, p, &mut diags),
        };
        if let Some(kind) = kind {
            channels.push(Channel {
                name,
                kind,
                url_env,
                token_env,
                secret_env,
                routes,
                fallback: r.fallback.map(|f| f.value),
                timeout,
                attempts,
                max_wait,
                max_accounts,
            });
        }
    }
    (channels, diags)
}

/// The routes file: `owner,target` with a header, owners matched without regard to case.
fn read_routes(
    root: &Path,
    settings: &SourceFile,
    channel: &str,
    path: &Spanned<String>,
    diags: &mut Diagnostics,
) -> HashMap<String, String> {
    // A data file like the sources: anywhere, relative to the project.
    let full = root.join(&path.value);
    let text = match std::fs::read_to_string(&full) {
        Ok(t) => t,
        Err(e) => {
            diags.push(Diagnostic::error(
                Code::Unreadable,
                span_of(settings, path, path.value.len()),
                format!("channel `{channel}`: cannot read the routes file `{}`: {e}", path.value),
            ));
            return HashMap::new();
        }
    };
    let file = SourceFile::new(path.value.clone(), &full, text.clone());
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(text.as_bytes());
    let header: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(|c| c.trim().to_lowercase()).collect(),
        Err(e) => {
            diags.push(Diagnostic::error(Code::Channel, file.span(1, 1, 1), format!("cannot read the header: {e}")));
            return HashMap::new();
        }
    };
    let (Some(owner), Some(target)) =
        (header.iter().position(|h| h == "owner"), header.iter().position(|h| h == "target"))
    else {
        diags.push(
            Diagnostic::error(
                Code::Channel,
                file.span(1, 1, file.line_text(1).map_or(1, |l| l.len().max(1))),
                format!("the routes file of channel `{channel}` needs `owner` and `target` columns"),
            )
            .with_hint("write a header `owner,target`, then one line per owner: `ana@example.com,U024BE7LH`"),
        );
        return HashMap::new();
    };
    let mut routes = HashMap::new();
    let mut lines: HashMap<String, u64> = HashMap::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(1, |p| p.line() as usize);
                diags.push(Diagnostic::error(
                    Code::Channel,
                    file.span(line, 1, 1),
                    format!("cannot read this line: {e}"),
                ));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        let cell = |i: usize| record.get(i).map(str::trim).unwrap_or("");
        let (o, t) = (cell(owner).to_lowercase(), cell(target));
        if o.is_empty() || t.is_empty() {
            let col = if o.is_empty() { owner } else { target };
            diags.push(Diagnostic::error(
                Code::Channel,
                file.span(line as usize, column_of(&file, line as usize, col), 1),
                format!("`{}` is empty", if o.is_empty() { "owner" } else { "target" }),
            ));
            continue;
        }
        if let Some(first) = lines.insert(o.clone(), line) {
            diags.push(
                Diagnostic::error(
                    Code::Duplicate,
                    file.span(line as usize, 1, o.len()),
                    format!("owner `{o}` is routed twice"),
                )
                .with_hint(format!("line {first} routes it already")),
            );
            continue;
        }
        routes.insert(o, t.to_string());
    }
    routes
}

/// The 1-based column where field `index` starts on `line` (plain CSV without quotes).
fn column_of(file: &SourceFile, line: usize, index: usize) -> usize {
    let text = file.line_text(line).unwrap_or("");
    let mut col = 1;
    for (i, part) in text.split(',').enumerate() {
        if i == index {
            return col;
        }
        col += part.chars().count() + 1;
    }
    col
}

/// A channel name keepwell.yaml does not define; shown, what to write instead.
#[derive(Debug, thiserror::Error)]
#[error("{hint}")]
pub struct UnknownChannel {
    pub hint: String,
}

/// The channel named `name`, or the closest names to write instead.
pub fn find<'a>(channels: &'a [Channel], name: &str) -> Result<&'a Channel, UnknownChannel> {
    channels.iter().find(|c| c.name == name).ok_or_else(|| {
        let known: Vec<&str> = channels.iter().map(|c| c.name.as_str()).collect();
        let hint = match did_you_mean(name, known.iter().copied()) {
            Some(hint) => hint,
            None if known.is_empty() => "keepwell.yaml defines no `channels:` (docs/alerts.md)".to_string(),
            None => format!("keepwell.yaml defines {}", known.join(", ")),
        };
        UnknownChannel { hint }
    })
}
