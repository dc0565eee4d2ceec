//! A rendered mail as MIME: the parts nested as mail clients expect, bodies encoded as
//! lettre encodes them, only faster.

use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Attachment as LettreAttachment, Body, Mailbox, Message, MultiPart, SinglePart};

use super::DeliveryError;
use crate::outputs::Mail;

impl Mail {
    /// mixed[ alternative[ text, related[ html, inline images... ] ], attachments... ], each
    /// level only when it has parts. Header values are encoded by
    /// lettre; line breaks are removed from the subject so no value can add a header.
    ///
    /// `key` names the mail for good (job, day, output and recipient): its Message-ID is
    /// made from it, so a mail sent twice (a delivery cut off after the relay accepted it)
    /// carries the same Message-ID both times and receivers can drop the repeat.
    pub fn to_message(&self, from: &Mailbox, key: &str) -> Result<Message, DeliveryError> {
        let subject = self.subject.split_whitespace().collect::<Vec<_>>().join(" ");
        let mut builder =
            Message::builder().from(from.clone()).subject(subject).message_id(Some(message_id(from, key)));
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        for cc in &self.cc {
            builder = builder.cc(cc.clone());
        }
        let build_err = |message: String| DeliveryError::Build { subject: self.subject.clone(), message };
        let text = SinglePart::builder().header(ContentType::TEXT_PLAIN).body(crlf(&self.text));
        // HTML in base64: quoted-printable, lettre's choice for long lines, took most of the
        // time building a list's mail.
        let html = SinglePart::builder().header(ContentType::TEXT_HTML).body(base64_body(&self.html));
        let body = if self.inline.is_empty() {
            MultiPart::alternative().singlepart(text).singlepart(html)
        } else {
            let mut related = MultiPart::related().singlepart(html);
            for part in &self.inline {
                let ct = ContentType::parse(&part.content_type).map_err(|e| build_err(e.to_string()))?;
                related =
                    related.singlepart(LettreAttachment::new_inline(part.cid.clone()).body(part.body.clone(), ct));
            }
            MultiPart::alternative().singlepart(text).multipart(related)
        };
        let message = if self.attachments.is_empty() {
            builder.multipart(body)
        } else {
            let mut mixed = MultiPart::mixed().multipart(body);
            for a in &self.attachments {
                let ct = ContentType::parse(&a.content_type).map_err(|e| build_err(e.to_string()))?;
                // Base64, the usual encoding of attachments, is also several times faster to
                // write than quoted-printable for lists of thousands of lines.
                mixed = mixed.singlepart(LettreAttachment::new(a.file_name.clone()).body(base64_body(&a.body), ct));
            }
            builder.multipart(mixed)
        };
        message.map_err(|e| build_err(e.to_string()))
    }
}

/// `<digest.keepwell@domain>`: the same for the same key, whoever builds it.
pub fn message_id(from: &Mailbox, key: &str) -> String {
    format!("<{:032x}.keepwell@{}>", twox_hash::XxHash3_128::oneshot(key.as_bytes()), from.email.domain())
}

/// `s` with CRLF line endings, in base64 in lines of 76 characters, as lettre writes it
/// (without scanning the text first for the encoding it would choose).
fn base64_body(s: &str) -> Body {
    let text = crlf(s);
    let mut out = String::with_capacity(email_encoding::body::base64::encoded_len(text.len()));
    email_encoding::body::base64::encode(text.as_bytes(), &mut out).expect("writing to a String cannot fail");
    Body::dangerous_pre_encoded(out.into_bytes(), ContentTransferEncoding::Base64)
}

/// `s` with CRLF line endings, exactly as lettre would make them. lettre inserts each `\r`
/// in place, which takes time quadratic in the length: a CSV of a few thousand lines made
/// encoding the mail most of the delivery stage.
fn crlf(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 16);
    let mut rest = s;
    while let Some(i) = rest.find('\n') {
        let line = &rest[..i];
        out.push_str(line);
        if !line.ends_with('\r') {
            out.push('\r');
        }
        out.push('\n');
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::{base64_body, crlf};
    use lettre::message::Body;
    use lettre::message::header::ContentTransferEncoding;

    #[test]
    fn bodies_are_encoded_as_lettre_encodes_them() {
        let long = "<tr><td>Acme</td><td>€120,000</td></tr>\n".repeat(300);
        for s in ["", "a", "a\nb\r\n", "é\nü", "x".repeat(200).as_str(), long.as_str()] {
            let ours = base64_body(s);
            let lettre = Body::new_with_encoding(s.to_string(), ContentTransferEncoding::Base64).expect("base64");
            assert_eq!(ours.encoding(), ContentTransferEncoding::Base64);
            assert_eq!(ours.into_vec(), lettre.into_vec(), "{s:?}");
        }
    }

    #[test]
    fn line_endings_become_crlf_once() {
        let cases = [
            ("", ""),
            ("a", "a"),
            ("a\nb", "a\r\nb"),
            ("a\r\nb", "a\r\nb"),
            ("\n", "\r\n"),
            ("\n\n", "\r\n\r\n"),
            ("a\n\r\nb\n", "a\r\n\r\nb\r\n"),
            ("é\nü\r", "é\r\nü\r"),
        ];
        for (input, expected) in cases {
            assert_eq!(crlf(input), expected, "{input:?}");
        }
    }
}
