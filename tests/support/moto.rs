//! AWS on loopback: moto_server, and tests/support/fault_proxy.py in front of it.
#![allow(dead_code)]

use super::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A moto server on its own loopback port: every AWS API lockwatch calls, with state in memory.
pub struct Moto {
    pub port: u16,
    pub endpoint: String,
    pub proc: Proc,
}

impl Moto {
    pub fn start(dir: &Path) -> Moto {
        Self::start_with_env(dir, &[])
    }

    /// With environment settings for moto, e.g. INITIAL_NO_AUTH_ACTION_COUNT (IAM enforced
    /// after that many requests).
    pub fn start_with_env(dir: &Path, env: &[(&str, &str)]) -> Moto {
        let server = python().with_file_name("moto_server");
        need("moto_server (the test venv's moto[server])", &server);
        // Port 0: the server binds a free port and says which ("Running on http://127.0.0.1:N").
        let mut cmd = Command::new(server);
        cmd.args(["-H", "127.0.0.1", "-p", "0"]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut proc = Proc::spawn("moto_server", &mut cmd, dir.join(unique("moto", "log")));
        let port = wait_for("moto to answer", Duration::from_secs(60), || {
            if !proc.is_running() {
                panic!("moto_server exited: {}", proc.log_text());
            }
            let port: u16 = proc
                .log_text()
                .lines()
                .find_map(|l| l.split("Running on http://127.0.0.1:").nth(1))
                .and_then(|p| p.trim().parse().ok())?;
            http_get(port, "/moto-api/").map(|_| port)
        });
        Moto {
            port,
            endpoint: format!("http://127.0.0.1:{port}"),
            proc,
        }
    }

    /// Run one tests/support/aws_fixture.py action; its JSON output.
    pub fn call(&self, account: &str, region: &str, action: &str, args: &[&str]) -> serde_json::Value {
        self.call_as(None, account, region, action, args)
    }

    /// The same, signed with these credentials (access key id, secret) instead of moto's
    /// defaults: for a moto that enforces IAM.
    pub fn call_as(
        &self,
        keys: Option<(&str, &str)>,
        account: &str,
        region: &str,
        action: &str,
        args: &[&str],
    ) -> serde_json::Value {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/aws_fixture.py");
        let mut cmd = Command::new(python());
        if let Some((id, secret)) = keys {
            cmd.env("AWS_FIXTURE_KEY_ID", id).env("AWS_FIXTURE_SECRET", secret);
        }
        let out = cmd
            .arg(script)
            .args([&self.endpoint, account, region, action])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "aws_fixture {action} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("aws_fixture output: {e}: {}", String::from_utf8_lossy(&out.stdout)))
    }
}

/// tests/support/fault_proxy.py in front of a moto server; `set` changes its mode.
pub struct FaultProxy {
    pub port: u16,
    pub endpoint: String,
    upstream: u16,
    control: PathBuf,
    dir: PathBuf,
    pub proc: Option<Proc>,
}

impl FaultProxy {
    pub fn start(dir: &Path, moto: &Moto) -> FaultProxy {
        let mut p = FaultProxy {
            port: 0,
            endpoint: String::new(),
            upstream: moto.port,
            control: dir.join(unique("fault-mode", "txt")),
            dir: dir.to_path_buf(),
            proc: None,
        };
        p.set("pass");
        p.up();
        p
    }

    /// pass | error500 | throttle | fail-region:R | fail-action:A | fail-page:A:N | hang:A |
    /// truncate:A | slow:A:MS (see fault_proxy.py)
    pub fn set(&self, mode: &str) {
        std::fs::write(&self.control, mode).unwrap();
    }

    /// Stop listening altogether: connections are refused.
    pub fn down(&mut self) {
        self.proc = None;
    }

    pub fn up(&mut self) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/fault_proxy.py");
        let mut cmd = Command::new(python());
        cmd.arg(script)
            .arg(self.port.to_string())
            .arg(self.upstream.to_string())
            .arg(&self.control);
        let mut proc = Proc::spawn("fault proxy", &mut cmd, self.dir.join(unique("fault-proxy", "log")));
        // The first time it picks a port (0) and says which; after `down`, it comes back there.
        let port = wait_for("the fault proxy", Duration::from_secs(20), || {
            if !proc.is_running() {
                panic!("fault proxy exited: {}", proc.log_text());
            }
            ready_port(&proc.log_text())
        });
        self.port = port;
        self.endpoint = format!("http://127.0.0.1:{port}");
        self.proc = Some(proc);
    }
}

/// Dummy credentials for moto, and nothing from the machine's own AWS configuration.
pub fn aws_test_env(cmd: &mut Command) -> &mut Command {
    cmd.env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
}
