//! Sending mail: to `.eml` files in the outbox folder by default, or over SMTP when the
//! project sets `mail.smtp`.

mod message;
mod send;

pub use send::{Delivery, Transport, file_stem, flush_outbox, mail_key};

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("mail settings: {0}")]
    Settings(String),
    #[error("cannot build the mail `{subject}`: {message}")]
    Build { subject: String, message: String },
    #[error("cannot write `{path}`: {message}")]
    Write { path: PathBuf, message: String },
    #[error("SMTP delivery to {to} failed: {message}")]
    Smtp { to: String, message: String },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}
