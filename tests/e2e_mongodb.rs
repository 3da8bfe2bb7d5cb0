//! End to end on the MongoDB stand-in (tests/support/fake_mongo.py, proven against pymongo by
//! fake_mongo_check.py): each test asserts the exact mails an action causes, from a mark taken
//! just before the action.

mod support;
use serde_json::json;
use std::time::Duration;
use support::*;

const T: Duration = Duration::from_secs(30);
const PW: &str = "m0ngo-monitor-s3cret";

/// A mongod with access control, a root admin, and the monitoring user (clusterMonitor, plus
/// userAdminAnyDatabase, which in the stand-in is the role that may list every database's users:
/// the custom viewUser role the README recommends is not modelled).
fn state() -> serde_json::Value {
    json!({
        "version": "7.0.14",
        "authorization": "enabled",
        "bindIp": "127.0.0.1",
        "users": [
            {"db": "admin", "user": "lockwatch", "password": PW, "mechanisms": ["SCRAM-SHA-256"],
             "roles": [{"role": "clusterMonitor", "db": "admin"}, {"role": "userAdminAnyDatabase", "db": "admin"}]},
            {"db": "admin", "user": "admin", "password": "admin-pw", "mechanisms": ["SCRAM-SHA-256"],
             "roles": [{"role": "root", "db": "admin"}]},
            {"db": "events", "user": "app", "password": "app-pw", "mechanisms": ["SCRAM-SHA-256"],
             "roles": [{"role": "readWrite", "db": "events"}]}
        ]
    })
}

fn setup(tmp: &std::path::Path, password_line: &str) -> (FakeMongo, Smtp, Lockwatch, String) {
    let mongo = FakeMongo::start(tmp, state(), None);
    let smtp = Smtp::start(tmp);
    let config = write_config(
        tmp,
        smtp.port,
        &format!(
            "[[sources]]\nkind = \"mongodb\"\nname = \"events\"\nreach = \"private\"\nurl = \"mongodb://lockwatch@127.0.0.1:{}/?authSource=admin\"\n{password_line}\n",
            mongo.port
        ),
    );
    let lw = Lockwatch::start(&config);
    let id = format!("events/mongodb/127.0.0.1:{}", mongo.port);
    (mongo, smtp, lw, id)
}

