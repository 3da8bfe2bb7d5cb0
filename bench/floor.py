"""The floor: the fewest paginated describe calls that answer the fleet benchmark's questions.

Security groups and the network interfaces that say which are in front of a public host;
OpenSearch domain names, then their configurations five at a time (DescribeDomains' limit);
RDS instances and clusters. Nothing is evaluated: this is what any scanner must at least pay.
Endpoint and credentials from the environment (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...).
"""
import sys

import boto3


def main():
    s = boto3.session.Session(region_name="us-east-1")
    ec2, os_, rds = s.client("ec2"), s.client("opensearch"), s.client("rds")
    n = {"security_groups": 0, "interfaces": 0, "domains": 0, "rds": 0}
    for page in ec2.get_paginator("describe_security_groups").paginate():
        n["security_groups"] += len(page["SecurityGroups"])
    for page in ec2.get_paginator("describe_network_interfaces").paginate():
        n["interfaces"] += len(page["NetworkInterfaces"])
    names = [d["DomainName"] for d in os_.list_domain_names()["DomainNames"]]
    for i in range(0, len(names), 5):
        n["domains"] += len(os_.describe_domains(DomainNames=names[i:i + 5])["DomainStatusList"])
    for page in rds.get_paginator("describe_db_instances").paginate():
        n["rds"] += len(page["DBInstances"])
    for page in rds.get_paginator("describe_db_clusters").paginate():
        n["rds"] += len(page["DBClusters"])
    print(n, file=sys.stderr)


if __name__ == "__main__":
    main()
