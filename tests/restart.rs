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

/// Retention: history older than `retention` is pruned after a cycle (the baseline and the latest
/// snapshot stay), and `history` says where its record now starts.
#[test]
fn retention_prunes_old_history_and_history_says_where_it_starts() {
    let tmp = tempfile::tempdir().unwrap();
    let redis = Redis::start(tmp.path(), "pw-keep");
    let smtp = Smtp::start(tmp.path());
    let config = write_config(
        tmp.path(),
        smtp.port,
        &format!(
            "[[sources]]\nkind = \"redis\"\nname = \"r\"\nurl = \"redis://:pw-keep@127.0.0.1:{}\"\n",
            redis.port
        ),
    );
    let id = format!("r/redis/127.0.0.1:{}", redis.port);
    let snapshots = |history: &str| {
        history
            .lines()
            .filter(|l| l.split_whitespace().nth(1) == Some("snapshot"))
            .count()
    };
    let mut lw = Lockwatch::start(&config);
    // Three postures: protected (first seen), open (accepted as the baseline), protected again
    // (stronger than the baseline: raised).
    redis.cli(&["CONFIG", "SET", "requirepass", ""]);
    wait_for("the open posture to be recorded", T, || {
        (snapshots(&lw.cli(&["history", &id]).1) == 2).then_some(())
    });
    let (code, _, err) = lw.cli(&["baseline", "accept", &id, "--yes"]);
    assert_eq!(code, 0, "{err}");
    redis.cli(&["CONFIG", "SET", "requirepass", "pw-keep"]);
    wait_for("the baseline to be raised", T, || {
        let (_, h, _) = lw.cli(&["history", &id]);
        (snapshots(&h) == 3 && h.contains("raised")).then_some(())
    });
    lw.proc.terminate().expect("stops");

    // Ten days pass (the store's clocks are moved back), and retention is two days.
    let db = tmp.path().join("state/lockwatch.db");
    let age = r#"
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
d = 10 * 86400
for q in ["UPDATE snapshots SET observed_at = observed_at - ?",
          "UPDATE baseline_events SET at = at - ?",
          "UPDATE resources SET first_seen = first_seen - ?",
          "UPDATE alerts SET opened_at = opened_at - ?, last_notified_at = last_notified_at - ?, resolved_at = resolved_at - ?",
          "UPDATE outbox SET created_at = created_at - ?, sent_at = sent_at - ?"]:
    c.execute(q, (d,) * q.count("?"))
c.commit()
"#;
    let out = std::process::Command::new(python())
        .args(["-c", age])
        .arg(&db)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("[daemon]\n", "[daemon]\nretention = \"2d\"\n");
    std::fs::write(&config, text).unwrap();
    let lw = Lockwatch::start(&config);
    wait_for("the pruning", T, || {
        lw.proc
            .log_text()
            .contains("pruned history older than retention")
            .then_some(())
    });
    let (_, history, _) = lw.cli(&["history", &id]);
    assert_eq!(
        snapshots(&history),
        1,
        "only the baseline (= latest) is left: {history}"
    );
    assert!(
        history.contains("record starts") && history.contains("older history was pruned (retention 2d"),
        "{history}"
    );
    assert!(!history.contains("first seen"), "the first sight was pruned: {history}");
    let (_, json, _) = lw.cli(&["history", &id, "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(v["record_starts"].is_string(), "{json}");
    assert_eq!(v["snapshots"].as_array().unwrap().len(), 1);
    // Mail sent ten days ago is gone from the outbox listing; the resource is still watched.
    let (_, outbox, _) = lw.cli(&["outbox", "--all"]);
    assert!(outbox.contains("outbox empty"), "{outbox}");
    assert!(
        smtp.mails().len() >= 2,
        "mail was sent before (and pruned from the outbox only)"
    );
}
