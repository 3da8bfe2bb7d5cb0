//! Stage 4, decide: from evaluations and the alert state, what changes and who is told. The alert
//! state machine ([`crate::alerting`]), the suppression lifecycle and blindness, as pure
//! functions on plain data (no store, no clock, no I/O): table-tested below.

use super::evaluate::Evaluation;
use crate::alerting::{self, Condition, Notice, OpenAlert, Plan};
use crate::model::Suppression;
use crate::model::{Change, Severity};
use crate::net::Reach;
use std::collections::HashMap;

pub const BLIND_RULE: &str = "lockwatch.source.blind";

/// The alert subject for a source lockwatch cannot read.
pub fn blind_resource_id(source: &str) -> String {
    format!("lockwatch/source/{source}")
}

/// The settings decisions depend on.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub min_severity: Severity,
    pub remind_every_secs: i64,
    pub blind_after: u32,
    /// Openings within an hour that make a rule flapping (0: never).
    pub flap_after: u32,
}

/// One resource as evaluated this cycle.
#[derive(Debug, Clone)]
pub struct ResourceEval {
    pub id: String,
    pub source: String,
    pub kind: String,
    /// Hash of the current posture: suppressions are bound to it.
    pub hash: String,
    /// Vanished from its source's listing this cycle.
    pub gone: bool,
    pub eval: Evaluation,
    /// What got weaker since the previous cycle (not since the baseline): every weakening is
    /// announced, also while an alert is already open.
    pub weakened_now: Vec<Change>,
    /// What on-call was already told while its alerts are open (change keys).
    pub announced: Vec<String>,
}

/// Whether a source could be read, cycle after cycle.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    pub consecutive_failures: u32,
    pub last_error: String,
}

/// The health after one more cycle: a failure counts up, a success resets. Pure.
pub fn next_health(prev: &Health, failure: Option<&str>) -> Health {
    match failure {
        Some(e) => Health {
            consecutive_failures: prev.consecutive_failures + 1,
            last_error: e.to_string(),
        },
        None => Health::default(),
    }
}

/// What one resource (or one blind source) gets this cycle.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub resource_id: String,
    pub kind: String,
    pub plan: Plan,
    /// The open alerts the plan was made against.
    pub was_open: Vec<OpenAlert>,
    /// Sentences that open the email (a suppression ended, the resource vanished).
    pub notes: Vec<String>,
    /// Rules that alert again because their suppression ended (not "new").
    pub reopened: Vec<String>,
    /// About a watched resource (`baseline accept` applies), not about lockwatch itself.
    pub about_posture: bool,
    pub changes: Vec<Change>,
    /// Weakenings since the previous cycle announced while alerts were already open.
    pub further: Vec<Change>,
    /// Rules that opened now and are flapping: held open from now on.
    pub flapping: Vec<String>,
    /// (rule, cycles) of flapping alerts whose count of clear cycles changed.
    pub clearing: Vec<(String, u32)>,
    /// What on-call has been told after this cycle, when it changed.
    pub announced: Option<Vec<String>>,
    pub exposed: bool,
    pub reach: Option<Reach>,
}

/// A suppression that expired while its finding was already gone: one short notice.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpiryNotice {
    pub resource_id: String,
    pub kind: String,
    pub note: String,
}

#[derive(Debug, Default)]
pub struct Decisions {
    pub resources: Vec<Decision>,
    /// (suppression id, why it ended: "expired" or "posture changed")
    pub ended_suppressions: Vec<(i64, String)>,
    /// Alerts a suppression's end closes before the plan re-opens them loudly.
    pub resolved_by_suppression: Vec<(String, String)>,
    pub expiry_notices: Vec<ExpiryNotice>,
    pub suppressed_by_severity: HashMap<Severity, i64>,
    /// (source, severity) of each drift alert opened or escalated.
    pub drift_events: Vec<(String, Severity)>,
}

fn ts(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| secs.to_string())
}

/// The suppressions of one resource, reviewed against this cycle. Pure.
#[derive(Debug, Default, PartialEq)]
pub struct SuppressionReview {
    /// Rules still silenced.
    pub holding: Vec<String>,
    /// (suppression id, why it ended)
    pub ended: Vec<(i64, String)>,
    /// Rules whose open alert closes now, so that the finding alerts again, loudly.
    pub reopen: Vec<String>,
    /// Sentences for the email of a finding that alerts again.
    pub notes: Vec<String>,
    /// Sentences for a suppression that expired while its finding was already gone.
    pub expired_quietly: Vec<String>,
    /// Rules that alert again because their suppression ended.
    pub alerting_again: Vec<String>,
}

