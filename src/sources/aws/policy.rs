//! Resource-policy evaluation for OpenSearch/Elasticsearch domains (and any resource policy of the
//! same grammar). Pure; no I/O.
//!
//! Question answered: who can call this resource? `Public` (anyone on the internet),
//! `CrossAccount` (principals outside the owning account, but not everyone) or `Restricted`.
//!
//! Principles:
//! - An Allow to `*`, `{"AWS": "*"}`, an ARN whose account is a wildcard, or via `NotPrincipal` is
//!   public unless a condition restricts it.
//! - Only non-negated, non-`IfExists` String/Arn/IpAddress operators on the keys in
//!   [`RESTRICTING_KEYS`] restrict. A value with a wildcard (in the account part, for ARNs), or an
//!   IPv4 CIDR broader than /8 (IPv6 broader than /32), restricts nothing; one such value in a
//!   list voids the whole condition.
//! - Conditions in one statement are ANDed: the narrowest restricting one wins.
//! - An explicit Deny for everyone, with a negated operator on a restricting key and no
//!   `IfExists`, fences every Allow to what that key admits.
//! - The trust lists (accounts, organizations) widen what counts as "ours".

use serde::Serialize;
use serde_json::Value;
use std::net::IpAddr;

/// How far a grant reaches. Ordered from narrowest to widest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reach {
    Restricted,
    CrossAccount,
    Public,
}

impl Reach {
    pub fn as_str(self) -> &'static str {
        match self {
            Reach::Restricted => "restricted",
            Reach::CrossAccount => "cross-account",
            Reach::Public => "public",
        }
    }
}

/// What the operator declared as theirs, beyond the owning account.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    pub accounts: Vec<String>,
    pub org_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub reach: Reach,
    pub reason: String,
    /// The Allow statement that opened the resource this far (absent when restricted).
    pub statement: Option<Value>,
}

pub const RESTRICTING_KEYS: [&str; 8] = [
    "aws:sourceip",
    "aws:sourcevpc",
    "aws:sourcevpce",
    "aws:principalorgid",
    "aws:principalaccount",
    "aws:sourceaccount",
    "aws:principalarn",
    "aws:sourcearn",
];

const POSITIVE_OPERATORS: [&str; 6] = [
    "stringequals",
    "stringequalsignorecase",
    "stringlike",
    "arnequals",
    "arnlike",
    "ipaddress",
];
const NEGATED_OPERATORS: [&str; 6] = [
    "stringnotequals",
    "stringnotequalsignorecase",
    "stringnotlike",
    "arnnotequals",
    "arnnotlike",
    "notipaddress",
];

/// A string or a list of strings, as IAM writes them. Non-strings → `None`.
fn strings(v: &Value) -> Option<Vec<&str>> {
    match v {
        Value::String(s) => Some(vec![s.as_str()]),
        Value::Array(items) => items.iter().map(Value::as_str).collect(),
        _ => None,
    }
}

fn has_wildcard(s: &str) -> bool {
    s.contains('*') || s.contains('?')
}

/// The account an ARN or bare account id names; `""` for ARNs without an account.
fn account_of(principal: &str) -> &str {
    if principal.starts_with("arn:") {
        principal.split(':').nth(4).unwrap_or("")
    } else {
        principal
    }
}

fn account_reach(account: &str, owner: &str, trust: &Trust) -> Reach {
    if account.is_empty() || account == owner || trust.accounts.iter().any(|a| a == account) {
        Reach::Restricted
    } else {
        Reach::CrossAccount
    }
}

/// A CIDR (or bare address), and whether it is narrow enough to be a restriction.
fn cidr_restricts(value: &str) -> Result<(), String> {
    let (addr, prefix) = match value.split_once('/') {
        Some((a, p)) => (a, p.parse::<u8>().map_err(|_| format!("{value:?} is not a CIDR"))?),
        None => (value, if value.contains(':') { 128 } else { 32 }),
    };
    let ip: IpAddr = addr.parse().map_err(|_| format!("{value:?} is not an IP address"))?;
    let (min, family) = if ip.is_ipv4() { (8, "IPv4") } else { (32, "IPv6") };
    if prefix < min {
        return Err(format!(
            "{value} is broader than /{min} ({family}): that is not a meaningful restriction"
        ));
    }
    Ok(())
}

