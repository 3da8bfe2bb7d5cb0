//! Durability and the process lifecycle: an alert queued while SMTP is down survives kill -9 and
//! is delivered exactly once; SIGTERM exits cleanly and promptly, even mid-collection; SIGHUP
//! reloads a valid config and refuses an invalid one.

mod support;
use std::time::{Duration, Instant};
use support::*;

const T: Duration = Duration::from_secs(30);

#[test]
fn queued_alert_survives_kill_9_and_is_sent_exactly_once() {
    let tmp = tempfile::tempdir().unwrap();
    let redis = Redis::start(tmp.path(), "pw-restart");
    // A port a mail server ran on: SMTP is down while the alert happens.
    let smtp_port = Smtp::start(&tmp.path().join("first")).port;
    let config = write_config(
        tmp.path(),
        smtp_port,
        &format!(
            "[[sources]]\nkind = \"redis\"\nname = \"r\"\nurl = \"redis://:pw-restart@127.0.0.1:{}\"\n",
            redis.port
        ),
    );
    let id = format!("r/redis/127.0.0.1:{}", redis.port);
    let mut lw = Lockwatch::start(&config);
    assert!(redis.cli(&["CONFIG", "SET", "requirepass", ""]).contains("OK"));
    wait_for("the alert to be queued and a delivery to fail", T, || {
        let m = lw.metrics();
        (metric(&m, "lockwatch_alert_queue_depth") == Some(1.0)
            && metric(&m, "lockwatch_alert_send_failures_total").unwrap_or(0.0) >= 1.0)
            .then_some(())
    });
    let (_, outbox, _) = lw.cli(&["outbox"]);
    assert!(
        outbox.contains("pending") && outbox.contains(&format!("CRITICAL {id}")),
        "{outbox}"
    );
    lw.proc.kill9();

    let smtp = Smtp::start_on(smtp_port, tmp.path(), &[]);
    let lw2 = Lockwatch::start(&config);
    smtp.expect(
        0,
        &id,
        &[("alert", Some("critical"), &["drift.weakened", "redis.auth.disabled"])],
        T,
    );
    // Several more cycles: the alert stays open, nothing is sent again.
    lw2.quiet(4);
    assert_eq!(smtp.mails().len(), 1, "{:#?}", smtp.mails());
    let (_, outbox, _) = lw2.cli(&["outbox"]);
    assert!(outbox.contains("outbox empty"), "{outbox}");
}

#[test]
fn sigterm_exits_cleanly_and_state_is_intact() {
    let tmp = tempfile::tempdir().unwrap();
    let redis = Redis::start(tmp.path(), "pw-term");
    let smtp = Smtp::start(tmp.path());
    let config = write_config(
        tmp.path(),
        smtp.port,
        &format!(
            "[[sources]]\nkind = \"redis\"\nname = \"r\"\nurl = \"redis://:pw-term@127.0.0.1:{}\"\n",
            redis.port
        ),
    );
    let mut lw = Lockwatch::start(&config);
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

/// A collection that hangs (a server that stopped answering, a long timeout) does not hold up a
/// stop: collections are read-only and are abandoned.
#[test]
fn sigterm_during_a_hanging_collection_stops_within_seconds() {
    let tmp = tempfile::tempdir().unwrap();
    let silent = Silent::new();
    let config = write_config(
        tmp.path(),
        free_port(),
        &format!(
            "[[sources]]\nkind = \"redis\"\nname = \"stuck\"\nurl = \"redis://:pw@127.0.0.1:{}\"\ntimeout = \"300s\"\n",
            silent.port()
        ),
    );
    let mut lw = Lockwatch::spawn(&config, &[]);
    wait_for("the first collection to be under way", T, || {
        lw.proc.log_text().contains("lockwatch started").then_some(())
    });
    let t0 = Instant::now();
    let status = lw.proc.terminate().expect("no exit within 20s of SIGTERM");
    assert!(t0.elapsed() < Duration::from_secs(5), "took {:?} to stop", t0.elapsed());
    assert!(status.success(), "{}", lw.proc.log_text());
    assert!(lw.proc.log_text().contains("abandoning it"), "{}", lw.proc.log_text());
}

/// SIGHUP re-reads the config: a valid one applies from the next cycle (a source added, state
/// kept); an invalid one is refused with the error logged and the running config stays.
#[test]
fn sighup_reloads_a_valid_config_and_refuses_an_invalid_one() {
    let tmp = tempfile::tempdir().unwrap();
    let a = Redis::start(tmp.path(), "pw-a");
    let b = Redis::start(tmp.path(), "pw-b");
    let smtp = Smtp::start(tmp.path());
    let source = |name: &str, r: &Redis, pw: &str| {
        format!(
            "[[sources]]\nkind = \"redis\"\nname = \"{name}\"\nurl = \"redis://:{pw}@127.0.0.1:{}\"\n",
            r.port
        )
    };
    let config = write_config(tmp.path(), smtp.port, &source("a", &a, "pw-a"));
    let mut lw = Lockwatch::start(&config);
    let a_id = format!("a/redis/127.0.0.1:{}", a.port);
    let b_id = format!("b/redis/127.0.0.1:{}", b.port);
    let series = |id: &str, src: &str| format!("lockwatch_resource_exposed{{resource=\"{id}\",source=\"{src}\"}}");
    assert_eq!(lw.metric(&series(&a_id, "a")), Some(0.0));

    // Valid: source b added.
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text}{}", source("b", &b, "pw-b"))).unwrap();
    hup(&lw);
    wait_for("source b to be watched", T, || {
        lw.metric(&series(&b_id, "b")).map(|_| ())
    });
    assert_eq!(lw.metric("lockwatch_config_reloads_total{result=\"ok\"}"), Some(1.0));
    // The state is kept: a's baseline was not re-learned.
    let (_, history, _) = lw.cli(&["history", &a_id]);
    let snapshots = history
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some("snapshot"))
        .count();
    assert_eq!(snapshots, 1, "{history}");

    // Invalid: refused, logged, the running config stays.
    std::fs::write(
        &config,
        format!("{text}[[sources]]\nkind = \"redis\"\nname = \"broken\"\nurll = \"x\"\n"),
    )
    .unwrap();
    hup(&lw);
    wait_for("the refusal", T, || {
        (lw.metric("lockwatch_config_reloads_total{result=\"refused\"}") == Some(1.0)).then_some(())
    });
    assert!(
        lw.proc.log_text().contains("unknown field `urll`"),
        "{}",
        lw.proc.log_text()
    );
    let mark = smtp.mark();
    b.cli(&["CONFIG", "SET", "requirepass", ""]);
    smtp.expect(
        mark,
        &b_id,
        &[("alert", Some("critical"), &["drift.weakened", "redis.auth.disabled"])],
        T,
    );
    assert!(lw.proc.is_running());
}

fn hup(lw: &Lockwatch) {
    let out = std::process::Command::new("kill")
        .args(["-HUP", &lw.proc.child.id().to_string()])
        .output()
        .unwrap();
    assert!(out.status.success());
}
