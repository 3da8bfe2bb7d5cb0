//! `kind = "mysql"`: one MySQL or MariaDB server, read through a monitoring account.
//!
//! Captures accounts with an empty password, anonymous accounts, `%`-host accounts with global
//! privileges, `require_secure_transport`, `bind_address` / `skip_networking`, TLS availability,
//! and whether a login with a made-up user name and no password succeeds at all (a server
//! running with `--skip-grant-tables`, or with an anonymous account, lets anyone in).

use super::{
    Collection, Common, FieldChange, ResourceKind, Source, SourceKind, classify_flag, classify_rank,
    classify_risky_member,
};
use crate::model::{Classification, Finding, Severity};
use crate::net;
use crate::secret;
use anyhow::anyhow;
use futures::future::BoxFuture;
use mysql_async::prelude::Queryable;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::PathBuf;

pub const KIND: SourceKind = SourceKind {
    name: "mysql",
    build,
    resource_kinds: &[ResourceKind {
        name: "mysql",
        assess,
        classify,
    }],
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// `mysql://user[:password]@host:port` (MariaDB too).
    url: String,
    password_file: Option<PathBuf>,
    password_env: Option<String>,
}

struct MysqlSource {
    common: Common,
    shown_url: String,
    native: String,
    host: String,
    port: u16,
    opts: mysql_async::Opts,
}

fn build(common: &Common, table: toml::Table) -> Result<Box<dyn Source>, String> {
    let cfg: Config = super::parse_table(table)?;
    let shown_url = secret::redact_url(&cfg.url);
    let opts = mysql_async::Opts::from_url(&cfg.url)
        .map_err(|e| format!("url {shown_url}: {}", secret::redact_url(&e.to_string())))?;
    let extra = secret::load(
        &format!("source {}", common.name),
        cfg.password_file.as_deref(),
        cfg.password_env.as_deref(),
    )
    .map_err(|e| e.to_string())?;
    let mut b = mysql_async::OptsBuilder::from_opts(opts.clone())
        .prefer_socket(false)
        .db_name(None::<String>);
    if let Some(p) = extra {
        if opts.pass().is_some() {
            return Err(
                "the url already holds a password; remove it from the url or drop password_file/password_env".into(),
            );
        }
        b = b.pass(Some(p.expose().to_string()));
    }
    if opts.user().is_none() {
        return Err(format!(
            "url {shown_url} names no user: add the monitoring account, e.g. mysql://lockwatch@host:3306"
        ));
    }
    let opts = mysql_async::Opts::from(b);
    let host = opts.ip_or_hostname().to_string();
    let port = opts.tcp_port();
    let native = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    Ok(Box::new(MysqlSource {
        common: common.clone(),
        shown_url,
        native,
        host,
        port,
        opts,
    }))
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
            let posture = self.observe().await?;
            Collection::single(&self.common.name, "mysql", &self.native, posture)
        })
    }
}

/// (user, host, plugin, authentication string, locked, role, globally privileged)
type AccountRow = (String, String, String, String, i64, i64, i64);

const PRIVILEGED: &str = "(Select_priv='Y' OR Insert_priv='Y' OR Update_priv='Y' OR Delete_priv='Y' OR Create_priv='Y' \
     OR Drop_priv='Y' OR Grant_priv='Y' OR Super_priv='Y' OR File_priv='Y')";

impl MysqlSource {
    async fn accounts(&self, conn: &mut mysql_async::Conn) -> Option<Vec<AccountRow>> {
        // MariaDB keeps account_locked in mysql.global_priv; MySQL in mysql.user.
        let mariadb = format!(
            "SELECT CAST(u.User AS CHAR), CAST(u.Host AS CHAR), CAST(COALESCE(u.plugin, '') AS CHAR), CAST(COALESCE(u.authentication_string, '') AS CHAR), \
             IF(COALESCE(JSON_VALUE(g.Priv, '$.account_locked'), 0) = 1, 1, 0), IF(u.is_role = 'Y', 1, 0), IF({PRIVILEGED}, 1, 0) \
             FROM mysql.user u LEFT JOIN mysql.global_priv g ON g.User = u.User AND g.Host = u.Host"
        );
        let mysql = format!(
            "SELECT CAST(User AS CHAR), CAST(Host AS CHAR), CAST(COALESCE(plugin, '') AS CHAR), CAST(COALESCE(authentication_string, '') AS CHAR), \
             IF(account_locked = 'Y', 1, 0), 0, IF({PRIVILEGED}, 1, 0) FROM mysql.user"
        );
        for q in [mariadb, mysql] {
            match conn.query::<AccountRow, _>(q).await {
                Ok(rows) => return Some(rows),
                Err(e) => tracing::debug!(source = %self.common.name, error = %e, "account query variant failed"),
            }
        }
        tracing::warn!(source = %self.common.name, "cannot read mysql.user; see README for the monitoring account's grants");
        None
    }

