//! End to end on a real Redis: protection on → password removed → CRITICAL email within a cycle,
//! metric flips, history shows the diff → password restored → RESOLVED email in the same thread.

mod support;
use std::time::Duration;
use support::*;

#[test]
fn redis_password_removed_then_restored() {
    let tmp = tempfile::tempdir().unwrap();
    let redis = Redis::start(tmp.path(), "s3cret-redis-pw");
    let smtp = Smtp::start(free_port(), tmp.path());
    let metrics_port = free_port();
    let config = write_config(
        tmp.path(),
        metrics_port,
        smtp.port,
        &format!(
            "[[sources]]\nkind = \"redis\"\nname = \"cache\"\nurl = \"redis://:s3cret-redis-pw@127.0.0.1:{}\"\n",
            redis.port
        ),
    );
    let lw = Lockwatch::start(&config, metrics_port);
    let id = format!("cache/redis/127.0.0.1:{}", redis.port);
    let exposed_series = format!("lockwatch_resource_exposed{{resource=\"{id}\",source=\"cache\"}}");

    // Protected: baseline taken, nothing exposed, no mail.
    wait_for(
        "the first cycle to record the resource",
        Duration::from_secs(30),
        || metric(&lw.metrics(), &exposed_series),
    );
    assert_eq!(metric(&lw.metrics(), &exposed_series), Some(0.0));
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        smtp.mails().is_empty(),
        "a protected Redis must not alert: {:?}",
        smtp.mails()
    );

    // Someone removes the password.
    assert!(redis.cli(&["CONFIG", "SET", "requirepass", ""]).contains("OK"));
    let alert = wait_mail(
        &smtp.dir,
        &format!("[lockwatch] CRITICAL {id}"),
        Duration::from_secs(30),
    );
    let text = alert["text"].as_str().unwrap();
    assert!(text.contains("redis.auth.disabled"), "{text}");
    assert!(text.contains("weakened /requirepass_set: true → false"), "{text}");
    assert!(
        text.contains("weakened /unauthenticated_probe: auth_required → accepted"),
        "{text}"
    );
    assert!(text.contains(&format!("baseline accept {id}")), "{text}");
    assert!(text.contains("Detected: "), "{text}");
    assert!(alert["html"].as_str().unwrap().contains("redis.auth.disabled"));
    assert_eq!(alert["content_type"], "multipart/alternative");
    assert_eq!(alert["rcpt_tos"][0], "oncall@example.com");
    wait_for("the exposed metric to flip to 1", Duration::from_secs(10), || {
        (metric(&lw.metrics(), &exposed_series) == Some(1.0)).then_some(())
    });
    assert!(
        metric(
            &lw.metrics(),
            "lockwatch_drift_events_total{severity=\"critical\",source=\"cache\"}"
        )
        .unwrap_or(0.0)
            >= 1.0
    );

    let (code, history, err) = lw.cli(&["history", &id]);
    assert_eq!(code, 0, "{err}");
    assert!(history.contains("weakened /requirepass_set: true → false"), "{history}");
    // On a loopback-only listener the finding is high; the weakening that exposed it is critical.
    assert!(history.contains("alert redis.auth.disabled [high] opened"), "{history}");
    assert!(history.contains("alert drift.weakened [critical] opened"), "{history}");

    // Protection comes back.
    assert!(
        redis
            .cli_as(None, &["CONFIG", "SET", "requirepass", "s3cret-redis-pw"])
            .contains("OK")
    );
    let resolved = wait_mail(
        &smtp.dir,
        &format!("[lockwatch] RESOLVED {id}"),
        Duration::from_secs(30),
    );
    assert!(resolved["text"].as_str().unwrap().contains("redis.auth.disabled"));
    assert_eq!(
        resolved["in_reply_to"], alert["message_id"],
        "mails about one resource form one thread"
    );
    assert!(
        resolved["references"]
            .as_str()
            .unwrap()
            .contains(alert["message_id"].as_str().unwrap())
    );
    wait_for("the exposed metric to go back to 0", Duration::from_secs(10), || {
        (metric(&lw.metrics(), &exposed_series) == Some(0.0)).then_some(())
    });

    // Exactly one alert and one resolution; no secret in any mail or log line.
    std::thread::sleep(Duration::from_secs(2));
    let mails = smtp.mails();
    assert_eq!(mails.len(), 2, "{mails:#?}");
    for m in &mails {
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
    let smtp = Smtp::start(free_port(), tmp.path());
    let metrics_port = free_port();
    let config = write_config(
        tmp.path(),
        metrics_port,
        smtp.port,
        &format!(
            "[[sources]]\nkind = \"redis\"\nname = \"c\"\nurl = \"redis://127.0.0.1:{}\"\npassword_env = \"TEST_REDIS_PW\"\n",
            redis.port
        ),
    );
    // SAFETY: set before any thread of this test reads the environment of the child we spawn.
    let lw = {
        unsafe { std::env::set_var("TEST_REDIS_PW", "pw-acl") };
        Lockwatch::start(&config, metrics_port)
    };
    let id = format!("c/redis/127.0.0.1:{}", redis.port);
    wait_for("the first cycle", Duration::from_secs(30), || {
        lw.metrics().contains(&id).then_some(())
    });

    assert!(
        redis
            .cli(&["ACL", "SETUSER", "reporting", "on", "nopass", "~*", "+@read"])
            .contains("OK")
    );
    let alert = wait_mail(
        &smtp.dir,
        &format!("[lockwatch] CRITICAL {id}"),
        Duration::from_secs(30),
    );
    assert!(
        alert["text"].as_str().unwrap().contains("redis.acl.nopass_user"),
        "{}",
        alert["text"]
    );

    // Someone disables that user; the listener is then back to its baseline.
    assert!(redis.cli(&["ACL", "DELUSER", "reporting"]).contains('1'));
    wait_mail(
        &smtp.dir,
        &format!("[lockwatch] RESOLVED {id}"),
        Duration::from_secs(30),
    );

    // A deliberate change: protected-mode off (weakening, medium). Accepting it resolves the drift.
    assert!(redis.cli(&["CONFIG", "SET", "protected-mode", "no"]).contains("OK"));
    let drift = wait_for("a MEDIUM drift alert", Duration::from_secs(30), || {
        smtp.mails().into_iter().find(|m| {
            m["subject"]
                .as_str()
                .unwrap()
                .starts_with(&format!("[lockwatch] MEDIUM {id}"))
        })
    });
    assert!(
        drift["text"]
            .as_str()
            .unwrap()
            .contains("weakened /protected_mode: true → false")
    );
    // Not on a terminal: it shows what it would accept and asks for --yes.
    let (code, out, err) = lw.cli(&["baseline", "accept", &id]);
    assert_eq!(code, 2, "{out}");
    assert!(err.contains("--yes"), "{err}");
    assert!(out.contains("weakened /protected_mode: true → false"), "{out}");
    let (code, out, err) = lw.cli(&["baseline", "accept", &id, "--yes", "--reason", "lab box"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("accepted"), "{out}");
    let (_, history, _) = lw.cli(&["history", &id]);
    assert!(
        history.contains("baseline set (accepted by ") && history.contains(": lab box)"),
        "{history}"
    );
    wait_for("RESOLVED after baseline accept", Duration::from_secs(30), || {
        (smtp
            .mails()
            .iter()
            .filter(|m| {
                m["subject"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("[lockwatch] RESOLVED {id}"))
            })
            .count()
            == 2)
            .then_some(())
    });
    let (code, out, _) = lw.cli(&["baseline", "show", &id]);
    assert_eq!(code, 0);
    assert!(out.contains("0 change(s) since"), "{out}");
    let (code, _, err) = lw.cli(&["baseline", "accept", "no/such/resource"]);
    assert_eq!(code, 2);
    assert!(err.contains("no resource"), "{err}");
}

#[test]
fn declared_internet_reach_is_in_the_subject_and_grades_the_finding() {
    let tmp = tempfile::tempdir().unwrap();
    let redis = Redis::start(tmp.path(), "pw-reach");
    let smtp = Smtp::start(free_port(), tmp.path());
    let port = free_port();
    let config = write_config(
        tmp.path(),
        port,
        smtp.port,
        &format!(
            "[[sources]]\nkind = \"redis\"\nname = \"edge\"\nurl = \"redis://:pw-reach@127.0.0.1:{}\"\nreach = \"internet\"\n",
            redis.port
        ),
    );
    let lw = Lockwatch::start(&config, port);
    let id = format!("edge/redis/127.0.0.1:{}", redis.port);
    wait_for("the first cycle", Duration::from_secs(30), || {
        lw.metrics().contains(&id).then_some(())
    });
    redis.cli(&["CONFIG", "SET", "requirepass", ""]);
    let alert = wait_mail(
        &smtp.dir,
        &format!("[lockwatch] CRITICAL {id} is exposed to the internet"),
        Duration::from_secs(30),
    );
    assert!(
        alert["text"]
            .as_str()
            .unwrap()
            .contains("[critical] redis.auth.disabled"),
        "{}",
        alert["text"]
    );
    let (_, out, _) = lw.cli(&["scan", "--format", "json"]);
    assert!(out.contains("\"severity\":\"critical\""), "{out}");
}
