//! The command-line interface as users and scripts see it: exit codes, JSON shape, config errors.

mod support;
use std::time::Duration;
use support::*;

fn write(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn check_config_reports_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = write(
        tmp.path(),
        "bad.toml",
        "[daemon]\nschedule = \"*/30 * * * * *\"\nstate_dri = \"/tmp\"\n",
    );
    let (code, _, err) = cli(&bad, &["check-config"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("bad.toml:3:") && err.contains("unknown field `state_dri`"),
        "{err}"
    );

    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/lockwatch.toml");
    let (code, out, err) = cli(&shipped, &["check-config"]);
    assert_eq!(code, 0, "the shipped config must be valid: {err}");
    assert!(out.contains("fires next at"), "{out}");

    let (code, _, err) = cli(&tmp.path().join("missing.toml"), &["check-config"]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot read the config file"), "{err}");
}

#[test]
fn config_path_from_environment() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write(tmp.path(), "env.toml", "[daemon]\nschedule = \"0 * * * * *\"\n");
    let out = std::process::Command::new(lockwatch_bin())
        .arg("check-config")
        .env("LOCKWATCH_CONFIG", &cfg)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("env.toml: OK"));
}

#[test]
fn scan_exit_codes_and_json() {
    let tmp = tempfile::tempdir().unwrap();
    let redis = Redis::start(tmp.path(), "pw-scan");
    let dead_port = free_port();
    let cfg = write(
        tmp.path(),
        "scan.toml",
        &format!(
            "[[sources]]\nkind = \"redis\"\nname = \"r\"\nurl = \"redis://:pw-scan@127.0.0.1:{}\"\n",
            redis.port
        ),
    );
    let (code, out, err) = cli(&cfg, &["scan", "--format", "json"]);
    assert_eq!(code, 0, "protected redis: {out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["resources"][0]["id"], format!("r/redis/127.0.0.1:{}", redis.port));
    assert_eq!(v["resources"][0]["source"], "r");
    assert_eq!(v["resources"][0]["kind"], "redis");
    assert_eq!(v["resources"][0]["exposed"], false);
    assert!(v["errors"].as_array().unwrap().is_empty());

    redis.cli(&["CONFIG", "SET", "requirepass", ""]);
    let (code, out, _) = cli(&cfg, &["scan", "--format", "json"]);
    assert_eq!(code, 1, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["resources"][0]["exposed"], true);
    let f = &v["resources"][0]["findings"][0];
    assert_eq!(
        (f["rule"].as_str(), f["severity"].as_str()),
        (Some("redis.auth.disabled"), Some("high"))
    );
    assert!(f["message"].as_str().unwrap().contains("requirepass"));
    let (code, out, _) = cli(&cfg, &["scan"]);
    assert_eq!(code, 1);
    assert!(
        out.contains("EXPOSED") && out.contains("[high] redis.auth.disabled"),
        "{out}"
    );

    // A source that cannot be reached is an error (exit 2), reported with the source's name.
    let cfg2 = write(
        tmp.path(),
        "down.toml",
        &format!(
            "[[sources]]\nkind = \"redis\"\nname = \"gone\"\nurl = \"redis://:pw@127.0.0.1:{dead_port}\"\ntimeout = \"2s\"\n"
        ),
    );
    let (code, out, _) = cli(&cfg2, &["scan", "--format", "json"]);
    assert_eq!(code, 2, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["errors"][0]["source"], "gone");
    assert!(!out.contains("pw@"), "{out}");
}

#[test]
fn test_alert_reaches_the_smtp_server() {
    let tmp = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(free_port(), tmp.path());
    let cfg = write_config(tmp.path(), free_port(), smtp.port, "");
    let (code, out, err) = cli(&cfg, &["test-alert"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("accepted"), "{out}");
    let m = wait_mail(&smtp.dir, "[lockwatch] TEST", Duration::from_secs(10));
    assert!(m["text"].as_str().unwrap().contains("alert delivery works"));

    let down = write_config(tmp.path(), free_port(), free_port(), "");
    let (code, _, err) = cli(&down, &["test-alert"]);
    assert_eq!(code, 2);
    assert!(err.contains("not delivered") && err.contains("temporary"), "{err}");
}

#[test]
fn second_daemon_on_the_same_state_dir_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(free_port(), tmp.path());
    let port = free_port();
    let cfg = write_config(tmp.path(), port, smtp.port, "");
    let _first = Lockwatch::start(&cfg, port);
    let (code, _, err) = cli(&cfg, &["run"]);
    assert_eq!(code, 2);
    assert!(err.contains("another lockwatch daemon is already running"), "{err}");
}

#[test]
fn a_damaged_state_file_is_refused_and_left_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(tmp.path(), free_port(), free_port(), "");
    let state = tmp.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let db = state.join("lockwatch.db");
    let junk =
        b"SQLite format 3\0 but then garbage, as after a disk error ....................................".repeat(64);
    std::fs::write(&db, &junk).unwrap();
    for args in [&["run"][..], &["baseline", "show"][..]] {
        let (code, _, err) = cli(&cfg, args);
        assert_eq!(code, 2, "{args:?}");
        assert!(
            err.contains("is damaged") && err.contains("will not overwrite"),
            "{err}"
        );
    }
    assert_eq!(std::fs::read(&db).unwrap(), junk, "the damaged file is kept as it was");
}
