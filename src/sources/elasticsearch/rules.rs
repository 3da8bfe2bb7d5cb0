//! Elasticsearch/OpenSearch rules: findings and the direction of each change. Pure.

use super::*;

pub(super) fn assess(posture: &Value) -> Result<Assessment, String> {
    let p: Posture =
        serde_json::from_value(posture.clone()).map_err(|e| format!("not an elasticsearch posture: {e}"))?;
    let mut out = Vec::new();
    let product = if p.distribution == "opensearch" {
        "OpenSearch"
    } else {
        "Elasticsearch"
    };
    let auth_off = net::auth_off_severity(p.reach.as_deref());
    let can_search = p.anonymous_can_search == Some(true);
    if p.anonymous_can_list_indices || p.anonymous_root == "accepted" || can_search {
        out.push(Finding::new(
            "elasticsearch.anonymous.access",
            auth_off,
            true,
            format!(
                "{product} answers requests without credentials ({}): anyone who reaches it can list and read the indices. \
                 Turn security back on ({}) and restart, or firewall it off now.",
                if p.anonymous_can_list_indices {
                    "GET /_cat/indices succeeded"
                } else if can_search {
                    "GET /_search succeeded"
                } else {
                    "GET / succeeded"
                },
                if p.distribution == "opensearch" { "remove plugins.security.disabled: true" } else { "xpack.security.enabled: true" }
            ),
        ));
    }
    if p.security_enabled == Some(false) {
        out.push(Finding::new(
            "elasticsearch.security.disabled",
            auth_off,
            p.anonymous_root == "accepted" || p.anonymous_can_list_indices,
            format!(
                "{product} security is disabled: no authentication, no authorisation, no audit. Set {} and restart.",
                if p.distribution == "opensearch" {
                    "plugins.security.disabled: false"
                } else {
                    "xpack.security.enabled: true"
                }
            ),
        ));
    }
    if let Some(roles) = p.anonymous_roles.as_ref().filter(|r| !r.is_empty()) {
        out.push(Finding::new(
            "elasticsearch.anonymous.roles",
            Severity::High,
            false,
            format!("Anonymous access is configured: callers without credentials get the roles {}. Remove the anonymous user or give it no data access.", roles.join(", ")),
        ));
    }
    if !p.http_tls && p.listen_scope.as_deref().is_some_and(|s| s != "loopback") {
        out.push(Finding::new(
            "elasticsearch.tls.disabled",
            Severity::High,
            false,
            format!("The HTTP layer has no TLS while it listens on {} addresses: passwords and data cross the network in clear. Enable HTTP TLS.", p.listen_scope.as_deref().unwrap_or("?")),
        ));
    }
    if p.cors_allow_any_origin == Some(true) {
        out.push(Finding::new(
            "elasticsearch.cors.allow_any_origin",
            Severity::Medium,
            false,
            "CORS allows any origin: any web page a user opens can call the cluster from their browser. Set http.cors.allow-origin to your own sites.",
        ));
    }
    out.extend(common::wide_listener(
        "elasticsearch.listen.wide",
        product,
        p.listen_scope.as_deref(),
        &p.bound_addresses.unwrap_or_default().join(", "),
    ));
    Ok(Assessment::new(out, p.reach.as_deref().and_then(net::Reach::parse)))
}

pub(super) fn describe(c: &crate::model::Change) -> Option<String> {
    Some(match (common::field(c), common::member(c)) {
        ("security_enabled", _) if c.after == false => "security was turned off".into(),
        ("security_enabled", _) if c.after == true => "security is on again".into(),
        ("anonymous_root", _) if c.after == "accepted" => "GET / without credentials now answers".into(),
        ("anonymous_can_list_indices", _) if c.after == true => "the index list is readable without credentials".into(),
        ("anonymous_can_search", _) if c.after == true => "a search without credentials now answers".into(),
        ("anonymous_roles", Some((true, role))) => format!("callers without credentials now get role `{role}`"),
        ("anonymous_roles", Some((false, role))) => format!("callers without credentials no longer get role `{role}`"),
        ("cors_allow_any_origin", _) if c.after == true => {
            "any web site may now call the cluster from a browser (CORS *)".into()
        }
        ("http_tls", _) if c.after == false => "HTTP TLS was turned off".into(),
        _ => return None,
    })
}

