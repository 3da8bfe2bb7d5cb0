//! Fault suite, scenarios 1-4: the things around lockwatch fail, and it keeps working and keeps
//! telling the truth: no alert lost or sent twice, no false RESOLVED, nothing marked deleted,
//! blindness raised and cleared, the daemon still running.

mod support;
use std::io::Write;
use std::net::TcpListener;
use std::time::Duration;
use support::*;

const ACCOUNT: &str = "123456789012";
const OWN: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"es:*"}]}"#;
const OPEN: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"es:*"}]}"#;

fn count(smtp: &Smtp, prefix: &str) -> usize {
    smtp.mails()
        .iter()
        .filter(|m| m["subject"].as_str().unwrap_or("").starts_with(prefix))
        .count()
}

fn wait_count(smtp: &Smtp, prefix: &str, n: usize) {
    wait_for(
        &format!("{n} mail(s) starting {prefix:?}"),
        Duration::from_secs(90),
        || (count(smtp, prefix) >= n).then_some(()),
    );
}

fn with_blind_after(cfg: &std::path::Path, n: u32) {
    let text = std::fs::read_to_string(cfg)
        .unwrap()
        .replace("[daemon]\n", &format!("[daemon]\nblind_after = {n}\n"));
    std::fs::write(cfg, text).unwrap();
}

/// Scenarios 1 and 2: the AWS endpoint goes down, answers 500s, throttles, fails one call of a
/// listing — then comes back.
#[test]
fn aws_endpoint_down_erroring_throttling_and_partial_then_back() {
    let tmp = tempfile::tempdir().unwrap();
    let moto = Moto::start(tmp.path());
    let mut proxy = FaultProxy::start(tmp.path(), &moto);
    let smtp = Smtp::start(free_port(), tmp.path());
    moto.call(ACCOUNT, "us-east-1", "domain", &["orders", OWN]);
    let sg = moto.call(ACCOUNT, "us-east-1", "sg", &["search"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let port = free_port();
    let cfg = write_config(
        tmp.path(),
        port,
        smtp.port,
        &format!(
            "[[sources]]\nkind = \"aws\"\nname = \"prod\"\nregions = [\"us-east-1\"]\nservices = [\"opensearch\", \"ec2\"]\nendpoint_url = \"{}\"\ntimeout = \"20s\"\n",
            proxy.endpoint
        ),
    );
    with_blind_after(&cfg, 2);
    let mut lw = Lockwatch::start(&cfg, port);
    let dom = format!("prod/opensearch/{ACCOUNT}/us-east-1/orders");
    let sg_id = format!("prod/security-group/{ACCOUNT}/us-east-1/{sg}");
    wait_for("the first cycle", Duration::from_secs(60), || {
        let m = lw.metrics();
        (m.contains(&dom) && m.contains(&sg_id)).then_some(())
    });
    let blind = "[lockwatch] HIGH lockwatch/source/prod";
    let unblind = "[lockwatch] RESOLVED lockwatch/source/prod";

    // 1. The endpoint is down; meanwhile someone opens the domain.
    proxy.down();
    wait_count(&smtp, blind, 1);
    moto.call(ACCOUNT, "us-east-1", "policy", &["orders", OPEN]);
    std::thread::sleep(Duration::from_secs(3));
    let (_, shown, _) = lw.cli(&["baseline", "show"]);
    assert!(
        shown.contains(&dom) && !shown.contains("(deleted)"),
        "nothing is deleted while blind: {shown}"
    );
    proxy.up();
    wait_count(&smtp, unblind, 1);
    wait_count(&smtp, &format!("[lockwatch] CRITICAL {dom}"), 1);
    moto.call(ACCOUNT, "us-east-1", "policy", &["orders", OWN]);
    wait_count(&smtp, &format!("[lockwatch] RESOLVED {dom}"), 1);

    // 2. 500s, then throttling, for every call.
    for (i, mode) in ["error500", "throttle"].iter().enumerate() {
        proxy.set(mode);
        wait_count(&smtp, blind, 2 + i);
        proxy.set("pass");
        wait_count(&smtp, unblind, 2 + i);
    }

    // A listing that fails midway (network interfaces after security groups): the ec2 part is
    // failed, its groups kept; the opensearch part still reports, and a change there alerts.
    proxy.set("fail-action:DescribeNetworkInterfaces");
    let errors_before = metric(&lw.metrics(), "lockwatch_scan_errors_total{source=\"prod\"}").unwrap_or(0.0);
    moto.call(ACCOUNT, "us-east-1", "policy", &["orders", OPEN]);
    wait_count(&smtp, &format!("[lockwatch] CRITICAL {dom}"), 2);
    assert!(metric(&lw.metrics(), "lockwatch_scan_errors_total{source=\"prod\"}").unwrap() > errors_before);
    assert!(
        lw.metrics().contains(&sg_id),
        "the security group is still reported while its listing fails"
    );
    proxy.set("pass");
    moto.call(ACCOUNT, "us-east-1", "policy", &["orders", OWN]);
    wait_count(&smtp, &format!("[lockwatch] RESOLVED {dom}"), 2);

    std::thread::sleep(Duration::from_secs(2));
    for m in smtp.mails() {
        let subject = m["subject"].as_str().unwrap();
        assert!(
            !subject.contains(&sg),
            "the security group never changed, so it never alerts: {subject}"
        );
        assert!(
            !m["text"].as_str().unwrap().contains("no longer reported"),
            "nothing was deleted: {subject}"
        );
    }
    let mut seen = std::collections::BTreeSet::new();
    for m in smtp.mails() {
        assert!(
            seen.insert(m["message_id"].as_str().unwrap().to_string()),
            "a mail was sent twice"
        );
    }
    assert!(lw.proc.is_running());
}

/// Accepts connections and never answers.
fn black_hole() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in l.incoming().flatten() {
            held.push(c);
        }
    });
    port
}

