//! The status page on the metrics listener: `GET /` (open alerts, sources) and
//! `GET /resource/<id>` (a resource's timeline). Read-only, plain HTML, no JavaScript, every
//! value escaped; rendering is pure (`index_html`, `resource_html`), the handlers only read the
//! store.

use crate::alerting::OpenAlert;
use crate::mail::esc;
use crate::pipeline::evaluate::{self, show_value};
use crate::store::{SnapshotRow, Store};
use std::collections::HashMap;
use std::fmt::Write;

const STYLE: &str = "body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse}\
td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}\
.critical{background:#fdd}.high{background:#fed}.medium{background:#ffd}";

/// One source as the page shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceRow {
    pub name: String,
    pub consecutive_failures: u32,
    pub last_error: String,
    /// Unix time of the last successful collection, when there was one since start-up.
    pub last_success: Option<i64>,
}

fn ts(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| secs.to_string())
}

fn age(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        s if s >= 86_400 => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
        s if s >= 3600 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        s if s >= 60 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// A resource id as a path segment of `/resource/…` (percent-encoded; `/` kept).
fn link(id: &str) -> String {
    let mut out = String::new();
    for b in id.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' | b':' => out.push(b as char),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    format!("/resource/{out}")
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>{body}</body></html>",
        esc(title)
    )
}

/// `GET /`: every open alert (most severe and oldest first) and every source. Pure.
pub fn index_html(open: &HashMap<String, Vec<OpenAlert>>, sources: &[SourceRow], now: i64) -> String {
    let mut rows: Vec<(&String, &OpenAlert)> = open.iter().flat_map(|(id, v)| v.iter().map(move |a| (id, a))).collect();
    rows.sort_by(|a, b| {
        b.1.severity
            .cmp(&a.1.severity)
            .then(a.1.opened_at.cmp(&b.1.opened_at))
            .then(a.0.cmp(b.0))
            .then(a.1.rule.cmp(&b.1.rule))
    });
    let mut b = String::from("<h1>lockwatch</h1>");
    let _ = write!(b, "<h2>Open alerts ({})</h2>", rows.len());
    if rows.is_empty() {
        b.push_str("<p>No open alerts.</p>");
    } else {
        b.push_str("<table><tr><th>severity</th><th>open for</th><th>resource</th><th>rule</th><th>why</th></tr>");
        for (id, a) in rows {
            let sev = a.severity.as_str();
            let _ = write!(
                b,
                "<tr class=\"{sev}\"><td>{}</td><td title=\"since {}\">{}</td><td><a href=\"{}\">{}</a></td><td>{}</td><td>{}</td></tr>",
                sev.to_uppercase(),
                ts(a.opened_at),
                age(now - a.opened_at),
                esc(&link(id)),
                esc(id),
                esc(&a.rule),
                esc(&a.message)
            );
        }
        b.push_str("</table>");
    }
    b.push_str("<h2>Sources</h2><table><tr><th>source</th><th>last success (start-up until the first)</th><th>failures in a row</th><th>last error</th></tr>");
    for s in sources {
        let _ = write!(
            b,
            "<tr{}><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if s.consecutive_failures > 0 {
                " class=\"high\""
            } else {
                ""
            },
            esc(&s.name),
            s.last_success.map(ts).unwrap_or_else(|| "not since start-up".into()),
            s.consecutive_failures,
            esc(&s.last_error)
        );
    }
    b.push_str("</table>");
    page("lockwatch", &b)
}

/// `GET /resource/<id>`: every stored snapshot with what changed, the baseline events and the
/// alerts. Pure.
pub fn resource_html(
    id: &str,
    kind: &str,
    snapshots: &[SnapshotRow],
    alerts: &[(String, String, i64, Option<i64>)],
) -> String {
    let mut b = format!(
        "<p><a href=\"/\">lockwatch</a></p><h1>{}</h1><p>kind {}</p>",
        esc(id),
        esc(kind)
    );
    b.push_str("<h2>Alerts</h2><table><tr><th>rule</th><th>severity</th><th>opened</th><th>resolved</th></tr>");
    for (rule, sev, opened, resolved) in alerts {
        let _ = write!(
            b,
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if resolved.is_none() { esc(sev) } else { String::new() },
            esc(rule),
            esc(sev),
            ts(*opened),
            resolved.map(ts).unwrap_or_else(|| "still open".into())
        );
    }
    b.push_str("</table><h2>Timeline</h2><table><tr><th>observed</th><th>snapshot</th><th>changes</th></tr>");
    let mut prev: Option<&serde_json::Value> = None;
    for s in snapshots {
        let changes = match prev {
            None => "first seen".to_string(),
            Some(p) => evaluate::evaluate(kind, p, &s.document)
                .changes
                .iter()
                .map(|c| {
                    format!(
                        "{} {}: {} → {}",
                        c.class.as_str(),
                        esc(&c.path),
                        esc(&show_value(&c.before)),
                        esc(&show_value(&c.after))
                    )
                })
                .collect::<Vec<_>>()
                .join("<br>"),
        };
        let _ = write!(
            b,
            "<tr><td>{}</td><td><code>{}</code></td><td>{changes}</td></tr>",
            ts(s.observed_at),
            esc(&s.hash[..12.min(s.hash.len())])
        );
        prev = Some(&s.document);
    }
    b.push_str("</table>");
    page(id, &b)
}

