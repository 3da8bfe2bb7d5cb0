//! `kind = "mongodb"`: one MongoDB server (`mongod`, standalone or one member of a replica set)
//! — with Elasticsearch, the store most wiped in the 2020 "Meow" wave.
//!
//! Without credentials it asks `buildInfo` (allowed to anyone) and `listDatabases`: a server with
//! access control refuses the second with code 13 (Unauthorized); one that answers is open to
//! anybody who reaches it. With the monitoring user it reads the server's startup options
//! (`getCmdLineOpts`: authorization, bindIp, TLS mode, keyFile), its users and their roles and
//! SCRAM mechanisms (`usersInfo`), and the mechanisms the server accepts (`getParameter`).

mod collect;
mod rules;

use super::common::{self, classify_rank, classify_risky_member};
use super::{Assessment, Collection, Common, FieldChange, ResourceKind, Samples, Source, SourceKind};
use crate::model::{Classification, Finding, Severity, Unknown};
use crate::net;
use crate::secret::{self, Secret};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::path::PathBuf;

pub const KIND: SourceKind = SourceKind {
    name: "mongodb",
    check: |_, table| parse(table.clone()).map(|_| ()),
    build,
    resource_kinds: &[ResourceKind {
        name: "mongodb",
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
    /// `mongodb://[user[:password]@]host:port/[?authSource=admin&tls=true&authMechanism=…]`.
    url: String,
    password_file: Option<PathBuf>,
    password_env: Option<String>,
    /// PEM bundle to verify the server's certificate (turns TLS on).
    ca_file: Option<PathBuf>,
}

/// What the url says, checked. Pure.
#[derive(Debug, Clone, PartialEq)]
struct Target {
    host: String,
    port: u16,
    username: Option<String>,
    auth_source: String,
    mechanism: Option<String>,
    tls: bool,
}

struct MongoSource {
    common: Common,
    url: String,
    target: Target,
    password: Option<Secret>,
    ca_file: Option<PathBuf>,
}

const URL_OPTIONS: &str = "authSource, authMechanism, tls (or ssl)";

/// The config and the url, checked. Pure: no file or environment is read.
fn parse(table: toml::Table) -> Result<(Config, Target, Option<Secret>), String> {
    let cfg: Config = common::parse_table(table)?;
    let shown = secret::redact_dsn(&cfg.url);
    if cfg.url.starts_with("mongodb+srv://") {
        return Err(format!(
            "url {shown}: mongodb+srv:// (a DNS seed list) is not supported; name one server, \
             e.g. mongodb://lockwatch@db1.example.com:27017/?authSource=admin, and add a source per member"
        ));
    }
    let url = url::Url::parse(&cfg.url).map_err(|e| {
        format!("url {shown}: {e} (one server per source: mongodb://[user@]host:port/?authSource=admin)")
    })?;
    if url.scheme() != "mongodb" {
        return Err(format!("url scheme must be mongodb://, not {}://", url.scheme()));
    }
    let host = url
        .host_str()
        .ok_or_else(|| format!("url {shown} has no host"))?
        .trim_matches(['[', ']'])
        .to_string();
    let mut target = Target {
        host,
        port: url.port().unwrap_or(27017),
        username: Some(url.username())
            .filter(|u| !u.is_empty())
            .map(common::percent_decode),
        auth_source: "admin".into(),
        mechanism: None,
        tls: cfg.ca_file.is_some(),
    };
    let path_db = url.path().trim_start_matches('/');
    if !path_db.is_empty() {
        target.auth_source = common::percent_decode(path_db);
    }
    for (k, v) in url.query_pairs() {
        match k.as_ref() {
            "authSource" => target.auth_source = v.into_owned(),
            "authMechanism" => match v.as_ref() {
                "SCRAM-SHA-1" | "SCRAM-SHA-256" => target.mechanism = Some(v.into_owned()),
                other => {
                    return Err(format!(
                        "url: authMechanism={other} is not supported; use SCRAM-SHA-256 (or SCRAM-SHA-1), or leave it out to negotiate"
                    ));
                }
            },
            "tls" | "ssl" => match v.as_ref() {
                "true" => target.tls = true,
                "false" if cfg.ca_file.is_none() => target.tls = false,
                "false" => return Err("url says tls=false but ca_file is set; drop one of them".into()),
                other => return Err(format!("url: {k}={other} must be true or false")),
            },
            other => {
                return Err(format!(
                    "url: option `{other}` is not one lockwatch reads (it reads {URL_OPTIONS}); remove it"
                ));
            }
        }
    }
    let inline = url.password().map(|p| Secret::new(common::percent_decode(p)));
    if target.username.is_none() && (inline.is_some() || cfg.password_file.is_some() || cfg.password_env.is_some()) {
        return Err(
            "a password is set but the url names no user; write the monitoring user in the url: mongodb://lockwatch@host:27017/"
                .into(),
        );
    }
    Ok((cfg, target, inline))
}

fn build(common: &Common, table: toml::Table) -> Result<Box<dyn Source>, String> {
    let (cfg, target, inline) = parse(table)?;
    let password = common::password(
        &common.name,
        inline,
        cfg.password_file.as_deref(),
        cfg.password_env.as_deref(),
    )?;
    if target.username.is_some() && password.is_none() {
        return Err(format!(
            "the url names user {} but no password is given; add it with password_file or password_env",
            target.username.as_deref().unwrap_or_default()
        ));
    }
    if let Some(ca) = &cfg.ca_file {
        std::fs::metadata(ca).map_err(|e| format!("ca_file {}: {e}", ca.display()))?;
    }
    Ok(Box::new(MongoSource {
        common: common.clone(),
        url: secret::redact_dsn(&cfg.url),
        target,
        password,
        ca_file: cfg.ca_file,
    }))
}

fn canaries(secret: &str, addr: &str, dir: &std::path::Path) -> Vec<String> {
    let file = dir.join("mongodb-password");
    let _ = std::fs::write(&file, secret);
    vec![
        format!("url = \"mongodb://lockwatch:{secret}@{addr}/?authSource=admin\""),
        format!("url = \"mongodb://lockwatch:{secret}@{addr}/?tls=true\""),
        format!(
            "url = \"mongodb://lockwatch@{addr}/\"\npassword_file = \"{}\"",
            file.display()
        ),
    ]
}

fn samples() -> Samples {
    let safe = json!({
        "unauthenticated_probe": "auth_required", "authorization": "enabled", "key_file": false,
        "bind_ip": ["10.0.0.9"], "listen_scope": "private", "tls_mode": "requireTLS",
        "privileged_users": ["admin.admin (root)"], "scram_sha1_only_users": [],
        "auth_mechanisms": ["SCRAM-SHA-256"], "version": "7.0.14", "reach": "private"
    });
    let mut exposed = safe.clone();
    exposed["unauthenticated_probe"] = json!("accepted");
    exposed["authorization"] = json!("disabled");
    Samples { safe, exposed }
}

/// What the server told us, in canonical form. A field is `None` when it could not be read
/// (no monitoring user, or one without the grant).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Posture {
    /// `listDatabases` sent with no credentials: `accepted` (anyone can list and read the data),
    /// `auth_required` (code 13), or `inconclusive`.
    unauthenticated_probe: String,
    /// `security.authorization` as the server was started: `enabled` or `disabled` (a keyFile
    /// alone turns access control on, so counts as enabled).
    authorization: Option<String>,
    key_file: Option<bool>,
    /// `net.bindIp` (`bindIpAll` shows as `0.0.0.0` and `::`).
    bind_ip: Option<Vec<String>>,
    listen_scope: Option<String>,
    /// `net.tls.mode`: `disabled`, `allowTLS`, `preferTLS` or `requireTLS`.
    tls_mode: Option<String>,
    /// `db.user (role)` for each user holding a role that can read or change every database or
    /// its users (root, userAdminAnyDatabase, readWriteAnyDatabase…), sorted.
    privileged_users: Option<Vec<String>>,
    /// Users that can log in only with SCRAM-SHA-1, sorted.
    scram_sha1_only_users: Option<Vec<String>>,
    /// `authenticationMechanisms` the server accepts, sorted.
    auth_mechanisms: Option<Vec<String>>,
    version: Option<String>,
    /// `loopback`, `private` or `internet` (see net::reach).
    reach: Option<String>,
}

impl Source for MongoSource {
    fn target(&self) -> String {
        self.url.clone()
    }

    fn collect(&self) -> BoxFuture<'_, anyhow::Result<Collection>> {
        Box::pin(async move {
            let (posture, unknown) = self.observe().await?;
            Collection::single(
                &self.common.name,
                "mongodb",
                &common::host_port(&self.target.host, self.target.port),
                posture,
                unknown,
            )
        })
    }
}

