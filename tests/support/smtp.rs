//! A real SMTP server (aiosmtpd, tests/support/smtp_sink.py) that stores each mail as JSON, and
//! the helpers tests use to say exactly which mails an action caused.
//!
//! Every assertion about mail is relative to a mark taken before the action (`smtp.mark()`): a
//! mail sent earlier — a RESOLVED while a server was restarting, say — can never satisfy a
//! later wait. `expect` compares the whole list since the mark with what the test expects, and
//! fails at once on anything else (a RESOLVED that should not have come, a wrong severity).
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

/// One mail as the sink stored it, with what lockwatch says it is about (X-Lockwatch-* headers).
#[derive(Debug, Clone)]
pub struct Mail {
    pub subject: String,
    /// alert, reminder, resolved, partly-resolved, notice, test
    pub kind: String,
    pub severity: Option<String>,
    pub rules: Vec<String>,
    pub resource: String,
    pub text: String,
    pub record: serde_json::Value,
}

impl Mail {
    fn from(v: serde_json::Value) -> Mail {
        let lw = &v["lockwatch"];
        Mail {
            subject: v["subject"].as_str().unwrap_or_default().to_string(),
            kind: lw["kind"].as_str().unwrap_or_default().to_string(),
            severity: lw["severity"].as_str().map(str::to_string),
            rules: lw["rules"]
                .as_array()
                .map(|a| a.iter().filter_map(|r| r.as_str().map(str::to_string)).collect())
                .unwrap_or_default(),
            resource: lw["resource"].as_str().unwrap_or_default().to_string(),
            text: v["text"].as_str().unwrap_or_default().to_string(),
            record: v,
        }
    }

    /// (kind, severity, rules): what an exact assertion compares.
    pub fn summary(&self) -> (String, Option<String>, Vec<String>) {
        (self.kind.clone(), self.severity.clone(), self.rules.clone())
    }
}

/// An expected mail: (kind, severity, rules).
pub type Expected<'a> = (&'a str, Option<&'a str>, &'a [&'a str]);

fn owned(e: &[Expected<'_>]) -> Vec<(String, Option<String>, Vec<String>)> {
    e.iter()
        .map(|(k, s, r)| {
            (
                k.to_string(),
                s.map(str::to_string),
                r.iter().map(|x| x.to_string()).collect(),
            )
        })
        .collect()
}

impl Smtp {
    /// A sink on a loopback port it picks itself.
    pub fn start(dir: &Path) -> Smtp {
        Self::start_with(dir, &[])
    }

    pub fn start_with(dir: &Path, extra: &[&str]) -> Smtp {
        Self::start_on(0, dir, extra)
    }

    /// On a given port: only to bring a sink back where one ran before (a mail server that
    /// comes back after an outage).
    pub fn start_on(port: u16, dir: &Path, extra: &[&str]) -> Smtp {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_sink.py");
        let mails = dir.join("mail");
        std::fs::create_dir_all(&mails).unwrap();
        let log = dir.join(unique("smtp", "log"));
        let mut proc = Proc::spawn(
            "smtp sink",
            Command::new(python())
                .arg(&script)
                .arg(port.to_string())
                .arg(&mails)
                .args(extra),
            log,
        );
        let port = wait_for("the SMTP sink to be ready", Duration::from_secs(20), || {
            if !proc.is_running() {
                panic!("smtp sink exited: {}", proc.log_text());
            }
            ready_port(&proc.log_text())
        });
        Smtp { port, dir: mails, proc }
    }

    /// Every mail received, as stored.
    pub fn mails(&self) -> Vec<serde_json::Value> {
        read_mails(&self.dir)
    }

    pub fn received(&self) -> Vec<Mail> {
        self.mails().into_iter().map(Mail::from).collect()
    }

    /// How many mails have arrived: later assertions look only at newer ones.
    pub fn mark(&self) -> usize {
        self.mails().len()
    }

    /// The mails since `mark` about `resource`.
    pub fn since(&self, mark: usize, resource: &str) -> Vec<Mail> {
        self.received()
            .into_iter()
            .skip(mark)
            .filter(|m| m.resource == resource)
            .collect()
    }

    /// Wait until exactly `expected` mails about `resource` arrived since `mark`, in that order,
    /// and return them. Fails as soon as one arrives that is not the expected one at its place.
    pub fn expect(&self, mark: usize, resource: &str, expected: &[Expected<'_>], timeout: Duration) -> Vec<Mail> {
        let want = owned(expected);
        wait_for(&format!("the mails {want:?} about {resource}"), timeout, || {
            let got = self.since(mark, resource);
            let summary: Vec<_> = got.iter().map(Mail::summary).collect();
            for (i, s) in summary.iter().enumerate() {
                assert!(
                    want.get(i) == Some(s),
                    "mail {} about {resource} since the mark is {s:?}, expected {:?}; all since the mark: {summary:#?}\n{}",
                    i + 1,
                    want.get(i),
                    got.iter()
                        .map(|m| format!("--- {}\n{}", m.subject, m.text))
                        .collect::<String>()
                );
            }
            (summary.len() == want.len()).then_some(got)
        })
    }
}

impl Smtp {
    /// A change that lands between two reads of one cycle is legitimately told in two alerts
    /// (what the first read saw, then the rest, "further weakened"). Wait until the alerts about
    /// `resource` since `mark` end with one whose rules are exactly `rules`, at `severity`;
    /// fail at once on anything but an alert at that severity, or on more than two.
    pub fn expect_alert_in_one_or_two_steps(
        &self,
        mark: usize,
        resource: &str,
        severity: &str,
        rules: &[&str],
        timeout: Duration,
    ) -> Vec<Mail> {
        let want: Vec<String> = rules.iter().map(|r| r.to_string()).collect();
        wait_for(
            &format!("an alert about {resource} with rules {want:?}"),
            timeout,
            || {
                let got = self.since(mark, resource);
                for m in &got {
                    assert!(
                        m.kind == "alert" && m.severity.as_deref() == Some(severity),
                        "expected only {severity} alerts about {resource}, got {:?}: {}\n{}",
                        m.summary(),
                        m.subject,
                        m.text
                    );
                }
                assert!(
                    got.len() <= 2,
                    "more than two alerts for one change: {:#?}",
                    got.iter().map(Mail::summary).collect::<Vec<_>>()
                );
                got.last().filter(|m| m.rules == want).map(|_| got.clone())
            },
        )
    }
}

/// The port a stand-in reported in its `ready port=N` line.
pub fn ready_port(log: &str) -> Option<u16> {
    log.lines()
        .find_map(|l| l.trim().strip_prefix("ready port="))
        .and_then(|p| p.trim().parse().ok())
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
