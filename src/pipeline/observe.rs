//! Stage 2, observe: compare what was collected with what lockwatch knew. A posture whose hash
//! changed becomes a snapshot row and replaces the cached one; a resource missing from a
//! successful listing is deleted, one missing from a failed part is not (absence there proves
//! nothing). A field the source could not read keeps its last known value, marked stale in the
//! document: unknown is never taken for safe. Works on the in-memory cache only; nothing here
//! reads or writes the store.

use super::collect::Collected;
use crate::model::{Document, Known, Resource, SnapshotWrite, VISIBILITY_KEY, Visibility, document_hash};
use crate::sources::PartFailure;
use serde_json::Value;
use std::collections::{HashMap, HashSet};

#[derive(Debug, Default)]
pub struct Observed {
    pub snapshots: Vec<SnapshotWrite>,
    /// Resources that vanished from a successful listing this cycle.
    pub deleted: Vec<String>,
    /// The posture each changed resource had before this cycle (a resource seen before).
    pub previous: HashMap<String, Document>,
}

/// Fold this cycle's collections into `known`. Collected postures are taken, not copied: a
/// changed one moves into the cache, an unchanged one is dropped here, so a large fleet holds
/// one copy of each posture.
pub fn observe(known: &mut HashMap<String, Known>, collected: &mut [Collected], now: i64) -> Observed {
    let mut out = Observed::default();
    for c in collected.iter_mut() {
        let Ok(collection) = &mut c.result else { continue };
        let mut present = HashSet::new();
        for mut r in std::mem::take(&mut collection.resources) {
            present.insert(r.id.clone());
            if !r.unknown.is_empty()
                || known
                    .get(&r.id)
                    .is_some_and(|k| k.document.as_str().contains(VISIBILITY_KEY))
            {
                r.posture = effective(known.get(&r.id).map(|k| &k.document), &r, now);
            }
            let hash = document_hash(r.posture.as_str());
            let entry = known.get_mut(&r.id);
            if entry.as_ref().is_some_and(|k| k.hash == hash && !k.deleted) {
                continue;
            }
            out.snapshots.push(SnapshotWrite {
                id: r.id.clone(),
                source: r.source.clone(),
                kind: r.kind.to_string(),
                hash: hash.clone(),
                document: r.posture.as_str().to_string(),
            });
            match entry {
                Some(k) => {
                    k.hash = hash;
                    let before = std::mem::replace(&mut k.document, r.posture);
                    if !k.deleted {
                        out.previous.insert(r.id.clone(), before);
                    }
                    k.deleted = false;
                }
                None => {
                    known.insert(
                        r.id,
                        Known {
                            source: r.source,
                            kind: r.kind.to_string(),
                            hash,
                            baseline: r.posture.clone(),
                            document: r.posture,
                            deleted: false,
                            announced: vec![],
                        },
                    );
                }
            }
        }
        for id in vanished(known, &c.source, &present, &collection.failed) {
            if let Some(k) = known.get_mut(&id) {
                k.deleted = true;
            }
            out.deleted.push(id);
        }
    }
    out.deleted.sort();
    out
}

/// The posture to keep for `r`: what was read, with each field it could not read replaced by
/// its last known value (stale) or `null` (never read), and recorded under [`VISIBILITY_KEY`].
/// Pure.
pub fn effective(prev: Option<&Document>, r: &Resource, now: i64) -> Document {
    let mut doc = r.posture.value();
    let prev = prev.map(Document::value);
    let prev_vis: std::collections::BTreeMap<String, Visibility> = prev
        .as_ref()
        .and_then(|p| p.get(VISIBILITY_KEY))
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    let mut vis = std::collections::BTreeMap::new();
    for u in &r.unknown {
        let last = prev
            .as_ref()
            .and_then(|p| p.get(&u.field))
            .filter(|v| !v.is_null())
            .cloned();
        let before = prev_vis.get(&u.field);
        let stale = last.is_some();
        if let Some(obj) = doc.as_object_mut() {
            obj.insert(u.field.clone(), last.unwrap_or(Value::Null));
        }
        vis.insert(
            u.field.clone(),
            Visibility {
                why: u.why.clone(),
                fix: u.fix.clone(),
                since: before.map(|b| b.since).unwrap_or(now),
                stale,
                // Not in force yet, and lockwatch knows what is: no finding. Never seen what is
                // in force: that is lost sight like any other.
                pending: u.pending && stale,
            },
        );
    }
    if let Some(obj) = doc.as_object_mut() {
        obj.remove(VISIBILITY_KEY);
        if !vis.is_empty() {
            obj.insert(VISIBILITY_KEY.into(), serde_json::to_value(&vis).unwrap_or_default());
        }
    }
    Document::from_value(&doc)
}

