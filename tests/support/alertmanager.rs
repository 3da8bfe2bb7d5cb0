//! Debian's prometheus-alertmanager: a cluster of members gossiping on loopback, mailing
//! through the test SMTP sink.
#![allow(dead_code)]

use super::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";

pub struct AmMember {
    pub port: u16,
    pub cluster_port: u16,
    pub proc: Proc,
}

impl AmMember {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// Members that group by resource (one notification per resource and change), wait
/// `group_wait` before a first notification and `group_interval` before telling a changed group,
/// and mail every notification to the sink on `smtp_port`.
pub fn am_config(dir: &Path, smtp_port: u16) -> PathBuf {
    let path = dir.join("alertmanager.yml");
    std::fs::write(
        &path,
        format!(
            "global:\n  smtp_smarthost: '127.0.0.1:{smtp_port}'\n  smtp_from: 'alertmanager@example.com'\n  smtp_require_tls: false\n\
             route:\n  receiver: oncall\n  group_by: ['resource']\n  group_wait: 4s\n  group_interval: 5s\n  repeat_interval: 4h\n\
             receivers:\n  - name: oncall\n    email_configs:\n      - to: 'oncall@example.com'\n        send_resolved: false\n"
        ),
    )
    .unwrap();
    path
}

/// A cluster of `n` members; each waits until the API answers and every peer is seen.
pub fn am_cluster(dir: &Path, config: &Path, n: usize) -> Vec<AmMember> {
    need("prometheus-alertmanager", Path::new(ALERTMANAGER));
    // Alertmanager cannot report a port it picked: free ports (a member that cannot bind exits,
    // and the whole cluster is tried again on new ones).
    for _ in 0..5 {
        let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
        let mut members = Vec::new();
        let mut failed = false;
        for (i, (port, cport)) in ports.iter().enumerate() {
            let data = dir.join(unique("am-data", "d"));
            std::fs::create_dir_all(&data).unwrap();
            let mut cmd = Command::new(ALERTMANAGER);
            cmd.arg(format!("--config.file={}", config.display()))
                .arg(format!("--storage.path={}", data.display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg(format!("--cluster.listen-address=127.0.0.1:{cport}"))
                .arg(format!("--cluster.advertise-address=127.0.0.1:{cport}"))
                // Each member waits its position × peer-timeout before notifying, and checks
                // the gossiped notification log first: shorter than group_interval.
                .arg("--cluster.peer-timeout=1s")
                .arg("--cluster.gossip-interval=100ms")
                .arg("--cluster.pushpull-interval=2s")
                .arg("--cluster.settle-timeout=2s");
            for (j, (_, other)) in ports.iter().enumerate() {
                if j != i {
                    cmd.arg(format!("--cluster.peer=127.0.0.1:{other}"));
                }
            }
            let proc = Proc::spawn("alertmanager", &mut cmd, dir.join(unique("alertmanager", "log")));
            members.push(AmMember {
                port: *port,
                cluster_port: *cport,
                proc,
            });
        }
        for m in members.iter_mut() {
            let ok = wait_for("alertmanager to answer", Duration::from_secs(30), || {
                if !m.proc.is_running() {
                    return Some(false);
                }
                http_get(m.port, "/api/v2/status")
                    .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
                    .filter(|s| {
                        s["cluster"]["status"] == "ready" && s["cluster"]["peers"].as_array().map(Vec::len) == Some(n)
                    })
                    .map(|_| true)
            });
            if !ok {
                let log = m.proc.log_text();
                assert!(log.contains("address already in use"), "alertmanager exited: {log}");
                failed = true;
                break;
            }
        }
        if !failed {
            return members;
        }
    }
    panic!("no free ports for an Alertmanager cluster after 5 tries");
}

/// The alerts a member holds (GET /api/v2/alerts), as (alertname, resource, state).
pub fn am_alerts(m: &AmMember) -> Vec<(String, String, String)> {
    let body = http_get(m.port, "/api/v2/alerts").unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let mut out: Vec<(String, String, String)> = v
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            (
                a["labels"]["alertname"].as_str().unwrap_or_default().to_string(),
                a["labels"]["resource"].as_str().unwrap_or_default().to_string(),
                a["status"]["state"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}
