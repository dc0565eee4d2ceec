//! Delivering the alert channels' posts from the store's outbox over HTTP: Slack, Teams and
//! signed webhooks, each post once.
//!
//! Every request carries an `Idempotency-Key` header (the same on every retry). A webhook's
//! body is signed with HMAC-SHA256 over `<timestamp>.<body>` (`X-Keepwell-Signature:
//! v1=<hex>`, `X-Keepwell-Timestamp`), so a receiver can tell it came from keepwell and is
//! fresh. A `429` or `503` is retried after its `Retry-After` when that is within the
//! channel's `max_wait` (else the post waits in the outbox until then), a `5xx` or a refused
//! connection with backoff. Where a request may have arrived (a timeout after it was sent),
//! a Slack or Teams post is not sent again within the delivery: they have no idempotency
//! keys, and a duplicate is worse than a retry by hand. URLs, tokens and secrets are read
//! from the environment when sending and never written to the outbox, a log or an error.

use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};

use crate::config::channels::{Channel, ChannelKind};
use crate::store::{OutboxMail, PostResult, Store, StoreError};

/// What a flush did: where each post went, and why the others did not.
#[derive(Debug, Default)]
pub struct Flushed {
    pub sent: Vec<String>,
    pub failed: Vec<String>,
    /// Posts left queued for a channel that is off now, or that asked to wait.
    pub waiting: usize,
}

/// Sends every unsent post in the outbox (of `job` when given) whose channel is on.
pub fn flush_posts(store: &Store, channels: &[Channel], job: Option<&str>) -> Result<Flushed, StoreError> {
    let mut flushed = Flushed { waiting: store.posts_waiting(job)?, ..Flushed::default() };
    let mut after: Option<String> = None;
    loop {
        let page = store.unsent_of(true, job, after.as_deref(), 200)?;
        let Some(last) = page.last() else { break };
        after = Some(last.page_key());
        for post in &page {
            let name = post.channel.as_deref().unwrap_or_default();
            let Some(channel) = channels.iter().find(|c| c.name == name) else {
                let result = PostResult::Failed {
                    error: format!("channel `{name}` is not defined in keepwell.yaml any more"),
                    retry_at: None,
                };
                flushed.failed.push(describe(post, &result));
                store.mark_post(post, &result)?;
                continue;
            };
            let Some(url) = channel.url() else {
                flushed.waiting += 1;
                continue;
            };
            let result = deliver(channel, &url, post);
            match &result {
                PostResult::Sent(to) => flushed.sent.push(to.clone()),
                PostResult::Failed { .. } => flushed.failed.push(describe(post, &result)),
            }
            store.mark_post(post, &result)?;
        }
    }
    Ok(flushed)
}

fn describe(post: &OutboxMail, result: &PostResult) -> String {
    match result {
        PostResult::Sent(to) => to.clone(),
        PostResult::Failed { error, .. } => format!("{} to {} ({}): {error}", post.output, post.recipient, post.as_of),
    }
}

/// How one request went.
enum Answer {
    Delivered,
    /// Surely not delivered: try again after the wait, if any was asked for.
    Retry {
        error: String,
        after: Option<Duration>,
    },
    /// Not delivered, and trying again now would not help.
    Refused(String),
    /// It may have arrived: only a receiver that deduplicates can take it again.
    Unknown(String),
}

