//! The lockwatch binary under test: config, daemon, CLI, metrics.
#![allow(dead_code)]

use super::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub struct Lockwatch {
    pub config: PathBuf,
    pub metrics_port: u16,
    pub proc: Proc,
}

/// A config with a one-second schedule, metrics on a port lockwatch picks (`127.0.0.1:0`),
/// SMTP on `smtp_port`, and the given sources.
pub fn write_config(dir: &Path, smtp_port: u16, sources: &str) -> PathBuf {
    let text = format!(
        r#"[daemon]
schedule = "* * * * * *"
state_dir = "{state}"
metrics_listen = "127.0.0.1:0"
[alerts]
remind_every = "4h"
[alerts.email]
smtp_host = "127.0.0.1"
smtp_port = {smtp_port}
tls = "none"
from = "lockwatch@example.com"
to = ["oncall@example.com"]
timeout = "5s"
{sources}
"#,
        state = dir.join("state").display()
    );
    let path = dir.join("lockwatch.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The metrics address a daemon logged it listens on.
fn metrics_address(log: &str) -> Option<u16> {
    log.lines()
        .filter(|l| l.contains("metrics on /metrics"))
        .find_map(|l| l.split("address=").nth(1))
        .and_then(|a| a.split_whitespace().next())
        .and_then(|a| a.rsplit(':').next())
        .and_then(|p| p.parse().ok())
}

impl Lockwatch {
    /// Start the daemon and wait until its first cycle is committed (the baselines exist), so
    /// that a change the test makes next is a change, not the first sight.
    pub fn start(config: &Path) -> Lockwatch {
        let lw = Self::spawn(config, &[]);
        lw.wait_cycles(1);
        lw
    }

    /// Start without waiting for a cycle; `env` is added to the daemon's environment.
    pub fn spawn(config: &Path, env: &[(&str, &str)]) -> Lockwatch {
        let log = config.with_file_name(unique("lockwatch", "log"));
        let mut cmd = Command::new(lockwatch_bin());
        cmd.arg("--config")
            .arg(config)
            .arg("run")
            .env("LOCKWATCH_LOG", "info,lockwatch=debug");
        aws_test_env(&mut cmd);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut proc = Proc::spawn("lockwatch", &mut cmd, log);
        let metrics_port = wait_for("lockwatch's metrics endpoint", Duration::from_secs(30), || {
            if !proc.is_running() {
                panic!("lockwatch exited early:\n{}", proc.log_text());
            }
            metrics_address(&proc.log_text())
        });
        Lockwatch {
            config: config.to_path_buf(),
            metrics_port,
            proc,
        }
    }

    /// The metrics text; a test that reads metrics from a daemon that does not answer fails.
    pub fn metrics(&self) -> String {
        http_get(self.metrics_port, "/metrics")
            .unwrap_or_else(|| panic!("lockwatch's /metrics does not answer on port {}", self.metrics_port))
    }

    /// Cycles committed so far.
    pub fn cycles(&self) -> u64 {
        metric(&self.metrics(), "lockwatch_cycles_total").unwrap_or(0.0) as u64
    }

    /// Wait until `n` more cycles have been committed: progress observed, not time slept.
    pub fn wait_cycles(&self, n: u64) {
        let target = self.cycles() + n;
        wait_for(&format!("{n} more cycle(s)"), Duration::from_secs(60), || {
            (self.cycles() >= target).then_some(())
        });
    }

    /// A quiet period, proven: `n` cycles ran and nothing is waiting to be delivered. Mails the
    /// cycles caused are in the mailbox when this returns.
    pub fn quiet(&self, n: u64) {
        self.wait_cycles(n);
        wait_for("the outbox to be empty", Duration::from_secs(30), || {
            (metric(&self.metrics(), "lockwatch_alert_queue_depth") == Some(0.0)).then_some(())
        });
    }

    /// Run a lockwatch CLI command with this config; (exit code, stdout, stderr).
    pub fn cli(&self, args: &[&str]) -> (i32, String, String) {
        cli(&self.config, args)
    }

    /// The value of one series (exact name and labels as printed).
    pub fn metric(&self, series: &str) -> Option<f64> {
        metric(&self.metrics(), series)
    }
}

pub fn cli(config: &Path, args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(lockwatch_bin());
    cmd.arg("--config").arg(config).args(args);
    let out = aws_test_env(&mut cmd).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// A minimal HTTP/1.0 GET on loopback; the body, or None when nothing answers.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let (_, body) = buf.split_once("\r\n\r\n")?;
    Some(body.to_string())
}

/// The value of a metric line (exact name and labels as printed), if present.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
    })
}

pub fn first_line_containing(reader: impl std::io::Read, needle: &str) -> Option<String> {
    use std::io::{BufRead, BufReader};
    BufReader::new(reader)
        .lines()
        .map_while(Result::ok)
        .find(|l| l.contains(needle))
}
