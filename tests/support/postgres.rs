//! Our own PostgreSQL cluster (initdb as `postgres`), on a loopback port.
#![allow(dead_code)]

use super::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub struct Postgres {
    pub port: u16,
    pub dir: PathBuf,
    pub data: PathBuf,
    bin: PathBuf,
}

pub fn pg_bindir() -> PathBuf {
    let root = Path::new("/usr/lib/postgresql");
    need("PostgreSQL server binaries", root);
    let mut versions: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .expect("no initdb under /usr/lib/postgresql/*/bin: run scripts/test.sh")
}

fn as_postgres(cmd: &Path) -> Command {
    let mut c = Command::new("runuser");
    c.args(["-u", "postgres", "--"]).arg(cmd);
    c
}

impl Postgres {
    /// initdb (peer for sockets, scram-sha-256 for TCP), listen on 127.0.0.1 only, start, and
    /// create the monitoring role `lockwatch` with `monitor_password` and its grants.
    pub fn start(dir: &Path, monitor_password: &str) -> Postgres {
        let bin = pg_bindir();
        let port = free_port();
        let pgdir = dir.join(format!("pg-{port}"));
        std::fs::create_dir_all(&pgdir).unwrap();
        chown_postgres(dir);
        chown_postgres(&pgdir);
        let data = pgdir.join("data");
        let out = as_postgres(&bin.join("initdb"))
            .args(["-D"])
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth-local=peer",
                "--auth-host=scram-sha-256",
                "--no-sync",
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "initdb: {}", String::from_utf8_lossy(&out.stderr));
        let conf = format!(
            "\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nssl = off\nfsync = off\n",
            pgdir.display()
        );
        let mut pgconf = std::fs::read_to_string(data.join("postgresql.conf")).unwrap();
        pgconf.push_str(&conf);
        std::fs::write(data.join("postgresql.conf"), pgconf).unwrap();
        let out = as_postgres(&bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(pgdir.join("server.log"))
            .args(["-w", "-t", "60", "start"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let pg = Postgres {
            port,
            dir: pgdir,
            data,
            bin,
        };
        pg.psql(&format!(
            "CREATE ROLE lockwatch LOGIN PASSWORD '{monitor_password}'; GRANT pg_read_all_settings TO lockwatch; \
             GRANT SELECT ON pg_hba_file_rules TO lockwatch; GRANT EXECUTE ON FUNCTION pg_hba_file_rules() TO lockwatch;"
        ));
        pg
    }

    /// Run SQL as the superuser over the instance's own Unix socket.
    pub fn psql(&self, sql: &str) -> String {
        let out = as_postgres(&self.bin.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(&self.dir)
            .args(["-p", &self.port.to_string(), "-d", "postgres", "-c", sql])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    pub fn hba(&self) -> String {
        std::fs::read_to_string(self.data.join("pg_hba.conf")).unwrap()
    }

    pub fn set_hba(&self, text: &str) {
        std::fs::write(self.data.join("pg_hba.conf"), text).unwrap();
        self.psql("SELECT pg_reload_conf()");
    }
}

fn chown_postgres(p: &Path) {
    let out = Command::new("chown").arg("postgres:postgres").arg(p).output().unwrap();
    assert!(
        out.status.success(),
        "chown {}: {}",
        p.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}
