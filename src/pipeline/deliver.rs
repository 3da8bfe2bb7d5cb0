//! Stage 6, deliver: the outbox worker. It sends what a committed cycle queued, in order per
//! resource, through the sink, retrying with backoff; it runs beside the cycles and survives
//! restarts (the outbox is in the state file).

use crate::metrics::Metrics;
use crate::sinks::Sink;
use crate::store::Store;
use chrono::Utc;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// Retry delay after `attempts` failures: 5 s doubling to at most 60 s, with ±20 % jitter.
pub fn backoff_secs(attempts: i64) -> i64 {
    let base = (5i64 << attempts.clamp(0, 4)).min(60);
    let jitter = (base as f64 * 0.2 * (rand::random::<f64>() * 2.0 - 1.0)) as i64;
    (base + jitter).max(1)
}

/// Where a message stands after one attempt. Pure.
#[derive(Debug, PartialEq)]
pub struct Step {
    /// Recipients that accepted or refused it, so far.
    pub done: Vec<String>,
    pub refused: Vec<(String, String)>,
    /// Why recipients still wait for it ("addr: error").
    pub waiting: Vec<String>,
    /// Some recipient has it.
    pub delivered_to_anyone: bool,
}

pub fn delivery_step(row: &crate::store::OutboxRow, d: &crate::sinks::Delivery) -> Step {
    let mut done = row.recipients_done.clone();
    done.extend(d.accepted.iter().cloned());
    done.extend(d.refused.iter().map(|(a, _)| a.clone()));
    let mut refused = row.refused.clone();
    refused.extend(d.refused.iter().cloned());
    let delivered_to_anyone = done.iter().any(|a| !refused.iter().any(|(r, _)| r == a));
    Step {
        done,
        refused,
        waiting: d.deferred.iter().map(|(a, w)| format!("{a}: {w}")).collect(),
        delivered_to_anyone,
    }
}

/// A store error on the delivery path is logged, never dropped: the row stays as it was, and
/// the worst case is one more attempt.
fn logged(what: &str, id: i64, r: anyhow::Result<()>) {
    if let Err(e) = r {
        tracing::error!(error = %format!("{e:#}"), id, "{what}; the outbox row keeps its previous state");
    }
}

pub async fn outbox_worker(
    store: Store,
    sink: watch::Receiver<Arc<dyn Sink>>,
    metrics: Arc<Metrics>,
    wake: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    // A fresh start is a good moment to retry: whatever was waiting on a backoff goes now.
    if let Err(e) = store.reset_backoff(Utc::now().timestamp()) {
        tracing::error!(error = %format!("{e:#}"), "cannot read the outbox");
    }
    loop {
        let now = Utc::now().timestamp();
        match store.due_mail(now, 50) {
            Ok(rows) => {
                for row in rows {
                    if *stop.borrow() {
                        break;
                    }
                    // "sending" and "delivered" bracket the only window in which a crash can
                    // cause a duplicate (the server accepted, the state file does not know yet);
                    // a duplicate carries the same Message-ID, so mail clients fold it.
                    tracing::info!(id = row.id, resource = %row.resource_id, "sending alert");
                    // The sink of the running config (a reload may replace it).
                    let sink = sink.borrow().clone();
                    match sink.send(&row.message(), &row.recipients_done).await {
                        Ok(d) => {
                            let step = delivery_step(&row, &d);
                            for (addr, why) in &d.refused {
                                metrics.alert_recipients_refused.inc();
                                tracing::error!(resource = %row.resource_id, recipient = %addr, error = %why, "a recipient refused the alert permanently; the others get it (see `lockwatch outbox --all`)");
                            }
                            if !step.waiting.is_empty() {
                                metrics.alert_send_failures.inc();
                                let delay = backoff_secs(row.attempts);
                                let why = step.waiting.join("; ");
                                tracing::warn!(resource = %row.resource_id, error = %why, retry_in_secs = delay, "alert not delivered to every recipient yet; will retry those");
                                logged(
                                    "cannot record the delivery",
                                    row.id,
                                    store.mark_recipients(
                                        row.id,
                                        &step.done,
                                        &step.refused,
                                        Some((Utc::now().timestamp() + delay, &why)),
                                        Utc::now().timestamp(),
                                    ),
                                );
                                continue;
                            }
                            if !step.delivered_to_anyone {
                                metrics.alert_send_failures.inc();
                                let why = step
                                    .refused
                                    .iter()
                                    .map(|(a, w)| format!("{a}: {w}"))
                                    .collect::<Vec<_>>()
                                    .join("; ");
                                tracing::error!(resource = %row.resource_id, error = %why, "mail server refused the alert permanently; kept in the outbox (see `lockwatch outbox`)");
                                logged(
                                    "cannot record the permanent failure",
                                    row.id,
                                    store.mark_failed(row.id, &why),
                                );
                                continue;
                            }
                            metrics.alerts_sent.inc();
                            match store.mark_recipients(row.id, &step.done, &step.refused, None, Utc::now().timestamp())
                            {
                                Ok(()) => {
                                    tracing::info!(id = row.id, resource = %row.resource_id, subject = %row.subject, "alert delivered");
                                    // The server takes mail again: whatever waits on a backoff goes now.
                                    if row.attempts > 0 || store.queue_depth().is_ok_and(|(d, _)| d > 0) {
                                        logged(
                                            "cannot reset the outbox backoff",
                                            row.id,
                                            store.reset_backoff(Utc::now().timestamp()),
                                        );
                                    }
                                }
                                Err(e) => {
                                    tracing::error!(error = %format!("{e:#}"), id = row.id, "delivered but could not record it; it may be sent again")
                                }
                            }
                        }
                        Err(e) if e.permanent => {
                            metrics.alert_send_failures.inc();
                            tracing::error!(resource = %row.resource_id, error = %e.message, "mail server refused the alert permanently; kept in the outbox (see `lockwatch outbox`)");
                            logged(
                                "cannot record the permanent failure",
                                row.id,
                                store.mark_failed(row.id, &e.message),
                            );
                        }
                        Err(e) => {
                            metrics.alert_send_failures.inc();
                            let delay = backoff_secs(row.attempts);
                            tracing::warn!(resource = %row.resource_id, error = %e.message, retry_in_secs = delay, "alert not delivered yet; will retry");
                            logged(
                                "cannot schedule the retry",
                                row.id,
                                store.mark_retry(row.id, Utc::now().timestamp() + delay, &e.message),
                            );
                        }
                    }
                }
            }
            Err(e) => tracing::error!(error = %format!("{e:#}"), "cannot read the outbox"),
        }
        let now = Utc::now().timestamp();
        if let Ok((depth, oldest)) = store.queue_depth() {
            metrics.alert_queue_depth.set(depth);
            metrics
                .alert_oldest_pending_age
                .set(oldest.map(|o| (now - o).max(0)).unwrap_or(0));
        }
        if *stop.borrow() {
            return;
        }
        let wait = match store.next_due_at() {
            Ok(Some(at)) => (at - now).clamp(0, 5),
            _ => 5,
        };
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(wait as u64).max(Duration::from_millis(200))) => {}
            _ = wake.notified() => {}
            _ = stop.changed() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        for _ in 0..100 {
            assert!((4..=6).contains(&backoff_secs(0)));
            assert!((8..=12).contains(&backoff_secs(1)));
            assert!((48..=72).contains(&backoff_secs(10)));
        }
    }
}