    async fn variable(conn: &mut mysql_async::Conn, name: &str) -> Option<String> {
        conn.query_first::<Option<String>, _>(format!("SELECT CAST(@@{name} AS CHAR)"))
            .await
            .ok()
            .flatten()
            .flatten()
    }

    async fn observe(&self) -> anyhow::Result<Posture> {
        let mut conn = mysql_async::Conn::new(self.opts.clone()).await.map_err(|e| {
            anyhow!(
                "connecting to {} as the monitoring account: {} (check the url, the password and the account's host)",
                self.shown_url,
                secret::redact_url(&e.to_string())
            )
        })?;
        let version = Self::variable(&mut conn, "version").await.unwrap_or_default();
        let flavor = if version.to_ascii_lowercase().contains("mariadb") {
            "mariadb"
        } else {
            "mysql"
        }
        .to_string();
        let accounts = self.accounts(&mut conn).await;
        let flag = |v: Option<String>| v.map(|s| matches!(s.to_ascii_uppercase().as_str(), "1" | "ON" | "YES"));
        let require_secure_transport = flag(Self::variable(&mut conn, "require_secure_transport").await);
        let skip_networking = flag(Self::variable(&mut conn, "skip_networking").await);
        let have_ssl = Self::variable(&mut conn, "have_ssl").await;
        let bind_address = Self::variable(&mut conn, "bind_address").await;
        let _ = conn.disconnect().await;

        let is_empty_password = |(_, _, plugin, auth, locked, role, _): &&AccountRow| {
            *locked == 0
                && *role == 0
                && auth.is_empty()
                && matches!(
                    plugin.as_str(),
                    "" | "mysql_native_password" | "mysql_old_password" | "caching_sha2_password" | "sha256_password"
                )
        };
        let name = |(u, h, ..): &AccountRow| format!("{u}@{h}");
        let sorted = |mut v: Vec<String>| {
            v.sort();
            v.dedup();
            v
        };
        let accounts_without_password = accounts
            .as_ref()
            .map(|a| sorted(a.iter().filter(is_empty_password).map(name).collect()));
        let anonymous_accounts = accounts.as_ref().map(|a| {
            sorted(
                a.iter()
                    .filter(|r| r.0.is_empty() && r.4 == 0 && r.5 == 0)
                    .map(name)
                    .collect(),
            )
        });
        let wildcard_host_privileged = accounts.as_ref().map(|a| {
            sorted(
                a.iter()
                    .filter(|r| r.1 == "%" && r.6 == 1 && r.4 == 0)
                    .map(name)
                    .collect(),
            )
        });
        let scope = match (skip_networking, &bind_address) {
            (Some(true), _) => Some(net::Scope::Loopback),
            (_, Some(b)) => Some(net::widest(b.split(',').map(str::trim).filter(|s| !s.is_empty()))),
            _ => None,
        };
        let listen_scope = scope.map(|s| s.as_str().to_string());
        let reach = Some(net::reach(self.common.reach, scope, &self.host).as_str().to_string());
        Ok(Posture {
            flavor,
            version,
            unauthenticated_login: self.probe().await,
            accounts_without_password,
            anonymous_accounts,
            wildcard_host_privileged,
            require_secure_transport,
            tls_available: have_ssl.map(|v| v.eq_ignore_ascii_case("YES")),
            bind_address,
            skip_networking,
            listen_scope,
            reach,
        })
    }

    /// Log in as a user that cannot exist, with no password.
    async fn probe(&self) -> String {
        let user = format!("lw_probe_{:08x}", rand::random::<u32>());
        let opts = mysql_async::OptsBuilder::default()
            .ip_or_hostname(self.host.clone())
            .tcp_port(self.port)
            .prefer_socket(false)
            .user(Some(user))
            .pass(None::<String>);
        match tokio::time::timeout(self.common.timeout, mysql_async::Conn::new(opts)).await {
            Ok(Ok(conn)) => {
                let _ = conn.disconnect().await;
                "accepted".into()
            }
            // 1045 access denied, 1698 access denied without a password (MariaDB), 1130 host not
            // allowed, 1044 no database access: all a refusal.
            Ok(Err(mysql_async::Error::Server(e))) if matches!(e.code, 1045 | 1698 | 1130 | 1044) => "denied".into(),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "unauthenticated probe inconclusive");
                "inconclusive".into()
            }
            Err(_) => "inconclusive".into(),
        }
    }
}

