//! Test harness: real peers on loopback, each with its own port and data directory, stopped when
//! the guard drops. Nothing here touches the machine's shared services.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A file name unique within this test process.
pub fn unique(prefix: &str, ext: &str) -> String {
    format!(
        "{prefix}-{}.{ext}",
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Poll `f` until it returns Some, or panic after `timeout` with `what`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let t0 = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        if t0.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn need(tool: &str, path: &Path) {
    assert!(
        path.exists(),
        "{tool} not found at {}: run the README's test command (scripts/test.sh), which installs it",
        path.display()
    );
}

pub fn lockwatch_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_lockwatch"))
}

/// A child process killed (SIGKILL) when dropped.
pub struct Proc {
    pub child: Child,
    pub name: String,
    pub log: PathBuf,
}

impl Proc {
    pub fn spawn(name: &str, cmd: &mut Command, log: PathBuf) -> Proc {
        let out = std::fs::File::create(&log).unwrap();
        let child = cmd
            .stdout(Stdio::from(out.try_clone().unwrap()))
            .stderr(Stdio::from(out))
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Proc {
            child,
            name: name.into(),
            log,
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        unsafe { libc_kill(self.child.id() as i32, 15) };
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(20) {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

impl Drop for Proc {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.log_text();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("---- last lines of {} ({}) ----", self.name, self.log.display());
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
        self.kill9();
    }
}

// ---- SMTP -----------------------------------------------------------------------------------

pub fn python() -> PathBuf {
    let p = PathBuf::from(std::env::var("LOCKWATCH_TEST_PYTHON").unwrap_or_else(|_| {
        format!(
            "{}/.cache/lockwatch-venv/bin/python",
            std::env::var("HOME").unwrap_or_default()
        )
    }));
    need("the test venv's python (with aiosmtpd)", &p);
    p
}

pub struct Smtp {
    pub port: u16,
    pub dir: PathBuf,
    pub proc: Proc,
}

impl Smtp {
    pub fn start(port: u16, dir: &Path) -> Smtp {
        Self::start_with(port, dir, &[])
    }

    pub fn start_with(port: u16, dir: &Path, extra: &[&str]) -> Smtp {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_sink.py");
        let mails = dir.join("mail");
        std::fs::create_dir_all(&mails).unwrap();
        let log = dir.join(unique(&format!("smtp-{port}"), "log"));
        let mut proc = Proc::spawn(
            "smtp sink",
            Command::new(python())
                .arg(&script)
                .arg(port.to_string())
                .arg(&mails)
                .args(extra),
            log,
        );
        wait_for("the SMTP sink to be ready", Duration::from_secs(20), || {
            if !proc.is_running() {
                panic!("smtp sink exited: {}", proc.log_text());
            }
            proc.log_text().contains("ready").then_some(())
        });
        Smtp { port, dir: mails, proc }
    }

    pub fn mails(&self) -> Vec<serde_json::Value> {
        read_mails(&self.dir)
    }
}

pub fn read_mails(dir: &Path) -> Vec<serde_json::Value> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
        .iter()
        .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
        .collect()
}

/// Wait for a mail whose subject starts with `prefix`; returns it.
pub fn wait_mail(dir: &Path, prefix: &str, timeout: Duration) -> serde_json::Value {
    wait_for(&format!("an email with subject starting {prefix:?}"), timeout, || {
        read_mails(dir)
            .into_iter()
            .find(|m| m["subject"].as_str().unwrap_or("").starts_with(prefix))
    })
}

/// Wait until the alert mails about `resource` (every mail in its thread but RESOLVED ones),
/// taken together, name every string in `wanted`. A change that lands between two of a cycle's
/// reads is legitimately reported in two steps: first what one read saw, then the rest.
pub fn wait_alerts_naming(dir: &Path, resource: &str, wanted: &[&str], timeout: Duration) -> String {
    wait_for(&format!("alerts about {resource} naming {wanted:?}"), timeout, || {
        let text: String = read_mails(dir)
            .iter()
            .filter(|m| {
                let subject = m["subject"].as_str().unwrap_or("");
                subject.contains(resource) && !subject.contains("RESOLVED")
            })
            .map(|m| format!("{}\n", m["text"].as_str().unwrap_or("")))
            .collect();
        wanted.iter().all(|w| text.contains(w)).then_some(text)
    })
}

// ---- AWS (moto) ------------------------------------------------------------------------------

/// A moto server on its own loopback port: every AWS API lockwatch calls, with state in memory.
pub struct Moto {
    pub port: u16,
    pub endpoint: String,
    pub proc: Proc,
}

impl Moto {
    pub fn start(dir: &Path) -> Moto {
        let server = python().with_file_name("moto_server");
        need("moto_server (the test venv's moto[server])", &server);
        let port = free_port();
        let mut cmd = Command::new(server);
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        let mut proc = Proc::spawn("moto_server", &mut cmd, dir.join(unique("moto", "log")));
        wait_for("moto to answer", Duration::from_secs(60), || {
            if !proc.is_running() {
                panic!("moto_server exited: {}", proc.log_text());
            }
            http_get(port, "/moto-api/").map(|_| ())
        });
        Moto {
            port,
            endpoint: format!("http://127.0.0.1:{port}"),
            proc,
        }
    }

    /// Run one tests/support/aws_fixture.py action; its JSON output.
    pub fn call(&self, account: &str, region: &str, action: &str, args: &[&str]) -> serde_json::Value {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/aws_fixture.py");
        let out = Command::new(python())
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
        let port = free_port();
        let mut p = FaultProxy {
            port,
            endpoint: format!("http://127.0.0.1:{port}"),
            upstream: moto.port,
            control: dir.join(unique("fault-mode", "txt")),
            dir: dir.to_path_buf(),
            proc: None,
        };
        p.set("pass");
        p.up();
        p
    }

    /// pass | error500 | throttle | fail-region:R | fail-action:A
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
        wait_for("the fault proxy", Duration::from_secs(20), || {
            if !proc.is_running() {
                panic!("fault proxy exited: {}", proc.log_text());
            }
            proc.log_text().contains("ready").then_some(())
        });
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

// ---- Elasticsearch / OpenSearch (fake) ---------------------------------------------------

/// tests/support/fake_es.py: answers as Elasticsearch 7.17 / 8.11 or OpenSearch 2.11 do.
pub struct FakeEs {
    pub port: u16,
    pub url: String,
    state: PathBuf,
    pub proc: Proc,
}

impl FakeEs {
    /// `state` is the fake's JSON state (see fake_es.py), changed later with `set`.
    pub fn start(dir: &Path, state: serde_json::Value) -> FakeEs {
        let port = free_port();
        let state_path = dir.join(unique("fake-es-state", "json"));
        std::fs::write(&state_path, state.to_string()).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/fake_es.py");
        let mut cmd = Command::new(python());
        cmd.arg(script).arg(port.to_string()).arg(&state_path);
        let mut proc = Proc::spawn("fake elasticsearch", &mut cmd, dir.join(unique("fake-es", "log")));
        wait_for("the fake cluster", Duration::from_secs(20), || {
            if !proc.is_running() {
                panic!("fake_es exited: {}", proc.log_text());
            }
            proc.log_text().contains("ready").then_some(())
        });
        FakeEs {
            port,
            url: format!("http://127.0.0.1:{port}"),
            state: state_path,
            proc,
        }
    }

    /// Change some keys of the state, as an operator editing the cluster's settings would.
    pub fn set(&self, patch: serde_json::Value) {
        let mut s: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&self.state).unwrap()).unwrap();
        for (k, v) in patch.as_object().unwrap() {
            s[k] = v.clone();
        }
        // Atomically: the fake re-reads the file on every request.
        let tmp = self.state.with_extension("tmp");
        std::fs::write(&tmp, s.to_string()).unwrap();
        std::fs::rename(&tmp, &self.state).unwrap();
    }
}

// ---- MariaDB ------------------------------------------------------------------------------

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
        let port = free_port();
        let mdir = dir.join(format!("mariadb-{port}"));
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
            port,
            dir: mdir,
            proc: None,
        };
        m.run(&[]);
        m.sql(&format!(
            "CREATE USER lockwatch@'127.0.0.1' IDENTIFIED BY '{monitor_password}';              GRANT SELECT ON mysql.user TO lockwatch@'127.0.0.1'; GRANT SELECT ON mysql.global_priv TO lockwatch@'127.0.0.1';              CREATE USER app@'%' IDENTIFIED BY 'app-pw-1'; GRANT SELECT ON *.* TO app@'127.0.0.1' IDENTIFIED BY 'app-pw-2';"
        ));
        m
    }

    fn sock(&self) -> PathBuf {
        self.dir.join("mysqld.sock")
    }

    /// (Re)start mariadbd on the datadir with extra options, e.g. `--skip-grant-tables`.
    pub fn run(&mut self, extra: &[&str]) {
        self.stop();
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

// ---- Redis ----------------------------------------------------------------------------------

pub struct Redis {
    pub port: u16,
    pub password: String,
    pub proc: Proc,
}

impl Redis {
    pub fn start(dir: &Path, password: &str) -> Redis {
        need("redis-server", Path::new("/usr/bin/redis-server"));
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
        .args(["--requirepass", password]);
        let proc = Proc::spawn("redis-server", &mut cmd, dir.join(format!("redis-{port}.log")));
        let r = Redis {
            port,
            password: password.into(),
            proc,
        };
        wait_for("redis to accept connections", Duration::from_secs(20), || {
            r.cli(&["PING"]).contains("PONG").then_some(())
        });
        r
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

// ---- PostgreSQL -----------------------------------------------------------------------------

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

// ---- lockwatch ------------------------------------------------------------------------------

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
