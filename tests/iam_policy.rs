//! Least privilege: config/iam-policy.json grants exactly the AWS actions the code calls.
//!
//! Two checks that do not share a method: a real scan against a moto server that enforces IAM,
//! signed as a user holding exactly the policy (the oracle: any AccessDenied fails it, and a
//! policy missing one action is shown to fail), and a read of the source for SDK calls (which
//! also catches grants the code no longer uses).

mod support;
use support::*;

use std::collections::BTreeSet;
use std::path::Path;

/// (file, receiver variable) → IAM service prefix of the SDK client it holds.
fn service_of(file: &str, receiver: &str) -> Option<&'static str> {
    match (file, receiver) {
        ("opensearch.rs", "client") => Some("es"),
        ("ec2.rs" | "network.rs", "client") | (_, "ec2") => Some("ec2"),
        ("rds.rs", "client") | (_, "rds") => Some("rds"),
        (_, "opensearch") => Some("es"),
        (_, "sts") => Some("sts"),
        _ => None,
    }
}

fn pascal(op: &str) -> String {
    op.split('_').map(|w| w[..1].to_ascii_uppercase() + &w[1..]).collect()
}

/// Every `<client>.<operation>()` call in src/sources/aws, as `service:Operation` (lowercased:
/// IAM action names are case-insensitive): those of `revert.rs` (the write calls of `lockwatch
/// revert`) when `revert`, the others otherwise.
fn actions_called(revert: bool) -> BTreeSet<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/sources/aws");
    let mut out = BTreeSet::new();
    let mut files = Vec::new();
    let mut dirs = vec![dir];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    for path in files {
        let file = path.file_name().unwrap().to_str().unwrap().to_string();
        if (file == "revert.rs") != revert {
            continue;
        }
        // Drop test modules and whitespace, so calls split over lines by rustfmt are one token.
        let text = std::fs::read_to_string(&path).unwrap();
        let code: String = text
            .split("#[cfg(test)]")
            .next()
            .unwrap()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        for receiver in ["client", "ec2", "sts", "opensearch", "rds"] {
            let needle = format!("{receiver}.");
            let mut rest = code.as_str();
            while let Some(i) = rest.find(&needle) {
                let before = rest[..i].chars().last();
                rest = &rest[i + needle.len()..];
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                    continue;
                }
                let op: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                    .collect();
                if op.is_empty() || !rest[op.len()..].starts_with("()") {
                    continue;
                }
                let service =
                    service_of(&file, receiver).unwrap_or_else(|| panic!("{file}: unknown client variable {receiver}"));
                out.insert(format!("{service}:{}", pascal(&op)).to_ascii_lowercase());
            }
        }
    }
    out
}

/// The actions a policy file in config/ grants (lowercased), each checked by `check`.
fn granted_actions(file: &str, check: impl Fn(&str)) -> BTreeSet<String> {
    let policy: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config").join(file)).unwrap(),
    )
    .unwrap();
    let mut granted = BTreeSet::new();
    for s in policy["Statement"].as_array().unwrap() {
        assert_eq!(s["Effect"], "Allow");
        for a in s["Action"].as_array().unwrap() {
            let a = a.as_str().unwrap();
            check(a);
            granted.insert(a.to_ascii_lowercase());
        }
    }
    granted
}

#[test]
fn policy_grants_exactly_the_actions_the_code_calls() {
    let granted = granted_actions("iam-policy.json", |a| {
        assert!(!a.contains('*'), "no wildcard actions: {a}");
        let verb = a.split(':').nth(1).unwrap();
        assert!(
            ["Describe", "List", "Get"].iter().any(|p| verb.starts_with(p)),
            "read-only actions only: {a}"
        );
    });
    let called = actions_called(false);
    assert!(
        called.len() >= 8,
        "the scan found too few calls, is it still reading the code? {called:?}"
    );
    let missing: Vec<_> = called.difference(&granted).collect();
    let unused: Vec<_> = granted.difference(&called).collect();
    assert!(
        missing.is_empty(),
        "the code calls actions config/iam-policy.json does not grant: {missing:?}"
    );
    assert!(
        unused.is_empty(),
        "config/iam-policy.json grants actions the code never calls: {unused:?}"
    );
}

/// config/iam-policy-revert.json grants exactly the write calls `lockwatch revert` makes, and
/// nothing that reads or deletes.
#[test]
fn revert_policy_grants_exactly_the_write_calls() {
    let granted = granted_actions("iam-policy-revert.json", |a| {
        assert!(
            !a.contains('*') && !a.contains(":Delete"),
            "narrow write actions only: {a}"
        );
    });
    let called = actions_called(true);
    assert_eq!(
        called,
        [
            "ec2:revokesecuritygroupingress",
            "es:updatedomainconfig",
            "rds:modifydbinstance"
        ]
        .into_iter()
        .map(String::from)
        .collect::<BTreeSet<_>>(),
        "the scan of revert.rs"
    );
    assert_eq!(called, granted, "config/iam-policy-revert.json against revert.rs");
}

