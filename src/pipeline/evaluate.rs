//! Stage 3, evaluate: posture → findings, and baseline → current → classified changes. Pure.

use crate::diff;
use crate::model::{Change, ChangeClass, Finding, Severity, VISIBILITY_KEY, Visibility};
use crate::net::Reach;
use crate::sources::{self, FieldChange};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub findings: Vec<Finding>,
    /// How far the resource can be reached from, when its kind knows.
    pub reach: Option<Reach>,
    /// Every field that differs from the baseline, classified.
    pub changes: Vec<Change>,
    /// Reachable without authentication now.
    pub exposed: bool,
    /// Severity of the weakening against the baseline, if any: critical when the resource is
    /// now exposed, else the worst weakened change.
    pub drift: Option<Severity>,
    /// Fields whose last known value stands in for one lockwatch cannot read now: while any
    /// is, no alert of the resource resolves.
    pub stale: Vec<String>,
    /// Some field could not be read (stale or never read).
    pub unreadable: bool,
    /// Why a field's new value is not in force yet (pending), one sentence each.
    pub pending: Vec<String>,
}

/// The rule lockwatch opens on a resource when it cannot read part of its posture.
pub fn visibility_rule(kind: &str) -> String {
    format!("{kind}.visibility.lost")
}

/// A document without its visibility record, and the record.
fn split_visibility(doc: &Value) -> (std::borrow::Cow<'_, Value>, Vec<(String, Visibility)>) {
    match doc.get(VISIBILITY_KEY) {
        None => (std::borrow::Cow::Borrowed(doc), vec![]),
        Some(v) => {
            let vis: std::collections::BTreeMap<String, Visibility> =
                serde_json::from_value(v.clone()).unwrap_or_default();
            let mut clean = doc.clone();
            if let Some(o) = clean.as_object_mut() {
                o.remove(VISIBILITY_KEY);
            }
            (std::borrow::Cow::Owned(clean), vis.into_iter().collect())
        }
    }
}

fn ts(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| secs.to_string())
}

/// Losing sight of a field is itself a finding: high when a value read before now stands in
/// for it (alerts that rest on it are held open), medium when it was never read.
fn visibility_finding(kind: &str, vis: &[(String, Visibility)]) -> Option<Finding> {
    let vis: Vec<&(String, Visibility)> = vis.iter().filter(|(_, v)| !v.pending).collect();
    if vis.is_empty() {
        return None;
    }
    let stale = vis.iter().any(|(_, v)| v.stale);
    let lines: Vec<String> = vis
        .iter()
        .map(|(field, v)| {
            if v.stale {
                format!(
                    "lockwatch can no longer read {field} (since {}): {}. Its last known value is kept, and alerts that rest on it stay open. Fix: {}",
                    ts(v.since),
                    v.why,
                    v.fix
                )
            } else {
                format!(
                    "lockwatch cannot read {field} (since {}): {}, so it cannot tell whether it is protected. Fix: {}",
                    ts(v.since),
                    v.why,
                    v.fix
                )
            }
        })
        .collect();
    Some(Finding::new(
        &visibility_rule(kind),
        if stale { Severity::High } else { Severity::Medium },
        false,
        lines.join(" "),
    ))
}

pub const ASSESS_ERROR_RULE: &str = "lockwatch.assess.error";

pub fn evaluate(kind: &str, baseline: &Value, current: &Value) -> Evaluation {
    let (current, visibility) = split_visibility(current);
    let (baseline, _) = split_visibility(baseline);
    let mut e = evaluate_clean(kind, &baseline, &current);
    e.findings.extend(visibility_finding(kind, &visibility));
    e.unreadable = !visibility.is_empty();
    e.pending = visibility
        .iter()
        .filter(|(_, v)| v.pending)
        .map(|(_, v)| format!("{} ({})", v.why, v.fix))
        .collect();
    e.stale = visibility
        .into_iter()
        .filter(|(_, v)| v.stale)
        .map(|(f, _)| f)
        .collect();
    e
}

