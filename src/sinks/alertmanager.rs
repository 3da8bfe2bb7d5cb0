//! Alerts to Prometheus Alertmanager (API v2). Alertmanager holds an alert only while it is
//! re-sent, so this is a state sync rather than a message sink: after every committed cycle, and
//! every `resend` in between, lockwatch posts every open alert (with `endsAt` a few resends
//! ahead) and every alert resolved recently (with its `endsAt`), to every member of the cluster.
//! Two daemons that watch the same sources post the same label sets, so an Alertmanager cluster
//! deduplicates them: one notification per incident, and either daemon alone still pages.

use crate::alerting::OpenAlert;
use crate::metrics::Metrics;
use crate::model::{Severity, Suppression};
use crate::store::Store;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// `[alerts.alertmanager]`, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Every member of the cluster (`http://host:9093`); alerts go to all of them.
    pub urls: Vec<url::Url>,
    pub timeout: Duration,
    /// How often open alerts are re-posted (well inside Alertmanager's `resolve_timeout`).
    pub resend: Duration,
}

/// An alert resolved at `resolved_at`.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub resource_id: String,
    pub rule: String,
    pub severity: Severity,
    pub message: String,
    pub opened_at: i64,
    pub resolved_at: i64,
}

fn rfc3339(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// `source/kind/native` → (source, kind); lockwatch's own resources are `lockwatch/source/<name>`.
fn source_and_kind(resource_id: &str) -> (&str, &str) {
    let mut it = resource_id.splitn(3, '/');
    (it.next().unwrap_or(""), it.next().unwrap_or(""))
}

fn alert(resource_id: &str, rule: &str, severity: Severity, message: &str, starts: i64, ends: i64) -> Value {
    let (source, kind) = source_and_kind(resource_id);
    let summary = format!("{} {rule} on {resource_id}", severity.as_str().to_uppercase());
    json!({
        "labels": {
            "alertname": rule,
            "severity": severity.as_str(),
            "resource": resource_id,
            "source": source,
            "kind": kind,
        },
        "annotations": {
            "summary": summary,
            "description": message,
            "runbook": format!("lockwatch history {resource_id}; lockwatch baseline accept {resource_id} if the change was deliberate"),
        },
        "startsAt": rfc3339(starts),
        "endsAt": rfc3339(ends),
    })
}

/// The body of one post: every open alert at or above `min_severity` that no active suppression
/// covers, ending `hold` seconds from `now` unless re-sent; and every recent resolution. Pure.
pub fn payload(
    open: &HashMap<String, Vec<OpenAlert>>,
    resolved: &[Resolved],
    suppressions: &[Suppression],
    min_severity: Severity,
    now: i64,
    hold: i64,
) -> Vec<Value> {
    let suppressed = |res: &str, rule: &str| {
        suppressions
            .iter()
            .any(|s| s.resource_id == res && s.rule == rule && s.ended_at.is_none() && s.expires_at > now)
    };
    let mut out = Vec::new();
    let mut ids: Vec<&String> = open.keys().collect();
    ids.sort();
    for res in ids {
        for a in &open[res] {
            if a.severity >= min_severity && !suppressed(res, &a.rule) {
                out.push(alert(res, &a.rule, a.severity, &a.message, a.opened_at, now + hold));
            }
        }
    }
    for r in resolved {
        if r.severity >= min_severity {
            out.push(alert(
                &r.resource_id,
                &r.rule,
                r.severity,
                &r.message,
                r.opened_at,
                r.resolved_at,
            ));
        }
    }
    out
}

/// Post the current state to every member; `Ok(n)` members took it. Errors say which member
/// failed and why.
async fn post(http: &reqwest::Client, s: &Settings, body: &[Value]) -> (usize, Vec<String>) {
    let mut ok = 0;
    let mut errors = Vec::new();
    for u in &s.urls {
        let endpoint = match u.join("api/v2/alerts") {
            Ok(e) => e,
            Err(e) => {
                errors.push(format!("{u}: {e}"));
                continue;
            }
        };
        match http.post(endpoint.clone()).json(body).send().await {
            Ok(r) if r.status().is_success() => ok += 1,
            Ok(r) => {
                let status = r.status();
                let text = r.text().await.unwrap_or_default();
                errors.push(format!("{endpoint} answered {status}: {}", text.trim()));
            }
            Err(e) => errors.push(format!("{endpoint}: {e}")),
        }
    }
    (ok, errors)
}

/// Keeps Alertmanager in step with the store: wakes after each committed cycle (`wake`) and
/// every `resend`. Resolutions are posted for `resend × 5` after they happen, so a member that
/// was down for a while still learns of them.
pub async fn sync_worker(
    store: Store,
    settings: watch::Receiver<Option<(Settings, Severity)>>,
    metrics: Arc<Metrics>,
    wake: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let mut failing = false;
    loop {
        let current = settings.borrow().clone();
        let resend = current
            .as_ref()
            .map(|(s, _)| s.resend)
            .unwrap_or(Duration::from_secs(60));
        if let Some((s, min_severity)) = current {
            let now = chrono::Utc::now().timestamp();
            let window = (s.resend.as_secs() as i64 * 5).max(300);
            let state = store
                .load_open_alerts()
                .and_then(|open| Ok((open, store.resolved_since(now - window)?, store.suppressions(false)?)));
            match state {
                Ok((open, resolved, suppressions)) => {
                    let body = payload(
                        &open,
                        &resolved,
                        &suppressions,
                        min_severity,
                        now,
                        (s.resend.as_secs() as i64 * 3).max(180),
                    );
                    let http = reqwest::Client::builder().timeout(s.timeout).build();
                    let (ok, errors) = match http {
                        Ok(http) => post(&http, &s, &body).await,
                        Err(e) => (0, vec![format!("building the HTTP client: {e}")]),
                    };
                    metrics.alertmanager_posts.with_label_values(&["ok"]).inc_by(ok as u64);
                    metrics
                        .alertmanager_posts
                        .with_label_values(&["failed"])
                        .inc_by(errors.len() as u64);
                    // Logged when it starts failing and when it recovers, not every time.
                    if ok == 0 && !failing {
                        failing = true;
                        tracing::error!(errors = %errors.join("; "), "no Alertmanager took the alerts; retrying every resend interval");
                    } else if ok > 0 && failing {
                        failing = false;
                        tracing::info!(members = ok, "Alertmanager takes the alerts again");
                    } else if ok > 0 && !errors.is_empty() {
                        tracing::debug!(errors = %errors.join("; "), "some Alertmanager members did not take the alerts");
                    }
                }
                Err(e) => tracing::error!(error = %format!("{e:#}"), "cannot read the alert state for Alertmanager"),
            }
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(resend) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(rule: &str, severity: Severity) -> OpenAlert {
        OpenAlert {
            rule: rule.into(),
            severity,
            message: format!("{rule} is open"),
            opened_at: 1_000,
            last_notified_at: 1_000,
            flapping: false,
            clear_cycles: 0,
        }
    }

    #[test]
    fn payload_table() {
        let mut state = HashMap::new();
        state.insert(
            "cache/redis/127.0.0.1:6379".to_string(),
            vec![
                open("redis.auth.disabled", Severity::Critical),
                open("redis.listen.wide", Severity::Low),
                open("drift.weakened", Severity::High),
            ],
        );
        let resolved = vec![Resolved {
            resource_id: "lockwatch/source/prod".into(),
            rule: "lockwatch.source.blind".into(),
            severity: Severity::High,
            message: "blind".into(),
            opened_at: 900,
            resolved_at: 1_500,
        }];
        let suppressed = vec![Suppression {
            id: 1,
            resource_id: "cache/redis/127.0.0.1:6379".into(),
            rule: "drift.weakened".into(),
            reason: "migration".into(),
            granted_at: 1_000,
            expires_at: 10_000,
            posture_hash: String::new(),
            finding_hash: None,
            ended_at: None,
            end_reason: None,
        }];
        let body = payload(&state, &resolved, &suppressed, Severity::Medium, 2_000, 180);
        let got: Vec<(&str, &str, &str, &str, &str)> = body
            .iter()
            .map(|a| {
                (
                    a["labels"]["alertname"].as_str().unwrap(),
                    a["labels"]["severity"].as_str().unwrap(),
                    a["labels"]["source"].as_str().unwrap(),
                    a["labels"]["kind"].as_str().unwrap(),
                    a["endsAt"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                // Low is below min_severity; the suppressed drift is not posted.
                (
                    "redis.auth.disabled",
                    "critical",
                    "cache",
                    "redis",
                    "1970-01-01T00:36:20Z"
                ),
                (
                    "lockwatch.source.blind",
                    "high",
                    "lockwatch",
                    "source",
                    "1970-01-01T00:25:00Z"
                ),
            ]
        );
        assert_eq!(body[0]["startsAt"], "1970-01-01T00:16:40Z");
        assert_eq!(body[0]["labels"]["resource"], "cache/redis/127.0.0.1:6379");
        assert_eq!(body[0]["annotations"]["description"], "redis.auth.disabled is open");
        assert!(payload(&HashMap::new(), &[], &[], Severity::Low, 0, 180).is_empty());
    }
}