/// Answers every connection with bytes that are neither RESP, PostgreSQL nor UTF-8.
fn garbage() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut c in l.incoming().flatten() {
            let _ = c.write_all(b"\xff\xfe\x00\x80garbage\r\n\xc3\x28E\x00\x00\x00\x02\xff");
        }
    });
    port
}

/// Scenario 3, and servers that answer nonsense: errors with the source's name, never a hang
/// or a panic; blindness raised; the daemon keeps running.
#[test]
fn a_server_that_never_answers_or_answers_garbage_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(free_port(), tmp.path());
    let (hole, junk) = (black_hole(), garbage());
    let port = free_port();
    let sources = format!(
        "[[sources]]\nkind = \"redis\"\nname = \"redis-hole\"\nurl = \"redis://:pw@127.0.0.1:{hole}\"\ntimeout = \"2s\"\n\
         [[sources]]\nkind = \"postgres\"\nname = \"pg-hole\"\nurl = \"postgres://lockwatch:pw@127.0.0.1:{hole}/postgres\"\ntimeout = \"2s\"\n\
         [[sources]]\nkind = \"redis\"\nname = \"redis-junk\"\nurl = \"redis://:pw@127.0.0.1:{junk}\"\ntimeout = \"2s\"\n\
         [[sources]]\nkind = \"postgres\"\nname = \"pg-junk\"\nurl = \"postgres://lockwatch:pw@127.0.0.1:{junk}/postgres?sslmode=disable\"\ntimeout = \"2s\"\n"
    );
    let cfg = write_config(tmp.path(), port, smtp.port, &sources);
    with_blind_after(&cfg, 2);

    // scan returns (does not hang) with one error per source.
    let mut cmd = std::process::Command::new(lockwatch_bin());
    cmd.arg("--config").arg(&cfg).args(["scan", "--format", "json"]);
    let mut scan = Proc::spawn("scan", aws_test_env(&mut cmd), tmp.path().join("scan.out"));
    let status = wait_for("scan to finish", Duration::from_secs(60), || {
        scan.child.try_wait().ok().flatten()
    });
    assert_eq!(status.code(), Some(2));
    let out = scan.log_text();
    let json_line = out
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON in {out}"));
    let v: serde_json::Value = serde_json::from_str(json_line).unwrap();
    let mut failed: Vec<&str> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["source"].as_str().unwrap())
        .collect();
    failed.sort();
    assert_eq!(failed, ["pg-hole", "pg-junk", "redis-hole", "redis-junk"], "{out}");
    assert!(!out.contains("panicked"), "{out}");

    let mut lw = Lockwatch::start(&cfg, port);
    for s in ["redis-hole", "pg-hole", "redis-junk", "pg-junk"] {
        wait_count(&smtp, &format!("[lockwatch] HIGH lockwatch/source/{s}"), 1);
        assert_eq!(
            metric(&lw.metrics(), &format!("lockwatch_source_blind{{source=\"{s}\"}}")),
            Some(1.0)
        );
    }
    assert!(lw.proc.is_running());
    assert_eq!(http_get(port, "/healthz").as_deref(), Some("ok\n"));
    assert!(!lw.proc.log_text().contains("panicked"));
}

