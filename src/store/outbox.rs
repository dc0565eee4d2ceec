//! The outbox: every rendered mail, keyed by job, day, output and recipient, so a rerun of
//! the same day never sends the same mail twice; sent, failed and retried from here.

use chrono::{DateTime, NaiveDate, Utc};
use duckdb::params;

use super::{Store, StoreError};

/// How one attempt to send a mail went: where it was delivered, or why it was not (kept as
/// the row's `last_error`). The error is the sender's own; the store only records its text.
pub type Attempt = Result<String, Box<dyn std::error::Error + Send + Sync>>;

/// A mail in the store's outbox: one per job, day, output and recipient, so a rerun of the
/// same day never sends the same mail twice.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OutboxMail {
    pub job: String,
    pub as_of: NaiveDate,
    pub output: String,
    pub recipient: String,
    pub run_id: Option<i64>,
    pub subject: Option<String>,
    pub sender: String,
    pub envelope_to: Vec<String>,
    #[serde(skip)]
    pub message: Vec<u8>,
    /// `pending`, `sent` or `failed` (failed mail is retried).
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub delivered_to: Option<String>,
    /// The alert channel a post goes to; `None` for mail.
    pub channel: Option<String>,
    /// A post the receiver asked to wait for (`Retry-After`) is not sent before this.
    pub next_attempt: Option<DateTime<Utc>>,
}

/// A rendered mail to queue.
pub struct QueuedMail {
    pub output: String,
    pub recipient: String,
    pub subject: String,
    pub to: Vec<String>,
    pub message: Vec<u8>,
}

impl Store {
    /// Queues a run's mail, in one statement, except mail with the same job, day, output and
    /// recipient that was already sent (a rerun of the same day). Returns how many were
    /// already sent.
    pub fn enqueue(
        &self,
        job: &str,
        as_of: NaiveDate,
        run_id: Option<i64>,
        sender: &str,
        mails: &[QueuedMail],
    ) -> Result<usize, StoreError> {
        self.conn.execute_batch(
            "CREATE OR REPLACE TEMP TABLE kw_outbox (output VARCHAR, recipient VARCHAR, subject VARCHAR, envelope_to VARCHAR, message BLOB)",
        )?;
        let mut appender = self.conn.appender("kw_outbox")?;
        for m in mails {
            let to = serde_json::to_string(&m.to).unwrap_or_else(|_| "[]".into());
            appender.append_row(params![m.output, m.recipient, m.subject, to, m.message])?;
        }
        appender.flush()?;
        drop(appender);
        let sent = "EXISTS (SELECT 1 FROM outbox o WHERE o.job = ? AND o.as_of = ? AND o.output = k.output \
                    AND o.recipient = k.recipient AND o.status = 'sent')";
        let already: i64 = self.conn.query_row(
            &format!("SELECT count(*) FROM kw_outbox k WHERE {sent}"),
            params![job, as_of],
            |r| r.get(0),
        )?;
        self.conn.execute(
            &format!(
                "INSERT INTO outbox (job, as_of, output, recipient, run_id, subject, sender, envelope_to, message, status, attempts, last_error, created_at, sent_at, delivered_to) SELECT ?, ?, output, recipient, ?, subject, ?, CAST(CAST(envelope_to AS JSON) AS VARCHAR[]), \
                 message, 'pending', 0, NULL, now(), NULL, NULL FROM kw_outbox k WHERE NOT {sent} \
                 ON CONFLICT (job, as_of, output, recipient) DO UPDATE SET run_id = excluded.run_id, subject = excluded.subject, \
                 sender = excluded.sender, envelope_to = excluded.envelope_to, message = excluded.message, status = 'pending'"
            ),
            params![job, as_of, run_id, sender, job, as_of],
        )?;
        self.conn.execute_batch("DROP TABLE kw_outbox")?;
        Ok(already as usize)
    }