/// Sends one post, retrying as the channel allows.
fn deliver(channel: &Channel, url: &str, post: &OutboxMail) -> PostResult {
    let secrets: Vec<String> = [Some(url.to_string()), env(&channel.token_env), env(&channel.secret_env)]
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .collect();
    let scrub = |text: String| secrets.iter().fold(text, |t, s| t.replace(s.as_str(), "<secret>"));
    let host = host_of(url);
    let to = format!("{} {} ({host})", channel.kind.as_str(), channel.name);
    let key = crate::outputs::posts::idempotency_key(&post.job, post.as_of, &post.output, &post.recipient);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(channel.timeout))
        .http_status_as_error(false)
        .user_agent(concat!("keepwell/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let mut backoff = Duration::from_millis(500);
    let mut last_error = String::new();
    for attempt in 1..=channel.attempts {
        let answer = request(&agent, channel, url, &key, &post.message);
        let wait = match answer {
            Answer::Delivered => return PostResult::Sent(to),
            Answer::Refused(e) => return PostResult::Failed { error: scrub(e), retry_at: None },
            Answer::Unknown(e) if channel.kind != ChannelKind::Webhook => {
                return PostResult::Failed {
                    error: scrub(format!(
                        "{e}; it may have arrived, so it is not sent again without `keepwell outbox retry`"
                    )),
                    retry_at: None,
                };
            }
            Answer::Unknown(e) => {
                last_error = e;
                None
            }
            Answer::Retry { error, after } => {
                last_error = error;
                after
            }
        };
        let delay = match wait {
            Some(w) if w > channel.max_wait => {
                let retry_at = Utc::now() + chrono::Duration::from_std(w).unwrap_or_default();
                let error =
                    format!("{last_error}; asked to wait {}s, longer than max_wait: left for later", w.as_secs());
                return PostResult::Failed { error: scrub(error), retry_at: Some(retry_at) };
            }
            Some(w) => w,
            None => backoff,
        };
        if attempt == channel.attempts {
            let retry_at = wait.map(|w| Utc::now() + chrono::Duration::from_std(w).unwrap_or_default());
            return PostResult::Failed { error: scrub(format!("{last_error} (after {attempt} attempts)")), retry_at };
        }
        tracing::warn!(channel = %channel.name, attempt, error = %scrub(last_error.clone()), "Post not delivered; retrying.");
        std::thread::sleep(delay);
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
    PostResult::Failed { error: scrub(last_error), retry_at: None }
}

fn env(name: &Option<String>) -> Option<String> {
    name.as_ref().and_then(|n| std::env::var(n).ok())
}

fn request(agent: &ureq::Agent, channel: &Channel, url: &str, key: &str, body: &[u8]) -> Answer {
    let mut req = agent.post(url).header("Content-Type", "application/json").header("Idempotency-Key", key);
    if channel.kind == ChannelKind::Slack
        && let Some(token) = env(&channel.token_env)
    {
        req = req.header("Authorization", format!("Bearer {token}"));
    }
    if channel.kind == ChannelKind::Webhook {
        let Some(secret) = env(&channel.secret_env) else {
            let name = channel.secret_env.as_deref().unwrap_or_default();
            return Answer::Refused(format!("the environment variable {name} (the signing secret) is not set"));
        };
        let timestamp = Utc::now().timestamp().to_string();
        req = req
            .header("X-Keepwell-Timestamp", &timestamp)
            .header("X-Keepwell-Signature", format!("v1={}", sign(&secret, &timestamp, body)));
    }
    match req.send(body) {
        Ok(mut resp) => {
            let status = resp.status().as_u16();
            let retry_after = resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(retry_after);
            let text = resp.body_mut().with_config().limit(64 * 1024).read_to_string().unwrap_or_default();
            let said = || {
                let t = text.trim();
                if t.is_empty() { String::new() } else { format!(": {}", crate::outputs::posts::clip(t, 200)) }
            };
            match status {
                200..=299 => slack_answer(channel, &text),
                429 | 503 => Answer::Retry {
                    error: format!("HTTP {status}{}", said()),
                    after: retry_after.or(Some(Duration::from_secs(1))),
                },
                408 | 500..=599 => Answer::Retry { error: format!("HTTP {status}{}", said()), after: None },
                _ => Answer::Refused(format!("HTTP {status}{}", said())),
            }
        }
        Err(e) => transport_error(e),
    }
}

/// Slack's Web API answers `200` with `{"ok": false, "error": ...}` when it refused a post.
fn slack_answer(channel: &Channel, text: &str) -> Answer {
    if channel.kind != ChannelKind::Slack {
        return Answer::Delivered;
    }
    let Ok(json) = serde_json::from_str::<serde_json::Value>(text) else { return Answer::Delivered };
    match json.get("ok").and_then(|v| v.as_bool()) {
        Some(false) => {
            let error = json["error"].as_str().unwrap_or("refused").to_string();
            match error.as_str() {
                "ratelimited" | "rate_limited" => {
                    Answer::Retry { error: format!("Slack: {error}"), after: Some(Duration::from_secs(1)) }
                }
                _ => Answer::Refused(format!("Slack: {error}")),
            }
        }
        _ => Answer::Delivered,
    }
}

fn transport_error(e: ureq::Error) -> Answer {
    use std::io::ErrorKind;
    match e {
        ureq::Error::HostNotFound => Answer::Retry { error: "the host was not found".into(), after: None },
        ureq::Error::ConnectionFailed => Answer::Retry { error: "the connection failed".into(), after: None },
        ureq::Error::BadUri(_) => Answer::Refused("the channel's URL is not a valid URL".into()),
        ureq::Error::Io(io) if matches!(io.kind(), ErrorKind::ConnectionRefused | ErrorKind::NotFound) => {
            Answer::Retry { error: format!("the connection was refused ({io})"), after: None }
        }
        ureq::Error::Timeout(t) => Answer::Unknown(format!("no answer in time ({t})")),
        other => Answer::Unknown(format!("the request failed: {other}")),
    }
}

/// The signature of a webhook body: hex HMAC-SHA256 of `<timestamp>.<body>` under `secret`.
pub fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac =
        <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// A `Retry-After` value: seconds, or an HTTP date.
fn retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at: DateTime<Utc> = DateTime::parse_from_rfc2822(value).ok()?.with_timezone(&Utc);
    Some((at - Utc::now()).to_std().unwrap_or(Duration::ZERO))
}

/// The host of a URL, to say where a post went without its secret path.
fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    authority.rsplit('@').next().unwrap_or("").to_string()
}

#[cfg(test)]
mod tests {
    use super::{host_of, retry_after, sign};
    use std::time::Duration;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(retry_after(" 0 "), Some(Duration::ZERO));
        assert_eq!(retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
        assert_eq!(retry_after("soon"), None);
    }

    #[test]
    fn hosts_leave_out_paths_and_credentials() {
        assert_eq!(host_of("https://hooks.slack.com/services/T0/B0/XYZ"), "hooks.slack.com");
        assert_eq!(host_of("http://user:pw@127.0.0.1:8080/hook?x=1"), "127.0.0.1:8080");
    }

    /// Python: hmac.new(b"k", b"1700000000.{}", hashlib.sha256).hexdigest()
    #[test]
    fn signatures_are_hmac_sha256_of_timestamp_dot_body() {
        assert_eq!(sign("k", "1700000000", b"{}"), "c6ef4734033cee2367414a0939385eca0397754aa7a59716da7463a9298b5146");
    }
}
