//! Our own PostgreSQL cluster (initdb as `postgres`), on a loopback port.
#![allow(dead_code)]

use super::*;
use std::path::{Path, PathBuf};
use std::process::Command;

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

/// How the cluster is set up.
pub struct PgOptions<'a> {
    pub monitor_password: &'a str,
    /// `ssl = on` with this certificate and key (PEM files), copied into the data directory.
    pub tls: Option<(&'a Path, &'a Path)>,
    /// Let the monitoring role read pg_hba.conf's times (EXECUTE on pg_stat_file).
    pub grant_stat_file: bool,
}

impl Postgres {
    /// initdb (peer for sockets, scram-sha-256 for TCP), listen on 127.0.0.1 only, start, and
    /// create the non-superuser monitoring role `lockwatch` with the grants the README lists.
    pub fn start(dir: &Path, monitor_password: &str) -> Postgres {
        Self::start_with(
            dir,
            PgOptions {
                monitor_password,
                tls: None,
                grant_stat_file: true,
            },
        )
    }

    pub fn start_with(dir: &Path, o: PgOptions<'_>) -> Postgres {
        let bin = pg_bindir();
        let pgdir = dir.join(unique("pg", "d"));
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
        let mut conf = format!(
            "\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nfsync = off\n",
            pgdir.display()
        );
        match o.tls {
            None => conf.push_str("ssl = off\n"),
            Some((cert, key)) => {
                std::fs::copy(cert, data.join("server.crt")).unwrap();
                std::fs::copy(key, data.join("server.key")).unwrap();
                for f in ["server.crt", "server.key"] {
                    chown_postgres(&data.join(f));
                }
                std::fs::set_permissions(
                    data.join("server.key"),
                    std::os::unix::fs::PermissionsExt::from_mode(0o600),
                )
                .unwrap();
                conf.push_str("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
            }
        }
        let mut pgconf = std::fs::read_to_string(data.join("postgresql.conf")).unwrap();
        pgconf.push_str(&conf);
        std::fs::write(data.join("postgresql.conf"), pgconf).unwrap();
        // PostgreSQL cannot bind port 0: a free port, and another if someone takes it first.
        for _ in 0..10 {
            let port = free_port();
            let out = as_postgres(&bin.join("pg_ctl"))
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(pgdir.join("server.log"))
                .args(["-o", &format!("-p {port}"), "-w", "-t", "60", "start"])
                .output()
                .unwrap();
            if !out.status.success() {
                let log = std::fs::read_to_string(pgdir.join("server.log")).unwrap_or_default();
                assert!(
                    log.contains("could not bind") || log.contains("Address already in use"),
                    "pg_ctl start: {}{}\n{log}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                continue;
            }
            let pg = Postgres {
                port,
                dir: pgdir,
                data,
                bin,
            };
            pg.psql(&format!(
                "CREATE ROLE lockwatch LOGIN PASSWORD '{}'; GRANT pg_read_all_settings TO lockwatch; \
                 GRANT SELECT ON pg_hba_file_rules TO lockwatch; GRANT EXECUTE ON FUNCTION pg_hba_file_rules() TO lockwatch;",
                o.monitor_password
            ));
            if o.grant_stat_file {
                pg.psql("GRANT EXECUTE ON FUNCTION pg_stat_file(text) TO lockwatch;");
            }
            return pg;
        }
        panic!("no free port for PostgreSQL after 10 tries");
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

    /// Write pg_hba.conf and reload: the new rules are live. The file keeps its real time
    /// (a second-truncated time that is never after the reload), so it never looks edited
    /// after the load; `write_hba`'s time shift is only for edits that are not reloaded.
    pub fn set_hba(&self, text: &str) {
        std::fs::write(self.data.join("pg_hba.conf"), text).unwrap();
        self.reload();
    }

    /// Write pg_hba.conf without reloading: the server keeps the rules it loaded. The file's
    /// time is moved a second past the last load, as an edit a moment later would be.
    pub fn write_hba(&self, text: &str) {
        let path = self.data.join("pg_hba.conf");
        std::fs::write(&path, text).unwrap();
        let loaded = self.psql("SELECT extract(epoch FROM pg_conf_load_time())::bigint");
        let loaded: i64 = loaded.trim().parse().unwrap();
        let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs((loaded + 1).max(0) as u64);
        let f = std::fs::File::options().write(true).open(&path).unwrap();
        f.set_modified(when.max(std::time::SystemTime::now())).unwrap();
    }

    pub fn reload(&self) {
        let before = self.psql("SELECT pg_conf_load_time()");
        self.psql("SELECT pg_reload_conf()");
        // The server reloads asynchronously: wait until it has.
        wait_for(
            "the server to reload its configuration",
            std::time::Duration::from_secs(20),
            || (self.psql("SELECT pg_conf_load_time()") != before).then_some(()),
        );
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
