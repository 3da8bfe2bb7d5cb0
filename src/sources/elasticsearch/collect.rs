//! Reading an Elasticsearch/OpenSearch cluster over HTTP: probes without credentials, and settings with the monitoring user.

use super::*;

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

    pub(super) async fn observe(&self) -> anyhow::Result<(Posture, Vec<Unknown>)> {
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
        let mut unknown = Vec::new();
        let busy = "the cluster refused or failed the request; check its health (GET /_cluster/health) and logs";
        if let Answer::Other(s) = Answer::of(root_status) {
            unknown.push(Unknown::new(
                "anonymous_root",
                format!("GET / without credentials answered {s}"),
                busy,
            ));
        }
        if let Answer::Other(s) = Answer::of(idx_status) {
            unknown.push(Unknown::new(
                "anonymous_can_list_indices",
                format!("GET /_cat/indices without credentials answered {s}"),
                busy,
            ));
        }
        // A read without credentials: an anonymous role may read data without being allowed
        // to see the cluster (`/` and `_cat` need monitor privileges, `_search` does not).
        let (search_status, _, _) = self.anonymous("/_search?size=0").await?;
        let anonymous_can_search = match Answer::of(search_status) {
            Answer::Accepted => Some(true),
            Answer::AuthRequired | Answer::Forbidden => Some(false),
            Answer::Missing | Answer::Other(_) => {
                unknown.push(Unknown::new(
                    "anonymous_can_search",
                    format!("GET /_search without credentials answered {search_status}"),
                    busy,
                ));
                None
            }
        };
        // Without a monitoring user only the anonymous probes are evidence; with one, a read
        // it may not make is lost sight.
        let privilege = "give the monitoring user the `monitor` cluster privilege (OpenSearch: cluster_monitor)";
        let mut monitored = |field: &str, what: &str, status: reqwest::StatusCode| {
            if self.username.is_some() {
                unknown.push(Unknown::new(
                    field,
                    format!("{what} as the monitoring user answered {status}"),
                    privilege,
                ));
            }
        };

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
                // With the plugin removed or disabled, OpenSearch has no handler for the path;
                // any other refusal (a proxy's 404, a newer version) proves nothing.
                (s, Some(v)) if s.as_u16() == 400 && v.to_string().contains("no handler found") => Some(false),
                (s, _) => {
                    monitored("security_enabled", "GET /_plugins/_security/health", s);
                    None
                }
            }
        } else {
            match self.monitor("/_xpack?categories=features").await? {
                (s, Some(v)) if s.is_success() => v.pointer("/features/security/enabled").and_then(Value::as_bool),
                (s, _) => {
                    monitored("security_enabled", "GET /_xpack", s);
                    None
                }
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
            // Each node's name comes along, so that "no CORS settings" (a node without them) is
            // told apart from an answer naming no node at all (`{}`: a filter matching nothing).
            .monitor("/_nodes/settings?filter_path=nodes.*.name,nodes.*.settings.http.cors")
            .await?
        {
            (s, Some(v)) if s.is_success() && nodes(&v).next().is_some() => Some(nodes(&v).any(|n| {
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
            (s, _) => {
                // A success naming no node (`{}`) is no evidence either.
                monitored("cors_allow_any_origin", "GET /_nodes/settings", s);
                None
            }
        };
        let bound_addresses = match self
            .monitor("/_nodes/http?filter_path=nodes.*.http.bound_address")
            .await?
        {
            (s, Some(v)) if s.is_success() && nodes(&v).next().is_some() => {
                let mut all: Vec<String> = nodes(&v)
                    .filter_map(|n| n.pointer("/http/bound_address").and_then(Value::as_array))
                    .flatten()
                    .filter_map(|a| a.as_str().map(str::to_string))
                    .collect();
                all.sort();
                all.dedup();
                Some(all)
            }
            (s, _) => {
                monitored("bound_addresses", "GET /_nodes/http", s);
                None
            }
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
        Ok((
            Posture {
                distribution,
                version,
                anonymous_root: Answer::of(root_status).as_str(),
                anonymous_can_list_indices: idx_status.is_success(),
                anonymous_can_search,
                auth_schemes,
                security_enabled,
                anonymous_roles,
                http_tls: self.base.scheme() == "https",
                cors_allow_any_origin,
                bound_addresses,
                listen_scope,
                reach,
            },
            unknown,
        ))
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