/// Scenario 4: SMTP is down for several cycles while protection is removed and restored; when
/// it comes back, both mails go out, once each, in order.
#[test]
fn smtp_down_for_several_cycles_then_up() {
    let tmp = tempfile::tempdir().unwrap();
    let redis = Redis::start(tmp.path(), "pw-smtp-down");
    let smtp_port = free_port();
    let port = free_port();
    let cfg = write_config(
        tmp.path(),
        port,
        smtp_port,
        &format!(
            "[[sources]]\nkind = \"redis\"\nname = \"r\"\nurl = \"redis://:pw-smtp-down@127.0.0.1:{}\"\n",
            redis.port
        ),
    );
    let lw = Lockwatch::start(&cfg, port);
    let id = format!("r/redis/127.0.0.1:{}", redis.port);
    wait_for("the first cycle", Duration::from_secs(30), || {
        lw.metrics().contains(&id).then_some(())
    });
    redis.cli(&["CONFIG", "SET", "requirepass", ""]);
    wait_for("a queued alert, failing, aging", Duration::from_secs(60), || {
        let m = lw.metrics();
        (metric(&m, "lockwatch_alert_queue_depth") == Some(1.0)
            && metric(&m, "lockwatch_alert_send_failures_total").unwrap_or(0.0) >= 2.0
            && metric(&m, "lockwatch_alert_oldest_pending_age_seconds").unwrap_or(0.0) >= 3.0)
            .then_some(())
    });
    redis.cli_as(None, &["CONFIG", "SET", "requirepass", "pw-smtp-down"]);
    wait_for("the RESOLVED queued behind it", Duration::from_secs(30), || {
        (metric(&lw.metrics(), "lockwatch_alert_queue_depth") == Some(2.0)).then_some(())
    });
    let smtp = Smtp::start(smtp_port, tmp.path());
    wait_for("both mails", Duration::from_secs(90), || {
        (smtp.mails().len() >= 2).then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));
    let subjects: Vec<String> = smtp
        .mails()
        .iter()
        .map(|m| m["subject"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        subjects,
        [
            format!("[lockwatch] CRITICAL {id} is exposed"),
            format!("[lockwatch] RESOLVED {id}")
        ]
    );
    assert_eq!(metric(&lw.metrics(), "lockwatch_alert_queue_depth"), Some(0.0));
}

/// A permanent rejection (5xx) is logged with the reason and kept for `lockwatch outbox`, not
/// retried and not silently dropped.
#[test]
fn permanent_rejection_is_kept_for_inspection() {
    let tmp = tempfile::tempdir().unwrap();
    let redis = Redis::start(tmp.path(), "pw-reject");
    let smtp = Smtp::start_with(free_port(), tmp.path(), &["--reject", "550"]);
    let port = free_port();
    let cfg = write_config(
        tmp.path(),
        port,
        smtp.port,
        &format!(
            "[[sources]]\nkind = \"redis\"\nname = \"r\"\nurl = \"redis://:pw-reject@127.0.0.1:{}\"\n",
            redis.port
        ),
    );
    let lw = Lockwatch::start(&cfg, port);
    wait_for("the first cycle", Duration::from_secs(30), || {
        lw.metrics().contains("r/redis/").then_some(())
    });
    redis.cli(&["CONFIG", "SET", "requirepass", ""]);
    wait_for("a failed delivery", Duration::from_secs(30), || {
        (metric(&lw.metrics(), "lockwatch_alert_send_failures_total") == Some(1.0)).then_some(())
    });
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(
        metric(&lw.metrics(), "lockwatch_alert_send_failures_total"),
        Some(1.0),
        "not retried"
    );
    let (_, outbox, _) = lw.cli(&["outbox"]);
    assert!(
        outbox.contains("failed") && outbox.contains("attempts=1") && outbox.contains("550"),
        "{outbox}"
    );
    assert!(lw.proc.log_text().contains("refused the alert permanently"));
}
