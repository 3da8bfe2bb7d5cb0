//! Suppressions through the command line against a running daemon: granted → silent and visible
//! in metrics; the resource changes further → alerts again; expiry → alerts again; limits enforced.

mod support;
use std::time::Duration;
use support::*;

#[test]
fn suppress_then_the_resource_changes_then_expiry() {
    let tmp = tempfile::tempdir().unwrap();
    let redis = Redis::start(tmp.path(), "pw-sup");
    let smtp = Smtp::start(free_port(), tmp.path());
    let port = free_port();
    let cfg = write_config(
        tmp.path(),
        port,
        smtp.port,
        &format!(
            "[[sources]]\nkind = \"redis\"\nname = \"lab\"\nurl = \"redis://:pw-sup@127.0.0.1:{}\"\n",
            redis.port
        ),
    );
    let lw = Lockwatch::start(&cfg, port);
    let id = format!("lab/redis/127.0.0.1:{}", redis.port);
    let crit = format!("[lockwatch] CRITICAL {id}");
    wait_for("the first cycle", Duration::from_secs(30), || {
        lw.metrics().contains(&id).then_some(())
    });
    redis.cli(&["CONFIG", "SET", "requirepass", ""]);
    wait_mail(&smtp.dir, &crit, Duration::from_secs(30));

    for rule in ["redis.auth.disabled", "drift.weakened"] {
        let (code, out, err) = lw.cli(&["suppress", &id, rule, "--reason", "throwaway lab box", "--for", "1h"]);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("suppressed"), "{out}");
    }
    let (_, list, _) = lw.cli(&["suppressions"]);
    assert!(
        list.contains("redis.auth.disabled") && list.contains("throwaway lab box"),
        "{list}"
    );
    wait_for("the suppressed finding in metrics", Duration::from_secs(20), || {
        (metric(&lw.metrics(), "lockwatch_findings_suppressed{severity=\"high\"}") == Some(1.0)).then_some(())
    });
    let count = |prefix: &str| {
        smtp.mails()
            .iter()
            .filter(|m| m["subject"].as_str().unwrap().starts_with(prefix))
            .count()
    };
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(count(&crit), 1);

    // The resource changes further: the drift finding now says more than what was suppressed,
    // so its suppression ends (the password finding says the same and stays suppressed).
    redis.cli_as(None, &["CONFIG", "SET", "protected-mode", "no"]);
    wait_for("a second CRITICAL", Duration::from_secs(30), || {
        (count(&crit) == 2).then_some(())
    });
    let again = smtp
        .mails()
        .into_iter()
        .rfind(|m| m["subject"].as_str().unwrap().starts_with(&crit))
        .unwrap();
    assert!(
        again["text"].as_str().unwrap().contains("no longer applies"),
        "{}",
        again["text"]
    );

    // Granted again for a few seconds: it expires and alerts again.
    let (code, _, err) = lw.cli(&[
        "suppress",
        &id,
        "redis.auth.disabled",
        "--reason",
        "five more seconds",
        "--for",
        "4s",
    ]);
    assert_eq!(code, 0, "{err}");
    // Only that finding re-alerts: on a loopback-only listener it is HIGH.
    let high = format!("[lockwatch] HIGH {id}");
    wait_for("an alert on expiry", Duration::from_secs(30), || {
        (count(&high) == 1).then_some(())
    });
    let expired = smtp
        .mails()
        .into_iter()
        .rfind(|m| m["subject"].as_str().unwrap().starts_with(&high))
        .unwrap();
    assert!(
        expired["text"].as_str().unwrap().contains("expired at"),
        "{}",
        expired["text"]
    );
    let (_, all, _) = lw.cli(&["suppressions", "--all"]);
    assert!(all.contains("(expired)") && all.contains("(finding changed)"), "{all}");

    // Limits: no "forever", no nonsense, no unknown resources, no rule the resource does not have.
    let cases: [(&[&str], &str); 5] = [
        (
            &["suppress", &id, "redis.nosuchrule", "--reason", "r", "--for", "1d"],
            "has no finding \"redis.nosuchrule\" now, so there is nothing to suppress; its current findings: drift.weakened, redis.auth.disabled",
        ),
        (
            &["suppress", &id, "redis.auth.disabled", "--reason", "r", "--for", "91d"],
            "at most",
        ),
        (
            &["suppress", &id, "redis.auth.disabled", "--reason", " ", "--for", "1d"],
            "--reason is empty",
        ),
        (
            &[
                "suppress",
                "nope/redis/x",
                "redis.auth.disabled",
                "--reason",
                "r",
                "--for",
                "1d",
            ],
            "no resource",
        ),
        (&["unsuppress", &id, "redis.auth.disabled"], "no active suppression"),
    ];
    for (args, needle) in cases {
        let (code, _, err) = lw.cli(args);
        assert_eq!(code, 2, "{args:?}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}
