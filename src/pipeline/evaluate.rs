//! Stage 3, evaluate: posture → findings, and baseline → current → classified changes. Pure.

use crate::diff;
use crate::model::{Change, ChangeClass, Finding, Severity};
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
}

pub const ASSESS_ERROR_RULE: &str = "lockwatch.assess.error";

pub fn evaluate(kind: &str, baseline: &Value, current: &Value) -> Evaluation {
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
