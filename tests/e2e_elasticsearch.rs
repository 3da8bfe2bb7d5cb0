//! End to end for self-hosted Elasticsearch / OpenSearch against tests/support/fake_es.py, which
//! answers as Elasticsearch 7.17, Elasticsearch 8.11 and OpenSearch 2.11 do: security on →
//! removed → CRITICAL within a cycle → restored → RESOLVED.

mod support;
use serde_json::json;
use std::time::Duration;
use support::*;

fn source(es: &FakeEs, pwfile: &std::path::Path) -> String {
    format!(
        "[[sources]]\nkind = \"elasticsearch\"\nname = \"logs\"\nurl = \"{}\"\nusername = \"lockwatch\"\npassword_file = \"{}\"\ntimeout = \"5s\"\n",
        es.url,
        pwfile.display()
    )
}

fn security_removed_then_restored(flavor: &str, off: serde_json::Value, on: serde_json::Value, expect_rules: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let es = FakeEs::start(
        tmp.path(),
        json!({"flavor": flavor, "security": true, "users": {"lockwatch": "mon-pw-es"}}),
    );
    let smtp = Smtp::start(free_port(), tmp.path());
    let pwfile = tmp.path().join("es-password");
    std::fs::write(&pwfile, "mon-pw-es\n").unwrap();
    let port = free_port();
    let cfg = write_config(tmp.path(), port, smtp.port, &source(&es, &pwfile));
    let lw = Lockwatch::start(&cfg, port);
    let id = format!("logs/elasticsearch/127.0.0.1:{}", es.port);
    let exposed = format!("lockwatch_resource_exposed{{resource=\"{id}\",source=\"logs\"}}");
    wait_for("the first cycle", Duration::from_secs(30), || {
        metric(&lw.metrics(), &exposed)
    });
    assert_eq!(metric(&lw.metrics(), &exposed), Some(0.0));
    std::thread::sleep(Duration::from_secs(2));
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

    es.set(off);
    wait_mail(
        &smtp.dir,
        &format!("[lockwatch] CRITICAL {id}"),
        Duration::from_secs(30),
    );
    // The switch can land between two of a cycle's requests: one cycle may see security off and
    // the next the anonymous access that follows from it, as a second mail in the same thread.
    let mut wanted = expect_rules.to_vec();
    wanted.push("weakened /anonymous_can_list_indices: false → true");
    wait_alerts_naming(&smtp.dir, &id, &wanted, Duration::from_secs(30));
    wait_for("exposed = 1", Duration::from_secs(10), || {
        (metric(&lw.metrics(), &exposed) == Some(1.0)).then_some(())
    });

    es.set(on);
    let resolved = wait_mail(
        &smtp.dir,
        &format!("[lockwatch] RESOLVED {id}"),
        Duration::from_secs(30),
    );
    // A change that lands in the middle of a cycle can be seen in two steps (two alert mails);
    // either way the thread starts with the first alert and ends with one RESOLVED.
    let mails = smtp.mails();
    assert_eq!(resolved["in_reply_to"], mails[0]["message_id"], "{flavor}: one thread");
    let resolved_count = mails
        .iter()
        .filter(|m| m["subject"].as_str().unwrap().starts_with("[lockwatch] RESOLVED"))
        .count();
    assert_eq!(resolved_count, 1, "{flavor}: {mails:?}");
    assert!(
        mails.iter().all(|m| m["subject"].as_str().unwrap().contains(&id)),
        "{flavor}: {mails:?}"
    );
    assert!(!lw.proc.log_text().contains("mon-pw-es"));
}

#[test]
fn elasticsearch_8_security_disabled_then_enabled() {
    security_removed_then_restored(
        "es8",
        json!({"security": false}),
        json!({"security": true}),
        &[
            "elasticsearch.anonymous.access",
            "elasticsearch.security.disabled",
            "weakened /security_enabled: true → false",
        ],
    );
}

#[test]
fn opensearch_2_security_plugin_disabled_then_enabled() {
    security_removed_then_restored(
        "os2",
        json!({"security": false}),
        json!({"security": true}),
        &[
            "elasticsearch.anonymous.access",
            "elasticsearch.security.disabled",
            "OpenSearch",
        ],
    );
}

#[test]
fn elasticsearch_7_anonymous_access_granted_then_removed() {
    security_removed_then_restored(
        "es7",
        json!({"anonymous_roles": ["viewer"]}),
        json!({"anonymous_roles": []}),
        &[
            "elasticsearch.anonymous.access",
            "elasticsearch.anonymous.roles",
            "weakened /anonymous_roles/0: (absent) → viewer",
        ],
    );
}

#[test]
fn scan_reads_every_flavor_and_its_settings() {
    let tmp = tempfile::tempdir().unwrap();
    let pwfile = tmp.path().join("pw");
    std::fs::write(&pwfile, "pw").unwrap();
    for (flavor, version) in [("es7", "7.17.18"), ("es8", "8.11.3"), ("os2", "2.11.1")] {
        let es = FakeEs::start(
            tmp.path(),
            json!({"flavor": flavor, "security": true, "users": {"lockwatch": "pw"}, "cors_any": true, "bind": ["[::]:9200", "0.0.0.0:9200"]}),
        );
        let cfg = write_config(tmp.path(), free_port(), free_port(), &source(&es, &pwfile));
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
        let _ = version;
    }
}
