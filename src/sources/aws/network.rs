//! One region's network facts, read once per cycle and shared by the security-group and RDS
//! kinds: security groups, every network interface with every public address it has, the
//! managed prefix lists that rules name, and the route tables (which subnets route to an
//! internet gateway). Reads only; every listing is complete or the whole region fails (a
//! partial list proves nothing about absence).

use super::sdk_error;
use std::collections::{BTreeMap, BTreeSet};

/// Items per EC2 list call. Without MaxResults EC2 answers everything in one response (tens of
/// megabytes for ten thousand groups, all held at once while parsed); pages of 1,000 (the
/// largest EC2 allows) bound the memory a scan needs at the cost of one call per 1,000 items.
const PAGE_SIZE: i32 = 1000;

pub struct Group {
    pub id: String,
    pub name: String,
    pub vpc_id: Option<String>,
    pub rules: Vec<super::ec2::Rule>,
}

/// A network interface and everything that decides whether the internet can reach it.
#[derive(Debug, Clone, Default)]
pub struct Interface {
    pub id: String,
    /// `instance`, `rds`, `opensearch`, `elasticache`, `other`.
    pub attached_to: &'static str,
    pub resource: Option<String>,
    pub groups: Vec<String>,
    pub subnet_id: Option<String>,
    pub vpc_id: Option<String>,
    /// Public IPv4 addresses: the interface's own association and Elastic IPs on secondary
    /// private addresses.
    pub public_v4: Vec<String>,
    /// Global IPv6 addresses (AWS routes them from the internet when the subnet has an
    /// internet-gateway route for ::/0).
    pub public_v6: Vec<String>,
}

/// A managed prefix list a rule names.
#[derive(Debug, Clone, PartialEq)]
pub struct PrefixList {
    pub name: String,
    /// Owned by AWS (`com.amazonaws.*`): AWS service ranges, not the internet.
    pub aws_managed: bool,
    /// The entries (customer-managed lists only).
    pub cidrs: Vec<String>,
}

/// Which route table each subnet uses, and which tables send traffic to an internet gateway.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    subnet_table: BTreeMap<String, String>,
    main_table: BTreeMap<String, String>,
    /// Table → (an IPv4 route to an internet gateway, an IPv6 one).
    to_igw: BTreeMap<String, (bool, bool)>,
}

/// Whether a subnet's traffic can reach the internet through an internet gateway, per family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InternetRoute {
    pub v4: bool,
    pub v6: bool,
}

impl Routes {
    /// The subnet's explicit table, or else its VPC's main table. A subnet whose table cannot
    /// be found is taken as routed: an unknown route is never reported as a safe one.
    pub fn internet_route(&self, subnet: Option<&str>, vpc: Option<&str>) -> InternetRoute {
        let table = subnet
            .and_then(|s| self.subnet_table.get(s))
            .or_else(|| vpc.and_then(|v| self.main_table.get(v)));
        match table.and_then(|t| self.to_igw.get(t)) {
            Some(&(v4, v6)) => InternetRoute { v4, v6 },
            None => InternetRoute { v4: true, v6: true },
        }
    }
}

/// Everything one region's EC2 listing said.
pub struct RegionNetwork {
    pub groups: Vec<Group>,
    pub interfaces: Vec<Interface>,
    pub prefix_lists: BTreeMap<String, PrefixList>,
    pub routes: Routes,
}

impl RegionNetwork {
    /// Interfaces that carry a security group, by group id.
    pub fn members(&self) -> BTreeMap<&str, Vec<&Interface>> {
        let mut out: BTreeMap<&str, Vec<&Interface>> = BTreeMap::new();
        for i in &self.interfaces {
            for g in &i.groups {
                out.entry(g.as_str()).or_default().push(i);
            }
        }
        out
    }

    /// The address ranges a rule source stands for: a CIDR itself, a customer-managed prefix
    /// list's entries (labelled with the list), nothing for AWS-managed lists and groups.
    pub fn expand(&self, source: &str) -> Vec<(String, String)> {
        if let Some(pl) = self.prefix_lists.get(source) {
            if pl.aws_managed {
                return Vec::new();
            }
            return pl
                .cidrs
                .iter()
                .map(|c| (c.clone(), format!("{source} ({c})")))
                .collect();
        }
        // Groups (`sg-…`, `account/sg-…`) admit their members, not address ranges; a prefix
        // list always resolves above (fetch fails on one it cannot read).
        if source.starts_with("pl-") || source.starts_with("sg-") || source.contains("/sg-") {
            return Vec::new();
        }
        vec![(source.to_string(), source.to_string())]
    }
}

