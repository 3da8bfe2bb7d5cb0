//! RDS instances and Aurora/Multi-AZ clusters: public accessibility, whether its subnets route
//! to an internet gateway, the security groups in front of the port (prefix lists resolved),
//! storage encryption, IAM authentication.

use super::ec2::{is_world, rule_covers};
use super::network::RegionNetwork;
use super::{Ctx, sdk_error};
use crate::model::{Classification, Finding, Resource, Severity};
use crate::sources::common::classify_flag;
use crate::sources::{Assessment, FieldChange, ResourceKind, Samples};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const INSTANCE_KIND: ResourceKind = ResourceKind {
    name: "rds",
    assess,
    classify,
    samples,
    describe,
};
pub const CLUSTER_KIND: ResourceKind = ResourceKind {
    name: "rds-cluster",
    assess,
    classify,
    samples,
    describe,
};

fn describe(c: &crate::model::Change) -> Option<String> {
    Some(match crate::diff::top_field(&c.path) {
        "publicly_accessible" if c.after == true => "the database was made publicly accessible".into(),
        "open_to_world_on_port" if c.after == true => "a security group opens its port to the internet".into(),
        "no_internet_route" if !c.after.as_bool().unwrap_or(false) => {
            "its subnets route to an internet gateway again".into()
        }
        "storage_encrypted" if c.after == false => "storage encryption is off".into(),
        _ => return None,
    })
}