/// A suppression holds until it expires or the posture it was granted for changes; when it ends
/// and its finding is still there, the finding alerts again, saying why.
pub fn review_suppressions(
    sups: &[Suppression],
    active: &[Condition],
    open: &[OpenAlert],
    now: i64,
    posture_hash: &str,
    gone: bool,
) -> SuppressionReview {
    let mut r = SuppressionReview::default();
    for sup in sups {
        // Bound to its finding: it ends when the finding says something else (the posture may
        // change in unrelated ways). Older suppressions are bound to the whole posture.
        let changed = match (&sup.finding_hash, active.iter().find(|c| c.rule == sup.rule)) {
            _ if gone => true,
            (Some(h), Some(c)) => *h != alerting::condition_hash(c),
            (Some(_), None) => false,
            (None, _) => sup.posture_hash != posture_hash,
        };
        let ending = if now >= sup.expires_at {
            Some("expired")
        } else if changed {
            Some(if sup.finding_hash.is_some() {
                "finding changed"
            } else {
                "posture changed"
            })
        } else {
            None
        };
        let Some(why) = ending else {
            r.holding.push(sup.rule.clone());
            continue;
        };
        r.ended.push((sup.id, why.to_string()));
        let note = format!(
            "The suppression of {} granted {} (\"{}\") {}.",
            sup.rule,
            ts(sup.granted_at),
            sup.reason,
            match why {
                "expired" => format!("expired at {}", ts(sup.expires_at)),
                "finding changed" => "no longer applies: the finding changed since it was granted".to_string(),
                _ => "no longer applies: the resource changed since it was granted".to_string(),
            }
        );
        if active.iter().any(|c| c.rule == sup.rule) {
            if open.iter().any(|o| o.rule == sup.rule) {
                r.reopen.push(sup.rule.clone());
            }
            r.alerting_again.push(sup.rule.clone());
            r.notes.push(note);
        } else if why == "expired" {
            r.expired_quietly.push(note);
        }
    }
    r
}

/// Unknown is not safe: while some of a resource's evidence is stale, an open alert whose
/// finding went away stays open (it may have gone only because its evidence did). Returns the
/// rules held. Pure.
pub fn hold_while_stale(conds: &mut Vec<Condition>, open: &[OpenAlert], stale: &[String], gone: bool) -> Vec<String> {
    if stale.is_empty() || gone {
        return vec![];
    }
    let mut held = Vec::new();
    for o in open {
        if !conds.iter().any(|c| c.rule == o.rule) {
            conds.push(Condition {
                rule: o.rule.clone(),
                severity: o.severity,
                message: o.message.clone(),
            });
            held.push(o.rule.clone());
        }
    }
    held
}

/// A flapping alert is held open until its condition has been absent this many cycles in a row.
pub const STABLE_CYCLES: u32 = 3;

/// A flapping alert whose condition went away stays open until it has been absent for
/// [`STABLE_CYCLES`] cycles; one whose condition is back starts counting again. Returns the
/// new count of each flapping alert that changed. Pure.
pub fn hold_flapping(conds: &mut Vec<Condition>, open: &[OpenAlert]) -> Vec<(String, u32)> {
    let mut counts = Vec::new();
    for o in open.iter().filter(|o| o.flapping) {
        if conds.iter().any(|c| c.rule == o.rule) {
            if o.clear_cycles != 0 {
                counts.push((o.rule.clone(), 0));
            }
        } else if o.clear_cycles + 1 < STABLE_CYCLES {
            conds.push(Condition {
                rule: o.rule.clone(),
                severity: o.severity,
                message: o.message.clone(),
            });
            counts.push((o.rule.clone(), o.clear_cycles + 1));
        }
    }
    counts
}