const ACCOUNT: &str = "123456789012";

/// A scan as a principal holding exactly `policy`, against a moto that enforces IAM, over a
/// region with every kind of resource the AWS source reads: the scan's errors.
fn scan_as_holder_of(policy: &str) -> (Vec<String>, Vec<String>) {
    let tmp = tempfile::tempdir().unwrap();
    let policy_file = tmp.path().join("policy.json");
    std::fs::write(&policy_file, policy).unwrap();
    let moto = Moto::start_with_env(tmp.path(), &[("INITIAL_NO_AUTH_ACTION_COUNT", "100")]);
    let users = moto.call(ACCOUNT, "us-east-1", "iam-users", &[policy_file.to_str().unwrap()]);
    let key = |user: &str, i: usize| users[user][i].as_str().unwrap().to_string();
    let admin = (key("admin", 0), key("admin", 1));
    let admin = Some((admin.0.as_str(), admin.1.as_str()));
    let sg = moto.call_as(admin, ACCOUNT, "us-east-1", "sg", &["db"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    moto.call_as(admin, ACCOUNT, "us-east-1", "instance", &[&sg]);
    let pl = moto.call_as(
        admin,
        ACCOUNT,
        "us-east-1",
        "prefix-list",
        &["partners", "198.51.100.0/24"],
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    moto.call_as(admin, ACCOUNT, "us-east-1", "open", &[&sg, "5432", &pl]);
    moto.call_as(admin, ACCOUNT, "us-east-1", "rds", &["orders-db", &sg]);
    moto.call_as(admin, ACCOUNT, "us-east-1", "aurora", &["ledger"]);
    moto.call_as(
        admin,
        ACCOUNT,
        "us-east-1",
        "domain",
        &["search", r#"{"Version":"2012-10-17","Statement":[]}"#],
    );
    let cfg = tmp.path().join("lockwatch.toml");
    std::fs::write(
        &cfg,
        format!(
            "[daemon]\nstate_dir = \"{}/state\"\n[[sources]]\nkind = \"aws\"\nname = \"prod\"\nregions = [\"us-east-1\"]\nendpoint_url = \"{}\"\n",
            tmp.path().display(),
            moto.endpoint
        ),
    )
    .unwrap();
    let out = std::process::Command::new(lockwatch_bin())
        .args(["--config", cfg.to_str().unwrap(), "scan", "--format", "json"])
        .env("AWS_ACCESS_KEY_ID", key("reader", 0))
        .env("AWS_SECRET_ACCESS_KEY", key("reader", 1))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}{}", String::from_utf8_lossy(&out.stderr)));
    let errors = v["errors"].as_array().unwrap().iter().map(|e| e.to_string()).collect();
    let kinds = v["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap().to_string())
        .collect();
    (errors, kinds)
}

/// moto (5.2.5) rejects the signature of OpenSearch's GET /2021-01-01/domain (ListDomainNames)
/// whenever it checks signatures at all: a moto gap, not a permission. Nothing else may fail.
fn moto_gap(error: &str) -> bool {
    error.contains("ListDomainNames") && error.contains("SignatureDoesNotMatch")
}

#[test]
fn a_principal_holding_exactly_the_policy_is_never_denied() {
    let policy = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/iam-policy.json")).unwrap();
    let (errors, kinds) = scan_as_holder_of(&policy);
    let real: Vec<&String> = errors.iter().filter(|e| !moto_gap(e)).collect();
    assert!(real.is_empty(), "the scan was refused something: {real:#?}");
    for kind in ["security-group", "rds", "rds-cluster"] {
        assert!(kinds.iter().any(|k| k == kind), "no {kind} read: {kinds:?} {errors:?}");
    }

    // The oracle can fail: the same policy without one action the code needs is refused.
    let doc: serde_json::Value = serde_json::from_str(&policy).unwrap();
    let mut less = doc.clone();
    less["Statement"][0]["Action"]
        .as_array_mut()
        .unwrap()
        .retain(|a| a != "ec2:DescribeRouteTables");
    assert_ne!(less, doc, "the policy grants ec2:DescribeRouteTables");
    let (errors, _) = scan_as_holder_of(&less.to_string());
    assert!(
        errors
            .iter()
            .any(|e| e.contains("DescribeRouteTables") && e.contains("not authorized")),
        "{errors:#?}"
    );
}
