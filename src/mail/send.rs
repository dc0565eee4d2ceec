//! Sending: to `.eml` files in the outbox folder by default, or over SMTP through the
//! store's outbox, so a mail is sent once per job, day, output and recipient.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{SmtpTransport, Transport as _};

use super::DeliveryError;
use crate::config::project::{MailSettings, TlsMode};
use crate::outputs::Mail;
use crate::store::Attempt;

pub enum Transport {
    Outbox(PathBuf),
    Smtp(Box<SmtpTransport>),
}

impl Transport {
    pub fn from_settings(settings: &MailSettings, outbox: &Path) -> Result<Transport, DeliveryError> {
        let Some(smtp) = &settings.smtp else {
            return Ok(Transport::Outbox(outbox.to_path_buf()));
        };
        let tls = || TlsParameters::new(smtp.host.clone()).map_err(|e| DeliveryError::Settings(e.to_string()));
        let mut builder = SmtpTransport::builder_dangerous(&smtp.host).port(smtp.port).timeout(Some(smtp.timeout));
        builder = match smtp.tls {
            TlsMode::StartTls => builder.tls(Tls::Required(tls()?)),
            TlsMode::Implicit => builder.tls(Tls::Wrapper(tls()?)),
            TlsMode::None => builder.tls(Tls::None),
        };
        if let Some(user) = &smtp.user {
            let password = std::env::var(&smtp.password_env).map_err(|_| {
                DeliveryError::Settings(format!(
                    "mail.smtp.user is set but the environment variable {} (the password) is not",
                    smtp.password_env
                ))
            })?;
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        Ok(Transport::Smtp(Box::new(builder.build())))
    }

    /// Sends one mail; for the outbox folder, `name` becomes the file name inside `dir`.
    pub fn send(&self, message: &Message, dir: &Path, name: &str) -> Result<String, DeliveryError> {
        let to: Vec<String> = message.envelope().to().iter().map(|a| a.to_string()).collect();
        let from = message.envelope().from().map(|a| a.to_string()).unwrap_or_default();
        self.send_raw(&from, &to, &message.formatted(), dir, name)
    }

    /// Sends an already formatted mail (as kept in the store's outbox).
    pub fn send_raw(
        &self,
        from: &str,
        to: &[String],
        bytes: &[u8],
        dir: &Path,
        name: &str,
    ) -> Result<String, DeliveryError> {
        match self {
            Transport::Outbox(root) => {
                let dir = root.join(dir);
                std::fs::create_dir_all(&dir)
                    .map_err(|e| DeliveryError::Write { path: dir.clone(), message: e.to_string() })?;
                let path = dir.join(format!("{name}.eml"));
                crate::outputs::write_whole(&path, bytes)
                    .map_err(|e| DeliveryError::Write { path: path.clone(), message: e.to_string() })?;
                Ok(path.display().to_string())
            }
            Transport::Smtp(smtp) => {
                let smtp_err = |message: String| DeliveryError::Smtp { to: to.join(", "), message };
                let from = from.parse::<lettre::Address>().map_err(|e| smtp_err(e.to_string()))?;
                let to_addresses = to
                    .iter()
                    .map(|t| t.parse::<lettre::Address>())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| smtp_err(e.to_string()))?;
                let envelope =
                    lettre::address::Envelope::new(Some(from), to_addresses).map_err(|e| smtp_err(e.to_string()))?;
                // A few quick retries with backoff ride out a busy or restarting relay, but only
                // when the mail was surely not accepted: the relay refused it for now (4xx) or
                // refused the connection. A timeout or a connection lost after the message
                // went out may mean it was accepted: that mail is not sent again here, and
                // what still fails stays in the outbox for `keepwell outbox retry`.
                let mut delay = Duration::from_millis(500);
                let mut attempt = 1;
                loop {
                    match smtp.send_raw(&envelope, bytes) {
                        Ok(_) => return Ok(to.join(", ")),
                        Err(e) if attempt >= SMTP_ATTEMPTS || !surely_not_accepted(&e) => {
                            return Err(smtp_err(e.to_string()));
                        }
                        Err(e) => {
                            tracing::warn!(to = %to.join(", "), attempt, error = %e, "SMTP delivery failed; retrying.");
                            std::thread::sleep(delay);
                            delay *= 2;
                            attempt += 1;
                        }
                    }
                }
            }
        }
    }
}

/// One run's mail on its way out, a batch at a time as outputs render it.
///
/// Messages are built on every core. Mail for the outbox folder is written at once and
/// recorded as sent: writing the same file twice is harmless, so only what failed needs
/// keeping for a retry. Over SMTP, mail is queued in the store's outbox and sent by
/// [`Delivery::finish`], so a relay that is down loses nothing.
pub struct Delivery<'a> {
    store: &'a crate::store::Store,
    transport: Transport,
    from: Mailbox,
    job: &'a str,
    as_of: chrono::NaiveDate,
    run_id: Option<i64>,
    /// Mail of this job and day already sent by an earlier run (outbox folder only).
    sent_before: std::collections::HashSet<(String, String)>,
    pub sent: Vec<String>,
    pub failed: Vec<String>,
    /// Mail of this job and day sent by an earlier run, not sent again.
    pub already_sent: usize,
    /// Time spent building, writing and recording mail.
    pub busy: Duration,
}