pub async fn fetch(client: &aws_sdk_ec2::Client) -> Result<RegionNetwork, String> {
    let groups = security_groups(client).await?;
    let interfaces = interfaces(client).await?;
    let named: BTreeSet<&str> = groups
        .iter()
        .flat_map(|g| &g.rules)
        .map(|r| r.source.as_str())
        .filter(|s| s.starts_with("pl-"))
        .collect();
    let prefix_lists = if named.is_empty() {
        BTreeMap::new()
    } else {
        prefix_lists(client, &named).await?
    };
    let routes = routes(client).await?;
    Ok(RegionNetwork {
        groups,
        interfaces,
        prefix_lists,
        routes,
    })
}

async fn security_groups(client: &aws_sdk_ec2::Client) -> Result<Vec<Group>, String> {
    use super::ec2::Rule;
    let mut groups = Vec::new();
    let mut pages = client
        .describe_security_groups()
        .max_results(PAGE_SIZE)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
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
    Ok(groups)
}

async fn interfaces(client: &aws_sdk_ec2::Client) -> Result<Vec<Interface>, String> {
    let mut out = Vec::new();
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
            let instance = ni.attachment().and_then(|a| a.instance_id());
            let mut public_v4: Vec<String> = ni
                .association()
                .and_then(|a| a.public_ip())
                .into_iter()
                .chain(
                    ni.private_ip_addresses()
                        .iter()
                        .filter_map(|p| p.association().and_then(|a| a.public_ip())),
                )
                .map(str::to_string)
                .collect();
            public_v4.sort();
            public_v4.dedup();
            let mut public_v6: Vec<String> = ni
                .ipv6_addresses()
                .iter()
                .filter_map(|a| a.ipv6_address())
                .filter(|a| a.contains(':') && crate::net::scope_of(a) == crate::net::Scope::Public)
                .map(str::to_string)
                .collect();
            public_v6.sort();
            out.push(Interface {
                id: ni.network_interface_id().unwrap_or_default().to_string(),
                attached_to: super::ec2::attached_to(
                    ni.description().unwrap_or_default(),
                    ni.requester_id().unwrap_or_default(),
                    instance,
                ),
                resource: instance.map(str::to_string),
                groups: ni
                    .groups()
                    .iter()
                    .filter_map(|g| g.group_id().map(str::to_string))
                    .collect(),
                subnet_id: ni.subnet_id().map(str::to_string),
                vpc_id: ni.vpc_id().map(str::to_string),
                public_v4,
                public_v6,
            });
        }
    }
    Ok(out)
}

/// The prefix lists rules name: which are AWS's, and the entries of the others. A list a rule
/// names that the account cannot see fails the region: its entries decide who gets in.
async fn prefix_lists(
    client: &aws_sdk_ec2::Client,
    named: &BTreeSet<&str>,
) -> Result<BTreeMap<String, PrefixList>, String> {
    let mut out = BTreeMap::new();
    let mut pages = client.describe_managed_prefix_lists().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            format!(
                "listing managed prefix lists (ec2:DescribeManagedPrefixLists): {}",
                sdk_error(&e)
            )
        })?;
        for pl in page.prefix_lists() {
            let Some(id) = pl.prefix_list_id().filter(|id| named.contains(id)) else {
                continue;
            };
            let name = pl.prefix_list_name().unwrap_or_default().to_string();
            let aws_managed = pl.owner_id() == Some("AWS") || name.starts_with("com.amazonaws.");
            out.insert(
                id.to_string(),
                PrefixList {
                    name,
                    aws_managed,
                    cidrs: Vec::new(),
                },
            );
        }
    }
    if let Some(missing) = named.iter().find(|id| !out.contains_key(**id)) {
        return Err(format!(
            "a security group rule names prefix list {missing}, which ec2:DescribeManagedPrefixLists does not show to this account \
             (shared from another account and not visible?): its entries decide who can connect, so the region's security groups cannot be judged"
        ));
    }
    for (id, pl) in out.iter_mut().filter(|(_, pl)| !pl.aws_managed) {
        let mut pages = client
            .get_managed_prefix_list_entries()
            .prefix_list_id(id)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                format!(
                    "reading prefix list {id} (ec2:GetManagedPrefixListEntries): {}",
                    sdk_error(&e)
                )
            })?;
            pl.cidrs
                .extend(page.entries().iter().filter_map(|e| e.cidr()).map(str::to_string));
        }
        pl.cidrs.sort();
        pl.cidrs.dedup();
    }
    Ok(out)
}

