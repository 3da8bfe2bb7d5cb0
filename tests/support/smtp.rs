//! A real SMTP server (aiosmtpd, tests/support/smtp_sink.py) that stores each mail as JSON, and
//! helpers to read what it received.
#![allow(dead_code)]

use super::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

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