/// What `GET /` needs, read from the store; `last_success` comes from the metrics.
pub fn index(store: &Store, last_success: impl Fn(&str) -> Option<i64>, now: i64) -> anyhow::Result<String> {
    let open = store.load_open_alerts()?;
    let mut sources: Vec<SourceRow> = store
        .source_failures()?
        .into_iter()
        .map(|(name, (failures, error))| SourceRow {
            last_success: last_success(&name),
            name,
            consecutive_failures: failures,
            last_error: error,
        })
        .collect();
    sources.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(index_html(&open, &sources, now))
}

/// What `GET /resource/<id>` needs; `None` for a resource the store does not know.
pub fn resource(store: &Store, id: &str) -> anyhow::Result<Option<String>> {
    let known = store.load_known()?;
    let Some(k) = known.get(id) else { return Ok(None) };
    Ok(Some(resource_html(
        id,
        &k.kind,
        &store.snapshots(id)?,
        &store.alert_history(id)?,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Severity;
    use serde_json::json;

    #[test]
    fn the_index_lists_open_alerts_worst_first_and_escapes_everything() {
        let alert = |rule: &str, severity, opened_at, message: &str| OpenAlert {
            rule: rule.into(),
            severity,
            message: message.into(),
            opened_at,
            last_notified_at: opened_at,
            flapping: false,
            clear_cycles: 0,
        };
        let mut open = HashMap::new();
        open.insert(
            "cache/redis/127.0.0.1:6379".to_string(),
            vec![alert("redis.listen.wide", Severity::Low, 100, "wide")],
        );
        open.insert(
            "prod/opensearch/1/us-east-1/<script>alert(1)</script>".to_string(),
            vec![alert(
                "opensearch.policy.public",
                Severity::Critical,
                3_000,
                "\"Principal\": \"*\" & <b>",
            )],
        );
        let sources = vec![SourceRow {
            name: "prod".into(),
            consecutive_failures: 2,
            last_error: "timed out <again>".into(),
            last_success: None,
        }];
        let html = index_html(&open, &sources, 3_600 + 3_000);
        assert!(
            !html.contains("<script>") && !html.contains("<b>") && !html.contains("<again>"),
            "{html}"
        );
        let critical = html.find("CRITICAL").unwrap();
        let low = html.find("LOW").unwrap();
        assert!(critical < low, "worst first");
        assert!(
            html.contains("<td title=\"since 1970-01-01T00:50:00Z\">1h 0m</td>"),
            "{html}"
        );
        assert!(
            html.contains("href=\"/resource/prod/opensearch/1/us-east-1/%3Cscript%3Ealert%281%29%3C/script%3E\""),
            "{html}"
        );
        assert!(
            html.contains("&quot;Principal&quot;: &quot;*&quot; &amp; &lt;b&gt;"),
            "{html}"
        );
        assert!(
            html.contains("Open alerts (2)") && html.contains("not since start-up"),
            "{html}"
        );
        assert!(index_html(&HashMap::new(), &[], 0).contains("No open alerts."));
    }

    #[test]
    fn a_resource_page_shows_its_timeline() {
        let snap = |id, observed_at, doc| SnapshotRow {
            id,
            hash: format!("{id:064}"),
            document: doc,
            observed_at,
        };
        let safe = crate::sources::resource_kind("redis").map(|k| (k.samples)()).unwrap();
        let html = resource_html(
            "cache/redis/127.0.0.1:6379",
            "redis",
            &[snap(1, 0, safe.safe.clone()), snap(2, 60, safe.exposed.clone())],
            &[("redis.auth.disabled".into(), "critical".into(), 60, None)],
        );
        assert!(html.contains("first seen"), "{html}");
        assert!(html.contains("weakened /requirepass_set: true → false"), "{html}");
        assert!(html.contains("still open"), "{html}");
        let _ = json!({});
    }
}
