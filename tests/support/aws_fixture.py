"""Seed and change AWS resources in a moto server, for lockwatch's tests.

usage: aws_fixture.py ENDPOINT ACCOUNT REGION ACTION [ARGS...]   (prints one JSON object)
ACCOUNT other than moto's default 123456789012 is chosen with the x-moto-account-id header.
In an access policy, DOMAIN_ARN stands for the domain's own ARN (policies grant on it).
"""
import json
import sys

import boto3

DEFAULT_ACCOUNT = "123456789012"


def main():
    endpoint, account, region, action, *args = sys.argv[1:]

    def client(service):
        c = boto3.client(service, region_name=region, endpoint_url=endpoint,
                         aws_access_key_id="testing", aws_secret_access_key="testing")
        if account != DEFAULT_ACCOUNT:
            c.meta.events.register("before-send.*.*",
                                   lambda request, **_: request.headers.__setitem__("x-moto-account-id", account))
        return c

    os_, ec2, rds = (lambda: client("opensearch")), (lambda: client("ec2")), (lambda: client("rds"))
    out = {}
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
        (name,) = args
        out["id"] = ec2().create_security_group(GroupName=name, Description="lockwatch test")["GroupId"]
    elif action == "instance":
        (sg,) = args
        out["id"] = ec2().run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SecurityGroupIds=[sg])["Instances"][0]["InstanceId"]
    elif action in ("open", "close"):
        sg, port = args
        perm = [{"IpProtocol": "tcp", "FromPort": int(port), "ToPort": int(port), "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
        if action == "open":
            ec2().authorize_security_group_ingress(GroupId=sg, IpPermissions=perm)
        else:
            ec2().revoke_security_group_ingress(GroupId=sg, IpPermissions=perm)
    elif action == "rds":
        ident, sg = args
        rds().create_db_instance(DBInstanceIdentifier=ident, DBInstanceClass="db.t3.micro", Engine="postgres",
                                 MasterUsername="admin", MasterUserPassword="passw0rd-x", AllocatedStorage=20,
                                 PubliclyAccessible=False, VpcSecurityGroupIds=[sg], Port=5432, StorageEncrypted=True)
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
    else:
        raise SystemExit(f"unknown action {action}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
