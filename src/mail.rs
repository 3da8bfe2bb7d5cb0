//! Alert emails: rendering (pure) and delivery over SMTP (lettre, rustls) or to the log.

use crate::alerting::{Condition, Notice, OpenAlert};
use crate::config::{Email, SmtpTls};
use crate::evaluate::show_value;
use crate::model::{Change, ChangeClass};
use crate::store::OutboxRow;
use lettre::AsyncTransport;
use std::path::Path;

/// What a notice email is about.
pub struct MailContext<'a> {
    pub resource_id: &'a str,
    pub kind: &'a str,
    pub notice: Notice,
    pub detected_at: chrono::DateTime<chrono::Utc>,
    pub new: &'a [Condition],
    pub still_open: &'a [OpenAlert],
    pub resolved: &'a [OpenAlert],
    pub changes: &'a [Change],
    pub exposed: bool,
    pub config_path: &'a Path,
    /// Whether `baseline accept` applies (not for lockwatch's own alerts, such as blindness).
    pub about_posture: bool,
    /// The resource can be reached from the internet (said in the subject).
    pub internet: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

pub fn subject(notice: Notice, resource_id: &str, exposed: bool, internet: bool) -> String {
    match notice {
        Notice::Alert(s) if exposed && internet => format!(
            "[lockwatch] {} {resource_id} is exposed to the internet",
            s.subject_word()
        ),
        Notice::Alert(s) => format!(
            "[lockwatch] {} {resource_id}{}",
            s.subject_word(),
            if exposed { " is exposed" } else { "" }
        ),
        Notice::Reminder(s) => format!("[lockwatch] {} {resource_id} (reminder: still open)", s.subject_word()),
        Notice::Resolved => format!("[lockwatch] RESOLVED {resource_id}"),
        Notice::PartlyResolved(s) => format!(
            "[lockwatch] {} {resource_id} (partly resolved, still open)",
            s.subject_word()
        ),
    }
}

pub fn render(c: &MailContext<'_>) -> Rendered {
    let subject = subject(c.notice, c.resource_id, c.exposed, c.internet);
    let when = c.detected_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut sections: Vec<(String, Vec<String>)> = Vec::new();
    let headline = match c.notice {
        Notice::Alert(_) if !c.about_posture => format!("lockwatch needs attention: {}.", c.resource_id),
        Notice::Alert(_) if c.exposed => {
            format!("{} is reachable without authentication.", c.resource_id)
        }
        Notice::Alert(_) => format!("Protection of {} was weakened.", c.resource_id),
        Notice::Reminder(_) => format!("{} still has open alerts.", c.resource_id),
        Notice::PartlyResolved(_) => format!("Some alerts on {} cleared; others are still open.", c.resource_id),
        Notice::Resolved if !c.about_posture => format!("{} is back to normal.", c.resource_id),
        Notice::Resolved => format!("Protection of {} is back.", c.resource_id),
    };
    let cond_line = |rule: &str, sev: &str, msg: &str| format!("[{sev}] {rule}: {msg}");
    if !c.new.is_empty() {
        sections.push((
            "New".into(),
            c.new
                .iter()
                .map(|x| cond_line(&x.rule, x.severity.as_str(), &x.message))
                .collect(),
        ));
    }
    if !c.resolved.is_empty() {
        sections.push((
            "Resolved".into(),
            c.resolved
                .iter()
                .map(|x| format!("{} (open since {})", x.rule, ts(x.opened_at)))
                .collect(),
        ));
    }
    if !c.still_open.is_empty() {
        sections.push((
            "Still open".into(),
            c.still_open
                .iter()
                .map(|x| {
                    format!(
                        "{} (open since {})",
                        cond_line(&x.rule, x.severity.as_str(), &x.message),
                        ts(x.opened_at)
                    )
                })
                .collect(),
        ));
    }
    let mut changes: Vec<&Change> = c.changes.iter().filter(|ch| ch.class != ChangeClass::Neutral).collect();
    changes.sort_by_key(|ch| ch.class != ChangeClass::Weakened);
    if !changes.is_empty() {
        sections.push((
            "What changed since the approved baseline".into(),
            changes
                .iter()
                .map(|ch| {
                    format!(
                        "{} {}: {} → {}",
                        ch.class.as_str(),
                        ch.path,
                        show_value(&ch.before),
                        show_value(&ch.after)
                    )
                })
                .collect(),
        ));
    }
    let cfg = c.config_path.display();
    let mut footer = vec![
        format!("Resource: {} (kind {})", c.resource_id, c.kind),
        format!("Detected: {when}"),
    ];
    if c.about_posture {
        footer.push(format!(
            "Change history: lockwatch --config {cfg} history {}",
            c.resource_id
        ));
        footer.push(format!(
            "If this change was deliberate, approve it as the new baseline: lockwatch --config {cfg} baseline accept {}",
            c.resource_id
        ));
    }

    let mut text = format!("{headline}\n\n");
    for (title, lines) in &sections {
        text.push_str(&format!("{title}:\n"));
        for l in lines {
            text.push_str(&format!("  - {l}\n"));
        }
        text.push('\n');
    }
    text.push_str(&footer.join("\n"));
    text.push('\n');

    let mut html = format!("<html><body><p><strong>{}</strong></p>\n", esc(&headline));
    for (title, lines) in &sections {
        html.push_str(&format!("<h3>{}</h3>\n<ul>\n", esc(title)));
        for l in lines {
            html.push_str(&format!("<li><code>{}</code></li>\n", esc(l)));
        }
        html.push_str("</ul>\n");
    }
    html.push_str("<p>");
    html.push_str(&footer.iter().map(|l| esc(l)).collect::<Vec<_>>().join("<br>\n"));
    html.push_str("</p></body></html>\n");
    Rendered { subject, text, html }
}

