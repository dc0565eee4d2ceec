//! Alert channels and tasks against a real HTTP server on loopback: the exact JSON of each
//! channel, signatures a receiver can verify, retries as the receiver tells, delivery once
//! across a receiver that was down, and a task's lifecycle over four runs.

mod common;
#[path = "alerts/receiver.rs"]
mod receiver;

use common::Project;
use receiver::Receiver;

const SECRET: &str = "whsec-test-3f9a";

/// The channels, all on the receiver; ann is routed to a Slack user, others fall back.
fn settings(extra: &str) -> String {
    format!(
        "channels:\n  slack:\n    kind: slack\n    url_env: KW_TEST_SLACK\n    routes: routes.csv\n    fallback: \"#cs-alerts\"\n{extra}\
         \x20 teams:\n    kind: teams\n    url_env: KW_TEST_TEAMS\n{extra}\
         \x20 crm:\n    kind: webhook\n    url_env: KW_TEST_HOOK\n    secret_env: KW_TEST_SECRET\n{extra}",
    )
}

fn env(port: u16) -> Vec<(&'static str, String)> {
    let url = |path: &str| format!("http://127.0.0.1:{port}{path}");
    vec![
        ("KW_TEST_SLACK", url("/slack/T0/B0/s3cr3tpath")),
        ("KW_TEST_TEAMS", url("/teams")),
        ("KW_TEST_HOOK", url("/hook")),
        ("KW_TEST_SECRET", SECRET.to_string()),
    ]
}

fn job_with(outputs: &str) -> String {
    let base = common::JOB;
    let cut = base.find("outputs:").expect("outputs");
    format!("{}outputs:\n{outputs}", &base[..cut])
}

const OUTPUTS: &str = r#"  - escalation:
      name: at_risk
      when: risk.grade == "high" || health.grade == "red"
      owner: csm_email
      order_by: arr
      columns:
        - Account: name
        - ARR: money(arr)
        - Why: risk.reasons + health.reasons
      channels: [slack, teams, crm]
  - summary:
      name: summary
      to: ["lead@example.com"]
      channels: [slack, crm]
"#;

fn project(extra: &str) -> Project {
    Project::new(&[
        ("keepwell.yaml", &settings(extra)),
        ("routes.csv", "owner,target\nAnn@Example.com,U024BE7LH\n"),
        ("jobs/nightly.yaml", &job_with(OUTPUTS)),
    ])
}

fn run(p: &Project, port: u16, day: &str) -> common::Output {
    let env = env(port);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    p.keepwell_with(&["run", "nightly", "--as-of", day], &env)
}

fn keepwell(p: &Project, port: u16, args: &[&str]) -> common::Output {
    let env = env(port);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    p.keepwell_with(args, &env)
}

/// The hex HMAC-SHA256 of `<timestamp>.<body>`, by Python's hmac: the receiver's check as
/// docs/alerts.md writes it, independent of keepwell's own code.
fn python_signature(secret: &str, timestamp: &str, body: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("body");
    std::fs::write(&path, body).unwrap();
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import hmac, hashlib, sys\n\
             body = open(sys.argv[3], 'rb').read()\n\
             print(hmac.new(sys.argv[1].encode(), sys.argv[2].encode() + b'.' + body, hashlib.sha256).hexdigest())",
            secret,
            timestamp,
        ])
        .arg(&path)
        .output()
        .expect("python3");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Checks each body against docs/schemas/webhook.schema.json with Python's jsonschema
