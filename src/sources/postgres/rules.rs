//! PostgreSQL rules: findings and the direction of each change. Pure.

use super::*;
use crate::model::ChangeClass;

/// Number of addresses a rule's address/netmask leaves open, as a fraction of its family's
/// space in bits: `None` for rules that only match local connections.
fn open_bits(rule: &HbaRule) -> Option<u32> {
    if rule.kind == "local" {
        return None;
    }
    let addr = rule.address.as_deref().unwrap_or("all");
    match addr {
        "all" => return Some(128),
        "samehost" | "localhost" => return None,
        "samenet" => return Some(16),
        _ => {}
    }
    let Ok(ip) = addr.parse::<IpAddr>() else {
        // A host name (or .domain suffix): reachable from wherever that name resolves.
        return Some(0);
    };
    let prefix = match rule.netmask.as_deref().and_then(|m| m.parse::<IpAddr>().ok()) {
        Some(IpAddr::V4(m)) => u32::from(m).count_ones(),
        Some(IpAddr::V6(m)) => u128::from(m).count_ones(),
        None => {
            if ip.is_ipv4() {
                32
            } else {
                128
            }
        }
    };
    let (family_bits, loopback) = match ip {
        IpAddr::V4(v4) => (32, v4.octets()[0] == 127 && prefix >= 8),
        IpAddr::V6(v6) => (128, v6.is_loopback() && prefix == 128),
    };
    if loopback {
        return None;
    }
    // Scale to a 128-bit space so IPv4 and IPv6 rules compare.
    Some((family_bits - prefix.min(family_bits)) * (128 / family_bits))
}

/// An address rule's network: (address, prefix length), when it is numeric.
fn network(rule: &HbaRule) -> Option<(IpAddr, u32)> {
    let ip: IpAddr = rule.address.as_deref()?.parse().ok()?;
    let prefix = match rule.netmask.as_deref().and_then(|m| m.parse::<IpAddr>().ok()) {
        Some(IpAddr::V4(m)) => u32::from(m).count_ones(),
        Some(IpAddr::V6(m)) => u128::from(m).count_ones(),
        None if ip.is_ipv4() => 32,
        None => 128,
    };
    Some((ip, prefix))
}

fn in_network(ip: IpAddr, (net, prefix): (IpAddr, u32)) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - prefix.min(32)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - prefix.min(128)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// Does rule `a` match every connection rule `b` would match? (Then `b`, later in the file,
/// never applies: the first matching line decides.)
fn covers(a: &HbaRule, b: &HbaRule) -> bool {
    let kind = a.kind == b.kind || (a.kind == "host" && b.kind.starts_with("host"));
    // `all` matches every database but `replication`, which must be named.
    let names = |a: &[String], b: &[String], database: bool| {
        if a.iter().any(|x| x == "all") {
            !(database && b.iter().any(|x| x == "replication"))
        } else {
            !b.iter().any(|x| x == "all") && b.iter().all(|x| a.contains(x))
        }
    };
    let address = a.kind == "local"
        || a.address.as_deref() == Some("all")
        || match (network(a), network(b)) {
            (Some(na), Some((ib, pb))) => na.1 <= pb && in_network(ib, na),
            _ => a.address.is_some() && a.address == b.address && a.netmask == b.netmask,
        };
    kind && names(&a.database, &b.database, true) && names(&a.user_name, &b.user_name, false) && address
}

/// Mark every rule that an earlier rule covers (first match wins). Pure.
pub(super) fn mark_shadowed(rules: &mut [HbaRule]) {
    for i in 0..rules.len() {
        let shadowed = rules[..i]
            .iter()
            .any(|earlier| earlier.error.is_none() && covers(earlier, &rules[i]));
        rules[i].shadowed = shadowed;
    }
}

fn admits_remote(rule: &HbaRule) -> bool {
    rule.kind.starts_with("host") && open_bits(rule).is_some()
}

/// A rule as it would appear in pg_hba.conf, for messages.
fn render_rule(rule: &HbaRule) -> String {
    let address = match (rule.address.as_deref(), rule.netmask.as_deref()) {
        (Some(a), Some(m)) => match m.parse::<IpAddr>() {
            Ok(IpAddr::V4(m4)) => format!(" {a}/{}", u32::from(m4).count_ones()),
            Ok(IpAddr::V6(m6)) => format!(" {a}/{}", u128::from(m6).count_ones()),
            Err(_) => format!(" {a} {m}"),
        },
        (Some(a), None) => format!(" {a}"),
        _ => String::new(),
    };
    format!(
        "{} {} {}{} {}",
        rule.kind,
        rule.database.join(","),
        rule.user_name.join(","),
        address,
        rule.auth_method
    )
}

