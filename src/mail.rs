//! What lockwatch says: every email (alerts, reminders, resolutions, blindness, notices, the
//! test alert) rendered from plain data, in text and HTML. Pure; delivery is `sinks`.

use crate::alerting::{Condition, Notice, OpenAlert};
use crate::model::{Change, ChangeClass};
use crate::pipeline::decide::{Decision, ExpiryNotice};
use crate::pipeline::evaluate::show_value;
use crate::sinks::{MessageKind, Outgoing};
use std::path::Path;

/// What every email needs besides its subject matter.
#[derive(Debug, Clone, PartialEq)]
pub struct MailSettings {
    /// Shown in the commands the email suggests.
    pub config_path: std::path::PathBuf,
    /// Message-IDs are made under this domain (the sender's).
    pub message_domain: String,
}

impl Default for MailSettings {
    fn default() -> Self {
        MailSettings {
            config_path: crate::config::DEFAULT_PATH.into(),
            message_domain: "lockwatch.invalid".into(),
        }
    }
}

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
    /// Weakenings since the previous cycle, announced while alerts were already open.
    pub further: &'a [Change],
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
    let mut subject = subject(c.notice, c.resource_id, c.exposed, c.internet);
    if !c.further.is_empty() && c.new.is_empty() {
        subject.push_str(" (further weakened)");
    }
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
    let headline = if !c.further.is_empty() && c.new.is_empty() {
        format!(
            "Protection of {} was weakened further while its alerts are open.",
            c.resource_id
        )
    } else {
        headline
    };
    let cond_line = |rule: &str, sev: &str, msg: &str| format!("[{sev}] {rule}: {msg}");
    if !c.further.is_empty() {
        sections.push((
            "Further weakened since the last check".into(),
            c.further
                .iter()
                .map(|ch| format!("{}: {} → {}", ch.path, show_value(&ch.before), show_value(&ch.after)))
                .collect(),
        ));
    }
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
pub fn new_message_id(domain: &str) -> String {
    format!("<{:032x}@{domain}>", rand::random::<u128>())
}

/// The email a decision calls for, if it calls for one.
pub fn for_decision(
    d: &Decision,
    settings: &MailSettings,
    detected_at: chrono::DateTime<chrono::Utc>,
) -> Option<Outgoing> {
    let notice = d.plan.notice?;
    let new: Vec<Condition> = d.plan.opened.iter().chain(&d.plan.escalated).cloned().collect();
    let mut still_open = d.plan.still_open.clone();
    still_open.extend(
        d.was_open
            .iter()
            .filter(|o| d.plan.updated.iter().any(|u| u.rule == o.rule))
            .cloned(),
    );
    let mut rendered = render(&MailContext {
        resource_id: &d.resource_id,
        kind: &d.kind,
        notice,
        detected_at,
        new: &new,
        still_open: &still_open,
        resolved: &d.plan.resolved,
        changes: &d.changes,
        further: &d.further,
        exposed: d.exposed,
        config_path: &settings.config_path,
        about_posture: d.about_posture,
        internet: d.reach == Some(crate::net::Reach::Internet),
    });
    if !d.notes.is_empty() {
        rendered.text = d.notes.join("\n") + "\n\n" + &rendered.text;
    }
    let (kind, severity) = match notice {
        Notice::Alert(s) => (MessageKind::Alert, Some(s)),
        Notice::Reminder(s) => (MessageKind::Reminder, Some(s)),
        Notice::Resolved => (MessageKind::Resolved, None),
        Notice::PartlyResolved(s) => (MessageKind::PartlyResolved, Some(s)),
    };
    let mut rules: Vec<String> = new
        .iter()
        .map(|c| c.rule.clone())
        .chain(d.plan.resolved.iter().map(|o| o.rule.clone()))
        .chain(still_open.iter().map(|o| o.rule.clone()))
        .collect();
    rules.sort();
    rules.dedup();
    Some(Outgoing {
        resource_id: d.resource_id.clone(),
        kind,
        severity,
        rules,
        subject: rendered.subject,
        text: rendered.text,
        html: rendered.html,
        message_id: new_message_id(&settings.message_domain),
    })
}

/// A suppression expired after its finding had gone: nothing alerts, but whoever granted it
/// hears that it ended.
pub fn for_expiry(n: &ExpiryNotice, settings: &MailSettings) -> Outgoing {
    let text = format!(
        "{}\nThe finding is no longer present, so nothing alerts now.\n\nResource: {} (kind {})\n",
        n.note, n.resource_id, n.kind
    );
    Outgoing {
        resource_id: n.resource_id.clone(),
        kind: MessageKind::Notice,
        severity: None,
        rules: vec![],
        subject: format!("[lockwatch] NOTICE {}: suppression expired", n.resource_id),
        html: format!("<html><body><pre>{}</pre></body></html>", esc(&text)),
        text,
        message_id: new_message_id(&settings.message_domain),
    }
}

/// The email `lockwatch test-alert` sends.
pub fn test_alert(host: &str, now: i64, settings: &MailSettings) -> Outgoing {
    let text = format!(
        "This is a test alert from lockwatch on {host}, sent by `lockwatch test-alert` at {}.\nIf you read this, alert delivery works.\n",
        ts(now)
    );
    Outgoing {
        resource_id: "lockwatch/test".into(),
        kind: MessageKind::Test,
        severity: None,
        rules: vec![],
        subject: format!("[lockwatch] TEST alert delivery from {host}"),
        html: format!("<html><body><p>{}</p></body></html>", esc(&text)),
        text,
        message_id: new_message_id(&settings.message_domain),
    }
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
            further: &[],
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
