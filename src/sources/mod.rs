//! Data-store kinds. Each kind is a folder here: `mod.rs` (its config, its `KIND` entry and the
//! shape of its posture document), `collect.rs` (I/O: what the server says) and `rules.rs` (pure:
//! findings, and the direction of each change). To add a kind: a folder, one line in [`KINDS`],
//! its test peer under `tests/support/`, its e2e test, its rule table in the README. The
//! contract test (`contract.rs`) fails until the kind provides samples and secret canaries.

use crate::model::{Classification, Finding, Resource};
use futures::future::BoxFuture;
use serde_json::Value;
use std::time::Duration;

pub mod aws;
pub mod common;
#[cfg(test)]
mod contract;
pub mod elasticsearch;
pub mod mongodb;
pub mod mysql;
pub mod postgres;
pub mod redis;

/// The registry: every source kind lockwatch knows.
pub const KINDS: &[&SourceKind] = &[
    &redis::KIND,
    &postgres::KIND,
    &mysql::KIND,
    &elasticsearch::KIND,
    &mongodb::KIND,
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

    /// The one resource of a single-server source, nothing failed; `unknown` lists the fields
    /// it could not read this time.
    pub fn single(
        source: &str,
        kind: &'static str,
        native_name: &str,
        posture: impl serde::Serialize,
        unknown: Vec<crate::model::Unknown>,
    ) -> anyhow::Result<Self> {
        Ok(Collection::complete(vec![
            Resource::new(source, kind, native_name, serde_json::to_value(posture)?).with_unknown(unknown),
        ]))
    }
}

/// A configured, runnable source (one `[[sources]]` entry, built).
pub trait Source: Send + Sync {
    /// One snapshot of every resource this source watches. An error means "could not look":
    /// it never means the resources are gone.
    fn collect(&self) -> BoxFuture<'_, anyhow::Result<Collection>>;
    /// Where it connects, safe to show (passwords redacted).
    fn target(&self) -> String;
    /// Make the calls of a revert plan (`lockwatch revert`); the calls made, shown. Only the
    /// `aws` kind can: lockwatch holds no admin credentials for self-hosted servers.
    fn revert<'a>(
        &'a self,
        resource_id: &'a str,
        calls: &'a [crate::revert::Call],
    ) -> BoxFuture<'a, anyhow::Result<Vec<String>>> {
        let _ = calls;
        Box::pin(async move { anyhow::bail!("{resource_id}: this kind of source cannot be reverted by lockwatch") })
    }
}

/// The settings every `[[sources]]` entry has, whatever its kind.
#[derive(Debug, Clone, PartialEq)]
pub struct Common {
    pub name: String,
    pub timeout: Duration,
    /// Declared reach (`reach = "internet" | "private" | "loopback"`); otherwise inferred.
    pub reach: Option<crate::net::Reach>,
}

/// A config `kind`, and the resource kinds its sources produce.
pub struct SourceKind {
    pub name: &'static str,
    /// Check a config table (without `kind`, `name`, `timeout`, `reach`): pure, no file or
    /// environment is read. The error says what is wrong; serde's "unknown field" errors are
    /// kept as they are so the loader can point at the offending line.
    pub check: fn(common: &Common, table: &toml::Table) -> Result<(), String>,
    /// Build a runnable source at start-up: reads secrets, prepares clients. Never connects.
    pub build: fn(common: &Common, table: toml::Table) -> Result<Box<dyn Source>, String>,
    pub resource_kinds: &'static [ResourceKind],
    /// Config tables (TOML text of one `[[sources]]` entry, without `kind` and `name`) holding
    /// `secret` in every form this kind accepts a credential, pointed at `addr` (`host:port`
    /// where nothing answers). The contract test checks that the secret never reaches
    /// `target()`, an error or a log line. A file form writes its file under `dir`.
    #[cfg_attr(not(test), allow(dead_code))]
    pub canaries: fn(secret: &str, addr: &str, dir: &std::path::Path) -> Vec<String>,
}

/// Rules for one kind of resource. All functions are pure.
pub struct ResourceKind {
    pub name: &'static str,
    /// Posture document → findings and reach. Errors only when the document is not of this
    /// kind's shape.
    pub assess: fn(posture: &Value) -> Result<Assessment, String>,
    /// Direction of one changed field, given the whole before/after documents for context.
    pub classify: fn(change: &FieldChange<'_>) -> Classification,
    /// Sample postures: one well protected, one exposed. Property tests start from them.
    #[cfg_attr(not(test), allow(dead_code))]
    pub samples: fn() -> Samples,
    /// A change in words for the on-call reader ("ACL user `bob` now accepts any password"),
    /// when the kind has words for that field. Mails keep the field and values as a detail.
    pub describe: fn(change: &crate::model::Change) -> Option<String>,
}

/// A change in words, when its kind has them.
pub fn describe_change(kind: &str, c: &crate::model::Change) -> Option<String> {
    resource_kind(kind).and_then(|rk| (rk.describe)(c))
}

/// What a kind concludes about one posture.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Assessment {
    pub findings: Vec<Finding>,
    /// How far the resource can be reached from, when the kind knows.
    pub reach: Option<crate::net::Reach>,
}

impl Assessment {
    pub fn new(findings: Vec<Finding>, reach: Option<crate::net::Reach>) -> Self {
        Assessment { findings, reach }
    }
}

/// A kind's sample documents (see [`ResourceKind::samples`]).
#[cfg_attr(not(test), allow(dead_code))]
pub struct Samples {
    /// Protected: no finding is `exposed`.
    pub safe: Value,
    /// Reachable without authentication: some finding is `exposed`, and going from `safe` to
    /// it is a weakening.
    pub exposed: Value,
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

pub fn kind_names() -> String {
    KINDS.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
}
