//! Our own redis-server on a loopback port.
#![allow(dead_code)]

use super::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub struct Redis {
    pub port: u16,
    pub password: String,
    pub proc: Proc,
}

impl Redis {
    pub fn start(dir: &Path, password: &str) -> Redis {
        Self::start_with(dir, password, &[])
    }

    /// redis-server with `extra` arguments (TLS settings, say). redis cannot bind port 0: it
    /// gets a free port, and if another process takes that port first, a new one.
    pub fn start_with(dir: &Path, password: &str, extra: &[&str]) -> Redis {
        need("redis-server", Path::new("/usr/bin/redis-server"));
        for _ in 0..10 {
            let port = free_port();
            let data = dir.join(format!("redis-{port}"));
            std::fs::create_dir_all(&data).unwrap();
            let mut cmd = Command::new("redis-server");
            cmd.args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(&data)
            .args(["--requirepass", password])
            .args(extra);
            let mut proc = Proc::spawn("redis-server", &mut cmd, dir.join(format!("redis-{port}.log")));
            let up = wait_for("redis to accept connections or exit", Duration::from_secs(20), || {
                if !proc.is_running() {
                    return Some(false);
                }
                proc.log_text().contains("Ready to accept connections").then_some(true)
            });
            if !up {
                assert!(
                    proc.log_text().contains("Address already in use"),
                    "redis-server exited: {}",
                    proc.log_text()
                );
                continue;
            }
            return Redis {
                port,
                password: password.into(),
                proc,
            };
        }
        panic!("no free port for redis-server after 10 tries");
    }

    /// Run redis-cli authenticated with the password the instance was started with.
    pub fn cli(&self, args: &[&str]) -> String {
        self.cli_as(Some(&self.password), args)
    }

    pub fn cli_as(&self, password: Option<&str>, args: &[&str]) -> String {
        let mut cmd = Command::new("redis-cli");
        cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "--no-auth-warning"]);
        if let Some(p) = password {
            cmd.args(["-a", p]);
        }
        let out = cmd.args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
    }
}
