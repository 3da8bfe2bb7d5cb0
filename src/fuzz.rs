//! Fault suite, scenario 7: bad input never panics. Property tests over the parsers and the pure
//! logic, bounded here (proptest's 256 cases per property); run longer with
//! `PROPTEST_CASES=100000 cargo test --bin lockwatch fuzz` (see RELIABILITY.md).

use crate::config::Config;
use crate::pipeline::evaluate;
use crate::sources::aws::policy::{self, Reach, Trust};
use crate::{diff, mail, sources};
use proptest::prelude::*;
use serde_json::{Value, json};
use std::path::Path;

const WORDS: &[&str] = &[
    "*",
    "Allow",
    "Deny",
    "es:*",
    "es:ESHttpGet",
    "aws:SourceIp",
    "aws:sourceip",
    "0.0.0.0/0",
    "10.0.0.0/8",
    "::/0",
    "0.0.0.0/1",
    "arn:aws:iam::*:root",
    "arn:aws:iam::111122223333:root",
    "arn:aws:iam::999988887777:role/x",
    "o-*",
    "o-abc",
    "vpc-1",
    "IpAddress",
    "NotIpAddress",
    "StringEquals",
    "StringLikeIfExists",
    "ForAllValues:StringEquals",
    "ForAnyValue:StringLike",
    "ArnLike",
    "AWS",
    "Service",
    "trust",
    "scram-sha-256",
    "accepted",
    "loopback",
    "",
];
const KEYS: &[&str] = &[
    "Statement",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Condition",
    "Resource",
    "AWS",
    "Service",
    "aws:SourceIp",
    "aws:PrincipalOrgID",
    "aws:SourceVpc",
    "aws:PrincipalArn",
    "IpAddress",
    "StringEquals",
    "NotIpAddress",
    "Sid",
    "x",
];

