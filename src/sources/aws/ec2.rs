//! EC2 security groups: ingress rules, what each group is attached to (network interfaces →
//! instance / RDS / OpenSearch / ElastiCache, public IP or not), and which data-store ports they
//! open to the internet.

use super::{Ctx, sdk_error};
use crate::model::{Classification, Finding, Resource, Severity};
use crate::sources::common::classify_risky_member;
use crate::sources::{Assessment, FieldChange, ResourceKind, Samples};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::IpAddr;

pub const KIND: ResourceKind = ResourceKind {
    name: "security-group",
    assess,
    classify,
    samples,
    describe,
};

fn describe(c: &crate::model::Change) -> Option<String> {
    let port = |v: &Value| serde_json::from_value::<OpenPort>(v.clone()).ok();
    Some(match crate::diff::top_field(&c.path) {
        "world_open_ports" if c.before.is_null() => {
            let p = port(&c.after)?;
            format!("{} port {} is open to {}", p.service, p.port, p.source)
        }
        "world_open_ports" if c.after.is_null() => {
            let p = port(&c.before)?;
            format!("{} port {} is no longer open to {}", p.service, p.port, p.source)
        }
        "attachments" if c.before.is_null() => format!(
            "the group is now attached to {}",
            c.after
                .get("resource")
                .and_then(Value::as_str)
                .unwrap_or("a network interface")
        ),
        _ => return None,
    })
}

fn samples() -> Samples {
    let doc = |source: &str, public_ip: bool| {
        let rules = vec![Rule {
            protocol: "tcp".into(),
            from_port: Some(5432),
            to_port: Some(5432),
            source: source.into(),
        }];
        serde_json::to_value(Posture {
            owner_account: "111122223333".into(),
            group_id: "sg-1".into(),
            group_name: "db".into(),
            vpc_id: Some("vpc-1".into()),
            world_open_ports: open_ports(&rules, &[], is_world),
            untrusted_public_ports: open_ports(&rules, &[], |s| is_untrusted_public(s, &[])),
            ingress: rules,
            attachments: vec![Attachment {
                interface_id: "eni-1".into(),
                attached_to: "instance".into(),
                resource: Some("i-1".into()),
                public_ip,
            }],
        })
        .unwrap_or_default()
    };
    Samples {
        safe: doc("10.0.0.0/16", true),
        exposed: doc("0.0.0.0/0", true),
    }
}