#[cfg(test)]
mod config_tests {
    use super::*;

    fn parse_url(extra: &str) -> Result<Target, String> {
        let table: toml::Table = toml::from_str(extra).unwrap();
        parse(table).map(|(_, t, _)| t)
    }

    #[test]
    fn url_table() {
        let t = parse_url("url = \"mongodb://lockwatch@10.0.0.9:27018/?authSource=ops\"").unwrap();
        assert_eq!(
            t,
            Target {
                host: "10.0.0.9".into(),
                port: 27018,
                username: Some("lockwatch".into()),
                auth_source: "ops".into(),
                mechanism: None,
                tls: false
            }
        );
        let t = parse_url("url = \"mongodb://[::1]/?tls=true&authMechanism=SCRAM-SHA-1\"").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.tls), ("::1", 27017, true));
        assert_eq!(t.mechanism.as_deref(), Some("SCRAM-SHA-1"));
        let t = parse_url("url = \"mongodb://u%40x@h/reports\"\nca_file = \"/x.pem\"").unwrap();
        assert_eq!(
            (t.username.as_deref(), t.auth_source.as_str(), t.tls),
            (Some("u@x"), "reports", true)
        );
        let errors = [
            ("url = \"mongodb+srv://c.example.com\"", "mongodb+srv"),
            ("url = \"postgres://h\"", "scheme"),
            ("url = \"mongodb://h/?replicaSet=rs0\"", "replicaSet"),
            ("url = \"mongodb://h/?authMechanism=PLAIN\"", "PLAIN"),
            ("url = \"mongodb://h\"\npassword_env = \"X\"", "names no user"),
            ("url = \"mongodb://h/?tls=false\"\nca_file = \"/x\"", "tls=false"),
            ("url = \"mongodb://h\"\nuser = \"x\"", "unknown field"),
        ];
        for (cfg, want) in errors {
            let e = parse_url(cfg).unwrap_err();
            assert!(e.contains(want), "{cfg}: {e}");
        }
    }
}
