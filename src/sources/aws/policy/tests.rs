//! Table tests for the evaluator's building blocks, and property tests.
use super::*;
use serde_json::json;

fn set(cidrs: &[&str]) -> IpSet {
    IpSet::parse_list(cidrs.iter().copied()).expect("valid CIDRs")
}

#[test]
fn cidr_parsing() {
    let table: &[(&str, Option<(u128, u128)>)] = &[
        ("10.0.0.0/8", Some((1 << 24, 0))),
        ("203.0.113.10", Some((1, 0))),
        ("203.0.113.10/24", Some((256, 0))), // host bits are ignored
        ("0.0.0.0/0", Some((1 << 32, 0))),
        ("::/0", Some((0, u128::MAX))), // saturating: 2^128 does not fit
        ("2001:db8::/48", Some((0, 1 << 80))),
        ("::1", Some((0, 1))),
        (" 52.0.0.0/7 ", Some((1 << 25, 0))),
        ("10.0.0.300/8", None),
        ("1.2.3.4/33", None),
        ("::/129", None),
        ("10.0.0.0/-1", None),
        ("vpc-123", None),
        ("", None),
    ];
    for (text, want) in table {
        assert_eq!(IpSet::parse_cidr(text).map(|s| s.sizes()), *want, "{text}");
    }
}

#[test]
fn ip_set_arithmetic() {
    // Adjacent ranges merge; a union of two /8s is 2^25 addresses.
    assert_eq!(set(&["52.0.0.0/8", "53.0.0.0/8"]), set(&["52.0.0.0/7"]));
    assert_eq!(IpSet::empty().complement(), IpSet::full());
    assert_eq!(IpSet::full().complement(), IpSet::empty());
    let all4 = set(&["0.0.0.0/0"]);
    let left = all4.subtract(&set(&["0.0.0.0/1"]));
    assert_eq!(left, set(&["128.0.0.0/1"]));
    assert_eq!(
        set(&["10.0.0.0/8"]).intersect(&set(&["10.1.0.0/16", "11.0.0.0/8"])),
        set(&["10.1.0.0/16"])
    );
    // A hole in the middle splits a range in two.
    let holed = set(&["10.0.0.0/8"]).subtract(&set(&["10.1.0.0/16"]));
    assert_eq!(holed.sizes().0, (1 << 24) - (1 << 16));
    assert_eq!(holed.complement().complement(), holed);
    // IPv4 and IPv6 never mix.
    assert!(set(&["::/0"]).intersect(&set(&["0.0.0.0/0"])).is_empty());
    // Public IPv4 space: 2^32 minus the private and special ranges.
    let public = all4.subtract(&IpSet::private());
    let private4 = (1u128 << 24) * 3 + (1 << 20) + (1 << 16) * 2 + (1 << 22);
    assert_eq!(public.sizes().0, (1u128 << 32) - private4);
}

#[test]
fn public_threshold() {
    let table: &[(&[&str], bool)] = &[
        (&["52.0.0.0/8"], false),
        (&["52.0.0.0/7"], true),
        (&["3.0.0.0/8", "52.0.0.0/8"], true),
        (&["52.0.0.0/8", "53.0.0.0/32"], true),
        (&["2600::/32"], false),
        (&["2600::/31"], true),
        (&["2001:db8:1234::/48"], false),
        (&["::/0"], true),
        (&["203.0.113.0/24", "2001:db8::/33"], false),
    ];
    for (cidrs, wide) in table {
        assert_eq!(set(cidrs).is_wide(), *wide, "{cidrs:?}");
    }
}

