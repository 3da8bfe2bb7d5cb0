//! OpenSearch and legacy Elasticsearch domains: access policy, network placement, fine-grained
//! access control, endpoint and encryption options.

use super::policy::{self, Reach};
use super::{Ctx, TrustConfig, sdk_error};
use crate::model::{Classification, Finding, Resource, Severity};
use crate::sources::common::{classify_flag, classify_rank};
use crate::sources::{Assessment, FieldChange, ResourceKind, Samples};
use futures::{StreamExt, TryStreamExt, stream};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const KIND: ResourceKind = ResourceKind {
    name: "opensearch",
    assess,
    classify,
    samples,
    describe,
};

fn describe(c: &crate::model::Change) -> Option<String> {
    Some(match crate::diff::top_field(&c.path) {
        "policy_reach" => format!(
            "the access policy now lets {} in",
            match c.after.as_str() {
                Some("public") => "anyone on the internet",
                Some("cross-account") => "principals of other accounts",
                _ => "only this account",
            }
        ),
        "anonymous_auth" if c.after == true => "fine-grained access control lets anonymous users in".into(),
        "enforce_https" if c.after == false => "plain HTTP is accepted".into(),
        "fine_grained_access_control" if c.after == false => "fine-grained access control was turned off".into(),
        "public_endpoint" if c.after == true => "the domain has a public endpoint".into(),
        _ => return None,
    })
}

fn samples() -> Samples {
    let doc = |principal: Value| {
        let policy = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": principal},
            "Action": "es:*", "Resource": "arn:aws:es:us-east-1:111122223333:domain/orders/*"}]});
        let mut p = Posture {
            owner_account: "111122223333".into(),
            arn: "arn:aws:es:us-east-1:111122223333:domain/orders".into(),
            engine_version: Some("OpenSearch_2.11".into()),
            public_endpoint: true,
            vpc_id: None,
            access_policy: Some(normalise_policy(&policy)),
            access_policy_error: None,
            policy_reach: String::new(),
            fine_grained_access_control: false,
            internal_user_database: false,
            anonymous_auth: false,
            enforce_https: true,
            tls_policy: Some("Policy-Min-TLS-1-2-2019-07".into()),
            encryption_at_rest: true,
            node_to_node_encryption: true,
            cognito: false,
            ip_address_type: Some("ipv4".into()),
            trust: TrustConfig::default(),
        };
        p.policy_reach = verdict(&p).reach.as_str().into();
        serde_json::to_value(p).unwrap_or_default()
    };
    Samples {
        safe: doc(serde_json::json!("arn:aws:iam::111122223333:root")),
        exposed: doc(serde_json::json!("*")),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Posture {
    pub owner_account: String,
    /// The domain's ARN: policies grant on it, so the evaluator needs it.
    #[serde(default)]
    pub arn: String,
    pub engine_version: Option<String>,
    /// No VPC options: the domain has an internet endpoint.
    pub public_endpoint: bool,
    pub vpc_id: Option<String>,
    /// The access policy, normalised (lists everywhere, sorted) so that equivalent spellings compare equal.
    pub access_policy: Option<Value>,
    pub access_policy_error: Option<String>,
    /// Derived by the policy evaluator: `restricted`, `cross-account` or `public`.
    pub policy_reach: String,
    pub fine_grained_access_control: bool,
    pub internal_user_database: bool,
    pub anonymous_auth: bool,
    pub enforce_https: bool,
    pub tls_policy: Option<String>,
    pub encryption_at_rest: bool,
    pub node_to_node_encryption: bool,
    pub cognito: bool,
    pub ip_address_type: Option<String>,
    pub trust: TrustConfig,
}

/// Policies list single values or lists interchangeably; make every such field a sorted list.
pub fn normalise_policy(v: &Value) -> Value {
    fn sorted_list(v: &Value) -> Value {
        match v {
            Value::Array(items) => {
                let mut items = items.clone();
                items.sort_by_key(|x| x.to_string());
                items.dedup();
                Value::Array(items)
            }
            Value::String(_) => Value::Array(vec![v.clone()]),
            other => other.clone(),
        }
    }
    let mut out = v.clone();
    let stmts = match v.get("Statement") {
        Some(Value::Array(a)) => a.clone(),
        Some(o @ Value::Object(_)) => vec![o.clone()],
        _ => return out,
    };
    let stmts: Vec<Value> = stmts
        .into_iter()
        .map(|mut s| {
            if let Some(obj) = s.as_object_mut() {
                for k in ["Action", "NotAction", "Resource", "NotResource"] {
                    if let Some(x) = obj.get(k).map(sorted_list) {
                        obj.insert(k.into(), x);
                    }
                }
                for k in ["Principal", "NotPrincipal"] {
                    if let Some(Value::Object(m)) = obj.get_mut(k) {
                        for val in m.values_mut() {
                            *val = sorted_list(val);
                        }
                    }
                }
                if let Some(Value::Object(ops)) = obj.get_mut("Condition") {
                    for entries in ops.values_mut() {
                        if let Value::Object(e) = entries {
                            for val in e.values_mut() {
                                *val = sorted_list(val);
                            }
                        }
                    }
                }
            }
            s
        })
        .collect();
    out["Statement"] = Value::Array(stmts);
    out
}

pub async fn collect(client: &aws_sdk_opensearch::Client, ctx: &Ctx<'_>) -> anyhow::Result<Vec<Resource>> {
    let listed = client
        .list_domain_names()
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("listing domains (es:ListDomainNames): {}", sdk_error(&e)))?;
    let mut names: Vec<String> = listed
        .domain_names()
        .iter()
        .filter_map(|d| d.domain_name().map(str::to_string))
        .collect();
    names.sort();
    // DescribeDomains takes at most five names per call; a few calls are in flight at once (the
    // answers keep the listing's order). Any batch failing fails the listing: a partial list
    // would make the missing domains look deleted.
    let batches: Vec<Vec<String>> = names.chunks(5).map(<[String]>::to_vec).collect();
    let described: Vec<Vec<aws_sdk_opensearch::types::DomainStatus>> = stream::iter(batches)
        .map(|batch| describe_batch(client, batch))
        .buffered(DESCRIBE_IN_FLIGHT)
        .try_collect()
        .await?;
    let mut out = Vec::with_capacity(names.len());
    for d in described.iter().flatten() {
        out.push(ctx.resource(KIND.name, d.domain_name(), serde_json::to_value(posture_of(d, ctx))?));
    }
    Ok(out)
}

