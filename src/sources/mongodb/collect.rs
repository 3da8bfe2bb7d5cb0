//! Reading a MongoDB server: `buildInfo` and `listDatabases` without credentials, then the
//! startup options, users and mechanisms as the monitoring user.

use super::*;
use anyhow::anyhow;
use mongodb::bson::{Bson, Document, doc};
use mongodb::error::ErrorKind;
use mongodb::options::{AuthMechanism, ClientOptions, Credential, ServerAddress, Tls, TlsOptions};

const SELECTION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Roles that can read or change every database, or grant themselves that (on `admin`).
const PRIVILEGED_ANY_DB: &[&str] = &[
    "root",
    "__system",
    "userAdminAnyDatabase",
    "dbAdminAnyDatabase",
    "readWriteAnyDatabase",
    "readAnyDatabase",
    "clusterAdmin",
    "restore",
    "backup",
];
const PRIVILEGED_ON_ADMIN: &[&str] = &["dbOwner", "userAdmin", "readWrite", "dbAdmin"];

const GRANT_MONITOR: &str = "grant the monitoring user clusterMonitor on admin: \
     db.getSiblingDB(\"admin\").grantRolesToUser(\"lockwatch\", [{role: \"clusterMonitor\", db: \"admin\"}])";
const GRANT_VIEW_USERS: &str = "grant the monitoring user the viewUser action on every database \
     (a role with privileges [{resource: {db: \"\", collection: \"\"}, actions: [\"viewUser\"]}]; see the README)";

/// A MongoDB error in the server's own words: its message, code and code name.
pub(super) fn explain(e: &mongodb::error::Error) -> String {
    match e.kind.as_ref() {
        ErrorKind::Command(c) => format!("{} (code {} {})", c.message, c.code, c.code_name),
        ErrorKind::Authentication { message, .. } => message.clone(),
        ErrorKind::ServerSelection { message, .. } => {
            // The driver's message describes the whole topology; keep the server's error.
            let why = message
                .split("Error: ")
                .nth(1)
                .map(|s| {
                    s.split(", labels")
                        .next()
                        .unwrap_or(s)
                        .trim_end_matches([' ', '}', ']', ','])
                })
                .unwrap_or(message);
            format!(
                "no usable answer within the timeout: {}",
                why.trim_start_matches("Kind: ")
            )
        }
        _ => e.to_string(),
    }
}

fn code(e: &mongodb::error::Error) -> Option<i32> {
    match e.kind.as_ref() {
        ErrorKind::Command(c) => Some(c.code),
        _ => None,
    }
}

fn is_auth_failure(e: &mongodb::error::Error) -> bool {
    matches!(e.kind.as_ref(), ErrorKind::Authentication { .. }) || code(e) == Some(18)
}

impl MongoSource {
    fn client(&self, with_credentials: bool) -> anyhow::Result<mongodb::Client> {
        let mut o = ClientOptions::default();
        o.hosts = vec![ServerAddress::Tcp {
            host: self.target.host.clone(),
            port: Some(self.target.port),
        }];
        o.direct_connection = Some(true);
        o.connect_timeout = Some(self.common.timeout);
        // The driver waits for the whole server-selection timeout even when the handshake has
        // already failed for good (a certificate that does not chain, connection refused), so
        // one server gets at most 5 s to complete its handshake, or `timeout` if shorter.
        o.server_selection_timeout = Some(self.common.timeout.min(SELECTION_TIMEOUT));
        o.app_name = Some("lockwatch".into());
        o.max_pool_size = Some(2);
        if self.target.tls {
            let mut tls = TlsOptions::default();
            tls.ca_file_path = self.ca_file.clone();
            o.tls = Some(Tls::Enabled(tls));
        }
        if with_credentials {
            if let (Some(user), Some(pw)) = (&self.target.username, &self.password) {
                let mut c = Credential::default();
                c.username = Some(user.clone());
                c.password = Some(pw.expose().to_string());
                c.source = Some(self.target.auth_source.clone());
                c.mechanism = match self.target.mechanism.as_deref() {
                    Some("SCRAM-SHA-1") => Some(AuthMechanism::ScramSha1),
                    Some("SCRAM-SHA-256") => Some(AuthMechanism::ScramSha256),
                    _ => None,
                };
                o.credential = Some(c);
            }
        }
        mongodb::Client::with_options(o).map_err(|e| anyhow!("{}: {}", self.url, explain(&e)))
    }