/// How far one restricting value admits callers, or why it restricts nothing.
fn value_reach(key: &str, value: &str, owner: &str, trust: &Trust) -> Result<Reach, String> {
    match key {
        "aws:sourceip" => cidr_restricts(value).map(|_| Reach::Restricted),
        "aws:principalarn" | "aws:sourcearn" => {
            let account = account_of(value);
            if has_wildcard(account) {
                Err(format!("{value} has a wildcard account: it admits every account"))
            } else {
                Ok(account_reach(account, owner, trust))
            }
        }
        _ if has_wildcard(value) => Err(format!("{value:?} is a wildcard: it restricts nothing")),
        "aws:principalaccount" | "aws:sourceaccount" => Ok(account_reach(value, owner, trust)),
        "aws:principalorgid" if !trust.org_ids.is_empty() && !trust.org_ids.iter().any(|o| o == value) => {
            Ok(Reach::CrossAccount)
        }
        _ => Ok(Reach::Restricted),
    }
}

/// One condition entry (`{"IpAddress": {"aws:SourceIp": [...]}}` → op, key, values) as a
/// restriction: `Ok(reach, description)` when it restricts, `Err(why not)` otherwise.
/// `negated` asks for the reading a Deny gives it (a negated operator fences to its values).
fn entry_restriction(
    op: &str,
    key: &str,
    values: &Value,
    owner: &str,
    trust: &Trust,
    negated: bool,
) -> Result<(Reach, String), String> {
    let op_l = op.to_ascii_lowercase();
    if op_l.starts_with("forallvalues:") {
        return Err(format!("{op} passes requests that lack {key}"));
    }
    let base = op_l.strip_prefix("foranyvalue:").unwrap_or(&op_l);
    if base.ends_with("ifexists") {
        return Err(format!("{op} passes requests that lack {key}: not a restriction"));
    }
    let wanted: &[&str] = if negated {
        &NEGATED_OPERATORS
    } else {
        &POSITIVE_OPERATORS
    };
    if !wanted.contains(&base) {
        return Err(if !negated && NEGATED_OPERATORS.contains(&base) {
            format!("{op} admits everything outside its list: never a restriction")
        } else {
            format!("{op} on {key} says nothing about who calls")
        });
    }
    let key_l = key.to_ascii_lowercase();
    if !RESTRICTING_KEYS.contains(&key_l.as_str()) {
        return Err(format!("{key} says nothing about who calls"));
    }
    let list = strings(values).ok_or_else(|| format!("{key} has a value that is not a string"))?;
    if list.is_empty() {
        return Err(format!("{key} has an empty value list"));
    }
    let mut reach = Reach::Restricted;
    for v in &list {
        reach = reach.max(value_reach(&key_l, v, owner, trust)?);
    }
    Ok((reach, format!("{op} {key} {}", list.join(", "))))
}

/// The narrowest restriction among a statement's conditions (they are ANDed), if any.
fn condition_restriction(stmt: &Value, owner: &str, trust: &Trust) -> (Option<(Reach, String)>, Vec<String>) {
    let mut best: Option<(Reach, String)> = None;
    let mut ignored = Vec::new();
    if let Some(cond) = stmt.get("Condition").and_then(Value::as_object) {
        for (op, entries) in cond {
            let Some(entries) = entries.as_object() else { continue };
            for (key, values) in entries {
                match entry_restriction(op, key, values, owner, trust, false) {
                    Ok(r) => {
                        if best.as_ref().is_none_or(|b| r.0 < b.0) {
                            best = Some(r);
                        }
                    }
                    Err(why) => ignored.push(why),
                }
            }
        }
    }
    (best, ignored)
}