/// Every kind's sample postures (the kind contract), with one field replaced by anything: the
/// field names come from the kinds themselves, not from a list kept here.
fn mutated_sample() -> impl Strategy<Value = (&'static str, Value, Value)> {
    let samples: Vec<(&'static str, Value)> = sources::KINDS
        .iter()
        .flat_map(|k| k.resource_kinds.iter())
        .flat_map(|rk| {
            let s = (rk.samples)();
            [(rk.name, s.safe), (rk.name, s.exposed)]
        })
        .collect();
    (
        prop::sample::select(samples),
        any::<prop::sample::Index>(),
        json_value(),
    )
        .prop_map(|((kind, doc), field, value)| {
            let mut mutated = doc.clone();
            if let Some(obj) = mutated.as_object_mut()
                && !obj.is_empty()
            {
                let key = obj.keys().nth(field.index(obj.len())).cloned().unwrap_or_default();
                obj.insert(key, value);
            }
            (kind, doc, mutated)
        })
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        prop::sample::select(WORDS).prop_map(|s| json!(s)),
        "\\PC{0,16}".prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 96, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(prop::sample::select(KEYS).prop_map(String::from), inner, 0..7)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Policy-shaped documents, to reach deep into the evaluator.
fn policy_doc() -> impl Strategy<Value = Value> {
    let values = prop_oneof![
        prop::sample::select(WORDS).prop_map(|s| json!(s)),
        prop::collection::vec(prop::sample::select(WORDS), 0..4).prop_map(|v| json!(v))
    ];
    let condition = prop::collection::btree_map(
        prop::sample::select(
            &[
                "IpAddress",
                "NotIpAddress",
                "StringEquals",
                "StringLike",
                "StringNotEquals",
                "ArnLike",
                "StringEqualsIfExists",
                "ForAllValues:StringEquals",
                "ForAnyValue:StringEquals",
                "Bool",
            ][..],
        ),
        prop::collection::btree_map(
            prop::sample::select(
                &[
                    "aws:SourceIp",
                    "aws:SourceVpc",
                    "aws:SourceVpce",
                    "aws:PrincipalOrgID",
                    "aws:PrincipalAccount",
                    "aws:SourceAccount",
                    "aws:PrincipalArn",
                    "aws:SourceArn",
                    "aws:RequestedRegion",
                ][..],
            ),
            values.clone(),
            0..3,
        ),
        0..3,
    );
    let principal = prop_oneof![
        Just(json!("*")),
        values.clone().prop_map(|v| json!({"AWS": v})),
        values.clone().prop_map(|v| json!({"Service": v})),
        json_value(),
    ];
    let statement = (
        prop::sample::select(&["Allow", "Deny", "Maybe"][..]),
        principal,
        any::<bool>(),
        values,
        prop::option::of(condition),
    )
        .prop_map(|(effect, principal, not_principal, action, condition)| {
            let mut s = json!({"Effect": effect, "Action": action});
            s[if not_principal { "NotPrincipal" } else { "Principal" }] = principal;
            if let Some(c) = condition {
                s["Condition"] = json!(c);
            }
            s
        });
    prop::collection::vec(statement, 0..5).prop_map(|s| json!({"Version": "2012-10-17", "Statement": s}))
}

const VALID_CONFIG: &str = r#"[daemon]
schedule = "*/30 * * * * *"
state_dir = "/tmp/x"
[alerts]
remind_every = "4h"
[alerts.email]
smtp_host = "localhost"
tls = "none"
from = "a@example.com"
to = ["b@example.com"]
[[sources]]
kind = "redis"
name = "cache"
url = "redis://:pw@127.0.0.1:6379"
[[sources]]
kind = "aws"
name = "prod"
regions = ["us-east-1"]
[sources.trust]
cidrs = ["198.51.100.0/24"]
"#;

fn eval(doc: &serde_json::Value, trust: &Trust) -> Result<policy::Verdict, String> {
    policy::evaluate(
        doc,
        &policy::Context {
            owner: "111122223333",
            resource_arn: "arn:aws:es:us-east-1:111122223333:domain/d",
            trust,
            service: &policy::OPENSEARCH,
            now: None,
        },
    )
}

proptest! {
    #[test]
    fn config_parse_never_panics_on_any_text(text in "\\PC{0,400}") {
        let _ = Config::parse(Path::new("fuzz.toml"), &text);
    }

    #[test]
    fn config_parse_never_panics_on_mutated_configs(cut in 0usize..VALID_CONFIG.len(), insert in "[\\[\\]=\"\\n a-z0-9:/*.,{}#]{0,40}") {
        let mut text = VALID_CONFIG.as_bytes()[..cut].to_vec();
        text.extend_from_slice(insert.as_bytes());
        text.extend_from_slice(&VALID_CONFIG.as_bytes()[cut..]);
        if let Ok(t) = String::from_utf8(text) {
            if let Err(e) = Config::parse(Path::new("fuzz.toml"), &t) {
                prop_assert!(!e.to_string().contains(":pw@"), "{}", e);
            }
        }
    }

    #[test]
    fn policy_evaluator_never_panics(doc in json_value()) {
        let _ = eval(&doc, &Trust::default());
    }

    #[test]
    fn policy_evaluator_properties(doc in policy_doc()) {
        let v = eval(&doc, &Trust::default()).unwrap();
        // An opening verdict always quotes an Allow statement.
        if v.reach > Reach::Restricted {
            prop_assert_eq!(v.statement.as_ref().and_then(|s| s["Effect"].as_str()), Some("Allow"));
        }
        // Dropping the Deny statements can only widen who gets in.
        let mut no_deny = doc.clone();
        no_deny["Statement"].as_array_mut().unwrap().retain(|s| s["Effect"] != "Deny");
        prop_assert!(eval(&no_deny, &Trust::default()).unwrap().reach >= v.reach);
        // Trusting more accounts can only narrow it.
        let trusted = Trust { accounts: vec!["999988887777".into()], ..Trust::default() };
        prop_assert!(eval(&doc, &trusted).unwrap().reach <= v.reach);
    }

    #[test]
    fn diff_is_empty_exactly_when_equal(a in json_value(), b in json_value()) {
        prop_assert!(diff::diff(&a, &a).is_empty());
        prop_assert_eq!(diff::diff(&a, &b).is_empty(), a == b);
    }

    #[test]
    fn every_kind_survives_any_value_in_any_field_of_its_samples((kind, doc, mutated) in mutated_sample()) {
        let _ = evaluate::evaluate(kind, &doc, &mutated);
        let _ = evaluate::evaluate(kind, &mutated, &doc);
        prop_assert!(evaluate::evaluate(kind, &mutated, &mutated).changes.is_empty());
    }

    #[test]
    fn every_kind_assesses_and_classifies_any_document_without_panicking(a in json_value(), b in json_value()) {
        for k in sources::KINDS.iter().flat_map(|k| k.resource_kinds.iter()) {
            let _ = (k.assess)(&a);
            let _ = evaluate::evaluate(k.name, &a, &b);
        }
    }

    /// The oracle does not use the escaper: rendering the same mail with every character of the
    /// inputs replaced by `a` must give the same markup (the same count of `<`, `>` and `"`).
    /// Text that reached the HTML unescaped would add markup of its own.
    #[test]
    fn mail_rendering_escapes_whatever_it_is_given(rule in "\\PC{0,30}", message in "\\PC{0,200}", id in "\\PC{0,40}") {
        let plain = |s: &str| "a".repeat(s.chars().count());
        let render = |rule: &str, message: &str, id: &str| {
            let new = [crate::alerting::Condition { rule: rule.to_string(), severity: crate::model::Severity::High, message: message.to_string() }];
            mail::render(&mail::MailContext {
                resource_id: id, kind: "redis", notice: crate::alerting::Notice::Alert(crate::model::Severity::High),
                detected_at: chrono::DateTime::from_timestamp(0, 0).unwrap(), new: &new, reopened: &[], still_open: &[], resolved: &[], changes: &[], further: &[],
                exposed: false, reach: None, config_path: Path::new("/etc/lockwatch/lockwatch.toml"), about_posture: true, notes: &[],
            }).html
        };
        let markup = |html: &str| ['<', '>', '"'].map(|c| html.matches(c).count());
        prop_assert_eq!(markup(&render(&rule, &message, &id)), markup(&render(&plain(&rule), &plain(&message), &plain(&id))));
    }

}