    /// The (output, recipient) pairs of `job`'s mail already sent for `as_of`.
    pub fn sent_for(
        &self,
        job: &str,
        as_of: NaiveDate,
    ) -> Result<std::collections::HashSet<(String, String)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT output, recipient FROM outbox WHERE job = ? AND as_of = ? AND status = 'sent'")?;
        let rows = stmt.query_map(params![job, as_of], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records mail delivered as it was queued (to the outbox folder, where writing the same
    /// file again is harmless): sent mail is kept without its message, failed mail with it
    /// for `keepwell outbox retry`.
    pub fn record_delivered(
        &self,
        job: &str,
        as_of: NaiveDate,
        run_id: Option<i64>,
        sender: &str,
        mails: &[(QueuedMail, Attempt)],
    ) -> Result<(), StoreError> {
        if mails.is_empty() {
            return Ok(());
        }
        self.conn.execute_batch(
            "CREATE OR REPLACE TEMP TABLE kw_delivered (output VARCHAR, recipient VARCHAR, subject VARCHAR, \
             envelope_to VARCHAR, message BLOB, ok BOOLEAN, detail VARCHAR)",
        )?;
        let mut appender = self.conn.appender("kw_delivered")?;
        for (m, result) in mails {
            let to = serde_json::to_string(&m.to).unwrap_or_else(|_| "[]".into());
            let (ok, detail, message): (bool, String, &[u8]) = match result {
                Ok(path) => (true, path.clone(), &[]),
                Err(e) => (false, e.to_string(), &m.message),
            };
            appender.append_row(params![m.output, m.recipient, m.subject, to, message, ok, detail])?;
        }
        appender.flush()?;
        drop(appender);
        self.conn.execute(
            "INSERT INTO outbox (job, as_of, output, recipient, run_id, subject, sender, envelope_to, message, status, attempts, last_error, created_at, sent_at, delivered_to) SELECT ?, ?, output, recipient, ?, subject, ?, CAST(CAST(envelope_to AS JSON) AS VARCHAR[]), \
             message, CASE WHEN ok THEN 'sent' ELSE 'failed' END, 1, CASE WHEN ok THEN NULL ELSE detail END, now(), \
             CASE WHEN ok THEN now() END, CASE WHEN ok THEN detail END FROM kw_delivered \
             ON CONFLICT (job, as_of, output, recipient) DO UPDATE SET run_id = excluded.run_id, subject = excluded.subject, \
             sender = excluded.sender, envelope_to = excluded.envelope_to, message = excluded.message, \
             status = excluded.status, attempts = outbox.attempts + 1, last_error = excluded.last_error, \
             sent_at = excluded.sent_at, delivered_to = excluded.delivered_to",
            params![job, as_of, run_id, sender],
        )?;
        self.conn.execute_batch("DROP TABLE kw_delivered")?;
        Ok(())
    }

    /// The next `limit` mails not yet sent, in key order after `after` (the `page_key` of the
    /// last mail of the previous page), so a large outbox is sent a page at a time.
    pub fn unsent_page(
        &self,
        job: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<OutboxMail>, StoreError> {
        self.unsent_of(false, job, after, limit)
    }

    /// [`Store::unsent_page`] of mail (`posts` false) or of channel posts whose wait, if the
    /// receiver asked for one, is over.
    pub fn unsent_of(
        &self,
        posts: bool,
        job: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<OutboxMail>, StoreError> {
        let kind = match posts {
            true => "channel IS NOT NULL AND (next_attempt IS NULL OR next_attempt <= now())",
            false => "channel IS NULL",
        };
        let key = "concat_ws(chr(31), job, CAST(as_of AS VARCHAR), output, recipient)";
        let sql = format!(
            "SELECT job, as_of, output, recipient, run_id, subject, sender, CAST(to_json(envelope_to) AS VARCHAR), message, \
             status, attempts, last_error, sent_at, delivered_to, channel, next_attempt FROM outbox \
             WHERE status <> 'sent' AND {kind} AND (?::VARCHAR IS NULL OR job = ?) AND (?::VARCHAR IS NULL OR {key} > ?) \
             ORDER BY {key} LIMIT ?"
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map(params![job, job, after, after, limit as i64], outbox_mail)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// The outbox, newest first, optionally of one status.
    pub fn outbox(&self, status: Option<&str>, limit: usize) -> Result<Vec<OutboxMail>, StoreError> {
        self.outbox_where("(? IS NULL OR status = ?)", status, limit)
    }

    fn outbox_where(&self, filter: &str, value: Option<&str>, limit: usize) -> Result<Vec<OutboxMail>, StoreError> {
        let order = if filter.starts_with("status <>") {
            "created_at, job, output, recipient"
        } else {
            "created_at DESC, job, output, recipient"
        };
        let sql = format!(
            "SELECT job, as_of, output, recipient, run_id, subject, sender, CAST(to_json(envelope_to) AS VARCHAR), message, status, \
             attempts, last_error, sent_at, delivered_to, channel, next_attempt FROM outbox WHERE {filter} ORDER BY {order} LIMIT ?"
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map(params![value, value, limit as i64], outbox_mail)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Records one delivery attempt, as soon as it is known: a process killed after the
    /// relay accepted a mail must not send it again on the next retry.
    pub fn mark(&self, mail: &OutboxMail, attempt: &Attempt) -> Result<(), StoreError> {
        let (ok, detail) = match attempt {
            Ok(to) => (true, to.clone()),
            Err(e) => (false, e.to_string()),
        };
        self.conn.execute(
            "UPDATE outbox SET status = CASE WHEN ? THEN 'sent' ELSE 'failed' END, attempts = attempts + 1, \
                    sent_at = CASE WHEN ? THEN now() ELSE sent_at END, \
                    last_error = CASE WHEN ? THEN NULL ELSE ? END, \
                    delivered_to = CASE WHEN ? THEN ? ELSE delivered_to END \
             WHERE job = ? AND as_of = ? AND output = ? AND recipient = ?",
            params![ok, ok, ok, detail, ok, detail, mail.job, mail.as_of, mail.output, mail.recipient],
        )?;
        Ok(())
    }
}

fn outbox_mail(r: &duckdb::Row) -> duckdb::Result<OutboxMail> {
    let to: String = r.get(7)?;
    Ok(OutboxMail {
        job: r.get(0)?,
        as_of: r.get(1)?,
        output: r.get(2)?,
        recipient: r.get(3)?,
        run_id: r.get(4)?,
        subject: r.get(5)?,
        sender: r.get(6)?,
        envelope_to: serde_json::from_str(&to).unwrap_or_default(),
        message: r.get(8)?,
        status: r.get(9)?,
        attempts: r.get(10)?,
        last_error: r.get(11)?,
        sent_at: r.get(12)?,
        delivered_to: r.get(13)?,
        channel: r.get(14)?,
        next_attempt: r.get(15)?,
    })
}

impl OutboxMail {
    /// Where this mail sorts in the outbox, for paging (see [`Store::unsent_page`]).
    pub fn page_key(&self) -> String {
        format!("{}\u{1f}{}\u{1f}{}\u{1f}{}", self.job, self.as_of, self.output, self.recipient)
    }
}