/// DescribeDomains calls in flight at once per region (the control plane throttles; the SDK's
/// adaptive retry backs off when it does).
const DESCRIBE_IN_FLIGHT: usize = 4;

async fn describe_batch(
    client: &aws_sdk_opensearch::Client,
    batch: Vec<String>,
) -> anyhow::Result<Vec<aws_sdk_opensearch::types::DomainStatus>> {
    let described = client
        .describe_domains()
        .set_domain_names(Some(batch.clone()))
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "describing domains {} (es:DescribeDomains): {}",
                batch.join(","),
                sdk_error(&e)
            )
        })?;
    let missing: Vec<&String> = batch
        .iter()
        .filter(|n| {
            !described
                .domain_status_list()
                .iter()
                .any(|d| d.domain_name() == n.as_str())
        })
        .collect();
    if !missing.is_empty() {
        anyhow::bail!("es:DescribeDomains did not return {missing:?}; the listing is incomplete");
    }
    Ok(described.domain_status_list().to_vec())
}

fn posture_of(d: &aws_sdk_opensearch::types::DomainStatus, ctx: &Ctx<'_>) -> Posture {
    let (access_policy, access_policy_error) = match d.access_policies().filter(|p| !p.trim().is_empty()) {
        None => (None, None),
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(v) => (Some(normalise_policy(&v)), None),
            Err(e) => (None, Some(format!("not JSON: {e}"))),
        },
    };
    let mut p = Posture {
        owner_account: ctx.account.to_string(),
        arn: d.arn().to_string(),
        engine_version: d.engine_version().map(str::to_string),
        // AWS omits VPC options for internet-facing domains; any VPC options mean no public endpoint.
        public_endpoint: d
            .vpc_options()
            .is_none_or(|v| v.vpc_id().is_none() && v.subnet_ids().is_empty()),
        vpc_id: d.vpc_options().and_then(|v| v.vpc_id()).map(str::to_string),
        access_policy,
        access_policy_error,
        policy_reach: String::new(),
        fine_grained_access_control: d.advanced_security_options().and_then(|a| a.enabled()).unwrap_or(false),
        internal_user_database: d
            .advanced_security_options()
            .and_then(|a| a.internal_user_database_enabled())
            .unwrap_or(false),
        anonymous_auth: d
            .advanced_security_options()
            .and_then(|a| a.anonymous_auth_enabled())
            .unwrap_or(false),
        enforce_https: d
            .domain_endpoint_options()
            .and_then(|o| o.enforce_https())
            .unwrap_or(false),
        tls_policy: d
            .domain_endpoint_options()
            .and_then(|o| o.tls_security_policy())
            .map(|t| t.as_str().to_string()),
        encryption_at_rest: d
            .encryption_at_rest_options()
            .and_then(|o| o.enabled())
            .unwrap_or(false),
        node_to_node_encryption: d
            .node_to_node_encryption_options()
            .and_then(|o| o.enabled())
            .unwrap_or(false),
        cognito: d.cognito_options().and_then(|o| o.enabled()).unwrap_or(false),
        ip_address_type: d.ip_address_type().map(|t| t.as_str().to_string()),
        trust: ctx.trust.clone(),
    };
    p.policy_reach = verdict(&p).reach.as_str().to_string();
    p
}

