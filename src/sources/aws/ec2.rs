//! EC2 security groups: ingress rules (prefix lists resolved to their entries, groups to the
//! interfaces they admit), what each group is attached to (network interfaces → instance / RDS /
//! OpenSearch / ElastiCache, every public address, whether the subnet routes to an internet
//! gateway), and which data-store ports they open to the internet.

use super::Ctx;
use super::network::{Interface, RegionNetwork};
use crate::model::{Classification, Finding, Resource, Severity};
use crate::sources::common::classify_risky_member;
use crate::sources::{Assessment, FieldChange, ResourceKind, Samples};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
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
            world_open_ports: open_ports(&rules, &[], as_written, is_world),
            untrusted_public_ports: open_ports(&rules, &[], as_written, |s| is_untrusted_public(s, &[])),
            ingress: rules,
            attachments: vec![Attachment {
                interface_id: "eni-1".into(),
                attached_to: "instance".into(),
                resource: Some("i-1".into()),
                public_ip,
                public_ipv6: false,
                no_internet_route: vec![],
            }],
            prefix_lists: BTreeMap::new(),
            admits_groups: BTreeMap::new(),
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
    /// A public IPv4 address: the interface's own, or an Elastic IP on a secondary address.
    pub public_ip: bool,
    /// A global IPv6 address.
    #[serde(default, skip_serializing_if = "is_false")]
    pub public_ipv6: bool,
    /// Address families ("ipv4", "ipv6") the interface has a public address in, but whose
    /// subnet has no route to an internet gateway: one route away from the internet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub no_internet_route: Vec<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Attachment {
    fn of(i: &Interface, routes: &super::network::Routes) -> Attachment {
        let route = routes.internet_route(i.subnet_id.as_deref(), i.vpc_id.as_deref());
        let mut no_route = Vec::new();
        if !i.public_v4.is_empty() && !route.v4 {
            no_route.push("ipv4".to_string());
        }
        if !i.public_v6.is_empty() && !route.v6 {
            no_route.push("ipv6".to_string());
        }
        Attachment {
            interface_id: i.id.clone(),
            attached_to: i.attached_to.to_string(),
            resource: i.resource.clone(),
            public_ip: !i.public_v4.is_empty(),
            public_ipv6: !i.public_v6.is_empty(),
            no_internet_route: no_route,
        }
    }

    /// Can the internet reach this interface over `family` ("ipv4"/"ipv6")?
    fn reachable(&self, family: &str) -> bool {
        let has = match family {
            "ipv6" => self.public_ipv6,
            _ => self.public_ip,
        };
        has && !self.no_internet_route.iter().any(|f| f == family)
    }

    fn has_public_address(&self) -> bool {
        self.public_ip || self.public_ipv6
    }
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
    /// The customer-managed prefix lists the rules name, with their entries: editing a list is
    /// a change to every group that uses it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub prefix_lists: BTreeMap<String, Vec<String>>,
    /// Groups the rules admit, with the interfaces in them (what a group-to-group rule lets in).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub admits_groups: BTreeMap<String, Vec<String>>,
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

