//! `kind = "redis"`: one Redis server.
//!
//! The monitor connects with its own credentials to read `CONFIG` and `ACL LIST`, and a second,
//! credential-less connection checks whether the server runs a command for anyone.

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
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const KIND: SourceKind = SourceKind {
    name: "redis",
    build,
    resource_kinds: &[ResourceKind {
        name: "redis",
        assess,
        classify,
    }],
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// `redis://[user[:password]@]host:port` (or `rediss://` for TLS).
    url: String,
    password_file: Option<PathBuf>,
    password_env: Option<String>,
}

struct RedisSource {
    common: Common,
    url: String,
    host: String,
    port: u16,
    tls: bool,
    username: Option<String>,
    password: Option<Secret>,
}

fn build(common: &Common, table: toml::Table) -> Result<Box<dyn Source>, String> {
    let cfg: Config = super::parse_table(table)?;
    let url = url::Url::parse(&cfg.url).map_err(|e| format!("url {}: {e}", secret::redact_url(&cfg.url)))?;
    let tls = match url.scheme() {
        "redis" => false,
        "rediss" => true,
        other => {
            return Err(format!("url scheme must be redis:// or rediss://, not {other}://"));
        }
    };
    let host = url
        .host_str()
        .ok_or("url has no host")?
        .trim_matches(['[', ']'])
        .to_string();
    let port = url.port().unwrap_or(6379);
    let inline = url.password().map(|p| Secret::new(percent_decode(p)));
    let from_file = secret::load(
        &format!("source {}", common.name),
        cfg.password_file.as_deref(),
        cfg.password_env.as_deref(),
    )
    .map_err(|e| e.to_string())?;
    if inline.is_some() && from_file.is_some() {
        return Err(
            "the url already holds a password; remove it from the url or drop password_file/password_env".into(),
        );
    }
    let username = Some(url.username()).filter(|u| !u.is_empty()).map(percent_decode);
    Ok(Box::new(RedisSource {
        common: common.clone(),
        url: secret::redact_url(&cfg.url),
        host,
        port,
        tls,
        username,
        password: inline.or(from_file),
    }))
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
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
            let posture = self.observe().await?;
            let native = if self.host.contains(':') {
                format!("[{}]:{}", self.host, self.port)
            } else {
                format!("{}:{}", self.host, self.port)
            };
            Collection::single(&self.common.name, "redis", &native, posture)
        })
    }
}

impl RedisSource {
    fn connection_info(&self, with_credentials: bool) -> anyhow::Result<redis::ConnectionInfo> {
        let addr = if self.tls {
            redis::ConnectionAddr::TcpTls {
                host: self.host.clone(),
                port: self.port,
                insecure: false,
                tls_params: None,
            }
        } else {
            redis::ConnectionAddr::Tcp(self.host.clone(), self.port)
        };
        let mut settings = redis::RedisConnectionInfo::default();
        if with_credentials {
            if let Some(u) = &self.username {
                settings = settings.set_username(u.clone());
            }
            if let Some(p) = &self.password {
                settings = settings.set_password(p.expose().to_string());
            }
        }
        use redis::IntoConnectionInfo;
        Ok(addr.into_connection_info()?.set_redis_settings(settings))
    }