/// (installed by `make test`), an implementation of JSON Schema independent of keepwell.
fn assert_valid_webhooks(bodies: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bodies.json");
    let all: Vec<serde_json::Value> = bodies.iter().map(|b| serde_json::from_str(b).unwrap()).collect();
    std::fs::write(&path, serde_json::to_string(&all).unwrap()).unwrap();
    let schema = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/schemas/webhook.schema.json");
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import json, sys, jsonschema\n\
             schema = json.load(open(sys.argv[1]))\n\
             v = jsonschema.Draft202012Validator(schema)\n\
             for body in json.load(open(sys.argv[2])):\n    v.validate(body)\n\
             print('valid')",
            schema,
        ])
        .arg(&path)
        .output()
        .expect("python3");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "valid", "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn each_channel_carries_its_exact_json_and_webhooks_are_signed() {
    let r = Receiver::start();
    let p = project("");
    // At the most verbose, so that nothing logged carries a secret either.
    let out = keepwell(&p, r.port, &["-vv", "run", "nightly", "--as-of", "2026-01-05"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("DEBUG"), "{}", out.stderr);
    let host = format!("127.0.0.1:{}", r.port);
    assert!(
        out.stdout.contains(&format!(
            "  posts    2 to slack slack ({host}), 1 to teams teams ({host}), 2 to webhook crm ({host})\n"
        )),
        "{}",
        out.stdout
    );
    // In the outbox's key order: at_risk (crm, slack, teams for ann), then the summary.
    let reqs = r.requests();
    let paths: Vec<&str> = reqs.iter().map(|q| q.path.as_str()).collect();
    assert_eq!(paths, ["/hook", "/slack/T0/B0/s3cr3tpath", "/teams", "/hook", "/slack/T0/B0/s3cr3tpath"]);
    let why1 = "travel is hit hard; 20% of seats in use";
    let why3 = "retail is hit hard; 20% of seats in use";
    // Slack: ann is routed to her user id, which is mentioned too.
    assert_eq!(
        reqs[1].json(),
        serde_json::json!({
            "text": "at risk: 2 accounts for ann@example.com (nightly, 2026-01-05)",
            "channel": "U024BE7LH",
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": "at risk: 2 accounts", "emoji": false}},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": "nightly · 2026-01-05 · for <@U024BE7LH>"}]},
                {"type": "section", "text": {"type": "mrkdwn", "text": format!("*Acme*\n*ARR:* $120,000\n*Why:* {why1}")}},
                {"type": "section", "text": {"type": "mrkdwn", "text": format!("*Initech*\n*ARR:* $8,000\n*Why:* {why3}")}}
            ]
        })
    );
    // Teams: an Adaptive Card that mentions the owner by address.
    let container = |name: &str, arr: &str, why: &str| {
        serde_json::json!({"type": "Container", "separator": true, "items": [
            {"type": "TextBlock", "weight": "Bolder", "text": name, "wrap": true},
            {"type": "FactSet", "facts": [{"title": "ARR", "value": arr}, {"title": "Why", "value": why}]}
        ]})
    };
    assert_eq!(
        reqs[2].json(),
        serde_json::json!({"type": "message", "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard", "version": "1.4",
                "body": [
                    {"type": "TextBlock", "size": "Large", "weight": "Bolder", "text": "at risk: 2 accounts", "wrap": true},
                    {"type": "TextBlock", "isSubtle": true, "spacing": "None", "text": "nightly · 2026-01-05 · for <at>ann@example.com</at>", "wrap": true},
                    container("Acme", "$120,000", why1),
                    container("Initech", "$8,000", why3)
                ],
                "msteams": {"entities": [{"type": "mention", "text": "<at>ann@example.com</at>",
                    "mentioned": {"id": "ann@example.com", "name": "ann@example.com"}}]}
            }
        }]})
    );
    // The webhook: the documented envelope, its id the idempotency key.
    let hook = &reqs[0];
    let key = hook.header("Idempotency-Key").expect("an idempotency key").to_string();
    assert_eq!(key.len(), 32);
    assert_eq!(
        hook.json(),
        serde_json::json!({
            "schema_version": 1, "id": key, "job": "nightly", "as_of": "2026-01-05", "run_id": 1, "output": "at_risk",
            "events": [{
                "type": "escalation.listed", "title": "at risk", "owner": "ann@example.com", "route": null,
                "columns": ["Account", "ARR", "Why"],
                "accounts": [
                    {"account_id": "A1", "values": {"Account": "Acme", "ARR": "$120,000", "Why": why1}},
                    {"account_id": "A3", "values": {"Account": "Initech", "ARR": "$8,000", "Why": why3}}
                ]
            }]
        })
    );
    // The summary's headline, to the fallback channel on Slack.
    assert_eq!(reqs[3].json()["events"][0]["type"], "report.published");
    assert_eq!(reqs[3].json()["events"][0]["accounts"], 3);
    assert_eq!(reqs[3].json()["events"][0]["total_arr"], 178000.0);
    assert_eq!(reqs[4].json()["channel"], "#cs-alerts");
    assert_eq!(reqs[4].json()["text"], "nightly summary: 3 accounts, $178,000 ARR (2026-01-05)");
    // Every webhook verifies with the secret; Slack and Teams get no signature.
    for hook in [&reqs[0], &reqs[3]] {
        let ts = hook.header("X-Keepwell-Timestamp").expect("a timestamp");
        let age = chrono::Utc::now().timestamp() - ts.parse::<i64>().expect("seconds");
        assert!((0..300).contains(&age), "timestamp {ts} is {age}s old");
        let signature = hook.header("X-Keepwell-Signature").expect("a signature");
        assert_eq!(signature, format!("v1={}", python_signature(SECRET, ts, &hook.body)));
        assert_ne!(signature, format!("v1={}", python_signature("another secret", ts, &hook.body)));
    }
    assert!(reqs[1].header("X-Keepwell-Signature").is_none());
    assert_valid_webhooks(&[&reqs[0].body, &reqs[3].body]);
    // The URL's secret path and the signing secret are nowhere keepwell writes.
    let outbox = p.query(
        "SELECT concat_ws('|', output, recipient, subject, sender, status, delivered_to, channel, last_error) FROM outbox ORDER BY 1",
    );
    let artifact = std::fs::read_to_string(p.path().join(".keepwell/runs/1/run.json")).unwrap();
    for text in [&out.stdout, &out.stderr, &outbox.join("\n"), &artifact] {
        assert!(!text.contains("s3cr3tpath") && !text.contains(SECRET), "a secret leaked:\n{text}");
    }
    assert_eq!(outbox.iter().filter(|o| o.contains("|sent|")).count(), 7, "{outbox:#?}");
}

