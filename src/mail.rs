//! What lockwatch says: every email (alerts, reminders, resolutions, blindness, notices, the
//! test alert) rendered from plain data, in text and HTML. Pure; delivery is `sinks`.

use crate::alerting::{Condition, Notice, OpenAlert};
use crate::model::{Change, ChangeClass};
use crate::net::Reach;
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
    /// Rules among `new` that alert again because their suppression ended.
    pub reopened: &'a [String],
    pub still_open: &'a [OpenAlert],
    pub resolved: &'a [OpenAlert],
    pub changes: &'a [Change],
    /// Weakenings since the previous cycle, announced while alerts were already open.
    pub further: &'a [Change],
    pub exposed: bool,
    pub reach: Option<Reach>,
    pub config_path: &'a Path,
    /// Whether `baseline accept` applies (not for lockwatch's own alerts, such as blindness).
    pub about_posture: bool,
    /// Sentences that open the mail (why it came: a suppression ended, who accepted…).
    pub notes: &'a [String],
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// How far the resource can be reached from, in words.
fn reach_phrase(r: Reach) -> &'static str {
    match r {
        Reach::Internet => "reachable from the internet",
        Reach::Private => "on the private network",
        Reach::Loopback => "on a loopback-only server",
    }
}

/// The source a blindness alert is about (`lockwatch/source/<name>`).
fn blind_source(resource_id: &str) -> Option<&str> {
    resource_id.strip_prefix("lockwatch/source/")
}

/// The subject says the severity, the resource, and the reach, so that it can be judged at a
/// glance; a blindness subject says what is wrong.
pub fn subject(c: &MailContext<'_>) -> String {
    if let Some(source) = blind_source(c.resource_id) {
        return match c.notice {
            Notice::Resolved => format!("[lockwatch] RESOLVED lockwatch can see source {source} again"),
            n => {
                let why = c
                    .new
                    .iter()
                    .chain(c.still_open.iter().map(|o| o.as_condition()).collect::<Vec<_>>().iter())
                    .find_map(|x| x.message.split("Last error: ").nth(1).map(str::to_string))
                    .unwrap_or_default();
                let mut why: String = why.chars().take(120).collect();
                if why.len() < why.chars().count() {
                    why.push('…');
                }
                let sev = match n {
                    Notice::Alert(s) | Notice::Reminder(s) | Notice::PartlyResolved(s) => s.subject_word(),
                    Notice::Resolved => "RESOLVED",
                };
                format!("[lockwatch] {sev} lockwatch cannot see source {source}: {why}")
            }
        };
    }
    let id = c.resource_id;
    let reach = c.reach.map(reach_phrase);
    let state = match (c.exposed, reach) {
        (true, Some(r)) if c.reach == Some(Reach::Internet) => format!(" is exposed, {r}"),
        (true, Some(r)) => format!(" is exposed {r}"),
        (true, None) => " is exposed".to_string(),
        (false, Some(r)) => format!(" ({r})"),
        (false, None) => String::new(),
    };
    match c.notice {
        Notice::Alert(s) if !c.further.is_empty() && c.new.is_empty() => {
            format!("[lockwatch] {} {id}{state} (further weakened)", s.subject_word())
        }
        Notice::Alert(s) => format!("[lockwatch] {} {id}{state}", s.subject_word()),
        Notice::Reminder(s) => format!("[lockwatch] {} {id}{state} (reminder: still open)", s.subject_word()),
        Notice::Resolved => format!("[lockwatch] RESOLVED {id}"),
        Notice::PartlyResolved(s) => format!("[lockwatch] {} {id} (partly resolved, still open)", s.subject_word()),
    }
}

/// One change, for people: what it means, then the field as a detail.
fn change_line(kind: &str, ch: &Change) -> String {
    let detail = format!(
        "{} {}: {} → {}",
        ch.class.as_str(),
        ch.path,
        show_value(&ch.before),
        show_value(&ch.after)
    );
    match crate::sources::describe_change(kind, ch) {
        Some(words) => format!("{words} ({detail})"),
        None => detail,
    }
}

