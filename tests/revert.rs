//! `lockwatch revert` against a real moto server: the approved state put back, exactly, and
//! nothing else; `--dry-run` changes nothing; who did it is in `history`; self-hosted refused.

mod support;
use serde_json::json;
use std::time::Duration;
use support::*;

const ACCOUNT: &str = "123456789012";
const OWN: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"es:*","Resource":"DOMAIN_ARN/*"}]}"#;
const OPEN: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"wide-open","Effect":"Allow","Principal":"*","Action":"es:*","Resource":"DOMAIN_ARN/*"}]}"#;
const T: Duration = Duration::from_secs(60);

fn source(moto: &Moto, services: &str) -> String {
    format!(
        "[[sources]]\nkind = \"aws\"\nname = \"prod\"\nregions = [\"us-east-1\"]\nendpoint_url = \"{}\"\ntimeout = \"20s\"\nservices = [\"{services}\"]\n",
        moto.endpoint
    )
}

/// A policy with every single value made a one-element list and lists sorted, the way
/// lockwatch keeps it: the same policy, whatever the spelling.
fn normal(v: &serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(o) => serde_json::Value::Object(
            o.iter()
                .map(|(k, x)| {
                    let x = match x {
                        serde_json::Value::String(_) => json!([x]),
                        other => other.clone(),
                    };
                    (k.clone(), normal(&x))
                })
                .collect(),
        ),
        serde_json::Value::Array(a) => {
            let mut items: Vec<serde_json::Value> = a.iter().map(normal).collect();
            items.sort_by_key(|x| x.to_string());
            serde_json::Value::Array(items)
        }
        other => other.clone(),
    }
}