#[test]
fn a_500_then_a_429_are_retried_as_the_receiver_says() {
    let r = Receiver::start();
    let p = project("");
    r.answer(500, &[]);
    r.answer(429, &[("Retry-After", "1")]);
    let out = run(&p, r.port, "2026-01-05");
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let reqs = r.requests();
    // The first post three times, the same key and body each time, then the others once.
    assert_eq!(reqs.len(), 7);
    let key = reqs[0].header("Idempotency-Key").unwrap();
    for q in &reqs[..3] {
        assert_eq!((q.path.as_str(), q.header("Idempotency-Key").unwrap(), &q.body), ("/hook", key, &reqs[0].body));
    }
    assert!(reqs[1].at - reqs[0].at >= std::time::Duration::from_millis(500), "backoff after the 500");
    assert!(reqs[2].at - reqs[1].at >= std::time::Duration::from_secs(1), "Retry-After: 1 honoured");
    let keys: std::collections::HashSet<&str> = reqs.iter().filter_map(|q| q.header("Idempotency-Key")).collect();
    assert_eq!(keys.len(), 5);
    assert_eq!(
        p.query("SELECT status || ' ' || attempts FROM outbox WHERE channel = 'crm' AND output = 'at_risk'"),
        ["sent 1"]
    );
}

#[test]
fn a_wait_longer_than_max_wait_leaves_the_post_for_later() {
    let r = Receiver::start();
    let p = project("    max_wait: 30s\n");
    r.answer(429, &[("Retry-After", "3600")]);
    let out = run(&p, r.port, "2026-01-05");
    assert!(out.stdout.contains("post not delivered, kept in the outbox: at_risk to crm:ann@example.com (2026-01-05): HTTP 429: no; asked to wait 3600s, longer than max_wait: left for later"), "{}", out.stdout);
    let waiting = p.query(
        "SELECT status || ' ' || (next_attempt > now() + INTERVAL 55 MINUTE) FROM outbox WHERE channel = 'crm' AND output = 'at_risk'",
    );
    assert_eq!(waiting, ["failed true"]);
    // Not tried again before the receiver's time.
    let before = r.requests().len();
    let retry = keepwell(&p, r.port, &["outbox", "retry"]);
    assert_eq!(
        retry.stdout,
        "1 post waits for a channel that is off, or until the time its receiver asked\n0 sent, 0 still failing\n"
    );
    assert_eq!(r.requests().len(), before);
}

