//! `kind = "aws"`: OpenSearch/Elasticsearch domains, EC2 security groups and RDS.

pub mod policy;
