//! Stage 1, collect: ask every source what it sees, concurrently, each bounded by its own
//! timeout. The only stage that talks to the watched systems. A failure stays with its source.

use crate::config::SourceEntry;
use crate::sources::Collection;
use std::time::{Duration, Instant};

/// What one source returned this cycle.
pub struct Collected {
    pub source: String,
    pub elapsed: Duration,
    /// Errors are redacted text: no credential a connection string can carry.
    pub result: Result<Collection, String>,
}

impl Collected {
    /// Why the source (or a part of it) could not be read this cycle, if it could not.
    pub fn failure(&self) -> Option<String> {
        match &self.result {
            Err(e) => Some(e.clone()),
            Ok(c) if !c.failed.is_empty() => Some(
                c.failed
                    .iter()
                    .map(|f| f.message.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            Ok(_) => None,
        }
    }
}

pub async fn collect_all(sources: &[SourceEntry]) -> Vec<Collected> {
    futures::future::join_all(sources.iter().map(|s| async move {
        let t0 = Instant::now();
        let result = match tokio::time::timeout(s.timeout, s.source.collect()).await {
            Ok(Ok(mut collection)) => {
                for f in &mut collection.failed {
                    f.message = crate::secret::redact_dsn(&f.message);
                }
                Ok(collection)
            }
            Ok(Err(e)) => Err(crate::secret::redact_dsn(&format!("{e:#}"))),
            Err(_) => Err(format!(
                "no answer from {} within {}s (timeout)",
                s.source.target(),
                s.timeout.as_secs_f64()
            )),
        };
        Collected {
            source: s.name.clone(),
            elapsed: t0.elapsed(),
            result,
        }
    }))
    .await
}

/// Log what failed (the daemon; `scan` prints it instead): when a failure starts, when its
/// message changes, and when the source (or part) recovers; not every cycle.
pub fn log_failures(collected: &[Collected]) {
    for c in collected {
        let now: Vec<(String, String)> = match &c.result {
            Err(e) => vec![(
                "whole source".to_string(),
                format!("source failed; its resources keep their last known state: {e}"),
            )],
            Ok(coll) => coll
                .failed
                .iter()
                .map(|f| {
                    (
                        f.scope.clone(),
                        format!(
                            "part of the source failed; its resources keep their last known state: {}",
                            f.message
                        ),
                    )
                })
                .collect(),
        };
        crate::repeated::report(&format!("source {}", c.source), &now, "recovered: read in full again");
    }
}
