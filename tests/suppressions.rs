//! Suppressions through the command line against a running daemon: granted → silent and visible
//! in metrics; the finding changes → alerts again; expiry → alerts again; limits enforced.

mod support;
use std::time::Duration;
use support::*;

#[test]
fn suppress_then_the_finding_changes_then_expiry() {
    let tmp = tempfile::tempdir().unwrap();
    let redis = Redis::start(tmp.path(), "pw-sup");
    let smtp = Smtp::start(tmp.path());
    let cfg = write_config(
        tmp.path(),
        smtp.port,
        &format!(
            "[[sources]]\nkind = \"redis\"\nname = \"lab\"\nurl = \"redis://:pw-sup@127.0.0.1:{}\"\n",
            redis.port
        ),
    );
    let lw = Lockwatch::start(&cfg);
    let id = format!("lab/redis/127.0.0.1:{}", redis.port);
    let t = Duration::from_secs(30);
    let both: &[&str] = &["drift.weakened", "redis.auth.disabled"];
    redis.cli(&["CONFIG", "SET", "requirepass", ""]);
    smtp.expect(0, &id, &[("alert", Some("critical"), both)], t);

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
        (lw.metric("lockwatch_findings_suppressed{severity=\"high\"}") == Some(1.0)).then_some(())
    });
    let mark = smtp.mark();
    lw.quiet(3);
    assert!(smtp.since(mark, &id).is_empty(), "silent while suppressed");

    // The resource changes further: the drift finding now says more than what was suppressed,
    // so its suppression ends and it alerts again (the password finding says the same and stays
    // suppressed).
    redis.cli_as(None, &["CONFIG", "SET", "protected-mode", "no"]);
    let again = smtp.expect(mark, &id, &[("alert", Some("critical"), both)], t);
    assert!(
        again[0].text.contains("no longer applies: the finding changed"),
        "{}",
        again[0].text
    );
    assert!(
        again[0].text.contains("Suppression ended: alerting again:"),
        "{}",
        again[0].text
    );

    // Granted again for a few seconds: it expires and alerts again.
    let mark = smtp.mark();
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
    let expired = smtp.expect(mark, &id, &[("alert", Some("high"), both)], t);
    assert!(expired[0].text.contains("expired at"), "{}", expired[0].text);
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