#[test]
fn glob_table() {
    let table: &[(&str, &str, bool, bool)] = &[
        ("*", "", false, true),
        ("*", "anything/at:all", false, true),
        ("a*c", "abc", false, true),
        ("a*c", "ac", false, true),
        ("a*c", "abd", false, false),
        ("a?c", "abc", false, true),
        ("a?c", "ac", false, false),
        ("a?c", "aéc", false, true), // ? is one character, not one byte
        ("a*b*c", "aXbYbZc", false, true),
        ("a*b*c", "aXbYbZ", false, false),
        ("es:ESHttp*", "es:eshttpget", true, true),
        ("es:ESHttp*", "es:eshttpget", false, false),
        ("ES:ESHTTPGET", "es:ESHttpGet", true, true),
        (
            "arn:aws:es:*:*:domain/orders/*",
            "arn:aws:es:us-east-1:1:domain/orders/x",
            false,
            true,
        ),
        (
            "arn:aws:es:*:*:domain/orders/*",
            "arn:aws:es:us-east-1:1:domain/orders",
            false,
            false,
        ),
        ("*/payroll/*", "arn:x:domain/d/payroll/2024", false, true),
        ("**", "x", false, true),
        ("", "", false, true),
        ("", "x", false, false),
    ];
    for (p, t, ci, want) in table {
        assert_eq!(glob_match(p, t, *ci), *want, "{p:?} vs {t:?} (ignore case {ci})");
    }
}

#[test]
fn arn_matching() {
    let table: &[(&str, &str, Tri)] = &[
        (
            "arn:aws:iam::*:role/reader",
            "arn:aws:iam::999988887777:role/reader",
            Tri::Yes,
        ),
        (
            "arn:aws:iam::111122223333:role/*",
            "arn:aws:iam::999988887777:role/x",
            Tri::No,
        ),
        (
            "arn:aws:iam::111122223333:*",
            "arn:aws:iam::111122223333:user/a:b",
            Tri::Yes,
        ),
        ("arn:aws:iam:root", "arn:aws:iam::999988887777:root", Tri::Maybe),
        ("*", "whatever", Tri::Yes),
        ("arn:aws:iam::1111*:root", "arn:aws:iam::111100000000:root", Tri::Yes),
    ];
    for (p, v, want) in table {
        assert_eq!(arn_match(p, v), *want, "{p} vs {v}");
    }
    assert_eq!(account_matching("9999*").as_deref(), Some("999900000000"));
    assert_eq!(account_matching("*"), None);
    assert_eq!(account_matching("12345678901?").as_deref(), Some("123456789010"));
    assert_eq!(
        accounts_in("arn:aws:iam::999988887777:root").as_deref(),
        Some("999988887777")
    );
    assert_eq!(accounts_in("o-abc"), None);
}

#[test]
fn dates() {
    let table: &[(&str, Option<i64>)] = &[
        ("1700000000", Some(1_700_000_000)),
        ("1970-01-01", Some(0)),
        ("2020-01-01T00:00:00Z", Some(1_577_836_800)),
        ("2020-01-01T00:00:00.123Z", Some(1_577_836_800)),
        ("2020-01-01T01:00:00+01:00", Some(1_577_836_800)),
        ("2020-01-01T00:00:00", Some(1_577_836_800)),
        ("2020-13-01", None),
        ("yesterday", None),
        ("2020-01-01T00:00:00Zjunk", None),
    ];
    for (text, want) in table {
        assert_eq!(parse_date(text), *want, "{text}");
    }
}

#[test]
fn operator_names() {
    assert!(matches!(
        Op::parse("StringEquals"),
        Op::Known {
            base: Base::StrEq,
            if_exists: false,
            qual: Qual::Single
        }
    ));
    assert!(matches!(
        Op::parse("ForAnyValue:StringLikeIfExists"),
        Op::Known {
            base: Base::StrLike,
            if_exists: true,
            qual: Qual::AnyValue
        }
    ));
    for bad in [
        "stringequals",
        "StringEqual",
        "NullIfExists",
        "ForAnyValue:",
        "forallvalues:StringEquals",
        "",
    ] {
        assert!(matches!(Op::parse(bad), Op::Unknown(_)), "{bad}");
    }
}

