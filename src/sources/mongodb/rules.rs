//! MongoDB rules: findings and the direction of each change. Pure.

use super::*;

pub(super) fn assess(posture: &Value) -> Result<Assessment, String> {
    let p: Posture = serde_json::from_value(posture.clone()).map_err(|e| format!("not a mongodb posture: {e}"))?;
    let mut out = Vec::new();
    let loopback_only = p.listen_scope.as_deref() == Some("loopback");
    let auth_off = net::auth_off_severity(p.reach.as_deref());
    if p.unauthenticated_probe == "accepted" {
        out.push(Finding::new(
            "mongodb.auth.disabled",
            auth_off,
            true,
            "MongoDB answers clients that send no credentials (an anonymous listDatabases succeeded): \
             anyone who reaches the port can read, change or wipe every database. Restart mongod with \
             access control (`security.authorization: enabled` in mongod.conf, or --auth) after creating an \
             admin user, then check the clients' credentials.",
        ));
    }
    if p.authorization.as_deref() == Some("disabled") {
        out.push(Finding::new(
            "mongodb.authorization.off",
            auth_off,
            false,
            "mongod was started without access control (`security.authorization` is not enabled and no \
             keyFile is set). Set `security.authorization: enabled` in mongod.conf and restart it.",
        ));
    }
    match p.tls_mode.as_deref() {
        Some(mode @ ("disabled" | "allowTLS" | "preferTLS")) if p.listen_scope.is_some() && !loopback_only => {
            out.push(Finding::new(
                "mongodb.tls.disabled",
                Severity::Medium,
                false,
                format!(
                    "MongoDB listens on {} addresses and accepts connections without TLS (net.tls.mode {mode}): \
                     passwords and data cross the network in clear. Set net.tls.mode: requireTLS with a certificate, \
                     or bind to loopback.",
                    p.listen_scope.as_deref().unwrap_or("non-loopback")
                ),
            ))
        }
        _ => {}
    }
    if let Some(users) = p.scram_sha1_only_users.as_ref().filter(|u| !u.is_empty()) {
        out.push(Finding::new(
            "mongodb.user.scram_sha1_only",
            Severity::Low,
            false,
            format!(
                "user(s) {} can log in only with SCRAM-SHA-1. Give each SCRAM-SHA-256 credentials \
                 (db.updateUser(name, {{pwd: …, mechanisms: [\"SCRAM-SHA-256\"]}})).",
                users.join(", ")
            ),
        ));
    }
    let binds = match &p.bind_ip {
        Some(b) => b.join(","),
        None => "?".to_string(),
    };
    out.extend(common::wide_listener(
        "mongodb.listen.wide",
        "MongoDB",
        p.listen_scope.as_deref(),
        &binds,
    ));
    Ok(Assessment::new(out, p.reach.as_deref().and_then(net::Reach::parse)))
}

