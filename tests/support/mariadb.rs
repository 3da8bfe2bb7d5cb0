//! Our own mariadbd: own datadir owned by `mysql`, own loopback port and socket.
#![allow(dead_code)]

use super::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Our own mariadbd (own datadir owned by `mysql`, own loopback port and socket).
pub struct Mariadb {
    pub port: u16,
    pub dir: PathBuf,
    pub proc: Option<Proc>,
}

impl Mariadb {
    /// Install a fresh datadir and start on it, with a monitoring account `lockwatch@127.0.0.1`
    /// (password `monitor_password`) and an application account `app@'%'`.
    pub fn start(dir: &Path, monitor_password: &str) -> Mariadb {
        need("mariadbd", Path::new("/usr/sbin/mariadbd"));
        let mdir = dir.join(unique("mariadb", "d"));
        std::fs::create_dir_all(mdir.join("data")).unwrap();
        // Its own temporary directory (owned by mysql): concurrent bootstraps in the shared /tmp collided.
        std::fs::create_dir_all(mdir.join("tmp")).unwrap();
        let out = Command::new("chown")
            .args(["-R", "mysql:mysql"])
            .arg(&mdir)
            .output()
            .unwrap();
        assert!(out.status.success());
        let out = Command::new("mariadb-install-db")
            .args([
                "--no-defaults",
                "--user=mysql",
                "--skip-test-db",
                "--auth-root-authentication-method=socket",
            ])
            .arg(format!("--datadir={}", mdir.join("data").display()))
            .arg(format!("--tmpdir={}", mdir.join("tmp").display()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mariadb-install-db: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut m = Mariadb {
            port: 0,
            dir: mdir,
            proc: None,
        };
        m.first_run();
        m.sql(&format!(
            "CREATE USER lockwatch@'127.0.0.1' IDENTIFIED BY '{monitor_password}';              GRANT SELECT ON mysql.user TO lockwatch@'127.0.0.1'; GRANT SELECT ON mysql.global_priv TO lockwatch@'127.0.0.1';              CREATE USER app@'%' IDENTIFIED BY 'app-pw-1'; GRANT SELECT ON *.* TO app@'127.0.0.1' IDENTIFIED BY 'app-pw-2';"
        ));
        m
    }

    fn sock(&self) -> PathBuf {
        self.dir.join("mysqld.sock")
    }

    /// (Re)start mariadbd on the datadir with extra options, e.g. `--skip-grant-tables`.
    fn command(&self, extra: &[&str]) -> Command {
        let mut cmd = Command::new("/usr/sbin/mariadbd");
        cmd.args([
            "--no-defaults",
            "--user=mysql",
            "--bind-address=127.0.0.1",
            "--skip-log-bin",
            "--innodb-buffer-pool-size=16M",
        ])
        .arg(format!("--datadir={}", self.dir.join("data").display()))
        .arg(format!("--port={}", self.port))
        .arg(format!("--tmpdir={}", self.dir.join("tmp").display()))
        .arg(format!("--socket={}", self.sock().display()))
        .arg(format!("--pid-file={}", self.dir.join("mysqld.pid").display()))
        .args(extra);
        cmd
    }

    /// (Re)start mariadbd on the datadir, on its port, with extra options, e.g. `--skip-grant-tables`.
    pub fn run(&mut self, extra: &[&str]) {
        self.stop();
        let mut cmd = self.command(extra);
        let proc = Proc::spawn("mariadbd", &mut cmd, self.dir.join(unique("mariadbd", "log")));
        self.proc = Some(proc);
        wait_for("mariadbd to accept connections", Duration::from_secs(60), || {
            let p = self.proc.as_mut().unwrap();
            if !p.is_running() {
                panic!("mariadbd exited: {}", p.log_text());
            }
            self.try_sql("SELECT 1").ok().map(|_| ())
        });
    }

    /// The first start: mariadbd cannot bind port 0, so a free port, and another if someone
    /// takes it first.
    fn first_run(&mut self) {
        for _ in 0..10 {
            self.port = free_port();
            let mut cmd = self.command(&[]);
            let mut proc = Proc::spawn("mariadbd", &mut cmd, self.dir.join(unique("mariadbd", "log")));
            let up = wait_for(
                "mariadbd to accept connections or exit",
                Duration::from_secs(60),
                || {
                    if !proc.is_running() {
                        return Some(false);
                    }
                    self.try_sql("SELECT 1").ok().map(|_| true)
                },
            );
            if up {
                self.proc = Some(proc);
                return;
            }
            assert!(
                proc.log_text().contains("Address already in use"),
                "mariadbd exited: {}",
                proc.log_text()
            );
        }
        panic!("no free port for mariadbd after 10 tries");
    }

    pub fn stop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.terminate();
        }
    }

    fn try_sql(&self, sql: &str) -> Result<String, String> {
        let out = Command::new("mariadb")
            .args(["--no-defaults", "-u", "root", "-N", "-B"])
            .arg(format!("--socket={}", self.sock().display()))
            .args(["-e", sql])
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into())
        }
    }

    /// SQL as root over the instance's own socket (unix_socket authentication).
    pub fn sql(&self, sql: &str) -> String {
        self.try_sql(sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

impl Drop for Mariadb {
    fn drop(&mut self) {
        self.stop();
    }
}
