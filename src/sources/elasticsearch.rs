//! `kind = "elasticsearch"`: a self-hosted Elasticsearch (7.x, 8.x) or OpenSearch (1.x, 2.x)
//! cluster over HTTP — the Wyze case.
//!
//! Probes **without** credentials (`GET /`, `GET /_cat/indices`, and who an anonymous caller
//! is), and with the monitor's credentials reads whether security is on, CORS, and where the
//! nodes' HTTP layer binds.

use super::{
    Collection, Common, FieldChange, ResourceKind, Source, SourceKind, classify_flag, classify_rank,
    classify_risky_member,
};
use crate::model::{Classification, Finding, Severity};
use crate::net;
use crate::secret::{self, Secret};
use anyhow::{Context, anyhow};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::PathBuf;

pub const KIND: SourceKind = SourceKind {
    name: "elasticsearch",
    build,
    resource_kinds: &[ResourceKind {
        name: "elasticsearch",
        assess,
        classify,
    }],
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

fn build(common: &Common, table: toml::Table) -> Result<Box<dyn Source>, String> {
    let cfg: Config = super::parse_table(table)?;
    let base = url::Url::parse(&cfg.url).map_err(|e| format!("url {}: {e}", secret::redact_url(&cfg.url)))?;
    if !matches!(base.scheme(), "http" | "https") {
        return Err(format!("url must be http:// or https://, not {}://", base.scheme()));
    }
    if base.password().is_some() || !base.username().is_empty() {
        return Err(
            "put the monitoring user in `username` and its password in password_file or password_env, not in the url"
                .into(),
        );
    }
    let host = base.host_str().ok_or("url has no host")?.to_string();
    let port = base.port_or_known_default().unwrap_or(9200);
    let native = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let password = secret::load(
        &format!("source {}", common.name),
        cfg.password_file.as_deref(),
        cfg.password_env.as_deref(),
    )
    .map_err(|e| e.to_string())?;
    if password.is_some() && cfg.username.is_none() {
        return Err("a password is set but no `username`".into());
    }
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
        base,
        native,
        username: cfg.username,
        password,
        http,
    }))
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
            let posture = self.observe().await?;
            Collection::single(&self.common.name, "elasticsearch", &self.native, posture)
        })
    }
}

impl EsSource {
    fn url(&self, path: &str) -> anyhow::Result<url::Url> {
        self.base
            .join(path)
            .with_context(|| format!("building the URL for {path}"))
    }

    /// GET without credentials: status, `WWW-Authenticate` values, body as JSON (if it is).
    async fn anonymous(&self, path: &str) -> anyhow::Result<(reqwest::StatusCode, Vec<String>, Option<Value>)> {
        let resp = self
            .http
            .get(self.url(path)?)
            .send()
            .await
            .map_err(|e| anyhow!("GET {path} on {}: {}", self.base, plain(&e)))?;
        let status = resp.status();
        let schemes = resp
            .headers()
            .get_all(reqwest::header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split_whitespace().next().map(|s| s.trim_end_matches(',').to_string()))
            .collect();
        let body = resp.bytes().await.ok().and_then(|b| serde_json::from_slice(&b).ok());
        Ok((status, schemes, body))
    }

    /// GET as the monitoring user (or anonymously when none is configured).
    async fn monitor(&self, path: &str) -> anyhow::Result<(reqwest::StatusCode, Option<Value>)> {
        let mut req = self.http.get(self.url(path)?);
        if let Some(u) = &self.username {
            req = req.basic_auth(u, self.password.as_ref().map(|p| p.expose().to_string()));
        }
        let resp = req
            .send()
            .await
            .map_err(|e| anyhow!("GET {path} on {}: {}", self.base, plain(&e)))?;
        let status = resp.status();
        let body = resp.bytes().await.ok().and_then(|b| serde_json::from_slice(&b).ok());
        Ok((status, body))
    }