pub(super) fn describe(c: &crate::model::Change) -> Option<String> {
    let after = |v: &str| c.after.as_str() == Some(v);
    Some(match (common::field(c), common::member(c)) {
        ("privileged_users", Some((true, user))) => format!("privileged user {user} was added"),
        ("privileged_users", Some((false, user))) => format!("privileged user {user} was removed"),
        ("scram_sha1_only_users", Some((true, user))) => format!("user {user} now logs in only with SCRAM-SHA-1"),
        ("unauthenticated_probe", _) if after("accepted") => {
            "a client without credentials can now list the databases".into()
        }
        ("unauthenticated_probe", _) if after("auth_required") => {
            "a client without credentials is refused again (code 13 Unauthorized)".into()
        }
        ("authorization", _) if after("disabled") => "mongod now runs without access control".into(),
        ("authorization", _) if after("enabled") => "mongod runs with access control again".into(),
        ("tls_mode", _) => format!(
            "TLS mode is now {} (was: {})",
            crate::pipeline::evaluate::show_value(&c.after),
            crate::pipeline::evaluate::show_value(&c.before)
        ),
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
    match crate::diff::top_field(c.path) {
        // "inconclusive" is no evidence either way: neutral.
        "unauthenticated_probe" => classify_rank(
            c.before,
            c.after,
            &["accepted", "auth_required"],
            Classification::weakened(Severity::Critical),
        ),
        "authorization" => classify_rank(
            c.before,
            c.after,
            &["disabled", "enabled"],
            Classification::weakened(Severity::Critical),
        ),
        "tls_mode" => classify_rank(
            c.before,
            c.after,
            &["disabled", "allowTLS", "preferTLS", "requireTLS"],
            Classification::weakened(Severity::High),
        ),
        "privileged_users" if c.path != "/privileged_users" => {
            classify_risky_member(c.before, c.after, Classification::weakened(Severity::High))
        }
        "scram_sha1_only_users" if c.path != "/scram_sha1_only_users" => {
            classify_risky_member(c.before, c.after, Classification::weakened(Severity::Low))
        }
        "auth_mechanisms" if c.path != "/auth_mechanisms" => match (c.before.as_str(), c.after.as_str()) {
            // SCRAM-SHA-1 (weaker) newly accepted.
            (None, Some("SCRAM-SHA-1")) => Classification::weakened(Severity::Low),
            _ => Classification::NEUTRAL,
        },
        _ => Classification::NEUTRAL,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ChangeClass;

    fn protected() -> Value {
        samples().safe
    }

    use crate::sources::common::patched as with;

    fn rules(v: &Value) -> Vec<(String, Severity, bool)> {
        crate::sources::common::findings_of(assess, v)
    }

    #[test]
    fn assess_table() {
        let open = json!({"unauthenticated_probe": "accepted", "authorization": "disabled"});
        let cases: Vec<(&str, Value, Vec<(&str, Severity, bool)>)> = vec![
            ("protected, private, TLS required", protected(), vec![]),
            (
                "the Wyze change: authorization off on a private listener",
                with(protected(), open.clone()),
                vec![
                    ("mongodb.auth.disabled", Severity::Critical, true),
                    ("mongodb.authorization.off", Severity::Critical, false),
                ],
            ),
            (
                "authorization off on loopback only: high",
                with(
                    protected(),
                    json!({"unauthenticated_probe": "accepted", "authorization": "disabled",
                           "bind_ip": ["127.0.0.1"], "listen_scope": "loopback", "reach": "loopback", "tls_mode": "disabled"}),
                ),
                vec![
                    ("mongodb.auth.disabled", Severity::High, true),
                    ("mongodb.authorization.off", Severity::High, false),
                ],
            ),
            (
                "config unread, probe open: still exposed",
                with(
                    protected(),
                    json!({"unauthenticated_probe": "accepted", "authorization": null, "tls_mode": null}),
                ),
                vec![("mongodb.auth.disabled", Severity::Critical, true)],
            ),
            (
                "plain connections accepted beyond loopback",
                with(protected(), json!({"tls_mode": "preferTLS"})),
                vec![("mongodb.tls.disabled", Severity::Medium, false)],
            ),
            (
                "no TLS but loopback only: fine",
                with(
                    protected(),
                    json!({"tls_mode": "disabled", "listen_scope": "loopback", "bind_ip": ["127.0.0.1"]}),
                ),
                vec![],
            ),
            (
                "every interface, SHA-1-only user",
                with(
                    protected(),
                    json!({"bind_ip": ["0.0.0.0", "::"], "listen_scope": "all_interfaces", "scram_sha1_only_users": ["events.app"]}),
                ),
                vec![
                    ("mongodb.user.scram_sha1_only", Severity::Low, false),
                    ("mongodb.listen.wide", Severity::Low, false),
                ],
            ),
            (
                "nothing read but the probe: nothing inferred",
                json!({"unauthenticated_probe": "auth_required", "authorization": null, "key_file": null, "bind_ip": null,
                       "listen_scope": null, "tls_mode": null, "privileged_users": null, "scram_sha1_only_users": null,
                       "auth_mechanisms": null, "version": "7.0.14", "reach": "private"}),
                vec![],
            ),
        ];
        for (name, posture, want) in cases {
            let want: Vec<(String, Severity, bool)> = want.into_iter().map(|(r, s, e)| (r.to_string(), s, e)).collect();
            assert_eq!(rules(&posture), want, "case: {name}");
        }
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
                "/authorization",
                json!("enabled"),
                json!("disabled"),
                ChangeClass::Weakened,
                Severity::Critical,
            ),
            (
                "/authorization",
                json!("disabled"),
                json!("enabled"),
                ChangeClass::Strengthened,
                Severity::Low,
            ),
            (
                "/authorization",
                json!("enabled"),
                Value::Null,
                ChangeClass::Neutral,
                Severity::Low,
            ),
            (
                "/tls_mode",
                json!("requireTLS"),
                json!("preferTLS"),
                ChangeClass::Weakened,
                Severity::High,
            ),
            (
                "/tls_mode",
                json!("disabled"),
                json!("requireTLS"),
                ChangeClass::Strengthened,
                Severity::Low,
            ),
            (
                "/privileged_users/1",
                Value::Null,
                json!("admin.intruder (root)"),
                ChangeClass::Weakened,
                Severity::High,
            ),
            (
                "/privileged_users/1",
                json!("admin.intruder (root)"),
                Value::Null,
                ChangeClass::Strengthened,
                Severity::Low,
            ),
            (
                "/scram_sha1_only_users/0",
                Value::Null,
                json!("events.app"),
                ChangeClass::Weakened,
                Severity::Low,
            ),
            (
                "/auth_mechanisms/0",
                Value::Null,
                json!("SCRAM-SHA-1"),
                ChangeClass::Weakened,
                Severity::Low,
            ),
            (
                "/listen_scope",
                json!("loopback"),
                json!("all_interfaces"),
                ChangeClass::Weakened,
                Severity::Medium,
            ),
            (
                "/key_file",
                json!(true),
                json!(false),
                ChangeClass::Neutral,
                Severity::Low,
            ),
            (
                "/version",
                json!("6.0.16"),
                json!("7.0.14"),
                ChangeClass::Neutral,
                Severity::Low,
            ),
        ];
        crate::sources::common::check_classify(classify, &base, &cases);
    }
}
