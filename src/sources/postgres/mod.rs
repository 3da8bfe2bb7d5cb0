//! `kind = "postgres"`: one PostgreSQL server, read through a monitoring role.
//!
//! Captures the effective `pg_hba.conf` rules (`pg_hba_file_rules`), `listen_addresses`, `ssl`,
//! `password_encryption`, login roles without a password and superusers.

mod collect;
mod rules;
mod tls;

use super::common::{self, classify_flag, classify_rank, classify_risky_member};
use super::{Assessment, Collection, Common, FieldChange, ResourceKind, Samples, Source, SourceKind};
use crate::model::{Classification, Finding, Severity, Unknown};
use crate::net;
use crate::secret::{self, Secret};
use anyhow::{Context, anyhow};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

pub const KIND: SourceKind = SourceKind {
    name: "postgres",
    check: |_, table| parse(table.clone()).map(|_| ()),
    build,
    resource_kinds: &[ResourceKind {
        name: "postgres",
        assess: rules::assess,
        classify: rules::classify,
        samples,
        describe: rules::describe,
    }],
    canaries,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// `postgres://user[:password]@host:port/db[?sslmode=disable|prefer|require]`, or the same
    /// as libpq key/value pairs (`host=… user=… dbname=…`).
    url: String,
    password_file: Option<PathBuf>,
    password_env: Option<String>,
    /// PEM bundle to verify the server certificate with. Without it, TLS encrypts but does not
    /// verify the server, as libpq's `sslmode=require` does.
    ca_file: Option<PathBuf>,
}

struct PostgresSource {
    common: Common,
    host: String,
    shown_url: String,
    native: String,
    config: tokio_postgres::Config,
    ca_file: Option<PathBuf>,
    /// What the previous collection read (server's config load time, rules on disk): without
    /// access to the file's own time, a change of the rules with no reload since is pending.
    last_read: std::sync::Mutex<Option<(String, Vec<HbaRule>)>>,
}

/// The config and the driver's reading of the URL (or key/value string). Pure.
fn parse(table: toml::Table) -> Result<(Config, tokio_postgres::Config), String> {
    let cfg: Config = common::parse_table(table)?;
    let shown_url = secret::redact_dsn(&cfg.url);
    let config = tokio_postgres::Config::from_str(&cfg.url)
        .map_err(|e| format!("url {shown_url}: {}", secret::redact_dsn(&e.to_string())))?;
    if config.get_user().is_none() {
        return Err(format!(
            "url {shown_url} names no user: add the monitoring role, e.g. postgres://lockwatch@host:5432/postgres"
        ));
    }
    if config.get_hosts().is_empty() {
        return Err(format!("url {shown_url} names no host"));
    }
    Ok((cfg, config))
}

fn build(common: &Common, table: toml::Table) -> Result<Box<dyn Source>, String> {
    let (cfg, mut config) = parse(table)?;
    let shown_url = secret::redact_dsn(&cfg.url);
    let inline = config
        .get_password()
        .map(|p| Secret::new(String::from_utf8_lossy(p).into_owned()));
    let password = common::password(
        &common.name,
        inline,
        cfg.password_file.as_deref(),
        cfg.password_env.as_deref(),
    )?;
    if let Some(p) = password {
        config.password(p.expose());
    }
    config.connect_timeout(common.timeout);
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let (native, host) = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => (common::host_port(h, port), h.clone()),
        Some(tokio_postgres::config::Host::Unix(p)) => {
            (format!("unix:{}:{port}", p.display()), "localhost".to_string())
        }
        None => return Err(format!("url {shown_url} names no host")),
    };
    Ok(Box::new(PostgresSource {
        common: common.clone(),
        host,
        shown_url,
        native,
        config,
        ca_file: cfg.ca_file,
        last_read: std::sync::Mutex::new(None),
    }))
}

fn canaries(secret: &str, addr: &str, dir: &std::path::Path) -> Vec<String> {
    let (host, port) = addr.rsplit_once(':').unwrap_or((addr, "5432"));
    let file = dir.join("pg-password");
    let _ = std::fs::write(&file, secret);
    vec![
        format!("url = \"postgres://lockwatch:{secret}@{addr}/postgres?sslmode=disable\""),
        format!("url = \"postgresql://lockwatch@{addr}/postgres?password={secret}&sslmode=disable\""),
        format!("url = \"host={host} port={port} user=lockwatch password={secret} dbname=postgres sslmode=disable\""),
        format!("url = \"host={host} port={port} user=lockwatch password='{secret} x' sslmode=disable\""),
        format!(
            "url = \"postgres://lockwatch@{addr}/postgres\"\npassword_file = \"{}\"",
            file.display()
        ),
    ]
}

fn samples() -> Samples {
    let rule = |address: &str, netmask: &str, method: &str| {
        json!({"type": "host", "database": ["all"], "user_name": ["all"], "address": address, "netmask": netmask,
               "auth_method": method, "options": null, "error": null})
    };
    let doc = |method: &str, probe: &str| {
        json!({
            "hba_rules": [rule("127.0.0.1", "255.255.255.255", "scram-sha-256"), rule("0.0.0.0", "0.0.0.0", method)],
            "listen_addresses": ["*"], "listen_scope": "all_interfaces", "ssl": true,
            "password_encryption": "scram-sha-256", "login_roles_without_password": [], "superusers": ["postgres"],
            "version": "15.19", "unauthenticated_login": probe, "reach": "private"
        })
    };
    Samples {
        safe: doc("scram-sha-256", "denied"),
        exposed: doc("trust", "accepted"),
    }
}

/// One effective `pg_hba.conf` line. Line numbers are left out: a comment added above a rule must
/// not look like a change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct HbaRule {
    #[serde(rename = "type")]
    kind: String,
    database: Vec<String>,
    user_name: Vec<String>,
    address: Option<String>,
    netmask: Option<String>,
    auth_method: String,
    options: Option<Vec<String>>,
    error: Option<String>,
    /// An earlier line matches every connection this one would: it never applies (first match
    /// wins). Absent in documents from before it was recorded.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    shadowed: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Posture {
    /// `false` when lockwatch cannot compare pg_hba.conf's time with the server's last reload
    /// (no EXECUTE on pg_stat_file): it cannot confirm the rules on disk are the live ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hba_reload_verified: Option<bool>,
    /// The rules the server runs, in file order; `None` when they cannot be read.
    hba_rules: Option<Vec<HbaRule>>,
    listen_addresses: Vec<String>,
    listen_scope: String,
    ssl: bool,
    password_encryption: String,
    /// `None` when the role may not read `pg_authid` (superuser-only).
    login_roles_without_password: Option<Vec<String>>,
    superusers: Vec<String>,
    version: String,
    /// `postgres` with no password, from lockwatch's host: `accepted`, `denied`, `inconclusive`.
    #[serde(default)]
    unauthenticated_login: Option<String>,
    /// `loopback`, `private` or `internet` (see net::reach); absent in documents from before it.
    #[serde(default)]
    reach: Option<String>,
}

impl Source for PostgresSource {
    fn target(&self) -> String {
        self.shown_url.clone()
    }

    fn collect(&self) -> BoxFuture<'_, anyhow::Result<Collection>> {
        Box::pin(async move {
            let (posture, unknown) = self.observe().await?;
            Collection::single(&self.common.name, "postgres", &self.native, posture, unknown)
        })
    }
}
