//! End to end on a real Redis (its own instance): every test asserts the exact mails an action
//! causes — kind, severity and rules — counted from a mark taken just before the action.

mod support;
use std::time::Duration;
use support::*;

const T: Duration = Duration::from_secs(30);

#[test]
fn redis_password_removed_then_restored() {
    let tmp = tempfile::tempdir().unwrap();
    let redis = Redis::start(tmp.path(), "s3cret-redis-pw");
    let smtp = Smtp::start(tmp.path());
    let config = write_config(
        tmp.path(),
        smtp.port,
        &format!(
            "[[sources]]\nkind = \"redis\"\nname = \"cache\"\nurl = \"redis://:s3cret-redis-pw@127.0.0.1:{}\"\n",
            redis.port
        ),
    );
    let lw = Lockwatch::start(&config);
    let id = format!("cache/redis/127.0.0.1:{}", redis.port);
    let exposed = format!("lockwatch_resource_exposed{{resource=\"{id}\",source=\"cache\"}}");
    assert_eq!(lw.metric(&exposed), Some(0.0));
    lw.quiet(2);
    assert!(
        smtp.mails().is_empty(),
        "a protected Redis must not alert: {:?}",
        smtp.mails()
    );

    // Someone removes the password.
    let mark = smtp.mark();
    assert!(redis.cli(&["CONFIG", "SET", "requirepass", ""]).contains("OK"));
    let alert = smtp.expect(
        mark,
        &id,
        &[("alert", Some("critical"), &["drift.weakened", "redis.auth.disabled"])],
        T,
    );
    let text = &alert[0].text;
    assert!(
        alert[0].subject.starts_with(&format!("[lockwatch] CRITICAL {id}")),
        "{}",
        alert[0].subject
    );
    assert!(text.contains("weakened /requirepass_set: true → false"), "{text}");
    assert!(
        text.contains("weakened /unauthenticated_probe: auth_required → accepted"),
        "{text}"
    );
    assert!(text.contains(&format!("baseline accept {id}")), "{text}");
    assert_eq!(alert[0].record["content_type"], "multipart/alternative");
    assert_eq!(alert[0].record["rcpt_tos"][0], "oncall@example.com");
    wait_for("the exposed metric to flip to 1", T, || {
        (lw.metric(&exposed) == Some(1.0)).then_some(())
    });
    assert_eq!(
        lw.metric("lockwatch_drift_events_total{severity=\"critical\",source=\"cache\"}"),
        Some(1.0)
    );
    let (code, history, err) = lw.cli(&["history", &id]);
    assert_eq!(code, 0, "{err}");
    assert!(history.contains("weakened /requirepass_set: true → false"), "{history}");
    // On a loopback-only listener the finding is high; the weakening that exposed it is critical.
    assert!(history.contains("alert redis.auth.disabled [high] opened"), "{history}");
    assert!(history.contains("alert drift.weakened [critical] opened"), "{history}");

    // Protection comes back: one RESOLVED, in the same thread.
    let mark = smtp.mark();
    assert!(
        redis
            .cli_as(None, &["CONFIG", "SET", "requirepass", "s3cret-redis-pw"])
            .contains("OK")
    );
    let resolved = smtp.expect(
        mark,
        &id,
        &[("resolved", None, &["drift.weakened", "redis.auth.disabled"])],
        T,
    );
    assert_eq!(resolved[0].subject, format!("[lockwatch] RESOLVED {id}"));
    assert_eq!(
        resolved[0].record["in_reply_to"], alert[0].record["message_id"],
        "one thread"
    );
    assert!(
        resolved[0].record["references"]
            .as_str()
            .unwrap()
            .contains(alert[0].record["message_id"].as_str().unwrap())
    );
    wait_for("the exposed metric to go back to 0", T, || {
        (lw.metric(&exposed) == Some(0.0)).then_some(())
    });

    // Nothing else, and no secret anywhere.
    lw.quiet(2);
    assert_eq!(smtp.mails().len(), 2, "{:#?}", smtp.mails());
    for m in smtp.mails() {
        assert!(!m["raw"].as_str().unwrap().contains("s3cret-redis-pw"));
    }
    assert!(!lw.proc.log_text().contains("s3cret-redis-pw"));
    assert!(!lw.metrics().contains("s3cret-redis-pw"));
    assert!(!history.contains("s3cret-redis-pw"));
}