/// The policy verdict for a posture. An unreadable policy counts as public: never a false "restricted".
fn verdict(p: &Posture) -> policy::Verdict {
    let assumed_open = |reason: String| policy::Verdict {
        reach: Reach::Public,
        reason,
        caller: None,
        action: None,
        path: None,
        allow_statements: Vec::new(),
        deny_statements: Vec::new(),
        statement: None,
    };
    match (&p.access_policy, &p.access_policy_error) {
        (_, Some(e)) => assumed_open(format!("The access policy cannot be read ({e}), so it is assumed open.")),
        (None, None) => policy::Verdict {
            reach: Reach::Restricted,
            reason: "There is no access policy.".into(),
            ..assumed_open(String::new())
        },
        (Some(_), None) if p.arn.is_empty() => assumed_open(
            "The domain's ARN is not in this snapshot (recorded by an older lockwatch), so the policy cannot be matched to it and is assumed open.".into(),
        ),
        (Some(doc), None) => {
            let trust = p.trust.for_policies();
            let ctx = policy::Context {
                owner: &p.owner_account,
                resource_arn: &p.arn,
                trust: &trust,
                service: &policy::OPENSEARCH,
                now: None,
            };
            policy::evaluate(doc, &ctx)
                .unwrap_or_else(|e| assumed_open(format!("The access policy is malformed ({e}), so it is assumed open.")))
        }
    }
}

fn quote(v: &policy::Verdict) -> String {
    v.statement
        .as_ref()
        .map(|s| format!(" The statement: {}", crate::model::canonical_json(s)))
        .unwrap_or_default()
}

const WEAK_TLS: [&str; 1] = ["Policy-Min-TLS-1-0-2019-07"];

