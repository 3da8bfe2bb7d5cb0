//! The shipped unit: `systemd-analyze verify` is clean and the sandbox scores ≤ 2.0.

mod support;
use std::path::Path;
use std::process::Command;

fn unit_for_this_build(dir: &Path) -> std::path::PathBuf {
    // verify checks that ExecStart exists: point it at the binary under test.
    let unit =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/lockwatch.service")).unwrap();
    assert!(
        unit.contains("/usr/local/bin/lockwatch"),
        "the unit's ExecStart moved; update this test"
    );
    let path = dir.join("lockwatch.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/lockwatch", support::lockwatch_bin().to_str().unwrap()),
    )
    .unwrap();
    path
}

fn systemd_analyze() -> Command {
    assert!(
        Path::new("/usr/bin/systemd-analyze").exists(),
        "systemd-analyze not found: run scripts/test.sh, which installs systemd"
    );
    Command::new("systemd-analyze")
}

#[test]
fn unit_verifies_without_warnings() {
    let tmp = tempfile::tempdir().unwrap();
    let unit = unit_for_this_build(tmp.path());
    let out = systemd_analyze()
        .arg("verify")
        .arg(&unit)
        .current_dir(tmp.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let ours: Vec<&str> = stderr.lines().filter(|l| l.contains("lockwatch")).collect();
    assert!(
        out.status.success() && ours.is_empty(),
        "systemd-analyze verify:\n{stderr}"
    );
}

#[test]
fn unit_sandbox_exposure_at_most_2() {
    let tmp = tempfile::tempdir().unwrap();
    let unit = unit_for_this_build(tmp.path());
    let out = systemd_analyze()
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&unit)
        .current_dir(tmp.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let score: f64 = text
        .lines()
        .find_map(|l| l.split("Overall exposure level for lockwatch.service:").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no exposure score in:\n{text}"));
    assert!(score <= 2.0, "exposure {score} > 2.0:\n{text}");
    // The README quotes the score: it must be the one systemd-analyze prints.
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let claimed = format!("`systemd-analyze security` exposure {score:.1})");
    assert!(readme.contains(&claimed), "README should say {claimed:?}");
}

/// Under the unit (DynamicUser=yes), secrets arrive as systemd credentials: a relative
/// password_file is read from $CREDENTIALS_DIRECTORY, and without it lockwatch says what to do.
#[test]
fn a_relative_password_file_is_a_systemd_credential() {
    use support::*;
    let tmp = tempfile::tempdir().unwrap();
    let redis = Redis::start(tmp.path(), "cred-pw-1");
    let creds = tmp.path().join("credentials");
    std::fs::create_dir(&creds).unwrap();
    std::fs::write(creds.join("redis"), "cred-pw-1\n").unwrap();
    let cfg = tmp.path().join("lockwatch.toml");
    std::fs::write(
        &cfg,
        format!(
            "[daemon]\nstate_dir = \"{}\"\n[[sources]]\nkind = \"redis\"\nname = \"cache\"\nurl = \"redis://127.0.0.1:{}\"\npassword_file = \"redis\"\n",
            tmp.path().display(),
            redis.port
        ),
    )
    .unwrap();
    let scan = |credentials: Option<&Path>| {
        let mut cmd = Command::new(lockwatch_bin());
        cmd.args(["--config", cfg.to_str().unwrap(), "scan", "--format", "json"]);
        match credentials {
            Some(dir) => cmd.env("CREDENTIALS_DIRECTORY", dir),
            None => cmd.env_remove("CREDENTIALS_DIRECTORY"),
        };
        let out = cmd.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, out, err) = scan(Some(&creds));
    assert_eq!(code, Some(0), "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["errors"].as_array().unwrap().is_empty(), "{out}");
    assert_eq!(v["resources"][0]["id"], format!("cache/redis/127.0.0.1:{}", redis.port));

    let (code, _, err) = scan(None);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(":7: ")
            && err.contains("password_file")
            && err.contains("CREDENTIALS_DIRECTORY")
            && err.contains("LoadCredential=redis:"),
        "{err}"
    );
}

#[test]
fn unit_declares_what_the_issue_requires() {
    let unit =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/lockwatch.service")).unwrap();
    for needle in [
        "Type=notify",
        "WatchdogSec=",
        "DynamicUser=yes",
        "StateDirectory=lockwatch",
        "ConfigurationDirectory=lockwatch",
        "LoadCredential=smtp:",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "PrivateDevices=yes",
        "RestrictAddressFamilies=",
        "SystemCallFilter=",
        "CapabilityBoundingSet=\n",
    ] {
        assert!(unit.contains(needle), "unit lacks {needle:?}");
    }
}

#[test]
fn notify_protocol_ready_after_first_cycle_watchdog_and_stopping() {
    use std::os::unix::net::UnixDatagram;
    use std::time::{Duration, Instant};
    let tmp = tempfile::tempdir().unwrap();
    let sock_path = tmp.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let cfg = support::write_config(tmp.path(), support::free_port(), "");
    let mut cmd = Command::new(support::lockwatch_bin());
    cmd.arg("--config")
        .arg(&cfg)
        .arg("run")
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "2000000");
    let mut lw = support::Proc::spawn("lockwatch", &mut cmd, tmp.path().join("lw.log"));

    let mut seen: Vec<String> = Vec::new();
    let t0 = Instant::now();
    let mut buf = [0u8; 4096];
    let mut log_at_ready = None;
    while t0.elapsed() < Duration::from_secs(20)
        && !(log_at_ready.is_some() && seen.iter().filter(|m| m.contains("WATCHDOG=1")).count() >= 2)
    {
        if let Ok(n) = sock.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).to_string();
            if msg.contains("READY=1") && log_at_ready.is_none() {
                // Read the log at the moment READY arrives: the first cycle must be done by then.
                log_at_ready = Some(lw.log_text());
            }
            seen.push(msg);
        }
    }
    let log = log_at_ready.unwrap_or_else(|| panic!("no READY=1 in {seen:?}"));
    assert!(
        log.contains("cycle done"),
        "READY came before the first cycle was committed:\n{log}"
    );
    assert!(
        seen.iter().filter(|m| m.contains("WATCHDOG=1")).count() >= 2,
        "{seen:?}"
    );

    assert!(lw.terminate().is_some_and(|s| s.success()), "{}", lw.log_text());
    let mut stopping = false;
    while let Ok(n) = sock.recv(&mut buf) {
        stopping |= String::from_utf8_lossy(&buf[..n]).contains("STOPPING=1");
    }
    assert!(stopping, "no STOPPING=1 after SIGTERM");
}

