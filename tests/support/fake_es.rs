//! tests/support/fake_es.py: an Elasticsearch/OpenSearch stand-in driven by a JSON state file.
#![allow(dead_code)]

use super::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

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
        Self::start_inner(dir, state, None)
    }

    /// Serving HTTPS with this certificate and key.
    pub fn start_tls(dir: &Path, state: serde_json::Value, cert: &Path, key: &Path) -> FakeEs {
        let mut es = Self::start_inner(dir, state, Some((cert, key)));
        es.url = format!("https://127.0.0.1:{}", es.port);
        es
    }

    fn start_inner(dir: &Path, state: serde_json::Value, tls: Option<(&Path, &Path)>) -> FakeEs {
        let state_path = dir.join(unique("fake-es-state", "json"));
        std::fs::write(&state_path, state.to_string()).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/fake_es.py");
        let mut cmd = Command::new(python());
        cmd.arg(script).arg("0").arg(&state_path);
        if let Some((cert, key)) = tls {
            cmd.arg("--tls-cert").arg(cert).arg("--tls-key").arg(key);
        }
        let mut proc = Proc::spawn("fake elasticsearch", &mut cmd, dir.join(unique("fake-es", "log")));
        let port = wait_for("the fake cluster", Duration::from_secs(20), || {
            if !proc.is_running() {
                panic!("fake_es exited: {}", proc.log_text());
            }
            ready_port(&proc.log_text())
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
        patch_json_file(&self.state, patch);
    }
}