#[test]
fn a_receiver_down_then_up_gets_each_post_exactly_once() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let p = project("    attempts: 2\n");
    let out = run(&p, port, "2026-01-05");
    assert_eq!(out.stdout.matches("post not delivered, kept in the outbox").count(), 5, "{}", out.stdout);
    assert_eq!(
        p.query("SELECT DISTINCT status || ' ' || attempts FROM outbox WHERE channel IS NOT NULL"),
        ["failed 1"]
    );
    let up = Receiver::on(port);
    let retry = keepwell(&p, port, &["outbox", "retry"]);
    assert_eq!(retry.stdout, "5 sent, 0 still failing\n", "{}", retry.stderr);
    let again = keepwell(&p, port, &["outbox", "retry"]);
    assert_eq!(again.stdout, "0 sent, 0 still failing\n");
    // The same day run again: nothing it already delivered goes out twice.
    let rerun = run(&p, port, "2026-01-05");
    assert_eq!(rerun.code, 0, "{}", rerun.stderr);
    let keys: Vec<String> = up.requests().iter().map(|q| q.header("Idempotency-Key").unwrap().to_string()).collect();
    let unique: std::collections::HashSet<&String> = keys.iter().collect();
    assert_eq!((keys.len(), unique.len()), (5, 5), "{keys:?}");
}

const TASKS: &str = r#"
  - tasks:
      name: followups
      rule_sets: [risk]
      when: risk.grade == "high"
      fields:
        - Account: name
      cooldown: 14d
      channels: [crm]
"#;

/// The accounts with A1's owner and A3's industry as given.
fn accounts(a1_owner: &str, a3_industry: &str) -> String {
    format!(
        "account_id,name,industry,arr,seats,active_users,csm_email\n\
         A1,Acme,travel,120000.00,100,20,{a1_owner}\n\
         A2,Globex,healthcare,50000.00,40,38,bob@example.com\n\
         A3,Initech,{a3_industry},8000.00,10,2,ann@example.com\n"
    )
}

/// Every task event the receiver got, as `type account reason owner seq`, and the task ids.
fn task_events(r: &Receiver, from: usize) -> (Vec<String>, Vec<(String, String)>) {
    let (mut events, mut ids) = (Vec::new(), Vec::new());
    for q in &r.requests()[from..] {
        let body = q.json();
        assert_eq!(body["output"], "followups");
        assert_eq!(body["id"].as_str(), q.header("Idempotency-Key"));
        for e in body["events"].as_array().unwrap() {
            let seq = e["event_id"].as_str().unwrap().rsplit('-').next().unwrap().to_string();
            events.push(format!(
                "{} {} {} {} {} {}",
                e["type"].as_str().unwrap(),
                e["account_id"].as_str().unwrap(),
                e["reason"].as_str().unwrap(),
                e["owner"].as_str().unwrap_or("-"),
                e["fields"]["Account"].as_str().unwrap_or("-"),
                seq
            ));
            ids.push((e["account_id"].as_str().unwrap().to_string(), e["task_id"].as_str().unwrap().to_string()));
        }
    }
    (events, ids)
}

