//! Stage 2, observe: compare what was collected with what lockwatch knew. A posture whose hash
//! changed becomes a snapshot row and replaces the cached one; a resource missing from a
//! successful listing is deleted, one missing from a failed part is not (absence there proves
//! nothing). Works on the in-memory cache only; nothing here reads or writes the store.

use super::collect::Collected;
use crate::model::{Known, SnapshotWrite, document_hash};
use crate::sources::PartFailure;
use std::collections::{HashMap, HashSet};

#[derive(Debug, Default)]
pub struct Observed {
    pub snapshots: Vec<SnapshotWrite>,
    /// Resources that vanished from a successful listing this cycle.
    pub deleted: Vec<String>,
}

/// Fold this cycle's collections into `known`. Collected postures are taken, not copied: a
/// changed one moves into the cache, an unchanged one is dropped here, so a large fleet holds
/// one copy of each posture.
pub fn observe(known: &mut HashMap<String, Known>, collected: &mut [Collected]) -> Observed {
    let mut out = Observed::default();
    for c in collected.iter_mut() {
        let Ok(collection) = &mut c.result else { continue };
        let mut present = HashSet::new();
        for r in std::mem::take(&mut collection.resources) {
            present.insert(r.id.clone());
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
                    k.document = r.posture;
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
                    },
                )
            })
            .collect()
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
