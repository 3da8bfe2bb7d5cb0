//! `kind = "aws"`: OpenSearch/Elasticsearch domains, EC2 security groups and RDS, for one account
//! (its own credentials or an assumed role) across regions.
//!
//! Regions run concurrently up to `max_concurrent_regions`; the SDK retries in adaptive mode and
//! backs off on throttling. A region or service that fails is a [`PartFailure`] for that part
//! only: resources there keep their last known state.

pub mod ec2;
pub mod network;
pub mod opensearch;
pub mod policy;
pub mod rds;
mod revert;

use super::{Collection, Common, PartFailure, Source, SourceKind};
use crate::model::Resource;
use anyhow::Context;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use futures::future::BoxFuture;
use futures::{StreamExt, stream};
use serde::{Deserialize, Serialize};

pub const KIND: SourceKind = SourceKind {
    name: "aws",
    check: |_, table| parse(table.clone()).map(|_| ()),
    build,
    resource_kinds: &[opensearch::KIND, ec2::KIND, rds::INSTANCE_KIND, rds::CLUSTER_KIND],
    canaries,
};

/// Credentials come from the environment, a profile or an assumed role, never from the config;
/// a secret can still be pasted into the endpoint URL or the external id.
fn canaries(secret: &str, addr: &str, _dir: &std::path::Path) -> Vec<String> {
    vec![
        format!("regions = [\"us-east-1\"]\nendpoint_url = \"http://lockwatch:{secret}@{addr}\""),
        format!("regions = [\"us-east-1\"]\nendpoint_url = \"http://{addr}/?token={secret}\""),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Service {
    Opensearch,
    Ec2,
    Rds,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Region names, or `["all"]` for every region `ec2:DescribeRegions` lists.
    regions: Vec<String>,
    #[serde(default = "all_services")]
    services: Vec<Service>,
    profile: Option<String>,
    assume_role_arn: Option<String>,
    external_id: Option<String>,
    endpoint_url: Option<String>,
    #[serde(default = "default_concurrency")]
    max_concurrent_regions: usize,
    /// Ports watched in security groups besides the built-in data-store list.
    #[serde(default)]
    extra_data_store_ports: Vec<u16>,
    #[serde(default)]
    trust: TrustConfig,
}

fn all_services() -> Vec<Service> {
    vec![Service::Opensearch, Service::Ec2, Service::Rds]
}

fn default_concurrency() -> usize {
    4
}

/// What counts as "ours" in policies and rules. Recorded in each posture document, so that
/// assessment stays a pure function of the document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustConfig {
    #[serde(default)]
    pub cidrs: Vec<String>,
    #[serde(default)]
    pub accounts: Vec<String>,
    #[serde(default)]
    pub org_ids: Vec<String>,
}

impl TrustConfig {
    pub fn for_policies(&self) -> policy::Trust {
        policy::Trust {
            accounts: self.accounts.clone(),
            org_ids: self.org_ids.clone(),
            cidrs: self.cidrs.clone(),
        }
    }
}

struct AwsSource {
    name: String,
    cfg: Config,
    base: tokio::sync::OnceCell<(SdkConfig, String)>,
}

fn build(common: &Common, table: toml::Table) -> Result<Box<dyn Source>, String> {
    let cfg = parse(table)?;
    Ok(Box::new(AwsSource {
        name: common.name.clone(),
        cfg,
        base: tokio::sync::OnceCell::new(),
    }))
}

/// The config, checked. Pure.
fn parse(table: toml::Table) -> Result<Config, String> {
    let cfg: Config = super::common::parse_table(table)?;
    if cfg.regions.is_empty() {
        return Err("`regions` is empty: list regions, or [\"all\"]".into());
    }
    if cfg.regions.len() > 1 && cfg.regions.iter().any(|r| r == "all") {
        return Err("`regions`: \"all\" stands alone".into());
    }
    if cfg.services.is_empty() {
        return Err(
            "`services` is empty: use any of \"opensearch\", \"ec2\", \"rds\" (or leave it out for all)".into(),
        );
    }
    if cfg.max_concurrent_regions == 0 {
        return Err("`max_concurrent_regions` must be at least 1".into());
    }
    if cfg.external_id.is_some() && cfg.assume_role_arn.is_none() {
        return Err("`external_id` needs `assume_role_arn`".into());
    }
    for c in &cfg.trust.cidrs {
        ec2::parse_cidr(c).ok_or_else(|| format!("trust.cidrs: {c:?} is not a CIDR (e.g. \"198.51.100.0/24\")"))?;
    }
    if let Some(ep) = &cfg.endpoint_url {
        url::Url::parse(ep).map_err(|e| format!("endpoint_url {}: {e}", crate::secret::redact_dsn(ep)))?;
    }
    Ok(cfg)
}

/// An SDK error with its whole chain of causes, for messages.
pub fn sdk_error(e: &(dyn std::error::Error + 'static)) -> String {
    aws_sdk_ec2::error::DisplayErrorContext(e).to_string()
}

impl AwsSource {
    fn home_region(&self) -> String {
        self.cfg
            .regions
            .iter()
            .find(|r| *r != "all")
            .cloned()
            .unwrap_or_else(|| "us-east-1".into())
    }

    /// Shared SDK configuration (credentials, retries, endpoint) and the account it reaches.
    async fn base(&self) -> anyhow::Result<&(SdkConfig, String)> {
        self.base
            .get_or_try_init(|| async {
                let mut loader = aws_config::defaults(BehaviorVersion::latest())
                    .region(Region::new(self.home_region()))
                    .retry_config(aws_config::retry::RetryConfig::adaptive().with_max_attempts(4));
                if let Some(p) = &self.cfg.profile {
                    loader = loader.profile_name(p);
                }
                if let Some(ep) = &self.cfg.endpoint_url {
                    loader = loader.endpoint_url(ep);
                }
                let mut sdk = loader.load().await;
                if let Some(role) = &self.cfg.assume_role_arn {
                    let mut b = aws_config::sts::AssumeRoleProvider::builder(role).session_name("lockwatch").configure(&sdk);
                    if let Some(x) = &self.cfg.external_id {
                        b = b.external_id(x);
                    }
                    let provider = b.build().await;
                    sdk = sdk.into_builder().credentials_provider(aws_sdk_sts::config::SharedCredentialsProvider::new(provider)).build();
                }
                let sts = aws_sdk_sts::Client::new(&sdk);
                let who = sts.get_caller_identity().send().await.map_err(|e| {
                    anyhow::anyhow!(
                        "finding the account (sts:GetCallerIdentity){}: {} (check credentials, profile and assume_role_arn)",
                        self.cfg.assume_role_arn.as_ref().map(|r| format!(" as {r}")).unwrap_or_default(),
                        sdk_error(&e)
                    )
                })?;
                let account = who.account().context("sts:GetCallerIdentity returned no account")?.to_string();
                Ok((sdk, account))
            })
            .await
    }

    async fn regions(&self, sdk: &SdkConfig) -> anyhow::Result<Vec<String>> {
        if self.cfg.regions != ["all"] {
            return Ok(self.cfg.regions.clone());
        }
        let ec2 = aws_sdk_ec2::Client::new(sdk);
        let out = ec2
            .describe_regions()
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("listing regions (ec2:DescribeRegions): {}", sdk_error(&e)))?;
        let mut regions: Vec<String> = out
            .regions()
            .iter()
            .filter_map(|r| r.region_name().map(str::to_string))
            .collect();
        regions.sort();
        Ok(regions)
    }

    fn scope(&self, kind: &str, account: &str, region: &str) -> String {
        format!("{}/{kind}/{account}/{region}/", self.name)
    }

    async fn collect_region(&self, sdk: &SdkConfig, account: &str, region: String) -> Collection {
        let conf = sdk.to_builder().region(Region::new(region.clone())).build();
        let mut out = Collection::default();
        let wants = |s: Service| self.cfg.services.contains(&s);
        let ctx = Ctx {
            source: &self.name,
            account,
            region: &region,
            trust: &self.cfg.trust,
        };

        let groups = if wants(Service::Ec2) || wants(Service::Rds) {
            Some(network::fetch(&aws_sdk_ec2::Client::new(&conf)).await)
        } else {
            None
        };
        let mut fail = |kind: &str, message: String| {
            out.failed.push(PartFailure {
                scope: self.scope(kind, account, &region),
                message,
            })
        };

        let mut resources: Vec<Resource> = Vec::new();
        if wants(Service::Ec2) {
            match &groups {
                Some(Ok(g)) => resources.extend(ec2::resources(g, &ctx, &self.cfg.extra_data_store_ports)),
                Some(Err(e)) => fail(ec2::KIND.name, format!("{account}/{region} ec2: {e}")),
                None => {}
            }
        }
        if wants(Service::Opensearch) {
            match opensearch::collect(&aws_sdk_opensearch::Client::new(&conf), &ctx).await {
                Ok(rs) => resources.extend(rs),
                Err(e) => fail(opensearch::KIND.name, format!("{account}/{region} opensearch: {e}")),
            }
        }
        if wants(Service::Rds) {
            let result = match &groups {
                Some(Ok(g)) => rds::collect(&aws_sdk_rds::Client::new(&conf), &ctx, g).await,
                Some(Err(e)) => Err(anyhow::anyhow!("security groups unavailable: {e}")),
                None => Err(anyhow::anyhow!("security groups not fetched")),
            };
            match result {
                Ok(rs) => resources.extend(rs),
                Err(e) => {
                    fail(rds::INSTANCE_KIND.name, format!("{account}/{region} rds: {e:#}"));
                    fail(
                        rds::CLUSTER_KIND.name,
                        format!("{account}/{region} rds clusters: {e:#}"),
                    );
                }
            }
        }
        out.resources = resources;
        out
    }
}

/// Where a collector is looking, and what is ours.
pub struct Ctx<'a> {
    pub source: &'a str,
    pub account: &'a str,
    pub region: &'a str,
    pub trust: &'a TrustConfig,
}