/// Decide every resource's alerts and emails. Resources arrive sorted by id.
pub fn decide_resources(
    resources: &[ResourceEval],
    open: &HashMap<String, Vec<OpenAlert>>,
    suppressions: &HashMap<String, Vec<Suppression>>,
    recent_openings: &HashMap<String, HashMap<String, u32>>,
    policy: &Policy,
    now: i64,
) -> Decisions {
    let mut out = Decisions::default();
    for r in resources {
        let was_open = open.get(&r.id).map(Vec::as_slice).unwrap_or(&[]);
        let mut conds = alerting::conditions(&r.eval, policy.min_severity);
        let held = hold_while_stale(&mut conds, was_open, &r.eval.stale, r.gone);
        let clearing = if r.gone {
            vec![]
        } else {
            hold_flapping(&mut conds, was_open)
        };
        let sups = suppressions.get(&r.id).map(Vec::as_slice).unwrap_or(&[]);
        let review = review_suppressions(sups, &conds, was_open, now, &r.hash, r.gone);
        out.ended_suppressions.extend(review.ended.iter().cloned());
        let was_open: Vec<OpenAlert> = was_open
            .iter()
            .filter(|o| !review.reopen.contains(&o.rule))
            .cloned()
            .collect();
        out.resolved_by_suppression
            .extend(review.reopen.iter().map(|rule| (r.id.clone(), rule.clone())));
        out.expiry_notices
            .extend(review.expired_quietly.into_iter().map(|note| ExpiryNotice {
                resource_id: r.id.clone(),
                kind: r.kind.clone(),
                note,
            }));
        for f in r.eval.findings.iter().filter(|f| review.holding.contains(&f.rule)) {
            *out.suppressed_by_severity.entry(f.severity).or_default() += 1;
        }
        let mut plan = alerting::plan_with(&conds, &was_open, now, policy.remind_every_secs, &review.holding);
        let new_weakness: Vec<Change> = r
            .weakened_now
            .iter()
            .filter(|c| !r.announced.contains(&change_key(c)))
            .cloned()
            .collect();
        let further = further_weakening(
            &mut plan,
            &new_weakness,
            &was_open,
            &review.holding,
            policy.min_severity,
        );
        let mut announced = told(&r.announced, &plan, &r.eval.changes, &r.weakened_now);
        // A fix that is not in force yet keeps the alerts open; on-call hears why, once, when it
        // is still so a cycle later (an edit reloaded a moment later is no news).
        let (pending_told, pending_keys) = pending_to_tell(&r.eval.pending, &r.announced);
        let loud_open = was_open
            .iter()
            .filter(|o| !review.holding.contains(&o.rule))
            .map(|o| o.severity)
            .max();
        let pending_note = match (loud_open, pending_told.is_empty()) {
            (Some(sev), false) if plan.notice.is_none() => Some(sev),
            _ => None,
        };
        if let Some(sev) = pending_note {
            plan.notice = Some(Notice::Reminder(sev));
        }
        if loud_open.is_some() && !pending_keys.is_empty() {
            let mut keys = announced.clone().unwrap_or_else(|| r.announced.clone());
            keys.extend(pending_keys);
            keys.sort();
            keys.dedup();
            announced = (keys != r.announced).then_some(keys);
        }
        if let Some(sev) = plan
            .opened
            .iter()
            .chain(&plan.escalated)
            .find(|c| c.rule == alerting::DRIFT_RULE)
            .map(|c| c.severity)
        {
            out.drift_events.push((r.source.clone(), sev));
        }
        let openings = recent_openings.get(&r.id);
        let flapping: Vec<String> = plan
            .opened
            .iter()
            .filter(|c| {
                policy.flap_after > 0
                    && openings.and_then(|o| o.get(&c.rule)).copied().unwrap_or(0) + 1 >= policy.flap_after
            })
            .map(|c| c.rule.clone())
            .collect();
        let mut notes = review.notes;
        if !pending_told.is_empty() && plan.notice.is_some() {
            notes.extend(
                pending_told
                    .iter()
                    .map(|w| format!("Not in force yet: {w}. The alerts stay open until it is.")),
            );
        }
        if !flapping.is_empty() {
            notes.push(format!(
                "{} keeps opening and resolving ({} times within an hour): it is flapping. It stays open until it has \
                 been clear for {STABLE_CYCLES} cycles in a row, and lockwatch does not mail each flip.",
                flapping.join(", "),
                policy.flap_after
            ));
        }
        if !held.is_empty() {
            notes.push(format!(
                "Held open, not resolved: {} (lockwatch cannot read {} now; see {}).",
                held.join(", "),
                r.eval.stale.join(", "),
                super::evaluate::visibility_rule(&r.kind)
            ));
        }
        if r.gone {
            notes.insert(
                0,
                format!(
                    "{} is no longer reported by source {}: the source answered and this resource was not in it (deleted or renamed).",
                    r.id, r.source
                ),
            );
        }
        out.resources.push(Decision {
            resource_id: r.id.clone(),
            kind: r.kind.clone(),
            plan,
            was_open,
            notes,
            reopened: review.alerting_again.clone(),
            about_posture: true,
            changes: r.eval.changes.clone(),
            further,
            flapping,
            clearing,
            announced,
            exposed: r.eval.exposed,
            reach: r.eval.reach,
        });
    }
    out
}

