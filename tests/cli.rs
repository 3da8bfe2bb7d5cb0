//! The command-line interface as users and scripts see it: exit codes, JSON shape, config errors.

mod support;
use std::time::Duration;
use support::*;

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
    let silent = Silent::new();
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
            "[[sources]]\nkind = \"redis\"\nname = \"gone\"\nurl = \"redis://:pw@127.0.0.1:{}\"\ntimeout = \"2s\"\n",
            silent.port()
        ),
    );
    let (code, out, err) = cli(&cfg2, &["scan", "--format", "json"]);
    assert_eq!(code, 2, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["errors"][0]["source"], "gone");
    assert!(!out.contains("pw@"), "{out}");
    // Said once, in the report: not again as a log line.
    assert!(!err.contains("gone"), "the failure is printed once: {err}");
}

#[test]
fn test_alert_reaches_the_smtp_server() {
    let tmp = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(tmp.path());
    let cfg = write_config(tmp.path(), smtp.port, "");
    let (code, out, err) = cli(&cfg, &["test-alert"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("accepted") && out.contains("oncall@example.com"), "{out}");
    let m = smtp.expect(0, "lockwatch/test", &[("test", None, &[])], Duration::from_secs(10));
    assert!(m[0].subject.starts_with("[lockwatch] TEST"), "{}", m[0].subject);
    assert!(m[0].text.contains("alert delivery works"));

    // The server never answers: a temporary failure, said so.
    let silent = Silent::new();
    let down = write_config(tmp.path(), silent.port(), "");
    let (code, _, err) = cli(&down, &["test-alert"]);
    assert_eq!(code, 2);
    assert!(err.contains("not delivered") && err.contains("temporary"), "{err}");

    // No [alerts.email]: nobody would be paged, and the exit code says so.
    let no_mail = write(tmp.path(), "nomail.toml", "");
    let (code, out, _) = cli(&no_mail, &["test-alert"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("log only") && out.contains("nobody was paged"), "{out}");
}

#[test]
fn second_daemon_on_the_same_state_dir_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(tmp.path());
    let cfg = write_config(tmp.path(), smtp.port, "");
    let _first = Lockwatch::start(&cfg);
    let (code, _, err) = cli(&cfg, &["run"]);
    assert_eq!(code, 2);
    assert!(err.contains("another lockwatch daemon is already running"), "{err}");
}

#[test]
fn a_mistyped_state_dir_is_an_error_not_a_fresh_start() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write(
        tmp.path(),
        "typo.toml",
        &format!(
            "[daemon]\nstate_dir = \"{}/nonexistent/dir/state\"\nmetrics_listen = \"127.0.0.1:0\"\n",
            tmp.path().display()
        ),
    );
    for args in [&["run"][..], &["check-config"][..]] {
        let (code, _, err) = cli(&cfg, args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(
            err.contains("nonexistent/dir") && err.contains("does not exist"),
            "{args:?}: {err}"
        );
    }
    assert!(!tmp.path().join("nonexistent").exists(), "nothing was created");
}

#[test]
fn a_closed_stdout_ends_a_command_quietly() {
    use std::os::fd::FromRawFd;
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write(tmp.path(), "c.toml", "[daemon]\nmetrics_listen = \"127.0.0.1:0\"\n");
    // A pipe whose reading end is closed before the command starts, as `| head` leaves it.
    let mut fds = [0; 2];
    assert_eq!(unsafe { libc_pipe(fds.as_mut_ptr()) }, 0);
    unsafe { libc_close(fds[0]) };
    let stdout = unsafe { std::process::Stdio::from_raw_fd(fds[1]) };
    let out = std::process::Command::new(lockwatch_bin())
        .arg("--config")
        .arg(&cfg)
        .arg("check-config")
        .stdout(stdout)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_ne!(out.status.code(), Some(101), "{err}");
}

unsafe extern "C" {
    #[link_name = "pipe"]
    fn libc_pipe(fds: *mut i32) -> i32;
    #[link_name = "close"]
    fn libc_close(fd: i32) -> i32;
}

/// The config errors a new operator meets first: one sentence each, at the offending line.
#[test]
fn first_config_errors_speak_plainly_at_the_right_line() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().display().to_string();
    let cases = [
        (
            format!("[daemon]\nstate_dir = \"{state}\"\nschedule = \"*/5 * * * *\"\n"),
            ":3: ",
            vec!["has five fields", "\"0 */5 * * * *\""],
        ),
        (
            format!(
                "[daemon]\nstate_dir = \"{state}\"\n[[sources]]\nkind = \"redis\"\nname = \"r\"\nurl = \"redis://127.0.0.1:1\"\ntimeout = 5\n"
            ),
            ":7: ",
            vec!["`timeout` expects a string", "\"30s\"", "not an integer 5"],
        ),
    ];
    for (i, (text, line, needles)) in cases.iter().enumerate() {
        let cfg = write(tmp.path(), &format!("case{i}.toml"), text);
        let (code, _, err) = cli(&cfg, &["check-config"]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(line), "want line {line}: {err}");
        for n in needles {
            assert!(err.contains(n), "want {n:?}: {err}");
        }
        assert!(!err.contains('^'), "no caret diagram: {err}");
    }
}