/// Who a statement's principal admits.
fn principal_reach(stmt: &Value, owner: &str, trust: &Trust) -> (Reach, String) {
    if let Some(np) = stmt.get("NotPrincipal") {
        return (
            Reach::Public,
            format!("Allow with NotPrincipal {np} admits everyone except the principals named"),
        );
    }
    let Some(p) = stmt.get("Principal") else {
        return (Reach::Public, "Allow with no Principal".into());
    };
    if p.as_str() == Some("*") {
        return (Reach::Public, "Allow to Principal \"*\"".into());
    }
    let Some(map) = p.as_object() else {
        return (
            Reach::Public,
            format!("unreadable Principal {p}: assumed to admit everyone"),
        );
    };
    let mut widest = (Reach::Restricted, String::from("principals of the owning account"));
    for (kind, v) in map {
        let Some(list) = strings(v) else {
            return (
                Reach::Public,
                format!("unreadable {kind} principal {v}: assumed to admit everyone"),
            );
        };
        for who in list {
            let r = match kind.as_str() {
                "AWS" if who == "*" => (
                    Reach::Public,
                    "Allow to {\"AWS\": \"*\"}: every AWS principal and anonymous callers".to_string(),
                ),
                "AWS" => {
                    let account = account_of(who);
                    if has_wildcard(account) {
                        (
                            Reach::Public,
                            format!("Allow to {who}: a wildcard account admits every account"),
                        )
                    } else {
                        match account_reach(account, owner, trust) {
                            Reach::Restricted => (Reach::Restricted, format!("Allow to {who} (an account of ours)")),
                            r => (r, format!("Allow to {who}, outside account {owner}")),
                        }
                    }
                }
                "Service" => (Reach::Restricted, format!("Allow to the AWS service {who}")),
                "Federated" => (Reach::Restricted, format!("Allow to federated identities of {who}")),
                _ => (Reach::CrossAccount, format!("Allow to {kind} principal {who}")),
            };
            if r.0 > widest.0 {
                widest = r;
            }
        }
    }
    widest
}

fn covers_everything(stmt: &Value) -> bool {
    if stmt.get("NotAction").is_some() {
        return false;
    }
    strings(stmt.get("Action").unwrap_or(&Value::Null))
        .is_some_and(|a| a.iter().any(|x| *x == "*" || x.eq_ignore_ascii_case("es:*")))
}

fn principal_is_everyone(stmt: &Value) -> bool {
    match stmt.get("Principal") {
        Some(Value::String(s)) => s == "*",
        Some(Value::Object(m)) => m.get("AWS").and_then(strings).is_some_and(|l| l.contains(&"*")),
        _ => false,
    }
}

/// A Deny that leaves only some callers able to reach the resource: its reach and description.
fn fence(stmt: &Value, owner: &str, trust: &Trust) -> Option<(Reach, String)> {
    if !principal_is_everyone(stmt) || !covers_everything(stmt) {
        return None;
    }
    let Some(cond) = stmt.get("Condition") else {
        return Some((Reach::Restricted, "an unconditional Deny for everyone".into()));
    };
    let cond = cond.as_object()?;
    // The Deny fires only when every entry holds, so callers escape through any one of them:
    // the fence admits the union, i.e. the widest entry. Every entry must be a real fence.
    let mut widest: Option<(Reach, String)> = None;
    for (op, entries) in cond {
        for (key, values) in entries.as_object()? {
            let (r, desc) = entry_restriction(op, key, values, owner, trust, true).ok()?;
            if widest.as_ref().is_none_or(|w| r > w.0) {
                widest = Some((r, desc));
            }
        }
    }
    widest.map(|(r, d)| (r, format!("a Deny for every caller outside {d}")))
}

fn statements(policy: &Value) -> Result<Vec<&Value>, String> {
    match policy.get("Statement") {
        None | Some(Value::Null) => Ok(vec![]),
        Some(Value::Array(list)) => Ok(list.iter().collect()),
        Some(obj @ Value::Object(_)) => Ok(vec![obj]),
        Some(other) => Err(format!("Statement is neither an object nor a list: {other}")),
    }
}