#[test]
fn authorization_removed_then_restored() {
    let tmp = tempfile::tempdir().unwrap();
    let pwfile = write(tmp.path(), "mongo-pw", PW);
    let (mongo, smtp, lw, id) = setup(tmp.path(), &format!("password_file = \"{}\"", pwfile.display()));
    let exposed = format!("lockwatch_resource_exposed{{resource=\"{id}\",source=\"events\"}}");
    assert_eq!(lw.metric(&exposed), Some(0.0));
    lw.quiet(2);
    assert!(
        smtp.mails().is_empty(),
        "a protected mongod must not alert: {:#?}",
        smtp.mails()
    );
    // What the monitoring user read, as the baseline holds it.
    let (code, baseline, err) = lw.cli(&["baseline", "show", &id, "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let shown: serde_json::Value = serde_json::from_str(&baseline).unwrap();
    assert_eq!(
        shown[0]["baseline"],
        json!({
            "unauthenticated_probe": "auth_required", "authorization": "enabled", "key_file": false,
            "bind_ip": ["127.0.0.1"], "listen_scope": "loopback", "tls_mode": "disabled",
            "privileged_users": ["admin.admin (root)", "admin.lockwatch (userAdminAnyDatabase)"],
            "scram_sha1_only_users": [], "auth_mechanisms": ["SCRAM-SHA-1", "SCRAM-SHA-256"],
            "version": "7.0.14", "reach": "private"
        })
    );

    // The Wyze change: mongod restarted without access control.
    let mark = smtp.mark();
    mongo.set(json!({"authorization": "disabled"}));
    let alerts = smtp.expect_alert_in_one_or_two_steps(
        mark,
        &id,
        "critical",
        &["drift.weakened", "mongodb.auth.disabled", "mongodb.authorization.off"],
        T,
    );
    let last = alerts.last().unwrap();
    assert!(
        last.subject.starts_with(&format!("[lockwatch] CRITICAL {id}")),
        "{}",
        last.subject
    );
    assert!(
        alerts.iter().any(|m| m
            .text
            .contains("a client without credentials can now list the databases")),
        "{}",
        last.text
    );
    assert!(
        last.text.contains("security.authorization: enabled"),
        "the fix: {}",
        last.text
    );
    wait_for("the exposed metric to flip to 1", T, || {
        (lw.metric(&exposed) == Some(1.0)).then_some(())
    });

    // Access control back: one RESOLVED for everything, in the thread.
    let mark = smtp.mark();
    mongo.set(json!({"authorization": "enabled"}));
    let resolved = smtp.expect(
        mark,
        &id,
        &[(
            "resolved",
            None,
            &["drift.weakened", "mongodb.auth.disabled", "mongodb.authorization.off"],
        )],
        T,
    );
    assert_eq!(
        resolved[0].record["in_reply_to"], alerts[0].record["message_id"],
        "one thread"
    );
    lw.quiet(2);
    assert!(smtp.since(mark, &id).len() == 1, "{:#?}", smtp.since(mark, &id));

    for m in smtp.mails() {
        assert!(!m["raw"].as_str().unwrap().contains(PW));
    }
    assert!(!lw.proc.log_text().contains(PW));
    assert!(!lw.metrics().contains(PW));
}

#[test]
fn a_root_user_added_is_a_weakening() {
    // The password reaches the daemon through its own environment.
    let tmp = tempfile::tempdir().unwrap();
    let mongo = FakeMongo::start(tmp.path(), state(), None);
    let smtp = Smtp::start(tmp.path());
    let config = write_config(
        tmp.path(),
        smtp.port,
        &format!(
            "[[sources]]\nkind = \"mongodb\"\nname = \"events\"\nurl = \"mongodb://lockwatch@127.0.0.1:{}/\"\npassword_env = \"TEST_MONGO_PW\"\n",
            mongo.port
        ),
    );
    let lw = Lockwatch::spawn(&config, &[("TEST_MONGO_PW", PW)]);
    lw.wait_cycles(1);
    let id2 = format!("events/mongodb/127.0.0.1:{}", mongo.port);

    let mark = smtp.mark();
    let mut users = mongo.state()["users"].clone();
    users.as_array_mut().unwrap().push(json!({
        "db": "events", "user": "intruder", "password": "x", "mechanisms": ["SCRAM-SHA-256"],
        "roles": [{"role": "root", "db": "admin"}]
    }));
    mongo.set(json!({ "users": users }));
    let alert = smtp.expect(mark, &id2, &[("alert", Some("high"), &["drift.weakened"])], T);
    assert!(
        alert[0]
            .text
            .contains("privileged user events.intruder (root) was added"),
        "{}",
        alert[0].text
    );
    let (code, history, err) = lw.cli(&["history", &id2]);
    assert_eq!(code, 0, "{err}");
    assert!(history.contains("events.intruder (root)"), "{history}");

    // Dropped again: resolved.
    let mark = smtp.mark();
    let users: Vec<serde_json::Value> = users
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["user"] != "intruder")
        .cloned()
        .collect();
    mongo.set(json!({ "users": users }));
    smtp.expect(mark, &id2, &[("resolved", None, &["drift.weakened"])], T);
}

/// A wrong monitoring password is lost sight, never "protected"; and a server that lists its
/// databases to anyone is reported open even when our own login fails.
#[test]
fn a_wrong_password_is_blindness_not_an_all_clear() {
    let tmp = tempfile::tempdir().unwrap();
    let mongo = FakeMongo::start(tmp.path(), state(), None);
    let smtp = Smtp::start(tmp.path());
    let config = write_config(
        tmp.path(),
        smtp.port,
        &format!(
            "[[sources]]\nkind = \"mongodb\"\nname = \"events\"\nurl = \"mongodb://lockwatch:wrong-pw@127.0.0.1:{}/\"\n",
            mongo.port
        ),
    );
    let lw = Lockwatch::spawn(&config, &[]);
    let blind = smtp.expect(
        0,
        "lockwatch/source/events",
        &[("alert", Some("high"), &["lockwatch.source.blind"])],
        T,
    );
    assert!(
        blind[0]
            .subject
            .starts_with("[lockwatch] HIGH lockwatch cannot see source events: "),
        "{}",
        blind[0].subject
    );
    assert!(blind[0].text.contains("could not log in"), "{}", blind[0].text);
    assert!(
        blind[0].text.contains("Authentication failed"),
        "the server's words: {}",
        blind[0].text
    );
    assert!(!blind[0].record["raw"].as_str().unwrap().contains("wrong-pw"));
    let (_, scan, _) = lw.cli(&["scan"]);
    assert!(!scan.contains("wrong-pw"), "{scan}");

    // Access control switched off meanwhile: the anonymous probe is evidence enough.
    let id = format!("events/mongodb/127.0.0.1:{}", mongo.port);
    let mark = smtp.mark();
    mongo.set(json!({"authorization": "disabled"}));
    let open = smtp.expect(
        mark,
        &id,
        &[(
            "alert",
            Some("critical"),
            &["mongodb.auth.disabled", "mongodb.visibility.lost"],
        )],
        T,
    );
    assert!(open[0].text.contains("could not log in"), "{}", open[0].text);
    assert!(!lw.proc.log_text().contains("wrong-pw"));
}
