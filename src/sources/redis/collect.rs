//! Reading a Redis server: its CONFIG and ACL LIST as the monitoring user, and a probe without credentials.

use super::*;

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
        let info = self
            .connection_info(with_credentials)
            .map_err(|e| redis::RedisError::from(std::io::Error::other(e.to_string())))?;
        let client = match &self.ca_pem {
            Some(pem) => redis::Client::build_with_tls(
                info,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem.clone()),
                },
            )?,
            None => redis::Client::open(info)?,
        };
        let cfg = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.common.timeout))
            .set_response_timeout(Some(self.common.timeout));
        client.get_multiplexed_async_connection_with_config(&cfg).await
    }

    pub(super) async fn observe(&self) -> anyhow::Result<(Posture, Vec<Unknown>)> {
        let mut con = match self.connect(true).await {
            Ok(con) => {
                auth_off_warning(&self.url, false);
                con
            }
            // With its password removed, Redis refuses AUTH itself ("called without any password
            // configured"). If it then serves a connection without credentials, it is open, and
            // that is exactly what we must report rather than going blind.
            Err(e) if self.password.is_some() && e.kind() == redis::ErrorKind::AuthenticationFailed => {
                let mut open = self.connect(false).await.map_err(|_| self.auth_error(&e))?;
                let _: String = redis::cmd("PING")
                    .query_async(&mut open)
                    .await
                    .map_err(|_| self.auth_error(&e))?;
                auth_off_warning(&self.url, true);
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

        let mut unknown = Vec::new();
        let config_fix =
            "give the monitoring user CONFIG GET (ACL SETUSER <user> +config|get), and keep CONFIG under its own name";
        let mut config = |field: &str, key: &str, r: Result<Option<String>, String>| match r {
            Ok(v) => v,
            Err(e) => {
                unknown.push(Unknown::new(field, format!("CONFIG GET {key} failed: {e}"), config_fix));
                None
            }
        };
        let requirepass = config(
            "requirepass_set",
            "requirepass",
            config_get(&mut con, "requirepass").await,
        )
        .map(|v| !v.is_empty());
        let protected_mode = config(
            "protected_mode",
            "protected-mode",
            config_get(&mut con, "protected-mode").await,
        )
        .map(|v| v == "yes");
        let bind = config("bind", "bind", config_get(&mut con, "bind").await)
            .map(|v| v.split_whitespace().map(str::to_string).collect::<Vec<_>>());
        let tls_port =
            config("tls_port", "tls-port", config_get(&mut con, "tls-port").await).and_then(|v| v.parse::<u16>().ok());
        let acl_nopass_users = match redis::cmd("ACL").arg("LIST").query_async::<Vec<String>>(&mut con).await {
            Ok(lines) => Some(nopass_users(&lines)),
            Err(e) => {
                unknown.push(Unknown::new(
                    "acl_nopass_users",
                    format!("ACL LIST failed: {}", reply_error(&e)),
                    "give the monitoring user ACL LIST (ACL SETUSER <user> +acl|list)",
                ));
                None
            }
        };
        let scope = bind.as_ref().map(|b| net::widest(b.iter().map(String::as_str)));
        let listen_scope = scope.map(|s| s.as_str().to_string());
        let reach = Some(net::reach(self.common.reach, scope, &self.host).as_str().to_string());

        let unauthenticated_probe = self.probe_without_credentials().await;
        if unauthenticated_probe == "inconclusive" {
            unknown.push(Unknown::new(
                "unauthenticated_probe",
                "a command sent without credentials got no answer lockwatch understands",
                "check that lockwatch's host can reach the server's port, and the server's log",
            ));
        }
        Ok((
            Posture {
                unauthenticated_probe,
                requirepass_set: requirepass,
                acl_nopass_users,
                protected_mode,
                bind,
                listen_scope,
                tls_port,
                version,
                reach,
            },
            unknown,
        ))
    }

    fn auth_error(&self, e: &redis::RedisError) -> anyhow::Error {
        if e.to_string().contains("Parse error") {
            return anyhow!(
                "connecting to {}: the server did not answer in the Redis protocol, so this is not a Redis port \
                 (an HTTP or TLS server, perhaps): check the port, and use rediss:// if Redis listens with TLS",
                self.url
            );
        }
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

/// `CONFIG GET key`: the value, `None` when the server has no such key, an error when the
/// monitoring user may not run it (or CONFIG was renamed away).
async fn config_get(con: &mut redis::aio::MultiplexedConnection, key: &str) -> Result<Option<String>, String> {
    let pairs: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg(key)
        .query_async(con)
        .await
        .map_err(|e| reply_error(&e))?;
    Ok(pairs
        .chunks(2)
        .find(|c| c.len() == 2 && c[0] == key)
        .map(|c| c[1].clone()))
}

/// Logged when it starts and when it ends, not every cycle.
fn auth_off_warning(url: &str, on: bool) {
    let now = if on {
        vec![(
            url.to_string(),
            "the monitoring password was refused but the server answers without one: authentication is off".to_string(),
        )]
    } else {
        Vec::new()
    };
    crate::repeated::report(
        "redis authentication",
        &now,
        "the monitoring password is accepted again",
    );
}

/// A server's error reply, as it said it (`NOPERM …`, `ERR unknown command …`).
fn reply_error(e: &redis::RedisError) -> String {
    match (e.code(), e.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        _ => e.to_string(),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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
