//! The per-(resource, rule) alert state machine. Pure; no I/O.
//!
//! closed → open (alert email) → open, reminded every `remind_every` → resolved (resolved email).
//! A rule that gets more severe while open is announced again; one that gets less severe, or
//! whose message changes, is updated silently.

use crate::model::Severity;
use crate::pipeline::evaluate::Evaluation;

pub const DRIFT_RULE: &str = "drift.weakened";

/// Something that should be alerting on a resource right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub rule: String,
    pub severity: Severity,
    pub message: String,
}

/// An alert that is open in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenAlert {
    pub rule: String,
    pub severity: Severity,
    pub message: String,
    pub opened_at: i64,
    pub last_notified_at: i64,
    /// Opened and resolved too often in the last hour: held open until stable.
    pub flapping: bool,
    /// Cycles in a row its condition has been absent while held open as flapping.
    pub clear_cycles: u32,
}

impl OpenAlert {
    pub fn as_condition(&self) -> Condition {
        Condition {
            rule: self.rule.clone(),
            severity: self.severity,
            message: self.message.clone(),
        }
    }
}

/// A condition's identity for a suppression: a suppression granted for it holds while the
/// finding says the same thing, whatever else in the posture changes.
pub fn condition_hash(c: &Condition) -> String {
    crate::model::document_hash(&format!("{}\u{1f}{}\u{1f}{}", c.rule, c.severity.as_str(), c.message))
}

/// Which email a resource gets this cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// New or escalated conditions, at this severity.
    Alert(Severity),
    /// Nothing new; open conditions are due a reminder.
    Reminder(Severity),
    /// Every condition went away.
    Resolved,
    /// Some conditions went away, others are still open at this severity: never titled RESOLVED.
    PartlyResolved(Severity),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub opened: Vec<Condition>,
    pub escalated: Vec<Condition>,
    /// Still active, severity lowered or message changed: update without an email.
    pub updated: Vec<Condition>,
    pub resolved: Vec<OpenAlert>,
    /// Open, unchanged (whether or not a reminder is due).
    pub still_open: Vec<OpenAlert>,
    pub notice: Option<Notice>,
}

/// Conditions from one evaluation: findings at or above `min`, and the drift against baseline.
pub fn conditions(eval: &Evaluation, min: Severity) -> Vec<Condition> {
    let mut out: Vec<Condition> = eval
        .findings
        .iter()
        .filter(|f| f.severity >= min)
        .map(|f| Condition {
            rule: f.rule.clone(),
            severity: f.severity,
            message: f.message.clone(),
        })
        .collect();
    if let Some(sev) = eval.drift.filter(|s| *s >= min) {
        let weakened: Vec<String> = eval
            .changes
            .iter()
            .filter(|c| c.severity.is_some())
            .map(|c| {
                format!(
                    "{}: {} → {}",
                    c.path,
                    crate::pipeline::evaluate::show_value(&c.before),
                    crate::pipeline::evaluate::show_value(&c.after)
                )
            })
            .collect();
        out.push(Condition {
            rule: DRIFT_RULE.into(),
            severity: sev,
            message: format!(
                "Protection weakened against the approved baseline: {}.",
                weakened.join("; ")
            ),
        });
    }
    // One condition per rule: the most severe wins.
    out.sort_by(|a, b| a.rule.cmp(&b.rule).then(b.severity.cmp(&a.severity)));
    out.dedup_by(|a, b| a.rule == b.rule);
    out
}

pub fn plan(active: &[Condition], open: &[OpenAlert], now: i64, remind_every_secs: i64) -> Plan {
    plan_with(active, open, now, remind_every_secs, &[])
}

