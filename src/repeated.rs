//! Warnings that hold for a while — a source failing every cycle, a password refused — are
//! logged when they start, when what they say changes, and when they end; not once per cycle,
//! which buries everything else in the journal.

use std::collections::BTreeMap;
use std::sync::{LazyLock, Mutex};

/// What to log for one key, from what was active before and what is now. Pure.
#[derive(Debug, PartialEq, Eq)]
pub enum Transition<'a> {
    Started(&'a str),
    Changed(&'a str),
    Ended(&'a str),
}

pub fn transition<'a>(before: Option<&'a str>, now: Option<&'a str>) -> Option<Transition<'a>> {
    match (before, now) {
        (None, Some(m)) => Some(Transition::Started(m)),
        (Some(b), Some(m)) if b != m => Some(Transition::Changed(m)),
        (Some(b), None) => Some(Transition::Ended(b)),
        _ => None,
    }
}

static ACTIVE: LazyLock<Mutex<BTreeMap<String, String>>> = LazyLock::new(Default::default);

/// The warnings under `scope` that hold now (key → message): each is logged if it is new or
/// changed, and every earlier one under `scope` that no longer holds is logged as ended.
pub fn report(scope: &str, now: &[(String, String)], ended: &str) {
    let mut active = ACTIVE.lock().unwrap_or_else(|p| p.into_inner());
    let prefix = format!("{scope}\u{0}");
    let keys: Vec<String> = active
        .keys()
        .filter(|k| k.starts_with(&prefix))
        .cloned()
        .chain(now.iter().map(|(k, _)| format!("{prefix}{k}")))
        .collect();
    for key in keys {
        let short = &key[prefix.len()..];
        let current = now.iter().find(|(k, _)| k == short).map(|(_, m)| m.as_str());
        let before = active.get(&key).cloned();
        match transition(before.as_deref(), current) {
            Some(Transition::Started(m)) => tracing::warn!(scope, part = short, "{m}"),
            Some(Transition::Changed(m)) => tracing::warn!(scope, part = short, "(changed) {m}"),
            Some(Transition::Ended(m)) => tracing::info!(scope, part = short, was = m, "{ended}"),
            None => {}
        }
        match current {
            Some(m) => {
                active.insert(key, m.to_string());
            }
            None => {
                active.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_table() {
        let cases = [
            (None, None, None),
            (None, Some("a"), Some(Transition::Started("a"))),
            (Some("a"), Some("a"), None),
            (Some("a"), Some("b"), Some(Transition::Changed("b"))),
            (Some("a"), None, Some(Transition::Ended("a"))),
        ];
        for (before, now, want) in cases {
            assert_eq!(transition(before, now), want, "{before:?} -> {now:?}");
        }
    }

    #[test]
    fn report_keeps_one_entry_per_key_and_forgets_ended_ones() {
        let m = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
        report("t-scope", &m("x", "down"), "recovered");
        report("t-scope", &m("x", "down"), "recovered");
        report("other", &m("x", "down"), "recovered");
        let held = |scope: &str| {
            ACTIVE
                .lock()
                .unwrap()
                .keys()
                .filter(|k| k.starts_with(&format!("{scope}\u{0}")))
                .count()
        };
        assert_eq!(held("t-scope"), 1);
        report("t-scope", &[], "recovered");
        assert_eq!(held("t-scope"), 0);
        assert_eq!(held("other"), 1, "another scope is left alone");
    }
}
