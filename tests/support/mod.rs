//! Test harness: real peers on loopback, each with its own port and data directory, stopped when
//! the guard drops. Nothing here touches the machine's shared services.
#![allow(dead_code, unused_imports)]

mod smtp;
pub use smtp::*;
mod moto;
pub use moto::*;
mod fake_es;
pub use fake_es::*;
mod mariadb;
pub use mariadb::*;
mod mongo;
pub use mongo::*;
mod tls;
pub use tls::*;
mod alertmanager;
pub use alertmanager::*;
mod redis;
pub use redis::*;
mod postgres;
pub use postgres::*;
mod lockwatch;
pub use lockwatch::*;

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

/// A free port for servers that cannot bind port 0 themselves (they retry if it is taken).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A port that stays ours and never answers: connections are accepted by the kernel and then
/// left waiting. Nobody else can take it while this lives.
pub struct Silent(pub TcpListener);

impl Silent {
    pub fn new() -> Silent {
        Silent(TcpListener::bind("127.0.0.1:0").unwrap())
    }
    pub fn port(&self) -> u16 {
        self.0.local_addr().unwrap().port()
    }
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

/// Replace some top-level keys of a stand-in's JSON state file, atomically (temp file +
/// rename): the stand-ins re-read it on every request.
pub fn patch_json_file(path: &std::path::Path, patch: serde_json::Value) {
    let mut s: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for (k, v) in patch.as_object().unwrap() {
        s[k] = v.clone();
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, s.to_string()).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Write a file in `dir`; its path.
pub fn write(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}
