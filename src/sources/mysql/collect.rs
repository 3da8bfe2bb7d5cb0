//! Reading a MySQL/MariaDB server through the monitoring account, and a login attempt with a made-up user and no password.

use super::*;

/// (user, host, plugin, authentication string, locked, role, globally privileged)
type AccountRow = (String, String, String, String, i64, i64, i64);

const PRIVILEGED: &str = "(Select_priv='Y' OR Insert_priv='Y' OR Update_priv='Y' OR Delete_priv='Y' OR Create_priv='Y' \
     OR Drop_priv='Y' OR Grant_priv='Y' OR Super_priv='Y' OR File_priv='Y')";

impl MysqlSource {
    /// Every account, or the server's refusal (the last variant's error).
    async fn accounts(&self, conn: &mut mysql_async::Conn) -> Result<Vec<AccountRow>, String> {
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
        let mut last = String::new();
        for q in [mariadb, mysql] {
            match conn.query::<AccountRow, _>(q).await {
                Ok(rows) => return Ok(rows),
                Err(e) => {
                    tracing::debug!(source = %self.common.name, error = %e, "account query variant failed");
                    last = match e {
                        mysql_async::Error::Server(s) => format!("ERROR {} ({}): {}", s.code, s.state, s.message),
                        other => other.to_string(),
                    };
                }
            }
        }
        Err(last)
    }

    async fn variable(conn: &mut mysql_async::Conn, name: &str) -> Option<String> {
        conn.query_first::<Option<String>, _>(format!("SELECT CAST(@@{name} AS CHAR)"))
            .await
            .ok()
            .flatten()
            .flatten()
    }

    pub(super) async fn observe(&self) -> anyhow::Result<(Posture, Vec<Unknown>)> {
        let mut conn = mysql_async::Conn::new(self.opts.clone()).await.map_err(|e| {
            anyhow!(
                "connecting to {} as the monitoring account: {} (check the url, the password and the account's host)",
                self.shown_url,
                secret::redact_dsn(&e.to_string())
            )
        })?;
        let version = Self::variable(&mut conn, "version").await.unwrap_or_default();
        let flavor = if version.to_ascii_lowercase().contains("mariadb") {
            "mariadb"
        } else {
            "mysql"
        }
        .to_string();
        let mut unknown = Vec::new();
        let accounts = match self.accounts(&mut conn).await {
            Ok(a) => Some(a),
            Err(e) => {
                for field in [
                    "accounts_without_password",
                    "anonymous_accounts",
                    "wildcard_host_privileged",
                ] {
                    unknown.push(Unknown::new(
                        field,
                        format!("reading mysql.user failed: {e}"),
                        "GRANT SELECT ON mysql.user TO the monitoring account (MariaDB: also ON mysql.global_priv)",
                    ));
                }
                None
            }
        };
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
        let unauthenticated_login = self.probe().await;
        if unauthenticated_login == "inconclusive" {
            unknown.push(Unknown::new(
                "unauthenticated_login",
                "a login with a made-up user and no password got no answer lockwatch understands",
                "check that lockwatch's host can reach the server's port, and the server's error log",
            ));
        }
        Ok((
            Posture {
                flavor,
                version,
                unauthenticated_login,
                accounts_without_password,
                anonymous_accounts,
                wildcard_host_privileged,
                require_secure_transport,
                tls_available: have_ssl.map(|v| v.eq_ignore_ascii_case("YES")),
                bind_address,
                skip_networking,
                listen_scope,
                reach,
            },
            unknown,
        ))
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