#[test]
fn acl_user_made_nopass_is_critical_and_baseline_accept_resolves_drift() {
    let tmp = tempfile::tempdir().unwrap();
    let redis = Redis::start(tmp.path(), "pw-acl");
    let smtp = Smtp::start(tmp.path());
    let config = write_config(
        tmp.path(),
        smtp.port,
        &format!(
            "[[sources]]\nkind = \"redis\"\nname = \"c\"\nurl = \"redis://127.0.0.1:{}\"\npassword_env = \"TEST_REDIS_PW\"\n",
            redis.port
        ),
    );
    // The password reaches the daemon through its own environment, not this test process's.
    let lw = Lockwatch::spawn(&config, &[("TEST_REDIS_PW", "pw-acl")]);
    lw.wait_cycles(1);
    let id = format!("c/redis/127.0.0.1:{}", redis.port);

    let mark = smtp.mark();
    assert!(
        redis
            .cli(&["ACL", "SETUSER", "reporting", "on", "nopass", "~*", "+@read"])
            .contains("OK")
    );
    let alert = smtp.expect(
        mark,
        &id,
        &[("alert", Some("critical"), &["drift.weakened", "redis.acl.nopass_user"])],
        T,
    );
    assert!(alert[0].text.contains("reporting"), "{}", alert[0].text);

    // Someone deletes that user: back to the baseline.
    let mark = smtp.mark();
    assert!(redis.cli(&["ACL", "DELUSER", "reporting"]).contains('1'));
    smtp.expect(
        mark,
        &id,
        &[("resolved", None, &["drift.weakened", "redis.acl.nopass_user"])],
        T,
    );

    // A deliberate change: protected-mode off (a medium weakening). Accepting it resolves it.
    let mark = smtp.mark();
    assert!(redis.cli(&["CONFIG", "SET", "protected-mode", "no"]).contains("OK"));
    let drift = smtp.expect(mark, &id, &[("alert", Some("medium"), &["drift.weakened"])], T);
    assert!(
        drift[0].text.contains("weakened /protected_mode: true → false"),
        "{}",
        drift[0].text
    );
    // Not on a terminal: it shows what it would accept and asks for --yes.
    let (code, out, err) = lw.cli(&["baseline", "accept", &id]);
    assert_eq!(code, 2, "{out}");
    assert!(err.contains("--yes"), "{err}");
    assert!(out.contains("weakened /protected_mode: true → false"), "{out}");
    let (code, out, err) = lw.cli(&["baseline", "accept", &id, "--yes", "--reason", "lab box"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("accepted"), "{out}");
    let resolved = smtp.expect(
        mark,
        &id,
        &[
            ("alert", Some("medium"), &["drift.weakened"]),
            ("resolved", None, &["drift.weakened"]),
        ],
        T,
    );
    assert!(
        resolved[1].text.contains("accepted as the baseline by ") && resolved[1].text.contains("\"lab box\""),
        "the mail that follows says who accepted it and why: {}",
        resolved[1].text
    );
    let (_, history, _) = lw.cli(&["history", &id]);
    assert!(
        history.contains("baseline set (accepted by ") && history.contains(": lab box)"),
        "{history}"
    );
    let (code, out, _) = lw.cli(&["baseline", "show", &id]);
    assert_eq!(code, 0);
    assert!(out.contains("0 change(s) since"), "{out}");
    let (code, _, err) = lw.cli(&["baseline", "accept", "no/such/resource", "--yes"]);
    assert_eq!(code, 2);
    assert!(err.contains("no resource"), "{err}");
}

#[test]
fn declared_internet_reach_is_in_the_subject_and_grades_the_finding() {
    let tmp = tempfile::tempdir().unwrap();
    let redis = Redis::start(tmp.path(), "pw-reach");
    let smtp = Smtp::start(tmp.path());
    let config = write_config(
        tmp.path(),
        smtp.port,
        &format!(
            "[[sources]]\nkind = \"redis\"\nname = \"edge\"\nurl = \"redis://:pw-reach@127.0.0.1:{}\"\nreach = \"internet\"\n",
            redis.port
        ),
    );
    let lw = Lockwatch::start(&config);
    let id = format!("edge/redis/127.0.0.1:{}", redis.port);
    let mark = smtp.mark();
    redis.cli(&["CONFIG", "SET", "requirepass", ""]);
    let alert = smtp.expect(
        mark,
        &id,
        &[("alert", Some("critical"), &["drift.weakened", "redis.auth.disabled"])],
        T,
    );
    assert!(
        alert[0].subject.contains("reachable from the internet"),
        "{}",
        alert[0].subject
    );
    assert!(
        alert[0].text.contains("[critical] redis.auth.disabled"),
        "{}",
        alert[0].text
    );
    let (_, out, _) = lw.cli(&["scan", "--format", "json"]);
    assert!(out.contains("\"severity\":\"critical\""), "{out}");
}

/// Never a false all-clear: the monitoring user loses ACL LIST while a password-less user is
/// open. The user is no longer seen, which must not read as fixed.
#[test]
fn losing_acl_list_keeps_the_alert_open() {
    let tmp = tempfile::tempdir().unwrap();
    let redis = Redis::start(tmp.path(), "pw-admin");
    assert!(
        redis
            .cli(&["ACL", "SETUSER", "lockwatch", "on", ">pw-mon", "~*", "&*", "+@all"])
            .contains("OK")
    );
    let smtp = Smtp::start(tmp.path());
    let config = write_config(
        tmp.path(),
        smtp.port,
        &format!(
            "[[sources]]\nkind = \"redis\"\nname = \"r\"\nurl = \"redis://lockwatch:pw-mon@127.0.0.1:{}\"\n",
            redis.port
        ),
    );
    let lw = Lockwatch::start(&config);
    let id = format!("r/redis/127.0.0.1:{}", redis.port);

    let mark = smtp.mark();
    assert!(
        redis
            .cli(&["ACL", "SETUSER", "batch", "on", "nopass", "~*", "+@read"])
            .contains("OK")
    );
    smtp.expect(
        mark,
        &id,
        &[("alert", Some("critical"), &["drift.weakened", "redis.acl.nopass_user"])],
        T,
    );

    // The monitoring user may no longer run ACL LIST.
    let mark = smtp.mark();
    assert!(redis.cli(&["ACL", "SETUSER", "lockwatch", "-acl|list"]).contains("OK"));
    let lost = smtp.expect(
        mark,
        &id,
        &[(
            "alert",
            Some("high"),
            &["drift.weakened", "redis.acl.nopass_user", "redis.visibility.lost"],
        )],
        T,
    );
    assert!(
        lost[0].text.contains("can no longer read acl_nopass_users"),
        "{}",
        lost[0].text
    );
    assert!(
        lost[0].text.contains("NOPERM"),
        "the server's own refusal: {}",
        lost[0].text
    );
    assert!(lost[0].text.contains("+acl|list"), "the fix: {}", lost[0].text);
    // While it cannot see, the user is deleted: nothing resolves on evidence lockwatch lacks.
    assert!(redis.cli(&["ACL", "DELUSER", "batch"]).contains('1'));
    lw.quiet(3);
    assert_eq!(
        smtp.since(mark, &id).len(),
        1,
        "no RESOLVED while blind: {:#?}",
        smtp.since(mark, &id)
    );

    // The grant comes back: it sees the user is gone, and only now resolves.
    let mark = smtp.mark();
    assert!(redis.cli(&["ACL", "SETUSER", "lockwatch", "+acl|list"]).contains("OK"));
    smtp.expect(
        mark,
        &id,
        &[(
            "resolved",
            None,
            &["drift.weakened", "redis.acl.nopass_user", "redis.visibility.lost"],
        )],
        T,
    );
}

/// A Redis URL pointed at a port where something else (here an HTTP server) answers: said in
/// one sentence, not a parser dump.
#[test]
fn a_url_pointing_at_a_non_redis_port_says_so() {
    use std::io::{Read, Write};
    let tmp = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut buf = [0u8; 512];
            let _ = conn.read(&mut buf);
            let _ =
                conn.write_all(b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/html\r\n\r\n<html>bad request</html>");
        }
    });
    let cfg = write(
        tmp.path(),
        "http.toml",
        &format!(
            "[daemon]\nstate_dir = \"{}\"\n[[sources]]\nkind = \"redis\"\nname = \"cache\"\nurl = \"redis://127.0.0.1:{port}\"\ntimeout = \"5s\"\n",
            tmp.path().display()
        ),
    );
    let (code, out, err) = cli(&cfg, &["scan"]);
    let err = out + &err;
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("did not answer in the Redis protocol") && err.contains("rediss://"),
        "{err}"
    );
    assert!(!err.contains("Unexpected"), "no parser dump: {err}");
}
