//! `kind = "elasticsearch"`: a self-hosted Elasticsearch (7.x, 8.x) or OpenSearch (1.x, 2.x)
//! cluster over HTTP — the Wyze case.
//!
//! Probes **without** credentials (`GET /`, `GET /_cat/indices`, and who an anonymous caller
//! is), and with the monitor's credentials reads whether security is on, CORS, and where the
//! nodes' HTTP layer binds.

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

pub const KIND: SourceKind = SourceKind {
    name: "elasticsearch",
    check: |_, table| parse(table.clone()).map(|_| ()),
    build,
    resource_kinds: &[ResourceKind {
        name: "elasticsearch",
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
    /// `http://host:9200` or `https://host:9200` (no credentials in the URL).
    url: String,
    /// The monitoring user (needs the `monitor` cluster privilege).
    username: Option<String>,
    password_file: Option<PathBuf>,
    password_env: Option<String>,
    /// PEM bundle to verify the cluster's certificate (ES 8 generates its own CA).
    ca_file: Option<PathBuf>,
}

struct EsSource {
    common: Common,
    base: url::Url,
    native: String,
    username: Option<String>,
    password: Option<Secret>,
    http: reqwest::Client,
}

/// The config and its base URL, checked. Pure.
fn parse(table: toml::Table) -> Result<(Config, url::Url), String> {
    let cfg: Config = common::parse_table(table)?;
    let base = url::Url::parse(&cfg.url).map_err(|e| format!("url {}: {e}", secret::redact_dsn(&cfg.url)))?;
    if !matches!(base.scheme(), "http" | "https") {
        return Err(format!("url must be http:// or https://, not {}://", base.scheme()));
    }
    if base.password().is_some() || !base.username().is_empty() {
        return Err(
            "put the monitoring user in `username` and its password in password_file or password_env, not in the url"
                .into(),
        );
    }
    if base.host_str().is_none() {
        return Err("url has no host".into());
    }
    if (cfg.password_file.is_some() || cfg.password_env.is_some()) && cfg.username.is_none() {
        return Err("a password is set but no `username`".into());
    }
    Ok((cfg, base))
}

fn build(common: &Common, table: toml::Table) -> Result<Box<dyn Source>, String> {
    let (cfg, base) = parse(table)?;
    let host = base.host_str().unwrap_or_default().to_string();
    let port = base.port_or_known_default().unwrap_or(9200);
    let password = common::password(
        &common.name,
        None,
        cfg.password_file.as_deref(),
        cfg.password_env.as_deref(),
    )?;
    let mut http = reqwest::Client::builder()
        .timeout(common.timeout)
        .connect_timeout(common.timeout)
        .redirect(reqwest::redirect::Policy::none());
    if let Some(ca) = &cfg.ca_file {
        let pem = std::fs::read(ca).map_err(|e| format!("ca_file {}: {e}", ca.display()))?;
        let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| format!("ca_file {}: {e}", ca.display()))?;
        http = http.add_root_certificate(cert);
    }
    let http = http.build().map_err(|e| format!("building the HTTP client: {e}"))?;
    Ok(Box::new(EsSource {
        common: common.clone(),
        native: common::host_port(&host, port),
        base,
        username: cfg.username,
        password,
        http,
    }))
}

fn canaries(secret: &str, addr: &str, dir: &std::path::Path) -> Vec<String> {
    let file = dir.join("es-password");
    let _ = std::fs::write(&file, secret);
    vec![
        format!(
            "url = \"http://{addr}\"\nusername = \"monitor\"\npassword_file = \"{}\"",
            file.display()
        ),
        format!(
            "url = \"https://{addr}\"\nusername = \"monitor\"\npassword_file = \"{}\"",
            file.display()
        ),
        // Refused with an error that must not repeat the password.
        format!("url = \"http://monitor:{secret}@{addr}\""),
    ]
}

fn samples() -> Samples {
    let safe = json!({"distribution": "elasticsearch", "version": "8.11.3", "anonymous_root": "auth_required",
        "anonymous_can_list_indices": false, "auth_schemes": ["ApiKey", "Basic", "Bearer"], "security_enabled": true,
        "anonymous_roles": [], "http_tls": true, "cors_allow_any_origin": false, "bound_addresses": ["10.0.0.7:9200"],
        "listen_scope": "private", "reach": "private"});
    let mut exposed = safe.clone();
    exposed["anonymous_root"] = json!("accepted");
    exposed["anonymous_can_list_indices"] = json!(true);
    exposed["security_enabled"] = json!(false);
    exposed["auth_schemes"] = json!([]);
    Samples { safe, exposed }
}

/// What a caller without credentials got back from a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Accepted,
    AuthRequired,
    Forbidden,
    Missing,
    Other(u16),
}

impl Answer {
    fn of(status: reqwest::StatusCode) -> Answer {
        match status.as_u16() {
            200..=299 => Answer::Accepted,
            401 => Answer::AuthRequired,
            403 => Answer::Forbidden,
            400 | 404 | 405 => Answer::Missing,
            s => Answer::Other(s),
        }
    }
    fn as_str(self) -> String {
        match self {
            Answer::Accepted => "accepted".into(),
            Answer::AuthRequired => "auth_required".into(),
            Answer::Forbidden => "forbidden".into(),
            Answer::Missing => "not_found".into(),
            Answer::Other(s) => format!("status_{s}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Posture {
    /// `elasticsearch` or `opensearch`.
    distribution: String,
    version: Option<String>,
    /// `GET /` without credentials: `accepted`, `auth_required`, `forbidden`, `status_NNN`.
    anonymous_root: String,
    /// `GET /_cat/indices` without credentials answered: anyone can see (and likely read) the data.
    anonymous_can_list_indices: bool,
    /// `GET /_search?size=0` without credentials answered: anyone can read the data. Absent in
    /// documents from before it was probed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    anonymous_can_search: Option<bool>,
    /// The authentication schemes the cluster offers in `WWW-Authenticate` (Basic, Bearer, ApiKey…).
    auth_schemes: Vec<String>,
    /// Security (X-Pack security / the OpenSearch security plugin) is on; `None` when unreadable.
    security_enabled: Option<bool>,
    /// Roles an unauthenticated caller gets when anonymous access is configured.
    anonymous_roles: Option<Vec<String>>,
    http_tls: bool,
    /// Some node allows cross-origin requests from any site.
    cors_allow_any_origin: Option<bool>,
    bound_addresses: Option<Vec<String>>,
    listen_scope: Option<String>,
    /// `loopback`, `private` or `internet` (see net::reach); absent in documents from before it.
    #[serde(default)]
    reach: Option<String>,
}

impl Source for EsSource {
    fn target(&self) -> String {
        self.base.to_string()
    }

    fn collect(&self) -> BoxFuture<'_, anyhow::Result<Collection>> {
        Box::pin(async move {
            let (posture, unknown) = self.observe().await?;
            Collection::single(&self.common.name, "elasticsearch", &self.native, posture, unknown)
        })
    }
}