/// Ports of data stores that must never face the internet.
pub const DATA_STORE_PORTS: &[(u16, &str)] = &[
    (9200, "Elasticsearch/OpenSearch"),
    (9300, "Elasticsearch transport"),
    (5601, "Kibana"),
    (27017, "MongoDB"),
    (27018, "MongoDB"),
    (3306, "MySQL"),
    (5432, "PostgreSQL"),
    (6379, "Redis"),
    (11211, "Memcached"),
    (1433, "MSSQL"),
    (1434, "MSSQL browser"),
    (1521, "Oracle"),
    (2483, "Oracle"),
    (2484, "Oracle TLS"),
    (7000, "Cassandra"),
    (7001, "Cassandra TLS"),
    (7199, "Cassandra JMX"),
    (9042, "Cassandra CQL"),
    (9160, "Cassandra Thrift"),
    (9092, "Kafka"),
    (5984, "CouchDB"),
];

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Rule {
    /// `tcp`, `udp`, `icmp`, or `-1` for all protocols.
    pub protocol: String,
    pub from_port: Option<i32>,
    pub to_port: Option<i32>,
    /// A CIDR (IPv4 or IPv6), a prefix list id (`pl-…`) or a group (`sg-…`, `account/sg-…`).
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Attachment {
    pub interface_id: String,
    /// `instance`, `rds`, `opensearch`, `elasticache`, `other`.
    pub attached_to: String,
    pub resource: Option<String>,
    pub public_ip: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct OpenPort {
    pub port: u16,
    pub service: String,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Posture {
    pub owner_account: String,
    pub group_id: String,
    pub group_name: String,
    pub vpc_id: Option<String>,
    pub ingress: Vec<Rule>,
    pub attachments: Vec<Attachment>,
    /// Derived: data-store ports reachable from 0.0.0.0/0, ::/0 or anything broader than /8.
    pub world_open_ports: Vec<OpenPort>,
    /// Derived: data-store ports open to public ranges that are not in `trust.cidrs`.
    pub untrusted_public_ports: Vec<OpenPort>,
}

pub struct Group {
    pub id: String,
    pub name: String,
    pub vpc_id: Option<String>,
    pub rules: Vec<Rule>,
}

/// Everything one region's EC2 listing said.
pub struct RegionGroups {
    pub groups: Vec<Group>,
    pub attachments: BTreeMap<String, Vec<Attachment>>,
}

/// Items per EC2 list call. Without MaxResults EC2 answers everything in one response (tens of
/// megabytes for ten thousand groups, all held at once while parsed); pages of 1,000 (the
/// largest EC2 allows) bound the memory a scan needs at the cost of one call per 1,000 items.
const PAGE_SIZE: i32 = 1000;

pub async fn fetch(client: &aws_sdk_ec2::Client, _ctx: &Ctx<'_>) -> Result<RegionGroups, String> {
    let mut groups = Vec::new();
    let mut pages = client
        .describe_security_groups()
        .max_results(PAGE_SIZE)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        // A page that fails fails the whole listing: a partial list proves nothing about absence.
        let page = page.map_err(|e| {
            format!(
                "listing security groups (ec2:DescribeSecurityGroups): {}",
                sdk_error(&e)
            )
        })?;
        for g in page.security_groups() {
            let Some(id) = g.group_id() else { continue };
            let mut rules = Vec::new();
            for perm in g.ip_permissions() {
                let protocol = perm.ip_protocol().unwrap_or("-1").to_string();
                let (from_port, to_port) = if protocol == "-1" {
                    (None, None)
                } else {
                    (perm.from_port(), perm.to_port())
                };
                let mut push = |source: String| {
                    rules.push(Rule {
                        protocol: protocol.clone(),
                        from_port,
                        to_port,
                        source,
                    })
                };
                perm.ip_ranges()
                    .iter()
                    .filter_map(|r| r.cidr_ip())
                    .for_each(|c| push(c.to_string()));
                perm.ipv6_ranges()
                    .iter()
                    .filter_map(|r| r.cidr_ipv6())
                    .for_each(|c| push(c.to_string()));
                perm.prefix_list_ids()
                    .iter()
                    .filter_map(|p| p.prefix_list_id())
                    .for_each(|p| push(p.to_string()));
                for pair in perm.user_id_group_pairs() {
                    if let Some(gid) = pair.group_id() {
                        push(match pair.user_id() {
                            Some(u) if Some(u) != g.owner_id() => format!("{u}/{gid}"),
                            _ => gid.to_string(),
                        });
                    }
                }
            }
            rules.sort();
            rules.dedup();
            groups.push(Group {
                id: id.to_string(),
                name: g.group_name().unwrap_or_default().to_string(),
                vpc_id: g.vpc_id().map(str::to_string),
                rules,
            });
        }
    }
    let mut attachments: BTreeMap<String, Vec<Attachment>> = BTreeMap::new();
    let mut pages = client
        .describe_network_interfaces()
        .max_results(PAGE_SIZE)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            format!(
                "listing network interfaces (ec2:DescribeNetworkInterfaces): {}",
                sdk_error(&e)
            )
        })?;
        for ni in page.network_interfaces() {
            let att = Attachment {
                interface_id: ni.network_interface_id().unwrap_or_default().to_string(),
                attached_to: attached_to(
                    ni.description().unwrap_or_default(),
                    ni.requester_id().unwrap_or_default(),
                    ni.attachment().and_then(|a| a.instance_id()),
                )
                .to_string(),
                resource: ni.attachment().and_then(|a| a.instance_id()).map(str::to_string),
                public_ip: ni.association().and_then(|a| a.public_ip()).is_some(),
            };
            for g in ni.groups() {
                if let Some(gid) = g.group_id() {
                    attachments.entry(gid.to_string()).or_default().push(att.clone());
                }
            }
        }
    }
    for list in attachments.values_mut() {
        list.sort();
        list.dedup();
    }
    Ok(RegionGroups { groups, attachments })
}

/// What a network interface belongs to, from the fields AWS fills in for managed services.
pub fn attached_to(description: &str, requester: &str, instance: Option<&str>) -> &'static str {
    let d = description.to_ascii_lowercase();
    if instance.is_some() {
        "instance"
    } else if requester == "amazon-rds" || d.contains("rdsnetworkinterface") {
        "rds"
    } else if requester == "amazon-elasticsearch" || d.starts_with("es ") || d.contains("opensearch") {
        "opensearch"
    } else if requester == "amazon-elasticache" || d.contains("elasticache") {
        "elasticache"
    } else {
        "other"
    }
}

