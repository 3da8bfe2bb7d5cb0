//! A small policy grammar shared by the property tests and the 1M-policy run:
//! a statement is a tuple of indices into tables of realistic elements.
#![allow(dead_code)] // shared by the property tests and the generated run; not every table is used by both
use serde_json::{Map, Value, json};

pub const OWNER: &str = "111122223333";
pub const DOMAIN: &str = "arn:aws:es:us-east-1:111122223333:domain/orders";

pub fn principals() -> Vec<(&'static str, Value)> {
    vec![
        ("Principal", json!("*")),
        ("Principal", json!({"AWS": "*"})),
        ("Principal", json!({"AWS": "arn:aws:iam::111122223333:root"})),
        ("Principal", json!({"AWS": "arn:aws:iam::999988887777:root"})),
        (
            "Principal",
            json!({"AWS": ["999988887777", "arn:aws:iam::444455556666:role/r"]}),
        ),
        ("Principal", json!({"AWS": "arn:aws:iam::*:root"})),
        ("Principal", json!({"AWS": "arn:aws:iam:root"})),
        ("Principal", json!({"AWS": "arn:aws:iam::9999*:role/*"})),
        ("Principal", json!({"Service": "es.amazonaws.com"})),
        ("Principal", json!({"Federated": "*"})),
        ("Principal", json!(7)),
        ("NotPrincipal", json!({"AWS": "arn:aws:iam::111122223333:root"})),
        (
            "NotPrincipal",
            json!({"AWS": ["arn:aws:iam::111122223333:root", "999988887777"]}),
        ),
        ("NotPrincipal", json!("*")),
    ]
}

pub fn actions() -> Vec<(&'static str, Value)> {
    vec![
        ("Action", json!("es:*")),
        ("Action", json!("es:ESHttp*")),
        ("Action", json!("es:ESHttpGet")),
        ("Action", json!(["es:ESHttpGet", "es:ESHttpPut"])),
        ("Action", json!(["es:ESHttpPost", "es:ESHttpDelete", "es:eshttphead"])),
        ("Action", json!(["es:Describe*", "es:List*"])),
        ("Action", json!("*")),
        ("NotAction", json!("es:ESHttpDelete")),
        ("NotAction", json!("es:ESHttp*")),
        ("Action", json!(["es:ESHttpPatch", 3])),
    ]
}

pub fn resources() -> Vec<Option<(&'static str, Value)>> {
    vec![
        Some(("Resource", json!(format!("{DOMAIN}/*")))),
        Some(("Resource", json!(DOMAIN))),
        Some(("Resource", json!(format!("{DOMAIN}/payroll/*")))),
        Some(("Resource", json!(format!("{DOMAIN}/logs-*")))),
        Some(("Resource", json!("*"))),
        Some(("Resource", json!("arn:aws:es:us-east-1:111122223333:domain/other/*"))),
        Some((
            "Resource",
            json!([format!("{DOMAIN}/logs-2024*"), format!("{DOMAIN}/payroll/*")]),
        )),
        Some(("NotResource", json!(format!("{DOMAIN}/payroll/*")))),
        Some(("Resource", json!("arn:aws:es:*:*:domain/ord*"))),
        None,
    ]
}