#[test]
fn an_opened_domain_policy_is_put_back_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let moto = Moto::start(tmp.path());
    let smtp = Smtp::start(tmp.path());
    moto.call(ACCOUNT, "us-east-1", "domain", &["orders", OWN]);
    let baseline = moto.call(ACCOUNT, "us-east-1", "get-policy", &["orders"])["policy"].clone();
    let lw = Lockwatch::start(&write_config(tmp.path(), smtp.port, &source(&moto, "opensearch")));
    let id = format!("prod/opensearch/{ACCOUNT}/us-east-1/orders");
    let public: &[&str] = &["drift.weakened", "opensearch.policy.public"];

    let mark = smtp.mark();
    moto.call(ACCOUNT, "us-east-1", "policy", &["orders", OPEN]);
    let alert = smtp.expect(mark, &id, &[("alert", Some("critical"), public)], T);

    // --dry-run prints the call and changes nothing.
    let (code, out, err) = lw.cli(&["revert", &id, "--dry-run"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("aws opensearch update-domain-config --region us-east-1 --domain-name orders --access-policies"),
        "{out}"
    );
    assert!(out.contains("--dry-run: nothing was changed"), "{out}");
    let now = moto.call(ACCOUNT, "us-east-1", "get-policy", &["orders"])["policy"].clone();
    assert_eq!(
        now["Statement"][0]["Sid"], "wide-open",
        "--dry-run changed the policy: {now}"
    );

    // The revert: the baseline policy, read back from the API, and one RESOLVED in the thread.
    let mark = smtp.mark();
    let (code, out, err) = lw.cli(&["revert", &id, "--rule", "opensearch.policy.public"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("done (1 call)"), "{out}");
    let now = moto.call(ACCOUNT, "us-east-1", "get-policy", &["orders"])["policy"].clone();
    assert_eq!(normal(&now), normal(&baseline), "read back: {now}");
    let resolved = smtp.expect(mark, &id, &[("resolved", None, public)], T);
    assert_eq!(resolved[0].record["in_reply_to"], alert[0].record["message_id"]);
    let (code, history, _) = lw.cli(&["history", &id]);
    assert_eq!(code, 0);
    assert!(
        history.contains("reverted to the baseline by ") && history.contains("for opensearch.policy.public"),
        "{history}"
    );

    // Nothing left to do.
    let (code, out, _) = lw.cli(&["revert", &id]);
    assert_eq!(code, 0);
    assert!(out.contains("nothing to revert"), "{out}");
}

#[test]
fn only_the_rules_added_since_the_baseline_are_revoked() {
    let tmp = tempfile::tempdir().unwrap();
    let moto = Moto::start(tmp.path());
    let smtp = Smtp::start(tmp.path());
    let sg = moto.call(ACCOUNT, "us-east-1", "sg", &["db-nodes"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    moto.call(ACCOUNT, "us-east-1", "instance", &[&sg]);
    moto.call(ACCOUNT, "us-east-1", "open", &[&sg, "5432", "10.0.0.0/8"]);
    let lw = Lockwatch::start(&write_config(tmp.path(), smtp.port, &source(&moto, "ec2")));
    let id = format!("prod/security-group/{ACCOUNT}/us-east-1/{sg}");

    // Beside the approved rule: the world on 5432, and an office range on 22 (not a data-store
    // port, so no finding, but still added since the baseline).
    let mark = smtp.mark();
    moto.call(ACCOUNT, "us-east-1", "open", &[&sg, "5432"]);
    let open: &[&str] = &["drift.weakened", "ec2.sg.datastore_open_to_world"];
    smtp.expect(mark, &id, &[("alert", Some("critical"), open)], T);
    moto.call(ACCOUNT, "us-east-1", "open", &[&sg, "22", "198.51.100.0/24"]);
    wait_for("the second rule in the current snapshot", T, || {
        let (_, h, _) = lw.cli(&["history", &id]);
        h.contains("198.51.100.0/24").then_some(())
    });

    // --rule limits the plan to what the rule is about; drift takes everything added.
    let (code, out, err) = lw.cli(&["revert", &id, "--dry-run"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.matches("aws ec2 revoke-security-group-ingress").count(), 2, "{out}");
    let mark = smtp.mark();
    let (code, out, err) = lw.cli(&["revert", &id]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        moto.call(ACCOUNT, "us-east-1", "get-ingress", &[&sg])["ingress"],
        json!([["tcp", 5432, 5432, "10.0.0.0/8"]]),
        "only the approved rule is left"
    );
    smtp.expect(mark, &id, &[("resolved", None, open)], T);
}

#[test]
fn self_hosted_and_unreadable_resources_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let redis = Redis::start(tmp.path(), "rv-pw");
    let smtp = Smtp::start(tmp.path());
    let config = write_config(
        tmp.path(),
        smtp.port,
        &format!(
            "[[sources]]\nkind = \"redis\"\nname = \"cache\"\nurl = \"redis://:rv-pw@127.0.0.1:{}\"\n",
            redis.port
        ),
    );
    let lw = Lockwatch::start(&config);
    let id = format!("cache/redis/127.0.0.1:{}", redis.port);
    let (code, _, err) = lw.cli(&["revert", &id]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("reverts AWS resources only"), "{err}");

    // An AWS resource whose current state cannot be read: refused, nothing planned.
    let moto = Moto::start(tmp.path());
    moto.call(ACCOUNT, "us-east-1", "domain", &["orders", OWN]);
    let dir = tmp.path().join("aws");
    std::fs::create_dir_all(&dir).unwrap();
    let aws = Lockwatch::start(&write_config(&dir, smtp.port, &source(&moto, "opensearch")));
    let id = format!("prod/opensearch/{ACCOUNT}/us-east-1/orders");
    let broken = std::fs::read_to_string(&aws.config)
        .unwrap()
        .replace(&moto.endpoint, "http://127.0.0.1:9");
    std::fs::write(&aws.config, broken).unwrap();
    let (code, out, err) = aws.cli(&["revert", &id]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("cannot read the current state") && err.contains("nothing was changed"),
        "{err}"
    );
}
