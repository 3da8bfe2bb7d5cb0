//! Least privilege: config/iam-policy.json grants exactly the AWS actions the code calls. Fails
//! when the code starts calling an action the policy lacks, or the policy grants one not called.

use std::collections::BTreeSet;
use std::path::Path;

/// (file, receiver variable) → IAM service prefix of the SDK client it holds.
fn service_of(file: &str, receiver: &str) -> Option<&'static str> {
    match (file, receiver) {
        ("opensearch.rs", "client") => Some("es"),
        ("ec2.rs", "client") | (_, "ec2") => Some("ec2"),
        ("rds.rs", "client") => Some("rds"),
        (_, "sts") => Some("sts"),
        _ => None,
    }
}

fn pascal(op: &str) -> String {
    op.split('_').map(|w| w[..1].to_ascii_uppercase() + &w[1..]).collect()
}

/// Every `<client>.<operation>()` call in src/sources/aws, as `service:Operation` (lowercased:
/// IAM action names are case-insensitive).
fn actions_called() -> BTreeSet<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/sources/aws");
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_str().unwrap().to_string();
        // Drop test modules and whitespace, so calls split over lines by rustfmt are one token.
        let text = std::fs::read_to_string(&path).unwrap();
        let code: String = text
            .split("#[cfg(test)]")
            .next()
            .unwrap()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        for receiver in ["client", "ec2", "sts"] {
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

#[test]
fn policy_grants_exactly_the_actions_the_code_calls() {
    let policy: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/iam-policy.json")).unwrap(),
    )
    .unwrap();
    let mut granted = BTreeSet::new();
    for s in policy["Statement"].as_array().unwrap() {
        assert_eq!(s["Effect"], "Allow");
        for a in s["Action"].as_array().unwrap() {
            let a = a.as_str().unwrap();
            assert!(!a.contains('*'), "no wildcard actions: {a}");
            let verb = a.split(':').nth(1).unwrap();
            assert!(
                ["Describe", "List", "Get"].iter().any(|p| verb.starts_with(p)),
                "read-only actions only: {a}"
            );
            granted.insert(a.to_ascii_lowercase());
        }
    }
    let called = actions_called();
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
