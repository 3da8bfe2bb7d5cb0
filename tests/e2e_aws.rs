//! End to end against a real moto server: the daemon watches OpenSearch domains, security groups
//! and RDS, emails CRITICAL within a cycle when protection goes, RESOLVED when it is back.

mod support;
use std::time::Duration;
use support::*;

const ACCOUNT: &str = "123456789012";
const OWN: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"es:*","Resource":"DOMAIN_ARN/*"}]}"#;
const OPEN: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"wide-open","Effect":"Allow","Principal":"*","Action":"es:*","Resource":"DOMAIN_ARN/*"}]}"#;

fn aws_source(name: &str, moto: &Moto, regions: &str, extra: &str) -> String {
    format!(
        "[[sources]]\nkind = \"aws\"\nname = \"{name}\"\nregions = {regions}\nendpoint_url = \"{}\"\ntimeout = \"20s\"\n{extra}\n",
        moto.endpoint
    )
}

const T: Duration = Duration::from_secs(60);

struct Rig {
    _tmp: tempfile::TempDir,
    moto: Moto,
    smtp: Smtp,
    lw: Option<Lockwatch>,
}

impl Rig {
    fn new() -> Rig {
        let tmp = tempfile::tempdir().unwrap();
        let moto = Moto::start(tmp.path());
        let smtp = Smtp::start(tmp.path());
        Rig {
            _tmp: tmp,
            moto,
            smtp,
            lw: None,
        }
    }
    fn start(&mut self, sources: &str) -> &Lockwatch {
        let cfg = write_config(self._tmp.path(), self.smtp.port, sources);
        self.lw = Some(Lockwatch::start(&cfg));
        self.lw.as_ref().unwrap()
    }
    fn lw(&self) -> &Lockwatch {
        self.lw.as_ref().unwrap()
    }
    /// Exactly these mails about `id` since `mark`.
    fn expect(&self, mark: usize, id: &str, want: &[Expected<'_>]) -> Vec<Mail> {
        self.smtp.expect(mark, id, want, T)
    }
}

#[test]
fn opensearch_policy_opened_to_everyone_then_restored() {
    let mut rig = Rig::new();
    rig.moto.call(ACCOUNT, "us-east-1", "domain", &["orders", OWN]);
    rig.start(&aws_source(
        "prod",
        &rig.moto,
        "[\"us-east-1\"]",
        "services = [\"opensearch\"]",
    ));
    let id = format!("prod/opensearch/{ACCOUNT}/us-east-1/orders");
    rig.lw().quiet(2);
    assert!(
        rig.smtp.mails().is_empty(),
        "a restricted domain must not alert: {:?}",
        rig.smtp.mails()
    );

    let public: &[&str] = &["drift.weakened", "opensearch.policy.public"];
    let mark = rig.smtp.mark();
    rig.moto.call(ACCOUNT, "us-east-1", "policy", &["orders", OPEN]);
    let alert = rig.expect(mark, &id, &[("alert", Some("critical"), public)]);
    let text = &alert[0].text;
    assert!(text.contains("opensearch.policy.public"), "{text}");
    assert!(text.contains("weakened /policy_reach: restricted → public"), "{text}");
    assert!(
        text.contains(r#""Sid":"wide-open""#),
        "the alert quotes the statement that opened the domain: {text}"
    );
    let exposed = format!("lockwatch_resource_exposed{{resource=\"{id}\",source=\"prod\"}}");
    wait_for("exposed = 1", Duration::from_secs(20), || {
        (metric(&rig.lw().metrics(), &exposed) == Some(1.0)).then_some(())
    });

    let mark = rig.smtp.mark();
    rig.moto.call(ACCOUNT, "us-east-1", "policy", &["orders", OWN]);
    let resolved = rig.expect(mark, &id, &[("resolved", None, public)]);
    assert_eq!(resolved[0].record["in_reply_to"], alert[0].record["message_id"]);
    wait_for("exposed = 0", Duration::from_secs(20), || {
        (metric(&rig.lw().metrics(), &exposed) == Some(0.0)).then_some(())
    });
    let (_, history, _) = rig.lw().cli(&["history", &id]);
    assert!(
        history.contains("/policy_reach: restricted → public")
            && history.contains("/policy_reach: public → restricted"),
        "{history}"
    );
}

#[test]
fn anonymous_auth_and_https_enforcement() {
    let mut rig = Rig::new();
    rig.moto.call(ACCOUNT, "us-east-1", "domain", &["search", OPEN, "fgac"]);
    rig.start(&aws_source(
        "prod",
        &rig.moto,
        "[\"us-east-1\"]",
        "services = [\"opensearch\"]",
    ));
    let id = format!("prod/opensearch/{ACCOUNT}/us-east-1/search");
    // An open policy with FGAC is AWS's recommended shape: HIGH, not exposed, not critical.
    let fgac: &[&str] = &["opensearch.policy.public_with_fgac"];
    rig.expect(0, &id, &[("alert", Some("high"), fgac)]);

    let mark = rig.smtp.mark();
    rig.moto.call(ACCOUNT, "us-east-1", "anonymous", &["search", "on"]);
    let with_anon: &[&str] = &[
        "drift.weakened",
        "opensearch.fgac.anonymous_auth",
        "opensearch.policy.public_with_fgac",
    ];
    rig.expect(mark, &id, &[("alert", Some("critical"), with_anon)]);
    // The open-policy-with-FGAC alert stays open: a partial resolution, never an all-clear.
    let mark = rig.smtp.mark();
    rig.moto.call(ACCOUNT, "us-east-1", "anonymous", &["search", "off"]);
    rig.expect(mark, &id, &[("partly-resolved", Some("high"), with_anon)]);

    let mark = rig.smtp.mark();
    rig.moto.call(ACCOUNT, "us-east-1", "https", &["search", "off"]);
    let with_http: &[&str] = &[
        "drift.weakened",
        "opensearch.https.not_enforced",
        "opensearch.policy.public_with_fgac",
    ];
    rig.expect(mark, &id, &[("alert", Some("high"), with_http)]);
    let mark = rig.smtp.mark();
    rig.moto.call(ACCOUNT, "us-east-1", "https", &["search", "on"]);
    rig.expect(mark, &id, &[("partly-resolved", Some("high"), with_http)]);
    rig.lw().quiet(2);
    assert!(
        !rig.smtp.received().iter().any(|m| m.kind == "resolved"),
        "never an all-clear while the FGAC alert is open"
    );
}

#[test]
fn security_group_opened_on_9200_in_front_of_a_public_instance() {
    let mut rig = Rig::new();
    let sg = rig.moto.call(ACCOUNT, "us-east-1", "sg", &["search-nodes"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    rig.moto.call(ACCOUNT, "us-east-1", "instance", &[&sg]);
    rig.start(&aws_source(
        "prod",
        &rig.moto,
        "[\"us-east-1\"]",
        "services = [\"ec2\"]",
    ));
    let id = format!("prod/security-group/{ACCOUNT}/us-east-1/{sg}");
    let open: &[&str] = &["drift.weakened", "ec2.sg.datastore_open_to_world"];
    let mark = rig.smtp.mark();
    rig.moto.call(ACCOUNT, "us-east-1", "open", &[&sg, "9200"]);
    let alert = rig.expect(mark, &id, &[("alert", Some("critical"), open)]);
    let text = &alert[0].text;
    assert!(text.contains("ec2.sg.datastore_open_to_world"), "{text}");
    assert!(
        text.contains("Elasticsearch/OpenSearch 9200 from 0.0.0.0/0") && text.contains("(public IP)"),
        "{text}"
    );

    let mark = rig.smtp.mark();
    rig.moto.call(ACCOUNT, "us-east-1", "close", &[&sg, "9200"]);
    rig.expect(mark, &id, &[("resolved", None, open)]);
}

#[test]
fn rds_instance_made_publicly_accessible() {
    let mut rig = Rig::new();
    let sg = rig.moto.call(ACCOUNT, "eu-west-1", "sg", &["db"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    rig.moto.call(ACCOUNT, "eu-west-1", "rds", &["orders-db", &sg]);
    rig.start(&aws_source(
        "prod",
        &rig.moto,
        "[\"eu-west-1\"]",
        "services = [\"rds\"]",
    ));
    let id = format!("prod/rds/{ACCOUNT}/eu-west-1/orders-db");
    rig.lw().quiet(2);
    assert!(rig.smtp.mails().is_empty(), "{:?}", rig.smtp.mails());

    let mark = rig.smtp.mark();
    rig.moto.call(ACCOUNT, "eu-west-1", "rds-public", &["orders-db", "on"]);
    let high = rig.expect(
        mark,
        &id,
        &[("alert", Some("high"), &["drift.weakened", "rds.publicly_accessible"])],
    );
    assert!(
        high[0].text.contains("the database was made publicly accessible"),
        "{}",
        high[0].text
    );
    // Its security group then opens the port to the world: critical.
    let mark = rig.smtp.mark();
    rig.moto.call(ACCOUNT, "eu-west-1", "open", &[&sg, "5432"]);
    let both: &[&str] = &["drift.weakened", "rds.public.open_to_world", "rds.publicly_accessible"];
    rig.expect(mark, &id, &[("alert", Some("critical"), both)]);
    let mark = rig.smtp.mark();
    rig.moto.call(ACCOUNT, "eu-west-1", "close", &[&sg, "5432"]);
    rig.expect(mark, &id, &[("partly-resolved", Some("high"), both)]);
    let mark = rig.smtp.mark();
    rig.moto.call(ACCOUNT, "eu-west-1", "rds-public", &["orders-db", "off"]);
    rig.expect(
        mark,
        &id,
        &[("resolved", None, &["drift.weakened", "rds.publicly_accessible"])],
    );
}

#[test]
fn two_accounts_two_regions_and_a_failing_region() {
    let mut rig = Rig::new();
    rig.moto.call(ACCOUNT, "us-east-1", "domain", &["alpha", OWN]);
    rig.moto.call("222222222222", "eu-west-1", "domain", &["beta", OPEN]);
    let sources = aws_source(
        "acct-a",
        &rig.moto,
        "[\"us-east-1\", \"eu-west-1\"]",
        "services = [\"opensearch\"]",
    ) + &aws_source(
        "acct-b",
        &rig.moto,
        "[\"us-east-1\", \"eu-west-1\", \"ap-nowhere-1\"]",
        "services = [\"opensearch\"]\nassume_role_arn = \"arn:aws:iam::222222222222:role/lockwatch-reader\"\nexternal_id = \"x-123\"",
    );
    rig.start(&sources);
    let a = format!("acct-a/opensearch/{ACCOUNT}/us-east-1/alpha");
    assert!(rig.lw().metrics().contains(&a), "the first account's domain is watched");
    let b = "acct-b/opensearch/222222222222/eu-west-1/beta".to_string();
    // The open domain in the other account alerts although one of that source's regions fails.
    rig.expect(0, &b, &[("alert", Some("critical"), &["opensearch.policy.public"])]);
    let m = rig.lw().metrics();
    assert!(
        metric(&m, "lockwatch_scan_errors_total{source=\"acct-b\"}").unwrap_or(0.0) >= 1.0,
        "{m}"
    );
    assert_eq!(
        metric(&m, "lockwatch_scan_errors_total{source=\"acct-a\"}"),
        Some(0.0),
        "{m}"
    );
    assert!(!m.contains("ap-nowhere-1/"), "a failing region yields no resources");

    let (code, out, _) = rig.lw().cli(&["scan", "--format", "json"]);
    assert_eq!(code, 1, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let errors = v["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["source"], "acct-b");
    assert!(
        errors[0]["message"].as_str().unwrap().contains("ap-nowhere-1"),
        "{errors:?}"
    );
}

#[test]
fn scan_json_lists_every_exposed_resource_and_no_other() {
    let rig = Rig::new();
    let m = &rig.moto;
    m.call(ACCOUNT, "us-east-1", "domain", &["open-no-fgac", OPEN]);
    m.call(ACCOUNT, "us-east-1", "domain", &["open-with-fgac", OPEN, "fgac"]);
    m.call(ACCOUNT, "us-east-1", "domain", &["closed", OWN]);
    m.call(ACCOUNT, "us-east-1", "domain", &["open-in-vpc", OPEN, "vpc"]);
    let public_sg = m.call(ACCOUNT, "us-east-1", "sg", &["public"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    m.call(ACCOUNT, "us-east-1", "instance", &[&public_sg]);
    m.call(ACCOUNT, "us-east-1", "open", &[&public_sg, "27017"]);
    let idle_sg = m.call(ACCOUNT, "us-east-1", "sg", &["idle"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    m.call(ACCOUNT, "us-east-1", "open", &[&idle_sg, "6379"]);
    m.call(ACCOUNT, "us-east-1", "rds", &["db-private", &idle_sg]);
    m.call(ACCOUNT, "us-east-1", "aurora", &["aurora-plain"]);
    m.call(ACCOUNT, "us-east-1", "domain", &["legacy-es", OPEN, "es7"]);
    let cfg = write_config(
        rig._tmp.path(),
        rig.smtp.port,
        &aws_source("prod", m, "[\"us-east-1\"]", ""),
    );
    let (code, out, err) = cli(&cfg, &["scan", "--format", "json", "--fail-on", "critical"]);
    assert_eq!(code, 1, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["errors"].as_array().unwrap().is_empty(), "{}", v["errors"]);
    let mut exposed: Vec<&str> = v["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["exposed"] == true)
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    exposed.sort();
    let mut want = vec![
        format!("prod/opensearch/{ACCOUNT}/us-east-1/legacy-es"),
        format!("prod/opensearch/{ACCOUNT}/us-east-1/open-no-fgac"),
        format!("prod/security-group/{ACCOUNT}/us-east-1/{public_sg}"),
    ];
    want.sort();
    assert_eq!(exposed, want);
    let ids: Vec<&str> = v["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    for expected in ["open-with-fgac", "closed", "open-in-vpc", "db-private", &idle_sg] {
        assert!(
            ids.iter().any(|i| i.ends_with(expected)),
            "{expected} missing from {ids:?}"
        );
    }
    let find = |suffix: &str| {
        v["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"].as_str().unwrap().ends_with(suffix))
            .cloned()
    };
    let aurora = find("/rds-cluster/123456789012/us-east-1/aurora-plain").expect("the Aurora cluster is listed");
    assert_eq!(aurora["kind"], "rds-cluster");
    assert_eq!(aurora["findings"][0]["rule"], "rds.storage.unencrypted");
    let legacy = find("/legacy-es").expect("the legacy Elasticsearch domain is listed");
    assert_eq!(legacy["findings"][0]["rule"], "opensearch.policy.public");
}

fn field(v: serde_json::Value, key: &str) -> String {
    v[key].as_str().unwrap_or_else(|| panic!("{key} in {v}")).to_string()
}

/// A rule that names a customer-managed prefix list is as open as the list's entries: adding
/// 0.0.0.0/0 to the list opens 5432 on every group that uses it; taking it out resolves.
#[test]
fn prefix_list_gains_the_world_in_front_of_a_public_instance() {
    let mut rig = Rig::new();
    let m = &rig.moto;
    let sg = field(m.call(ACCOUNT, "us-east-1", "sg", &["db"]), "id");
    m.call(ACCOUNT, "us-east-1", "instance", &[&sg]);
    let pl = field(
        m.call(ACCOUNT, "us-east-1", "prefix-list", &["partners", "198.51.100.0/24"]),
        "id",
    );
    m.call(ACCOUNT, "us-east-1", "open", &[&sg, "5432", &pl]);
    let source = aws_source(
        "prod",
        &rig.moto,
        "[\"us-east-1\"]",
        "services = [\"ec2\"]\n[sources.trust]\ncidrs = [\"198.51.100.0/24\"]",
    );
    rig.start(&source);
    let id = format!("prod/security-group/{ACCOUNT}/us-east-1/{sg}");
    rig.lw().quiet(2);
    assert!(rig.smtp.mails().is_empty(), "{:#?}", rig.smtp.received());

    let open: &[&str] = &["drift.weakened", "ec2.sg.datastore_open_to_world"];
    let mark = rig.smtp.mark();
    rig.moto.call(
        ACCOUNT,
        "us-east-1",
        "prefix-list-set",
        &[&pl, "198.51.100.0/24", "0.0.0.0/0"],
    );
    let alert = rig.expect(mark, &id, &[("alert", Some("critical"), open)]);
    assert!(
        alert[0]
            .text
            .contains(&format!("PostgreSQL 5432 from {pl} (0.0.0.0/0)")),
        "{}",
        alert[0].text
    );
    assert!(
        alert[0]
            .text
            .contains(&format!("modify-managed-prefix-list --prefix-list-id {pl}")),
        "{}",
        alert[0].text
    );
    let mark = rig.smtp.mark();
    rig.moto
        .call(ACCOUNT, "us-east-1", "prefix-list-set", &[&pl, "198.51.100.0/24"]);
    rig.expect(mark, &id, &[("resolved", None, open)]);
}

/// `::/0` on a data-store port, in front of an instance with a global IPv6 address: critical
/// once the subnet routes ::/0 to an internet gateway; before that, one route away (high).
#[test]
fn ipv6_world_rule_in_front_of_an_instance_with_an_ipv6_address() {
    let mut rig = Rig::new();
    let m = &rig.moto;
    let net = m.call(ACCOUNT, "us-east-1", "vpc", &["10.40.0.0/16", "ipv6"]);
    let (vpc, subnet) = (field(net.clone(), "vpc"), field(net, "subnet"));
    let sg = field(m.call(ACCOUNT, "us-east-1", "sg", &["search6", &vpc]), "id");
    m.call(ACCOUNT, "us-east-1", "instance", &[&sg, &subnet, "ipv6"]);
    rig.start(&aws_source(
        "prod",
        &rig.moto,
        "[\"us-east-1\"]",
        "services = [\"ec2\"]",
    ));
    let id = format!("prod/security-group/{ACCOUNT}/us-east-1/{sg}");
    rig.lw().quiet(2);
    assert!(rig.smtp.mails().is_empty(), "{:#?}", rig.smtp.received());

    let open: &[&str] = &["drift.weakened", "ec2.sg.datastore_open_to_world"];
    let mark = rig.smtp.mark();
    rig.moto.call(ACCOUNT, "us-east-1", "open", &[&sg, "9200", "::/0"]);
    let first = rig.expect(mark, &id, &[("alert", Some("high"), open)]);
    assert!(
        first[0].text.contains("no internet route for ipv6") && first[0].text.contains("one route away"),
        "{}",
        first[0].text
    );
    let mark = rig.smtp.mark();
    rig.moto.call(ACCOUNT, "us-east-1", "internet-route", &[&vpc, "on"]);
    let now = rig.expect(mark, &id, &[("alert", Some("critical"), open)]);
    assert!(
        now[0].subject.contains("reachable from the internet"),
        "{}",
        now[0].subject
    );
    let mark = rig.smtp.mark();
    rig.moto.call(ACCOUNT, "us-east-1", "close", &[&sg, "9200", "::/0"]);
    rig.expect(mark, &id, &[("resolved", None, open)]);
}

/// Publicly accessible RDS in a subnet without an internet-gateway route is one route away from
/// public (medium), even with its port open to the world; the route makes it critical.
#[test]
fn rds_publicly_accessible_with_and_without_an_internet_route() {
    let mut rig = Rig::new();
    let m = &rig.moto;
    let net = m.call(ACCOUNT, "us-east-1", "vpc", &["10.50.0.0/16"]);
    let (vpc, subnet) = (field(net.clone(), "vpc"), field(net, "subnet"));
    let sg = field(m.call(ACCOUNT, "us-east-1", "sg", &["db", &vpc]), "id");
    m.call(ACCOUNT, "us-east-1", "open", &[&sg, "5432"]);
    m.call(ACCOUNT, "us-east-1", "rds", &["ledger", &sg, &subnet, "public"]);
    let cfg = write_config(
        rig._tmp.path(),
        rig.smtp.port,
        &aws_source("prod", &rig.moto, "[\"us-east-1\"]", "services = [\"rds\"]"),
    );
    let id = format!("prod/rds/{ACCOUNT}/us-east-1/ledger");
    let (_, out, err) = cli(&cfg, &["scan", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    let db = v["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id.as_str())
        .unwrap_or_else(|| panic!("{id} in {out}"))
        .clone();
    let findings: Vec<(&str, &str)> = db["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["rule"].as_str().unwrap(), f["severity"].as_str().unwrap()))
        .collect();
    assert_eq!(findings, vec![("rds.publicly_accessible", "medium")], "{db}");
    assert_eq!(db["exposed"], false, "{db}");

    let mark = rig.smtp.mark();
    rig.start(&aws_source(
        "prod",
        &rig.moto,
        "[\"us-east-1\"]",
        "services = [\"rds\"]",
    ));
    rig.expect(mark, &id, &[("alert", Some("medium"), &["rds.publicly_accessible"])]);
    let mark = rig.smtp.mark();
    rig.moto.call(ACCOUNT, "us-east-1", "internet-route", &[&vpc, "on"]);
    rig.expect(
        mark,
        &id,
        &[(
            "alert",
            Some("critical"),
            &["drift.weakened", "rds.public.open_to_world", "rds.publicly_accessible"],
        )],
    );
}

/// The evaluator's own cases, end to end: one real (moto) domain per OpenSearch case of
/// tests/fixtures/iam-policy-cases.json, scanned; each domain's policy finding must be the
/// case's verdict (public endpoint, no fine-grained access control: public is critical).
#[test]
fn policy_cases_through_scan_on_seeded_domains() {
    let rig = Rig::new();
    let owner = "111122223333";
    let cases = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/iam-policy-cases.json");
    let seeded = rig
        .moto
        .call(owner, "us-east-1", "domains-from-cases", &[cases.to_str().unwrap()]);
    let domains = seeded["domains"].as_object().unwrap().clone();
    assert!(domains.len() >= 70, "{}", domains.len());
    let cfg = write_config(
        rig._tmp.path(),
        rig.smtp.port,
        &aws_source(
            "cases",
            &rig.moto,
            "[\"us-east-1\"]",
            &format!("services = [\"opensearch\"]\nassume_role_arn = \"arn:aws:iam::{owner}:role/lockwatch-reader\""),
        ),
    );
    let (_, out, err) = cli(&cfg, &["scan", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    assert!(v["errors"].as_array().unwrap().is_empty(), "{}", v["errors"]);
    let mut wrong = Vec::new();
    for (name, want) in &domains {
        let id = format!("cases/opensearch/{owner}/us-east-1/{name}");
        let Some(r) = v["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id.as_str())
        else {
            wrong.push(format!("{name}: not in the scan"));
            continue;
        };
        let rules: Vec<&str> = r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| f["rule"].as_str())
            .filter(|rule| rule.starts_with("opensearch.policy."))
            .collect();
        let got = match rules.as_slice() {
            [] => "restricted",
            ["opensearch.policy.public"] => "public",
            ["opensearch.policy.cross_account"] => "cross-account",
            other => {
                wrong.push(format!("{name}: unexpected policy findings {other:?}"));
                continue;
            }
        };
        if got != want["reach"] {
            wrong.push(format!("{name} ({}): want {}, got {got}", want["case"], want["reach"]));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