pub fn render(c: &MailContext<'_>) -> Rendered {
    let subject = subject(c);
    let when = c.detected_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let id = c.resource_id;
    let weakened_vs_baseline = c.changes.iter().any(|ch| ch.class == ChangeClass::Weakened);
    let where_ = c.reach.map(|r| format!(" ({})", reach_phrase(r))).unwrap_or_default();
    let headline = match (c.notice, blind_source(id)) {
        (Notice::Resolved, Some(source)) => format!("lockwatch can read source {source} again."),
        (_, Some(source)) => {
            format!("lockwatch cannot see source {source}: it cannot tell whether protection changes there.")
        }
        (Notice::Alert(_), None) if !c.further.is_empty() && c.new.is_empty() => {
            format!("Protection of {id}{where_} was weakened further while its alerts are open.")
        }
        (Notice::Alert(_), None) if weakened_vs_baseline => format!("Protection of {id}{where_} was weakened."),
        // First sight, or a finding without a change against the baseline: nothing "was weakened".
        (Notice::Alert(_), None) if c.exposed => format!("{id}{where_} is reachable without authentication."),
        (Notice::Alert(_), None) => format!("lockwatch found a problem with {id}{where_}."),
        (Notice::Reminder(_), None) => format!("{id} still has open alerts."),
        (Notice::PartlyResolved(_), None) => format!("Some alerts on {id} cleared; others are still open."),
        (Notice::Resolved, None) => format!("Protection of {id} is back: every alert on it is resolved."),
    };
    let mut sections: Vec<(String, Vec<String>)> = Vec::new();
    let cond_line = |rule: &str, sev: &str, msg: &str| {
        if rule == crate::alerting::DRIFT_RULE {
            format!("[{sev}] {rule}: weaker than the approved baseline (see What changed)")
        } else {
            format!("[{sev}] {rule}: {msg}")
        }
    };
    if !c.further.is_empty() {
        sections.push((
            "Further weakened since the last check".into(),
            c.further.iter().map(|ch| change_line(c.kind, ch)).collect(),
        ));
    }
    let (reopened, new): (Vec<&Condition>, Vec<&Condition>) = c.new.iter().partition(|x| c.reopened.contains(&x.rule));
    if !new.is_empty() {
        sections.push((
            "New".into(),
            new.iter()
                .map(|x| cond_line(&x.rule, x.severity.as_str(), &x.message))
                .collect(),
        ));
    }
    if !reopened.is_empty() {
        sections.push((
            "Suppression ended: alerting again".into(),
            reopened
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
            changes.iter().map(|ch| change_line(c.kind, ch)).collect(),
        ));
    }
    let cfg = c.config_path.display();
    let resolved = matches!(c.notice, Notice::Resolved);
    let mut footer = vec![
        format!("Resource: {} (kind {})", id, c.kind),
        if resolved {
            format!("Resolved at: {when}")
        } else {
            format!("Detected: {when}")
        },
    ];
    if c.about_posture {
        footer.push(format!("Change history: lockwatch --config {cfg} history {id}"));
        // Approving applies to a weakening that is still there, not to an all-clear.
        if matches!(c.notice, Notice::Alert(_) | Notice::Reminder(_)) && weakened_vs_baseline {
            footer.push(format!(
                "If this change was deliberate, approve it as the new baseline: lockwatch --config {cfg} baseline accept {id}"
            ));
        }
    }

    let mut text = String::new();
    for n in c.notes {
        text.push_str(n);
        text.push('\n');
    }
    if !c.notes.is_empty() {
        text.push('\n');
    }
    text.push_str(&format!("{headline}\n\n"));
    for (title, lines) in &sections {
        text.push_str(&format!("{title}:\n"));
        for l in lines {
            text.push_str(&format!("  - {l}\n"));
        }
        text.push('\n');
    }
    text.push_str(&footer.join("\n"));
    text.push('\n');

    let mut html = String::from("<html><body>");
    for n in c.notes {
        html.push_str(&format!("<p>{}</p>\n", esc(n)));
    }
    html.push_str(&format!("<p><strong>{}</strong></p>\n", esc(&headline)));
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
    let rendered = render(&MailContext {
        resource_id: &d.resource_id,
        kind: &d.kind,
        notice,
        detected_at,
        new: &new,
        reopened: &d.reopened,
        still_open: &still_open,
        resolved: &d.plan.resolved,
        changes: &d.changes,
        further: &d.further,
        exposed: d.exposed,
        reach: d.reach,
        config_path: &settings.config_path,
        about_posture: d.about_posture,
        notes: &d.notes,
    });
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

    fn ctx<'a>(
        notice: Notice,
        exposed: bool,
        reach: Option<Reach>,
        new: &'a [Condition],
        changes: &'a [Change],
    ) -> MailContext<'a> {
        MailContext {
            resource_id: "a/redis/h:1",
            kind: "redis",
            notice,
            detected_at: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            new,
            reopened: &[],
            still_open: &[],
            resolved: &[],
            changes,
            further: &[],
            exposed,
            reach,
            config_path: Path::new("/etc/lockwatch/lockwatch.toml"),
            about_posture: true,
            notes: &[],
        }
    }

    #[test]
    fn subjects_say_severity_resource_and_reach() {
        use Severity::*;
        let cases = [
            (
                Notice::Alert(Critical),
                true,
                Some(Reach::Internet),
                "[lockwatch] CRITICAL a/redis/h:1 is exposed, reachable from the internet",
            ),
            (
                Notice::Alert(Critical),
                true,
                Some(Reach::Loopback),
                "[lockwatch] CRITICAL a/redis/h:1 is exposed on a loopback-only server",
            ),
            (
                Notice::Alert(High),
                true,
                Some(Reach::Private),
                "[lockwatch] HIGH a/redis/h:1 is exposed on the private network",
            ),
            (
                Notice::Alert(Critical),
                true,
                None,
                "[lockwatch] CRITICAL a/redis/h:1 is exposed",
            ),
            (
                Notice::Alert(Medium),
                false,
                Some(Reach::Loopback),
                "[lockwatch] MEDIUM a/redis/h:1 (on a loopback-only server)",
            ),
            (Notice::Alert(High), false, None, "[lockwatch] HIGH a/redis/h:1"),
            (
                Notice::Reminder(Critical),
                true,
                None,
                "[lockwatch] CRITICAL a/redis/h:1 is exposed (reminder: still open)",
            ),
            (
                Notice::Resolved,
                false,
                Some(Reach::Internet),
                "[lockwatch] RESOLVED a/redis/h:1",
            ),
            (
                Notice::PartlyResolved(High),
                true,
                None,
                "[lockwatch] HIGH a/redis/h:1 (partly resolved, still open)",
            ),
        ];
        for (n, exposed, reach, want) in cases {
            assert_eq!(subject(&ctx(n, exposed, reach, &[], &[])), want);
        }
        let blind = [Condition {
            rule: "lockwatch.source.blind".into(),
            severity: High,
            message: "lockwatch has failed … Last error: connection refused".into(),
        }];
        let mut c = ctx(Notice::Alert(High), false, None, &blind, &[]);
        c.resource_id = "lockwatch/source/db";
        assert_eq!(
            subject(&c),
            "[lockwatch] HIGH lockwatch cannot see source db: connection refused"
        );
        c.notice = Notice::Resolved;
        assert_eq!(subject(&c), "[lockwatch] RESOLVED lockwatch can see source db again");
    }

    #[test]
    fn bodies_say_what_happened_and_what_to_do() {
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
        let r = render(&ctx(
            Notice::Alert(Severity::Critical),
            true,
            Some(Reach::Loopback),
            &new,
            &changes,
        ));
        assert!(
            r.text
                .starts_with("Protection of a/redis/h:1 (on a loopback-only server) was weakened."),
            "{}",
            r.text
        );
        assert!(
            r.text
                .contains("the password was removed (requirepass is empty) (weakened /requirepass_set: true → false)"),
            "the change in words, the field as a detail: {}",
            r.text
        );
        assert!(r.text.contains("[critical] redis.auth.disabled"));
        assert!(r.text.contains("Detected: 2023-11-14T22:13:20Z"));
        assert!(r.text.contains("baseline accept a/redis/h:1"));
        assert!(r.html.contains("no &lt;password&gt;"), "{}", r.html);
        assert!(!r.html.contains("<password>"));
        // First sight: nothing was weakened, it was found.
        let first = render(&ctx(Notice::Alert(Severity::Critical), true, None, &new, &[]));
        assert!(
            first
                .text
                .starts_with("a/redis/h:1 is reachable without authentication."),
            "{}",
            first.text
        );
        assert!(
            !first.text.contains("weakened") && !first.text.contains("baseline accept"),
            "{}",
            first.text
        );
        // An all-clear does not offer to approve anything, and says when it resolved.
        let resolved = render(&ctx(Notice::Resolved, false, None, &[], &[]));
        assert!(
            resolved.text.contains("Resolved at: 2023-11-14T22:13:20Z"),
            "{}",
            resolved.text
        );
        assert!(
            !resolved.text.contains("baseline accept") && !resolved.text.contains("Detected"),
            "{}",
            resolved.text
        );
        // A finding whose suppression ended is not "New".
        let reopened = ["redis.auth.disabled".to_string()];
        let mut c = ctx(Notice::Alert(Severity::Critical), true, None, &new, &[]);
        c.reopened = &reopened;
        let r = render(&c);
        assert!(
            r.text.contains("Suppression ended: alerting again:") && !r.text.contains("New:"),
            "{}",
            r.text
        );
    }
}
