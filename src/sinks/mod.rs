//! Where alerts go. A sink takes a plain outgoing [`Message`] — never a store row — and delivers
//! it: by SMTP ([`smtp`]) or to the log ([`log`]). The outbox worker (`pipeline::deliver`) and
//! `lockwatch test-alert` both send through here.

pub mod alertmanager;
pub mod log;
pub mod smtp;

use crate::model::Severity;
use futures::future::BoxFuture;

/// What a message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    Alert,
    Reminder,
    Resolved,
    PartlyResolved,
    /// Something to know that is not an alert (a suppression expired).
    Notice,
    /// `lockwatch test-alert`.
    Test,
}

impl MessageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Alert => "alert",
            MessageKind::Reminder => "reminder",
            MessageKind::Resolved => "resolved",
            MessageKind::PartlyResolved => "partly-resolved",
            MessageKind::Notice => "notice",
            MessageKind::Test => "test",
        }
    }

    pub fn parse(s: &str) -> Option<MessageKind> {
        [
            MessageKind::Alert,
            MessageKind::Reminder,
            MessageKind::Resolved,
            MessageKind::PartlyResolved,
            MessageKind::Notice,
            MessageKind::Test,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// One outgoing message, as every sink sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub resource_id: String,
    pub kind: MessageKind,
    /// The severity it is sent at (none for a resolution or a notice).
    pub severity: Option<Severity>,
    /// The rules it is about.
    pub rules: Vec<String>,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// This message's id, and the first message about the same resource (its thread).
    pub message_id: String,
    pub in_reply_to: Option<String>,
    pub created_at: i64,
}

/// A message ready for the outbox: rendered, not yet threaded.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub resource_id: String,
    pub kind: MessageKind,
    pub severity: Option<Severity>,
    pub rules: Vec<String>,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub message_id: String,
}

/// Why a delivery failed, and whether retrying can help.
#[derive(Debug)]
pub struct SendError {
    pub permanent: bool,
    pub message: String,
}

/// What became of a message, recipient by recipient.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Delivery {
    /// Recipients the next hop accepted.
    pub accepted: Vec<String>,
    /// (recipient, why): refused for good (a 5xx for that address). The others still get it.
    pub refused: Vec<(String, String)>,
    /// (recipient, why): not delivered yet; to be retried.
    pub deferred: Vec<(String, String)>,
}

pub trait Sink: Send + Sync {
    /// Where it delivers, for messages ("SMTP 127.0.0.1:25 to oncall@example.com", "the log").
    fn describe(&self) -> String;
    /// Deliver one message to every recipient not in `done` (those that accepted or refused it
    /// on an earlier attempt). An `Err` means nothing could be tried (the message could not be
    /// built, the server could not be reached); per-recipient outcomes are in the `Delivery`.
    fn send<'a>(&'a self, message: &'a Message, done: &'a [String]) -> BoxFuture<'a, Result<Delivery, SendError>>;
}

/// The sink the configuration asks for: SMTP when `[alerts.email]` is set, else the log.
pub fn from_config(email: Option<&crate::config::Email>) -> anyhow::Result<Box<dyn Sink>> {
    Ok(match email {
        Some(e) => Box::new(smtp::SmtpSink::new(e)?),
        None => Box::new(log::LogSink),
    })
}