fn evaluate_clean(kind: &str, baseline: &Value, current: &Value) -> Evaluation {
    let Some(rk) = sources::resource_kind(kind) else {
        return Evaluation {
            findings: vec![Finding::new(
                ASSESS_ERROR_RULE,
                Severity::Low,
                false,
                format!(
                    "lockwatch has no rules for resource kind {kind:?}; is this binary older than the state it reads?"
                ),
            )],
            reach: None,
            changes: vec![],
            exposed: false,
            drift: None,
            stale: vec![],
            unreadable: false,
            pending: vec![],
        };
    };
    let assessment = (rk.assess)(current).unwrap_or_else(|e| sources::Assessment {
        findings: vec![Finding::new(
            ASSESS_ERROR_RULE,
            Severity::Low,
            false,
            format!("cannot assess this {kind} posture: {e}"),
        )],
        reach: None,
    });
    let findings = assessment.findings;
    let exposed = findings.iter().any(|f| f.exposed);
    let changes: Vec<Change> = diff::diff(baseline, current)
        .into_iter()
        .map(|d| {
            let c = (rk.classify)(&FieldChange {
                path: &d.path,
                before: &d.before,
                after: &d.after,
                before_doc: baseline,
                after_doc: current,
            });
            Change {
                path: d.path,
                before: d.before,
                after: d.after,
                class: c.class,
                severity: (c.class == ChangeClass::Weakened).then_some(c.severity),
            }
        })
        .collect();
    let worst = changes.iter().filter_map(|c| c.severity).max();
    let drift = worst.map(|w| if exposed { Severity::Critical } else { w });
    Evaluation {
        findings,
        reach: assessment.reach,
        changes,
        exposed,
        drift,
        stale: vec![],
        unreadable: false,
        pending: vec![],
    }
}

impl Evaluation {
    /// The evaluation of a resource that is gone: nothing to say about it any more.
    pub fn gone() -> Self {
        Evaluation {
            findings: vec![],
            reach: None,
            changes: vec![],
            exposed: false,
            drift: None,
            stale: vec![],
            unreadable: false,
            pending: vec![],
        }
    }
}

/// Render a JSON value for humans in one line: strings without quotes, `null` as "(absent)".
pub fn show_value(v: &Value) -> String {
    match v {
        Value::Null => "(absent)".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn redis(probe: &str, pass: bool, scope: &str) -> Value {
        json!({"unauthenticated_probe": probe, "requirepass_set": pass, "acl_nopass_users": if pass { json!([]) } else { json!(["default"]) },
               "protected_mode": true, "bind": ["127.0.0.1"], "listen_scope": scope, "tls_port": 0, "version": "7"})
    }

    #[test]
    fn table() {
        let cases: Vec<(&str, Value, Value, bool, Option<Severity>, usize)> = vec![
            (
                "unchanged",
                redis("auth_required", true, "loopback"),
                redis("auth_required", true, "loopback"),
                false,
                None,
                0,
            ),
            (
                "password removed → exposed → critical",
                redis("auth_required", true, "loopback"),
                redis("accepted", false, "loopback"),
                true,
                Some(Severity::Critical),
                3,
            ),
            (
                "listener widened, still protected → medium",
                redis("auth_required", true, "loopback"),
                redis("auth_required", true, "all_interfaces"),
                false,
                Some(Severity::Medium),
                1,
            ),
            (
                "restored → strengthened only",
                redis("accepted", false, "loopback"),
                redis("auth_required", true, "loopback"),
                false,
                None,
                3,
            ),
        ];
        for (name, base, cur, exposed, drift, n_changes) in cases {
            let e = evaluate("redis", &base, &cur);
            assert_eq!(
                (e.exposed, e.drift, e.changes.len()),
                (exposed, drift, n_changes),
                "case: {name}: {e:#?}"
            );
        }
    }

    #[test]
    fn unknown_kind_and_bad_document_are_findings_not_panics() {
        let e = evaluate("mongodb", &json!({}), &json!({}));
        assert_eq!(e.findings[0].rule, ASSESS_ERROR_RULE);
        let e = evaluate("redis", &json!({}), &json!({"garbage": [1, 2]}));
        assert_eq!(e.findings[0].rule, ASSESS_ERROR_RULE);
        assert!(!e.exposed);
    }
}
