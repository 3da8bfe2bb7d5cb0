//! tests/support/fake_mongo.py: a MongoDB 6.0/7.0 stand-in (OP_MSG, SCRAM) driven by a JSON
//! state file; `fake_mongo_check.py` proves it against pymongo (see FAKE_MONGO.md).
#![allow(dead_code)]

use super::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub struct FakeMongo {
    pub port: u16,
    state: PathBuf,
    pub proc: Proc,
}

impl FakeMongo {
    /// `state` is the server's JSON state (keys as in fake_mongo.py's DEFAULT_STATE), changed
    /// later with `set`. `tls` is a (cert, key) pair to serve TLS with.
    pub fn start(dir: &Path, state: serde_json::Value, tls: Option<(&Path, &Path)>) -> FakeMongo {
        let state_path = dir.join(unique("fake-mongo-state", "json"));
        std::fs::write(&state_path, state.to_string()).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/fake_mongo.py");
        let mut cmd = Command::new(python());
        cmd.arg(script).arg("0").arg(&state_path);
        if let Some((cert, key)) = tls {
            cmd.arg("--tls-cert").arg(cert).arg("--tls-key").arg(key);
        }
        let mut proc = Proc::spawn("fake mongod", &mut cmd, dir.join(unique("fake-mongo", "log")));
        let port = wait_for("the fake mongod", Duration::from_secs(20), || {
            if !proc.is_running() {
                panic!("fake_mongo exited: {}", proc.log_text());
            }
            ready_port(&proc.log_text())
        });
        FakeMongo {
            port,
            state: state_path,
            proc,
        }
    }

    /// Change some keys of the state, as an operator restarting mongod with other options (or
    /// running createUser) would. Written atomically: the server re-reads it for every command.
    pub fn set(&self, patch: serde_json::Value) {
        patch_json_file(&self.state, patch);
    }

    pub fn state(&self) -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(&self.state).unwrap()).unwrap()
    }
}
