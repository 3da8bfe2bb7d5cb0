//! Metrics as Prometheus sees them: `promtool check metrics` on a live daemon's /metrics, and the
//! shipped alerting rules pass `promtool test rules`.

mod support;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::*;

fn promtool() -> Command {
    assert!(
        Path::new("/usr/bin/promtool").exists(),
        "promtool not found: run scripts/test.sh, which installs Debian's prometheus"
    );
    Command::new("promtool")
}

#[test]
fn live_metrics_pass_promtool_and_name_what_the_issue_lists() {
    let tmp = tempfile::tempdir().unwrap();
    let redis = Redis::start(tmp.path(), "pw-metrics");
    let smtp = Smtp::start(tmp.path());
    let cfg = write_config(
        tmp.path(),
        smtp.port,
        &format!(
            "[[sources]]\nkind = \"redis\"\nname = \"cache\"\nurl = \"redis://:pw-metrics@127.0.0.1:{}\"\n",
            redis.port
        ),
    );
    let lw = Lockwatch::start(&cfg);
    let id = format!("cache/redis/127.0.0.1:{}", redis.port);
    redis.cli(&["CONFIG", "SET", "requirepass", ""]);
    smtp.expect(
        0,
        &id,
        &[("alert", Some("critical"), &["drift.weakened", "redis.auth.disabled"])],
        Duration::from_secs(30),
    );
    let text = wait_for("alerts_sent to count the mail", Duration::from_secs(10), || {
        let m = lw.metrics();
        (metric(&m, "lockwatch_alerts_sent_total") == Some(1.0)).then_some(m)
    });
    for name in [
        "lockwatch_resources{kind=\"redis\",source=\"cache\"} 1",
        "lockwatch_findings_open{severity=\"high\"} 1",
        "lockwatch_resource_exposed{resource=",
        "lockwatch_drift_events_total{severity=\"critical\",source=\"cache\"} 1",
        "lockwatch_scan_duration_seconds_bucket{source=\"cache\"",
        "lockwatch_scan_errors_total{source=\"cache\"} 0",
        "lockwatch_last_scan_success_timestamp_seconds{source=\"cache\"}",
        "lockwatch_alert_send_failures_total 0",
        "lockwatch_alert_queue_depth 0",
        "lockwatch_cycle_duration_seconds ",
        "lockwatch_cycle_overruns_total 0",
        "lockwatch_alert_recipients_refused_total 0",
    ] {
        assert!(text.contains(name), "/metrics lacks {name}:\n{text}");
    }
    let mut child = promtool()
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && report.trim().is_empty(),
        "promtool check metrics:\n{report}"
    );
    assert_eq!(http_get(lw.metrics_port, "/healthz").as_deref(), Some("ok\n"));
}

#[test]
fn shipped_alerting_rules_pass_their_tests() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let out = promtool()
        .args(["check", "rules", "prometheus-rules.yml"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let out = promtool()
        .args(["test", "rules", "prometheus-rules.test.yml"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The rule tests can fail: with any one `for:` removed, or any alert's threshold dropped, the
/// shipped tests must notice (a rule test that passes whatever the rules say tests nothing).
#[test]
fn rule_tests_catch_a_lost_for_clause_or_a_changed_expression() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let rules = std::fs::read_to_string(dir.join("prometheus-rules.yml")).unwrap();
    let tests = std::fs::read_to_string(dir.join("prometheus-rules.test.yml")).unwrap();
    let lines: Vec<&str> = rules.lines().collect();
    let mut mutants: Vec<(String, String)> = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if l.trim_start().starts_with("for:") {
            let mut m = lines.clone();
            m.remove(i);
            mutants.push((format!("line {} removed: {}", i + 1, l.trim()), m.join("\n")));
        }
    }
    for (from, to) in [("> 900", "> 9000"), ("== 1", "== 2"), ("> 0 and", "> 1000 and")] {
        assert!(
            rules.contains(from),
            "the rules no longer contain {from:?}: update this test"
        );
        mutants.push((format!("{from} → {to}"), rules.replacen(from, to, 1)));
    }
    assert!(mutants.len() >= 6, "{} mutants", mutants.len());
    for (what, text) in mutants {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("prometheus-rules.yml"), text).unwrap();
        std::fs::write(tmp.path().join("prometheus-rules.test.yml"), &tests).unwrap();
        let out = promtool()
            .args(["test", "rules", "prometheus-rules.test.yml"])
            .current_dir(tmp.path())
            .output()
            .unwrap();
        assert!(!out.status.success(), "the rule tests pass with {what}");
    }
}