    pub(super) async fn observe(&self) -> anyhow::Result<(Posture, Vec<Unknown>)> {
        let anon = self.client(false)?;
        let admin = anon.database("admin");
        let build = admin.run_command(doc! {"buildInfo": 1}).await.map_err(|e| {
            anyhow!(
                "{}: buildInfo (allowed to anyone) failed: {}. Check that lockwatch's host reaches the port{}",
                self.url,
                explain(&e),
                if self.target.tls {
                    ", and that ca_file holds the CA that signed the server's certificate"
                } else {
                    " (if the server requires TLS, add ?tls=true and ca_file)"
                }
            )
        })?;
        let version = build.get_str("version").ok().map(str::to_string);
        let mut unknown = Vec::new();
        let unauthenticated_probe = match admin.run_command(doc! {"listDatabases": 1, "nameOnly": true}).await {
            Ok(_) => "accepted",
            Err(e) if code(&e) == Some(13) => "auth_required",
            Err(e) => {
                unknown.push(Unknown::new(
                    "unauthenticated_probe",
                    format!(
                        "listDatabases without credentials got an unexpected answer: {}",
                        explain(&e)
                    ),
                    "check the server's log; lockwatch expects either a list or code 13 Unauthorized",
                ));
                "inconclusive"
            }
        }
        .to_string();

        let mut p = Posture {
            unauthenticated_probe,
            authorization: None,
            key_file: None,
            bind_ip: None,
            listen_scope: None,
            tls_mode: None,
            privileged_users: None,
            scram_sha1_only_users: None,
            auth_mechanisms: None,
            version,
            reach: None,
        };
        if self.target.username.is_some() {
            self.read_as_monitor(&mut p, &mut unknown).await?;
        }
        let scope = p.bind_ip.as_ref().map(|b| net::widest(b.iter().map(String::as_str)));
        p.listen_scope = scope.map(|s| s.as_str().to_string());
        p.reach = Some(
            net::reach(self.common.reach, scope, &self.target.host)
                .as_str()
                .to_string(),
        );
        Ok((p, unknown))
    }