fn entry(op: &str, values: &[&str]) -> Entry {
    let values: Vec<String> = values.iter().map(|s| s.to_string()).collect();
    let op = Op::parse(op);
    let ips = match op {
        Op::Known {
            base: Base::Ip | Base::NotIp,
            ..
        } => IpSet::parse_list(values.iter().map(String::as_str)),
        _ => None,
    };
    Entry {
        op,
        key: "k".into(),
        values,
        unreadable: false,
        ips,
    }
}

fn on_value(op: &str, values: &[&str], rep: Option<&str>) -> Tri {
    let e = entry(op, values);
    match e.op {
        Op::Known { base, if_exists, qual } => entry_on_value(&e, base, if_exists, qual, rep),
        Op::Unknown(_) => Tri::Maybe,
    }
}

#[test]
fn operators_with_missing_key() {
    use Tri::*;
    let table: &[(&str, &[&str], Tri)] = &[
        ("StringEquals", &["a"], No),
        ("StringLike", &["*"], No),
        ("StringNotEquals", &["a"], Yes),
        ("StringNotLike", &["a*"], Yes),
        ("StringNotEqualsIgnoreCase", &["a"], Yes),
        ("StringEqualsIfExists", &["a"], Yes),
        ("StringNotEqualsIfExists", &["a"], Yes),
        ("IpAddress", &["10.0.0.0/8"], No),
        ("NotIpAddress", &["10.0.0.0/8"], Yes),
        ("IpAddressIfExists", &["10.0.0.0/8"], Yes),
        ("NumericLessThan", &["5"], No),
        ("NumericNotEquals", &["5"], Yes),
        ("DateGreaterThan", &["2020-01-01"], No),
        ("DateNotEquals", &["2020-01-01"], Yes),
        ("ArnLike", &["arn:aws:iam::*:root"], No),
        ("ArnNotLike", &["arn:aws:iam::*:root"], Yes),
        ("ArnNotEquals", &["arn:aws:iam::1:root"], Yes),
        ("Bool", &["true"], No),
        ("BoolIfExists", &["false"], Yes),
        ("BinaryEquals", &["QmluYXJ5"], No),
        ("Null", &["true"], Yes),
        ("Null", &["false"], No),
        ("Null", &["maybe"], Maybe),
        ("ForAnyValue:StringEquals", &["a"], No),
        ("ForAnyValue:StringNotEquals", &["a"], No),
        ("ForAllValues:StringEquals", &["a"], Yes),
        ("ForAllValues:StringNotLike", &["a"], Yes),
        ("ForAnyValue:StringEqualsIfExists", &["a"], Yes),
        ("stringequals", &["a"], Maybe),
    ];
    for (op, values, want) in table {
        assert_eq!(on_value(op, values, None), *want, "{op} {values:?} on a missing key");
    }
}

#[test]
fn operators_with_present_value() {
    use Tri::*;
    let table: &[(&str, &[&str], &str, Tri)] = &[
        ("StringEquals", &["a", "b"], "b", Yes),
        ("StringEquals", &["A"], "a", No), // values are case-sensitive
        ("StringEqualsIgnoreCase", &["A"], "a", Yes),
        ("StringNotEquals", &["a", "b"], "b", No),
        ("StringNotEquals", &["a", "b"], "c", Yes),
        ("StringLike", &["vpce-*"], "vpce-0abc", Yes),
        ("StringNotLike", &["vpce-*"], "vpc-0abc", Yes),
        ("NumericLessThan", &["5"], "4", Yes),
        ("NumericLessThan", &["5"], "x", No),
        ("NumericGreaterThanEquals", &["5"], "5", Yes),
        ("DateLessThan", &["2020-01-01T00:00:00Z"], "1500000000", Yes),
        ("DateGreaterThan", &["2020-01-01T00:00:00Z"], "1500000000", No),
        ("Bool", &["true"], "TRUE", Yes),
        (
            "ArnLike",
            &["arn:aws:iam::*:role/r"],
            "arn:aws:iam::999988887777:role/r",
            Yes,
        ),
        (
            "ArnNotLike",
            &["arn:aws:iam::*:role/r"],
            "arn:aws:iam::999988887777:role/r",
            No,
        ),
        ("IpAddress", &["10.0.0.0/8"], "10.1.2.3", Yes),
        ("NotIpAddress", &["10.0.0.0/8"], "11.1.2.3", Yes),
        ("Null", &["false"], "x", Yes),
        ("Null", &["true"], "x", No),
        ("ForAllValues:StringEquals", &["a"], "b", No),
        ("ForAnyValue:StringLike", &["a*"], "ab", Yes),
    ];
    for (op, values, v, want) in table {
        assert_eq!(on_value(op, values, Some(v)), *want, "{op} {values:?} on {v}");
    }
}

