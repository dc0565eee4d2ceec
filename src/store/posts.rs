//! Alert channels' messages in the outbox, beside mail: keyed the same way (job, day,
//! output, recipient), so a rerun of the same day never delivers one twice, with the
//! channel's name and, when the receiver asked to wait, when to try again.

use chrono::{DateTime, NaiveDate, Utc};
use duckdb::params;

use super::{OutboxMail, Store, StoreError};

/// A rendered post to queue.
pub struct QueuedPost {
    pub output: String,
    pub recipient: String,
    pub channel: String,
    /// `slack`, `teams` or `webhook`, kept as the sender.
    pub kind: String,
    pub summary: String,
    pub body: String,
}

/// How one delivery of a post ended.
pub enum PostResult {
    /// Delivered: where to (the channel and the host, never the URL).
    Sent(String),
    /// Not delivered; tried again from `keepwell outbox retry` or the next run, not before
    /// `retry_at` when the receiver said when.
    Failed { error: String, retry_at: Option<DateTime<Utc>> },
}

impl Store {
    /// Queues posts in one statement, except those already sent (a rerun of the same day).
    /// Returns how many were already sent.
    pub fn enqueue_posts(
        &self,
        job: &str,
        as_of: NaiveDate,
        run_id: Option<i64>,
        posts: &[QueuedPost],
    ) -> Result<usize, StoreError> {
        if posts.is_empty() {
            return Ok(0);
        }
        self.conn.execute_batch(
            "CREATE OR REPLACE TEMP TABLE kw_posts (output VARCHAR, recipient VARCHAR, channel VARCHAR, kind VARCHAR, \
             summary VARCHAR, body BLOB)",
        )?;
        let mut appender = self.conn.appender("kw_posts")?;
        for p in posts {
            appender.append_row(params![p.output, p.recipient, p.channel, p.kind, p.summary, p.body.as_bytes()])?;
        }
        appender.flush()?;
        drop(appender);
        let sent = "EXISTS (SELECT 1 FROM outbox o WHERE o.job = ? AND o.as_of = ? AND o.output = k.output \
                    AND o.recipient = k.recipient AND o.status = 'sent')";
        let already: i64 = self.conn.query_row(
            &format!("SELECT count(*) FROM kw_posts k WHERE {sent}"),
            params![job, as_of],
            |r| r.get(0),
        )?;
        self.conn.execute(
            &format!(
                "INSERT INTO outbox (job, as_of, output, recipient, run_id, subject, sender, envelope_to, message, status, \
                 attempts, last_error, created_at, sent_at, delivered_to, channel, next_attempt) \
                 SELECT ?, ?, output, recipient, ?, summary, kind, [channel], body, 'pending', 0, NULL, now(), NULL, NULL, \
                 channel, NULL FROM kw_posts k WHERE NOT {sent} \
                 ON CONFLICT (job, as_of, output, recipient) DO UPDATE SET run_id = excluded.run_id, \
                 subject = excluded.subject, message = excluded.message, channel = excluded.channel, status = 'pending'"
            ),
            params![job, as_of, run_id, job, as_of],
        )?;
        self.conn.execute_batch("DROP TABLE kw_posts")?;
        Ok(already as usize)
    }

    /// Unsent posts (of `job` when given) the receiver asked to wait for.
    pub fn posts_waiting(&self, job: Option<&str>) -> Result<usize, StoreError> {
        let n: i64 = self.conn.query_row(
            "SELECT count(*) FROM outbox WHERE status <> 'sent' AND channel IS NOT NULL AND next_attempt > now()              AND (?::VARCHAR IS NULL OR job = ?)",
            params![job, job],
            |r| r.get(0),
        )?;
        Ok(n as usize)
    }

    /// Records one delivery of a post as soon as it is known.
    pub fn mark_post(&self, post: &OutboxMail, result: &PostResult) -> Result<(), StoreError> {
        let (ok, detail, retry_at) = match result {
            PostResult::Sent(to) => (true, to.clone(), None),
            PostResult::Failed { error, retry_at } => (false, error.clone(), *retry_at),
        };
        self.conn.execute(
            "UPDATE outbox SET status = CASE WHEN ? THEN 'sent' ELSE 'failed' END, attempts = attempts + 1, \
                    sent_at = CASE WHEN ? THEN now() ELSE sent_at END, \
                    last_error = CASE WHEN ? THEN NULL ELSE ? END, \
                    delivered_to = CASE WHEN ? THEN ? ELSE delivered_to END, next_attempt = ? \
             WHERE job = ? AND as_of = ? AND output = ? AND recipient = ?",
            params![ok, ok, ok, detail, ok, detail, retry_at, post.job, post.as_of, post.output, post.recipient],
        )?;
        Ok(())
    }
}