pub(super) fn classify(c: &FieldChange<'_>) -> Classification {
    if let Some(cl) = common::classify_reach(c) {
        return cl;
    }
    let weak = Classification::weakened;
    match c.path.trim_start_matches('/').split('/').collect::<Vec<_>>().as_slice() {
        ["anonymous_root"] => classify_rank(
            c.before,
            c.after,
            &["accepted", "forbidden", "auth_required"],
            weak(Severity::Critical),
        ),
        ["anonymous_can_list_indices"] | ["anonymous_can_search"] => {
            classify_flag(c.before, c.after, false, weak(Severity::Critical))
        }
        ["security_enabled"] => classify_flag(c.before, c.after, true, weak(Severity::Critical)),
        ["anonymous_roles", _] => classify_risky_member(c.before, c.after, weak(Severity::High)),
        ["http_tls"] => classify_flag(c.before, c.after, true, weak(Severity::High)),
        ["cors_allow_any_origin"] => classify_flag(c.before, c.after, false, weak(Severity::Medium)),
        _ => Classification::NEUTRAL,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ChangeClass;
    use serde_json::json;

    fn secured() -> Value {
        json!({"distribution": "elasticsearch", "version": "8.11.3", "anonymous_root": "auth_required", "anonymous_can_list_indices": false,
               "auth_schemes": ["ApiKey", "Basic", "Bearer"], "security_enabled": true, "anonymous_roles": [], "http_tls": true,
               "cors_allow_any_origin": false, "bound_addresses": ["127.0.0.1:9200"], "listen_scope": "loopback"})
    }
    use crate::sources::common::patched as with;

    #[test]
    fn assess_table() {
        let cases: Vec<(&str, Value, Vec<(&str, Severity, bool)>)> = vec![
            ("secured", secured(), vec![]),
            (
                "security removed (the Wyze case)",
                with(
                    secured(),
                    json!({"anonymous_root": "accepted", "anonymous_can_list_indices": true, "security_enabled": false, "auth_schemes": [], "anonymous_roles": null}),
                ),
                vec![
                    ("elasticsearch.anonymous.access", Severity::Critical, true),
                    ("elasticsearch.security.disabled", Severity::Critical, true),
                ],
            ),
            (
                "anonymous user with roles",
                with(
                    secured(),
                    json!({"anonymous_root": "accepted", "anonymous_can_list_indices": true, "anonymous_roles": ["viewer"]}),
                ),
                vec![
                    ("elasticsearch.anonymous.access", Severity::Critical, true),
                    ("elasticsearch.anonymous.roles", Severity::High, false),
                ],
            ),
            (
                "anonymous user that can read nothing",
                with(
                    secured(),
                    json!({"anonymous_root": "forbidden", "anonymous_roles": ["monitoring_only"]}),
                ),
                vec![("elasticsearch.anonymous.roles", Severity::High, false)],
            ),
            (
                "plain HTTP on a private address, CORS open",
                with(
                    secured(),
                    json!({"http_tls": false, "bound_addresses": ["10.0.0.5:9200"], "listen_scope": "private", "cors_allow_any_origin": true}),
                ),
                vec![
                    ("elasticsearch.tls.disabled", Severity::High, false),
                    ("elasticsearch.cors.allow_any_origin", Severity::Medium, false),
                ],
            ),
            (
                "bound to every interface",
                with(
                    secured(),
                    json!({"bound_addresses": ["[::]:9200", "0.0.0.0:9200"], "listen_scope": "all_interfaces"}),
                ),
                vec![("elasticsearch.listen.wide", Severity::Low, false)],
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
        let d = secured();
        let cases: Vec<(&str, Value, Value, ChangeClass, Severity)> = vec![
            (
                "/anonymous_root",
                json!("auth_required"),
                json!("accepted"),
                ChangeClass::Weakened,
                Severity::Critical,
            ),
            (
                "/anonymous_root",
                json!("accepted"),
                json!("auth_required"),
                ChangeClass::Strengthened,
                Severity::Low,
            ),
            (
                "/anonymous_can_list_indices",
                json!(false),
                json!(true),
                ChangeClass::Weakened,
                Severity::Critical,
            ),
            (
                "/security_enabled",
                json!(true),
                json!(false),
                ChangeClass::Weakened,
                Severity::Critical,
            ),
            (
                "/anonymous_roles/0",
                Value::Null,
                json!("viewer"),
                ChangeClass::Weakened,
                Severity::High,
            ),
            (
                "/http_tls",
                json!(true),
                json!(false),
                ChangeClass::Weakened,
                Severity::High,
            ),
            (
                "/cors_allow_any_origin",
                json!(false),
                json!(true),
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
                "/version",
                json!("8.11.3"),
                json!("8.12.0"),
                ChangeClass::Neutral,
                Severity::Low,
            ),
        ];
        crate::sources::common::check_classify(classify, &d, &cases);
    }
}
