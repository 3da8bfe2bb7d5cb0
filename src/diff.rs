//! Field-by-field difference of two posture documents. Pure; no I/O.
//!
//! Objects are compared key by key. Arrays are compared as multisets, never by position: the
//! lists in a posture are sets (users, roles, rules, statements), so `["viewer"]` →
//! `["superuser"]` is one member removed and one added — which a kind classifies as the
//! weakening it is — not a "change at index 0". Each element that appeared is reported at its
//! index in the new array (`before` null), each that went away at its index in the old one
//! (`after` null); an element edited in place is the old one removed and the new one added.
//! Where order matters (pg_hba.conf: the first matching line wins) the kind records what the
//! order means in the elements themselves.

use serde_json::Value;

/// A raw difference, before a source classifies it.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldDiff {
    pub path: String,
    pub before: Value,
    pub after: Value,
}

pub fn diff(before: &Value, after: &Value) -> Vec<FieldDiff> {
    let mut out = Vec::new();
    walk(String::new(), before, after, &mut out);
    out
}

fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

fn walk(path: String, before: &Value, after: &Value, out: &mut Vec<FieldDiff>) {
    if before == after {
        return;
    }
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            for (k, bv) in b {
                let p = format!("{path}/{}", escape(k));
                match a.get(k) {
                    Some(av) => walk(p, bv, av, out),
                    None => out.push(FieldDiff {
                        path: p,
                        before: bv.clone(),
                        after: Value::Null,
                    }),
                }
            }
            for (k, av) in a {
                if !b.contains_key(k) {
                    out.push(FieldDiff {
                        path: format!("{path}/{}", escape(k)),
                        before: Value::Null,
                        after: av.clone(),
                    });
                }
            }
        }
        (Value::Array(b), Value::Array(a)) => {
            let mut unmatched_after: Vec<Option<&Value>> = a.iter().map(Some).collect();
            for (i, bv) in b.iter().enumerate() {
                match unmatched_after.iter_mut().find(|slot| slot.is_some_and(|av| av == bv)) {
                    Some(slot) => *slot = None,
                    None => out.push(FieldDiff {
                        path: format!("{path}/{i}"),
                        before: bv.clone(),
                        after: Value::Null,
                    }),
                }
            }
            for (i, slot) in unmatched_after.iter().enumerate() {
                if let Some(av) = slot {
                    out.push(FieldDiff {
                        path: format!("{path}/{i}"),
                        before: Value::Null,
                        after: (*av).clone(),
                    });
                }
            }
        }
        _ => out.push(FieldDiff {
            path,
            before: before.clone(),
            after: after.clone(),
        }),
    }
}

/// The first token of a JSON pointer (`/hba_rules/3/x` → `hba_rules`).
pub fn top_field(path: &str) -> &str {
    path.trim_start_matches('/').split('/').next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn d(path: &str, before: Value, after: Value) -> FieldDiff {
        FieldDiff {
            path: path.into(),
            before,
            after,
        }
    }

    #[test]
    fn table() {
        let cases: Vec<(&str, Value, Value, Vec<FieldDiff>)> = vec![
            ("identical", json!({"a":1,"b":[1,2]}), json!({"a":1,"b":[1,2]}), vec![]),
            (
                "scalar changed",
                json!({"a":true}),
                json!({"a":false}),
                vec![d("/a", json!(true), json!(false))],
            ),
            (
                "key added",
                json!({}),
                json!({"x":"y"}),
                vec![d("/x", Value::Null, json!("y"))],
            ),
            (
                "key removed",
                json!({"x":"y"}),
                json!({}),
                vec![d("/x", json!("y"), Value::Null)],
            ),
            (
                "an element edited in place is removed and added",
                json!({"r":[{"m":"scram"},{"m":"md5"}]}),
                json!({"r":[{"m":"trust"},{"m":"md5"}]}),
                vec![
                    d("/r/0", json!({"m":"scram"}), Value::Null),
                    d("/r/0", Value::Null, json!({"m":"trust"})),
                ],
            ),
            (
                "a member replaced: a set change, not a position change",
                json!({"roles":["viewer"]}),
                json!({"roles":["superuser"]}),
                vec![
                    d("/roles/0", json!("viewer"), Value::Null),
                    d("/roles/0", Value::Null, json!("superuser")),
                ],
            ),
            (
                "reordered: no change",
                json!({"r":["a","b"]}),
                json!({"r":["b","a"]}),
                vec![],
            ),
            (
                "insert into list reports one element",
                json!({"r":["a","b","c"]}),
                json!({"r":["z","a","b","c"]}),
                vec![d("/r/0", Value::Null, json!("z"))],
            ),
            (
                "remove from list",
                json!({"r":["a","b","c"]}),
                json!({"r":["a","c"]}),
                vec![d("/r/1", json!("b"), Value::Null)],
            ),
            (
                "duplicates counted",
                json!({"r":["a","a"]}),
                json!({"r":["a"]}),
                vec![d("/r/1", json!("a"), Value::Null)],
            ),
            (
                "type change",
                json!({"a":[1]}),
                json!({"a":null}),
                vec![d("/a", json!([1]), Value::Null)],
            ),
            (
                "pointer escaping",
                json!({"a/b~":1}),
                json!({"a/b~":2}),
                vec![d("/a~1b~0", json!(1), json!(2))],
            ),
        ];
        for (name, before, after, want) in cases {
            assert_eq!(diff(&before, &after), want, "case: {name}");
        }
    }

    #[test]
    fn top_field_of_pointer() {
        assert_eq!(top_field("/hba_rules/3/auth_method"), "hba_rules");
        assert_eq!(top_field("/ssl"), "ssl");
        assert_eq!(top_field(""), "");
    }
}
