//! MySQL/MariaDB rules: findings and the direction of each change. Pure.

use super::*;

fn is_local_host(account: &str) -> bool {
    let host = account.rsplit_once('@').map(|(_, h)| h).unwrap_or("");
    matches!(host, "localhost" | "127.0.0.1" | "::1")
}

pub(super) fn assess(posture: &Value) -> Result<Assessment, String> {
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
                "Local accounts have no password: {}. Any process on the host can log in as them. \
                 Set one (ALTER USER ... IDENTIFIED BY '...') or lock them (ALTER USER ... ACCOUNT LOCK).",
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
    out.extend(common::wide_listener(
        "mysql.listen.wide",
        product,
        p.listen_scope.as_deref(),
        p.bind_address.as_deref().unwrap_or("every interface"),
    ));
    Ok(Assessment::new(out, p.reach.as_deref().and_then(net::Reach::parse)))
}

pub(super) fn describe(c: &crate::model::Change) -> Option<String> {
    Some(match (common::field(c), common::member(c)) {
        ("accounts_without_password", Some((true, a))) => format!("account `{a}` has no password"),
        ("accounts_without_password", Some((false, a))) => format!("account `{a}` has a password again (or is gone)"),
        ("anonymous_accounts", Some((true, a))) => format!("anonymous account `{a}` lets any user name in"),
        ("wildcard_host_privileged", Some((true, a))) => {
            format!("`{a}` can log in from any host with global privileges")
        }
        ("unauthenticated_login", _) if c.after == "accepted" => {
            "a login with a made-up user and no password now succeeds".into()
        }
        ("require_secure_transport", _) if c.after == false => "require_secure_transport was turned off".into(),
        ("skip_networking", _) if c.after == false => {
            "the server accepts network connections now (skip_networking off)".into()
        }
        _ => return None,
    })
}

pub(super) fn classify(c: &FieldChange<'_>) -> Classification {
    if let Some(cl) = common::classify_reach(c) {
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
    use crate::sources::common::patched as with;

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
                .findings
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
        crate::sources::common::check_classify(classify, &d, &cases);
    }
}
