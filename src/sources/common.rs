//! Helpers every kind shares: its config table, credentials, how an address is shown, and the
//! classification of common kinds of change. Pure, but for reading a password file or variable.

use crate::model::{Classification, Finding, Severity};
use crate::secret::{self, Secret};
use serde_json::Value;
use std::path::Path;

use super::FieldChange;

/// Deserialize a kind's own config struct from its table. serde's "unknown field" errors are kept
/// as they are so the loader can point at the offending line.
pub fn parse_table<T: serde::de::DeserializeOwned>(table: toml::Table) -> Result<T, String> {
    T::deserialize(toml::Value::Table(table)).map_err(|e| crate::config::in_toml_words(e.message().trim()))
}

/// `host:port`, with brackets around an IPv6 address: `[::1]:6379`.
pub fn host_port(host: &str, port: u16) -> String {
    let host = host.trim_matches(['[', ']']);
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The monitoring password: at most one of the URL's own, a password file, an environment
/// variable. `inline` is the password found in the URL (already decoded), if any.
pub fn password(
    source: &str,
    inline: Option<Secret>,
    file: Option<&Path>,
    env: Option<&str>,
) -> Result<Option<Secret>, String> {
    let _ = source;
    let what = if file.is_some() {
        "password_file"
    } else {
        "password_env"
    };
    let outside = secret::load(what, file, env).map_err(|e| format!("{e:#}"))?;
    match (inline, outside) {
        (Some(_), Some(_)) => {
            Err("the url already holds a password; remove it from the url or drop password_file/password_env".into())
        }
        (inline, outside) => Ok(inline.or(outside)),
    }
}

/// A percent-encoded URL component (user name, password), decoded.
pub fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Rank-based classification: `ranks` lists values from weakest to strongest protection.
/// Unknown values and `null` (not observed) are neutral.
pub fn classify_rank(before: &Value, after: &Value, ranks: &[&str], weakened: Classification) -> Classification {
    let rank = |v: &Value| {
        v.as_str()
            .and_then(|s| ranks.iter().position(|r| r.eq_ignore_ascii_case(s)))
    };
    match (rank(before), rank(after)) {
        (Some(b), Some(a)) if a < b => weakened,
        (Some(b), Some(a)) if a > b => Classification::STRENGTHENED,
        _ => Classification::NEUTRAL,
    }
}

/// A boolean protection: `protective` is the value that protects.
pub fn classify_flag(before: &Value, after: &Value, protective: bool, weakened: Classification) -> Classification {
    match (before.as_bool(), after.as_bool()) {
        (Some(b), Some(a)) if b == protective && a != protective => weakened,
        (Some(b), Some(a)) if b != protective && a == protective => Classification::STRENGTHENED,
        _ => Classification::NEUTRAL,
    }
}

/// Classification shared by every self-hosted kind: how far its listener (`/listen_scope`) and
/// the resource (`/reach`) can be reached. Widening either is a weakening. `None` for other fields.
pub fn classify_reach(c: &FieldChange<'_>) -> Option<Classification> {
    let ranks: &[&str] = match c.path {
        "/reach" => &crate::net::Reach::RANKS_WIDEST_FIRST,
        "/listen_scope" => &crate::net::Scope::RANKS_WIDEST_FIRST,
        _ => return None,
    };
    Some(classify_rank(
        c.before,
        c.after,
        ranks,
        Classification::weakened(Severity::Medium),
    ))
}

/// The low-severity reminder every self-hosted kind gives when its listener binds every
/// interface or a public address: `<kind>.listen.wide`. `binds` says what it binds.
pub fn wide_listener(rule: &str, product: &str, listen_scope: Option<&str>, binds: &str) -> Option<Finding> {
    matches!(listen_scope, Some("all_interfaces" | "public")).then(|| {
        Finding::new(
            rule,
            Severity::Low,
            false,
            format!(
                "{product} listens on {binds} ({}); make sure a firewall or security group limits who reaches it.",
                listen_scope.unwrap_or_default()
            ),
        )
    })
}

/// A member of a list of risky things (users without password, superusers…): added is weaker.
/// `before`/`after` are one element (the other side `null`) as reported by the diff.
pub fn classify_risky_member(before: &Value, after: &Value, weakened: Classification) -> Classification {
    match (before.is_null(), after.is_null()) {
        (true, false) => weakened,
        (false, true) => Classification::STRENGTHENED,
        _ => Classification::NEUTRAL,
    }
}

/// A change to a member of a set (`/users/3`): whether it was added, and the member.
pub fn member(c: &crate::model::Change) -> Option<(bool, String)> {
    let added = c.before.is_null();
    let v = if added { &c.after } else { &c.before };
    c.path
        .rsplit('/')
        .next()
        .is_some_and(|last| last.parse::<usize>().is_ok())
        .then(|| (added, crate::pipeline::evaluate::show_value(v)))
}

/// The name of the top-level field a change is about.
pub fn field(c: &crate::model::Change) -> &str {
    crate::diff::top_field(&c.path)
}

/// A posture with some top-level fields replaced: how rule tables build their cases.
#[cfg(test)]
pub fn patched(mut v: Value, patch: Value) -> Value {
    for (k, x) in patch.as_object().expect("a patch is an object") {
        v[k] = x.clone();
    }
    v
}

/// What an assessment found, as (rule, severity, exposed): what rule tables compare.
#[cfg(test)]
pub fn findings_of(
    assess: fn(&Value) -> Result<super::Assessment, String>,
    v: &Value,
) -> Vec<(String, Severity, bool)> {
    assess(v)
        .expect("a posture of this kind")
        .findings
        .into_iter()
        .map(|f| (f.rule, f.severity, f.exposed))
        .collect()
}

/// The table test every kind's classifier has: `(path, before, after, class, severity)` against
/// the whole document `doc` (used as both sides' context).
#[cfg(test)]
pub fn check_classify(
    classify: fn(&FieldChange<'_>) -> Classification,
    doc: &Value,
    cases: &[(&str, Value, Value, crate::model::ChangeClass, Severity)],
) {
    for (path, before, after, class, sev) in cases {
        let got = classify(&FieldChange {
            path,
            before,
            after,
            before_doc: doc,
            after_doc: doc,
        });
        assert_eq!((got.class, got.severity), (*class, *sev), "{path}: {before} -> {after}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ChangeClass;
    use serde_json::json;

    #[test]
    fn helpers_table() {
        let w = Classification::weakened(Severity::High);
        let ranks = ["trust", "md5", "scram-sha-256"];
        let cases: Vec<(&str, Classification, ChangeClass)> = vec![
            (
                "rank down",
                classify_rank(&json!("scram-sha-256"), &json!("trust"), &ranks, w),
                ChangeClass::Weakened,
            ),
            (
                "rank up",
                classify_rank(&json!("md5"), &json!("scram-sha-256"), &ranks, w),
                ChangeClass::Strengthened,
            ),
            (
                "rank unknown",
                classify_rank(&json!("ldap"), &json!("trust"), &ranks, w),
                ChangeClass::Neutral,
            ),
            (
                "flag off",
                classify_flag(&json!(true), &json!(false), true, w),
                ChangeClass::Weakened,
            ),
            (
                "flag on",
                classify_flag(&json!(false), &json!(true), true, w),
                ChangeClass::Strengthened,
            ),
            (
                "flag unobserved",
                classify_flag(&Value::Null, &json!(false), true, w),
                ChangeClass::Neutral,
            ),
            (
                "inverse flag",
                classify_flag(&json!(false), &json!(true), false, w),
                ChangeClass::Weakened,
            ),
            (
                "member added",
                classify_risky_member(&Value::Null, &json!("bob"), w),
                ChangeClass::Weakened,
            ),
            (
                "member removed",
                classify_risky_member(&json!("bob"), &Value::Null, w),
                ChangeClass::Strengthened,
            ),
        ];
        for (name, got, want) in cases {
            assert_eq!(got.class, want, "case: {name}");
        }
    }

    #[test]
    fn addresses_and_passwords() {
        assert_eq!(host_port("10.0.0.1", 6379), "10.0.0.1:6379");
        assert_eq!(host_port("::1", 6379), "[::1]:6379");
        assert_eq!(host_port("[::1]", 6379), "[::1]:6379");
        assert_eq!(percent_decode("p%40ss%2Fw"), "p@ss/w");
        assert_eq!(
            password("s", Some(Secret::new("a")), None, None).unwrap(),
            Some(Secret::new("a"))
        );
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pw");
        std::fs::write(&f, "b\n").unwrap();
        assert_eq!(password("s", None, Some(&f), None).unwrap(), Some(Secret::new("b")));
        let both = password("s", Some(Secret::new("a")), Some(&f), None).unwrap_err();
        assert!(both.contains("already holds a password"), "{both}");
    }
}
