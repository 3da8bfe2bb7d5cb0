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
    let smtp = Smtp::start_with(
        free_port(),
        tmp.path(),
        &["--auth", &format!("lockwatch:{}", CANARIES[3])],
    );
    let pgfile = tmp.path().join("pg-password");
    std::fs::write(&pgfile, CANARIES[2]).unwrap();
    let smtpfile = tmp.path().join("smtp-password");
    std::fs::write(&smtpfile, CANARIES[3]).unwrap();
    let dead = free_port();
    let port = free_port();
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
    let cfg = write_config(tmp.path(), port, smtp.port, &sources);
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

    let mut cmd = std::process::Command::new(lockwatch_bin());
    cmd.arg("--config").arg(&cfg).arg("run").env("LOCKWATCH_LOG", "debug");
    aws_test_env(&mut cmd).env("AWS_SECRET_ACCESS_KEY", CANARIES[4]);
    let mut lw = Proc::spawn("lockwatch", &mut cmd, tmp.path().join("lw.log"));
    wait_for("metrics", Duration::from_secs(30), || http_get(port, "/healthz"));

    for blind in ["wrong-password", "db", "aws"] {
        wait_mail(
            &smtp.dir,
            &format!("[lockwatch] HIGH lockwatch/source/{blind}"),
            Duration::from_secs(60),
        );
    }
    redis.cli(&["CONFIG", "SET", "requirepass", ""]);
    wait_mail(&smtp.dir, "[lockwatch] CRITICAL cache/redis/", Duration::from_secs(60));
    redis.cli_as(None, &["CONFIG", "SET", "requirepass", CANARIES[0]]);
    wait_mail(&smtp.dir, "[lockwatch] RESOLVED cache/redis/", Duration::from_secs(60));

    let mails = smtp.mails();
    assert!(mails.len() >= 5, "{mails:#?}");
    for m in &mails {
        assert_clean("an email", m["raw"].as_str().unwrap());
    }
    let blind_db = mails
        .iter()
        .find(|m| m["subject"].as_str().unwrap().contains("lockwatch/source/db"))
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
    lw.terminate();
    assert_clean("the daemon's log", &lw.log_text());
    assert!(lw.log_text().contains("***"), "URLs are shown redacted");
}