    async fn connect(&self, with_credentials: bool) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
        let client = redis::Client::open(
            self.connection_info(with_credentials)
                .map_err(|e| redis::RedisError::from(std::io::Error::other(e.to_string())))?,
        )?;
        let cfg = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.common.timeout))
            .set_response_timeout(Some(self.common.timeout));
        client.get_multiplexed_async_connection_with_config(&cfg).await
    }

    async fn observe(&self) -> anyhow::Result<Posture> {
        let mut con = match self.connect(true).await {
            Ok(con) => con,
            // With its password removed, Redis refuses AUTH itself ("called without any password
            // configured"). If it then serves a connection without credentials, it is open, and
            // that is exactly what we must report rather than going blind.
            Err(e) if self.password.is_some() && e.kind() == redis::ErrorKind::AuthenticationFailed => {
                let mut open = self.connect(false).await.map_err(|_| self.auth_error(&e))?;
                let _: String = redis::cmd("PING")
                    .query_async(&mut open)
                    .await
                    .map_err(|_| self.auth_error(&e))?;
                tracing::warn!(target = %self.url, "the monitoring password was refused but the server answers without one: authentication is off");
                open
            }
            Err(e) => return Err(self.auth_error(&e)),
        };

        let info: String = redis::cmd("INFO")
            .arg("server")
            .query_async(&mut con)
            .await
            .context("INFO server")?;
        let version = info
            .lines()
            .find_map(|l| l.strip_prefix("redis_version:"))
            .map(|v| v.trim().to_string());

        let requirepass = config_get(&mut con, "requirepass").await.map(|v| !v.is_empty());
        let protected_mode = config_get(&mut con, "protected-mode").await.map(|v| v == "yes");
        let bind = config_get(&mut con, "bind")
            .await
            .map(|v| v.split_whitespace().map(str::to_string).collect::<Vec<_>>());
        let tls_port = config_get(&mut con, "tls-port")
            .await
            .and_then(|v| v.parse::<u16>().ok());
        let acl: Option<Vec<String>> = redis::cmd("ACL").arg("LIST").query_async(&mut con).await.ok();
        let acl_nopass_users = acl.map(|lines| nopass_users(&lines));
        let scope = bind.as_ref().map(|b| net::widest(b.iter().map(String::as_str)));
        let listen_scope = scope.map(|s| s.as_str().to_string());
        let reach = Some(net::reach(self.common.reach, scope, &self.host).as_str().to_string());

        let unauthenticated_probe = self.probe_without_credentials().await;
        Ok(Posture {
            unauthenticated_probe,
            requirepass_set: requirepass,
            acl_nopass_users,
            protected_mode,
            bind,
            listen_scope,
            tls_port,
            version,
            reach,
        })
    }

    fn auth_error(&self, e: &redis::RedisError) -> anyhow::Error {
        anyhow!(
            "connecting to {} as the monitoring user: {e} (check the url and the password)",
            self.url
        )
    }

    /// Send `DBSIZE` on a connection that never authenticates, and classify the answer.
    async fn probe_without_credentials(&self) -> String {
        let answer = if self.tls {
            self.probe_tls().await
        } else {
            self.probe_plain().await
        };
        match answer {
            Ok(line) => classify_probe_reply(&line).to_string(),
            Err(e) => {
                tracing::debug!(target = %self.url, error = %e, "unauthenticated probe inconclusive");
                "inconclusive".to_string()
            }
        }
    }

    async fn probe_plain(&self) -> anyhow::Result<String> {
        let t = self.common.timeout;
        let mut s = tokio::time::timeout(t, tokio::net::TcpStream::connect((self.host.as_str(), self.port))).await??;
        s.write_all(b"*1\r\n$6\r\nDBSIZE\r\n").await?;
        let mut buf = vec![0u8; 512];
        let n = tokio::time::timeout(t, s.read(&mut buf)).await??;
        Ok(String::from_utf8_lossy(&buf[..n])
            .lines()
            .next()
            .unwrap_or("")
            .to_string())
    }

    async fn probe_tls(&self) -> anyhow::Result<String> {
        let mut con = self.connect(false).await?;
        match redis::cmd("DBSIZE").query_async::<i64>(&mut con).await {
            Ok(n) => Ok(format!(":{n}")),
            Err(e) => Ok(format!("-{} {}", e.code().unwrap_or("ERR"), e)),
        }
    }
}

async fn config_get(con: &mut redis::aio::MultiplexedConnection, key: &str) -> Option<String> {
    let pairs: Vec<String> = redis::cmd("CONFIG").arg("GET").arg(key).query_async(con).await.ok()?;
    pairs
        .chunks(2)
        .find(|c| c.len() == 2 && c[0] == key)
        .map(|c| c[1].clone())
}

/// A RESP reply line to a probe → outcome.
fn classify_probe_reply(line: &str) -> &'static str {
    let upper = line.to_ascii_uppercase();
    if line.starts_with(':') || line.starts_with('+') {
        "accepted"
    } else if upper.starts_with("-NOAUTH") || upper.contains("AUTHENTICATION REQUIRED") {
        "auth_required"
    } else if upper.starts_with("-DENIED") {
        "protected_mode_denied"
    } else if upper.starts_with("-NOPERM") {
        "permission_denied"
    } else {
        "inconclusive"
    }
}

