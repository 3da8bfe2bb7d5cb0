"""Seed a moto server with a fleet of security groups, OpenSearch domains and RDS instances.

usage: fleet_seed.py ENDPOINT --sgs N --domains N --rds N  (prints the ground truth as JSON)

The fleet mixes the shapes a checker must tell apart; the ground truth is what a correct tool
reports as reachable from the internet, by construction:
  security groups (per 50): world-open on one data-store port (tcp, IPv4) | open to 10.0.0.0/8 |
    world-open on 443 only | world-open on 6379 over IPv6 (::/0) | all traffic from 0.0.0.0/0 |
    no ingress. Every second world-open group sits in front of a running instance.
  domains (per 10): Principal "*" | AWS "*" limited to 203.0.113.0/24 | "*" with SourceIp 0.0.0.0/0 |
    one account | inside a VPC with "*" | AWS ["*"] | no policy | four account-only.
  RDS (per 20): public with a world-open group | public behind a closed group | 18 private;
    the truth is "publicly accessible" (both public shapes), the open ones listed apart.
"""
import argparse
import json
import sys
from concurrent.futures import ThreadPoolExecutor

import boto3

REGION, ACCOUNT = "us-east-1", "123456789012"
DATA_PORTS = [3306, 5432, 6379, 9200, 27017]


def client(endpoint, service):
    return boto3.client(service, region_name=REGION, endpoint_url=endpoint,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def world(port, proto="tcp"):
    return {"IpProtocol": proto, "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}


def seed_sg(ec2, i):
    gid = ec2.create_security_group(GroupName=f"fleet-{i:05d}", Description="lockwatch bench")["GroupId"]
    shape = i % 50
    perms, truth = [], False
    if shape == 0:
        perms, truth = [world(DATA_PORTS[(i // 50) % len(DATA_PORTS)])], True
    elif shape == 1:
        perms = [{"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]
    elif shape == 2:
        perms = [world(443)]
    elif shape == 3:
        perms, truth = [{"IpProtocol": "tcp", "FromPort": 6379, "ToPort": 6379, "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}], True
    elif shape == 4:
        perms, truth = [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}], True
    if perms:
        ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=perms)
    attached = truth and (i // 50) % 2 == 0
    if attached:
        ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SecurityGroupIds=[gid])
    return gid, shape, truth, attached


POLICY_SHAPES = ["star", "aws_star_ip_limited", "star_ip_any", "account", "vpc_star", "aws_star_list", "none",
                 "account", "account", "account"]


def policy(name, shape):
    arn = f"arn:aws:es:{REGION}:{ACCOUNT}:domain/{name}/*"
    stmt = {"Effect": "Allow", "Action": "es:*", "Resource": arn}
    if shape in ("star", "vpc_star"):
        stmt["Principal"] = "*"
    elif shape == "aws_star_ip_limited":
        stmt["Principal"] = {"AWS": "*"}
        stmt["Condition"] = {"IpAddress": {"aws:SourceIp": ["203.0.113.0/24"]}}
    elif shape == "star_ip_any":
        stmt["Principal"] = "*"
        stmt["Condition"] = {"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}}
    elif shape == "aws_star_list":
        stmt["Principal"] = {"AWS": ["*"]}
    else:
        stmt["Principal"] = {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
    return json.dumps({"Version": "2012-10-17", "Statement": [stmt]})


def seed_domain(os_, subnet, j):
    name = f"fleet-{j:04d}"
    shape = POLICY_SHAPES[j % len(POLICY_SHAPES)]
    extra = {}
    if shape == "vpc_star":
        extra["VPCOptions"] = {"SubnetIds": [subnet]}
    if shape != "none":
        extra["AccessPolicies"] = policy(name, shape)
    os_.create_domain(DomainName=name, EngineVersion="OpenSearch_2.11", **extra,
                      DomainEndpointOptions={"EnforceHTTPS": True, "TLSSecurityPolicy": "Policy-Min-TLS-1-2-2019-07"},
                      EncryptionAtRestOptions={"Enabled": True}, NodeToNodeEncryptionOptions={"Enabled": True})
    return name, shape, shape in ("star", "star_ip_any", "aws_star_list")


def seed_rds(rds, open_sg, k):
    name = f"fleet-db-{k:04d}"
    shape = k % 20
    extra = {"VpcSecurityGroupIds": [open_sg]} if shape == 0 else {}
    rds.create_db_instance(DBInstanceIdentifier=name, DBInstanceClass="db.t3.micro", Engine="postgres",
                           MasterUsername="app", MasterUserPassword="not-a-secret-1", AllocatedStorage=20,
                           PubliclyAccessible=shape in (0, 1), **extra)
    return name, shape, shape in (0, 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("endpoint")
    ap.add_argument("--sgs", type=int, required=True)
    ap.add_argument("--domains", type=int, required=True)
    ap.add_argument("--rds", type=int, required=True)
    ap.add_argument("--threads", type=int, default=1, help="moto is not thread-safe (concurrent creates can fail with 500)")
    a = ap.parse_args()
    ec2, os_, rds = client(a.endpoint, "ec2"), client(a.endpoint, "opensearch"), client(a.endpoint, "rds")
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    open_sg = ec2.create_security_group(GroupName="fleet-rds-open", Description="rds")["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=open_sg, IpPermissions=[world(5432)])
    with ThreadPoolExecutor(a.threads) as pool:
        sgs = list(pool.map(lambda i: seed_sg(ec2, i), range(a.sgs)))
        domains = list(pool.map(lambda j: seed_domain(os_, subnet, j), range(a.domains)))
        dbs = list(pool.map(lambda k: seed_rds(rds, open_sg, k), range(a.rds)))
    truth = {
        "security_groups": sorted([g for g, _, t, _ in sgs if t] + [open_sg]),
        "security_groups_attached": sorted(g for g, _, t, att in sgs if att),
        "domains": sorted(n for n, _, t in domains if t),
        "rds": sorted(n for n, _, t in dbs if t),
        "rds_open_to_world": sorted(n for n, s, _ in dbs if s == 0),
        "shapes": {"security_groups": {g: s for g, s, _, _ in sgs}, "domains": {n: s for n, s, _ in domains}},
        "counts": {"security_groups": a.sgs + 1, "domains": a.domains, "rds": a.rds},
        "rds_open_sg": open_sg,
    }
    json.dump(truth, sys.stdout)


if __name__ == "__main__":
    main()
