//! Making the calls of a revert plan (`crate::revert`): OpenSearch, EC2 and RDS writes, one at
//! a time, stopping at the first that fails. Needs `config/iam-policy-revert.json`.

use super::{AwsSource, sdk_error};
use crate::revert::Call;
use aws_config::Region;

impl AwsSource {
    pub(super) async fn run_revert(&self, resource_id: &str, calls: &[Call]) -> anyhow::Result<Vec<String>> {
        let (sdk, account) = self.base().await?;
        let Some((region, _)) = crate::revert::region_and_name(resource_id) else {
            anyhow::bail!("{resource_id} is not an AWS resource id");
        };
        let owner = resource_id.split('/').nth(2).unwrap_or_default();
        if owner != account {
            anyhow::bail!(
                "{resource_id} belongs to account {owner}, but source {} reaches account {account}; nothing was changed",
                self.name
            );
        }
        let conf = sdk.to_builder().region(Region::new(region.to_string())).build();
        // One client per service, named for it (tests/iam_policy.rs reads these calls).
        let opensearch = aws_sdk_opensearch::Client::new(&conf);
        let ec2 = aws_sdk_ec2::Client::new(&conf);
        let rds = aws_sdk_rds::Client::new(&conf);
        let mut done = Vec::new();
        for call in calls {
            let shown = call.show(region);
            let result = match call {
                Call::DomainAccessPolicy { domain, policy } => opensearch
                    .update_domain_config()
                    .domain_name(domain)
                    .access_policies(policy.to_string())
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| sdk_error(&e)),
                Call::DomainAnonymousAuthOff { domain } => opensearch
                    .update_domain_config()
                    .domain_name(domain)
                    .advanced_security_options(
                        aws_sdk_opensearch::types::AdvancedSecurityOptionsInput::builder()
                            .anonymous_auth_enabled(false)
                            .build(),
                    )
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| sdk_error(&e)),
                Call::DomainEnforceHttps { domain } => opensearch
                    .update_domain_config()
                    .domain_name(domain)
                    .domain_endpoint_options(
                        aws_sdk_opensearch::types::DomainEndpointOptions::builder()
                            .enforce_https(true)
                            .build(),
                    )
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| sdk_error(&e)),
                Call::RevokeIngress { group_id, rule } => {
                    use aws_sdk_ec2::types::{IpPermission, IpRange, Ipv6Range, PrefixListId, UserIdGroupPair};
                    let mut p = IpPermission::builder()
                        .ip_protocol(&rule.protocol)
                        .set_from_port(rule.from_port)
                        .set_to_port(rule.to_port);
                    let s = rule.source.as_str();
                    p = if s.starts_with("pl-") {
                        p.prefix_list_ids(PrefixListId::builder().prefix_list_id(s).build())
                    } else if let Some((acct, g)) = s.split_once('/').filter(|(_, g)| g.starts_with("sg-")) {
                        p.user_id_group_pairs(UserIdGroupPair::builder().user_id(acct).group_id(g).build())
                    } else if s.starts_with("sg-") {
                        p.user_id_group_pairs(UserIdGroupPair::builder().group_id(s).build())
                    } else if s.contains(':') {
                        p.ipv6_ranges(Ipv6Range::builder().cidr_ipv6(s).build())
                    } else {
                        p.ip_ranges(IpRange::builder().cidr_ip(s).build())
                    };
                    ec2.revoke_security_group_ingress()
                        .group_id(group_id)
                        .ip_permissions(p.build())
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| sdk_error(&e))
                }
                Call::DbPrivate { identifier } => rds
                    .modify_db_instance()
                    .db_instance_identifier(identifier)
                    .publicly_accessible(false)
                    .apply_immediately(true)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| sdk_error(&e)),
            };
            match result {
                Ok(()) => done.push(shown),
                Err(e) => anyhow::bail!(
                    "{shown} failed: {e}{}. Write calls need config/iam-policy-revert.json",
                    if done.is_empty() {
                        "; nothing was changed".to_string()
                    } else {
                        format!("; made before it: {}", done.join("; "))
                    }
                ),
            }
        }
        Ok(done)
    }
}
