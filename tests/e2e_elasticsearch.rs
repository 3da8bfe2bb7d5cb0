//! End to end for self-hosted Elasticsearch / OpenSearch against tests/support/fake_es.py, which
//! answers as Elasticsearch 7.17, Elasticsearch 8.11 and OpenSearch 2.11 do (checked against the
//! official Python clients by fake_es_check.py): security on → removed → CRITICAL within a
//! cycle → restored → RESOLVED; an overloaded cluster is no all-clear.

mod support;
use serde_json::json;
use std::time::Duration;
use support::*;

const T: Duration = Duration::from_secs(30);

fn source(es: &FakeEs, pwfile: &std::path::Path) -> String {
    format!(
        "[[sources]]\nkind = \"elasticsearch\"\nname = \"logs\"\nurl = \"{}\"\nusername = \"lockwatch\"\npassword_file = \"{}\"\ntimeout = \"5s\"\n",
        es.url,
        pwfile.display()
    )
}

fn start(tmp: &std::path::Path, state: serde_json::Value) -> (FakeEs, Smtp, Lockwatch, String) {
    let es = FakeEs::start(tmp, state);
    let smtp = Smtp::start(tmp);
    let pwfile = tmp.join("es-password");
    std::fs::write(&pwfile, "mon-pw-es\n").unwrap();
    let cfg = write_config(tmp, smtp.port, &source(&es, &pwfile));
    let lw = Lockwatch::start(&cfg);
    let id = format!("logs/elasticsearch/127.0.0.1:{}", es.port);
    (es, smtp, lw, id)
}

fn removed_then_restored(flavor: &str, version: &str, off: serde_json::Value, on: serde_json::Value, rules: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let (es, smtp, lw, id) = start(
        tmp.path(),
        json!({"flavor": flavor, "security": true, "users": {"lockwatch": "mon-pw-es"}}),
    );
    let exposed = format!("lockwatch_resource_exposed{{resource=\"{id}\",source=\"logs\"}}");
    assert_eq!(lw.metric(&exposed), Some(0.0));
    lw.quiet(2);
    assert!(
        smtp.mails().is_empty(),
        "{flavor}: a secured cluster must not alert: {:?}",
        smtp.mails()
    );
    let (_, base, _) = lw.cli(&["baseline", "show", &id]);
    assert!(
        base.contains("\"security_enabled\": true") && base.contains("auth_required"),
        "{flavor}: {base}"
    );
    assert!(
        base.contains(&format!("\"version\": \"{version}\"")),
        "{flavor} is read as {version}: {base}"
    );
    let distribution = if flavor == "os2" { "opensearch" } else { "elasticsearch" };
    assert!(
        base.contains(&format!("\"distribution\": \"{distribution}\"")),
        "{flavor}: {base}"
    );

    let mark = smtp.mark();
    es.set(off);
    let alerts = smtp.expect_alert_in_one_or_two_steps(mark, &id, "critical", rules, T);
    wait_for("exposed = 1", T, || (lw.metric(&exposed) == Some(1.0)).then_some(()));

    let mark = smtp.mark();
    es.set(on);
    let resolved = smtp.expect(mark, &id, &[("resolved", None, rules)], T);
    assert_eq!(
        resolved[0].record["in_reply_to"], alerts[0].record["message_id"],
        "{flavor}: one thread"
    );
    lw.quiet(2);
    assert_eq!(smtp.since(mark, &id).len(), 1);
    assert!(!lw.proc.log_text().contains("mon-pw-es"));
}

#[test]
fn elasticsearch_8_security_disabled_then_enabled() {
    removed_then_restored(
        "es8",
        "8.11.3",
        json!({"security": false}),
        json!({"security": true}),
        &[
            "drift.weakened",
            "elasticsearch.anonymous.access",
            "elasticsearch.security.disabled",
        ],
    );
}

#[test]
fn opensearch_2_security_plugin_disabled_then_enabled() {
    removed_then_restored(
        "os2",
        "2.11.1",
        json!({"security": false}),
        json!({"security": true}),
        &[
            "drift.weakened",
            "elasticsearch.anonymous.access",
            "elasticsearch.security.disabled",
        ],
    );
}

#[test]
fn elasticsearch_7_anonymous_access_granted_then_removed() {
    removed_then_restored(
        "es7",
        "7.17.18",
        json!({"anonymous_roles": ["viewer"]}),
        json!({"anonymous_roles": []}),
        &[
            "drift.weakened",
            "elasticsearch.anonymous.access",
            "elasticsearch.anonymous.roles",
        ],
    );
}

