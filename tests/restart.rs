//! Durability: an alert queued while SMTP is down survives kill -9 and is delivered exactly once
//! after restart.

mod support;
use std::time::Duration;
use support::*;

#[test]
fn queued_alert_survives_kill_9_and_is_sent_exactly_once() {
    let tmp = tempfile::tempdir().unwrap();
    let redis = Redis::start(tmp.path(), "pw-restart");
    let smtp_port = free_port(); // nothing listens here yet: SMTP is down
    let metrics_port = free_port();
    let config = write_config(
        tmp.path(),
        metrics_port,
        smtp_port,
        &format!(
            "[[sources]]\nkind = \"redis\"\nname = \"r\"\nurl = \"redis://:pw-restart@127.0.0.1:{}\"\n",
            redis.port
        ),
    );
    let id = format!("r/redis/127.0.0.1:{}", redis.port);
    let mut lw = Lockwatch::start(&config, metrics_port);
    wait_for("the first cycle", Duration::from_secs(30), || {
        lw.metrics().contains(&id).then_some(())
    });

    assert!(redis.cli(&["CONFIG", "SET", "requirepass", ""]).contains("OK"));
    wait_for(
        "the alert to be queued and a delivery to fail",
        Duration::from_secs(30),
        || {
            let m = lw.metrics();
            (metric(&m, "lockwatch_alert_queue_depth") == Some(1.0)
                && metric(&m, "lockwatch_alert_send_failures_total").unwrap_or(0.0) >= 1.0)
                .then_some(())
        },
    );
    let (_, outbox, _) = lw.cli(&["outbox"]);
    assert!(
        outbox.contains("pending") && outbox.contains(&format!("CRITICAL {id}")),
        "{outbox}"
    );
    lw.proc.kill9();

    let smtp = Smtp::start(smtp_port, tmp.path());
    let lw2 = Lockwatch::start(&config, metrics_port);
    let mail = wait_mail(
        &smtp.dir,
        &format!("[lockwatch] CRITICAL {id}"),
        Duration::from_secs(30),
    );
    assert!(mail["text"].as_str().unwrap().contains("redis.auth.disabled"));
    // Several more cycles: the alert stays open, nothing is sent again.
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(smtp.mails().len(), 1, "{:#?}", smtp.mails());
    assert_eq!(metric(&lw2.metrics(), "lockwatch_alert_queue_depth"), Some(0.0));
    let (_, outbox, _) = lw2.cli(&["outbox"]);
    assert!(outbox.contains("outbox empty"), "{outbox}");
}

#[test]
fn sigterm_exits_cleanly_and_state_is_intact() {
    let tmp = tempfile::tempdir().unwrap();
    let redis = Redis::start(tmp.path(), "pw-term");
    let smtp = Smtp::start(free_port(), tmp.path());
    let metrics_port = free_port();
    let config = write_config(
        tmp.path(),
        metrics_port,
        smtp.port,
        &format!(
            "[[sources]]\nkind = \"redis\"\nname = \"r\"\nurl = \"redis://:pw-term@127.0.0.1:{}\"\n",
            redis.port
        ),
    );
    let mut lw = Lockwatch::start(&config, metrics_port);
    wait_for("a cycle", Duration::from_secs(30), || {
        lw.metrics().contains("r/redis").then_some(())
    });
    let status = lw
        .proc
        .terminate()
        .expect("lockwatch did not stop within 20s of SIGTERM");
    assert!(status.success(), "exit status {status:?}\n{}", lw.proc.log_text());
    assert!(lw.proc.log_text().contains("stopped cleanly"));
    // The state file is consistent and a new daemon picks it up.
    let (code, out, err) = cli(&config, &["baseline", "show"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("r/redis/"), "{out}");
}