fn is_local_host(account: &str) -> bool {
    let host = account.rsplit_once('@').map(|(_, h)| h).unwrap_or("");
    matches!(host, "localhost" | "127.0.0.1" | "::1")
}

fn assess(posture: &Value) -> Result<Vec<Finding>, String> {
    let p: Posture = serde_json::from_value(posture.clone()).map_err(|e| format!("not a mysql posture: {e}"))?;
    let mut out = Vec::new();
    let product = if p.flavor == "mariadb" { "MariaDB" } else { "MySQL" };
    let auth_off = net::auth_off_severity(p.reach.as_deref());
    if p.unauthenticated_login == "accepted" {
        out.push(Finding::new(
            "mysql.auth.unauthenticated_login",
            auth_off,
            true,
            format!(
                "{product} let a made-up user log in with no password: grant checking is off (--skip-grant-tables) or an anonymous \
                 account matches every user name. Restart without --skip-grant-tables and drop anonymous accounts (DROP USER ''@'%')."
            ),
        ));
    }
    let split = |list: &Option<Vec<String>>| -> (Vec<String>, Vec<String>) {
        list.clone()
            .unwrap_or_default()
            .into_iter()
            .partition(|a| is_local_host(a))
    };
    let (local, remote) = split(&p.accounts_without_password);
    if !remote.is_empty() {
        out.push(Finding::new(
            "mysql.account.empty_password",
            auth_off,
            true,
            format!("Accounts reachable over the network have no password: {}. Set one (ALTER USER ... IDENTIFIED BY '...') or lock them (ALTER USER ... ACCOUNT LOCK).", remote.join(", ")),
        ));
    } else if !local.is_empty() {
        out.push(Finding::new(
            "mysql.account.empty_password",
            Severity::High,
            false,
            format!(
                "Local accounts have no password: {}. Any process on the host can log in as them.",
                local.join(", ")
            ),
        ));
    }
    let (local_anon, remote_anon) = split(&p.anonymous_accounts);
    if !remote_anon.is_empty() || !local_anon.is_empty() {
        let all: Vec<String> = remote_anon.iter().chain(&local_anon).cloned().collect();
        out.push(Finding::new(
            "mysql.account.anonymous",
            if remote_anon.is_empty() {
                Severity::High
            } else {
                auth_off
            },
            !remote_anon.is_empty(),
            format!(
                "Anonymous accounts exist ({}): any user name matches them. Drop them: DROP USER ''@'<host>';",
                all.join(", ")
            ),
        ));
    }
    if let Some(accts) = p.wildcard_host_privileged.as_ref().filter(|a| !a.is_empty()) {
        out.push(Finding::new(
            "mysql.account.wildcard_host_privileged",
            Severity::Medium,
            false,
            format!("Accounts with global privileges can connect from any host: {}. Restrict their Host to the addresses that need them.", accts.join(", ")),
        ));
    }
    let remote_listener = p.listen_scope.as_deref().is_some_and(|s| s != "loopback");
    if remote_listener && p.tls_available == Some(false) {
        out.push(Finding::new(
            "mysql.tls.unavailable",
            Severity::High,
            false,
            format!("{product} listens on {} addresses without TLS: passwords and data cross the network in clear. Configure ssl_cert/ssl_key.", p.listen_scope.as_deref().unwrap_or("?")),
        ));
    } else if remote_listener && p.require_secure_transport == Some(false) {
        out.push(Finding::new(
            "mysql.tls.not_required",
            Severity::Medium,
            false,
            "TLS is available but not required: clients may still connect in clear. Set require_secure_transport = ON.",
        ));
    }
    out.extend(super::wide_listener(
        "mysql.listen.wide",
        product,
        p.listen_scope.as_deref(),
        p.bind_address.as_deref().unwrap_or("every interface"),
    ));
    Ok(out)
}