    async fn observe(&self) -> anyhow::Result<Posture> {
        let (root_status, mut auth_schemes, anon_root) = self.anonymous("/").await?;
        if root_status.is_server_error() {
            anyhow::bail!(
                "GET / on {} answered {root_status}: the cluster is not healthy enough to assess",
                self.base
            );
        }
        let (idx_status, _, _) = self.anonymous("/_cat/indices?format=json").await?;
        auth_schemes.sort();
        auth_schemes.dedup();

        let info = match anon_root.filter(|_| root_status.is_success()) {
            Some(v) => Some(v),
            None => match self.monitor("/").await? {
                (s, Some(v)) if s.is_success() => Some(v),
                (s, _) if self.username.is_some() => {
                    anyhow::bail!(
                        "GET / on {} as {} answered {s}: check the monitoring user's password and privileges",
                        self.base,
                        self.username.as_deref().unwrap_or_default()
                    )
                }
                _ => None,
            },
        };
        let distribution = info
            .as_ref()
            .and_then(|v| v.pointer("/version/distribution"))
            .and_then(Value::as_str)
            .unwrap_or("elasticsearch")
            .to_string();
        let version = info
            .as_ref()
            .and_then(|v| v.pointer("/version/number"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let opensearch = distribution == "opensearch";

        let security_enabled = if opensearch {
            match self.monitor("/_plugins/_security/health").await? {
                (s, Some(v)) if s.is_success() => Some(v.get("status").and_then(Value::as_str) == Some("UP")),
                (s, _) if matches!(Answer::of(s), Answer::Missing) => Some(false),
                _ => None,
            }
        } else {
            match self.monitor("/_xpack?categories=features").await? {
                (s, Some(v)) if s.is_success() => v.pointer("/features/security/enabled").and_then(Value::as_bool),
                _ => None,
            }
        };
        let anonymous_roles = {
            let path = if opensearch {
                "/_plugins/_security/authinfo"
            } else {
                "/_security/_authenticate"
            };
            match self.anonymous(path).await? {
                (s, _, Some(v)) if s.is_success() && security_enabled == Some(true) => {
                    let mut roles: Vec<String> = ["roles", "backend_roles"]
                        .iter()
                        .filter_map(|k| v.get(*k).and_then(Value::as_array))
                        .flatten()
                        .filter_map(|r| r.as_str().map(str::to_string))
                        .collect();
                    roles.sort();
                    roles.dedup();
                    Some(roles)
                }
                (s, _, _) if matches!(Answer::of(s), Answer::AuthRequired | Answer::Forbidden) => Some(vec![]),
                _ => None,
            }
        };
        let cors_allow_any_origin = match self
            .monitor("/_nodes/settings?filter_path=nodes.*.settings.http.cors")
            .await?
        {
            (s, Some(v)) if s.is_success() => Some(nodes(&v).any(|n| {
                let cors = n.pointer("/settings/http/cors");
                let enabled = cors
                    .and_then(|c| c.get("enabled"))
                    .is_some_and(|e| e == "true" || e == true);
                let origin = cors
                    .and_then(|c| c.get("allow-origin"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                enabled && matches!(origin.trim(), "*" | "/.*/" | "/.+/")
            })),
            (s, Some(_)) if s.is_success() => Some(false),
            _ => None,
        };
        let bound_addresses = match self
            .monitor("/_nodes/http?filter_path=nodes.*.http.bound_address")
            .await?
        {
            (s, Some(v)) if s.is_success() => {
                let mut all: Vec<String> = nodes(&v)
                    .filter_map(|n| n.pointer("/http/bound_address").and_then(Value::as_array))
                    .flatten()
                    .filter_map(|a| a.as_str().map(str::to_string))
                    .collect();
                all.sort();
                all.dedup();
                Some(all)
            }
            _ => None,
        };
        let scope = bound_addresses
            .as_ref()
            .map(|addrs| net::widest(addrs.iter().map(|a| a.rsplit_once(':').map(|(h, _)| h).unwrap_or(a))));
        let listen_scope = scope.map(|s| s.as_str().to_string());
        let reach = Some(
            net::reach(self.common.reach, scope, self.base.host_str().unwrap_or(""))
                .as_str()
                .to_string(),
        );
        Ok(Posture {
            distribution,
            version,
            anonymous_root: Answer::of(root_status).as_str(),
            anonymous_can_list_indices: idx_status.is_success(),
            auth_schemes,
            security_enabled,
            anonymous_roles,
            http_tls: self.base.scheme() == "https",
            cors_allow_any_origin,
            bound_addresses,
            listen_scope,
            reach,
        })
    }
}

fn nodes(v: &Value) -> impl Iterator<Item = &Value> {
    v.get("nodes")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|m| m.values())
}

/// An HTTP client error with its causes (the message names the URL once, before it).
fn plain(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut s = kind.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(cause) = src {
        s.push_str(&format!(": {cause}"));
        src = cause.source();
    }
    s
}

fn assess(posture: &Value) -> Result<Vec<Finding>, String> {
    let p: Posture =
        serde_json::from_value(posture.clone()).map_err(|e| format!("not an elasticsearch posture: {e}"))?;
    let mut out = Vec::new();
    let product = if p.distribution == "opensearch" {
        "OpenSearch"
    } else {
        "Elasticsearch"
    };
    let auth_off = net::auth_off_severity(p.reach.as_deref());
    if p.anonymous_can_list_indices || p.anonymous_root == "accepted" {
        out.push(Finding::new(
            "elasticsearch.anonymous.access",
            auth_off,
            true,
            format!(
                "{product} answers requests without credentials ({}): anyone who reaches it can list and read the indices. \
                 Turn security back on ({}) and restart, or firewall it off now.",
                if p.anonymous_can_list_indices { "GET /_cat/indices succeeded" } else { "GET / succeeded" },
                if p.distribution == "opensearch" { "remove plugins.security.disabled: true" } else { "xpack.security.enabled: true" }
            ),
        ));
    }
    if p.security_enabled == Some(false) {
        out.push(Finding::new(
            "elasticsearch.security.disabled",
            auth_off,
            p.anonymous_root == "accepted" || p.anonymous_can_list_indices,
            format!(
                "{product} security is disabled: no authentication, no authorisation, no audit. Set {} and restart.",
                if p.distribution == "opensearch" {
                    "plugins.security.disabled: false"
                } else {
                    "xpack.security.enabled: true"
                }
            ),
        ));
    }
    if let Some(roles) = p.anonymous_roles.as_ref().filter(|r| !r.is_empty()) {
        out.push(Finding::new(
            "elasticsearch.anonymous.roles",
            Severity::High,
            false,
            format!("Anonymous access is configured: callers without credentials get the roles {}. Remove the anonymous user or give it no data access.", roles.join(", ")),
        ));
    }
    if !p.http_tls && p.listen_scope.as_deref().is_some_and(|s| s != "loopback") {
        out.push(Finding::new(
            "elasticsearch.tls.disabled",
            Severity::High,
            false,
            format!("The HTTP layer has no TLS while it listens on {} addresses: passwords and data cross the network in clear. Enable HTTP TLS.", p.listen_scope.as_deref().unwrap_or("?")),
        ));
    }
    if p.cors_allow_any_origin == Some(true) {
        out.push(Finding::new(
            "elasticsearch.cors.allow_any_origin",
            Severity::Medium,
            false,
            "CORS allows any origin: any web page a user opens can call the cluster from their browser. Set http.cors.allow-origin to your own sites.",
        ));
    }
    out.extend(super::wide_listener(
        "elasticsearch.listen.wide",
        product,
        p.listen_scope.as_deref(),
        &p.bound_addresses.unwrap_or_default().join(", "),
    ));
    Ok(out)
}

fn classify(c: &FieldChange<'_>) -> Classification {
    if let Some(cl) = super::classify_reach(c) {
        return cl;
    }
    let weak = Classification::weakened;
    match c.path.trim_start_matches('/').split('/').collect::<Vec<_>>().as_slice() {
        ["anonymous_root"] => classify_rank(
            c.before,
            c.after,
            &["accepted", "forbidden", "auth_required"],
            weak(Severity::Critical),
        ),
        ["anonymous_can_list_indices"] => classify_flag(c.before, c.after, false, weak(Severity::Critical)),
        ["security_enabled"] => classify_flag(c.before, c.after, true, weak(Severity::Critical)),
        ["anonymous_roles", _] => classify_risky_member(c.before, c.after, weak(Severity::High)),
        ["http_tls"] => classify_flag(c.before, c.after, true, weak(Severity::High)),
        ["cors_allow_any_origin"] => classify_flag(c.before, c.after, false, weak(Severity::Medium)),
        _ => Classification::NEUTRAL,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ChangeClass;
    use serde_json::json;

    fn secured() -> Value {
        json!({"distribution": "elasticsearch", "version": "8.11.3", "anonymous_root": "auth_required", "anonymous_can_list_indices": false,
               "auth_schemes": ["ApiKey", "Basic", "Bearer"], "security_enabled": true, "anonymous_roles": [], "http_tls": true,
               "cors_allow_any_origin": false, "bound_addresses": ["127.0.0.1:9200"], "listen_scope": "loopback"})
    }
    fn with(mut v: Value, patch: Value) -> Value {
        for (k, x) in patch.as_object().unwrap() {
            v[k] = x.clone();
        }
        v
    }

    #[test]
    fn assess_table() {
        let cases: Vec<(&str, Value, Vec<(&str, Severity, bool)>)> = vec![
            ("secured", secured(), vec![]),
            (
                "security removed (the Wyze case)",
                with(
                    secured(),
                    json!({"anonymous_root": "accepted", "anonymous_can_list_indices": true, "security_enabled": false, "auth_schemes": [], "anonymous_roles": null}),
                ),
                vec![
                    ("elasticsearch.anonymous.access", Severity::Critical, true),
                    ("elasticsearch.security.disabled", Severity::Critical, true),
                ],
            ),
            (
                "anonymous user with roles",
                with(
                    secured(),
                    json!({"anonymous_root": "accepted", "anonymous_can_list_indices": true, "anonymous_roles": ["viewer"]}),
                ),
                vec![
                    ("elasticsearch.anonymous.access", Severity::Critical, true),
                    ("elasticsearch.anonymous.roles", Severity::High, false),
                ],
            ),
            (
                "anonymous user that can read nothing",
                with(
                    secured(),
                    json!({"anonymous_root": "forbidden", "anonymous_roles": ["monitoring_only"]}),
                ),
                vec![("elasticsearch.anonymous.roles", Severity::High, false)],
            ),
            (
                "plain HTTP on a private address, CORS open",
                with(
                    secured(),
                    json!({"http_tls": false, "bound_addresses": ["10.0.0.5:9200"], "listen_scope": "private", "cors_allow_any_origin": true}),
                ),
                vec![
                    ("elasticsearch.tls.disabled", Severity::High, false),
                    ("elasticsearch.cors.allow_any_origin", Severity::Medium, false),
                ],
            ),
            (
                "bound to every interface",
                with(
                    secured(),
                    json!({"bound_addresses": ["[::]:9200", "0.0.0.0:9200"], "listen_scope": "all_interfaces"}),
                ),
                vec![("elasticsearch.listen.wide", Severity::Low, false)],
            ),
        ];
        for (name, p, want) in cases {
            let got: Vec<(String, Severity, bool)> = assess(&p)
                .unwrap()
                .into_iter()
                .map(|f| (f.rule, f.severity, f.exposed))
                .collect();
            let want: Vec<(String, Severity, bool)> = want.into_iter().map(|(r, s, e)| (r.to_string(), s, e)).collect();
            assert_eq!(got, want, "case: {name}");
        }
    }

    #[test]
    fn classify_table() {
        let d = secured();
        let cases: Vec<(&str, Value, Value, ChangeClass, Severity)> = vec![
            (
                "/anonymous_root",
                json!("auth_required"),
                json!("accepted"),
                ChangeClass::Weakened,
                Severity::Critical,
            ),
            (
                "/anonymous_root",
                json!("accepted"),
                json!("auth_required"),
                ChangeClass::Strengthened,
                Severity::Low,
            ),
            (
                "/anonymous_can_list_indices",
                json!(false),
                json!(true),
                ChangeClass::Weakened,
                Severity::Critical,
            ),
            (
                "/security_enabled",
                json!(true),
                json!(false),
                ChangeClass::Weakened,
                Severity::Critical,
            ),
            (
                "/anonymous_roles/0",
                Value::Null,
                json!("viewer"),
                ChangeClass::Weakened,
                Severity::High,
            ),
            (
                "/http_tls",
                json!(true),
                json!(false),
                ChangeClass::Weakened,
                Severity::High,
            ),
            (
                "/cors_allow_any_origin",
                json!(false),
                json!(true),
                ChangeClass::Weakened,
                Severity::Medium,
            ),
            (
                "/listen_scope",
                json!("loopback"),
                json!("all_interfaces"),
                ChangeClass::Weakened,
                Severity::Medium,
            ),
            (
                "/version",
                json!("8.11.3"),
                json!("8.12.0"),
                ChangeClass::Neutral,
                Severity::Low,
            ),
        ];
        for (path, before, after, class, sev) in cases {
            let got = classify(&FieldChange {
                path,
                before: &before,
                after: &after,
                before_doc: &d,
                after_doc: &d,
            });
            assert_eq!((got.class, got.severity), (class, sev), "{path}");
        }
    }
}