#[test]
fn prefix_rests_and_witnesses() {
    let root = "arn:aws:es:us-east-1:111122223333:domain/orders";
    let rests = |p: &str| -> Vec<String> { glob_prefix_rests(p, root).into_iter().map(String::from).collect() };
    assert_eq!(rests(&format!("{root}/*")), vec!["/*"]);
    assert_eq!(rests(root), vec![""]);
    assert_eq!(rests("*"), vec!["", "*"]); // the star may end here or go on
    assert!(rests("arn:aws:es:us-east-1:111122223333:domain/other/*").is_empty());
    // Every NFA state survives; suffixes that do not start a path are dropped later.
    let wild = rests("arn:aws:es:*:*:domain/ord*");
    assert!(
        wild.contains(&String::new()) && wild.contains(&"*".to_string()),
        "{wild:?}"
    );
    let doc = json!({"Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "es:*", "Resource": format!("{root}/logs-*")},
        {"Effect": "Deny", "Principal": "*", "Action": "es:*", "Resource": format!("{root}/logs-zq*")}
    ]});
    let mut notes = Notes::default();
    let stmts = parse_statements(&doc, &mut notes).expect("policy");
    let templates = witness_templates(&stmts, root, &OPENSEARCH);
    let token = choose_token(&templates, &stmts, root, &doc.to_string());
    // The Deny's "logs-zq*" steers the fresh token away from its pattern.
    assert!(!glob_match("logs-zq*", &format!("logs-{token}"), false));
    let ws = witnesses(&templates, root, &token);
    assert_eq!(ws[0].shown, "/logs-*");
    // OpenSearch requests never target the bare domain ARN.
    assert!(!ws.iter().any(|w| w.arn == root));
    assert!(ws.iter().any(|w| w.arn == format!("{root}/") && w.shown == "/"));
}