#[test]
fn a_task_opens_updates_and_closes_itself_over_four_runs_without_duplicates() {
    let r = Receiver::start();
    let p = Project::new(&[
        ("keepwell.yaml", &settings("")),
        ("routes.csv", "owner,target\n"),
        ("jobs/nightly.yaml", &job_with(TASKS)),
    ]);
    let mut seen = 0;
    let mut step = |day: &str, a1: &str, a3: &str, tasks_line: &str, expected: &[&str]| {
        p.write("data/accounts.csv", &accounts(a1, a3));
        let out = run(&p, r.port, day);
        assert_eq!(out.code, 0, "{day}: {}{}", out.stdout, out.stderr);
        assert!(out.stdout.contains(&format!("  tasks    followups: {tasks_line}\n")), "{day}: {}", out.stdout);
        let (events, ids) = task_events(&r, seen);
        seen = r.requests().len();
        assert_eq!(events, expected, "{day}");
        ids
    };
    let opened = step(
        "2026-01-05",
        "ann@example.com",
        "retail",
        "2 opened, 0 updated, 0 closed",
        &[
            "task.opened A1 hard_hit_industry ann@example.com Acme 0",
            "task.opened A3 hard_hit_industry ann@example.com Initech 0",
        ],
    );
    // Unchanged: no event, no request.
    step("2026-01-06", "ann@example.com", "retail", "0 opened, 0 updated, 0 closed", &[]);
    // A1 changes hands: its task is updated, under the same id.
    let updated = step(
        "2026-01-07",
        "carl@example.com",
        "retail",
        "0 opened, 1 updated, 0 closed",
        &["task.updated A1 hard_hit_industry carl@example.com Acme 1"],
    );
    assert_eq!(updated[0], opened[0]);
    // A3 moves out of a hard-hit industry: its task closes by itself.
    let closed = step(
        "2026-01-08",
        "carl@example.com",
        "healthcare",
        "0 opened, 0 updated, 1 closed",
        &["task.closed A3 hard_hit_industry ann@example.com Initech 1"],
    );
    assert_eq!(closed[0], opened[1]);
    // The same day again: every event was made already.
    step("2026-01-08", "carl@example.com", "healthcare", "0 opened, 0 updated, 0 closed", &[]);
    // Back within the 14-day cooldown: not opened; after it, a new task.
    step("2026-01-12", "carl@example.com", "retail", "0 opened, 0 updated, 0 closed", &[]);
    let reopened = step(
        "2026-01-22",
        "carl@example.com",
        "retail",
        "1 opened, 0 updated, 0 closed",
        &["task.opened A3 hard_hit_industry ann@example.com Initech 0"],
    );
    assert_ne!(reopened[0].1, opened[1].1, "a task that opens again has a new id");
    let bodies: Vec<String> = r.requests().iter().map(|q| q.body.clone()).collect();
    assert_valid_webhooks(&bodies.iter().map(String::as_str).collect::<Vec<_>>());
    // The store keeps the whole history.
    assert_eq!(
        p.query("SELECT concat_ws(' ', as_of, account_id, event, seq, owner) FROM tasks ORDER BY as_of, account_id"),
        [
            "2026-01-05 A1 opened 0 ann@example.com",
            "2026-01-05 A3 opened 0 ann@example.com",
            "2026-01-07 A1 updated 1 carl@example.com",
            "2026-01-08 A3 closed 1 ann@example.com",
            "2026-01-22 A3 opened 0 ann@example.com",
        ]
    );
    assert_eq!(p.query("SELECT account_id FROM open_tasks ORDER BY 1"), ["A1", "A3"]);
    // A day before the last events is not tracked: tasks only move forward. It is no fault
    // of the run: it succeeds.
    let back = run(&p, r.port, "2026-01-10");
    assert_eq!(back.code, 0, "{}", back.stdout);
    assert!(
        back.stdout.contains(
            "  tasks    followups: not tracked, their last events are of 2026-01-22 (tasks only move forward)\n"
        ),
        "{}",
        back.stdout
    );
}

#[test]
fn metric_alerts_go_to_the_alert_channels_and_no_mail_posts_nothing() {
    let r = Receiver::start();
    let job = job_with(OUTPUTS).replace(
        "outputs:\n",
        "owners: [\"ops@example.com\"]\nalert_channels: [slack, crm]\nmetrics:\n  accounts:\n    title: Accounts scored\n    value: count(*)\n    format: count\n    alert_when: value < 5\noutputs:\n",
    );
    let p = project("");
    p.write("jobs/nightly.yaml", &job);
    // Without mail, nothing is posted either.
    let quiet = keepwell(&p, r.port, &["run", "nightly", "--as-of", "2026-01-04", "--no-mail"]);
    assert_eq!(quiet.code, 0, "{}", quiet.stderr);
    assert!(r.requests().is_empty());
    assert_eq!(p.query("SELECT count(*) FROM outbox"), ["0"]);
    let out = run(&p, r.port, "2026-01-05");
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let alerts: Vec<_> = r
        .requests()
        .into_iter()
        .filter(|q| q.body.contains("metric alert") || q.body.contains("metric.alert"))
        .collect();
    assert_eq!(alerts.len(), 2);
    let key = alerts[0].header("Idempotency-Key").unwrap();
    assert_eq!(
        alerts[0].json(),
        serde_json::json!({"schema_version": 1, "id": key, "job": "nightly", "as_of": "2026-01-05", "run_id": 2,
            "output": "metric_alerts", "events": [{"type": "metric.alert", "metric": "accounts", "title": "Accounts scored",
            "segment_by": null, "segment": null, "value": 3.0, "previous": 3.0, "change": 0.0, "text": "3",
            "alert_when": "value < 5"}]})
    );
    assert_eq!(
        alerts[1].json(),
        serde_json::json!({"text": "1 metric alert in job nightly (2026-01-05)", "channel": "#cs-alerts", "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "1 metric alert", "emoji": false}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "nightly · 2026-01-05"}]},
            {"type": "section", "text": {"type": "mrkdwn",
                "text": "*Accounts scored*\n*Now:* 3\n*Previous run:* 3 (unchanged)\n*Alert when:* value &lt; 5"}}
        ]})
    );
    assert_valid_webhooks(&[&alerts[0].body]);
}