fn method_rank(m: &str) -> Option<u8> {
    Some(match m {
        "trust" => 0,
        "password" => 1,
        "ident" => 2,
        "md5" => 3,
        "pam" | "ldap" | "radius" | "bsd" => 4,
        "gss" | "sspi" | "peer" => 5,
        "scram-sha-256" => 6,
        "cert" => 7,
        "reject" => 8,
        _ => return None,
    })
}

/// What a failed login means: the server refused us (`denied`), or we cannot tell.

fn range_of(rule: &HbaRule) -> &'static str {
    match (rule.address.as_deref().unwrap_or("all"), open_bits(rule)) {
        (_, None) => "loopback",
        ("all", _) => "internet",
        ("samenet", _) => "private",
        (_, Some(bits)) if bits > 96 => "internet",
        (a, _) => match a.parse::<IpAddr>() {
            Ok(_) => match net::scope_of(a) {
                net::Scope::Loopback => "loopback",
                net::Scope::Private => "private",
                _ => "internet",
            },
            Err(_) => "named hosts",
        },
    }
}

/// Rules grouped by the range they open, widest first: "internet: `…`; private: `…`".
fn by_range(rules: &[&HbaRule]) -> String {
    ["internet", "named hosts", "private", "loopback"]
        .iter()
        .filter_map(|range| {
            let group: Vec<&HbaRule> = rules.iter().copied().filter(|r| range_of(r) == *range).collect();
            (!group.is_empty()).then(|| format!("{range}: {}", quote_rules(&group)))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn quote_rules(rules: &[&HbaRule]) -> String {
    rules
        .iter()
        .map(|r| format!("`{}`", render_rule(r)))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn assess(posture: &Value) -> Result<Assessment, String> {
    let p: Posture = serde_json::from_value(posture.clone()).map_err(|e| format!("not a postgres posture: {e}"))?;
    let mut out = Vec::new();
    if p.hba_reload_verified == Some(false) {
        out.push(Finding::new(
            "postgres.hba.reload_unverified",
            Severity::Medium,
            false,
            "lockwatch cannot compare pg_hba.conf's modification time with the server's last reload, so it cannot confirm \
             that the rules on disk are the ones the server runs (it still notices an edit that is not reloaded, but not \
             across its own restart). As a superuser: GRANT EXECUTE ON FUNCTION pg_stat_file(text) TO <monitoring role>; \
             (it reads only the file's times; the role also needs pg_read_all_settings to find the file).",
        ));
    }
    // (Rules that cannot be read are lockwatch's own finding, <kind>.visibility.lost.)
    if let Some(rules) = &p.hba_rules {
        {
            let shadowed: Vec<&HbaRule> = rules.iter().filter(|r| r.shadowed).collect();
            if !shadowed.is_empty() {
                out.push(Finding::new(
                    "postgres.hba.shadowed",
                    Severity::Low,
                    false,
                    format!(
                        "pg_hba.conf lines that never apply, because an earlier line matches every connection they would (the first \
                         matching line decides): {}. A `reject` among them protects nothing; move it above the line that matches first.",
                        quote_rules(&shadowed)
                    ),
                ));
            }
            let live: Vec<&HbaRule> = rules.iter().filter(|r| !r.shadowed).collect();
            let pick = |f: &dyn Fn(&HbaRule) -> bool| live.iter().copied().filter(|r| f(r)).collect::<Vec<_>>();
            let trust_remote = pick(&|r| r.auth_method == "trust" && admits_remote(r));
            if !trust_remote.is_empty() {
                out.push(Finding::new(
                    "postgres.hba.trust_remote",
                    net::auth_off_severity(p.reach.as_deref()),
                    true,
                    format!(
                        "pg_hba.conf lets network clients log in without a password, by range: {}. Anyone who reaches the \
                         server (listening on {}) can log in as the roles named. Change the method to scram-sha-256 \
                         and run SELECT pg_reload_conf();",
                        by_range(&trust_remote),
                        p.listen_scope
                    ),
                ));
            }
            let trust_local = pick(&|r| r.auth_method == "trust" && !admits_remote(r));
            if !trust_local.is_empty() {
                out.push(Finding::new(
                    "postgres.hba.trust_local",
                    Severity::Medium,
                    false,
                    format!(
                        "pg_hba.conf trusts local connections without a password: {}. Any process on the host can \
                         log in as those roles, superusers included. Use peer for local sockets and scram-sha-256 for TCP.",
                        quote_rules(&trust_local)
                    ),
                ));
            }
            let cleartext =
                pick(&|r| r.auth_method == "password" && admits_remote(r) && !(r.kind == "hostssl" && p.ssl));
            if !cleartext.is_empty() {
                out.push(Finding::new(
                    "postgres.hba.password_remote",
                    Severity::High,
                    false,
                    format!(
                        "pg_hba.conf accepts cleartext passwords over unencrypted network connections, by range: {}. \
                         Use scram-sha-256 (and hostssl).",
                        by_range(&cleartext)
                    ),
                ));
            }
            let ident = pick(&|r| r.auth_method == "ident" && admits_remote(r));
            if !ident.is_empty() {
                out.push(Finding::new(
                    "postgres.hba.ident_remote",
                    Severity::High,
                    false,
                    format!(
                        "pg_hba.conf uses ident over TCP, which believes whatever user name the client machine's \
                         identd reports: {}. Use scram-sha-256.",
                        quote_rules(&ident)
                    ),
                ));
            }
            let broken = pick(&|r| r.error.is_some());
            if !broken.is_empty() {
                out.push(Finding::new(
                    "postgres.hba.error",
                    Severity::Medium,
                    false,
                    format!(
                        "pg_hba.conf has {} line(s) the server cannot parse ({}); the next reload will be refused and \
                         the running rules may differ from the file. Fix the file and check pg_hba_file_rules.error.",
                        broken.len(),
                        broken
                            .iter()
                            .filter_map(|r| r.error.as_deref())
                            .collect::<Vec<_>>()
                            .join("; ")
                    ),
                ));
            }
        }
    }
    if p.unauthenticated_login.as_deref() == Some("accepted") {
        out.push(Finding::new(
            "postgres.auth.unauthenticated_login",
            net::auth_off_severity(p.reach.as_deref()),
            true,
            format!(
                "A login as the superuser postgres with no password succeeded from lockwatch's host (the server is reachable from: {}). \
                 Find the trust rule that matched (SELECT * FROM pg_hba_file_rules WHERE auth_method = 'trust'), \
                 change it to scram-sha-256 or peer, and run SELECT pg_reload_conf();",
                p.reach.as_deref().unwrap_or("unknown")
            ),
        ));
    }
    let remote_listener = p.listen_scope != "loopback";
    if !p.ssl && remote_listener {
        out.push(Finding::new(
            "postgres.ssl.off",
            Severity::High,
            false,
            format!(
                "ssl is off while PostgreSQL listens on {} ({}): passwords and data cross the network in clear. \
                 Set ssl = on with a certificate and use hostssl rules.",
                p.listen_scope,
                p.listen_addresses.join(",")
            ),
        ));
    }
    if p.password_encryption == "md5" {
        out.push(Finding::new(
            "postgres.password_encryption.md5",
            Severity::Low,
            false,
            "password_encryption is md5: new passwords are stored as MD5 hashes. Set it to scram-sha-256 and reset passwords.",
        ));
    }
    if let Some(roles) = p.login_roles_without_password.as_ref().filter(|r| !r.is_empty()) {
        out.push(Finding::new(
            "postgres.role.no_password",
            Severity::Low,
            false,
            format!(
                "Login roles without a password: {}. They can log in wherever pg_hba.conf says trust, peer or ident; \
                 give them a password or NOLOGIN if they should not.",
                roles.join(", ")
            ),
        ));
    }
    out.extend(common::wide_listener(
        "postgres.listen.wide",
        "PostgreSQL",
        Some(&p.listen_scope),
        &p.listen_addresses.join(","),
    ));
    Ok(Assessment::new(out, p.reach.as_deref().and_then(net::Reach::parse)))
}

/// The same line with another method or connection type: weaker, stronger or neither.
fn compare_methods(old: &HbaRule, new: &HbaRule) -> Classification {
    let method = match (method_rank(&old.auth_method), method_rank(&new.auth_method)) {
        (Some(b), Some(a)) if a < b => Classification::weakened(match new.auth_method.as_str() {
            "trust" => Severity::Critical,
            "password" => Severity::High,
            _ => Severity::Medium,
        }),
        (Some(b), Some(a)) if a > b => Classification::STRENGTHENED,
        _ => Classification::NEUTRAL,
    };
    let kind = classify_rank(
        &Value::from(old.kind.as_str()),
        &Value::from(new.kind.as_str()),
        &["host", "hostnossl", "hostnogssenc", "hostgssenc", "hostssl", "local"],
        Classification::weakened(Severity::High),
    );
    match (method.class, kind.class) {
        (ChangeClass::Weakened, ChangeClass::Weakened) => Classification::weakened(method.severity.max(kind.severity)),
        (ChangeClass::Weakened, _) => method,
        (_, ChangeClass::Weakened) => kind,
        (ChangeClass::Strengthened, _) | (_, ChangeClass::Strengthened) => Classification::STRENGTHENED,
        _ => Classification::NEUTRAL,
    }
}

pub(super) fn describe(c: &crate::model::Change) -> Option<String> {
    let rule = |v: &Value| serde_json::from_value::<HbaRule>(v.clone()).ok();
    Some(match common::field(c) {
        "hba_rules" if c.before.is_null() => {
            let r = rule(&c.after)?;
            if r.shadowed {
                format!(
                    "pg_hba.conf line `{}` was added, behind a line that matches first",
                    render_rule(&r)
                )
            } else {
                format!("pg_hba.conf line `{}` now applies", render_rule(&r))
            }
        }
        "hba_rules" if c.after.is_null() => format!(
            "pg_hba.conf line `{}` no longer applies",
            render_rule(&rule(&c.before)?)
        ),
        "unauthenticated_login" if c.after == "accepted" => {
            "a login as postgres without a password now succeeds".into()
        }
        "ssl" if c.after == false => "ssl was turned off".into(),
        "password_encryption" => format!(
            "password_encryption is now {}",
            crate::pipeline::evaluate::show_value(&c.after)
        ),
        "superusers" => match common::member(c)? {
            (true, who) => format!("`{who}` became a superuser"),
            (false, who) => format!("`{who}` is no longer a superuser"),
        },
        "login_roles_without_password" => match common::member(c)? {
            (true, who) => format!("login role `{who}` has no password"),
            (false, who) => format!("login role `{who}` has a password again (or is gone)"),
        },
        _ => return None,
    })
}

pub(super) fn classify(c: &FieldChange<'_>) -> Classification {
    if let Some(cl) = common::classify_reach(c) {
        return cl;
    }
    let parts: Vec<&str> = c.path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["hba_rules", _] => {
            // Lists are diffed as sets: a line whose method was edited is the old line removed
            // and the new one added. The added half is judged against the line it replaces.
            let parse = |v: &Value| serde_json::from_value::<HbaRule>(v.clone()).ok();
            // The same line: same databases, users and addresses (host, hostssl… count as one).
            let same_match = |a: &HbaRule, b: &HbaRule| {
                (a.kind == "local") == (b.kind == "local")
                    && (&a.database, &a.user_name, &a.address, &a.netmask)
                        == (&b.database, &b.user_name, &b.address, &b.netmask)
            };
            let live_in = |doc: &Value, r: &HbaRule| {
                doc.get("hba_rules")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(parse)
                    .find(|x| !x.shadowed && same_match(x, r))
            };
            match (parse(c.before), parse(c.after)) {
                (None, Some(added)) if added.shadowed => Classification::NEUTRAL,
                (None, Some(added)) => match live_in(c.before_doc, &added) {
                    Some(old) => compare_methods(&old, &added),
                    None if added.auth_method == "reject" => Classification::STRENGTHENED,
                    None => Classification::weakened(match added.auth_method.as_str() {
                        "trust" if admits_remote(&added) => Severity::Critical,
                        "trust" | "password" => Severity::High,
                        _ => Severity::Medium,
                    }),
                },
                (Some(removed), None) if removed.shadowed => Classification::NEUTRAL,
                (Some(removed), None) => match live_in(c.after_doc, &removed) {
                    // The other half of an edit: the added line carries the verdict.
                    Some(_) => Classification::NEUTRAL,
                    None if removed.auth_method == "reject" => Classification::weakened(Severity::Medium),
                    None => Classification::STRENGTHENED,
                },
                _ => Classification::NEUTRAL,
            }
        }
        ["unauthenticated_login"] => classify_rank(
            c.before,
            c.after,
            &["accepted", "denied"],
            Classification::weakened(Severity::Critical),
        ),
        ["ssl"] => classify_flag(c.before, c.after, true, Classification::weakened(Severity::High)),
        ["password_encryption"] => classify_rank(
            c.before,
            c.after,
            &["md5", "scram-sha-256"],
            Classification::weakened(Severity::Medium),
        ),
        ["login_roles_without_password", _] | ["superusers", _] => {
            classify_risky_member(c.before, c.after, Classification::weakened(Severity::Medium))
        }
        _ => Classification::NEUTRAL,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(kind: &str, address: Option<&str>, netmask: Option<&str>, method: &str) -> Value {
        json!({"type": kind, "database": ["all"], "user_name": ["all"], "address": address, "netmask": netmask,
               "auth_method": method, "options": null, "error": null})
    }

    fn posture(rules: Vec<Value>) -> Value {
        json!({
            "hba_rules": rules, "listen_addresses": ["127.0.0.1"], "listen_scope": "loopback", "ssl": false,
            "password_encryption": "scram-sha-256", "login_roles_without_password": [], "superusers": ["postgres"],
            "version": "15.19"
        })
    }

    fn rules_of(v: &Value) -> Vec<(String, Severity, bool)> {
        crate::sources::common::findings_of(assess, v)
    }

    #[test]
    fn assess_table() {
        let secure = || {
            vec![
                rule("local", None, None, "peer"),
                rule("host", Some("127.0.0.1"), Some("255.255.255.255"), "scram-sha-256"),
            ]
        };
        let cases: Vec<(&str, Value, Vec<(&str, Severity, bool)>)> = vec![
            ("secure", posture(secure()), vec![]),
            (
                "trust for the world",
                posture(vec![rule("host", Some("0.0.0.0"), Some("0.0.0.0"), "trust")]),
                vec![("postgres.hba.trust_remote", Severity::Critical, true)],
            ),
            (
                "trust for all addresses",
                posture(vec![rule("host", Some("all"), None, "trust")]),
                vec![("postgres.hba.trust_remote", Severity::Critical, true)],
            ),
            (
                "trust for a private range",
                posture(vec![rule("host", Some("10.0.0.0"), Some("255.0.0.0"), "trust")]),
                vec![("postgres.hba.trust_remote", Severity::Critical, true)],
            ),
            (
                "trust on loopback and socket",
                posture(vec![
                    rule("local", None, None, "trust"),
                    rule("host", Some("127.0.0.1"), Some("255.255.255.255"), "trust"),
                    rule(
                        "host",
                        Some("::1"),
                        Some("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
                        "trust",
                    ),
                ]),
                vec![("postgres.hba.trust_local", Severity::Medium, false)],
            ),
            (
                "cleartext passwords remote",
                posture(vec![rule("host", Some("10.0.0.0"), Some("255.0.0.0"), "password")]),
                vec![("postgres.hba.password_remote", Severity::High, false)],
            ),
            (
                "ident remote",
                posture(vec![rule("host", Some("192.168.0.0"), Some("255.255.0.0"), "ident")]),
                vec![("postgres.hba.ident_remote", Severity::High, false)],
            ),
            (
                "ssl off on a wide listener",
                {
                    let mut p = posture(secure());
                    p["listen_scope"] = json!("all_interfaces");
                    p["listen_addresses"] = json!(["*"]);
                    p
                },
                vec![
                    ("postgres.ssl.off", Severity::High, false),
                    ("postgres.listen.wide", Severity::Low, false),
                ],
            ),
            (
                "hba unreadable: lockwatch's own visibility finding, not the kind's",
                {
                    let mut p = posture(vec![]);
                    p["hba_rules"] = Value::Null;
                    p
                },
                vec![],
            ),
            (
                "md5 and passwordless roles",
                {
                    let mut p = posture(secure());
                    p["password_encryption"] = json!("md5");
                    p["login_roles_without_password"] = json!(["app"]);
                    p
                },
                vec![
                    ("postgres.password_encryption.md5", Severity::Low, false),
                    ("postgres.role.no_password", Severity::Low, false),
                ],
            ),
            (
                "broken line",
                posture(vec![
                    json!({"type":"host","database":["all"],"user_name":["all"],"address":null,"netmask":null,"auth_method":"","options":null,"error":"invalid authentication method \"trsut\""}),
                ]),
                vec![("postgres.hba.error", Severity::Medium, false)],
            ),
        ];
        for (name, p, want) in cases {
            let want: Vec<(String, Severity, bool)> = want.into_iter().map(|(r, s, e)| (r.to_string(), s, e)).collect();
            assert_eq!(rules_of(&p), want, "case: {name}");
        }
    }

    #[test]
    fn rules_are_broken_down_by_range() {
        let r =
            |a: Option<&str>, m: Option<&str>| serde_json::from_value::<HbaRule>(rule("host", a, m, "trust")).unwrap();
        let cases = [
            (r(Some("0.0.0.0"), Some("0.0.0.0")), "internet"),
            (r(Some("all"), None), "internet"),
            (r(Some("203.0.113.0"), Some("255.255.255.0")), "internet"),
            (r(Some("10.0.0.0"), Some("255.0.0.0")), "private"),
            (r(Some("samenet"), None), "private"),
            (r(Some("127.0.0.1"), Some("255.255.255.255")), "loopback"),
            (r(Some(".example.com"), None), "named hosts"),
        ];
        for (rule, want) in &cases {
            assert_eq!(range_of(rule), *want, "{}", render_rule(rule));
        }
        let all: Vec<&HbaRule> = cases.iter().map(|(r, _)| r).collect();
        let text = by_range(&all);
        assert!(text.starts_with("internet: `host all all 0.0.0.0/0 trust`"), "{text}");
        assert!(text.contains("; private: ") && text.contains("; loopback: "), "{text}");
    }

    #[test]
    fn unauthenticated_login_is_graded_by_reach() {
        for (reach, want) in [
            ("loopback", Severity::High),
            ("private", Severity::Critical),
            ("internet", Severity::Critical),
        ] {
            let mut p = posture(vec![]);
            p["unauthenticated_login"] = json!("accepted");
            p["reach"] = json!(reach);
            let f: Vec<(String, Severity, bool)> = assess(&p)
                .unwrap()
                .findings
                .into_iter()
                .map(|f| (f.rule, f.severity, f.exposed))
                .collect();
            assert_eq!(
                f,
                vec![("postgres.auth.unauthenticated_login".to_string(), want, true)],
                "{reach}"
            );
        }
        let d = posture(vec![]);
        let c = classify(&FieldChange {
            path: "/unauthenticated_login",
            before: &json!("denied"),
            after: &json!("accepted"),
            before_doc: &d,
            after_doc: &d,
        });
        assert_eq!((c.class, c.severity), (ChangeClass::Weakened, Severity::Critical));
        let c = classify(&FieldChange {
            path: "/unauthenticated_login",
            before: &json!("denied"),
            after: &json!("inconclusive"),
            before_doc: &d,
            after_doc: &d,
        });
        assert_eq!(c.class, ChangeClass::Neutral);
    }

    #[test]
    fn trust_message_quotes_the_rule() {
        let f = assess(&posture(vec![rule("host", Some("0.0.0.0"), Some("0.0.0.0"), "trust")]))
            .unwrap()
            .findings;
        assert!(
            f[0].message.contains("`host all all 0.0.0.0/0 trust`"),
            "{}",
            f[0].message
        );
    }

    #[test]
    fn classify_table() {
        let r_scram = rule("host", Some("127.0.0.1"), Some("255.255.255.255"), "scram-sha-256");
        let narrow = posture(vec![r_scram.clone()]);
        let with_method = |kind: &str, m: &str| rule(kind, Some("127.0.0.1"), Some("255.255.255.255"), m);
        let doc_of = |rules: Vec<Value>| posture(rules);
        let trust_narrow = doc_of(vec![with_method("host", "trust")]);
        let md5_narrow = doc_of(vec![with_method("host", "md5")]);
        let password_narrow = doc_of(vec![with_method("host", "password")]);
        let hostssl_narrow = doc_of(vec![with_method("hostssl", "scram-sha-256")]);
        let world_scram = rule("host", Some("0.0.0.0"), Some("0.0.0.0"), "scram-sha-256");
        let wide = doc_of(vec![world_scram.clone()]);
        let world_trust = rule("host", Some("0.0.0.0"), Some("0.0.0.0"), "trust");
        let with_world_trust = doc_of(vec![r_scram.clone(), world_trust.clone()]);
        let ten_scram = rule("host", Some("10.0.0.0"), Some("255.0.0.0"), "scram-sha-256");
        let with_ten = doc_of(vec![ten_scram.clone(), r_scram.clone()]);
        let world_reject = rule("host", Some("0.0.0.0"), Some("0.0.0.0"), "reject");
        let with_reject = doc_of(vec![world_reject.clone(), r_scram.clone()]);
        let empty = doc_of(vec![]);
        // Rules are diffed as a set: an edited line is the old line removed and the new one
        // added; the added half carries the verdict, judged against the line it replaces.
        let cases: Vec<(&str, Value, Value, &Value, &Value, ChangeClass, Severity)> = vec![
            (
                "/hba_rules/0",
                Value::Null,
                with_method("host", "trust"),
                &narrow,
                &trust_narrow,
                ChangeClass::Weakened,
                Severity::Critical,
            ),
            (
                "/hba_rules/0",
                r_scram.clone(),
                Value::Null,
                &narrow,
                &trust_narrow,
                ChangeClass::Neutral,
                Severity::Low,
            ),
            (
                "/hba_rules/0",
                Value::Null,
                with_method("host", "md5"),
                &narrow,
                &md5_narrow,
                ChangeClass::Weakened,
                Severity::Medium,
            ),
            (
                "/hba_rules/0",
                Value::Null,
                with_method("host", "password"),
                &md5_narrow,
                &password_narrow,
                ChangeClass::Weakened,
                Severity::High,
            ),
            (
                "/hba_rules/0",
                Value::Null,
                r_scram.clone(),
                &trust_narrow,
                &narrow,
                ChangeClass::Strengthened,
                Severity::Low,
            ),
            (
                "/hba_rules/0",
                Value::Null,
                r_scram.clone(),
                &hostssl_narrow,
                &narrow,
                ChangeClass::Weakened,
                Severity::High,
            ),
            (
                "/hba_rules/0",
                Value::Null,
                world_scram.clone(),
                &narrow,
                &wide,
                ChangeClass::Weakened,
                Severity::Medium,
            ),
            (
                "/hba_rules/0",
                r_scram.clone(),
                Value::Null,
                &narrow,
                &wide,
                ChangeClass::Strengthened,
                Severity::Low,
            ),
            (
                "/hba_rules/1",
                Value::Null,
                world_trust.clone(),
                &narrow,
                &with_world_trust,
                ChangeClass::Weakened,
                Severity::Critical,
            ),
            (
                "/hba_rules/0",
                Value::Null,
                ten_scram.clone(),
                &narrow,
                &with_ten,
                ChangeClass::Weakened,
                Severity::Medium,
            ),
            (
                "/hba_rules/0",
                world_reject.clone(),
                Value::Null,
                &with_reject,
                &narrow,
                ChangeClass::Weakened,
                Severity::Medium,
            ),
            (
                "/hba_rules/0",
                Value::Null,
                world_reject.clone(),
                &narrow,
                &with_reject,
                ChangeClass::Strengthened,
                Severity::Low,
            ),
            (
                "/hba_rules/0",
                r_scram.clone(),
                Value::Null,
                &narrow,
                &empty,
                ChangeClass::Strengthened,
                Severity::Low,
            ),
            (
                "/ssl",
                json!(true),
                json!(false),
                &narrow,
                &narrow,
                ChangeClass::Weakened,
                Severity::High,
            ),
            (
                "/listen_scope",
                json!("loopback"),
                json!("all_interfaces"),
                &narrow,
                &narrow,
                ChangeClass::Weakened,
                Severity::Medium,
            ),
            (
                "/password_encryption",
                json!("scram-sha-256"),
                json!("md5"),
                &narrow,
                &narrow,
                ChangeClass::Weakened,
                Severity::Medium,
            ),
            (
                "/superusers/1",
                Value::Null,
                json!("mallory"),
                &narrow,
                &narrow,
                ChangeClass::Weakened,
                Severity::Medium,
            ),
            (
                "/login_roles_without_password/0",
                json!("app"),
                Value::Null,
                &narrow,
                &narrow,
                ChangeClass::Strengthened,
                Severity::Low,
            ),
            (
                "/version",
                json!("15.18"),
                json!("15.19"),
                &narrow,
                &narrow,
                ChangeClass::Neutral,
                Severity::Low,
            ),
        ];
        for (path, before, after, bd, ad, class, sev) in cases {
            let got = classify(&FieldChange {
                path,
                before: &before,
                after: &after,
                before_doc: bd,
                after_doc: ad,
            });
            assert_eq!((got.class, got.severity), (class, sev), "{path}: {before} -> {after}");
        }
    }

    fn hba(kind: &str, db: &str, user: &str, addr: Option<&str>, mask: Option<&str>, method: &str) -> HbaRule {
        HbaRule {
            kind: kind.into(),
            database: db.split(',').map(String::from).collect(),
            user_name: user.split(',').map(String::from).collect(),
            address: addr.map(String::from),
            netmask: mask.map(String::from),
            auth_method: method.into(),
            options: None,
            error: None,
            shadowed: false,
        }
    }

    #[test]
    fn first_match_wins_table() {
        let any4 = (Some("0.0.0.0"), Some("0.0.0.0"));
        let ten = (Some("10.0.0.0"), Some("255.0.0.0"));
        let ten_one = (Some("10.1.0.0"), Some("255.255.0.0"));
        let cases: Vec<(&str, Vec<HbaRule>, Vec<bool>)> = vec![
            (
                "a reject for everyone first: the trust below never applies",
                vec![
                    hba("host", "all", "all", any4.0, any4.1, "reject"),
                    hba("host", "all", "all", any4.0, any4.1, "trust"),
                ],
                vec![false, true],
            ),
            (
                "a trust first: the reject below protects nothing",
                vec![
                    hba("host", "all", "all", any4.0, any4.1, "trust"),
                    hba("host", "all", "all", ten.0, ten.1, "reject"),
                ],
                vec![false, true],
            ),
            (
                "a narrower range first does not cover a wider one",
                vec![
                    hba("host", "all", "all", ten.0, ten.1, "reject"),
                    hba("host", "all", "all", any4.0, any4.1, "trust"),
                ],
                vec![false, false],
            ),
            (
                "a subnet inside an earlier network is covered",
                vec![
                    hba("host", "all", "all", ten.0, ten.1, "scram-sha-256"),
                    hba("host", "all", "all", ten_one.0, ten_one.1, "trust"),
                ],
                vec![false, true],
            ),
            (
                "host covers hostssl; hostssl does not cover host",
                vec![
                    hba("hostssl", "all", "all", any4.0, any4.1, "scram-sha-256"),
                    hba("host", "all", "all", any4.0, any4.1, "trust"),
                    hba("hostssl", "all", "all", any4.0, any4.1, "trust"),
                ],
                vec![false, false, true],
            ),
            (
                "one database does not cover all; all does not cover replication",
                vec![
                    hba("host", "app", "all", any4.0, any4.1, "reject"),
                    hba("host", "all", "all", any4.0, any4.1, "trust"),
                    hba("host", "replication", "all", any4.0, any4.1, "trust"),
                ],
                vec![false, false, false],
            ),
            (
                "a user list covers its subset",
                vec![
                    hba("host", "all", "alice,bob", any4.0, any4.1, "reject"),
                    hba("host", "all", "bob", any4.0, any4.1, "trust"),
                ],
                vec![false, true],
            ),
            (
                "local lines cover local lines only",
                vec![
                    hba("local", "all", "all", None, None, "peer"),
                    hba("host", "all", "all", any4.0, any4.1, "trust"),
                ],
                vec![false, false],
            ),
        ];
        for (name, mut rules, want) in cases {
            mark_shadowed(&mut rules);
            assert_eq!(
                rules.iter().map(|r| r.shadowed).collect::<Vec<_>>(),
                want,
                "case: {name}"
            );
        }
    }

    #[test]
    fn shadowed_lines_are_not_live_holes() {
        let mut rules = vec![
            hba("host", "all", "all", Some("0.0.0.0"), Some("0.0.0.0"), "reject"),
            hba("host", "all", "all", Some("0.0.0.0"), Some("0.0.0.0"), "trust"),
        ];
        mark_shadowed(&mut rules);
        let doc = posture(rules.iter().map(|r| serde_json::to_value(r).unwrap()).collect());
        let found: Vec<String> = assess(&doc).unwrap().findings.into_iter().map(|f| f.rule).collect();
        assert_eq!(found, vec!["postgres.hba.shadowed".to_string()]);
        // The same two lines the other way round: the trust is live, the reject protects nothing.
        let mut rules = vec![rules[1].clone(), rules[0].clone()];
        mark_shadowed(&mut rules);
        let doc = posture(rules.iter().map(|r| serde_json::to_value(r).unwrap()).collect());
        let found: Vec<String> = assess(&doc).unwrap().findings.into_iter().map(|f| f.rule).collect();
        assert_eq!(
            found,
            vec![
                "postgres.hba.shadowed".to_string(),
                "postgres.hba.trust_remote".to_string()
            ]
        );
        // A trust line appearing only as a shadowed line is no weakening.
        let c = classify(&FieldChange {
            path: "/hba_rules/1",
            before: &Value::Null,
            after: &serde_json::to_value(&rules[1]).unwrap(),
            before_doc: &doc,
            after_doc: &doc,
        });
        assert_eq!(c.class, ChangeClass::Neutral);
        // Without EXECUTE on pg_stat_file lockwatch says it cannot verify reloads.
        let mut doc = posture(vec![]);
        doc["hba_reload_verified"] = json!(false);
        let found: Vec<(String, Severity)> = assess(&doc)
            .unwrap()
            .findings
            .into_iter()
            .map(|f| (f.rule, f.severity))
            .collect();
        assert_eq!(
            found,
            vec![("postgres.hba.reload_unverified".to_string(), Severity::Medium)]
        );
    }

    #[test]
    fn open_bits_table() {
        let r =
            |a: Option<&str>, m: Option<&str>| serde_json::from_value::<HbaRule>(rule("host", a, m, "trust")).unwrap();
        assert_eq!(open_bits(&r(Some("127.0.0.1"), Some("255.255.255.255"))), None);
        assert_eq!(
            open_bits(&r(Some("::1"), Some("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"))),
            None
        );
        assert_eq!(open_bits(&r(Some("samehost"), None)), None);
        assert_eq!(open_bits(&r(Some("0.0.0.0"), Some("0.0.0.0"))), Some(128));
        assert_eq!(open_bits(&r(Some("all"), None)), Some(128));
        assert_eq!(open_bits(&r(Some("10.0.0.0"), Some("255.0.0.0"))), Some(96));
        assert_eq!(open_bits(&r(Some("10.1.2.3"), Some("255.255.255.255"))), Some(0));
        assert!(open_bits(&serde_json::from_value::<HbaRule>(rule("local", None, None, "trust")).unwrap()).is_none());
    }
}
