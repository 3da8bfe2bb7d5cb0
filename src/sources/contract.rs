//! The contract every kind meets, checked over [`KINDS`]: a kind added without samples or
//! secret canaries fails here, and so does one whose samples do not mean what they say or
//! whose errors repeat a password.

use super::*;
use crate::model::Severity;
use crate::pipeline::evaluate::evaluate;

#[test]
fn registry_names_are_unique() {
    let unique = |mut names: Vec<&str>| {
        let n = names.len();
        names.sort();
        names.dedup();
        n == names.len()
    };
    assert!(unique(KINDS.iter().map(|k| k.name).collect()), "duplicate source kind");
    assert!(
        unique(
            KINDS
                .iter()
                .flat_map(|k| k.resource_kinds.iter().map(|r| r.name))
                .collect()
        ),
        "duplicate resource kind"
    );
}

#[test]
fn every_resource_kind_has_samples_that_mean_what_they_say() {
    for rk in KINDS.iter().flat_map(|k| k.resource_kinds.iter()) {
        let s = (rk.samples)();
        let safe =
            (rk.assess)(&s.safe).unwrap_or_else(|e| panic!("{}: the safe sample is not a posture: {e}", rk.name));
        let bad =
            (rk.assess)(&s.exposed).unwrap_or_else(|e| panic!("{}: the exposed sample is not a posture: {e}", rk.name));
        assert!(
            safe.findings.iter().all(|f| !f.exposed && f.severity < Severity::High),
            "{}: the safe sample has findings: {:?}",
            rk.name,
            safe.findings
        );
        assert!(
            bad.findings.iter().any(|f| f.severity >= Severity::High),
            "{}: the exposed sample has no high finding: {:?}",
            rk.name,
            bad.findings
        );
        let weakened = evaluate(rk.name, &s.safe, &s.exposed);
        assert!(
            weakened.drift.is_some_and(|d| d >= Severity::High),
            "{}: safe → exposed must be a serious weakening: {weakened:#?}",
            rk.name
        );
        let restored = evaluate(rk.name, &s.exposed, &s.safe);
        assert_eq!(restored.drift, None, "{}: exposed → safe is no weakening", rk.name);
        assert!(evaluate(rk.name, &s.safe, &s.safe).changes.is_empty());
    }
}

/// Each kind's canary configs hold a secret; build them, point them at a port where nothing
/// answers, collect, and look for the secret in everything lockwatch could print.
#[test]
fn every_source_kind_keeps_its_canary_secret() {
    const SECRET: &str = "CANARY-7f3e-s3cret";
    let dir = tempfile::tempdir().unwrap();
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = dead.local_addr().unwrap().to_string();
    drop(dead);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for kind in KINDS {
        let canaries = (kind.canaries)(SECRET, &addr, dir.path());
        assert!(!canaries.is_empty(), "{}: no canary configs", kind.name);
        for body in canaries {
            let text = format!(
                "[[sources]]\nkind = \"{}\"\nname = \"canary\"\ntimeout = \"3s\"\n{body}\n",
                kind.name
            );
            let shown = |what: &str, s: &str| {
                assert!(
                    !s.contains(SECRET),
                    "{} ({body}): {what} shows the secret: {s}",
                    kind.name
                )
            };
            let config = match crate::config::Config::parse(std::path::Path::new("canary.toml"), &text) {
                Ok(c) => c,
                Err(e) => {
                    shown("the config error", &e.to_string());
                    continue;
                }
            };
            let runtime = match config.build() {
                Ok(r) => r,
                Err(e) => {
                    shown("the build error", &e.to_string());
                    continue;
                }
            };
            let source = &runtime.sources[0];
            shown("target()", &source.source.target());
            let collected = rt.block_on(crate::pipeline::collect::collect_all(&runtime.sources));
            match &collected[0].result {
                Ok(c) => {
                    for f in &c.failed {
                        shown("a failed part", &f.message);
                    }
                }
                Err(e) => shown("the collection error", e),
            }
        }
    }
}