/// A real cluster refuses an anonymous `viewer` the cluster-level reads (`/`, `_cat/indices`)
/// while `_search` works: read access without monitor privileges is still exposure.
#[test]
fn anonymous_read_access_without_cluster_privileges_is_exposure() {
    let tmp = tempfile::tempdir().unwrap();
    let (es, smtp, _lw, id) = start(
        tmp.path(),
        json!({"flavor": "es8", "security": true, "role_model": "real",
               "users": {"lockwatch": {"password": "mon-pw-es", "roles": ["lockwatch_monitor"]}},
               "roles": {"lockwatch_monitor": {"cluster": ["monitor"]}}}),
    );
    let mark = smtp.mark();
    es.set(json!({"anonymous_roles": ["viewer"]}));
    let alerts = smtp.expect_alert_in_one_or_two_steps(
        mark,
        &id,
        "critical",
        &[
            "drift.weakened",
            "elasticsearch.anonymous.access",
            "elasticsearch.anonymous.roles",
        ],
        T,
    );
    assert!(
        alerts.last().unwrap().text.contains("GET /_search succeeded"),
        "{}",
        alerts.last().unwrap().text
    );
}

/// The cluster answers 429 to the anonymous probes while anonymous access is on: that is not
/// "anonymous access is off".
#[test]
fn an_overloaded_cluster_is_no_all_clear() {
    let tmp = tempfile::tempdir().unwrap();
    let (es, smtp, lw, id) = start(
        tmp.path(),
        json!({"flavor": "es7", "security": true, "users": {"lockwatch": "mon-pw-es"}}),
    );
    let mark = smtp.mark();
    es.set(json!({"anonymous_roles": ["viewer"]}));
    let rules: &[&str] = &[
        "drift.weakened",
        "elasticsearch.anonymous.access",
        "elasticsearch.anonymous.roles",
    ];
    smtp.expect_alert_in_one_or_two_steps(mark, &id, "critical", rules, T);

    let mark = smtp.mark();
    es.set(json!({"overload": {"path": "*", "status": 429, "who": "anonymous"}}));
    let lost = smtp.expect(
        mark,
        &id,
        &[(
            "alert",
            Some("high"),
            &[
                "drift.weakened",
                "elasticsearch.anonymous.access",
                "elasticsearch.anonymous.roles",
                "elasticsearch.visibility.lost",
            ],
        )],
        T,
    );
    assert!(lost[0].text.contains("429"), "{}", lost[0].text);
    lw.quiet(3);
    assert_eq!(
        smtp.since(mark, &id).len(),
        1,
        "no RESOLVED while the probes are refused"
    );
}

#[test]
fn scan_reads_every_flavor_and_its_settings() {
    let tmp = tempfile::tempdir().unwrap();
    let pwfile = tmp.path().join("pw");
    std::fs::write(&pwfile, "pw").unwrap();
    for flavor in ["es7", "es8", "os2"] {
        let es = FakeEs::start(
            tmp.path(),
            json!({"flavor": flavor, "security": true, "users": {"lockwatch": "pw"}, "cors_any": true, "bind": ["[::]:9200", "0.0.0.0:9200"]}),
        );
        let cfg = write_config(tmp.path(), free_port(), &source(&es, &pwfile));
        let (code, out, err) = cli(&cfg, &["scan", "--format", "json", "--fail-on", "medium"]);
        assert_eq!(code, 1, "{flavor}: {out}{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let rules: Vec<&str> = v["resources"][0]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["rule"].as_str().unwrap())
            .collect();
        assert_eq!(
            rules,
            [
                "elasticsearch.tls.disabled",
                "elasticsearch.cors.allow_any_origin",
                "elasticsearch.listen.wide"
            ],
            "{flavor}: {out}"
        );
        assert_eq!(v["resources"][0]["exposed"], false);
        // A wrong monitoring password is an error, not a silent "protected".
        std::fs::write(&pwfile, "wrong").unwrap();
        let (code, out, _) = cli(&cfg, &["scan", "--format", "json"]);
        assert_eq!(code, 2, "{flavor}: {out}");
        assert!(out.contains("check the monitoring user"), "{flavor}: {out}");
        std::fs::write(&pwfile, "pw").unwrap();
    }
}