    async fn read_as_monitor(&self, p: &mut Posture, unknown: &mut Vec<Unknown>) -> anyhow::Result<()> {
        let client = self.client(true)?;
        let admin = client.database("admin");
        let user = self.target.username.as_deref().unwrap_or_default();
        let opts = match admin.run_command(doc! {"getCmdLineOpts": 1}).await {
            Ok(d) => Some(d),
            Err(e) if is_auth_failure(&e) => {
                let why = format!(
                    "the monitoring user {user} (authSource {}) could not log in: {}",
                    self.target.auth_source,
                    explain(&e)
                );
                // A server that lists its databases to anyone is open whatever our login says:
                // report that, and the fields the login would have read as unknown.
                if p.unauthenticated_probe == "accepted" {
                    let fix = "check the monitoring user's password and authSource";
                    for f in [
                        "authorization",
                        "bind_ip",
                        "tls_mode",
                        "privileged_users",
                        "auth_mechanisms",
                    ] {
                        unknown.push(Unknown::new(f, why.clone(), fix));
                    }
                    return Ok(());
                }
                anyhow::bail!(
                    "{}: {why}. Check the password (password_file/password_env) and the url's ?authSource= (the database the user was created in)",
                    self.url
                );
            }
            Err(e) if code(&e) == Some(13) => {
                let why = format!("getCmdLineOpts as {user} was refused: {}", explain(&e));
                for f in ["authorization", "bind_ip", "tls_mode"] {
                    unknown.push(Unknown::new(f, why.clone(), GRANT_MONITOR));
                }
                None
            }
            Err(e) => anyhow::bail!("{}: getCmdLineOpts as {user}: {}", self.url, explain(&e)),
        };
        if let Some(opts) = opts {
            let parsed = opts.get_document("parsed").ok();
            let (authorization, key_file, bind_ip, tls_mode) = startup_options(parsed);
            p.authorization = Some(authorization);
            p.key_file = Some(key_file);
            p.bind_ip = Some(bind_ip);
            p.tls_mode = Some(tls_mode);
        }

        match admin.run_command(doc! {"usersInfo": {"forAllDBs": true}}).await {
            Ok(d) => {
                let (privileged, sha1_only) = users(&d);
                p.privileged_users = Some(privileged);
                p.scram_sha1_only_users = Some(sha1_only);
            }
            Err(e) if code(&e) == Some(13) => unknown.push(Unknown::new(
                "privileged_users",
                format!("usersInfo {{forAllDBs: true}} as {user} was refused: {}", explain(&e)),
                GRANT_VIEW_USERS,
            )),
            Err(e) => anyhow::bail!("{}: usersInfo as {user}: {}", self.url, explain(&e)),
        }

        match admin
            .run_command(doc! {"getParameter": 1, "authenticationMechanisms": 1})
            .await
        {
            Ok(d) => {
                let mut m: Vec<String> = d
                    .get_array("authenticationMechanisms")
                    .map(|a| a.iter().filter_map(Bson::as_str).map(str::to_string).collect())
                    .unwrap_or_default();
                m.sort();
                p.auth_mechanisms = Some(m);
            }
            Err(e) if code(&e) == Some(13) => unknown.push(Unknown::new(
                "auth_mechanisms",
                format!("getParameter as {user} was refused: {}", explain(&e)),
                GRANT_MONITOR,
            )),
            Err(e) => anyhow::bail!("{}: getParameter as {user}: {}", self.url, explain(&e)),
        }
        Ok(())
    }
}

/// From `getCmdLineOpts.parsed`: authorization, keyFile set, bind addresses, TLS mode. Pure.
fn startup_options(parsed: Option<&Document>) -> (String, bool, Vec<String>, String) {
    let security = parsed.and_then(|p| p.get_document("security").ok());
    let key_file = security.is_some_and(|s| s.get_str("keyFile").is_ok_and(|k| !k.is_empty()));
    let authorization_on = security.is_some_and(|s| s.get_str("authorization") == Ok("enabled"));
    // A keyFile turns access control on, whatever `authorization` says.
    let authorization = if authorization_on || key_file {
        "enabled"
    } else {
        "disabled"
    };
    let net = parsed.and_then(|p| p.get_document("net").ok());
    let bind_all = net.is_some_and(|n| n.get_bool("bindIpAll") == Ok(true));
    let mut bind_ip: Vec<String> = if bind_all {
        vec!["0.0.0.0".into(), "::".into()]
    } else {
        match net.and_then(|n| n.get_str("bindIp").ok()) {
            Some(b) => b
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            // mongod 3.6+ binds to localhost unless told otherwise.
            None => vec!["127.0.0.1".into()],
        }
    };
    bind_ip.sort();
    let tls = net.and_then(|n| {
        n.get_document("tls")
            .ok()
            .and_then(|t| t.get_str("mode").ok())
            .map(str::to_string)
            .or_else(|| {
                // Before 4.2: net.ssl.mode with SSL in the names.
                n.get_document("ssl")
                    .ok()
                    .and_then(|t| t.get_str("mode").ok())
                    .map(|m| m.replace("SSL", "TLS"))
            })
    });
    (
        authorization.into(),
        key_file,
        bind_ip,
        tls.unwrap_or_else(|| "disabled".into()),
    )
}

