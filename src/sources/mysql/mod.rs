//! `kind = "mysql"`: one MySQL or MariaDB server, read through a monitoring account.
//!
//! Captures accounts with an empty password, anonymous accounts, `%`-host accounts with global
//! privileges, `require_secure_transport`, `bind_address` / `skip_networking`, TLS availability,
//! and whether a login with a made-up user name and no password succeeds at all (a server
//! running with `--skip-grant-tables`, or with an anonymous account, lets anyone in).

mod collect;
mod rules;

use super::common::{self, classify_flag, classify_rank, classify_risky_member};
use super::{Assessment, Collection, Common, FieldChange, ResourceKind, Samples, Source, SourceKind};
use crate::model::{Classification, Finding, Severity, Unknown};
use crate::net;
use crate::secret::{self, Secret};
use anyhow::anyhow;
use futures::future::BoxFuture;
use mysql_async::prelude::Queryable;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::path::PathBuf;

pub const KIND: SourceKind = SourceKind {
    name: "mysql",
    check: |_, table| parse(table.clone()).map(|_| ()),
    build,
    resource_kinds: &[ResourceKind {
        name: "mysql",
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
    /// `mysql://user[:password]@host:port` (MariaDB too).
    url: String,
    password_file: Option<PathBuf>,
    password_env: Option<String>,
    /// PEM bundle to verify the server's certificate; turns TLS on (and requires it).
    ca_file: Option<PathBuf>,
}

struct MysqlSource {
    common: Common,
    shown_url: String,
    native: String,
    host: String,
    port: u16,
    opts: mysql_async::Opts,
}

/// The config and the driver's reading of the URL. Pure.
fn parse(table: toml::Table) -> Result<(Config, mysql_async::Opts), String> {
    let cfg: Config = common::parse_table(table)?;
    let shown_url = secret::redact_dsn(&cfg.url);
    let opts = mysql_async::Opts::from_url(&cfg.url)
        .map_err(|e| format!("url {shown_url}: {}", secret::redact_dsn(&e.to_string())))?;
    if opts.user().is_none() {
        return Err(format!(
            "url {shown_url} names no user: add the monitoring account, e.g. mysql://lockwatch@host:3306"
        ));
    }
    Ok((cfg, opts))
}

fn build(common: &Common, table: toml::Table) -> Result<Box<dyn Source>, String> {
    let (cfg, opts) = parse(table)?;
    let password = common::password(
        &common.name,
        opts.pass().map(Secret::new),
        cfg.password_file.as_deref(),
        cfg.password_env.as_deref(),
    )?;
    let mut b = mysql_async::OptsBuilder::from_opts(opts)
        .prefer_socket(false)
        .db_name(None::<String>)
        .pass(password.map(|p| p.expose().to_string()));
    if let Some(ca) = &cfg.ca_file {
        std::fs::metadata(ca).map_err(|e| format!("ca_file {}: {e}", ca.display()))?;
        b = b.ssl_opts(mysql_async::SslOpts::default().with_root_certs(vec![ca.clone().into()]));
    }
    let opts = mysql_async::Opts::from(b);
    let host = opts.ip_or_hostname().to_string();
    let port = opts.tcp_port();
    Ok(Box::new(MysqlSource {
        common: common.clone(),
        shown_url: secret::redact_dsn(&cfg.url),
        native: common::host_port(&host, port),
        host,
        port,
        opts,
    }))
}

fn canaries(secret: &str, addr: &str, dir: &std::path::Path) -> Vec<String> {
    let file = dir.join("mysql-password");
    let _ = std::fs::write(&file, secret);
    vec![
        format!("url = \"mysql://lockwatch:{secret}@{addr}\""),
        format!("url = \"mysql://lockwatch@{addr}?password={secret}\""),
        format!(
            "url = \"mysql://lockwatch@{addr}\"\npassword_file = \"{}\"",
            file.display()
        ),
    ]
}

fn samples() -> Samples {
    let safe = json!({"flavor": "mariadb", "version": "10.11.19-MariaDB", "unauthenticated_login": "denied",
        "accounts_without_password": [], "anonymous_accounts": [], "wildcard_host_privileged": [],
        "require_secure_transport": true, "tls_available": true, "bind_address": "10.0.0.5",
        "skip_networking": false, "listen_scope": "private", "reach": "private"});
    let mut exposed = safe.clone();
    exposed["unauthenticated_login"] = json!("accepted");
    exposed["accounts_without_password"] = json!(["app@%"]);
    Samples { safe, exposed }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Posture {
    /// `mariadb` or `mysql`.
    flavor: String,
    version: String,
    /// A login as a random user with no password: `accepted`, `denied` or `inconclusive`.
    unauthenticated_login: String,
    /// Unlocked accounts (`user@host`) whose password is empty; `None` when unreadable.
    accounts_without_password: Option<Vec<String>>,
    /// Unlocked accounts with an empty user name (`@host`): any user name matches them.
    anonymous_accounts: Option<Vec<String>>,
    /// Accounts reachable from any host (`%`) with global privileges.
    wildcard_host_privileged: Option<Vec<String>>,
    require_secure_transport: Option<bool>,
    tls_available: Option<bool>,
    bind_address: Option<String>,
    skip_networking: Option<bool>,
    listen_scope: Option<String>,
    /// `loopback`, `private` or `internet` (see net::reach); absent in documents from before it.
    #[serde(default)]
    reach: Option<String>,
}

impl Source for MysqlSource {
    fn target(&self) -> String {
        self.shown_url.clone()
    }

    fn collect(&self) -> BoxFuture<'_, anyhow::Result<Collection>> {
        Box::pin(async move {
            let (posture, unknown) = self.observe().await?;
            Collection::single(&self.common.name, "mysql", &self.native, posture, unknown)
        })
    }
}