/// A weakening's identity for "already told": the field and the value it took (for a member of
/// a set, the set and the member), not its position.
pub fn change_key(c: &Change) -> String {
    let value = if c.after.is_null() { &c.before } else { &c.after };
    let mut parts: Vec<&str> = c.path.split('/').collect();
    while parts.last().is_some_and(|p| p.parse::<usize>().is_ok()) {
        parts.pop();
    }
    format!("{}={}", parts.join("/"), crate::model::canonical_json(value))
}

/// Pending states to tell now (seen in the previous cycle too, not told yet), and the keys
/// that record what was seen and told. Pure.
pub fn pending_to_tell(pending: &[String], announced: &[String]) -> (Vec<String>, Vec<String>) {
    let mut tell = Vec::new();
    let mut keys = Vec::new();
    for w in pending {
        let (seen, told) = (format!("pending-seen={w}"), format!("pending-told={w}"));
        if announced.contains(&told) {
            continue;
        }
        if announced.contains(&seen) {
            tell.push(w.clone());
            keys.push(told);
        } else {
            keys.push(seen);
        }
    }
    (tell, keys)
}

/// What on-call knows after this cycle: everything weaker than the baseline once an alert is
/// sent; nothing once no alert is open any more. `None` when that does not change. Pure.
pub fn told(before: &[String], plan: &Plan, changes: &[Change], weakened_now: &[Change]) -> Option<Vec<String>> {
    let open_after = !plan.opened.is_empty()
        || !plan.escalated.is_empty()
        || !plan.updated.is_empty()
        || !plan.still_open.is_empty();
    let after: Vec<String> = if !open_after {
        vec![]
    } else if matches!(plan.notice, Some(Notice::Alert(_))) {
        let mut keys: Vec<String> = before
            .iter()
            .cloned()
            .chain(
                changes
                    .iter()
                    .chain(weakened_now)
                    .filter(|c| c.class == crate::model::ChangeClass::Weakened)
                    .map(change_key),
            )
            .collect();
        keys.sort();
        keys.dedup();
        keys
    } else {
        return None;
    };
    (after != before).then_some(after)
}

/// Every weakening is announced: when the posture got weaker this cycle while loud alerts were
/// already open and nothing new opened (a new alert would tell it anyway), the plan becomes an
/// alert in the same thread. Returns what to announce. Pure.
pub fn further_weakening(
    plan: &mut Plan,
    weakened_now: &[Change],
    was_open: &[OpenAlert],
    suppressed: &[String],
    min: Severity,
) -> Vec<Change> {
    let worst_now = weakened_now
        .iter()
        .filter_map(|c| c.severity)
        .filter(|s| *s >= min)
        .max();
    let loud_open = was_open
        .iter()
        .filter(|o| !suppressed.contains(&o.rule))
        .map(|o| o.severity)
        .max();
    match (worst_now, loud_open, plan.notice) {
        (Some(w), Some(open), None | Some(Notice::Reminder(_)) | Some(Notice::PartlyResolved(_))) => {
            plan.notice = Some(Notice::Alert(w.max(open)));
            weakened_now
                .iter()
                .filter(|c| c.severity.is_some_and(|s| s >= min))
                .cloned()
                .collect()
        }
        _ => vec![],
    }
}

/// The baseline ratchets up: a resource now strictly stronger than its baseline (something
/// strengthened, nothing weakened, everything readable) gets its current posture as baseline,
/// so that going back to the weaker state is drift again. Lowering it stays a deliberate
/// `baseline accept`. Pure.
pub fn ratchet(resources: &[ResourceEval]) -> Vec<String> {
    use crate::model::ChangeClass;
    resources
        .iter()
        .filter(|r| {
            !r.gone
                && !r.eval.unreadable
                && r.eval.changes.iter().all(|c| c.class != ChangeClass::Weakened)
                && r.eval.changes.iter().any(|c| c.class == ChangeClass::Strengthened)
        })
        .map(|r| r.id.clone())
        .collect()
}

