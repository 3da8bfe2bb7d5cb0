//! Fault suite: the things around lockwatch fail, and it keeps working and keeps telling the
//! truth. Each scenario opens an alert *before* the fault, so that a false RESOLVED during the
//! fault could happen — and asserts the exact mails, per resource, from marks taken before each
//! step: nothing resolved on evidence lockwatch lacks, nothing deleted, blindness raised and
//! cleared, the daemon still running.

mod support;
use std::io::Write;
use std::net::TcpListener;
use std::time::Duration;
use support::*;

const T: Duration = Duration::from_secs(90);
const ACCOUNT: &str = "123456789012";
const OWN: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"es:*"}]}"#;
const OPEN: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"es:*","Resource":"DOMAIN_ARN/*"}]}"#;
const BLIND: &[&str] = &["lockwatch.source.blind"];

fn edit_config(cfg: &std::path::Path, daemon: &str, alerts: &str) {
    let text = std::fs::read_to_string(cfg)
        .unwrap()
        .replace("[daemon]\n", &format!("[daemon]\n{daemon}"))
        .replace("[alerts]\n", &format!("[alerts]\n{alerts}"));
    std::fs::write(cfg, text).unwrap();
}

/// The AWS endpoint goes down, answers 500s, throttles, hangs, cuts answers short, fails the
/// second page of a listing — each while an alert is open — then comes back.
#[test]
fn aws_faults_never_resolve_or_delete_anything() {
    let tmp = tempfile::tempdir().unwrap();
    let moto = Moto::start(tmp.path());
    let mut proxy = FaultProxy::start(tmp.path(), &moto);
    let smtp = Smtp::start(tmp.path());
    moto.call(ACCOUNT, "us-east-1", "domain", &["orders", OWN]);
    let sg = moto.call(ACCOUNT, "us-east-1", "sg", &["search"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    // 101 databases: the RDS listing is two pages (100 a page).
    moto.call(ACCOUNT, "us-east-1", "rds-many", &["db", "101", &sg]);
    let cfg = write_config(
        tmp.path(),
        smtp.port,
        &format!(
            "[[sources]]\nkind = \"aws\"\nname = \"prod\"\nregions = [\"us-east-1\"]\nservices = [\"opensearch\", \"ec2\", \"rds\"]\nendpoint_url = \"{}\"\ntimeout = \"6s\"\n",
            proxy.endpoint
        ),
    );
    edit_config(&cfg, "blind_after = 2\n", "flap_after = 0\n");
    let mut lw = Lockwatch::start(&cfg);
    let dom = format!("prod/opensearch/{ACCOUNT}/us-east-1/orders");
    let sg_id = format!("prod/security-group/{ACCOUNT}/us-east-1/{sg}");
    let src = "lockwatch/source/prod";
    let rds_count = "lockwatch_resources{kind=\"rds\",source=\"prod\"}";
    assert_eq!(lw.metric(rds_count), Some(101.0), "both pages were read");
    let public: &[&str] = &["drift.weakened", "opensearch.policy.public"];

    // The domain is opened: an alert is open before any fault.
    let mark = smtp.mark();
    moto.call(ACCOUNT, "us-east-1", "policy", &["orders", OPEN]);
    smtp.expect(mark, &dom, &[("alert", Some("critical"), public)], T);

    // 1. The endpoint is down; meanwhile someone closes the domain. lockwatch cannot see that:
    //    no RESOLVED until it can.
    let mark = smtp.mark();
    proxy.down();
    smtp.expect(mark, src, &[("alert", Some("high"), BLIND)], T);
    moto.call(ACCOUNT, "us-east-1", "policy", &["orders", OWN]);
    lw.quiet(3);
    assert!(
        smtp.since(mark, &dom).is_empty(),
        "no all-clear while blind: {:#?}",
        smtp.since(mark, &dom)
    );
    let (_, shown, _) = lw.cli(&["baseline", "show"]);
    assert!(
        shown.contains(&dom) && !shown.contains("(deleted)"),
        "nothing is deleted while blind: {shown}"
    );
    proxy.up();
    smtp.expect(
        mark,
        src,
        &[("alert", Some("high"), BLIND), ("resolved", None, BLIND)],
        T,
    );
    smtp.expect(mark, &dom, &[("resolved", None, public)], T);

    // 2. Open again; then every fault in turn, each while the alert is open.
    let mark = smtp.mark();
    moto.call(ACCOUNT, "us-east-1", "policy", &["orders", OPEN]);
    smtp.expect(mark, &dom, &[("alert", Some("critical"), public)], T);
    let dom_mark = smtp.mark();
    for mode in [
        "error500",
        "throttle",
        "hang:opensearch/domain-info", // DescribeDomains (a REST call: matched by path)
        "truncate:DescribeSecurityGroups",
        "fail-page:DescribeDBInstances:1",
    ] {
        eprintln!("fault mode {mode}");
        let mark = smtp.mark();
        proxy.set(mode);
        smtp.expect(mark, src, &[("alert", Some("high"), BLIND)], T);
        assert_eq!(lw.metric(rds_count), Some(101.0), "{mode}: nothing deleted");
        proxy.set("pass");
        smtp.expect(
            mark,
            src,
            &[("alert", Some("high"), BLIND), ("resolved", None, BLIND)],
            T,
        );
    }
    lw.quiet(2);
    assert!(
        smtp.since(dom_mark, &dom).is_empty(),
        "the open alert stayed open: {:#?}",
        smtp.since(dom_mark, &dom)
    );
    let mark = smtp.mark();
    moto.call(ACCOUNT, "us-east-1", "policy", &["orders", OWN]);
    smtp.expect(mark, &dom, &[("resolved", None, public)], T);

    lw.quiet(2);
    for m in smtp.received() {
        assert_ne!(
            m.resource, sg_id,
            "the security group never changed, so it never alerts: {}",
            m.subject
        );
        assert!(
            !m.text.contains("no longer reported"),
            "nothing was deleted: {}",
            m.subject
        );
        assert!(!m.resource.contains("/rds/"), "no database changed: {}", m.subject);
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

/// Servers that never answer or answer nonsense: errors with the source's name, never a hang
/// or a panic; blindness raised; the daemon keeps running.
#[test]
fn a_server_that_never_answers_or_answers_garbage_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(tmp.path());
    let (hole, junk) = (black_hole(), garbage());
    let sources = format!(
        "[[sources]]\nkind = \"redis\"\nname = \"redis-hole\"\nurl = \"redis://:pw@127.0.0.1:{hole}\"\ntimeout = \"2s\"\n\
         [[sources]]\nkind = \"postgres\"\nname = \"pg-hole\"\nurl = \"postgres://lockwatch:pw@127.0.0.1:{hole}/postgres\"\ntimeout = \"2s\"\n\
         [[sources]]\nkind = \"redis\"\nname = \"redis-junk\"\nurl = \"redis://:pw@127.0.0.1:{junk}\"\ntimeout = \"2s\"\n\
         [[sources]]\nkind = \"postgres\"\nname = \"pg-junk\"\nurl = \"postgres://lockwatch:pw@127.0.0.1:{junk}/postgres?sslmode=disable\"\ntimeout = \"2s\"\n"
    );
    let cfg = write_config(tmp.path(), smtp.port, &sources);
    edit_config(&cfg, "blind_after = 2\n", "");

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

    let mut lw = Lockwatch::spawn(&cfg, &[]);
    for s in ["redis-hole", "pg-hole", "redis-junk", "pg-junk"] {
        let id = format!("lockwatch/source/{s}");
        let m = smtp.expect(0, &id, &[("alert", Some("high"), BLIND)], T);
        assert!(
            m[0].subject
                .starts_with(&format!("[lockwatch] HIGH lockwatch cannot see source {s}: ")),
            "{}",
            m[0].subject
        );
        assert_eq!(
            lw.metric(&format!("lockwatch_source_blind{{source=\"{s}\"}}")),
            Some(1.0)
        );
    }
    assert!(lw.proc.is_running());
    assert_eq!(http_get(lw.metrics_port, "/healthz").as_deref(), Some("ok\n"));
    assert!(!lw.proc.log_text().contains("panicked"));
}

/// SMTP is down for several cycles while protection is removed and restored; when it comes
/// back, both mails go out, once each, in order.
#[test]
fn smtp_down_for_several_cycles_then_up() {
    let tmp = tempfile::tempdir().unwrap();
    let redis = Redis::start(tmp.path(), "pw-smtp-down");
    // A port a mail server ran on; it is down while the alerts happen.
    let smtp_port = {
        let first = Smtp::start(&tmp.path().join("first"));
        first.port
    };
    let cfg = write_config(
        tmp.path(),
        smtp_port,
        &format!(
            "[[sources]]\nkind = \"redis\"\nname = \"r\"\nurl = \"redis://:pw-smtp-down@127.0.0.1:{}\"\n",
            redis.port
        ),
    );
    let lw = Lockwatch::start(&cfg);
    let id = format!("r/redis/127.0.0.1:{}", redis.port);
    redis.cli(&["CONFIG", "SET", "requirepass", ""]);
    wait_for("a queued alert, failing, aging", T, || {
        let m = lw.metrics();
        (metric(&m, "lockwatch_alert_queue_depth") == Some(1.0)
            && metric(&m, "lockwatch_alert_send_failures_total").unwrap_or(0.0) >= 2.0
            && metric(&m, "lockwatch_alert_oldest_pending_age_seconds").unwrap_or(0.0) >= 3.0)
            .then_some(())
    });
    redis.cli_as(None, &["CONFIG", "SET", "requirepass", "pw-smtp-down"]);
    wait_for("the RESOLVED queued behind it", T, || {
        (lw.metric("lockwatch_alert_queue_depth") == Some(2.0)).then_some(())
    });
    let smtp = Smtp::start_on(smtp_port, tmp.path(), &[]);
    let rules: &[&str] = &["drift.weakened", "redis.auth.disabled"];
    smtp.expect(
        0,
        &id,
        &[("alert", Some("critical"), rules), ("resolved", None, rules)],
        T,
    );
    lw.quiet(2);
    assert_eq!(smtp.mails().len(), 2);
    assert_eq!(lw.metric("lockwatch_alert_queue_depth"), Some(0.0));
}

/// A permanent rejection (5xx) is logged with the reason and kept for `lockwatch outbox`, not
/// retried and not silently dropped.
#[test]
fn permanent_rejection_is_kept_for_inspection() {
    let tmp = tempfile::tempdir().unwrap();
    let redis = Redis::start(tmp.path(), "pw-reject");
    let smtp = Smtp::start_with(tmp.path(), &["--reject", "550"]);
    let cfg = write_config(
        tmp.path(),
        smtp.port,
        &format!(
            "[[sources]]\nkind = \"redis\"\nname = \"r\"\nurl = \"redis://:pw-reject@127.0.0.1:{}\"\n",
            redis.port
        ),
    );
    let lw = Lockwatch::start(&cfg);
    redis.cli(&["CONFIG", "SET", "requirepass", ""]);
    wait_for("a failed delivery", T, || {
        (lw.metric("lockwatch_alert_send_failures_total") == Some(1.0)).then_some(())
    });
    lw.quiet(6);
    assert_eq!(
        lw.metric("lockwatch_alert_send_failures_total"),
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

/// One bad address in `to` loses nothing: the others get the alert; the refusal is kept for
/// `lockwatch outbox` and counted.
#[test]
fn one_refused_recipient_does_not_stop_the_others() {
    let tmp = tempfile::tempdir().unwrap();
    let redis = Redis::start(tmp.path(), "pw-rcpt");
    let smtp = Smtp::start_with(tmp.path(), &["--reject-rcpt", "gone@example.com"]);
    let cfg = write_config(
        tmp.path(),
        smtp.port,
        &format!(
            "[[sources]]\nkind = \"redis\"\nname = \"r\"\nurl = \"redis://:pw-rcpt@127.0.0.1:{}\"\n",
            redis.port
        ),
    );
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "to = [\"oncall@example.com\"]",
        "to = [\"gone@example.com\", \"oncall@example.com\"]",
    );
    std::fs::write(&cfg, text).unwrap();
    let lw = Lockwatch::start(&cfg);
    let id = format!("r/redis/127.0.0.1:{}", redis.port);
    redis.cli(&["CONFIG", "SET", "requirepass", ""]);
    let m = smtp.expect(
        0,
        &id,
        &[("alert", Some("critical"), &["drift.weakened", "redis.auth.disabled"])],
        T,
    );
    assert_eq!(m[0].record["rcpt_tos"], serde_json::json!(["oncall@example.com"]));
    lw.quiet(3);
    assert_eq!(
        smtp.mails().len(),
        1,
        "delivered once, not retried for the refused address"
    );
    assert_eq!(lw.metric("lockwatch_alert_recipients_refused_total"), Some(1.0));
    assert_eq!(lw.metric("lockwatch_alert_queue_depth"), Some(0.0));
    let (_, outbox, _) = lw.cli(&["outbox"]);
    assert!(
        outbox.contains("refused by gone@example.com") && outbox.contains("550"),
        "{outbox}"
    );
}