fn assess(posture: &Value) -> Result<Assessment, String> {
    let p: Posture = serde_json::from_value(posture.clone()).map_err(|e| format!("not an opensearch posture: {e}"))?;
    let v = verdict(&p);
    let mut out = Vec::new();
    let where_ = if p.public_endpoint {
        "its public endpoint".to_string()
    } else {
        format!("VPC {}", p.vpc_id.as_deref().unwrap_or("?"))
    };
    if p.anonymous_auth {
        out.push(Finding::new(
            "opensearch.fgac.anonymous_auth",
            if p.public_endpoint { Severity::Critical } else { Severity::High },
            p.public_endpoint,
            format!(
                "Fine-grained access control lets anonymous users in: requests without credentials reach the data through {where_}. \
                 Turn it off: aws opensearch update-domain-config --domain-name <name> --advanced-security-options AnonymousAuthEnabled=false"
            ),
        ));
    }
    match v.reach {
        Reach::Public if !p.public_endpoint => out.push(Finding::new(
            "opensearch.policy.open_in_vpc",
            Severity::Low,
            false,
            format!("The access policy admits anyone, limited only by the VPC: any host in it can call the domain. {}{} Grant specific principals.", v.reason, quote(&v)),
        )),
        Reach::Public if !p.fine_grained_access_control => out.push(Finding::new(
            "opensearch.policy.public",
            Severity::Critical,
            true,
            format!(
                "The access policy lets anyone on the internet call the domain, and fine-grained access control is off: no credential is asked. \
                 {}{} Restrict the Principal or add an aws:SourceIp condition, or enable fine-grained access control.",
                v.reason,
                quote(&v)
            ),
        )),
        Reach::Public => out.push(Finding::new(
            "opensearch.policy.public_with_fgac",
            Severity::High,
            false,
            format!(
                "The access policy is open to the internet: {} Fine-grained access control still asks every caller to authenticate. \
                 This is AWS's recommended shape, but one FGAC change away from open: keep the master user and roles tight.{}",
                v.reason,
                quote(&v)
            ),
        )),
        Reach::CrossAccount => out.push(Finding::new(
            "opensearch.policy.cross_account",
            Severity::Medium,
            false,
            format!("The access policy grants principals outside account {}: {}{} If that account is yours, add it to [sources.trust] accounts.", p.owner_account, v.reason, quote(&v)),
        )),
        _ => {}
    }
    if p.access_policy_error.is_some() {
        out.push(Finding::new(
            "opensearch.policy.unreadable",
            Severity::High,
            false,
            format!("The access policy cannot be parsed: {}", v.reason),
        ));
    }
    if !p.enforce_https {
        out.push(Finding::new(
            "opensearch.https.not_enforced",
            Severity::High,
            false,
            "The domain accepts plain HTTP: credentials and data can cross the network unencrypted. Enable EnforceHTTPS in the domain endpoint options.",
        ));
    } else if p.tls_policy.as_deref().is_some_and(|t| WEAK_TLS.contains(&t)) {
        out.push(Finding::new(
            "opensearch.tls.weak_policy",
            Severity::High,
            false,
            format!(
                "The TLS policy {} allows TLS 1.0/1.1. Use Policy-Min-TLS-1-2-2019-07 or newer.",
                p.tls_policy.as_deref().unwrap_or_default()
            ),
        ));
    }
    if !p.encryption_at_rest {
        out.push(Finding::new(
            "opensearch.encryption_at_rest.off",
            Severity::Medium,
            false,
            "Encryption at rest is off: snapshots and disks hold the data in clear.",
        ));
    }
    if !p.node_to_node_encryption {
        out.push(Finding::new(
            "opensearch.node_to_node.off",
            Severity::Medium,
            false,
            "Node-to-node encryption is off: traffic inside the cluster is unencrypted.",
        ));
    }
    // An exposed AWS finding is an internet-facing one (public address and route, or a
    // public endpoint that lets anyone in).
    let reach = out.iter().any(|f| f.exposed).then_some(crate::net::Reach::Internet);
    Ok(Assessment::new(out, reach))
}

/// How bad a loosened access path is, given what else still stands in the way afterwards: the
/// drift severity never exceeds what the findings for that posture say.
fn opening_severity(after: &Value) -> Severity {
    let public_endpoint = after["public_endpoint"] == true;
    let fgac = after["fine_grained_access_control"] == true;
    let anonymous = after["anonymous_auth"] == true;
    match (public_endpoint, fgac && !anonymous) {
        // VPC-only: callers must already be inside the VPC.
        (false, _) => Severity::Medium,
        // Every caller must still authenticate to fine-grained access control.
        (true, true) => Severity::High,
        (true, false) => Severity::Critical,
    }
}