/// Blindness: a source that failed `blind_after` cycles in a row is itself an alert, which
/// resolves when it answers again. Sources arrive sorted by name.
pub fn decide_blindness(
    sources: &[String],
    health: &HashMap<String, Health>,
    open: &HashMap<String, Vec<OpenAlert>>,
    policy: &Policy,
    now: i64,
) -> Vec<Decision> {
    sources
        .iter()
        .map(|source| {
            let h = health.get(source).cloned().unwrap_or_default();
            let id = blind_resource_id(source);
            let conds = if h.consecutive_failures >= policy.blind_after {
                vec![Condition {
                    rule: BLIND_RULE.into(),
                    severity: Severity::High,
                    message: format!(
                        "lockwatch has failed to read source {source} for {} or more cycles in a row: it cannot see whether \
                         protection changes there. Its resources keep their last known state. Last error: {}",
                        policy.blind_after, h.last_error
                    ),
                }]
            } else {
                vec![]
            };
            let was_open = open.get(&id).cloned().unwrap_or_default();
            let plan = alerting::plan(&conds, &was_open, now, policy.remind_every_secs);
            Decision {
                resource_id: id,
                kind: "source".into(),
                plan,
                was_open,
                notes: vec![],
                reopened: vec![],
                about_posture: false,
                changes: vec![],
                further: vec![],
                flapping: vec![],
                clearing: vec![],
                announced: None,
                exposed: false,
                reach: None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Finding;

    fn policy() -> Policy {
        Policy {
            min_severity: Severity::Medium,
            remind_every_secs: 100,
            blind_after: 3,
            flap_after: 3,
        }
    }

    fn sup(id: i64, rule: &str, expires_at: i64, hash: &str) -> Suppression {
        Suppression {
            id,
            resource_id: "r".into(),
            rule: rule.into(),
            reason: "test box".into(),
            granted_at: 0,
            expires_at,
            posture_hash: hash.into(),
            finding_hash: None,
            ended_at: None,
            end_reason: None,
        }
    }
    fn cond(rule: &str) -> Condition {
        Condition {
            rule: rule.into(),
            severity: Severity::Critical,
            message: "m".into(),
        }
    }
    fn open(rule: &str) -> OpenAlert {
        OpenAlert {
            rule: rule.into(),
            severity: Severity::Critical,
            message: "m".into(),
            opened_at: 0,
            last_notified_at: 0,
            flapping: false,
            clear_cycles: 0,
        }
    }

    #[test]
    fn suppression_lifecycle_table() {
        // (name, suppression, active rules, open rules, now, hash, gone) → (holding, ended, reopen, loud notes, quiet notes)
        type Case<'a> = (
            &'a str,
            Suppression,
            Vec<&'a str>,
            Vec<&'a str>,
            i64,
            &'a str,
            bool,
            (Vec<&'a str>, Vec<&'a str>, Vec<&'a str>, usize, usize),
        );
        let cases: Vec<Case> = vec![
            (
                "holds",
                sup(1, "x", 50, "h1"),
                vec!["x"],
                vec!["x"],
                10,
                "h1",
                false,
                (vec!["x"], vec![], vec![], 0, 0),
            ),
            (
                "holds with the finding gone",
                sup(1, "x", 50, "h1"),
                vec![],
                vec![],
                10,
                "h1",
                false,
                (vec!["x"], vec![], vec![], 0, 0),
            ),
            (
                "expires with the finding open: reopens loudly",
                sup(1, "x", 50, "h1"),
                vec!["x"],
                vec!["x"],
                50,
                "h1",
                false,
                (vec![], vec!["expired"], vec!["x"], 1, 0),
            ),
            (
                "expires with the finding active but not open yet",
                sup(1, "x", 50, "h1"),
                vec!["x"],
                vec![],
                60,
                "h1",
                false,
                (vec![], vec!["expired"], vec![], 1, 0),
            ),
            (
                "expires after the finding went: a quiet notice",
                sup(1, "x", 50, "h1"),
                vec![],
                vec![],
                50,
                "h1",
                false,
                (vec![], vec!["expired"], vec![], 0, 1),
            ),
            (
                "posture changed: ends and reopens",
                sup(1, "x", 50, "h1"),
                vec!["x"],
                vec!["x"],
                10,
                "h2",
                false,
                (vec![], vec!["posture changed"], vec!["x"], 1, 0),
            ),
            (
                "posture changed, finding gone: ends silently",
                sup(1, "x", 50, "h1"),
                vec![],
                vec![],
                10,
                "h2",
                false,
                (vec![], vec!["posture changed"], vec![], 0, 0),
            ),
            (
                "resource gone: ends",
                sup(1, "x", 50, "h1"),
                vec![],
                vec!["x"],
                10,
                "h1",
                true,
                (vec![], vec!["posture changed"], vec![], 0, 0),
            ),
        ];
        for (name, s, active, opened, now, hash, gone, (holding, ended, reopen, notes, quiet)) in cases {
            let active: Vec<Condition> = active.into_iter().map(cond).collect();
            let opened: Vec<OpenAlert> = opened.into_iter().map(open).collect();
            let r = review_suppressions(&[s], &active, &opened, now, hash, gone);
            assert_eq!(r.holding, holding, "case: {name}");
            assert_eq!(
                r.ended.iter().map(|(_, w)| w.as_str()).collect::<Vec<_>>(),
                ended,
                "case: {name}"
            );
            assert_eq!(r.reopen, reopen, "case: {name}");
            assert_eq!((r.notes.len(), r.expired_quietly.len()), (notes, quiet), "case: {name}");
        }
    }

    #[test]
    fn blindness_table() {
        let sources = vec!["a".to_string()];
        let failing = |n: u32| -> HashMap<String, Health> {
            [(
                "a".to_string(),
                Health {
                    consecutive_failures: n,
                    last_error: "connection refused".into(),
                },
            )]
            .into()
        };
        let blind_open: HashMap<String, Vec<OpenAlert>> = [(blind_resource_id("a"), vec![open(BLIND_RULE)])].into();
        let none = HashMap::new();
        let cases: Vec<(
            &str,
            HashMap<String, Health>,
            &HashMap<String, Vec<OpenAlert>>,
            Option<Notice>,
        )> = vec![
            ("healthy", HashMap::new(), &none, None),
            ("two failures are not blindness yet", failing(2), &none, None),
            ("the third is", failing(3), &none, Some(Notice::Alert(Severity::High))),
            (
                "still blind: no second alert before the reminder",
                failing(4),
                &blind_open,
                None,
            ),
            (
                "answers again: resolved",
                failing(0),
                &blind_open,
                Some(Notice::Resolved),
            ),
        ];
        for (name, health, opened, want) in cases {
            let d = decide_blindness(&sources, &health, opened, &policy(), 50);
            assert_eq!(d[0].plan.notice, want, "case: {name}");
            assert_eq!(d[0].resource_id, "lockwatch/source/a");
            assert!(!d[0].about_posture);
            if want == Some(Notice::Alert(Severity::High)) {
                assert!(d[0].plan.opened[0].message.contains("connection refused"));
            }
        }
        // Counting: failures add up, a success resets.
        let h = next_health(&next_health(&Health::default(), Some("x")), Some("y"));
        assert_eq!((h.consecutive_failures, h.last_error.as_str()), (2, "y"));
        assert_eq!(next_health(&h, None), Health::default());
    }

    fn eval(findings: Vec<Finding>) -> Evaluation {
        Evaluation {
            stale: vec![],
            unreadable: false,
            pending: vec![],
            exposed: findings.iter().any(|f| f.exposed),
            findings,
            reach: None,
            changes: vec![],
            drift: None,
        }
    }

    #[test]
    fn stale_evidence_holds_alerts_open() {
        let cases: Vec<(&str, Vec<&str>, Vec<&str>, Vec<&str>, bool, Vec<&str>)> = vec![
            // (name, active rules, open rules, stale fields, gone) → held
            (
                "nothing stale: resolves as usual",
                vec![],
                vec!["a"],
                vec![],
                false,
                vec![],
            ),
            (
                "stale: the vanished finding is held",
                vec![],
                vec!["a"],
                vec!["acl"],
                false,
                vec!["a"],
            ),
            (
                "stale, finding still there: nothing to hold",
                vec!["a"],
                vec!["a"],
                vec!["acl"],
                false,
                vec![],
            ),
            (
                "a resource that is gone is gone",
                vec![],
                vec!["a"],
                vec!["acl"],
                true,
                vec![],
            ),
        ];
        for (name, active, opened, stale, gone, want) in cases {
            let mut conds: Vec<Condition> = active.into_iter().map(cond).collect();
            let opened: Vec<OpenAlert> = opened.into_iter().map(open).collect();
            let stale: Vec<String> = stale.into_iter().map(String::from).collect();
            let held = hold_while_stale(&mut conds, &opened, &stale, gone);
            assert_eq!(held, want, "case: {name}");
            let plan = alerting::plan(&conds, &opened, 10, 100);
            assert_eq!(
                plan.resolved.is_empty(),
                !want.is_empty() || opened.is_empty() || conds.len() == opened.len(),
                "case: {name}"
            );
        }
    }

    #[test]
    fn flapping_is_held_until_stable() {
        let flap = |clear: u32| OpenAlert {
            flapping: true,
            clear_cycles: clear,
            ..open("a")
        };
        // (name, active, open) → (held, counts)
        let cases: Vec<(&str, Vec<&str>, Vec<OpenAlert>, bool, Vec<(&str, u32)>)> = vec![
            ("not flapping: resolves", vec![], vec![open("a")], false, vec![]),
            (
                "flapping, just cleared: held, count 1",
                vec![],
                vec![flap(0)],
                true,
                vec![("a", 1)],
            ),
            (
                "flapping, clear for 2: held, count 2",
                vec![],
                vec![flap(1)],
                true,
                vec![("a", 2)],
            ),
            ("flapping, clear for 3: resolves", vec![], vec![flap(2)], false, vec![]),
            (
                "flapping and back: count restarts",
                vec!["a"],
                vec![flap(2)],
                false,
                vec![("a", 0)],
            ),
            (
                "flapping, still there: nothing to count",
                vec!["a"],
                vec![flap(0)],
                false,
                vec![],
            ),
        ];
        for (name, active, opened, held, counts) in cases {
            let mut conds: Vec<Condition> = active.iter().map(|r| cond(r)).collect();
            let before = conds.len();
            let got = hold_flapping(&mut conds, &opened);
            assert_eq!(conds.len() > before, held, "case: {name}");
            assert_eq!(
                got,
                counts.into_iter().map(|(r, n)| (r.to_string(), n)).collect::<Vec<_>>(),
                "case: {name}"
            );
        }
        // The third opening within an hour marks the alert flapping, once, with a note.
        let r = ResourceEval {
            id: "s/redis/a".into(),
            source: "s".into(),
            kind: "redis".into(),
            hash: "h".into(),
            gone: false,
            eval: eval(vec![Finding::new(
                "redis.auth.disabled",
                Severity::Critical,
                true,
                "open",
            )]),
            weakened_now: vec![],
            announced: vec![],
        };
        let twice: HashMap<String, HashMap<String, u32>> =
            [("s/redis/a".to_string(), [("redis.auth.disabled".to_string(), 2)].into())].into();
        let d = decide_resources(&[r.clone()], &HashMap::new(), &HashMap::new(), &twice, &policy(), 10);
        assert_eq!(d.resources[0].flapping, vec!["redis.auth.disabled".to_string()]);
        assert!(d.resources[0].notes[0].contains("flapping"));
        let once: HashMap<String, HashMap<String, u32>> =
            [("s/redis/a".to_string(), [("redis.auth.disabled".to_string(), 1)].into())].into();
        let d = decide_resources(&[r], &HashMap::new(), &HashMap::new(), &once, &policy(), 10);
        assert!(d.resources[0].flapping.is_empty());
    }

    #[test]
    fn a_suppression_bound_to_its_finding_ignores_unrelated_changes() {
        let c = cond("x");
        let bound = Suppression {
            finding_hash: Some(alerting::condition_hash(&c)),
            ..sup(1, "x", 50, "h1")
        };
        let cases: Vec<(&str, Vec<Condition>, &str, Vec<&str>)> = vec![
            ("the posture changed elsewhere: holds", vec![c.clone()], "h2", vec![]),
            (
                "the finding says something else: ends",
                vec![Condition {
                    message: "more".into(),
                    ..c.clone()
                }],
                "h2",
                vec!["finding changed"],
            ),
            (
                "the finding got more severe: ends",
                vec![Condition {
                    severity: Severity::High,
                    ..c.clone()
                }],
                "h1",
                vec!["finding changed"],
            ),
            ("the finding went away: holds until it expires", vec![], "h2", vec![]),
        ];
        for (name, active, hash, ended) in cases {
            let r = review_suppressions(&[bound.clone()], &active, &[], 10, hash, false);
            assert_eq!(
                r.ended.iter().map(|(_, w)| w.as_str()).collect::<Vec<_>>(),
                ended,
                "case: {name}"
            );
        }
    }

    #[test]
    fn every_weakening_is_announced() {
        use crate::model::ChangeClass;
        let weak = |sev: Severity| Change {
            path: "/acl_nopass_users/1".into(),
            before: serde_json::Value::Null,
            after: serde_json::json!("bob"),
            class: ChangeClass::Weakened,
            severity: Some(sev),
        };
        let sup = vec!["a".to_string()];
        // (name, notice planned, weakened now, open, suppressed) → (notice, announced)
        let cases: Vec<(
            &str,
            Option<Notice>,
            Vec<Change>,
            Vec<OpenAlert>,
            &[String],
            Option<Notice>,
            usize,
        )> = vec![
            (
                "open alert, weaker still: announced",
                None,
                vec![weak(Severity::High)],
                vec![open("a")],
                &[],
                Some(Notice::Alert(Severity::Critical)),
                1,
            ),
            (
                "nothing open: the drift alert tells it",
                None,
                vec![weak(Severity::High)],
                vec![],
                &[],
                None,
                0,
            ),
            (
                "a new alert already tells it",
                Some(Notice::Alert(Severity::High)),
                vec![weak(Severity::High)],
                vec![open("a")],
                &[],
                Some(Notice::Alert(Severity::High)),
                0,
            ),
            (
                "a reminder becomes the announcement",
                Some(Notice::Reminder(Severity::Critical)),
                vec![weak(Severity::Medium)],
                vec![open("a")],
                &[],
                Some(Notice::Alert(Severity::Critical)),
                1,
            ),
            (
                "below min_severity: quiet",
                None,
                vec![weak(Severity::Low)],
                vec![open("a")],
                &[],
                None,
                0,
            ),
            (
                "only suppressed alerts open: quiet",
                None,
                vec![weak(Severity::High)],
                vec![open("a")],
                &sup,
                None,
                0,
            ),
        ];
        for (name, planned, now, opened, suppressed, want, n) in cases {
            let mut plan = Plan {
                notice: planned,
                ..Default::default()
            };
            let announced = further_weakening(&mut plan, &now, &opened, suppressed, Severity::Medium);
            assert_eq!((plan.notice, announced.len()), (want, n), "case: {name}");
        }
    }

    #[test]
    fn a_vanished_resource_resolves_and_says_why() {
        let r = ResourceEval {
            id: "s/redis/a".into(),
            source: "s".into(),
            kind: "redis".into(),
            hash: "h".into(),
            gone: true,
            eval: Evaluation::gone(),
            weakened_now: vec![],
            announced: vec![],
        };
        let open: HashMap<String, Vec<OpenAlert>> =
            [("s/redis/a".to_string(), vec![open("redis.auth.disabled")])].into();
        let d = decide_resources(&[r], &open, &HashMap::new(), &HashMap::new(), &policy(), 10);
        assert_eq!(d.resources[0].plan.notice, Some(Notice::Resolved));
        assert!(d.resources[0].notes[0].contains("no longer reported by source s"));
    }

    #[test]
    fn suppressed_findings_are_counted_and_silent() {
        let r = ResourceEval {
            id: "s/redis/a".into(),
            source: "s".into(),
            kind: "redis".into(),
            hash: "h1".into(),
            gone: false,
            eval: eval(vec![Finding::new(
                "redis.auth.disabled",
                Severity::Critical,
                true,
                "open",
            )]),
            weakened_now: vec![],
            announced: vec![],
        };
        let sups: HashMap<String, Vec<Suppression>> =
            [("s/redis/a".to_string(), vec![sup(7, "redis.auth.disabled", 100, "h1")])].into();
        let d = decide_resources(&[r.clone()], &HashMap::new(), &sups, &HashMap::new(), &policy(), 10);
        assert_eq!(d.resources[0].plan.notice, None);
        assert_eq!(d.resources[0].plan.opened.len(), 1, "tracked while silent");
        assert_eq!(d.suppressed_by_severity.get(&Severity::Critical), Some(&1));
        // The posture changes under it: it ends, and the finding alerts.
        let mut changed = r;
        changed.hash = "h2".into();
        let open: HashMap<String, Vec<OpenAlert>> =
            [("s/redis/a".to_string(), vec![open("redis.auth.disabled")])].into();
        let d = decide_resources(&[changed], &open, &sups, &HashMap::new(), &policy(), 11);
        assert_eq!(d.ended_suppressions, vec![(7, "posture changed".to_string())]);
        assert_eq!(
            d.resolved_by_suppression,
            vec![("s/redis/a".to_string(), "redis.auth.disabled".to_string())]
        );
        assert_eq!(d.resources[0].plan.notice, Some(Notice::Alert(Severity::Critical)));
        assert!(d.resources[0].notes[0].contains("no longer applies"));
    }
}
