//! Fault suite, scenario 8: a canary password in every secret field (Redis URL, PostgreSQL
//! password file, SMTP AUTH password, AWS secret key, a wrong password producing errors); none
//! may appear in the log, /metrics, any email, `history`, `outbox`, `scan` or an error message.

mod support;
use std::time::Duration;
use support::*;

const CANARIES: [&str; 5] = [
    "CANARY-redis-5e1f",
    "CANARY-wrongpw-77c2",
    "CANARY-pgfile-0d9a",
    "CANARY-smtp-a41b",
    "CANARY-awssecret-3b8e",
];

fn assert_clean(what: &str, text: &str) {
    for c in CANARIES {
        assert!(!text.contains(c), "{what} leaks the secret {c}:\n{text}");
    }
}

#[test]
fn no_secret_reaches_logs_metrics_mail_history_or_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let redis = Redis::start(tmp.path(), CANARIES[0]);
    let smtp = Smtp::start_with(tmp.path(), &["--auth", &format!("lockwatch:{}", CANARIES[3])]);
    let pgfile = tmp.path().join("pg-password");
    std::fs::write(&pgfile, CANARIES[2]).unwrap();
    let smtpfile = tmp.path().join("smtp-password");
    std::fs::write(&smtpfile, CANARIES[3]).unwrap();
    let dead = Silent::new();
    let dead = dead.port();
    let sources = format!(
        r#"
[[sources]]
kind = "redis"
name = "cache"
url = "redis://:{c0}@127.0.0.1:{rp}"
[[sources]]
kind = "redis"
name = "wrong-password"
url = "redis://:{c1}@127.0.0.1:{rp}"
[[sources]]
kind = "postgres"
name = "db"
url = "postgres://lockwatch@127.0.0.1:{dead}/postgres?sslmode=disable"
password_file = "{pgfile}"
timeout = "2s"
[[sources]]
kind = "aws"
name = "aws"
regions = ["us-east-1"]
endpoint_url = "http://127.0.0.1:{dead}"
timeout = "5s"
"#,
        c0 = CANARIES[0],
        c1 = CANARIES[1],
        rp = redis.port,
        pgfile = pgfile.display()
    );
    let cfg = write_config(tmp.path(), smtp.port, &sources);
    // SMTP AUTH with the password from a file; blindness after 2 cycles to get error mails quickly.
    let text = std::fs::read_to_string(&cfg).unwrap();
    let text = text
        .replace(
            "timeout = \"5s\"\n[[sources]]",
            "timeout = \"5s\"\nusername = \"lockwatch\"\n[[sources]]",
        )
        .replacen(
            "timeout = \"5s\"\n",
            &format!(
                "timeout = \"5s\"\nusername = \"lockwatch\"\npassword_file = \"{}\"\n",
                smtpfile.display()
            ),
            1,
        )
        .replace("[daemon]\n", "[daemon]\nblind_after = 2\n");
    std::fs::write(&cfg, &text).unwrap();

    let mut lw = Lockwatch::spawn(
        &cfg,
        &[("LOCKWATCH_LOG", "debug"), ("AWS_SECRET_ACCESS_KEY", CANARIES[4])],
    );
    let port = lw.metrics_port;
    let t = Duration::from_secs(60);
    for blind in ["wrong-password", "db", "aws"] {
        smtp.expect(
            0,
            &format!("lockwatch/source/{blind}"),
            &[("alert", Some("high"), &["lockwatch.source.blind"])],
            t,
        );
    }
    let id = format!("cache/redis/127.0.0.1:{}", redis.port);
    let rules: &[&str] = &["drift.weakened", "redis.auth.disabled"];
    redis.cli(&["CONFIG", "SET", "requirepass", ""]);
    smtp.expect(0, &id, &[("alert", Some("critical"), rules)], t);
    redis.cli_as(None, &["CONFIG", "SET", "requirepass", CANARIES[0]]);
    smtp.expect(
        0,
        &id,
        &[("alert", Some("critical"), rules), ("resolved", None, rules)],
        t,
    );

    // (While the password is off, the wrong-password source can read the server again: its
    // blindness may resolve and return. Every mail is checked for secrets below.)
    let mails = smtp.mails();
    assert!(mails.len() >= 5, "{mails:#?}");
    for m in &mails {
        assert_clean("an email", m["raw"].as_str().unwrap());
    }
    let blind_db = mails
        .iter()
        .find(|m| m["subject"].as_str().unwrap().contains("cannot see source db"))
        .unwrap();
    assert!(
        blind_db["text"].as_str().unwrap().contains("Last error"),
        "the error reaches on-call, without the secret"
    );
    assert_clean("/metrics", &http_get(port, "/metrics").unwrap());
    let run_cli = |args: &[&str]| {
        let mut c = std::process::Command::new(lockwatch_bin());
        c.arg("--config").arg(&cfg).args(args);
        let out = aws_test_env(&mut c)
            .env("AWS_SECRET_ACCESS_KEY", CANARIES[4])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
    };
    let id = format!("cache/redis/127.0.0.1:{}", redis.port);
    assert_clean("history", &run_cli(&["history", &id]));
    assert_clean("history --format json", &run_cli(&["history", &id, "--format", "json"]));
    assert_clean("outbox", &run_cli(&["outbox", "--all"]));
    assert_clean("baseline show", &run_cli(&["baseline", "show", "--format", "json"]));
    assert_clean("check-config", &run_cli(&["check-config"]));
    let scan = run_cli(&["scan", "--format", "json"]);
    assert!(scan.contains("wrong-password") && scan.contains("\"errors\""), "{scan}");
    assert_clean("scan", &scan);
    lw.proc.terminate();
    assert_clean("the daemon's log", &lw.proc.log_text());
    assert!(lw.proc.log_text().contains("***"), "URLs are shown redacted");
}
