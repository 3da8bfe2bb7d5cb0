//! `kind = "redis"`: one Redis server.
//!
//! The monitor connects with its own credentials to read `CONFIG` and `ACL LIST`, and a second,
//! credential-less connection checks whether the server runs a command for anyone.

mod collect;
mod rules;

use super::common::{self, classify_flag, classify_rank, classify_risky_member};
use super::{Assessment, Collection, Common, FieldChange, ResourceKind, Samples, Source, SourceKind};
use crate::model::{Classification, Finding, Severity, Unknown};
use crate::net;
use crate::secret::{self, Secret};
use anyhow::{Context, anyhow};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::path::PathBuf;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const KIND: SourceKind = SourceKind {
    name: "redis",
    check: |_, table| parse(table.clone()).map(|_| ()),
    build,
    resource_kinds: &[ResourceKind {
        name: "redis",
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
    /// `redis://[user[:password]@]host:port` (or `rediss://` for TLS).
    url: String,
    password_file: Option<PathBuf>,
    password_env: Option<String>,
    /// PEM bundle to verify the server's certificate (`rediss://` only).
    ca_file: Option<PathBuf>,
}

struct RedisSource {
    common: Common,
    url: String,
    host: String,
    port: u16,
    tls: bool,
    username: Option<String>,
    password: Option<Secret>,
    /// The CA bundle's PEM text, read at start-up.
    ca_pem: Option<Vec<u8>>,
}

/// The config, checked; and the parsed URL. Pure.
fn parse(table: toml::Table) -> Result<(Config, url::Url, bool), String> {
    let cfg: Config = common::parse_table(table)?;
    let url = url::Url::parse(&cfg.url).map_err(|e| format!("url {}: {e}", secret::redact_dsn(&cfg.url)))?;
    let tls = match url.scheme() {
        "redis" => false,
        "rediss" => true,
        other => {
            return Err(format!("url scheme must be redis:// or rediss://, not {other}://"));
        }
    };
    if url.host_str().is_none() {
        return Err("url has no host".into());
    }
    if cfg.ca_file.is_some() && !tls {
        return Err("ca_file is set but the url is redis://; use rediss:// for TLS".into());
    }
    Ok((cfg, url, tls))
}

fn build(common: &Common, table: toml::Table) -> Result<Box<dyn Source>, String> {
    let (cfg, url, tls) = parse(table)?;
    let host = url.host_str().unwrap_or_default().trim_matches(['[', ']']).to_string();
    let port = url.port().unwrap_or(6379);
    let inline = url.password().map(|p| Secret::new(common::percent_decode(p)));
    let password = common::password(
        &common.name,
        inline,
        cfg.password_file.as_deref(),
        cfg.password_env.as_deref(),
    )?;
    let username = Some(url.username())
        .filter(|u| !u.is_empty())
        .map(common::percent_decode);
    let ca_pem = match &cfg.ca_file {
        Some(ca) => Some(std::fs::read(ca).map_err(|e| format!("ca_file {}: {e}", ca.display()))?),
        None => None,
    };
    Ok(Box::new(RedisSource {
        common: common.clone(),
        url: secret::redact_dsn(&cfg.url),
        host,
        port,
        tls,
        username,
        password,
        ca_pem,
    }))
}

fn canaries(secret: &str, addr: &str, dir: &std::path::Path) -> Vec<String> {
    let file = dir.join("redis-password");
    let _ = std::fs::write(&file, secret);
    vec![
        format!("url = \"redis://:{secret}@{addr}\""),
        format!("url = \"redis://monitor:{secret}@{addr}\""),
        format!("url = \"rediss://monitor:{secret}@{addr}\""),
        format!(
            "url = \"redis://monitor@{addr}\"\npassword_file = \"{}\"",
            file.display()
        ),
    ]
}

fn samples() -> Samples {
    let safe = json!({
        "unauthenticated_probe": "auth_required", "requirepass_set": true, "acl_nopass_users": [],
        "protected_mode": true, "bind": ["127.0.0.1", "-::1"], "listen_scope": "loopback",
        "tls_port": 0, "version": "7.0.15", "reach": "loopback"
    });
    let mut exposed = safe.clone();
    exposed["unauthenticated_probe"] = json!("accepted");
    exposed["requirepass_set"] = json!(false);
    exposed["acl_nopass_users"] = json!(["default"]);
    Samples { safe, exposed }
}

/// What the server told us, in canonical form. Fields are `None` when the monitoring user may not
/// read them (e.g. `CONFIG` renamed away).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Posture {
    /// Outcome of a command sent with no credentials: `accepted`, `auth_required`,
    /// `protected_mode_denied`, `permission_denied`, or `inconclusive`.
    unauthenticated_probe: String,
    requirepass_set: Option<bool>,
    /// Enabled ACL users that accept any password.
    acl_nopass_users: Option<Vec<String>>,
    protected_mode: Option<bool>,
    bind: Option<Vec<String>>,
    listen_scope: Option<String>,
    tls_port: Option<u16>,
    version: Option<String>,
    /// `loopback`, `private` or `internet` (see net::reach); absent in documents from before it.
    #[serde(default)]
    reach: Option<String>,
}

impl Source for RedisSource {
    fn target(&self) -> String {
        self.url.clone()
    }

    fn collect(&self) -> BoxFuture<'_, anyhow::Result<Collection>> {
        Box::pin(async move {
            let (posture, unknown) = self.observe().await?;
            Collection::single(
                &self.common.name,
                "redis",
                &common::host_port(&self.host, self.port),
                posture,
                unknown,
            )
        })
    }
}
