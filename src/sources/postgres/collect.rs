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
            // The server's own words (psql's), with its SQLSTATE, and the fix that goes with it.
            let fix = match e.code().map(|c| c.code()) {
                Some("28P01") => "check the monitoring role's password",
                Some("28000") if db_error(&e).contains("does not exist") => {
                    "create the monitoring role (README: PostgreSQL) or fix the user in the url"
                }
                Some("28000") => "add a pg_hba.conf line that lets the monitoring role in from this host",
                Some("3D000") => "the database in the url does not exist: use postgres",
                _ => "check the url, the password and pg_hba.conf for the monitoring role",
            };
            let why = match e.as_db_error() {
                Some(_) => db_error(&e),
                // Not a server answer (refused, timed out, TLS): the chain says what happened.
                None => format!("{:#}", anyhow::Error::new(e)),
            };
            anyhow!("connecting to {}: {why} ({fix})", self.shown_url)
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

    pub(super) async fn observe(&self) -> anyhow::Result<(Posture, Vec<Unknown>)> {
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

        let mut unknown = Vec::new();
        let loaded_at: String = db
            .query_one(
                "SELECT to_char(pg_conf_load_time() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
                &[],
            )
            .await
            .context("reading pg_conf_load_time()")?
            .get(0);
        // The file's own time, when the role may see it: changed after the last load means the
        // rules on disk are not the ones the server runs.
        let file_changed = db
            .query_one(
                "SELECT to_char(m AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), m > pg_conf_load_time() \
                 FROM (SELECT (pg_stat_file(current_setting('hba_file'))).modification AS m) f",
                &[],
            )
            .await
            .map(|r| (r.get::<_, String>(0), r.get::<_, bool>(1)));
        let hba_rules = match db
            .query(
                "SELECT type, database, user_name, address, netmask, auth_method, options, error \
                 FROM pg_hba_file_rules ORDER BY line_number",
                &[],
            )
            .await
        {
            Ok(rows) => {
                let mut rules: Vec<HbaRule> = rows
                    .iter()
                    .map(|r| HbaRule {
                        kind: r.get::<_, Option<String>>(0).unwrap_or_default(),
                        database: r.get::<_, Option<Vec<String>>>(1).unwrap_or_default(),
                        user_name: r.get::<_, Option<Vec<String>>>(2).unwrap_or_default(),
                        address: r.get(3),
                        netmask: r.get(4),
                        auth_method: r.get::<_, Option<String>>(5).unwrap_or_default(),
                        options: r.get(6),
                        error: r.get(7),
                        shadowed: false,
                    })
                    .collect();
                rules::mark_shadowed(&mut rules);
                if let Some(why) = self.not_yet_live(&rules, &loaded_at, file_changed.as_ref().ok()) {
                    unknown.push(Unknown::pending(
                        "hba_rules",
                        why,
                        "fix pg_hba.conf if needed and reload (SELECT pg_reload_conf();); lockwatch follows the rules the server has loaded",
                    ));
                }
                Some(rules)
            }
            Err(e) => {
                unknown.push(Unknown::new(
                    "hba_rules",
                    format!("reading pg_hba_file_rules failed: {}", db_error(&e)),
                    "as a superuser: GRANT SELECT ON pg_hba_file_rules TO <monitoring role>; \
                     GRANT EXECUTE ON FUNCTION pg_hba_file_rules() TO <monitoring role>;",
                ));
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
        let unauthenticated_login = self.probe_without_password().await;
        if unauthenticated_login == "inconclusive" {
            unknown.push(Unknown::new(
                "unauthenticated_login",
                "a login as postgres without a password got no answer lockwatch understands",
                "check that lockwatch's host can reach the server's port, and the server's log",
            ));
        }
        Ok((
            Posture {
                hba_reload_verified: Some(file_changed.is_ok()),
                hba_rules,
                listen_addresses,
                listen_scope: listen_scope.as_str().to_string(),
                ssl: settings.get::<_, String>(1) == "on",
                password_encryption: settings.get(2),
                login_roles_without_password,
                superusers,
                version: settings.get(3),
                unauthenticated_login: Some(unauthenticated_login),
                reach: Some(
                    net::reach(self.common.reach, Some(listen_scope), &self.host)
                        .as_str()
                        .to_string(),
                ),
            },
            unknown,
        ))
    }

    /// Why the rules read from pg_hba.conf are not (yet) the ones the server runs, if they are
    /// not: the file changed after the last reload, or it has lines the server would refuse.
    /// Without the file's time, a change of the rules with no reload since counts as pending.
    fn not_yet_live(&self, rules: &[HbaRule], loaded_at: &str, file: Option<&(String, bool)>) -> Option<String> {
        let mut last = self.last_read.lock().unwrap_or_else(|p| p.into_inner());
        let pending = match file {
            Some((modified, true)) => Some(format!(
                "pg_hba.conf changed on disk at {modified}; the server has not reloaded it since {loaded_at}, so the rules it loaded before are still live"
            )),
            Some((_, false)) => None,
            None => match &*last {
                Some((prev_loaded, prev_rules)) if prev_loaded == loaded_at && prev_rules != rules => Some(format!(
                    "the rules in pg_hba.conf changed while the server has not reloaded since {loaded_at}, so the rules it loaded before are still live"
                )),
                _ => None,
            },
        };
        let errors: Vec<&str> = rules.iter().filter_map(|r| r.error.as_deref()).collect();
        let refused = (!errors.is_empty()).then(|| {
            format!(
                "pg_hba.conf on disk has lines the server cannot parse ({}); a reload keeps the rules loaded before",
                errors.join("; ")
            )
        });
        let why = pending.or(refused);
        if why.is_none() {
            *last = Some((loaded_at.to_string(), rules.to_vec()));
        }
        why
    }
}

/// A server error as psql shows it: its message and SQLSTATE.
pub(super) fn db_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{}: {} (SQLSTATE {})", d.severity(), d.message(), d.code().code()),
        None => e.to_string(),
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