impl<'a> Delivery<'a> {
    /// Over the outbox folder, earlier failures of `job` go first.
    pub fn start(
        store: &'a crate::store::Store,
        transport: Transport,
        from: Mailbox,
        job: &'a str,
        as_of: chrono::NaiveDate,
        run_id: Option<i64>,
    ) -> Result<Self, DeliveryError> {
        let started = std::time::Instant::now();
        let mut delivery = Delivery {
            store,
            transport,
            from,
            job,
            as_of,
            run_id,
            sent_before: Default::default(),
            sent: Vec::new(),
            failed: Vec::new(),
            already_sent: 0,
            busy: Duration::ZERO,
        };
        if delivery.direct() {
            let (sent, failed) = flush_outbox(store, &delivery.transport, Some(job))?;
            delivery.sent = sent;
            delivery.failed = failed;
            delivery.sent_before = store.sent_for(job, as_of)?;
        }
        delivery.busy = started.elapsed();
        Ok(delivery)
    }

    fn direct(&self) -> bool {
        matches!(self.transport, Transport::Outbox(_))
    }

    /// Builds `mails` and writes them to the outbox folder, or queues them for SMTP.
    pub fn send(&mut self, mails: Vec<Mail>) -> Result<(), DeliveryError> {
        use rayon::prelude::*;
        let started = std::time::Instant::now();
        let from = &self.from;
        let queue = mails
            .par_iter()
            .map(|mail| {
                let recipient = mail.to.first().map(|m| m.email.to_string()).unwrap_or_default();
                let message = mail.to_message(from, &mail_key(self.job, self.as_of, &mail.output, &recipient))?;
                Ok(crate::store::QueuedMail {
                    output: mail.output.clone(),
                    recipient,
                    subject: mail.subject.clone(),
                    to: message.envelope().to().iter().map(|a| a.to_string()).collect(),
                    message: message.formatted(),
                })
            })
            .collect::<Result<Vec<_>, DeliveryError>>()?;
        drop(mails);
        let sender = self.from.email.to_string();
        if !self.direct() {
            self.already_sent += self.store.enqueue(self.job, self.as_of, self.run_id, &sender, &queue)?;
            self.busy += started.elapsed();
            return Ok(());
        }
        let (repeat, fresh): (Vec<_>, Vec<_>) =
            queue.into_iter().partition(|m| self.sent_before.contains(&(m.output.clone(), m.recipient.clone())));
        self.already_sent += repeat.len();
        let day = Path::new(self.job).join(self.as_of.to_string());
        let transport = &self.transport;
        let delivered: Vec<(crate::store::QueuedMail, Attempt)> = fresh
            .into_par_iter()
            .map(|m| {
                let result = transport
                    .send_raw(&sender, &m.to, &m.message, &day, &file_stem(&m.output, &m.recipient))
                    .map_err(Into::into);
                (m, result)
            })
            .collect();
        self.store.record_delivered(self.job, self.as_of, self.run_id, &sender, &delivered)?;
        for (m, r) in delivered {
            match r {
                Ok(path) => self.sent.push(path),
                Err(e) => self.failed.push(format!("{} to {} ({}): {e}", m.output, m.recipient, self.as_of)),
            }
        }
        self.busy += started.elapsed();
        Ok(())
    }

    /// Sends what was queued for SMTP.
    pub fn finish(&mut self) -> Result<(), DeliveryError> {
        let started = std::time::Instant::now();
        if self.already_sent > 0 {
            tracing::info!(job = %self.job, mails = self.already_sent, "Mail already sent for this day was not sent again.");
        }
        if !self.direct() {
            let (s, f) = flush_outbox(self.store, &self.transport, Some(self.job))?;
            self.sent.extend(s);
            self.failed.extend(f);
        }
        self.busy += started.elapsed();
        Ok(())
    }
}

/// What names a mail for good, as the outbox keys it: its Message-ID is made from this.
pub fn mail_key(job: &str, as_of: chrono::NaiveDate, output: &str, recipient: &str) -> String {
    format!("{job}/{as_of}/{output}/{recipient}")
}

/// The name of a mail's file in the outbox folder, without `.eml`.
pub fn file_stem(output: &str, recipient: &str) -> String {
    format!("{output}--{}", crate::outputs::file_name(recipient))
}

/// Whether an SMTP error means the relay did not take the mail: a 4xx answer, or a
/// connection it refused. Anything else (a timeout, a reset) may have come after it did.
fn surely_not_accepted(e: &lettre::transport::smtp::Error) -> bool {
    if e.is_transient() {
        return true;
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return io.kind() == std::io::ErrorKind::ConnectionRefused;
        }
        source = s.source();
    }
    false
}

/// Attempts per mail within one delivery, for transient SMTP errors.
const SMTP_ATTEMPTS: u32 = 3;

/// Sends every unsent mail in the store's outbox (of `job` when given), recording each
/// attempt. Returns where each sent mail went and the errors of those that failed.
pub fn flush_outbox(
    store: &crate::store::Store,
    transport: &Transport,
    job: Option<&str>,
) -> Result<(Vec<String>, Vec<String>), crate::store::StoreError> {
    let (mut sent, mut failed) = (Vec::new(), Vec::new());
    // A page of mail at a time, so memory stays flat however much is queued. Each attempt
    // is recorded as soon as the relay answers: one statement per mail costs a millisecond,
    // and recording in batches sent the unrecorded part of a batch again after a kill.
    let mut after: Option<String> = None;
    loop {
        let page = store.unsent_page(job, after.as_deref(), 500)?;
        let Some(last) = page.last() else { break };
        after = Some(last.page_key());
        for mail in &page {
            let dir = Path::new(&mail.job).join(mail.as_of.to_string());
            let name = file_stem(&mail.output, &mail.recipient);
            let result: Attempt =
                transport.send_raw(&mail.sender, &mail.envelope_to, &mail.message, &dir, &name).map_err(Into::into);
            match &result {
                Ok(to) => sent.push(to.clone()),
                Err(e) => failed.push(format!("{} to {} ({}): {e}", mail.output, mail.recipient, mail.as_of)),
            }
            store.mark(mail, &result)?;
        }
    }
    Ok((sent, failed))
}
