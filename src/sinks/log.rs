//! Alerts to the log, when no email is configured.

use super::{Delivery, Message, SendError, Sink};
use futures::future::BoxFuture;

pub struct LogSink;

impl Sink for LogSink {
    fn describe(&self) -> String {
        "the log (no [alerts.email] configured)".into()
    }

    fn send<'a>(&'a self, m: &'a Message, _done: &'a [String]) -> BoxFuture<'a, Result<Delivery, SendError>> {
        Box::pin(async move {
            tracing::warn!(resource = %m.resource_id, subject = %m.subject, body = %m.text, "alert (log transport: no [alerts.email] configured)");
            Ok(Delivery {
                accepted: vec!["log".into()],
                ..Default::default()
            })
        })
    }
}
