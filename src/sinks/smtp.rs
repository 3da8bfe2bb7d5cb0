//! Alerts by email: SMTP over rustls (lettre), plain, STARTTLS or implicit TLS.

use super::{Delivery, Message, SendError, Sink};
use crate::config::{Email, SmtpTls};
use anyhow::Context;
use futures::future::BoxFuture;
use lettre::AsyncTransport;

pub struct SmtpSink {
    transport: lettre::AsyncSmtpTransport<lettre::Tokio1Executor>,
    email: Email,
}

impl SmtpSink {
    pub fn new(e: &Email) -> anyhow::Result<SmtpSink> {
        use lettre::transport::smtp::AsyncSmtpTransport as T;
        use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
        // With a ca_file, the server's certificate may also chain to that CA.
        let params = |host: &str| -> anyhow::Result<Option<TlsParameters>> {
            let Some(ca) = &e.ca_file else { return Ok(None) };
            let pem = std::fs::read(ca).with_context(|| format!("[alerts.email] ca_file {}", ca.display()))?;
            let cert =
                Certificate::from_pem(&pem).with_context(|| format!("[alerts.email] ca_file {}", ca.display()))?;
            Ok(Some(
                TlsParameters::builder(host.to_string())
                    .add_root_certificate(cert)
                    .build_rustls()?,
            ))
        };
        let mut b = match (e.tls, params(&e.smtp_host)?) {
            (SmtpTls::None, _) => T::<lettre::Tokio1Executor>::builder_dangerous(&e.smtp_host),
            (SmtpTls::Starttls, None) => T::<lettre::Tokio1Executor>::starttls_relay(&e.smtp_host)?,
            (SmtpTls::Tls, None) => T::<lettre::Tokio1Executor>::relay(&e.smtp_host)?,
            (SmtpTls::Starttls, Some(p)) => {
                T::<lettre::Tokio1Executor>::builder_dangerous(&e.smtp_host).tls(Tls::Required(p))
            }
            (SmtpTls::Tls, Some(p)) => {
                T::<lettre::Tokio1Executor>::builder_dangerous(&e.smtp_host).tls(Tls::Wrapper(p))
            }
        }
        .port(e.smtp_port)
        .timeout(Some(e.timeout));
        if let (Some(u), Some(p)) = (&e.username, &e.password) {
            b = b.credentials(lettre::transport::smtp::authentication::Credentials::new(
                u.clone(),
                p.expose().to_string(),
            ));
        }
        Ok(SmtpSink {
            transport: b.build(),
            email: e.clone(),
        })
    }
}

impl Sink for SmtpSink {
    fn describe(&self) -> String {
        format!(
            "SMTP {}:{} to {}",
            self.email.smtp_host,
            self.email.smtp_port,
            self.email
                .to
                .iter()
                .map(|m| m.email.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    }

    /// One envelope per recipient, the same message (same Message-ID) to each: a 5xx for one
    /// address refuses that address only; everyone else still gets the alert.
    fn send<'a>(&'a self, m: &'a Message, done: &'a [String]) -> BoxFuture<'a, Result<Delivery, SendError>> {
        Box::pin(async move {
            let msg = build_message(&self.email, m).map_err(|message| SendError {
                permanent: true,
                message,
            })?;
            let bytes = msg.formatted();
            let mut delivery = Delivery::default();
            let mut unreachable = None;
            for to in &self.email.to {
                let addr = to.email.to_string();
                if done.contains(&addr) {
                    continue;
                }
                let envelope =
                    lettre::address::Envelope::new(Some(self.email.from.email.clone()), vec![to.email.clone()])
                        .map_err(|e| SendError {
                            permanent: true,
                            message: format!("building the envelope for {addr}: {e}"),
                        })?;
                // lettre's async transport bounds the TCP connect only: a server that accepts and
                // then says nothing would hold this send (and the outbox behind it) forever.
                let sent =
                    match tokio::time::timeout(self.email.timeout, self.transport.send_raw(&envelope, &bytes)).await {
                        Ok(r) => r,
                        Err(_) => {
                            let why = format!(
                                "SMTP {}:{}: no answer within {} (timeout in [alerts.email])",
                                self.email.smtp_host,
                                self.email.smtp_port,
                                crate::config::show_duration(self.email.timeout)
                            );
                            unreachable.get_or_insert_with(|| why.clone());
                            delivery.deferred.push((addr, why));
                            continue;
                        }
                    };
                match sent {
                    Ok(_) => delivery.accepted.push(addr),
                    Err(e) => {
                        let why = format!("SMTP {}:{}: {e}", self.email.smtp_host, self.email.smtp_port);
                        if e.is_permanent() {
                            delivery.refused.push((addr, why));
                        } else {
                            // Not this address's fault (or a temporary one): try it again later.
                            unreachable.get_or_insert_with(|| why.clone());
                            delivery.deferred.push((addr, why));
                        }
                    }
                }
            }
            if delivery.accepted.is_empty()
                && delivery.refused.is_empty()
                && let Some(why) = unreachable
            {
                return Err(SendError {
                    permanent: false,
                    message: why,
                });
            }
            Ok(delivery)
        })
    }
}

fn build_message(email: &Email, m: &Message) -> Result<lettre::Message, String> {
    let mut b = lettre::Message::builder()
        .from(email.from.clone())
        .subject(m.subject.clone())
        .message_id(Some(m.message_id.clone()));
    for to in &email.to {
        b = b.to(to.clone());
    }
    if let Some(root) = &m.in_reply_to {
        b = b.in_reply_to(root.clone()).references(root.clone());
    }
    if let Some(at) = chrono::DateTime::from_timestamp(m.created_at, 0) {
        b = b.date(at.into());
    }
    // For mail filters (and tests): what the message is about, without parsing its text.
    let header = |name: &str, value: String| {
        lettre::message::header::HeaderName::new_from_ascii(name.to_string())
            .map(|n| lettre::message::header::HeaderValue::new(n, value))
            .map_err(|e| format!("header {name}: {e}"))
    };
    b = b.raw_header(header("X-Lockwatch-Kind", m.kind.as_str().to_string())?);
    b = b.raw_header(header("X-Lockwatch-Resource", m.resource_id.clone())?);
    if let Some(s) = m.severity {
        b = b.raw_header(header("X-Lockwatch-Severity", s.as_str().to_string())?);
    }
    if !m.rules.is_empty() {
        b = b.raw_header(header("X-Lockwatch-Rules", m.rules.join(", "))?);
    }
    b.multipart(lettre::message::MultiPart::alternative_plain_html(
        m.text.clone(),
        m.html.clone(),
    ))
    .map_err(|e| format!("building message: {e}"))
}