fn classify(c: &FieldChange<'_>) -> Classification {
    if let Some(cl) = super::classify_reach(c) {
        return cl;
    }
    let weak = Classification::weakened;
    let account_severity = |v: &Value| {
        if v.as_str().is_some_and(is_local_host) {
            Severity::High
        } else {
            Severity::Critical
        }
    };
    match c.path.trim_start_matches('/').split('/').collect::<Vec<_>>().as_slice() {
        // "inconclusive" (the probe itself failed) is no evidence either way: neutral.
        ["unauthenticated_login"] => {
            classify_rank(c.before, c.after, &["accepted", "denied"], weak(Severity::Critical))
        }
        ["accounts_without_password", _] | ["anonymous_accounts", _] => {
            classify_risky_member(c.before, c.after, weak(account_severity(c.after)))
        }
        ["wildcard_host_privileged", _] => classify_risky_member(c.before, c.after, weak(Severity::Medium)),
        ["require_secure_transport"] => classify_flag(c.before, c.after, true, weak(Severity::Medium)),
        ["tls_available"] => classify_flag(c.before, c.after, true, weak(Severity::High)),
        ["skip_networking"] => classify_flag(c.before, c.after, true, weak(Severity::Medium)),
        _ => Classification::NEUTRAL,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ChangeClass;
    use serde_json::json;

    fn protected() -> Value {
        json!({"flavor": "mariadb", "version": "10.11.19-MariaDB", "unauthenticated_login": "denied", "accounts_without_password": [],
               "anonymous_accounts": [], "wildcard_host_privileged": [], "require_secure_transport": false, "tls_available": false,
               "bind_address": "127.0.0.1", "skip_networking": false, "listen_scope": "loopback"})
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
            ("protected loopback", protected(), vec![]),
            (
                "skip-grant-tables",
                with(protected(), json!({"unauthenticated_login": "accepted"})),
                vec![("mysql.auth.unauthenticated_login", Severity::Critical, true)],
            ),
            (
                "remote account without password",
                with(protected(), json!({"accounts_without_password": ["app@%"]})),
                vec![("mysql.account.empty_password", Severity::Critical, true)],
            ),
            (
                "local account without password",
                with(protected(), json!({"accounts_without_password": ["root@localhost"]})),
                vec![("mysql.account.empty_password", Severity::High, false)],
            ),
            (
                "anonymous account",
                with(protected(), json!({"anonymous_accounts": ["@%"]})),
                vec![("mysql.account.anonymous", Severity::Critical, true)],
            ),
            (
                "privileged wildcard",
                with(protected(), json!({"wildcard_host_privileged": ["admin@%"]})),
                vec![("mysql.account.wildcard_host_privileged", Severity::Medium, false)],
            ),
            (
                "wide listener without TLS",
                with(
                    protected(),
                    json!({"bind_address": "0.0.0.0", "listen_scope": "all_interfaces"}),
                ),
                vec![
                    ("mysql.tls.unavailable", Severity::High, false),
                    ("mysql.listen.wide", Severity::Low, false),
                ],
            ),
            (
                "TLS available, not required, private",
                with(
                    protected(),
                    json!({"bind_address": "10.0.0.5", "listen_scope": "private", "tls_available": true}),
                ),
                vec![("mysql.tls.not_required", Severity::Medium, false)],
            ),
            (
                "accounts unreadable: nothing inferred",
                with(
                    protected(),
                    json!({"accounts_without_password": null, "anonymous_accounts": null, "wildcard_host_privileged": null}),
                ),
                vec![],
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
        let d = protected();
        let cases: Vec<(&str, Value, Value, ChangeClass, Severity)> = vec![
            (
                "/unauthenticated_login",
                json!("denied"),
                json!("accepted"),
                ChangeClass::Weakened,
                Severity::Critical,
            ),
            (
                "/unauthenticated_login",
                json!("accepted"),
                json!("denied"),
                ChangeClass::Strengthened,
                Severity::Low,
            ),
            (
                "/unauthenticated_login",
                json!("denied"),
                json!("inconclusive"),
                ChangeClass::Neutral,
                Severity::Low,
            ),
            (
                "/accounts_without_password/0",
                Value::Null,
                json!("app@%"),
                ChangeClass::Weakened,
                Severity::Critical,
            ),
            (
                "/accounts_without_password/0",
                Value::Null,
                json!("root@localhost"),
                ChangeClass::Weakened,
                Severity::High,
            ),
            (
                "/anonymous_accounts/0",
                Value::Null,
                json!("@%"),
                ChangeClass::Weakened,
                Severity::Critical,
            ),
            (
                "/wildcard_host_privileged/0",
                Value::Null,
                json!("admin@%"),
                ChangeClass::Weakened,
                Severity::Medium,
            ),
            (
                "/require_secure_transport",
                json!(true),
                json!(false),
                ChangeClass::Weakened,
                Severity::Medium,
            ),
            (
                "/tls_available",
                json!(true),
                json!(false),
                ChangeClass::Weakened,
                Severity::High,
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
                json!("10.11.5"),
                json!("10.11.6"),
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
