//! `lockwatch run`: the scheduler loop that runs the pipeline, the outbox worker, the metrics
//! endpoint, systemd notification and graceful shutdown.

use crate::config::{Config, Runtime};
use crate::mail::MailSettings;
use crate::metrics::{self, Metrics};
use crate::pipeline::{Pipeline, deliver};
use crate::store::Store;
use anyhow::{Context, bail};
use chrono::Utc;
use sd_notify::NotifyState;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// Holds an exclusive lock on `state_dir/lockwatch.lock` while the daemon runs.
pub struct StateLock(#[allow(dead_code)] std::fs::File);

pub fn lock_state_dir(state_dir: &std::path::Path) -> anyhow::Result<StateLock> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = state_dir.join("lockwatch.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    // SAFETY: flock on a file descriptor we own; no memory is shared.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        bail!(
            "another lockwatch daemon is already running on state_dir {} (it holds {}); stop it first, or give this one its own state_dir",
            state_dir.display(),
            path.display()
        );
    }
    Ok(StateLock(file))
}

fn notify(states: &[NotifyState]) {
    // Outside systemd NOTIFY_SOCKET is unset and this is a no-op.
    if let Err(e) = sd_notify::notify(states) {
        tracing::debug!(error = %e, "sd_notify failed");
    }
}

pub async fn run(runtime: Runtime, config: &Config) -> anyhow::Result<()> {
    let _lock = {
        if !config.state_dir.exists() {
            Store::open(&config.state_dir)?;
        }
        lock_state_dir(&config.state_dir)?
    };
    let store = Store::open(&config.state_dir)?;
    let metrics = Metrics::new();
    let listener = tokio::net::TcpListener::bind(config.metrics_listen)
        .await
        .with_context(|| {
            format!(
                "metrics_listen {}: cannot listen (port taken by another process? choose another in [daemon])",
                config.metrics_listen
            )
        })?;
    tracing::info!(address = %listener.local_addr()?, "metrics on /metrics, health on /healthz");
    tokio::spawn(metrics::serve(listener, metrics.clone()));

    let now = Utc::now().timestamp();
    for s in &runtime.sources {
        metrics.last_success.with_label_values(&[&s.name]).set(now as f64);
        metrics.scan_errors.with_label_values(&[&s.name]).inc_by(0);
        metrics.source_blind.with_label_values(&[&s.name]).set(0);
        metrics.source_failures.with_label_values(&[&s.name]).set(0);
    }
    let period = config
        .schedule
        .upcoming(Utc)
        .take(2)
        .collect::<Vec<_>>()
        .windows(2)
        .map(|w| (w[1] - w[0]).num_seconds().max(1))
        .next()
        .unwrap_or(60);
    let slowest = runtime
        .sources
        .iter()
        .map(|s| s.timeout.as_secs() as i64)
        .max()
        .unwrap_or(0);
    metrics
        .healthy_within_secs
        .store(period + slowest + 60, std::sync::atomic::Ordering::Relaxed);

    let wake = Arc::new(Notify::new());
    let mail = MailSettings {
        config_path: std::path::absolute(&config.path).unwrap_or(config.path.clone()),
        message_domain: runtime
            .email
            .as_ref()
            .map(|e| e.from.email.domain().to_string())
            .unwrap_or_else(|| MailSettings::default().message_domain),
    };
    let mut pipeline = Pipeline::new(
        store,
        config.settings.clone(),
        mail,
        runtime.sources.iter().map(|s| s.name.clone()).collect(),
    )?
    .with_metrics(metrics.clone())
    .with_delivery(wake.clone());

    let (stop_tx, stop_rx) = watch::channel(false);
    let worker = {
        let store = Store::open(&config.state_dir)?;
        let sink = crate::sinks::from_config(runtime.email.as_ref())?;
        tokio::spawn(deliver::outbox_worker(
            store,
            sink,
            metrics.clone(),
            wake.clone(),
            stop_rx.clone(),
        ))
    };
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("stop requested; finishing the current cycle");
        let _ = stop_tx.send(true);
    });

    let watchdog = sd_notify::watchdog_enabled();
    let tick = watchdog
        .map(|w| w / 2)
        .unwrap_or(Duration::from_secs(1))
        .min(Duration::from_secs(1));
    tracing::info!(schedule = %config.schedule_text, sources = runtime.sources.len(), "lockwatch started");

    let mut first = true;
    let mut stop = stop_rx.clone();
    loop {
        run_cycle(&runtime, &mut pipeline).await;
        metrics.beat();
        if first {
            notify(&[NotifyState::Ready, NotifyState::Status("watching")]);
            first = false;
        }
        // Sleep until the next fire time in short steps, so the watchdog is fed and a clock that
        // jumps backwards does not stall us: the target is recomputed when it moves away.
        let mut next = config
            .schedule
            .upcoming(Utc)
            .next()
            .context("schedule has no future fire time")?;
        loop {
            if *stop.borrow() {
                break;
            }
            let now = Utc::now();
            if now >= next {
                break;
            }
            next = replan(&config.schedule, next, now, period).context("schedule has no future fire time")?;
            let remaining = (next - now).to_std().unwrap_or_default();
            if watchdog.is_some() {
                notify(&[NotifyState::Watchdog]);
            }
            metrics.beat();
            tokio::select! {
                _ = tokio::time::sleep(remaining.min(tick)) => {}
                _ = stop.changed() => {}
            }
        }
        if *stop.borrow() {
            break;
        }
    }
    notify(&[NotifyState::Stopping]);
    match tokio::time::timeout(Duration::from_secs(20), worker).await {
        Ok(_) => tracing::info!("stopped cleanly"),
        Err(_) => tracing::warn!("outbox worker still sending after 20s; unsent mail stays queued for the next start"),
    }
    Ok(())
}

async fn run_cycle(runtime: &Runtime, pipeline: &mut Pipeline) {
    match pipeline.run_cycle(&runtime.sources, || Utc::now().timestamp()).await {
        Ok(s) => tracing::info!(
            changed = s.changed,
            emails = s.mails,
            failed_sources = s.failed_sources,
            "cycle done"
        ),
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "cycle not recorded; it will be retried next cycle")
        }
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        tracing::error!("cannot install signal handlers");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// The next fire time, given the planned one and the wall clock. If the clock jumped backwards
/// the plan lies more than a period (plus slack) ahead: plan again from now, rather than sleep
/// through the gap. A forward jump needs nothing: the plan is simply due.
pub fn replan(
    schedule: &cron::Schedule,
    planned: chrono::DateTime<Utc>,
    now: chrono::DateTime<Utc>,
    period_secs: i64,
) -> Option<chrono::DateTime<Utc>> {
    if (planned - now).num_seconds() > period_secs + 2 {
        schedule.after(&now).next()
    } else {
        Some(planned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_jumps_are_replanned() {
        use std::str::FromStr;
        let every_30s = cron::Schedule::from_str("*/30 * * * * *").unwrap();
        let t = |s: i64| chrono::DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap();
        let cases = [
            ("on time", t(30), t(10), t(30)),
            ("clock jumped back an hour: plan from now", t(3600 + 30), t(10), t(30)),
            ("clock jumped forward: due at once", t(30), t(7200), t(30)),
        ];
        for (name, planned, now, want) in cases {
            assert_eq!(replan(&every_30s, planned, now, 30), Some(want), "{name}");
        }
    }

    #[test]
    fn second_lock_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _a = lock_state_dir(dir.path()).unwrap();
        let err = lock_state_dir(dir.path()).err().unwrap().to_string();
        assert!(err.contains("already running"), "{err}");
    }
}