fn classify(c: &FieldChange<'_>) -> Classification {
    let opening = || {
        if c.after_doc["policy_reach"] == "public" {
            opening_severity(c.after_doc)
        } else {
            Severity::Medium
        }
    };
    match crate::diff::top_field(c.path) {
        "policy_reach" => {
            let severity = match c.after.as_str() {
                Some("public") => opening_severity(c.after_doc),
                _ => Severity::Medium,
            };
            classify_rank(
                c.before,
                c.after,
                &["public", "cross-account", "restricted"],
                Classification::weakened(severity),
            )
        }
        "anonymous_auth" => classify_flag(
            c.before,
            c.after,
            false,
            Classification::weakened(if c.after_doc["public_endpoint"] == true {
                Severity::Critical
            } else {
                Severity::High
            }),
        ),
        "fine_grained_access_control" => classify_flag(
            c.before,
            c.after,
            true,
            Classification::weakened(opening().max(Severity::High)),
        ),
        "enforce_https" => classify_flag(c.before, c.after, true, Classification::weakened(Severity::High)),
        "tls_policy" => classify_rank(
            c.before,
            c.after,
            &[
                "Policy-Min-TLS-1-0-2019-07",
                "Policy-Min-TLS-1-2-2019-07",
                "Policy-Min-TLS-1-2-PFS-2023-10",
                "Policy-Min-TLS-1-2-RFC9151-FIPS-2024-08",
            ],
            Classification::weakened(Severity::High),
        ),
        "encryption_at_rest" | "node_to_node_encryption" | "cognito" => {
            classify_flag(c.before, c.after, true, Classification::weakened(Severity::Medium))
        }
        "public_endpoint" => classify_flag(
            c.before,
            c.after,
            false,
            Classification::weakened(opening().max(Severity::High)),
        ),
        _ => Classification::NEUTRAL,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ChangeClass;
    use serde_json::json;

    fn posture(policy: Value, public_endpoint: bool, fgac: bool, anonymous: bool) -> Value {
        let mut p = Posture {
            owner_account: "111122223333".into(),
            arn: "arn:aws:es:us-east-1:111122223333:domain/orders".into(),
            engine_version: Some("OpenSearch_2.11".into()),
            public_endpoint,
            vpc_id: (!public_endpoint).then(|| "vpc-1".to_string()),
            access_policy: Some(normalise_policy(&policy)),
            access_policy_error: None,
            policy_reach: String::new(),
            fine_grained_access_control: fgac,
            internal_user_database: fgac,
            anonymous_auth: anonymous,
            enforce_https: true,
            tls_policy: Some("Policy-Min-TLS-1-2-2019-07".into()),
            encryption_at_rest: true,
            node_to_node_encryption: true,
            cognito: false,
            ip_address_type: Some("ipv4".into()),
            trust: TrustConfig::default(),
        };
        p.policy_reach = verdict(&p).reach.as_str().into();
        serde_json::to_value(p).unwrap()
    }

    fn open() -> Value {
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "es:*", "Resource": "arn:aws:es:us-east-1:111122223333:domain/orders/*"}]})
    }
    fn own() -> Value {
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "es:*"}]})
    }
    fn foreign() -> Value {
        json!({"Statement": {"Effect": "Allow", "Principal": {"AWS": "999988887777"}, "Action": "es:ESHttpGet"}})
    }

    fn rules(v: &Value) -> Vec<(String, Severity, bool)> {
        crate::sources::common::findings_of(assess, v)
    }

    /// Every case of the shared fixture, VPC or not, through the product's own domain
    /// assessment: "public" is an exposed finding, "cross-account" the cross-account rule.
    #[test]
    fn shared_fixture_through_the_domain_assessment() {
        let doc: Value = serde_json::from_str(include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/opensearch-policies.json"
        )))
        .unwrap();
        let cases = doc["cases"].as_array().unwrap();
        assert!(
            cases.iter().filter(|c| c["vpc"] == true).count() >= 1,
            "the fixture has VPC cases"
        );
        let mut failures = Vec::new();
        for case in cases {
            let name = case["name"].as_str().unwrap_or("?");
            let vpc = case["vpc"].as_bool().unwrap_or(false);
            let a = assess(&posture(case["policy"].clone(), !vpc, false, false)).unwrap();
            let got = if a.findings.iter().any(|f| f.exposed) {
                "public"
            } else if a.findings.iter().any(|f| f.rule == "opensearch.policy.cross_account") {
                "cross-account"
            } else {
                "restricted"
            };
            if got != case["verdict"].as_str().unwrap_or("?") {
                failures.push(format!(
                    "{name} (vpc {vpc}): want {}, got {got}: {:?}",
                    case["verdict"], a.findings
                ));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn assess_table() {
        let r = |s: &str, sev, e| (s.to_string(), sev, e);
        let cases: Vec<(&str, Value, Vec<(String, Severity, bool)>)> = vec![
            ("restricted", posture(own(), true, false, false), vec![]),
            (
                "public, no FGAC",
                posture(open(), true, false, false),
                vec![r("opensearch.policy.public", Severity::Critical, true)],
            ),
            (
                "public with FGAC: high, not exposed",
                posture(open(), true, true, false),
                vec![r("opensearch.policy.public_with_fgac", Severity::High, false)],
            ),
            (
                "public with FGAC and anonymous auth",
                posture(open(), true, true, true),
                vec![
                    r("opensearch.fgac.anonymous_auth", Severity::Critical, true),
                    r("opensearch.policy.public_with_fgac", Severity::High, false),
                ],
            ),
            (
                "open policy inside a VPC",
                posture(open(), false, false, false),
                vec![r("opensearch.policy.open_in_vpc", Severity::Low, false)],
            ),
            (
                "anonymous auth in a VPC",
                posture(own(), false, true, true),
                vec![r("opensearch.fgac.anonymous_auth", Severity::High, false)],
            ),
            (
                "cross-account",
                posture(foreign(), true, false, false),
                vec![r("opensearch.policy.cross_account", Severity::Medium, false)],
            ),
            (
                "http, no encryption",
                {
                    let mut p = posture(own(), true, false, false);
                    p["enforce_https"] = json!(false);
                    p["encryption_at_rest"] = json!(false);
                    p["node_to_node_encryption"] = json!(false);
                    p
                },
                vec![
                    r("opensearch.https.not_enforced", Severity::High, false),
                    r("opensearch.encryption_at_rest.off", Severity::Medium, false),
                    r("opensearch.node_to_node.off", Severity::Medium, false),
                ],
            ),
            (
                "weak TLS policy",
                {
                    let mut p = posture(own(), true, false, false);
                    p["tls_policy"] = json!("Policy-Min-TLS-1-0-2019-07");
                    p
                },
                vec![r("opensearch.tls.weak_policy", Severity::High, false)],
            ),
        ];
        for (name, p, want) in cases {
            assert_eq!(rules(&p), want, "case: {name}");
        }
    }

    #[test]
    fn critical_message_quotes_the_statement() {
        let f = assess(&posture(open(), true, false, false)).unwrap().findings;
        assert!(
            f[0].message.contains(r#""Principal":{"AWS":["*"]}"#),
            "{}",
            f[0].message
        );
    }

    #[test]
    fn normalisation_makes_spellings_equal() {
        let a = json!({"Statement": {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "es:*"}});
        let b = json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": ["*"]}, "Action": ["es:*"]}]});
        assert_eq!(normalise_policy(&a), normalise_policy(&b));
    }

    #[test]
    fn classify_table() {
        let d = json!({"public_endpoint": true, "fine_grained_access_control": false, "anonymous_auth": false, "policy_reach": "public"});
        let cases: Vec<(&str, Value, Value, ChangeClass, Severity)> = vec![
            (
                "/policy_reach",
                json!("restricted"),
                json!("public"),
                ChangeClass::Weakened,
                Severity::Critical,
            ),
            (
                "/policy_reach",
                json!("restricted"),
                json!("cross-account"),
                ChangeClass::Weakened,
                Severity::Medium,
            ),
            (
                "/policy_reach",
                json!("public"),
                json!("restricted"),
                ChangeClass::Strengthened,
                Severity::Low,
            ),
            (
                "/anonymous_auth",
                json!(false),
                json!(true),
                ChangeClass::Weakened,
                Severity::Critical,
            ),
            (
                "/fine_grained_access_control",
                json!(true),
                json!(false),
                ChangeClass::Weakened,
                Severity::Critical,
            ),
            (
                "/enforce_https",
                json!(true),
                json!(false),
                ChangeClass::Weakened,
                Severity::High,
            ),
            (
                "/tls_policy",
                json!("Policy-Min-TLS-1-2-2019-07"),
                json!("Policy-Min-TLS-1-0-2019-07"),
                ChangeClass::Weakened,
                Severity::High,
            ),
            (
                "/encryption_at_rest",
                json!(true),
                json!(false),
                ChangeClass::Weakened,
                Severity::Medium,
            ),
            (
                "/access_policy/Statement/0/Principal/AWS/0",
                json!("arn:aws:iam::111122223333:root"),
                json!("*"),
                ChangeClass::Neutral,
                Severity::Low,
            ),
        ];
        crate::sources::common::check_classify(classify, &d, &cases);
    }

    /// Drift severity follows what still stands in the way after the change: a policy opened on
    /// a VPC-only domain, or behind fine-grained access control, is not critical.
    #[test]
    fn drift_severity_follows_the_remaining_protection() {
        let doc = |public_endpoint: bool, fgac: bool, anonymous: bool| {
            json!({"public_endpoint": public_endpoint, "fine_grained_access_control": fgac,
                   "anonymous_auth": anonymous, "policy_reach": "public"})
        };
        let cases: Vec<(&str, Value, Value, Value, Severity)> = vec![
            (
                "/policy_reach",
                json!("restricted"),
                json!("public"),
                doc(true, false, false),
                Severity::Critical,
            ),
            (
                "/policy_reach",
                json!("restricted"),
                json!("public"),
                doc(true, true, false),
                Severity::High,
            ),
            (
                "/policy_reach",
                json!("restricted"),
                json!("public"),
                doc(true, true, true),
                Severity::Critical,
            ),
            (
                "/policy_reach",
                json!("restricted"),
                json!("public"),
                doc(false, false, false),
                Severity::Medium,
            ),
            (
                "/policy_reach",
                json!("restricted"),
                json!("public"),
                doc(false, true, false),
                Severity::Medium,
            ),
            (
                "/fine_grained_access_control",
                json!(true),
                json!(false),
                doc(true, false, false),
                Severity::Critical,
            ),
            (
                "/fine_grained_access_control",
                json!(true),
                json!(false),
                doc(false, false, false),
                Severity::High,
            ),
            (
                "/anonymous_auth",
                json!(false),
                json!(true),
                doc(false, true, true),
                Severity::High,
            ),
            (
                "/public_endpoint",
                json!(false),
                json!(true),
                doc(true, false, false),
                Severity::Critical,
            ),
            (
                "/public_endpoint",
                json!(false),
                json!(true),
                doc(true, true, false),
                Severity::High,
            ),
        ];
        for (path, before, after, after_doc, want) in cases {
            let got = classify(&FieldChange {
                path,
                before: &before,
                after: &after,
                before_doc: &json!({}),
                after_doc: &after_doc,
            });
            assert_eq!(
                (got.class, got.severity),
                (ChangeClass::Weakened, want),
                "{path} with {after_doc}"
            );
        }
    }
}
