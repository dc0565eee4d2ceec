//! What an output renders for one recipient: the mail's addresses, subject, text, HTML,
//! inline images and attachments. `mail/` turns it into MIME and sends it.

use lettre::message::Mailbox;

/// A mail ready to build: rendered text, HTML and attachments.
#[derive(Debug, Clone)]
pub struct Mail {
    /// The output that produced it.
    pub output: String,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// Images the HTML shows by `cid:` reference.
    pub inline: Vec<Inline>,
    pub attachments: Vec<Attachment>,
}

/// A part the HTML refers to as `cid:<cid>`, such as a chart.
#[derive(Debug, Clone)]
pub struct Inline {
    pub cid: String,
    pub content_type: String,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct Attachment {
    pub file_name: String,
    pub content_type: String,
    pub body: String,
}
