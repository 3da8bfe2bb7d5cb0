//! Redis rules: findings and the direction of each change. Pure.

use super::*;

pub(super) fn assess(posture: &Value) -> Result<Assessment, String> {
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
    out.extend(common::wide_listener(
        "redis.listen.wide",
        "Redis",
        p.listen_scope.as_deref(),
        &binds,
    ));
    Ok(Assessment::new(out, p.reach.as_deref().and_then(net::Reach::parse)))
}

pub(super) fn describe(c: &crate::model::Change) -> Option<String> {
    let after = |v: &str| c.after.as_str() == Some(v);
    Some(match (common::field(c), common::member(c)) {
        ("acl_nopass_users", Some((true, user))) => {
            format!("ACL user `{user}` now accepts any password (was: required)")
        }
        ("acl_nopass_users", Some((false, user))) => format!("ACL user `{user}` no longer accepts any password"),
        ("requirepass_set", _) if c.after == false => "the password was removed (requirepass is empty)".into(),
        ("requirepass_set", _) if c.after == true => "a password is set again".into(),
        ("unauthenticated_probe", _) if after("accepted") => "a command sent without a password now runs".into(),
        ("unauthenticated_probe", _) if after("auth_required") => {
            "a command without a password is refused again".into()
        }
        ("protected_mode", _) if c.after == false => "protected-mode was turned off".into(),
        ("tls_port", _) if c.after == 0 => "TLS was turned off (tls-port 0)".into(),
        ("listen_scope", _) => format!(
            "the listener now binds {} addresses",
            crate::pipeline::evaluate::show_value(&c.after)
        ),
        ("reach", _) => format!(
            "it can now be reached from: {}",
            crate::pipeline::evaluate::show_value(&c.after)
        ),
        _ => return None,
    })
}

pub(super) fn classify(c: &FieldChange<'_>) -> Classification {
    if let Some(cl) = common::classify_reach(c) {
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

    use crate::sources::common::patched as with;

    fn rules(v: &Value) -> Vec<(String, Severity, bool)> {
        crate::sources::common::findings_of(assess, v)
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
            let f = assess(&with(open.clone(), json!({ "reach": reach }))).unwrap().findings;
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
        crate::sources::common::check_classify(classify, &base, &cases);
    }
}