/// `ACL LIST` lines (`user default on nopass ~* &* +@all`) → enabled users with `nopass`.
fn nopass_users(lines: &[String]) -> Vec<String> {
    let mut users: Vec<String> = lines
        .iter()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            if words.next() != Some("user") {
                return None;
            }
            let name = words.next()?.to_string();
            let flags: Vec<&str> = words.collect();
            (flags.contains(&"on") && flags.contains(&"nopass")).then_some(name)
        })
        .collect();
    users.sort();
    users
}

fn assess(posture: &Value) -> Result<Vec<Finding>, String> {
    let p: Posture = serde_json::from_value(posture.clone()).map_err(|e| format!("not a redis posture: {e}"))?;
    let mut out = Vec::new();
    let loopback_only = p.listen_scope.as_deref() == Some("loopback");
    let auth_off = net::auth_off_severity(p.reach.as_deref());
    let default_nopass = p
        .acl_nopass_users
        .as_ref()
        .is_some_and(|u| u.iter().any(|n| n == "default"));
    match p.unauthenticated_probe.as_str() {
        "accepted" => out.push(Finding::new(
            "redis.auth.disabled",
            auth_off,
            true,
            "Redis runs commands for clients that send no password (a credential-less DBSIZE succeeded). \
             Set a password now: `CONFIG SET requirepass <secret>` (or `ACL SETUSER default on >secret`), \
             persist it in redis.conf, then update the clients.",
        )),
        _ if p.requirepass_set == Some(false) && default_nopass => out.push(Finding::new(
            "redis.auth.disabled",
            Severity::High,
            false,
            format!(
                "Redis has no password; only protected-mode ({}) keeps clients out, and it stops \
                 protecting as soon as a bind address or password is configured. Set `requirepass` or an ACL password for the default user.",
                p.unauthenticated_probe
            ),
        )),
        _ => {}
    }
    if let Some(users) = &p.acl_nopass_users {
        let others: Vec<&str> = users.iter().map(String::as_str).filter(|u| *u != "default").collect();
        if !others.is_empty() {
            out.push(Finding::new(
                "redis.acl.nopass_user",
                auth_off,
                true,
                format!(
                    "ACL user(s) {} accept any password: anyone can `AUTH` as them. Give each a password \
                     (`ACL SETUSER <user> resetpass >secret`) or disable it (`ACL SETUSER <user> off`).",
                    others.join(", ")
                ),
            ));
        }
    }
    if p.protected_mode == Some(false) && p.requirepass_set == Some(false) && !loopback_only {
        out.push(Finding::new(
            "redis.protected_mode.off",
            Severity::High,
            false,
            "protected-mode is off and no password is set, while Redis listens beyond loopback. \
             Turn protected-mode back on (`CONFIG SET protected-mode yes`) or set a password.",
        ));
    }
    if p.tls_port == Some(0) && p.listen_scope.is_some() && !loopback_only {
        out.push(Finding::new(
            "redis.tls.disabled",
            Severity::Medium,
            false,
            format!(
                "Redis listens on {} addresses without TLS: passwords and data cross the network in clear. \
                 Configure tls-port and certificates, or bind to loopback.",
                p.listen_scope.as_deref().unwrap_or("non-loopback")
            ),
        ));
    }
    let binds = match &p.bind {
        Some(b) if b.is_empty() => "every interface".to_string(),
        Some(b) => b.join(" "),
        None => "?".to_string(),
    };
    out.extend(super::wide_listener(
        "redis.listen.wide",
        "Redis",
        p.listen_scope.as_deref(),
        &binds,
    ));
    Ok(out)
}

