//! Reading a PostgreSQL server through the monitoring role, and a login attempt without a password.

use super::tls::tls_config;
use super::*;

impl PostgresSource {
    async fn connect_with(
        &self,
        config: &tokio_postgres::Config,
    ) -> anyhow::Result<Result<tokio_postgres::Client, tokio_postgres::Error>> {
        Ok(if config.get_ssl_mode() == tokio_postgres::config::SslMode::Disable {
            config.connect(tokio_postgres::NoTls).await.map(|(client, conn)| {
                tokio::spawn(conn);
                client
            })
        } else {
            let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls_config(self.ca_file.as_deref())?);
            config.connect(tls).await.map(|(client, conn)| {
                tokio::spawn(conn);
                client
            })
        })
    }

    async fn connect(&self) -> anyhow::Result<tokio_postgres::Client> {
        self.connect_with(&self.config).await?.map_err(|e| {
            anyhow!(
                "connecting to {}: {e} (check the url, the password and pg_hba.conf for the monitoring role)",
                self.shown_url
            )
        })
    }

    /// Log in as `postgres` with no password, from where lockwatch runs.
    async fn probe_without_password(&self) -> String {
        let mut c = tokio_postgres::Config::new();
        c.host(&self.host)
            .port(self.config.get_ports().first().copied().unwrap_or(5432))
            .user("postgres")
            .dbname("postgres")
            .connect_timeout(self.common.timeout)
            .ssl_mode(self.config.get_ssl_mode());
        match tokio::time::timeout(self.common.timeout, self.connect_with(&c)).await {
            Ok(Ok(Ok(_client))) => "accepted".into(),
            Ok(Ok(Err(e))) => {
                // "password missing" lives in the error's cause, not its message.
                let text = format!("{e} {:?}", std::error::Error::source(&e));
                let verdict = classify_login_error(e.code(), &text);
                if verdict == "inconclusive" {
                    tracing::debug!(error = %text, "unauthenticated probe inconclusive");
                }
                verdict.into()
            }
            _ => "inconclusive".into(),
        }
    }

    pub(super) async fn observe(&self) -> anyhow::Result<Posture> {
        let db = self.connect().await?;
        let settings = db
            .query_one(
                "SELECT current_setting('listen_addresses'), current_setting('ssl'), \
                 current_setting('password_encryption'), current_setting('server_version')",
                &[],
            )
            .await
            .context("reading settings (grant the monitoring role pg_read_all_settings)")?;
        let listen: String = settings.get(0);
        let listen_addresses: Vec<String> = listen
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        // An empty listen_addresses means Unix sockets only.
        let listen_scope = if listen_addresses.is_empty() {
            net::Scope::Loopback
        } else {
            net::widest(listen_addresses.iter().map(String::as_str))
        };

        let hba_rules = match db
            .query(
                "SELECT type, database, user_name, address, netmask, auth_method, options, error \
                 FROM pg_hba_file_rules ORDER BY line_number",
                &[],
            )
            .await
        {
            Ok(rows) => Some(
                rows.iter()
                    .map(|r| HbaRule {
                        kind: r.get::<_, Option<String>>(0).unwrap_or_default(),
                        database: r.get::<_, Option<Vec<String>>>(1).unwrap_or_default(),
                        user_name: r.get::<_, Option<Vec<String>>>(2).unwrap_or_default(),
                        address: r.get(3),
                        netmask: r.get(4),
                        auth_method: r.get::<_, Option<String>>(5).unwrap_or_default(),
                        options: r.get(6),
                        error: r.get(7),
                    })
                    .collect(),
            ),
            Err(e) => {
                tracing::warn!(source = %self.common.name, error = %e, "pg_hba_file_rules not readable; see README for the grants");
                None
            }
        };
        let login_roles_without_password = db
            .query(
                "SELECT rolname::text FROM pg_authid WHERE rolcanlogin AND rolpassword IS NULL ORDER BY 1",
                &[],
            )
            .await
            .ok()
            .map(|rows| rows.iter().map(|r| r.get::<_, String>(0)).collect());
        let superusers = db
            .query(
                "SELECT rolname::text FROM pg_roles WHERE rolsuper AND rolcanlogin ORDER BY 1",
                &[],
            )
            .await
            .context("listing superusers")?
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect();
        Ok(Posture {
            hba_rules,
            listen_addresses,
            listen_scope: listen_scope.as_str().to_string(),
            ssl: settings.get::<_, String>(1) == "on",
            password_encryption: settings.get(2),
            login_roles_without_password,
            superusers,
            version: settings.get(3),
            unauthenticated_login: Some(self.probe_without_password().await),
            reach: Some(
                net::reach(self.common.reach, Some(listen_scope), &self.host)
                    .as_str()
                    .to_string(),
            ),
        })
    }
}

pub(super) fn classify_login_error(code: Option<&tokio_postgres::error::SqlState>, text: &str) -> &'static str {
    use tokio_postgres::error::SqlState;
    match code {
        Some(c) if *c == SqlState::INVALID_PASSWORD || *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION => "denied",
        // The server asked for a password we do not have.
        _ if text.contains("password missing") => "denied",
        _ => "inconclusive",
    }
}

/// Which range a host rule's addresses fall in: `internet`, `private`, `loopback`, or
/// `named hosts` for host names.

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_errors_table() {
        use tokio_postgres::error::SqlState;
        assert_eq!(classify_login_error(Some(&SqlState::INVALID_PASSWORD), ""), "denied");
        assert_eq!(
            classify_login_error(Some(&SqlState::INVALID_AUTHORIZATION_SPECIFICATION), ""),
            "denied"
        );
        assert_eq!(
            classify_login_error(None, "invalid configuration: password missing"),
            "denied"
        );
        assert_eq!(classify_login_error(None, "connection refused"), "inconclusive");
    }
}