#[test]
fn partial_wildcard_account_is_not_everyone() {
    // The fresh "any account" must not be one a partial wildcard happens to match.
    let doc = json!({"Statement": {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::4*:root"}, "Action": "es:*"}});
    let fresh = Fresh::new(&doc, &doc.to_string(), "zq0x".into(), "111122223333", &Trust::default());
    assert!(!fresh.account.starts_with('4'));
}

/// The previous evaluator's own table, kept as regression cases. One verdict changed on purpose:
/// `10.0.0.0/7` is the private 10/8 plus 11/8, and a single public /8 is within the threshold
/// (more public space than one /8), so it is restricted now; `12.0.0.0/7` (two public /8s) is not.
#[test]
fn previous_evaluator_table() {
    let owner = "111122223333";
    let arn = "arn:aws:es:us-east-1:111122223333:domain/d";
    let none = Trust::default();
    let trusted = Trust {
        accounts: vec!["999988887777".into()],
        org_ids: vec!["o-ours".into()],
        cidrs: vec![],
    };
    let allow = |principal: Value, condition: Option<Value>| {
        let mut s = json!({"Effect": "Allow", "Principal": principal, "Action": "es:*", "Resource": "arn:aws:es:us-east-1:111122223333:domain/d/*"});
        if let Some(c) = condition {
            s["Condition"] = c;
        }
        s
    };
    let ip = |v: Value| Some(json!({"IpAddress": {"aws:SourceIp": v}}));
    let cases: Vec<(&str, Vec<Value>, &Trust, Reach)> = vec![
        ("no statements", vec![], &none, Reach::Restricted),
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
            "source ip private /8",
            vec![allow(json!("*"), ip(json!("10.0.0.0/8")))],
            &none,
            Reach::Restricted,
        ),
        (
            "private /8 plus one public /8",
            vec![allow(json!("*"), ip(json!("10.0.0.0/7")))],
            &none,
            Reach::Restricted,
        ),
        (
            "two public /8s",
            vec![allow(json!("*"), ip(json!("12.0.0.0/7")))],
            &none,
            Reach::Public,
        ),
        (
            "one broad value voids the list",
            vec![allow(json!("*"), ip(json!(["10.0.0.0/8", "0.0.0.0/0"])))],
            &none,
            Reach::Public,
        ),
        (
            "ipv6 ::/0",
            vec![allow(json!("*"), ip(json!("::/0")))],
            &none,
            Reach::Public,
        ),
        (
            "ipv6 /48",
            vec![allow(json!("*"), ip(json!("2001:db8:1::/48")))],
            &none,
            Reach::Restricted,
        ),
        (
            "garbage ip",
            vec![allow(json!("*"), ip(json!("everywhere")))],
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
            "case-insensitive key, own VPC",
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
                Some(json!({"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}, "StringEquals": {"aws:SourceVpc": "vpc-1"}})),
            )],
            &none,
            Reach::Restricted,
        ),
        (
            "Deny with IfExists is no fence",
            vec![
                allow(json!("*"), None),
                json!({"Effect": "Deny", "Principal": "*", "Action": "es:*", "Resource": "*", "Condition": {"StringNotEqualsIfExists": {"aws:SourceVpc": "vpc-1"}}}),
            ],
            &none,
            Reach::Restricted,
        ),
        (
            "Deny of only some actions is no fence",
            vec![
                allow(json!("*"), None),
                json!({"Effect": "Deny", "Principal": "*", "Action": "es:ESHttpDelete", "Resource": "*", "Condition": {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}),
            ],
            &none,
            Reach::Public,
        ),
        (
            "Deny fencing to a broad range is no fence",
            vec![
                allow(json!("*"), None),
                json!({"Effect": "Deny", "Principal": "*", "Action": "*", "Resource": "*", "Condition": {"NotIpAddress": {"aws:SourceIp": "0.0.0.0/1"}}}),
            ],
            &none,
            Reach::Public,
        ),
        (
            "unconditional Deny for every account and anonymous",
            vec![
                allow(json!("*"), None),
                json!({"Effect": "Deny", "Principal": "*", "Action": "es:*", "Resource": "*"}),
            ],
            &none,
            Reach::Restricted,
        ),
        (
            "Deny outside our account fences a foreign grant",
            vec![
                allow(json!({"AWS": "arn:aws:iam::999988887777:root"}), None),
                json!({"Effect": "Deny", "Principal": "*", "Action": "es:*", "Resource": "*", "Condition": {"StringNotEquals": {"aws:PrincipalAccount": "111122223333"}}}),
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
    let mut failures = Vec::new();
    for (name, stmts, trust, want) in cases {
        let ctx = Context {
            owner,
            resource_arn: arn,
            trust,
            service: &OPENSEARCH,
            now: None,
        };
        let v = evaluate(&json!({"Version": "2012-10-17", "Statement": stmts}), &ctx).expect("a policy");
        if v.reach != want {
            failures.push(format!(
                "{name}: want {}, got {} — {}",
                want.as_str(),
                v.reach.as_str(),
                v.reason
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
