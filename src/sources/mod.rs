//! Data-store kinds. Each kind is one file here owning its config section, its collector (I/O)
//! and its rules (pure): to add a kind, add a file and one line to [`KINDS`].

use crate::model::{Classification, Finding, Resource};
use futures::future::BoxFuture;
use serde_json::Value;
use std::time::Duration;

pub mod aws;
pub mod elasticsearch;
pub mod mysql;
pub mod postgres;
pub mod redis;

/// The registry: every source kind lockwatch knows.
pub const KINDS: &[&SourceKind] = &[
    &redis::KIND,
    &postgres::KIND,
    &mysql::KIND,
    &elasticsearch::KIND,
    &aws::KIND,
];

/// What one collection saw.
#[derive(Debug, Default)]
pub struct Collection {
    pub resources: Vec<Resource>,
    /// Parts that could not be listed (a region, a service). Resources whose id starts with a
    /// failed part's `scope` keep their last known state: absence there proves nothing.
    pub failed: Vec<PartFailure>,
}

#[derive(Debug, Clone)]
pub struct PartFailure {
    /// A resource-id prefix, e.g. `prod/security-group/111122223333/eu-west-1/`.
    pub scope: String,
    pub message: String,
}

impl Collection {
    /// Everything listed, nothing failed.
    pub fn complete(resources: Vec<Resource>) -> Self {
        Collection {
            resources,
            failed: vec![],
        }
    }

    /// The one resource of a single-server source, nothing failed.
    pub fn single(
        source: &str,
        kind: &'static str,
        native_name: &str,
        posture: impl serde::Serialize,
    ) -> anyhow::Result<Self> {
        Ok(Collection::complete(vec![Resource::new(
            source,
            kind,
            native_name,
            serde_json::to_value(posture)?,
        )]))
    }
}

/// A configured, runnable source (one `[[sources]]` entry).
pub trait Source: Send + Sync {
    /// One snapshot of every resource this source watches. An error means "could not look":
    /// it never means the resources are gone.
    fn collect(&self) -> BoxFuture<'_, anyhow::Result<Collection>>;
    /// Where it connects, safe to show (passwords redacted).
    fn target(&self) -> String;
}

/// The settings every `[[sources]]` entry has, whatever its kind.
#[derive(Debug, Clone)]
pub struct Common {
    pub name: String,
    pub timeout: Duration,
    /// Declared reach (`reach = "internet" | "private" | "loopback"`); otherwise inferred.
    pub reach: Option<crate::net::Reach>,
}

/// A config `kind`, and the resource kinds its sources produce.
pub struct SourceKind {
    pub name: &'static str,
    /// Build a source from its config table (without `kind`, `name`, `timeout`, `reach`). The error says
    /// what is wrong; serde's "unknown field" errors are kept as they are so the loader can point
    /// at the offending line.
    pub build: fn(common: &Common, table: toml::Table) -> Result<Box<dyn Source>, String>,
    pub resource_kinds: &'static [ResourceKind],
}

/// Rules for one kind of resource. Both functions are pure.
pub struct ResourceKind {
    pub name: &'static str,
    /// Posture document → findings. Errors only when the document is not of this kind's shape.
    pub assess: fn(posture: &Value) -> Result<Vec<Finding>, String>,
    /// Direction of one changed field, given the whole before/after documents for context.
    pub classify: fn(change: &FieldChange<'_>) -> Classification,
}

/// One changed field, as the classifier sees it.
pub struct FieldChange<'a> {
    pub path: &'a str,
    pub before: &'a Value,
    pub after: &'a Value,
    pub before_doc: &'a Value,
    pub after_doc: &'a Value,
}

pub fn source_kind(name: &str) -> Option<&'static SourceKind> {
    KINDS.iter().copied().find(|k| k.name == name)
}

pub fn resource_kind(name: &str) -> Option<&'static ResourceKind> {
    KINDS
        .iter()
        .flat_map(|k| k.resource_kinds.iter())
        .find(|k| k.name == name)
}

/// Deserialize a kind's own config struct from its table.
pub fn parse_table<T: serde::de::DeserializeOwned>(table: toml::Table) -> Result<T, String> {
    T::deserialize(toml::Value::Table(table)).map_err(|e| e.message().trim().to_string())
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
        Classification::weakened(crate::model::Severity::Medium),
    ))
}

/// The low-severity reminder every self-hosted kind gives when its listener binds every
/// interface or a public address: `<kind>.listen.wide`. `binds` says what it binds.
pub fn wide_listener(rule: &str, product: &str, listen_scope: Option<&str>, binds: &str) -> Option<Finding> {
    matches!(listen_scope, Some("all_interfaces" | "public")).then(|| {
        Finding::new(
            rule,
            crate::model::Severity::Low,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ChangeClass, Severity};
    use serde_json::json;

    #[test]
    fn registry_names_are_unique() {
        let unique = |mut names: Vec<&str>| {
            let n = names.len();
            names.sort();
            names.dedup();
            n == names.len()
        };
        assert!(unique(KINDS.iter().map(|k| k.name).collect()), "duplicate source kind");
        assert!(
            unique(
                KINDS
                    .iter()
                    .flat_map(|k| k.resource_kinds.iter().map(|r| r.name))
                    .collect()
            ),
            "duplicate resource kind"
        );
    }

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
}