fn classify(c: &FieldChange<'_>) -> Classification {
    if let Some(cl) = super::classify_reach(c) {
        return cl;
    }
    let top = crate::diff::top_field(c.path);
    match top {
        "unauthenticated_probe" => classify_rank(
            c.before,
            c.after,
            // "inconclusive" (the probe itself failed) is no evidence either way: neutral.
            &[
                "accepted",
                "permission_denied",
                "protected_mode_denied",
                "auth_required",
            ],
            Classification::weakened(Severity::Critical),
        ),
        "requirepass_set" => classify_flag(c.before, c.after, true, Classification::weakened(Severity::Critical)),
        "acl_nopass_users" if c.path != "/acl_nopass_users" => {
            classify_risky_member(c.before, c.after, Classification::weakened(Severity::Critical))
        }
        "protected_mode" => classify_flag(c.before, c.after, true, Classification::weakened(Severity::Medium)),
        "tls_port" => match (c.before.as_u64(), c.after.as_u64()) {
            (Some(b), Some(0)) if b != 0 => Classification::weakened(Severity::High),
            (Some(0), Some(a)) if a != 0 => Classification::STRENGTHENED,
            _ => Classification::NEUTRAL,
        },
        _ => Classification::NEUTRAL,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ChangeClass;
    use serde_json::json;

    fn protected() -> Value {
        json!({
            "unauthenticated_probe": "auth_required", "requirepass_set": true, "acl_nopass_users": [],
            "protected_mode": true, "bind": ["127.0.0.1", "-::1"], "listen_scope": "loopback",
            "tls_port": 0, "version": "7.0.15"
        })
    }

    fn with(mut v: Value, patch: Value) -> Value {
        for (k, val) in patch.as_object().unwrap() {
            v[k] = val.clone();
        }
        v
    }

    fn rules(v: &Value) -> Vec<(String, Severity, bool)> {
        assess(v)
            .unwrap()
            .into_iter()
            .map(|f| (f.rule, f.severity, f.exposed))
            .collect()
    }

    #[test]
    fn assess_table() {
        let cases: Vec<(&str, Value, Vec<(&str, Severity, bool)>)> = vec![
            ("protected loopback", protected(), vec![]),
            (
                "password removed",
                with(
                    protected(),
                    json!({"unauthenticated_probe":"accepted","requirepass_set":false,"acl_nopass_users":["default"]}),
                ),
                vec![("redis.auth.disabled", Severity::Critical, true)],
            ),
            (
                "no password but protected mode refuses",
                with(
                    protected(),
                    json!({"unauthenticated_probe":"protected_mode_denied","requirepass_set":false,"acl_nopass_users":["default"]}),
                ),
                vec![("redis.auth.disabled", Severity::High, false)],
            ),
            (
                "acl user without password",
                with(protected(), json!({"acl_nopass_users":["reporting"]})),
                vec![("redis.acl.nopass_user", Severity::Critical, true)],
            ),
            (
                "wide listener without TLS",
                with(protected(), json!({"bind":["0.0.0.0"],"listen_scope":"all_interfaces"})),
                vec![
                    ("redis.tls.disabled", Severity::Medium, false),
                    ("redis.listen.wide", Severity::Low, false),
                ],
            ),
            (
                "protected mode off, no password, private listener",
                with(
                    protected(),
                    json!({"protected_mode":false,"requirepass_set":false,"bind":["10.0.0.5"],"listen_scope":"private","unauthenticated_probe":"accepted","tls_port":6380}),
                ),
                vec![
                    ("redis.auth.disabled", Severity::Critical, true),
                    ("redis.protected_mode.off", Severity::High, false),
                ],
            ),
            (
                "CONFIG unavailable: nothing inferred",
                json!({"unauthenticated_probe":"auth_required","requirepass_set":null,"acl_nopass_users":null,"protected_mode":null,"bind":null,"listen_scope":null,"tls_port":null,"version":null}),
                vec![],
            ),
        ];
        for (name, posture, want) in cases {
            let want: Vec<(String, Severity, bool)> = want.into_iter().map(|(r, s, e)| (r.to_string(), s, e)).collect();
            assert_eq!(rules(&posture), want, "case: {name}");
        }
    }

    #[test]
    fn authentication_off_is_graded_by_reach() {
        let open = with(
            protected(),
            json!({"unauthenticated_probe": "accepted", "requirepass_set": false, "acl_nopass_users": ["default"]}),
        );
        let cases = [
            ("loopback", Severity::High),
            ("private", Severity::Critical),
            ("internet", Severity::Critical),
        ];
        for (reach, want) in cases {
            let f = assess(&with(open.clone(), json!({ "reach": reach }))).unwrap();
            assert_eq!(
                (f[0].rule.as_str(), f[0].severity, f[0].exposed),
                ("redis.auth.disabled", want, true),
                "{reach}"
            );
        }
        let d = protected();
        let widened = classify(&FieldChange {
            path: "/reach",
            before: &json!("loopback"),
            after: &json!("internet"),
            before_doc: &d,
            after_doc: &d,
        });
        assert_eq!(
            widened.class,
            ChangeClass::Weakened,
            "widening the reach is a weakening"
        );
    }

    #[test]
    fn assess_rejects_foreign_documents() {
        assert!(assess(&json!({"hba_rules": []})).is_err());
    }

    #[test]
    fn classify_table() {
        let base = protected();
        let cases: Vec<(&str, Value, Value, ChangeClass, Severity)> = vec![
            (
                "/unauthenticated_probe",
                json!("auth_required"),
                json!("accepted"),
                ChangeClass::Weakened,
                Severity::Critical,
            ),
            (
                "/unauthenticated_probe",
                json!("accepted"),
                json!("auth_required"),
                ChangeClass::Strengthened,
                Severity::Low,
            ),
            (
                "/unauthenticated_probe",
                json!("auth_required"),
                json!("inconclusive"),
                ChangeClass::Neutral,
                Severity::Low,
            ),
            (
                "/requirepass_set",
                json!(true),
                json!(false),
                ChangeClass::Weakened,
                Severity::Critical,
            ),
            (
                "/acl_nopass_users/0",
                Value::Null,
                json!("default"),
                ChangeClass::Weakened,
                Severity::Critical,
            ),
            (
                "/acl_nopass_users/0",
                json!("default"),
                Value::Null,
                ChangeClass::Strengthened,
                Severity::Low,
            ),
            (
                "/protected_mode",
                json!(true),
                json!(false),
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
                "/listen_scope",
                json!("public"),
                json!("private"),
                ChangeClass::Strengthened,
                Severity::Low,
            ),
            (
                "/tls_port",
                json!(6380),
                json!(0),
                ChangeClass::Weakened,
                Severity::High,
            ),
            (
                "/tls_port",
                json!(0),
                json!(6380),
                ChangeClass::Strengthened,
                Severity::Low,
            ),
            (
                "/bind/0",
                json!("127.0.0.1"),
                json!("127.0.0.2"),
                ChangeClass::Neutral,
                Severity::Low,
            ),
            (
                "/version",
                json!("7.0.15"),
                json!("7.2.4"),
                ChangeClass::Neutral,
                Severity::Low,
            ),
        ];
        for (path, before, after, class, sev) in cases {
            let got = classify(&FieldChange {
                path,
                before: &before,
                after: &after,
                before_doc: &base,
                after_doc: &base,
            });
            assert_eq!((got.class, got.severity), (class, sev), "{path}: {before} -> {after}");
        }
    }

    #[test]
    fn probe_replies() {
        let cases = [
            (":0", "accepted"),
            ("+PONG", "accepted"),
            ("-NOAUTH Authentication required.", "auth_required"),
            (
                "-DENIED Redis is running in protected mode because protected mode is enabled",
                "protected_mode_denied",
            ),
            (
                "-NOPERM this user has no permissions to run the 'dbsize' command",
                "permission_denied",
            ),
            ("", "inconclusive"),
        ];
        for (line, want) in cases {
            assert_eq!(classify_probe_reply(line), want, "{line}");
        }
    }

    #[test]
    fn acl_list_parsing() {
        let lines = vec![
            "user default on nopass sanitize-payload ~* &* +@all".to_string(),
            "user alice on #5e884898da ~* +@read".to_string(),
            "user bob off nopass ~* +@all".to_string(),
            "user carol on nopass ~cache:* +get".to_string(),
        ];
        assert_eq!(nopass_users(&lines), vec!["carol".to_string(), "default".to_string()]);
    }
}