/// Evaluate a parsed policy document for a resource owned by `owner`.
pub fn evaluate(policy: &Value, owner: &str, trust: &Trust) -> Result<Verdict, String> {
    if !policy.is_object() {
        return Err("the policy is not a JSON object".into());
    }
    let stmts = statements(policy)?;
    let fences: Vec<(Reach, String)> = stmts
        .iter()
        .filter(|s| s.get("Effect").and_then(Value::as_str) == Some("Deny"))
        .filter_map(|s| fence(s, owner, trust))
        .collect();
    let tightest_fence = fences.iter().min_by_key(|f| f.0);
    let mut widest: Option<Verdict> = None;
    for (i, stmt) in stmts.iter().enumerate() {
        if stmt.get("Effect").and_then(Value::as_str) != Some("Allow") {
            continue;
        }
        let (mut reach, mut reason) = principal_reach(stmt, owner, trust);
        let (cond, ignored) = condition_restriction(stmt, owner, trust);
        if let Some((r, desc)) = cond
            && r < reach
        {
            reach = r;
            reason = format!("{reason}, limited by condition {desc}");
        } else if reach > Reach::Restricted && !ignored.is_empty() {
            reason = format!("{reason}; its conditions do not restrict it ({})", ignored.join("; "));
        }
        if let Some((r, desc)) = tightest_fence
            && *r < reach
        {
            reach = *r;
            reason = format!("{reason}, fenced by {desc}");
        }
        let sid = stmt
            .get("Sid")
            .and_then(Value::as_str)
            .map(|s| format!(" ({s})"))
            .unwrap_or_default();
        let reason = format!("statement {}{sid}: {reason}", i + 1);
        if widest.as_ref().is_none_or(|w| reach > w.reach) {
            widest = Some(Verdict {
                reach,
                reason,
                statement: (reach > Reach::Restricted).then(|| (*stmt).clone()),
            });
        }
    }
    Ok(widest.unwrap_or(Verdict {
        reach: Reach::Restricted,
        reason: "no Allow statement: access needs identity policies in the owning account".into(),
        statement: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FIXTURES: &str = include_str!("../../../tests/fixtures/opensearch-policies.json");

    /// Every case of the shared fixture file: the verdict a correct evaluator gives.
    #[test]
    fn shared_fixture_cases() {
        let doc: Value = serde_json::from_str(FIXTURES).unwrap();
        let owner = doc["account_id"].as_str().unwrap();
        let cases = doc["cases"].as_array().unwrap();
        assert!(cases.len() >= 22);
        let mut failures = Vec::new();
        for c in cases {
            let v = evaluate(&c["policy"], owner, &Trust::default()).unwrap();
            let got = if c["vpc"] == true && v.reach == Reach::Public {
                Reach::Restricted
            } else {
                v.reach
            };
            if got.as_str() != c["verdict"].as_str().unwrap() {
                failures.push(format!(
                    "{}: got {} ({}), want {} ({})",
                    c["name"],
                    got.as_str(),
                    v.reason,
                    c["verdict"],
                    c["reason"]
                ));
            }
            if got != Reach::Restricted {
                assert!(
                    v.statement.is_some(),
                    "{}: an opening verdict quotes its statement",
                    c["name"]
                );
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    fn allow(principal: Value, condition: Option<Value>) -> Value {
        let mut s = json!({"Effect": "Allow", "Principal": principal, "Action": "es:*", "Resource": "arn:aws:es:us-east-1:111122223333:domain/d/*"});
        if let Some(c) = condition {
            s["Condition"] = c;
        }
        s
    }

    fn verdict(stmts: Vec<Value>, trust: &Trust) -> Reach {
        evaluate(
            &json!({"Version": "2012-10-17", "Statement": stmts}),
            "111122223333",
            trust,
        )
        .unwrap()
        .reach
    }

    #[test]
    fn our_own_cases() {
        let none = Trust::default();
        let trusted = Trust {
            accounts: vec!["999988887777".into()],
            org_ids: vec!["o-ours".into()],
        };
        let cases: Vec<(&str, Vec<Value>, &Trust, Reach)> = vec![
            ("statement as a single object", vec![], &none, Reach::Restricted),
            (
                "bare account id, foreign",
                vec![allow(json!({"AWS": "999988887777"}), None)],
                &none,
                Reach::CrossAccount,
            ),
            (
                "trusted account is ours",
                vec![allow(json!({"AWS": "arn:aws:iam::999988887777:root"}), None)],
                &trusted,
                Reach::Restricted,
            ),
            (
                "list with one star",
                vec![allow(json!({"AWS": ["arn:aws:iam::111122223333:root", "*"]}), None)],
                &none,
                Reach::Public,
            ),
            (
                "service principal",
                vec![allow(json!({"Service": "es.amazonaws.com"}), None)],
                &none,
                Reach::Restricted,
            ),
            (
                "source ip /8 is a restriction",
                vec![allow(
                    json!("*"),
                    Some(json!({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})),
                )],
                &none,
                Reach::Restricted,
            ),
            (
                "source ip /7 is not",
                vec![allow(
                    json!("*"),
                    Some(json!({"IpAddress": {"aws:SourceIp": "10.0.0.0/7"}})),
                )],
                &none,
                Reach::Public,
            ),
            (
                "one broad value voids the list",
                vec![allow(
                    json!("*"),
                    Some(json!({"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "0.0.0.0/0"]}})),
                )],
                &none,
                Reach::Public,
            ),
            (
                "ipv6 ::/0",
                vec![allow(json!("*"), Some(json!({"IpAddress": {"aws:SourceIp": "::/0"}})))],
                &none,
                Reach::Public,
            ),
            (
                "ipv6 /48",
                vec![allow(
                    json!("*"),
                    Some(json!({"IpAddress": {"aws:SourceIp": "2001:db8:1::/48"}})),
                )],
                &none,
                Reach::Restricted,
            ),
            (
                "garbage ip",
                vec![allow(
                    json!("*"),
                    Some(json!({"IpAddress": {"aws:SourceIp": "everywhere"}})),
                )],
                &none,
                Reach::Public,
            ),
            (
                "foreign source account",
                vec![allow(
                    json!("*"),
                    Some(json!({"StringEquals": {"aws:SourceAccount": "999988887777"}})),
                )],
                &none,
                Reach::CrossAccount,
            ),
            (
                "case-insensitive key",
                vec![allow(
                    json!("*"),
                    Some(json!({"StringEquals": {"AWS:SOURCEVPC": "vpc-1"}})),
                )],
                &none,
                Reach::Restricted,
            ),
            (
                "ForAllValues passes missing keys",
                vec![allow(
                    json!("*"),
                    Some(json!({"ForAllValues:StringEquals": {"aws:PrincipalOrgID": "o-1"}})),
                )],
                &none,
                Reach::Public,
            ),
            (
                "ForAnyValue is a restriction",
                vec![allow(
                    json!("*"),
                    Some(json!({"ForAnyValue:StringEquals": {"aws:PrincipalOrgID": "o-1"}})),
                )],
                &none,
                Reach::Restricted,
            ),
            (
                "unknown org when orgs are declared",
                vec![allow(
                    json!("*"),
                    Some(json!({"StringEquals": {"aws:PrincipalOrgID": "o-theirs"}})),
                )],
                &trusted,
                Reach::CrossAccount,
            ),
            (
                "vpce wildcard",
                vec![allow(
                    json!("*"),
                    Some(json!({"StringLike": {"aws:SourceVpce": "vpce-*"}})),
                )],
                &none,
                Reach::Public,
            ),
            (
                "ANDed conditions: narrowest wins",
                vec![allow(
                    json!("*"),
                    Some(
                        json!({"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}, "StringEquals": {"aws:SourceVpc": "vpc-1"}}),
                    ),
                )],
                &none,
                Reach::Restricted,
            ),
            (
                "Deny with IfExists is no fence",
                vec![
                    allow(json!("*"), None),
                    json!({"Effect": "Deny", "Principal": "*", "Action": "es:*", "Condition": {"StringNotEqualsIfExists": {"aws:SourceVpc": "vpc-1"}}}),
                ],
                &none,
                Reach::Public,
            ),
            (
                "Deny of only some actions is no fence",
                vec![
                    allow(json!("*"), None),
                    json!({"Effect": "Deny", "Principal": "*", "Action": "es:ESHttpDelete", "Condition": {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}),
                ],
                &none,
                Reach::Public,
            ),
            (
                "Deny fencing to a broad range is no fence",
                vec![
                    allow(json!("*"), None),
                    json!({"Effect": "Deny", "Principal": "*", "Action": "*", "Condition": {"NotIpAddress": {"aws:SourceIp": "0.0.0.0/1"}}}),
                ],
                &none,
                Reach::Public,
            ),
            (
                "unconditional Deny for everyone",
                vec![
                    allow(json!("*"), None),
                    json!({"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "es:*"}),
                ],
                &none,
                Reach::Restricted,
            ),
            (
                "Deny outside our account fences a foreign grant",
                vec![
                    allow(json!({"AWS": "arn:aws:iam::999988887777:root"}), None),
                    json!({"Effect": "Deny", "Principal": "*", "Action": "es:*", "Condition": {"StringNotEquals": {"aws:PrincipalAccount": "111122223333"}}}),
                ],
                &none,
                Reach::Restricted,
            ),
            (
                "widest statement wins",
                vec![
                    allow(json!({"AWS": "arn:aws:iam::111122223333:root"}), None),
                    allow(json!("*"), None),
                ],
                &none,
                Reach::Public,
            ),
        ];
        for (name, stmts, trust, want) in cases {
            assert_eq!(verdict(stmts, trust), want, "case: {name}");
        }
    }

    #[test]
    fn malformed_policies_are_errors_or_conservative_never_panics() {
        let owner = "111122223333";
        assert!(evaluate(&json!("not an object"), owner, &Trust::default()).is_err());
        assert!(evaluate(&json!({"Statement": 7}), owner, &Trust::default()).is_err());
        let odd = [
            json!({"Statement": {"Effect": "Allow", "Principal": 5, "Action": "es:*"}}),
            json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": 5}}]}),
            json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Condition": {"IpAddress": {"aws:SourceIp": 5}}}]}),
            json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Condition": "x"}]}),
            json!({"Statement": [null, 1, "x", {"Effect": "Deny", "Principal": "*", "Action": "*", "Condition": {"NotIpAddress": 3}}]}),
        ];
        for p in odd {
            let v = evaluate(&p, owner, &Trust::default()).unwrap();
            assert!(v.reach >= Reach::Restricted, "{p}");
        }
        // An unreadable principal is assumed open: never a false "restricted".
        assert_eq!(
            evaluate(
                &json!({"Statement": {"Effect": "Allow", "Principal": 5}}),
                owner,
                &Trust::default()
            )
            .unwrap()
            .reach,
            Reach::Public
        );
    }

    #[test]
    fn huge_policies_are_evaluated() {
        let mut stmts: Vec<Value> = (0..10_000)
            .map(|i| {
                allow(
                    json!({"AWS": format!("arn:aws:iam::111122223333:role/r{i}")}),
                    Some(json!({"IpAddress": {"aws:SourceIp": format!("10.{}.0.0/16", i % 256)}})),
                )
            })
            .collect();
        assert_eq!(verdict(stmts.clone(), &Trust::default()), Reach::Restricted);
        stmts.push(allow(json!("*"), None));
        assert_eq!(verdict(stmts, &Trust::default()), Reach::Public);
    }

    #[test]
    fn verdict_quotes_the_statement_and_reason() {
        let p = json!({"Statement": [allow(json!({"AWS": "arn:aws:iam::111122223333:root"}), None), {"Sid": "open", "Effect": "Allow", "Principal": "*", "Action": "es:ESHttpGet"}]});
        let v = evaluate(&p, "111122223333", &Trust::default()).unwrap();
        assert_eq!(v.reach, Reach::Public);
        assert!(
            v.reason.starts_with("statement 2 (open): Allow to Principal \"*\""),
            "{}",
            v.reason
        );
        assert_eq!(v.statement.unwrap()["Sid"], "open");
    }
}