pub fn resources(rg: &RegionGroups, ctx: &Ctx<'_>, extra_ports: &[u16]) -> Vec<Resource> {
    let trusted: Vec<(IpAddr, u8)> = ctx.trust.cidrs.iter().filter_map(|c| parse_cidr(c)).collect();
    rg.groups
        .iter()
        .map(|g| {
            let p = Posture {
                owner_account: ctx.account.to_string(),
                group_id: g.id.clone(),
                group_name: g.name.clone(),
                vpc_id: g.vpc_id.clone(),
                ingress: g.rules.clone(),
                attachments: rg.attachments.get(&g.id).cloned().unwrap_or_default(),
                world_open_ports: open_ports(&g.rules, extra_ports, |s| is_world(s)),
                untrusted_public_ports: open_ports(&g.rules, extra_ports, |s| is_untrusted_public(s, &trusted)),
            };
            ctx.resource(KIND.name, &g.id, serde_json::to_value(p).expect("posture serializes"))
        })
        .collect()
}

pub fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (a, p) = s.split_once('/')?;
    let ip: IpAddr = a.parse().ok()?;
    let prefix: u8 = p.parse().ok()?;
    (prefix <= if ip.is_ipv4() { 32 } else { 128 }).then_some((ip, prefix))
}

/// The whole internet, or near enough: broader than /8 (IPv4) or /32 (IPv6).
pub fn is_world(source: &str) -> bool {
    match parse_cidr(source) {
        Some((IpAddr::V4(_), p)) => p < 8,
        Some((IpAddr::V6(_), p)) => p < 32,
        None => false,
    }
}

