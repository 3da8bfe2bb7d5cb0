"""Seed and change AWS resources in a moto server, for lockwatch's tests.

usage: aws_fixture.py ENDPOINT ACCOUNT REGION ACTION [ARGS...]   (prints one JSON object)
ACCOUNT other than moto's default 123456789012 is chosen with the x-moto-account-id header.
In an access policy, DOMAIN_ARN stands for the domain's own ARN (policies grant on it).

The default VPC is made to look like AWS's own: an internet gateway with 0.0.0.0/0 routed to it
from the main route table (moto's default VPC has none). Other VPCs start without a route.
"""
import json
import os
import sys

import boto3

DEFAULT_ACCOUNT = "123456789012"


def main():
    endpoint, account, region, action, *args = sys.argv[1:]

    def client(service):
        c = boto3.client(service, region_name=region, endpoint_url=endpoint,
                         aws_access_key_id=os.environ.get("AWS_FIXTURE_KEY_ID", "testing"),
                         aws_secret_access_key=os.environ.get("AWS_FIXTURE_SECRET", "testing"))
        if account != DEFAULT_ACCOUNT:
            c.meta.events.register("before-send.*.*",
                                   lambda request, **_: request.headers.__setitem__("x-moto-account-id", account))
        return c

    os_, ec2, rds = (lambda: client("opensearch")), (lambda: client("ec2")), (lambda: client("rds"))
    out = {}

    def vpc_id(name):
        if name != "default":
            return name
        return ec2().describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]

    def main_table(vpc):
        tables = ec2().describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["RouteTables"]
        return next(t for t in tables if any(a.get("Main") for a in t["Associations"]))

    def internet_route(vpc, on):
        table = main_table(vpc)
        routes = [(r.get("DestinationCidrBlock"), r.get("DestinationIpv6CidrBlock")) for r in table["Routes"]
                  if r.get("GatewayId", "").startswith("igw-")]
        has_v6 = bool(ec2().describe_vpcs(VpcIds=[vpc])["Vpcs"][0].get("Ipv6CidrBlockAssociationSet"))
        if on:
            igws = ec2().describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [vpc]}])["InternetGateways"]
            if igws:
                igw = igws[0]["InternetGatewayId"]
            else:
                igw = ec2().create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
                ec2().attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
            if ("0.0.0.0/0", None) not in routes:
                ec2().create_route(RouteTableId=table["RouteTableId"], DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
            if has_v6 and (None, "::/0") not in routes:
                ec2().create_route(RouteTableId=table["RouteTableId"], DestinationIpv6CidrBlock="::/0", GatewayId=igw)
        else:
            for v4, v6 in routes:
                if v4:
                    ec2().delete_route(RouteTableId=table["RouteTableId"], DestinationCidrBlock=v4)
                else:
                    ec2().delete_route(RouteTableId=table["RouteTableId"], DestinationIpv6CidrBlock=v6)

    def permission(port, source):
        perm = {"IpProtocol": "tcp", "FromPort": int(port), "ToPort": int(port)}
        if source.startswith("pl-"):
            perm["PrefixListIds"] = [{"PrefixListId": source}]
        elif ":" in source:
            perm["Ipv6Ranges"] = [{"CidrIpv6": source}]
        else:
            perm["IpRanges"] = [{"CidrIp": source}]
        return [perm]

    if action in ("sg", "instance", "rds", "rds-many"):
        internet_route(vpc_id("default"), True)

    if action == "iam-users":
        # iam-users POLICY_FILE, against a moto started with INITIAL_NO_AUTH_ACTION_COUNT: an
        # admin (Action "*") and a reader holding exactly POLICY_FILE, each with an access key;
        # then unsigned requests until moto refuses one, so that IAM is enforced from here on.
        (policy_file,) = args
        iam = client("iam")
        keys = {}
        for user, doc in (("admin", json.dumps({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "*", "Resource": "*"}]})), ("reader", open(policy_file).read())):
            iam.create_user(UserName=user)
            iam.put_user_policy(UserName=user, PolicyName=f"{user}-policy", PolicyDocument=doc)
            k = iam.create_access_key(UserName=user)["AccessKey"]
            keys[user] = [k["AccessKeyId"], k["SecretAccessKey"]]
        sts = boto3.client("sts", region_name=region, endpoint_url=endpoint,
                           aws_access_key_id="AKIANOTAUSER0000000", aws_secret_access_key="not-a-secret")
        for _ in range(200):
            try:
                sts.get_caller_identity()
            except Exception:
                break
        else:
            raise SystemExit("moto never started enforcing IAM: is INITIAL_NO_AUTH_ACTION_COUNT set?")
        out.update(keys)
        print(json.dumps(out))
        return
    def domain_arn(name):
        return f"arn:aws:es:{region}:{account}:domain/{name}"

    if action == "domain":
        name, policy, *flags = args
        policy = policy.replace("DOMAIN_ARN", domain_arn(name))
        extra = {}
        if "fgac" in flags:
            extra["AdvancedSecurityOptions"] = {"Enabled": True, "InternalUserDatabaseEnabled": True,
                                                "MasterUserOptions": {"MasterUserName": "admin", "MasterUserPassword": "Adm1n-passw0rd!"}}
        if "vpc" in flags:
            subnet = ec2().describe_subnets()["Subnets"][0]["SubnetId"]
            extra["VPCOptions"] = {"SubnetIds": [subnet]}
        engine = "Elasticsearch_7.10" if "es7" in flags else "OpenSearch_2.11"
        os_().create_domain(DomainName=name, EngineVersion=engine, AccessPolicies=policy,
                            DomainEndpointOptions={"EnforceHTTPS": True, "TLSSecurityPolicy": "Policy-Min-TLS-1-2-2019-07"},
                            EncryptionAtRestOptions={"Enabled": True}, NodeToNodeEncryptionOptions={"Enabled": True}, **extra)
        out["name"] = name
    elif action == "domains-from-cases":
        # domains-from-cases FILE: one domain per OpenSearch case of the policy-case file (those
        # without trust or time settings), named orders-cNN, its policy granting on that domain
        # (only the literal "domain/orders" is renamed, so patterns for other domains stay so).
        import re
        (path,) = args
        cases = json.load(open(path))["cases"]
        out["domains"] = {}
        for i, case in enumerate(cases):
            if case["service"] != "opensearch" or case.get("trust") or case.get("now") is not None:
                continue
            name = f"orders-c{i:02d}"
            text = case["policy"] if isinstance(case["policy"], str) else json.dumps(case["policy"])
            policy = re.sub(r'domain/orders(?=[/"])', f"domain/{name}", text)
            os_().create_domain(DomainName=name, EngineVersion="OpenSearch_2.11", AccessPolicies=policy,
                                DomainEndpointOptions={"EnforceHTTPS": True, "TLSSecurityPolicy": "Policy-Min-TLS-1-2-2019-07"},
                                EncryptionAtRestOptions={"Enabled": True}, NodeToNodeEncryptionOptions={"Enabled": True})
            out["domains"][name] = {"case": case["name"], "reach": case["want"]["reach"]}
    elif action == "policy":
        name, policy = args
        policy = policy.replace("DOMAIN_ARN", domain_arn(name))
        os_().update_domain_config(DomainName=name, AccessPolicies=policy)
    elif action == "anonymous":
        name, state = args
        os_().update_domain_config(DomainName=name, AdvancedSecurityOptions={
            "Enabled": True, "InternalUserDatabaseEnabled": True, "AnonymousAuthEnabled": state == "on"})
    elif action == "https":
        name, state = args
        os_().update_domain_config(DomainName=name, DomainEndpointOptions={
            "EnforceHTTPS": state == "on", "TLSSecurityPolicy": "Policy-Min-TLS-1-2-2019-07"})
    elif action == "sg":
        name, *vpc = args
        extra = {"VpcId": vpc[0]} if vpc else {}
        out["id"] = ec2().create_security_group(GroupName=name, Description="lockwatch test", **extra)["GroupId"]
    elif action == "vpc":
        # vpc CIDR [ipv6]: a VPC with one subnet, no internet gateway route.
        cidr, *flags = args
        v = ec2().create_vpc(CidrBlock=cidr, AmazonProvidedIpv6CidrBlock="ipv6" in flags)["Vpc"]
        extra = {}
        if "ipv6" in flags:
            block = v["Ipv6CidrBlockAssociationSet"][0]["Ipv6CidrBlock"]
            extra["Ipv6CidrBlock"] = block.replace("/56", "/64")
        subnet_cidr = cidr.replace(".0.0/16", ".1.0/24")
        out["vpc"] = v["VpcId"]
        out["subnet"] = ec2().create_subnet(VpcId=v["VpcId"], CidrBlock=subnet_cidr, **extra)["Subnet"]["SubnetId"]
    elif action == "internet-route":
        vpc, state = args
        internet_route(vpc_id(vpc), state == "on")
    elif action == "instance":
        # instance SG [SUBNET [ipv6]]: in the default VPC it gets a public IPv4 (as on AWS); in a
        # given subnet only what is asked for (ipv6: one global IPv6 address).
        sg, *where = args
        if where:
            subnet, *flags = where
            extra = {"Ipv6AddressCount": 1} if "ipv6" in flags else {}
            eni = ec2().create_network_interface(SubnetId=subnet, Groups=[sg], **extra)["NetworkInterface"]["NetworkInterfaceId"]
            out["id"] = ec2().run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1,
                                            NetworkInterfaces=[{"DeviceIndex": 0, "NetworkInterfaceId": eni}])["Instances"][0]["InstanceId"]
        else:
            out["id"] = ec2().run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SecurityGroupIds=[sg])["Instances"][0]["InstanceId"]
    elif action in ("open", "close"):
        # open|close SG PORT [SOURCE]: SOURCE a CIDR (IPv4 or IPv6) or a prefix list; 0.0.0.0/0 by default.
        sg, port, *source = args
        perm = permission(port, source[0] if source else "0.0.0.0/0")
        if action == "open":
            ec2().authorize_security_group_ingress(GroupId=sg, IpPermissions=perm)
        else:
            ec2().revoke_security_group_ingress(GroupId=sg, IpPermissions=perm)
    elif action == "prefix-list":
        name, *cidrs = args
        out["id"] = ec2().create_managed_prefix_list(PrefixListName=name, MaxEntries=10, AddressFamily="IPv4",
                                                     Entries=[{"Cidr": c} for c in cidrs])["PrefixList"]["PrefixListId"]
    elif action == "prefix-list-set":
        # prefix-list-set ID CIDR...: the list holds exactly these entries afterwards.
        pl, *cidrs = args
        have = {e["Cidr"] for e in ec2().get_managed_prefix_list_entries(PrefixListId=pl)["Entries"]}
        version = ec2().describe_managed_prefix_lists(PrefixListIds=[pl])["PrefixLists"][0]["Version"]
        change = {}
        if set(cidrs) - have:
            change["AddEntries"] = [{"Cidr": c} for c in sorted(set(cidrs) - have)]
        if have - set(cidrs):
            change["RemoveEntries"] = [{"Cidr": c} for c in sorted(have - set(cidrs))]
        if change:
            ec2().modify_managed_prefix_list(PrefixListId=pl, CurrentVersion=version, **change)
    elif action == "rds":
        # rds IDENT SG [SUBNET [public]]: in SUBNET's VPC through a subnet group of that subnet.
        ident, sg, *where = args
        extra = {}
        if where:
            subnet, *flags = where
            rds().create_db_subnet_group(DBSubnetGroupName=f"{ident}-subnets", DBSubnetGroupDescription="lockwatch test",
                                         SubnetIds=[subnet])
            extra = {"DBSubnetGroupName": f"{ident}-subnets"}
            extra["PubliclyAccessible"] = "public" in flags
        else:
            extra["PubliclyAccessible"] = False
        rds().create_db_instance(DBInstanceIdentifier=ident, DBInstanceClass="db.t3.micro", Engine="postgres",
                                 MasterUsername="admin", MasterUserPassword="passw0rd-x", AllocatedStorage=20,
                                 VpcSecurityGroupIds=[sg], Port=5432, StorageEncrypted=True, **extra)
    elif action == "aurora":
        (ident,) = args
        rds().create_db_cluster(DBClusterIdentifier=ident, Engine="aurora-postgresql", MasterUsername="admin",
                                MasterUserPassword="passw0rd-x", StorageEncrypted=False)
    elif action == "rds-many":
        prefix, count, sg = args
        for i in range(int(count)):
            rds().create_db_instance(DBInstanceIdentifier=f"{prefix}-{i:03d}", DBInstanceClass="db.t3.micro", Engine="postgres",
                                     MasterUsername="admin", MasterUserPassword="passw0rd-x", AllocatedStorage=20,
                                     PubliclyAccessible=False, VpcSecurityGroupIds=[sg], Port=5432, StorageEncrypted=True)
        out["count"] = int(count)
    elif action == "rds-public":
        ident, state = args
        rds().modify_db_instance(DBInstanceIdentifier=ident, PubliclyAccessible=state == "on", ApplyImmediately=True)
    elif action == "get-policy":
        # get-policy NAME: the domain's access policy as the API returns it (parsed).
        (name,) = args
        cfg = os_().describe_domain_config(DomainName=name)["DomainConfig"]
        out["policy"] = json.loads(cfg["AccessPolicies"]["Options"] or "{}")
    elif action == "get-ingress":
        # get-ingress SG: the group's ingress rules as [protocol, from, to, source], sorted.
        (sg,) = args
        g = ec2().describe_security_groups(GroupIds=[sg])["SecurityGroups"][0]
        rules = []
        for p in g["IpPermissions"]:
            for r in p.get("IpRanges", []):
                rules.append([p["IpProtocol"], p.get("FromPort"), p.get("ToPort"), r["CidrIp"]])
            for r in p.get("Ipv6Ranges", []):
                rules.append([p["IpProtocol"], p.get("FromPort"), p.get("ToPort"), r["CidrIpv6"]])
        out["ingress"] = sorted(rules)
    else:
        raise SystemExit(f"unknown action {action}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