fn ts(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| secs.to_string())
}

pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A Message-ID for a new mail: random, under the sender's domain.
pub fn new_message_id(email: Option<&Email>) -> String {
    let domain = email
        .map(|e| e.from.email.domain().to_string())
        .unwrap_or_else(|| "lockwatch.invalid".into());
    format!("<{:032x}@{domain}>", rand::random::<u128>())
}

/// Why a delivery failed, and whether retrying can help.
#[derive(Debug)]
pub struct SendError {
    pub permanent: bool,
    pub message: String,
}

pub enum Transport {
    /// No SMTP configured: alerts go to the log.
    Log,
    Smtp {
        transport: lettre::AsyncSmtpTransport<lettre::Tokio1Executor>,
        email: Email,
    },
}

impl Transport {
    pub fn new(email: Option<&Email>) -> anyhow::Result<Transport> {
        let Some(e) = email else {
            return Ok(Transport::Log);
        };
        use lettre::transport::smtp::AsyncSmtpTransport as T;
        let mut b = match e.tls {
            SmtpTls::None => T::<lettre::Tokio1Executor>::builder_dangerous(&e.smtp_host),
            SmtpTls::Starttls => T::<lettre::Tokio1Executor>::starttls_relay(&e.smtp_host)?,
            SmtpTls::Tls => T::<lettre::Tokio1Executor>::relay(&e.smtp_host)?,
        }
        .port(e.smtp_port)
        .timeout(Some(e.timeout));
        if let (Some(u), Some(p)) = (&e.username, &e.password) {
            b = b.credentials(lettre::transport::smtp::authentication::Credentials::new(
                u.clone(),
                p.expose().to_string(),
            ));
        }
        Ok(Transport::Smtp {
            transport: b.build(),
            email: e.clone(),
        })
    }

    pub async fn send(&self, row: &OutboxRow) -> Result<(), SendError> {
        match self {
            Transport::Log => {
                tracing::warn!(resource = %row.resource_id, subject = %row.subject, body = %row.body_text, "alert (log transport: no [alerts.email] configured)");
                Ok(())
            }
            Transport::Smtp { transport, email } => {
                let msg = build_message(email, row).map_err(|m| SendError {
                    permanent: true,
                    message: m,
                })?;
                transport.send(msg).await.map(|_| ()).map_err(|e| SendError {
                    permanent: e.is_permanent(),
                    message: format!("SMTP {}:{}: {e}", email.smtp_host, email.smtp_port),
                })
            }
        }
    }
}

fn build_message(email: &Email, row: &OutboxRow) -> Result<lettre::Message, String> {
    let mut b = lettre::Message::builder()
        .from(email.from.clone())
        .subject(row.subject.clone())
        .message_id(Some(row.message_id.clone()));
    for to in &email.to {
        b = b.to(to.clone());
    }
    if let Some(root) = &row.in_reply_to {
        b = b.in_reply_to(root.clone()).references(root.clone());
    }
    if let Some(at) = chrono::DateTime::from_timestamp(row.created_at, 0) {
        b = b.date(at.into());
    }
    b.multipart(lettre::message::MultiPart::alternative_plain_html(
        row.body_text.clone(),
        row.body_html.clone(),
    ))
    .map_err(|e| format!("building message: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Severity;
    use serde_json::json;

    #[test]
    fn subjects() {
        let cases = [
            (
                Notice::Alert(Severity::Critical),
                true,
                "[lockwatch] CRITICAL a/redis/h:1 is exposed",
            ),
            (Notice::Alert(Severity::High), false, "[lockwatch] HIGH a/redis/h:1"),
            (
                Notice::Reminder(Severity::Critical),
                true,
                "[lockwatch] CRITICAL a/redis/h:1 (reminder: still open)",
            ),
            (Notice::Resolved, false, "[lockwatch] RESOLVED a/redis/h:1"),
        ];
        assert_eq!(
            subject(Notice::Alert(Severity::Critical), "a/redis/h:1", true, true),
            "[lockwatch] CRITICAL a/redis/h:1 is exposed to the internet"
        );
        for (n, exposed, want) in cases {
            assert_eq!(subject(n, "a/redis/h:1", exposed, false), want);
        }
    }

    #[test]
    fn body_says_what_changed_and_how_to_accept() {
        let new = [Condition {
            rule: "redis.auth.disabled".into(),
            severity: Severity::Critical,
            message: "no <password>".into(),
        }];
        let changes = [Change {
            path: "/requirepass_set".into(),
            before: json!(true),
            after: json!(false),
            class: ChangeClass::Weakened,
            severity: Some(Severity::Critical),
        }];
        let r = render(&MailContext {
            resource_id: "cache/redis/127.0.0.1:6379",
            kind: "redis",
            notice: Notice::Alert(Severity::Critical),
            detected_at: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            new: &new,
            still_open: &[],
            resolved: &[],
            changes: &changes,
            exposed: true,
            config_path: Path::new("/etc/lockwatch/lockwatch.toml"),
            about_posture: true,
            internet: false,
        });
        assert!(r.text.contains("weakened /requirepass_set: true → false"), "{}", r.text);
        assert!(r.text.contains("[critical] redis.auth.disabled"));
        assert!(r.text.contains("Detected: 2023-11-14T22:13:20Z"));
        assert!(r.text.contains("baseline accept cache/redis/127.0.0.1:6379"));
        assert!(r.html.contains("no &lt;password&gt;"), "{}", r.html);
        assert!(!r.html.contains("<password>"));
    }
}