pub fn resources(net: &RegionNetwork, ctx: &Ctx<'_>, extra_ports: &[u16]) -> Vec<Resource> {
    let trusted: Vec<(IpAddr, u8)> = ctx.trust.cidrs.iter().filter_map(|c| parse_cidr(c)).collect();
    let members = net.members();
    let expand = |source: &str| net.expand(source);
    net.groups
        .iter()
        .map(|g| {
            let mut attachments: Vec<Attachment> = members
                .get(g.id.as_str())
                .into_iter()
                .flatten()
                .map(|i| Attachment::of(i, &net.routes))
                .collect();
            attachments.sort();
            attachments.dedup();
            let mut prefix_lists = BTreeMap::new();
            let mut admits_groups = BTreeMap::new();
            for r in &g.rules {
                if let Some(pl) = net.prefix_lists.get(&r.source).filter(|pl| !pl.aws_managed) {
                    prefix_lists.insert(r.source.clone(), pl.cidrs.clone());
                } else if r.source.starts_with("sg-") {
                    let mut admitted: Vec<String> = members
                        .get(r.source.as_str())
                        .into_iter()
                        .flatten()
                        .map(|i| match &i.resource {
                            Some(res) => format!("{} ({} {res})", i.id, i.attached_to),
                            None => format!("{} ({})", i.id, i.attached_to),
                        })
                        .collect();
                    admitted.sort();
                    admits_groups.insert(r.source.clone(), admitted);
                } else if r.source.contains("/sg-") {
                    admits_groups.insert(
                        r.source.clone(),
                        vec!["members are in another account and not visible from this one".to_string()],
                    );
                }
            }
            let p = Posture {
                owner_account: ctx.account.to_string(),
                group_id: g.id.clone(),
                group_name: g.name.clone(),
                vpc_id: g.vpc_id.clone(),
                ingress: g.rules.clone(),
                attachments,
                world_open_ports: open_ports(&g.rules, extra_ports, expand, |s| is_world(s)),
                untrusted_public_ports: open_ports(&g.rules, extra_ports, expand, |s| is_untrusted_public(s, &trusted)),
                prefix_lists,
                admits_groups,
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

/// Data-store ports the rules open to sources that `source_matches`, each rule source first
/// expanded to the ranges it stands for (a prefix list to its entries): (range, label) pairs.
pub fn open_ports(
    rules: &[Rule],
    extra: &[u16],
    expand: impl Fn(&str) -> Vec<(String, String)>,
    source_matches: impl Fn(&str) -> bool,
) -> Vec<OpenPort> {
    let ports: Vec<(u16, &str)> = DATA_STORE_PORTS
        .iter()
        .copied()
        .chain(extra.iter().map(|p| (*p, "configured data store")))
        .collect();
    let mut out = Vec::new();
    for r in rules {
        for (range, label) in expand(&r.source) {
            if !source_matches(&range) {
                continue;
            }
            for &(port, service) in ports.iter().filter(|(port, _)| rule_covers(r, *port)) {
                out.push(OpenPort {
                    port,
                    service: service.to_string(),
                    source: label.clone(),
                });
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// A rule source taken as it is (no prefix lists to resolve): for samples and tests.
pub fn as_written(source: &str) -> Vec<(String, String)> {
    vec![(source.to_string(), source.to_string())]
}

/// The address family of an open port's source: "ipv6" for IPv6 ranges, else "ipv4".
fn family(source: &str) -> &'static str {
    // Labels of prefix-list entries read "pl-… (range)".
    let range = source
        .rsplit_once(" (")
        .map(|(_, r)| r.trim_end_matches(')'))
        .unwrap_or(source);
    if range.contains(':') { "ipv6" } else { "ipv4" }
}

/// How bad a world-open data-store port is, given what the group protects: (severity,
/// exposed, why). Critical only when an attached interface has a public address in the
/// family of an open range and its subnet routes that family to an internet gateway.
fn exposure(attachments: &[Attachment], open: &[OpenPort]) -> (Severity, bool) {
    let families: BTreeSet<&str> = open.iter().map(|p| family(&p.source)).collect();
    if attachments.iter().any(|a| families.iter().any(|f| a.reachable(f))) {
        (Severity::Critical, true)
    } else if !attachments.is_empty() {
        // Attached: inside the VPC, or one route (or one address) away from the internet.
        (Severity::High, false)
    } else {
        (Severity::Low, false)
    }
}

fn describe_attachment(a: &Attachment) -> String {
    let mut addresses = Vec::new();
    if a.public_ip {
        addresses.push("public IP");
    }
    if a.public_ipv6 {
        addresses.push("public IPv6");
    }
    let mut text = format!("{} {}", a.attached_to, a.resource.as_deref().unwrap_or(&a.interface_id));
    if !addresses.is_empty() {
        text.push_str(&format!(" ({}", addresses.join(", ")));
        if !a.no_internet_route.is_empty() {
            text.push_str(&format!("; no internet route for {}", a.no_internet_route.join(", ")));
        }
        text.push(')');
    }
    text
}

/// The command that closes one open port: revoke the rule, or take the entry out of the prefix
/// list it comes from.
fn fix_for(group: &str, port: &OpenPort) -> String {
    if let Some((list, range)) = port.source.split_once(" (") {
        let range = range.trim_end_matches(')');
        return format!(
            "Take {range} out of prefix list {list} (it changes every group that uses the list), e.g. \
             aws ec2 modify-managed-prefix-list --prefix-list-id {list} --current-version <version> --remove-entries Cidr={range}"
        );
    }
    let permission = if family(&port.source) == "ipv6" {
        format!(
            "--ip-permissions IpProtocol=tcp,FromPort={p},ToPort={p},Ipv6Ranges=[{{CidrIpv6={}}}]",
            port.source,
            p = port.port
        )
    } else {
        format!("--protocol tcp --port {} --cidr {}", port.port, port.source)
    };
    format!(
        "Remove the rule or narrow it to your own ranges, e.g. aws ec2 revoke-security-group-ingress --group-id {group} {permission}"
    )
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
        let (severity, exposed) = exposure(&p.attachments, &p.world_open_ports);
        let behind = if p.attachments.is_empty() {
            "It is attached to nothing yet (attaching it to a public host will make this critical)".to_string()
        } else {
            let mut text = format!(
                "It is attached to {}",
                p.attachments
                    .iter()
                    .map(describe_attachment)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            if !exposed && p.attachments.iter().any(Attachment::has_public_address) {
                text.push_str(
                    ": no public address of a family the rule opens has a route to an internet gateway, so it is one route away from the internet",
                );
            }
            text
        };
        let first = &p.world_open_ports[0];
        out.push(Finding::new(
            "ec2.sg.datastore_open_to_world",
            severity,
            exposed,
            format!(
                "Security group {} ({}) lets the internet reach {}. {behind}. {}",
                p.group_id,
                p.group_name,
                describe_ports(&p.world_open_ports),
                fix_for(&p.group_id, first)
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
    // An exposed AWS finding is an internet-facing one (public address and route, or a
    // public endpoint that lets anyone in).
    let reach = out.iter().any(|f| f.exposed).then_some(crate::net::Reach::Internet);
    Ok(Assessment::new(out, reach))
}

fn classify(c: &FieldChange<'_>) -> Classification {
    let parts: Vec<&str> = c.path.trim_start_matches('/').split('/').collect();
    let after_attachments = || -> Vec<Attachment> {
        c.after_doc
            .get("attachments")
            .and_then(|a| serde_json::from_value(a.clone()).ok())
            .unwrap_or_default()
    };
    let world_open_after = || -> Vec<OpenPort> {
        c.after_doc
            .get("world_open_ports")
            .and_then(|a| serde_json::from_value(a.clone()).ok())
            .unwrap_or_default()
    };
    match parts.as_slice() {
        ["world_open_ports", _] => classify_risky_member(
            c.before,
            c.after,
            Classification::weakened(exposure(&after_attachments(), &world_open_after()).0),
        ),
        ["untrusted_public_ports", _] => {
            classify_risky_member(c.before, c.after, Classification::weakened(Severity::Medium))
        }
        // A new interface behind a world-open group, or an existing one that gained a public
        // address or an internet route: as bad as the exposure it brings.
        ["attachments", _] if c.after.is_object() && !world_open_after().is_empty() => {
            match serde_json::from_value::<Attachment>(c.after.clone()) {
                Ok(a) => {
                    let (severity, _) = exposure(std::slice::from_ref(&a), &world_open_after());
                    // Sets are compared as sets: a changed interface shows as one removed and one
                    // added, so look it up by id in the document before.
                    let before: Vec<Attachment> = c
                        .before_doc
                        .get("attachments")
                        .and_then(|v| serde_json::from_value(v.clone()).ok())
                        .unwrap_or_default();
                    let before_ports: Vec<OpenPort> = c
                        .before_doc
                        .get("world_open_ports")
                        .and_then(|v| serde_json::from_value(v.clone()).ok())
                        .unwrap_or_default();
                    let was = before
                        .iter()
                        .find(|b| b.interface_id == a.interface_id)
                        .filter(|_| !before_ports.is_empty())
                        .map(|b| exposure(std::slice::from_ref(b), &before_ports).0);
                    match was {
                        Some(w) if w >= severity => Classification::NEUTRAL,
                        _ => Classification::weakened(severity),
                    }
                }
                Err(_) => Classification::weakened(Severity::Critical),
            }
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
        let expand = |source: &str| match source {
            "pl-office" => vec![
                ("0.0.0.0/0".to_string(), "pl-office (0.0.0.0/0)".to_string()),
                ("198.51.100.0/24".to_string(), "pl-office (198.51.100.0/24)".to_string()),
            ],
            "pl-s3" => vec![],
            other => as_written(other),
        };
        let world = open_ports(&rules, &[8086], expand, is_world);
        let public = open_ports(&rules, &[8086], expand, |s| is_untrusted_public(s, &[]));
        serde_json::to_value(Posture {
            owner_account: "111122223333".into(),
            group_id: "sg-1".into(),
            group_name: "search".into(),
            vpc_id: Some("vpc-1".into()),
            ingress: rules,
            attachments,
            world_open_ports: world,
            untrusted_public_ports: public,
            prefix_lists: BTreeMap::new(),
            admits_groups: BTreeMap::new(),
        })
        .unwrap()
    }

    fn att(public: bool) -> Attachment {
        Attachment {
            interface_id: "eni-1".into(),
            attached_to: "instance".into(),
            resource: Some("i-1".into()),
            public_ip: public,
            public_ipv6: false,
            no_internet_route: vec![],
        }
    }

    fn att6(routed: bool) -> Attachment {
        Attachment {
            public_ipv6: true,
            no_internet_route: if routed { vec![] } else { vec!["ipv6".into()] },
            ..att(false)
        }
    }

    fn unrouted() -> Attachment {
        Attachment {
            no_internet_route: vec!["ipv4".into()],
            ..att(true)
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
                "configured extra port, IPv6 rule, IPv6 host",
                posture(vec![rule("tcp", Some(8086), Some(8086), "::/0")], vec![att6(true)]),
                vec![("ec2.sg.datastore_open_to_world", Severity::Critical, true)],
            ),
            (
                "IPv6 rule, host with only a public IPv4: not reachable that way",
                posture(vec![rule("tcp", Some(8086), Some(8086), "::/0")], vec![att(true)]),
                vec![("ec2.sg.datastore_open_to_world", Severity::High, false)],
            ),
            (
                "IPv6 rule, IPv6 host, no ::/0 route to an internet gateway",
                posture(vec![rule("tcp", Some(8086), Some(8086), "::/0")], vec![att6(false)]),
                vec![("ec2.sg.datastore_open_to_world", Severity::High, false)],
            ),
            (
                "public IP but its subnet has no internet route: one route away",
                posture(open(), vec![unrouted()]),
                vec![("ec2.sg.datastore_open_to_world", Severity::High, false)],
            ),
            (
                "one routed host among unrouted ones",
                posture(
                    open(),
                    vec![
                        unrouted(),
                        Attachment {
                            interface_id: "eni-2".into(),
                            ..att(true)
                        },
                    ],
                ),
                vec![("ec2.sg.datastore_open_to_world", Severity::Critical, true)],
            ),
            (
                "customer prefix list holding 0.0.0.0/0",
                posture(vec![rule("tcp", Some(5432), Some(5432), "pl-office")], vec![att(true)]),
                vec![
                    ("ec2.sg.datastore_open_to_world", Severity::Critical, true),
                    ("ec2.sg.datastore_open_to_public_range", Severity::Medium, false),
                ],
            ),
            (
                "AWS-managed prefix list: service ranges",
                posture(vec![rule("tcp", Some(5432), Some(5432), "pl-s3")], vec![att(true)]),
                vec![],
            ),
            (
                "group reference",
                posture(vec![rule("tcp", Some(5432), Some(5432), "sg-web")], vec![att(true)]),
                vec![],
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
        assert!(
            f[0].message.contains("--port 9200 --cidr 0.0.0.0/0"),
            "{}",
            f[0].message
        );
        let f = assess(&posture(open(), vec![unrouted()])).unwrap().findings;
        assert!(f[0].message.contains("no internet route for ipv4"), "{}", f[0].message);
        assert!(f[0].message.contains("one route away"), "{}", f[0].message);
        let f = assess(&posture(
            vec![rule("tcp", Some(5432), Some(5432), "pl-office")],
            vec![att(true)],
        ))
        .unwrap()
        .findings;
        assert!(
            f[0].message.contains("PostgreSQL 5432 from pl-office (0.0.0.0/0)"),
            "{}",
            f[0].message
        );
        assert!(
            f[0].message
                .contains("modify-managed-prefix-list --prefix-list-id pl-office"),
            "{}",
            f[0].message
        );
        let f = assess(&posture(
            vec![rule("tcp", Some(8086), Some(8086), "::/0")],
            vec![att6(true)],
        ))
        .unwrap()
        .findings;
        assert!(
            f[0].message.contains("Ipv6Ranges=[{CidrIpv6=::/0}]"),
            "{}",
            f[0].message
        );
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
                "/ingress/0",
                Value::Null,
                json!({"protocol": "tcp"}),
                ChangeClass::Neutral,
                Severity::Low,
            ),
        ];
        crate::sources::common::check_classify(classify, &open_public, &cases);
    }

    /// Interfaces are compared by id across the two documents: gaining an internet route or a
    /// public address is a weakening, the same exposure under a new spelling is not.
    #[test]
    fn attachment_changes_are_judged_by_the_exposure_they_bring() {
        let open = || vec![rule("tcp", Some(9200), Some(9200), "0.0.0.0/0")];
        let cases: Vec<(&str, Value, Value, Attachment, ChangeClass, Severity)> = vec![
            (
                "internet route added",
                posture(open(), vec![unrouted()]),
                posture(open(), vec![att(true)]),
                att(true),
                ChangeClass::Weakened,
                Severity::Critical,
            ),
            (
                "new public host",
                posture(open(), vec![]),
                posture(open(), vec![att(true)]),
                att(true),
                ChangeClass::Weakened,
                Severity::Critical,
            ),
            (
                "new private host",
                posture(open(), vec![]),
                posture(open(), vec![att(false)]),
                att(false),
                ChangeClass::Weakened,
                Severity::High,
            ),
            (
                "route removed: no worse",
                posture(open(), vec![att(true)]),
                posture(open(), vec![unrouted()]),
                unrouted(),
                ChangeClass::Neutral,
                Severity::Low,
            ),
            (
                "group not open: attachments do not matter",
                posture(vec![], vec![]),
                posture(vec![], vec![att(true)]),
                att(true),
                ChangeClass::Neutral,
                Severity::Low,
            ),
        ];
        for (name, before_doc, after_doc, added, class, severity) in cases {
            let after = serde_json::to_value(&added).unwrap();
            let got = classify(&FieldChange {
                path: "/attachments/0",
                before: &Value::Null,
                after: &after,
                before_doc: &before_doc,
                after_doc: &after_doc,
            });
            assert_eq!((got.class, got.severity), (class, severity), "{name}");
        }
    }
}