/// Resources of `source` that were known, not yet deleted, and absent from a listing whose
/// part succeeded. Pure.
pub fn vanished(
    known: &HashMap<String, Known>,
    source: &str,
    present: &HashSet<String>,
    failed: &[PartFailure],
) -> Vec<String> {
    let mut ids: Vec<String> = known
        .iter()
        .filter(|(id, k)| {
            k.source == source
                && !k.deleted
                && !present.contains(*id)
                && !failed.iter().any(|f| id.starts_with(&f.scope))
        })
        .map(|(id, _)| id.clone())
        .collect();
    ids.sort();
    ids
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Document;

    fn known(entries: &[(&str, &str, bool)]) -> HashMap<String, Known> {
        entries
            .iter()
            .map(|(id, source, deleted)| {
                let doc = Document::from_value(&serde_json::json!({}));
                (
                    id.to_string(),
                    Known {
                        source: source.to_string(),
                        kind: "redis".into(),
                        hash: "h".into(),
                        document: doc.clone(),
                        baseline: doc,
                        deleted: *deleted,
                        announced: vec![],
                    },
                )
            })
            .collect()
    }

    #[test]
    fn unreadable_fields_keep_their_last_value_and_say_so() {
        use crate::model::Unknown;
        use serde_json::json;
        let read = |doc: Value, unknown: Vec<Unknown>| {
            crate::model::Resource::new("s", "redis", "a", doc).with_unknown(unknown)
        };
        let denied = || vec![Unknown::new("acl", "ACL LIST refused: NOPERM", "grant +acl|list")];
        let d0 = Document::from_value(&json!({"acl": ["bob"], "probe": "auth_required"}));
        // The field was readable before: its value is kept, marked stale since now.
        let d1 = effective(
            Some(&d0),
            &read(json!({"acl": null, "probe": "auth_required"}), denied()),
            100,
        );
        assert_eq!(
            d1.value(),
            json!({"acl": ["bob"], "probe": "auth_required", "_visibility": {"acl": {"why": "ACL LIST refused: NOPERM", "fix": "grant +acl|list", "since": 100, "stale": true}}})
        );
        // Still unreadable later: the same document, so no new snapshot.
        let d2 = effective(
            Some(&d1),
            &read(json!({"acl": [], "probe": "auth_required"}), denied()),
            160,
        );
        assert_eq!(d2, d1);
        // Readable again: the mark goes, the value read now counts.
        let d3 = effective(
            Some(&d2),
            &read(json!({"acl": [], "probe": "auth_required"}), vec![]),
            200,
        );
        assert_eq!(d3.value(), json!({"acl": [], "probe": "auth_required"}));
        // Never read: null, and not stale.
        let first = effective(None, &read(json!({"acl": ["x"], "probe": "p"}), denied()), 5);
        assert_eq!(first.value()["acl"], Value::Null);
        assert_eq!(first.value()["_visibility"]["acl"]["stale"], json!(false));
    }

    #[test]
    fn deletion_table() {
        let k = known(&[
            ("a/x/east/1", "a", false),
            ("a/x/west/2", "a", false),
            ("a/x/west/3", "a", true),
            ("b/x/east/4", "b", false),
        ]);
        let west_failed = [PartFailure {
            scope: "a/x/west/".into(),
            message: "throttled".into(),
        }];
        let set = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<HashSet<_>>();
        let cases: Vec<(&str, HashSet<String>, &[PartFailure], Vec<&str>)> = vec![
            ("all present", set(&["a/x/east/1", "a/x/west/2"]), &[], vec![]),
            (
                "one missing from a full listing",
                set(&["a/x/east/1"]),
                &[],
                vec!["a/x/west/2"],
            ),
            (
                "missing inside a failed part proves nothing",
                set(&["a/x/east/1"]),
                &west_failed,
                vec![],
            ),
            (
                "missing outside the failed part is deleted",
                set(&["a/x/west/2"]),
                &west_failed,
                vec!["a/x/east/1"],
            ),
            (
                "an empty listing deletes everything of the source",
                set(&[]),
                &[],
                vec!["a/x/east/1", "a/x/west/2"],
            ),
        ];
        for (name, present, failed, want) in cases {
            assert_eq!(vanished(&k, "a", &present, failed), want, "case: {name}");
        }
    }
}