async fn routes(client: &aws_sdk_ec2::Client) -> Result<Routes, String> {
    let mut r = Routes::default();
    let mut pages = client.describe_route_tables().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| format!("listing route tables (ec2:DescribeRouteTables): {}", sdk_error(&e)))?;
        for t in page.route_tables() {
            let Some(id) = t.route_table_id() else { continue };
            for a in t.associations() {
                if a.main() == Some(true) {
                    if let Some(vpc) = t.vpc_id() {
                        r.main_table.insert(vpc.to_string(), id.to_string());
                    }
                } else if let Some(subnet) = a.subnet_id() {
                    r.subnet_table.insert(subnet.to_string(), id.to_string());
                }
            }
            let mut igw = (false, false);
            for route in t.routes() {
                let to_igw = route.gateway_id().is_some_and(|g| g.starts_with("igw-"))
                    && route.state().is_none_or(|s| s.as_str() != "blackhole");
                if !to_igw {
                    continue;
                }
                // Any destination counts: a route to an internet gateway for part of the
                // internet still lets that part answer (and reach) the subnet.
                if route.destination_ipv6_cidr_block().is_some() {
                    igw.1 = true;
                } else {
                    igw.0 = true;
                }
            }
            r.to_igw.insert(id.to_string(), igw);
        }
    }
    Ok(r)
}

#[cfg(test)]
impl Routes {
    /// For tests and fixtures: one table per subnet.
    pub fn from_tables(subnets: &[(&str, bool, bool)]) -> Routes {
        let mut r = Routes::default();
        for (subnet, v4, v6) in subnets {
            let table = format!("rtb-{subnet}");
            r.subnet_table.insert(subnet.to_string(), table.clone());
            r.to_igw.insert(table, (*v4, *v6));
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_fall_back_to_the_main_table_and_unknown_is_routed() {
        let mut r = Routes::from_tables(&[("subnet-a", true, false), ("subnet-b", false, false)]);
        r.main_table.insert("vpc-1".into(), "rtb-main".into());
        r.to_igw.insert("rtb-main".into(), (false, true));
        let cases = [
            (Some("subnet-a"), Some("vpc-1"), (true, false)),
            (Some("subnet-b"), Some("vpc-1"), (false, false)),
            (Some("subnet-c"), Some("vpc-1"), (false, true)),
            (Some("subnet-c"), Some("vpc-2"), (true, true)),
            (None, None, (true, true)),
        ];
        for (subnet, vpc, (v4, v6)) in cases {
            assert_eq!(
                r.internet_route(subnet, vpc),
                InternetRoute { v4, v6 },
                "{subnet:?} {vpc:?}"
            );
        }
    }

    #[test]
    fn sources_expand_through_prefix_lists() {
        let mut prefix_lists = BTreeMap::new();
        prefix_lists.insert(
            "pl-1".to_string(),
            PrefixList {
                name: "office".into(),
                aws_managed: false,
                cidrs: vec!["0.0.0.0/0".into(), "203.0.113.0/24".into()],
            },
        );
        prefix_lists.insert(
            "pl-2".to_string(),
            PrefixList {
                name: "com.amazonaws.us-east-1.s3".into(),
                aws_managed: true,
                cidrs: vec![],
            },
        );
        let n = RegionNetwork {
            groups: vec![],
            interfaces: vec![],
            prefix_lists,
            routes: Routes::default(),
        };
        let s = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
        };
        assert_eq!(
            n.expand("pl-1"),
            s(&[
                ("0.0.0.0/0", "pl-1 (0.0.0.0/0)"),
                ("203.0.113.0/24", "pl-1 (203.0.113.0/24)")
            ])
        );
        assert_eq!(n.expand("pl-2"), s(&[]));
        assert_eq!(n.expand("sg-9"), s(&[]));
        assert_eq!(n.expand("111122223333/sg-9"), s(&[]));
        assert_eq!(n.expand("10.0.0.0/8"), s(&[("10.0.0.0/8", "10.0.0.0/8")]));
    }
}