impl Ctx<'_> {
    pub fn resource(&self, kind: &'static str, name: &str, posture: serde_json::Value) -> Resource {
        Resource::new(
            self.source,
            kind,
            &format!("{}/{}/{name}", self.account, self.region),
            posture,
        )
    }
}

impl Source for AwsSource {
    fn target(&self) -> String {
        let who = self
            .cfg
            .assume_role_arn
            .clone()
            .or_else(|| self.cfg.profile.as_ref().map(|p| format!("profile {p}")))
            .unwrap_or_else(|| "default credentials".into());
        let at = self
            .cfg
            .endpoint_url
            .as_ref()
            .map(|e| format!(" via {}", crate::secret::redact_dsn(e)))
            .unwrap_or_default();
        format!("aws {who}, regions {}{at}", self.cfg.regions.join(","))
    }

    fn revert<'a>(
        &'a self,
        resource_id: &'a str,
        calls: &'a [crate::revert::Call],
    ) -> BoxFuture<'a, anyhow::Result<Vec<String>>> {
        Box::pin(self.run_revert(resource_id, calls))
    }

    fn collect(&self) -> BoxFuture<'_, anyhow::Result<Collection>> {
        Box::pin(async move {
            let (sdk, account) = self.base().await?;
            let regions = self.regions(sdk).await?;
            let parts: Vec<Collection> = stream::iter(regions)
                .map(|r| self.collect_region(sdk, account, r))
                .buffer_unordered(self.cfg.max_concurrent_regions)
                .collect()
                .await;
            let mut all = Collection::default();
            for p in parts {
                all.resources.extend(p.resources);
                all.failed.extend(p.failed);
            }
            all.resources.sort_by(|a, b| a.id.cmp(&b.id));
            all.failed.sort_by(|a, b| a.scope.cmp(&b.scope));
            Ok(all)
        })
    }
}
