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

/// Write a config with a one-second schedule, SMTP on `smtp_port`, and the given sources.
pub fn write_config(dir: &Path, metrics_port: u16, smtp_port: u16, sources: &str) -> PathBuf {
    let text = format!(
        r#"[daemon]
schedule = "* * * * * *"
state_dir = "{state}"
metrics_listen = "127.0.0.1:{metrics_port}"
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

impl Lockwatch {
    pub fn start(config: &Path, metrics_port: u16) -> Lockwatch {
        let log = config.with_file_name(unique("lockwatch", "log"));
        let mut cmd = Command::new(lockwatch_bin());
        cmd.arg("--config")
            .arg(config)
            .arg("run")
            .env("LOCKWATCH_LOG", "info,lockwatch=debug");
        aws_test_env(&mut cmd);
        let mut proc = Proc::spawn("lockwatch", &mut cmd, log);
        wait_for("lockwatch's metrics endpoint", Duration::from_secs(30), || {
            if !proc.is_running() {
                panic!("lockwatch exited early:\n{}", proc.log_text());
            }
            http_get(metrics_port, "/healthz")
                .filter(|b| b.contains("ok"))
                .map(|_| ())
        });
        Lockwatch {
            config: config.to_path_buf(),
            metrics_port,
            proc,
        }
    }

    pub fn metrics(&self) -> String {
        http_get(self.metrics_port, "/metrics").unwrap_or_default()
    }

    /// Run a lockwatch CLI command with this config; (exit code, stdout, stderr).
    pub fn cli(&self, args: &[&str]) -> (i32, String, String) {
        cli(&self.config, args)
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
    BufReader::new(reader)
        .lines()
        .map_while(Result::ok)
        .find(|l| l.contains(needle))
}
