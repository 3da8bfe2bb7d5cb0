//! The fixture files, run through the evaluator: `tests/fixtures/iam-policy-cases.json` (our own
//! cases, each with its reason and the source it was built from) and the shared
//! `tests/fixtures/opensearch-policies.json`.
use super::{Context, DYNAMODB, OPENSEARCH, Reach, Trust, evaluate};
use serde_json::Value;

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(String::from))
        .collect()
}

#[test]
fn own_policy_cases() {
    let doc: Value = serde_json::from_str(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/iam-policy-cases.json"
    )))
    .expect("JSON");
    let owner = doc["account_id"].as_str().expect("account_id");
    let cases = doc["cases"].as_array().expect("cases");
    assert!(cases.len() >= 45, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap_or("?");
        for field in ["reason", "source", "service"] {
            assert!(
                case[field].as_str().is_some_and(|s| !s.is_empty()),
                "{name}: missing {field}"
            );
        }
        let trust = Trust {
            accounts: strings(&case["trust"]["accounts"]),
            org_ids: strings(&case["trust"]["org_ids"]),
            cidrs: strings(&case["trust"]["cidrs"]),
        };
        let (service, arn) = match case["service"].as_str() {
            Some("dynamodb") => (&DYNAMODB, format!("arn:aws:dynamodb:us-east-1:{owner}:table/orders")),
            _ => (&OPENSEARCH, format!("arn:aws:es:us-east-1:{owner}:domain/orders")),
        };
        let ctx = Context {
            owner,
            resource_arn: &arn,
            trust: &trust,
            service,
            now: case["now"].as_i64(),
        };
        let v = match evaluate(&case["policy"], &ctx) {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!("{name}: error {e}"));
                continue;
            }
        };
        let want = &case["want"];
        let mut got = vec![("reach", v.reach.as_str().to_string())];
        got.push(("caller", v.caller.map(|c| format!("{c:?}")).unwrap_or_default()));
        got.push(("action", v.action.map(|a| format!("{a:?}")).unwrap_or_default()));
        for (field, value) in got {
            if let Some(w) = want[field].as_str()
                && w != value
            {
                failures.push(format!("{name}: {field} want {w}, got {value} — {}", v.reason));
            }
        }
        if v.reach > Reach::Restricted && v.statement.is_none() {
            failures.push(format!("{name}: no granting statement"));
        }
        if v.reason.is_empty() || !v.reason.ends_with('.') {
            failures.push(format!("{name}: reason is not a sentence: {:?}", v.reason));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn opensearch_fixture_verdicts() {
    let text = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/opensearch-policies.json"
    ));
    let doc: Value = serde_json::from_str(text).expect("fixture is JSON");
    let owner = doc["account_id"].as_str().expect("account_id");
    let trust = Trust::default();
    let arn = format!("arn:aws:es:us-east-1:{owner}:domain/orders");
    let ctx = Context {
        owner,
        resource_arn: &arn,
        trust: &trust,
        service: &OPENSEARCH,
        now: None,
    };
    let mut failures = Vec::new();
    let cases = doc["cases"].as_array().expect("cases");
    for case in cases {
        let name = case["name"].as_str().unwrap_or("?");
        let want = case["verdict"].as_str().unwrap_or("?");
        // A VPC domain's verdict is not the policy's alone: the domain's own assessment decides
        // it (`opensearch::tests::shared_fixture_through_the_domain_assessment`).
        if case["vpc"].as_bool().unwrap_or(false) {
            continue;
        }
        let got = evaluate(&case["policy"], &ctx).map_err(|e| format!("{name}: error {e}"));
        match got {
            Ok(v) if v.reach.as_str() == want => {}
            Ok(v) => failures.push(format!("{name}: want {want}, got {} — {}", v.reach.as_str(), v.reason)),
            Err(e) => failures.push(e),
        }
    }
    assert_eq!(cases.len(), 22);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