fn contains(net: (IpAddr, u8), ip: IpAddr, prefix: u8) -> bool {
    match (net.0, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) if prefix >= net.1 => {
            let mask = if net.1 == 0 { 0 } else { u32::MAX << (32 - net.1) };
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) if prefix >= net.1 => {
            let mask = if net.1 == 0 { 0 } else { u128::MAX << (128 - net.1) };
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

fn is_untrusted_public(source: &str, trusted: &[(IpAddr, u8)]) -> bool {
    let Some((ip, prefix)) = parse_cidr(source) else {
        return false;
    };
    if is_world(source) || crate::net::scope_of(&ip.to_string()) != crate::net::Scope::Public {
        return false;
    }
    !trusted.iter().any(|t| contains(*t, ip, prefix))
}

/// Does `rule` let TCP traffic reach `port`?
pub fn rule_covers(rule: &Rule, port: u16) -> bool {
    match rule.protocol.as_str() {
        "-1" | "all" => true,
        "tcp" | "6" => {
            let (from, to) = (rule.from_port.unwrap_or(0), rule.to_port.unwrap_or(65535));
            (from..=to).contains(&(port as i32))
        }
        _ => false,
    }
}

fn open_ports(rules: &[Rule], extra: &[u16], source_matches: impl Fn(&str) -> bool) -> Vec<OpenPort> {
    let ports = DATA_STORE_PORTS
        .iter()
        .copied()
        .chain(extra.iter().map(|p| (*p, "configured data store")));
    let mut out = Vec::new();
    for (port, service) in ports {
        for r in rules
            .iter()
            .filter(|r| source_matches(&r.source) && rule_covers(r, port))
        {
            out.push(OpenPort {
                port,
                service: service.to_string(),
                source: r.source.clone(),
            });
        }
    }
    out.sort();
    out.dedup();
    out
}

/// How bad a world-open data-store port is, given what the group protects: (severity, exposed).
fn exposure(attachments: &[Attachment]) -> (Severity, bool) {
    if attachments.iter().any(|a| a.public_ip) {
        (Severity::Critical, true)
    } else if !attachments.is_empty() {
        (Severity::High, false)
    } else {
        (Severity::Low, false)
    }
}

fn describe_ports(ports: &[OpenPort]) -> String {
    ports
        .iter()
        .map(|p| format!("{} {} from {}", p.service, p.port, p.source))
        .collect::<Vec<_>>()
        .join(", ")
}

fn assess(posture: &Value) -> Result<Assessment, String> {
    let p: Posture =
        serde_json::from_value(posture.clone()).map_err(|e| format!("not a security-group posture: {e}"))?;
    let mut out = Vec::new();
    if !p.world_open_ports.is_empty() {
        let (severity, exposed) = exposure(&p.attachments);
        let behind = if p.attachments.is_empty() {
            "It is attached to nothing yet (attaching it to a public host will make this critical)".to_string()
        } else {
            format!(
                "It is attached to {}",
                p.attachments
                    .iter()
                    .map(|a| format!(
                        "{} {}{}",
                        a.attached_to,
                        a.resource.as_deref().unwrap_or(&a.interface_id),
                        if a.public_ip { " (public IP)" } else { "" }
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let first = &p.world_open_ports[0];
        out.push(Finding::new(
            "ec2.sg.datastore_open_to_world",
            severity,
            exposed,
            format!(
                "Security group {} ({}) lets the internet reach {}. {behind}. Remove the rule or narrow it to your own ranges, e.g. \
                 aws ec2 revoke-security-group-ingress --group-id {} --protocol tcp --port {} --cidr {}",
                p.group_id,
                p.group_name,
                describe_ports(&p.world_open_ports),
                p.group_id,
                first.port,
                first.source
            ),
        ));
    }
    if !p.untrusted_public_ports.is_empty() {
        out.push(Finding::new(
            "ec2.sg.datastore_open_to_public_range",
            Severity::Medium,
            false,
            format!(
                "Security group {} ({}) opens {} to public ranges that are not in [sources.trust] cidrs. If they are yours, add them there.",
                p.group_id,
                p.group_name,
                describe_ports(&p.untrusted_public_ports)
            ),
        ));
    }
    Ok(Assessment::new(out, None))
}

fn classify(c: &FieldChange<'_>) -> Classification {
    let parts: Vec<&str> = c.path.trim_start_matches('/').split('/').collect();
    let after_attachments = || -> Vec<Attachment> {
        c.after_doc
            .get("attachments")
            .and_then(|a| serde_json::from_value(a.clone()).ok())
            .unwrap_or_default()
    };
    let world_open_after = || {
        c.after_doc
            .get("world_open_ports")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
    };
    match parts.as_slice() {
        ["world_open_ports", _] => classify_risky_member(
            c.before,
            c.after,
            Classification::weakened(exposure(&after_attachments()).0),
        ),
        ["untrusted_public_ports", _] => {
            classify_risky_member(c.before, c.after, Classification::weakened(Severity::Medium))
        }
        ["attachments", _] if c.before.is_null() && world_open_after() => {
            let public = c.after.get("public_ip").and_then(Value::as_bool).unwrap_or(false);
            Classification::weakened(if public { Severity::Critical } else { Severity::High })
        }
        _ => Classification::NEUTRAL,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ChangeClass;
    use serde_json::json;

    fn rule(proto: &str, from: Option<i32>, to: Option<i32>, src: &str) -> Rule {
        Rule {
            protocol: proto.into(),
            from_port: from,
            to_port: to,
            source: src.into(),
        }
    }

    #[test]
    fn rule_coverage_table() {
        let cases = [
            (rule("tcp", Some(9200), Some(9200), "0.0.0.0/0"), 9200, true),
            (rule("tcp", Some(9000), Some(9999), "0.0.0.0/0"), 9200, true),
            (rule("tcp", Some(0), Some(65535), "0.0.0.0/0"), 6379, true),
            (rule("-1", None, None, "0.0.0.0/0"), 5432, true),
            (rule("6", Some(5432), Some(5432), "::/0"), 5432, true),
            (rule("udp", Some(0), Some(65535), "0.0.0.0/0"), 11211, false),
            (rule("tcp", Some(22), Some(22), "0.0.0.0/0"), 9200, false),
        ];
        for (r, port, want) in cases {
            assert_eq!(rule_covers(&r, port), want, "{r:?} port {port}");
        }
    }

    #[test]
    fn world_and_public_ranges() {
        let cases = [
            ("0.0.0.0/0", true),
            ("::/0", true),
            ("0.0.0.0/1", true),
            ("10.0.0.0/8", false),
            ("203.0.113.0/24", false),
            ("pl-123", false),
            ("sg-1", false),
            ("2001:db8::/16", true),
        ];
        for (s, want) in cases {
            assert_eq!(is_world(s), want, "{s}");
        }
        let trusted = vec![parse_cidr("198.51.100.0/24").unwrap()];
        assert!(is_untrusted_public("203.0.113.0/24", &trusted));
        assert!(
            !is_untrusted_public("198.51.100.128/25", &trusted),
            "inside a trusted range"
        );
        assert!(!is_untrusted_public("10.1.0.0/16", &trusted), "private");
        assert!(!is_untrusted_public("0.0.0.0/0", &trusted), "world is the other rule");
    }

    #[test]
    fn attachment_kinds() {
        assert_eq!(attached_to("", "", Some("i-1")), "instance");
        assert_eq!(attached_to("RDSNetworkInterface", "amazon-rds", None), "rds");
        assert_eq!(attached_to("ES orders", "amazon-elasticsearch", None), "opensearch");
        assert_eq!(
            attached_to("ElastiCache cache-1", "amazon-elasticache", None),
            "elasticache"
        );
        assert_eq!(attached_to("NAT", "", None), "other");
    }

    fn posture(rules: Vec<Rule>, attachments: Vec<Attachment>) -> Value {
        let world = open_ports(&rules, &[8086], is_world);
        let public = open_ports(&rules, &[8086], |s| is_untrusted_public(s, &[]));
        serde_json::to_value(Posture {
            owner_account: "111122223333".into(),
            group_id: "sg-1".into(),
            group_name: "search".into(),
            vpc_id: Some("vpc-1".into()),
            ingress: rules,
            attachments,
            world_open_ports: world,
            untrusted_public_ports: public,
        })
        .unwrap()
    }

    fn att(public: bool) -> Attachment {
        Attachment {
            interface_id: "eni-1".into(),
            attached_to: "instance".into(),
            resource: Some("i-1".into()),
            public_ip: public,
        }
    }

    #[test]
    fn assess_table() {
        let open = || vec![rule("tcp", Some(9200), Some(9200), "0.0.0.0/0")];
        let cases: Vec<(&str, Value, Vec<(&str, Severity, bool)>)> = vec![
            (
                "closed",
                posture(vec![rule("tcp", Some(9200), Some(9200), "10.0.0.0/8")], vec![att(true)]),
                vec![],
            ),
            (
                "open, public host",
                posture(open(), vec![att(true)]),
                vec![("ec2.sg.datastore_open_to_world", Severity::Critical, true)],
            ),
            (
                "open, private host",
                posture(open(), vec![att(false)]),
                vec![("ec2.sg.datastore_open_to_world", Severity::High, false)],
            ),
            (
                "open, attached to nothing",
                posture(open(), vec![]),
                vec![("ec2.sg.datastore_open_to_world", Severity::Low, false)],
            ),
            (
                "ssh to world is not a data store",
                posture(vec![rule("tcp", Some(22), Some(22), "0.0.0.0/0")], vec![att(true)]),
                vec![],
            ),
            (
                "configured extra port",
                posture(vec![rule("tcp", Some(8086), Some(8086), "::/0")], vec![att(true)]),
                vec![("ec2.sg.datastore_open_to_world", Severity::Critical, true)],
            ),
            (
                "public range",
                posture(
                    vec![rule("tcp", Some(5432), Some(5432), "203.0.113.0/24")],
                    vec![att(true)],
                ),
                vec![("ec2.sg.datastore_open_to_public_range", Severity::Medium, false)],
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
        let f = assess(&posture(open(), vec![att(true)])).unwrap().findings;
        assert!(
            f[0].message.contains("Elasticsearch/OpenSearch 9200 from 0.0.0.0/0"),
            "{}",
            f[0].message
        );
        assert!(f[0].message.contains("instance i-1 (public IP)"), "{}", f[0].message);
    }

    #[test]
    fn classify_table() {
        let open_public = posture(vec![rule("tcp", Some(9200), Some(9200), "0.0.0.0/0")], vec![att(true)]);
        let port = json!({"port": 9200, "service": "Elasticsearch/OpenSearch", "source": "0.0.0.0/0"});
        let cases: Vec<(&str, Value, Value, ChangeClass, Severity)> = vec![
            (
                "/world_open_ports/0",
                Value::Null,
                port.clone(),
                ChangeClass::Weakened,
                Severity::Critical,
            ),
            (
                "/world_open_ports/0",
                port.clone(),
                Value::Null,
                ChangeClass::Strengthened,
                Severity::Low,
            ),
            (
                "/attachments/0",
                Value::Null,
                serde_json::to_value(att(true)).unwrap(),
                ChangeClass::Weakened,
                Severity::Critical,
            ),
            (
                "/ingress/0",
                Value::Null,
                json!({"protocol": "tcp"}),
                ChangeClass::Neutral,
                Severity::Low,
            ),
        ];
        crate::sources::common::check_classify(classify, &open_public, &cases);
    }
}