fn samples() -> Samples {
    let doc = |public: bool| {
        serde_json::json!({"owner_account": "111122223333", "engine": "postgres", "publicly_accessible": public, "port": 5432,
            "security_groups": ["sg-1"], "open_to_world_on_port": public, "storage_encrypted": true, "iam_auth": false})
    };
    Samples {
        safe: doc(false),
        exposed: doc(true),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Posture {
    pub owner_account: String,
    pub engine: Option<String>,
    /// `None` for cluster types where AWS does not report it (Aurora: per instance).
    pub publicly_accessible: Option<bool>,
    pub port: Option<i32>,
    pub security_groups: Vec<String>,
    /// Derived: one of its security groups opens the database port to the internet.
    pub open_to_world_on_port: bool,
    /// Publicly accessible, but none of its subnets routes to an internet gateway: the public
    /// endpoint answers nobody until someone adds the route ("one route away from public").
    /// Unknown subnets count as routed.
    #[serde(default, skip_serializing_if = "is_false")]
    pub no_internet_route: bool,
    pub storage_encrypted: bool,
    pub iam_auth: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn world_open(net: &RegionNetwork, ids: &[String], port: Option<i32>) -> bool {
    let Some(port) = port.and_then(|p| u16::try_from(p).ok()) else {
        return false;
    };
    net.groups
        .iter()
        .filter(|g| ids.contains(&g.id))
        .flat_map(|g| &g.rules)
        .filter(|r| rule_covers(r, port))
        .any(|r| net.expand(&r.source).iter().any(|(range, _)| is_world(range)))
}

/// None of the subnets routes to an internet gateway (for either family). A database without
/// subnet information counts as routed.
fn unrouted(net: &RegionNetwork, vpc: Option<&str>, subnets: &[&str]) -> bool {
    !subnets.is_empty()
        && subnets.iter().all(|s| {
            let r = net.routes.internet_route(Some(s), vpc);
            !r.v4 && !r.v6
        })
}

pub async fn collect(
    client: &aws_sdk_rds::Client,
    ctx: &Ctx<'_>,
    groups: &RegionNetwork,
) -> anyhow::Result<Vec<Resource>> {
    let mut out = Vec::new();
    let mut pages = client.describe_db_instances().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page =
            page.map_err(|e| anyhow::anyhow!("listing DB instances (rds:DescribeDBInstances): {}", sdk_error(&e)))?;
        for db in page.db_instances() {
            let Some(id) = db.db_instance_identifier() else {
                continue;
            };
            let mut sgs: Vec<String> = db
                .vpc_security_groups()
                .iter()
                .filter_map(|g| g.vpc_security_group_id().map(str::to_string))
                .collect();
            sgs.sort();
            let port = db
                .endpoint()
                .and_then(|e| e.port())
                .or(db.db_instance_port().filter(|p| *p != 0));
            let public = db.publicly_accessible().unwrap_or(false);
            let subnet_group = db.db_subnet_group();
            let subnets: Vec<&str> = subnet_group
                .map(|g| g.subnets().iter().filter_map(|s| s.subnet_identifier()).collect())
                .unwrap_or_default();
            let p = Posture {
                owner_account: ctx.account.to_string(),
                engine: db.engine().map(str::to_string),
                publicly_accessible: Some(public),
                port,
                open_to_world_on_port: world_open(groups, &sgs, port),
                no_internet_route: public && unrouted(groups, subnet_group.and_then(|g| g.vpc_id()), &subnets),
                security_groups: sgs,
                storage_encrypted: db.storage_encrypted().unwrap_or(false),
                iam_auth: db.iam_database_authentication_enabled().unwrap_or(false),
            };
            out.push(ctx.resource(INSTANCE_KIND.name, id, serde_json::to_value(p)?));
        }
    }
    let mut pages = client.describe_db_clusters().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page =
            page.map_err(|e| anyhow::anyhow!("listing DB clusters (rds:DescribeDBClusters): {}", sdk_error(&e)))?;
        for c in page.db_clusters() {
            let Some(id) = c.db_cluster_identifier() else { continue };
            let mut sgs: Vec<String> = c
                .vpc_security_groups()
                .iter()
                .filter_map(|g| g.vpc_security_group_id().map(str::to_string))
                .collect();
            sgs.sort();
            let p = Posture {
                owner_account: ctx.account.to_string(),
                engine: c.engine().map(str::to_string),
                publicly_accessible: c.publicly_accessible(),
                port: c.port(),
                open_to_world_on_port: world_open(groups, &sgs, c.port()),
                // Clusters name their subnet group without its subnets; reading it is one more
                // call per cluster: until then a public cluster counts as routed.
                no_internet_route: false,
                security_groups: sgs,
                storage_encrypted: c.storage_encrypted().unwrap_or(false),
                iam_auth: c.iam_database_authentication_enabled().unwrap_or(false),
            };
            out.push(ctx.resource(CLUSTER_KIND.name, id, serde_json::to_value(p)?));
        }
    }
    Ok(out)
}

fn assess(posture: &Value) -> Result<Assessment, String> {
    let p: Posture = serde_json::from_value(posture.clone()).map_err(|e| format!("not an rds posture: {e}"))?;
    let mut out = Vec::new();
    let port = p.port.map(|x| x.to_string()).unwrap_or_else(|| "?".into());
    if p.publicly_accessible == Some(true) && p.no_internet_route {
        out.push(Finding::new(
            "rds.publicly_accessible",
            Severity::Medium,
            false,
            format!(
                "The database is publicly accessible, but none of its subnets routes to an internet gateway: it is one route away from public{}. \
                 Set PubliclyAccessible=false so that a route added later does not expose it.",
                if p.open_to_world_on_port {
                    format!(
                        ", and its security groups ({}) already open port {port} to the internet",
                        p.security_groups.join(", ")
                    )
                } else {
                    String::new()
                }
            ),
        ));
    } else if p.publicly_accessible == Some(true) {
        // Kept while the endpoint is public, so closing the world rule alone reads as a partial
        // fix (the world rule resolved, the public endpoint still open), not as a new finding.
        out.push(Finding::new(
            "rds.publicly_accessible",
            Severity::High,
            false,
            format!(
                "The database has a public endpoint; only its security groups ({}) keep the internet out of port {port}. Set PubliclyAccessible=false unless it must be public.",
                p.security_groups.join(", ")
            ),
        ));
        if p.open_to_world_on_port {
            out.push(Finding::new(
                "rds.public.open_to_world",
                Severity::Critical,
                // Reachable, but RDS always asks for a password: not "exposed" (README).
                false,
                format!(
                    "The database is publicly accessible, its subnets route to an internet gateway and its security group ({}) opens port {port} to the internet: \
                     anyone can try passwords against it. Set PubliclyAccessible=false (aws rds modify-db-instance --no-publicly-accessible) or close the rule.",
                    p.security_groups.join(", ")
                ),
            ));
        }
    }
    if !p.storage_encrypted {
        out.push(Finding::new(
            "rds.storage.unencrypted",
            Severity::Medium,
            false,
            "Storage is not encrypted: snapshots and disks hold the data in clear.",
        ));
    }
    // An exposed AWS finding is an internet-facing one (public address and route, or a
    // public endpoint that lets anyone in).
    let reach = out.iter().any(|f| f.exposed).then_some(crate::net::Reach::Internet);
    Ok(Assessment::new(out, reach))
}

fn classify(c: &FieldChange<'_>) -> Classification {
    match crate::diff::top_field(c.path) {
        "publicly_accessible" | "open_to_world_on_port" => {
            // As bad as what it leads to: no worse than medium while no route leads in.
            let severity = if c.after_doc["no_internet_route"] == true {
                Severity::Medium
            } else if c.after_doc["publicly_accessible"] == true && c.after_doc["open_to_world_on_port"] == true {
                Severity::Critical
            } else {
                Severity::High
            };
            classify_flag(c.before, c.after, false, Classification::weakened(severity))
        }
        // The route to an internet gateway came back (the field disappears): the public
        // endpoint answers the internet again.
        "no_internet_route" => {
            let severity = if c.after_doc["open_to_world_on_port"] == true {
                Severity::Critical
            } else {
                Severity::High
            };
            // Absent means false (the field is only written when true).
            let flag = |v: &Value| Value::Bool(v.as_bool().unwrap_or(false));
            classify_flag(
                &flag(c.before),
                &flag(c.after),
                true,
                Classification::weakened(severity),
            )
        }
        "storage_encrypted" => classify_flag(c.before, c.after, true, Classification::weakened(Severity::Medium)),
        "iam_auth" => classify_flag(c.before, c.after, true, Classification::weakened(Severity::Low)),
        _ => Classification::NEUTRAL,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ChangeClass;
    use serde_json::json;

    fn p(public: Option<bool>, open: bool, enc: bool) -> Value {
        json!({"owner_account": "1", "engine": "postgres", "publicly_accessible": public, "port": 5432, "security_groups": ["sg-1"],
               "open_to_world_on_port": open, "storage_encrypted": enc, "iam_auth": false})
    }

    fn without_route(mut v: Value) -> Value {
        v["no_internet_route"] = json!(true);
        v
    }

    #[test]
    fn assess_table() {
        let cases: Vec<(Value, Vec<(&str, Severity)>)> = vec![
            (p(Some(false), false, true), vec![]),
            (p(Some(false), true, true), vec![]),
            (
                p(Some(true), false, true),
                vec![("rds.publicly_accessible", Severity::High)],
            ),
            (
                p(Some(true), true, true),
                vec![
                    ("rds.publicly_accessible", Severity::High),
                    ("rds.public.open_to_world", Severity::Critical),
                ],
            ),
            (
                p(None, true, false),
                vec![("rds.storage.unencrypted", Severity::Medium)],
            ),
            // Prowler's rule too: a public endpoint in subnets without an internet route is one
            // route away from public, not open.
            (
                without_route(p(Some(true), false, true)),
                vec![("rds.publicly_accessible", Severity::Medium)],
            ),
            (
                without_route(p(Some(true), true, true)),
                vec![("rds.publicly_accessible", Severity::Medium)],
            ),
        ];
        for (posture, want) in cases {
            let got: Vec<(String, Severity)> = assess(&posture)
                .unwrap()
                .findings
                .into_iter()
                .map(|f| (f.rule, f.severity))
                .collect();
            let want: Vec<(String, Severity)> = want.into_iter().map(|(r, s)| (r.to_string(), s)).collect();
            assert_eq!(got, want, "{posture}");
        }
    }

    #[test]
    fn world_open_needs_a_world_rule_on_the_port() {
        use super::super::ec2::Rule;
        use super::super::network::{Group, PrefixList, Routes};
        let g = |src: &str, from: i32, to: i32| {
            let mut prefix_lists = std::collections::BTreeMap::new();
            prefix_lists.insert(
                "pl-open".to_string(),
                PrefixList {
                    name: "partners".into(),
                    aws_managed: false,
                    cidrs: vec!["0.0.0.0/0".into()],
                },
            );
            RegionNetwork {
                groups: vec![Group {
                    id: "sg-1".into(),
                    name: "db".into(),
                    vpc_id: None,
                    rules: vec![Rule {
                        protocol: "tcp".into(),
                        from_port: Some(from),
                        to_port: Some(to),
                        source: src.into(),
                    }],
                }],
                interfaces: vec![],
                prefix_lists,
                routes: Routes::default(),
            }
        };
        let ids = vec!["sg-1".to_string()];
        assert!(world_open(&g("0.0.0.0/0", 5432, 5432), &ids, Some(5432)));
        assert!(!world_open(&g("10.0.0.0/8", 5432, 5432), &ids, Some(5432)));
        assert!(
            world_open(&g("pl-open", 5432, 5432), &ids, Some(5432)),
            "through a prefix list"
        );
        assert!(!world_open(&g("0.0.0.0/0", 3306, 3306), &ids, Some(5432)));
        assert!(!world_open(
            &g("0.0.0.0/0", 5432, 5432),
            &["sg-2".to_string()],
            Some(5432)
        ));
    }

    #[test]
    fn classify_table() {
        let d = json!({});
        let cases = [
            ("/publicly_accessible", json!(false), json!(true), ChangeClass::Weakened),
            (
                "/open_to_world_on_port",
                json!(false),
                json!(true),
                ChangeClass::Weakened,
            ),
            (
                "/publicly_accessible",
                json!(true),
                json!(false),
                ChangeClass::Strengthened,
            ),
            ("/storage_encrypted", json!(true), json!(false), ChangeClass::Weakened),
            ("/engine", json!("postgres"), json!("mysql"), ChangeClass::Neutral),
        ];
        for (path, before, after, class) in cases {
            let got = classify(&FieldChange {
                path,
                before: &before,
                after: &after,
                before_doc: &d,
                after_doc: &d,
            });
            assert_eq!(got.class, class, "{path}");
        }
    }

    #[test]
    fn unrouted_needs_every_subnet_without_a_route() {
        let net = |tables: &[(&str, bool, bool)]| RegionNetwork {
            groups: vec![],
            interfaces: vec![],
            prefix_lists: Default::default(),
            routes: super::super::network::Routes::from_tables(tables),
        };
        let n = net(&[
            ("subnet-a", false, false),
            ("subnet-b", true, false),
            ("subnet-c", false, true),
        ]);
        assert!(unrouted(&n, None, &["subnet-a"]));
        assert!(
            !unrouted(&n, None, &["subnet-a", "subnet-b"]),
            "one routed subnet is enough"
        );
        assert!(!unrouted(&n, None, &["subnet-c"]), "an IPv6 route counts");
        assert!(!unrouted(&n, None, &["subnet-unknown"]), "unknown is routed");
        assert!(!unrouted(&n, None, &[]), "no subnets known: routed");
    }

    #[test]
    fn drift_severity_follows_the_route() {
        let cases = [
            (
                "/publicly_accessible",
                json!(false),
                json!(true),
                without_route(p(Some(true), true, true)),
                Severity::Medium,
            ),
            (
                "/publicly_accessible",
                json!(false),
                json!(true),
                p(Some(true), false, true),
                Severity::High,
            ),
            (
                "/publicly_accessible",
                json!(false),
                json!(true),
                p(Some(true), true, true),
                Severity::Critical,
            ),
            (
                "/no_internet_route",
                json!(true),
                Value::Null,
                p(Some(true), true, true),
                Severity::Critical,
            ),
            (
                "/no_internet_route",
                json!(true),
                Value::Null,
                p(Some(true), false, true),
                Severity::High,
            ),
        ];
        for (path, before, after, after_doc, severity) in cases {
            let got = classify(&FieldChange {
                path,
                before: &before,
                after: &after,
                before_doc: &json!({}),
                after_doc: &after_doc,
            });
            assert_eq!(
                (got.class, got.severity),
                (ChangeClass::Weakened, severity),
                "{path} {after_doc}"
            );
        }
        let back = classify(&FieldChange {
            path: "/no_internet_route",
            before: &Value::Null,
            after: &json!(true),
            before_doc: &json!({}),
            after_doc: &json!({}),
        });
        assert_eq!(back.class, ChangeClass::Strengthened, "the route removed");
    }
}