/// A cycle that outlasts WatchdogSec (a slow source, within its timeout) is no reason to kill
/// the daemon: the watchdog is fed while the cycle runs.
#[test]
fn the_watchdog_is_fed_during_a_cycle_longer_than_its_interval() {
    use std::os::unix::net::UnixDatagram;
    use std::time::{Duration, Instant};
    let tmp = tempfile::tempdir().unwrap();
    let sock_path = tmp.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let silent = support::Silent::new();
    let cfg = support::write_config(
        tmp.path(),
        support::free_port(),
        &format!(
            "[[sources]]\nkind = \"redis\"\nname = \"slow\"\nurl = \"redis://:pw@127.0.0.1:{}\"\ntimeout = \"6s\"\n",
            silent.port()
        ),
    );
    let mut cmd = Command::new(support::lockwatch_bin());
    cmd.arg("--config")
        .arg(&cfg)
        .arg("run")
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "2000000");
    let mut lw = support::Proc::spawn("lockwatch", &mut cmd, tmp.path().join("lw.log"));
    // The first cycle waits 6 s on the silent source; WatchdogSec is 2 s.
    let t0 = Instant::now();
    let mut pings = 0;
    let mut buf = [0u8; 4096];
    while t0.elapsed() < Duration::from_secs(5) {
        if let Ok(n) = sock.recv(&mut buf) {
            pings += String::from_utf8_lossy(&buf[..n]).matches("WATCHDOG=1").count();
        }
    }
    assert!(
        !lw.log_text().contains("cycle done"),
        "the first cycle should still be running:\n{}",
        lw.log_text()
    );
    assert!(pings >= 3, "only {pings} watchdog pings in 5 s of a running cycle");
    assert!(lw.is_running());
    lw.kill9();
}
