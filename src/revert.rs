//! `lockwatch revert`: the AWS calls that put a resource's weakened fields back to its approved
//! baseline, and nothing else. Pure: a plan from (kind, baseline, current, rule); the `aws`
//! source makes the calls (`sources::aws::revert`).

use crate::sources::aws::{ec2, opensearch, rds};
use serde_json::Value;

/// One write call.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    /// `opensearch:UpdateDomainConfig` with the baseline's access policy.
    DomainAccessPolicy { domain: String, policy: Value },
    /// `opensearch:UpdateDomainConfig`, `AdvancedSecurityOptions.AnonymousAuthEnabled = false`.
    DomainAnonymousAuthOff { domain: String },
    /// `opensearch:UpdateDomainConfig`, `DomainEndpointOptions.EnforceHTTPS = true`.
    DomainEnforceHttps { domain: String },
    /// `ec2:RevokeSecurityGroupIngress` of exactly one rule added since the baseline.
    RevokeIngress { group_id: String, rule: ec2::Rule },
    /// `rds:ModifyDBInstance`, `PubliclyAccessible = false`.
    DbPrivate { identifier: String },
}

impl Call {
    /// The call as an operator would type it with the AWS CLI.
    pub fn show(&self, region: &str) -> String {
        match self {
            Call::DomainAccessPolicy { domain, policy } => format!(
                "aws opensearch update-domain-config --region {region} --domain-name {domain} --access-policies '{policy}'"
            ),
            Call::DomainAnonymousAuthOff { domain } => format!(
                "aws opensearch update-domain-config --region {region} --domain-name {domain} --advanced-security-options AnonymousAuthEnabled=false"
            ),
            Call::DomainEnforceHttps { domain } => format!(
                "aws opensearch update-domain-config --region {region} --domain-name {domain} --domain-endpoint-options EnforceHTTPS=true"
            ),
            Call::RevokeIngress { group_id, rule } => format!(
                "aws ec2 revoke-security-group-ingress --region {region} --group-id {group_id} --ip-permissions '{}'",
                ip_permission(rule)
            ),
            Call::DbPrivate { identifier } => format!(
                "aws rds modify-db-instance --region {region} --db-instance-identifier {identifier} --no-publicly-accessible --apply-immediately"
            ),
        }
    }
}

/// A rule as the EC2 API's `IpPermissions` JSON.
pub fn ip_permission(r: &ec2::Rule) -> Value {
    let mut p = serde_json::json!({"IpProtocol": r.protocol});
    if let Some(f) = r.from_port {
        p["FromPort"] = f.into();
    }
    if let Some(t) = r.to_port {
        p["ToPort"] = t.into();
    }
    let s = r.source.as_str();
    if s.starts_with("pl-") {
        p["PrefixListIds"] = serde_json::json!([{"PrefixListId": s}]);
    } else if let Some((account, group)) = s.split_once('/').filter(|(_, g)| g.starts_with("sg-")) {
        p["UserIdGroupPairs"] = serde_json::json!([{"UserId": account, "GroupId": group}]);
    } else if s.starts_with("sg-") {
        p["UserIdGroupPairs"] = serde_json::json!([{"GroupId": s}]);
    } else if s.contains(':') {
        p["Ipv6Ranges"] = serde_json::json!([{"CidrIpv6": s}]);
    } else {
        p["IpRanges"] = serde_json::json!([{"CidrIp": s}]);
    }
    p
}

/// The name an AWS resource id ends with: `<source>/<kind>/<account>/<region>/<name>`.
pub fn region_and_name(resource_id: &str) -> Option<(&str, &str)> {
    let parts: Vec<&str> = resource_id.splitn(5, '/').collect();
    (parts.len() == 5).then(|| (parts[3], parts[4]))
}

/// Which fields a rule id is about, for `--rule`; `None` when the rule is not revertable here.
fn wants(kind: &str, rule: Option<&str>, field: &str) -> bool {
    let Some(rule) = rule else { return true };
    if rule == "drift.weakened" {
        return true;
    }
    match (kind, field) {
        ("opensearch", "policy") => rule.starts_with("opensearch.policy."),
        ("opensearch", "anonymous") => rule == "opensearch.fgac.anonymous_auth",
        ("opensearch", "https") => rule == "opensearch.https.not_enforced",
        ("security-group", "ingress") => rule.starts_with("ec2.sg."),
        ("rds", "public") => rule.starts_with("rds.public"),
        _ => false,
    }
}