/// Like [`plan`], with some rules suppressed: their alerts open, stay open and resolve as usual,
/// but they never cause an alert or reminder email by themselves.
pub fn plan_with(
    active: &[Condition],
    open: &[OpenAlert],
    now: i64,
    remind_every_secs: i64,
    suppressed: &[String],
) -> Plan {
    let loud = |rule: &str| !suppressed.iter().any(|s| s == rule);
    let mut p = Plan::default();
    for c in active {
        match open.iter().find(|o| o.rule == c.rule) {
            None => p.opened.push(c.clone()),
            Some(o) if c.severity > o.severity => p.escalated.push(c.clone()),
            Some(o) if c.severity != o.severity || c.message != o.message => p.updated.push(c.clone()),
            Some(o) => p.still_open.push(o.clone()),
        }
    }
    for o in open {
        if !active.iter().any(|c| c.rule == o.rule) {
            p.resolved.push(o.clone());
        }
    }
    let new_sev = p
        .opened
        .iter()
        .chain(&p.escalated)
        .filter(|c| loud(&c.rule))
        .map(|c| c.severity)
        .max();
    let reminder_due = p
        .still_open
        .iter()
        .chain(open.iter().filter(|o| p.updated.iter().any(|u| u.rule == o.rule)))
        .filter(|o| loud(&o.rule))
        .any(|o| now - o.last_notified_at >= remind_every_secs);
    p.notice = if let Some(s) = new_sev {
        Some(Notice::Alert(s))
    } else if !p.resolved.is_empty() {
        // Still-open rules, suppressed or not, keep the subject from saying RESOLVED.
        match p
            .still_open
            .iter()
            .map(|o| o.severity)
            .chain(p.updated.iter().map(|c| c.severity))
            .max()
        {
            Some(s) => Some(Notice::PartlyResolved(s)),
            None => Some(Notice::Resolved),
        }
    } else if reminder_due {
        let worst = p
            .still_open
            .iter()
            .filter(|o| loud(&o.rule))
            .map(|o| o.severity)
            .chain(p.updated.iter().filter(|c| loud(&c.rule)).map(|c| c.severity))
            .max();
        worst.map(Notice::Reminder)
    } else {
        None
    };
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(rule: &str, sev: Severity) -> Condition {
        Condition {
            rule: rule.into(),
            severity: sev,
            message: format!("{rule} msg"),
        }
    }
    fn open(rule: &str, sev: Severity, notified: i64) -> OpenAlert {
        OpenAlert {
            rule: rule.into(),
            severity: sev,
            message: format!("{rule} msg"),
            opened_at: 0,
            last_notified_at: notified,
            flapping: false,
            clear_cycles: 0,
        }
    }
    use Severity::*;

    #[test]
    fn table() {
        const H4: i64 = 4 * 3600;
        let cases: Vec<(
            &str,
            Vec<Condition>,
            Vec<OpenAlert>,
            i64,
            Option<Notice>,
            (usize, usize, usize, usize),
        )> = vec![
            ("quiet", vec![], vec![], 100, None, (0, 0, 0, 0)),
            (
                "opens",
                vec![cond("a", Critical)],
                vec![],
                100,
                Some(Notice::Alert(Critical)),
                (1, 0, 0, 0),
            ),
            (
                "stays open, no reminder yet",
                vec![cond("a", Critical)],
                vec![open("a", Critical, 100)],
                200,
                None,
                (0, 0, 0, 1),
            ),
            (
                "reminder due",
                vec![cond("a", High)],
                vec![open("a", High, 0)],
                H4,
                Some(Notice::Reminder(High)),
                (0, 0, 0, 1),
            ),
            (
                "resolves",
                vec![],
                vec![open("a", Critical, 0)],
                10,
                Some(Notice::Resolved),
                (0, 0, 1, 0),
            ),
            (
                "escalates",
                vec![cond("a", Critical)],
                vec![open("a", High, 0)],
                10,
                Some(Notice::Alert(Critical)),
                (0, 1, 0, 0),
            ),
            (
                "de-escalates silently",
                vec![cond("a", Medium)],
                vec![open("a", High, 5)],
                10,
                None,
                (0, 0, 0, 0),
            ),
            (
                "new rule beside an open one: alert at the new severity",
                vec![cond("a", Critical), cond("b", Medium)],
                vec![open("a", Critical, 5)],
                10,
                Some(Notice::Alert(Medium)),
                (1, 0, 0, 1),
            ),
            (
                "one resolves, one opens: alert wins, resolved listed",
                vec![cond("b", High)],
                vec![open("a", Critical, 5)],
                10,
                Some(Notice::Alert(High)),
                (1, 0, 1, 0),
            ),
        ];
        for (name, active, opened, now, notice, (o, e, r, s)) in cases {
            let p = plan(&active, &opened, now, H4);
            assert_eq!(p.notice, notice, "case: {name}");
            assert_eq!(
                (p.opened.len(), p.escalated.len(), p.resolved.len(), p.still_open.len()),
                (o, e, r, s),
                "case: {name}: {p:#?}"
            );
        }
    }

    #[test]
    fn a_partial_resolution_is_not_an_all_clear() {
        let p = plan(
            &[cond("b", High)],
            &[open("a", Critical, 5), open("b", High, 5)],
            10,
            4 * 3600,
        );
        assert_eq!(p.notice, Some(Notice::PartlyResolved(High)));
        assert_eq!(p.resolved.len(), 1);
    }

    #[test]
    fn suppressed_rules_are_silent_but_tracked() {
        const H4: i64 = 4 * 3600;
        let sup = vec!["a".to_string()];
        let cases: Vec<(&str, Vec<Condition>, Vec<OpenAlert>, i64, Option<Notice>, usize)> = vec![
            (
                "suppressed rule opens silently",
                vec![cond("a", Critical)],
                vec![],
                10,
                None,
                1,
            ),
            (
                "no reminder for it",
                vec![cond("a", Critical)],
                vec![open("a", Critical, 0)],
                H4,
                None,
                0,
            ),
            (
                "a loud rule beside it still alerts",
                vec![cond("a", Critical), cond("b", Medium)],
                vec![],
                10,
                Some(Notice::Alert(Medium)),
                2,
            ),
            (
                "it still resolves, with an email",
                vec![],
                vec![open("a", Critical, 0)],
                10,
                Some(Notice::Resolved),
                0,
            ),
            (
                "escalation is silent too",
                vec![cond("a", Critical)],
                vec![open("a", High, 0)],
                10,
                None,
                0,
            ),
        ];
        for (name, active, opened, now, notice, n_opened) in cases {
            let p = plan_with(&active, &opened, now, H4, &sup);
            assert_eq!((p.notice, p.opened.len()), (notice, n_opened), "case: {name}");
        }
    }

    #[test]
    fn conditions_filter_and_drift() {
        use crate::model::{Change, ChangeClass, Finding};
        let eval = Evaluation {
            stale: vec![],
            unreadable: false,
            pending: vec![],
            reach: None,
            findings: vec![
                Finding::new("x.low", Low, false, "l"),
                Finding::new("x.crit", Critical, true, "c"),
            ],
            changes: vec![Change {
                path: "/ssl".into(),
                before: serde_json::json!(true),
                after: serde_json::json!(false),
                class: ChangeClass::Weakened,
                severity: Some(High),
            }],
            exposed: true,
            drift: Some(Critical),
        };
        let got: Vec<(String, Severity)> = conditions(&eval, Medium)
            .into_iter()
            .map(|c| (c.rule, c.severity))
            .collect();
        assert_eq!(
            got,
            vec![(DRIFT_RULE.to_string(), Critical), ("x.crit".to_string(), Critical)]
        );
        assert!(conditions(&eval, Medium)[0].message.contains("/ssl: true → false"));
    }
}