/// From a `usersInfo` reply: the privileged users (`db.user (role, …)`) and those that can use
/// only SCRAM-SHA-1, each sorted. Pure.
fn users(reply: &Document) -> (Vec<String>, Vec<String>) {
    let mut privileged = Vec::new();
    let mut sha1_only = Vec::new();
    for u in reply.get_array("users").into_iter().flatten() {
        let Some(u) = u.as_document() else { continue };
        let name = format!(
            "{}.{}",
            u.get_str("db").unwrap_or("?"),
            u.get_str("user").unwrap_or("?")
        );
        let mut roles: Vec<String> = u
            .get_array("roles")
            .into_iter()
            .flatten()
            .filter_map(Bson::as_document)
            .filter_map(|r| {
                let role = r.get_str("role").ok()?;
                let db = r.get_str("db").unwrap_or("");
                (PRIVILEGED_ANY_DB.contains(&role) || (db == "admin" && PRIVILEGED_ON_ADMIN.contains(&role)))
                    .then(|| role.to_string())
            })
            .collect();
        roles.sort();
        roles.dedup();
        if !roles.is_empty() {
            privileged.push(format!("{name} ({})", roles.join(", ")));
        }
        let mechs: Vec<&str> = u
            .get_array("mechanisms")
            .into_iter()
            .flatten()
            .filter_map(Bson::as_str)
            .collect();
        if mechs == ["SCRAM-SHA-1"] {
            sha1_only.push(name);
        }
    }
    privileged.sort();
    sha1_only.sort();
    (privileged, sha1_only)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn startup_options_table() {
        let cases: Vec<(Option<Document>, (&str, bool, Vec<&str>, &str))> = vec![
            (None, ("disabled", false, vec!["127.0.0.1"], "disabled")),
            (
                Some(
                    doc! {"net": {"bindIp": "127.0.0.1,10.0.0.9", "tls": {"mode": "requireTLS"}}, "security": {"authorization": "enabled"}},
                ),
                ("enabled", false, vec!["10.0.0.9", "127.0.0.1"], "requireTLS"),
            ),
            (
                Some(doc! {"net": {"bindIpAll": true}, "security": {"keyFile": "/etc/mongo.key"}}),
                ("enabled", true, vec!["0.0.0.0", "::"], "disabled"),
            ),
            (
                Some(
                    doc! {"net": {"bindIp": "0.0.0.0", "ssl": {"mode": "preferSSL"}}, "security": {"authorization": "disabled"}},
                ),
                ("disabled", false, vec!["0.0.0.0"], "preferTLS"),
            ),
        ];
        for (parsed, (auth, key, bind, tls)) in cases {
            let got = startup_options(parsed.as_ref());
            assert_eq!(
                got,
                (
                    auth.to_string(),
                    key,
                    bind.into_iter().map(str::to_string).collect(),
                    tls.to_string()
                ),
                "{parsed:?}"
            );
        }
    }

    #[test]
    fn users_are_graded_by_their_roles() {
        let reply = doc! {"users": [
            {"user": "lockwatch", "db": "admin", "roles": [{"role": "clusterMonitor", "db": "admin"}], "mechanisms": ["SCRAM-SHA-256"]},
            {"user": "ops", "db": "admin", "roles": [{"role": "root", "db": "admin"}], "mechanisms": ["SCRAM-SHA-1", "SCRAM-SHA-256"]},
            {"user": "app", "db": "events", "roles": [{"role": "readWrite", "db": "events"}], "mechanisms": ["SCRAM-SHA-1"]},
            {"user": "sneaky", "db": "events", "roles": [{"role": "readWrite", "db": "admin"}, {"role": "backup", "db": "admin"}]},
        ], "ok": 1.0};
        assert_eq!(
            users(&reply),
            (
                vec![
                    "admin.ops (root)".to_string(),
                    "events.sneaky (backup, readWrite)".to_string()
                ],
                vec!["events.app".to_string()]
            )
        );
    }
}
