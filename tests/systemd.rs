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
    let port = support::free_port();
    let cfg = support::write_config(tmp.path(), port, support::free_port(), "");
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
    while t0.elapsed() < Duration::from_secs(20)
        && !(seen.iter().any(|m| m.contains("READY=1"))
            && seen.iter().filter(|m| m.contains("WATCHDOG=1")).count() >= 2)
    {
        if let Ok(n) = sock.recv(&mut buf) {
            seen.push(String::from_utf8_lossy(&buf[..n]).to_string());
        }
    }
    let ready_at = seen
        .iter()
        .position(|m| m.contains("READY=1"))
        .unwrap_or_else(|| panic!("no READY=1 in {seen:?}"));
    assert!(
        lw.log_text().contains("cycle done"),
        "READY must follow the first cycle"
    );
    assert!(
        seen[ready_at + 1..].iter().filter(|m| m.contains("WATCHDOG=1")).count() >= 2,
        "{seen:?}"
    );

    assert!(lw.terminate().is_some_and(|s| s.success()), "{}", lw.log_text());
    let mut stopping = false;
    while let Ok(n) = sock.recv(&mut buf) {
        stopping |= String::from_utf8_lossy(&buf[..n]).contains("STOPPING=1");
    }
    assert!(stopping, "no STOPPING=1 after SIGTERM");
}