/// The calls that put `current` back to `baseline` for the fields lockwatch reverts, limited
/// to those behind `rule` when given. An error says why nothing can be planned.
pub fn plan(
    kind: &str,
    resource_id: &str,
    baseline: &Value,
    current: &Value,
    rule: Option<&str>,
) -> Result<Vec<Call>, String> {
    let (_, name) = region_and_name(resource_id).ok_or_else(|| {
        format!("{resource_id} is not an AWS resource id (<source>/<kind>/<account>/<region>/<name>)")
    })?;
    let parse = |what: &str, v: &Value| -> Result<Value, String> {
        let mut v = v.clone();
        if let Some(o) = v.as_object_mut() {
            o.remove(crate::model::VISIBILITY_KEY);
        }
        let _ = what;
        Ok(v)
    };
    let (baseline, current) = (parse("baseline", baseline)?, parse("current", current)?);
    let mut calls = Vec::new();
    match kind {
        "opensearch" => {
            let b: opensearch::Posture =
                serde_json::from_value(baseline).map_err(|e| format!("the baseline is not a domain posture: {e}"))?;
            let c: opensearch::Posture = serde_json::from_value(current)
                .map_err(|e| format!("the current state is not a domain posture: {e}"))?;
            if wants(kind, rule, "policy") && b.access_policy != c.access_policy {
                match &b.access_policy {
                    Some(p) => calls.push(Call::DomainAccessPolicy {
                        domain: name.to_string(),
                        policy: p.clone(),
                    }),
                    None => {
                        return Err(
                            "the baseline has no access policy to put back (it was unreadable then); set one by hand"
                                .into(),
                        );
                    }
                }
            }
            if wants(kind, rule, "anonymous") && c.anonymous_auth && !b.anonymous_auth {
                calls.push(Call::DomainAnonymousAuthOff {
                    domain: name.to_string(),
                });
            }
            if wants(kind, rule, "https") && !c.enforce_https && b.enforce_https {
                calls.push(Call::DomainEnforceHttps {
                    domain: name.to_string(),
                });
            }
        }
        "security-group" => {
            let b: ec2::Posture =
                serde_json::from_value(baseline).map_err(|e| format!("the baseline is not a group posture: {e}"))?;
            let c: ec2::Posture = serde_json::from_value(current)
                .map_err(|e| format!("the current state is not a group posture: {e}"))?;
            if wants(kind, rule, "ingress") {
                for r in c.ingress.iter().filter(|r| !b.ingress.contains(r)) {
                    calls.push(Call::RevokeIngress {
                        group_id: c.group_id.clone(),
                        rule: r.clone(),
                    });
                }
            }
        }
        "rds-cluster" => {
            return Err(
                "a cluster's public accessibility is set on its instances (ModifyDBCluster cannot change it): revert each instance, `lockwatch revert <source>/rds/<account>/<region>/<instance>`".into(),
            );
        }
        "rds" => {
            let b: rds::Posture =
                serde_json::from_value(baseline).map_err(|e| format!("the baseline is not a database posture: {e}"))?;
            let c: rds::Posture = serde_json::from_value(current)
                .map_err(|e| format!("the current state is not a database posture: {e}"))?;
            if wants(kind, rule, "public")
                && c.publicly_accessible == Some(true)
                && b.publicly_accessible == Some(false)
            {
                calls.push(Call::DbPrivate {
                    identifier: name.to_string(),
                });
            }
        }
        other => {
            return Err(format!(
                "lockwatch reverts AWS resources only (opensearch, security-group, rds), not {other}: \
                 it holds no admin credentials for self-hosted servers"
            ));
        }
    }
    Ok(calls)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn group(rules: &[(&str, i32, &str)]) -> Value {
        json!({"owner_account": "111122223333", "group_id": "sg-1", "group_name": "db", "vpc_id": "vpc-1",
               "ingress": rules.iter().map(|(p, port, src)| json!({"protocol": p, "from_port": port, "to_port": port, "source": src})).collect::<Vec<_>>(),
               "attachments": [], "world_open_ports": [], "untrusted_public_ports": []})
    }

    fn domain(policy: Value, anonymous: bool, https: bool) -> Value {
        json!({"owner_account": "111122223333", "arn": "arn:aws:es:us-east-1:111122223333:domain/orders",
               "engine_version": "OpenSearch_2.11", "public_endpoint": true, "vpc_id": null, "access_policy": policy,
               "access_policy_error": null, "policy_reach": "restricted", "fine_grained_access_control": anonymous,
               "internal_user_database": false, "anonymous_auth": anonymous, "enforce_https": https,
               "tls_policy": null, "encryption_at_rest": true, "node_to_node_encryption": true, "cognito": false,
               "ip_address_type": "ipv4", "trust": {}})
    }

    #[test]
    fn only_what_was_added_is_revoked() {
        let base = group(&[("tcp", 5432, "10.0.0.0/8")]);
        let now = group(&[
            ("tcp", 5432, "10.0.0.0/8"),
            ("tcp", 5432, "0.0.0.0/0"),
            ("tcp", 6379, "::/0"),
        ]);
        let id = "prod/security-group/111122223333/us-east-1/sg-1";
        let calls = plan("security-group", id, &base, &now, None).unwrap();
        assert_eq!(calls.len(), 2);
        assert_eq!(
            calls[0].show("us-east-1"),
            "aws ec2 revoke-security-group-ingress --region us-east-1 --group-id sg-1 --ip-permissions '{\"IpProtocol\":\"tcp\",\"FromPort\":5432,\"ToPort\":5432,\"IpRanges\":[{\"CidrIp\":\"0.0.0.0/0\"}]}'"
        );
        assert_eq!(
            ip_permission(&ec2::Rule {
                protocol: "tcp".into(),
                from_port: Some(6379),
                to_port: Some(6379),
                source: "::/0".into()
            })["Ipv6Ranges"][0]["CidrIpv6"],
            "::/0"
        );
        // A rule that was removed is not put back; nothing added, nothing to do.
        assert!(plan("security-group", id, &now, &base, None).unwrap().is_empty());
        assert!(
            plan("security-group", id, &base, &now, Some("opensearch.policy.public"))
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            plan(
                "security-group",
                id,
                &base,
                &now,
                Some("ec2.sg.datastore_open_to_world")
            )
            .unwrap()
            .len(),
            2
        );
    }

    #[test]
    fn a_domain_gets_its_baseline_policy_and_switches_back() {
        let own = json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::111122223333:root"]}, "Action": ["es:*"]}]});
        let open = json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": ["*"]}, "Action": ["es:*"]}]});
        let id = "prod/opensearch/111122223333/us-east-1/orders";
        let calls = plan(
            "opensearch",
            id,
            &domain(own.clone(), false, true),
            &domain(open.clone(), true, false),
            None,
        )
        .unwrap();
        assert_eq!(
            calls,
            vec![
                Call::DomainAccessPolicy {
                    domain: "orders".into(),
                    policy: own.clone()
                },
                Call::DomainAnonymousAuthOff {
                    domain: "orders".into()
                },
                Call::DomainEnforceHttps {
                    domain: "orders".into()
                },
            ]
        );
        let only = plan(
            "opensearch",
            id,
            &domain(own.clone(), false, true),
            &domain(open, true, false),
            Some("opensearch.fgac.anonymous_auth"),
        )
        .unwrap();
        assert_eq!(
            only,
            vec![Call::DomainAnonymousAuthOff {
                domain: "orders".into()
            }]
        );
        assert!(
            plan(
                "opensearch",
                id,
                &domain(own.clone(), false, true),
                &domain(own, false, true),
                None
            )
            .unwrap()
            .is_empty()
        );
    }

    #[test]
    fn databases_go_private_and_self_hosted_is_refused() {
        let db = |public: bool| {
            json!({"owner_account": "1", "engine": "postgres", "publicly_accessible": public, "port": 5432,
            "security_groups": [], "open_to_world_on_port": false, "storage_encrypted": true, "iam_auth": false})
        };
        let id = "prod/rds/111122223333/eu-west-1/orders-db";
        assert_eq!(
            plan("rds", id, &db(false), &db(true), None).unwrap(),
            vec![Call::DbPrivate {
                identifier: "orders-db".into()
            }]
        );
        assert!(plan("rds", id, &db(true), &db(true), None).unwrap().is_empty());
        let e = plan("redis", "cache/redis/127.0.0.1:6379", &json!({}), &json!({}), None).unwrap_err();
        assert!(e.contains("not an AWS resource id"), "{e}");
        let e = plan("redis", "cache/redis/a/b/c", &json!({}), &json!({}), None).unwrap_err();
        assert!(e.contains("no admin credentials"), "{e}");
    }
}