pub fn conditions() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        ("IpAddress", "aws:SourceIp", json!(["52.0.0.0/8"])),
        ("IpAddress", "aws:SourceIp", json!(["3.0.0.0/8", "52.0.0.0/8"])),
        ("IpAddress", "aws:SourceIp", json!("0.0.0.0/0")),
        ("IpAddress", "aws:SourceIp", json!(["10.0.0.0/8", "203.0.113.0/24"])),
        ("IpAddress", "aws:SourceIp", json!(["::/0"])),
        ("IpAddress", "aws:SourceIp", json!("2001:db8:1234::/48")),
        ("IpAddress", "aws:SourceIp", json!("10.0.0.300/8")),
        ("NotIpAddress", "aws:SourceIp", json!(["203.0.113.0/24", "52.0.0.0/8"])),
        ("NotIpAddress", "aws:SourceIp", json!("0.0.0.0/1")),
        ("IpAddressIfExists", "aws:SourceIp", json!("10.0.0.0/8")),
        ("StringEquals", "aws:SourceVpce", json!("vpce-0abc")),
        ("StringLike", "aws:SourceVpce", json!("vpce-*")),
        ("StringNotEqualsIfExists", "aws:SourceVpce", json!("vpce-0abc")),
        ("StringEquals", "aws:PrincipalOrgID", json!("o-a1b2c3d4e5")),
        ("StringEquals", "aws:PrincipalOrgID", json!("o-zzzz9999zz")),
        ("StringLike", "aws:PrincipalOrgID", json!("*")),
        ("ForAllValues:StringEquals", "aws:PrincipalOrgID", json!("o-a1b2c3d4e5")),
        ("ForAnyValue:StringEquals", "aws:PrincipalOrgID", json!("o-a1b2c3d4e5")),
        (
            "ForAllValues:StringNotEquals",
            "aws:PrincipalOrgID",
            json!("o-a1b2c3d4e5"),
        ),
        ("StringEquals", "aws:PrincipalAccount", json!("999988887777")),
        ("StringNotEquals", "aws:PrincipalAccount", json!(OWNER)),
        ("StringLike", "aws:PrincipalAccount", json!("*")),
        ("ArnLike", "aws:PrincipalArn", json!("arn:aws:iam::*:role/reader")),
        ("ArnLike", "aws:PrincipalArn", json!("arn:aws:iam::111122223333:role/*")),
        ("Null", "aws:SourceVpc", json!("true")),
        ("Null", "aws:PrincipalArn", json!("false")),
        ("Null", "aws:PrincipalAccount", json!("true")),
        ("Bool", "aws:SecureTransport", json!("true")),
        ("Bool", "aws:SecureTransport", json!("false")),
        ("StringLike", "aws:Referer", json!("https://example.com/*")),
        ("StringEquals", "aws:UserAgent", json!("indexer")),
        ("stringequals", "aws:SourceVpce", json!("vpce-0abc")),
        ("DateLessThan", "aws:CurrentTime", json!("2020-01-01T00:00:00Z")),
        ("StringEquals", "aws:SourceAccount", json!(OWNER)),
        ("IpAddress", "aws:VpcSourceIp", json!("10.1.0.0/16")),
    ]
}

/// (allow?, principal, action, resource, conditions) as table indices.
pub type Spec = (bool, usize, usize, usize, Vec<usize>);

pub struct Tables {
    pub p: Vec<(&'static str, Value)>,
    pub a: Vec<(&'static str, Value)>,
    pub r: Vec<Option<(&'static str, Value)>>,
    pub c: Vec<(&'static str, &'static str, Value)>,
}

impl Tables {
    pub fn new() -> Tables {
        Tables {
            p: principals(),
            a: actions(),
            r: resources(),
            c: conditions(),
        }
    }

    pub fn statement(&self, spec: &Spec) -> Value {
        let (allow, p, a, r, conds) = spec;
        let mut s = Map::new();
        s.insert("Effect".into(), json!(if *allow { "Allow" } else { "Deny" }));
        let (pk, pv) = &self.p[p % self.p.len()];
        s.insert(pk.to_string(), pv.clone());
        let (ak, av) = &self.a[a % self.a.len()];
        s.insert(ak.to_string(), av.clone());
        if let Some((rk, rv)) = &self.r[r % self.r.len()] {
            s.insert(rk.to_string(), rv.clone());
        }
        if !conds.is_empty() {
            let mut block = Map::new();
            for c in conds {
                let (op, key, v) = &self.c[c % self.c.len()];
                let entry = block.entry(op.to_string()).or_insert_with(|| json!({}));
                if let Value::Object(m) = entry {
                    m.insert(key.to_string(), v.clone());
                }
            }
            s.insert("Condition".into(), Value::Object(block));
        }
        Value::Object(s)
    }

    pub fn policy(&self, specs: &[Spec]) -> Value {
        json!({"Version": "2012-10-17", "Statement": specs.iter().map(|s| self.statement(s)).collect::<Vec<_>>()})
    }
}
