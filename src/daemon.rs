//! `lockwatch run`: the scheduler loop that runs the pipeline, the outbox worker, the metrics
//! endpoint, systemd notification (READY, RELOADING, WATCHDOG, STOPPING), reload on SIGHUP and
//! a prompt stop on SIGTERM.

use crate::config::{Config, Runtime};
use crate::mail::MailSettings;
use crate::metrics::{self, Metrics};
use crate::pipeline::{Pipeline, deliver};
use crate::sinks::Sink;
use crate::store::Store;
use anyhow::{Context, bail};
use chrono::Utc;
use sd_notify::NotifyState;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
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

/// Seconds between two fire times of a schedule (its period, for the common regular ones).
fn period_secs(schedule: &cron::Schedule) -> i64 {
    schedule
        .upcoming(Utc)
        .take(2)
        .collect::<Vec<_>>()
        .windows(2)
        .map(|w| (w[1] - w[0]).num_seconds().max(1))
        .next()
        .unwrap_or(60)
}

/// The longest a healthy cycle can take: every source is bounded by its timeout (they run at
/// once), plus time for the commit.
fn cycle_bound_secs(runtime: &Runtime) -> i64 {
    runtime
        .sources
        .iter()
        .map(|s| s.timeout.as_secs() as i64)
        .max()
        .unwrap_or(0)
        + 60
}

/// Whether the scheduler is alive, for the systemd watchdog: between cycles it beats every
/// second; during a cycle it is alive for as long as a cycle may take. A cycle longer than the
/// watchdog interval is normal on a slow AWS account and must not get the daemon killed.
#[derive(Default)]
pub struct Liveness {
    /// Unix time the current cycle started; 0 between cycles.
    cycle_started: AtomicI64,
    /// Longest a cycle may take before it counts as stuck.
    cycle_bound: AtomicI64,
}

impl Liveness {
    fn enter(&self, now: i64) {
        self.cycle_started.store(now, Ordering::Relaxed);
    }
    fn leave(&self) {
        self.cycle_started.store(0, Ordering::Relaxed);
    }
}

/// Feed the watchdog now? Pure: `heartbeat` is the last beat of the loop between cycles.
pub fn should_feed(now: i64, heartbeat: i64, cycle_started: i64, cycle_bound: i64, watchdog_secs: i64) -> bool {
    if cycle_started > 0 {
        now - cycle_started <= cycle_bound
    } else {
        now - heartbeat <= watchdog_secs.max(2)
    }
}

/// What the signal handlers ask for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Request {
    Run,
    Reload,
    Stop,
}

/// The mail settings a runtime implies.
fn mail_settings(config: &Config, runtime: &Runtime) -> MailSettings {
    MailSettings {
        config_path: std::path::absolute(&config.path).unwrap_or(config.path.clone()),
        message_domain: runtime
            .email
            .as_ref()
            .map(|e| e.from.email.domain().to_string())
            .unwrap_or_else(|| MailSettings::default().message_domain),
    }
}

pub async fn run(runtime: Runtime, config: &Config) -> anyhow::Result<()> {
    let mut config_now = ConfigView::of(config);
    let mut runtime = runtime;
    Store::create_state_dir(&config.state_dir)?;
    let _lock = lock_state_dir(&config.state_dir)?;
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
    // The status page reads the store through its own connection.
    let status_store = Arc::new(std::sync::Mutex::new(Store::open(&config.state_dir)?));
    tokio::spawn(metrics::serve(listener, metrics.clone(), status_store));
    metrics.declare_sources(runtime.sources.iter().map(|s| s.name.as_str()), Utc::now().timestamp());

    let wake = Arc::new(Notify::new());
    let mut pipeline = Pipeline::new(
        store,
        config.settings.clone(),
        mail_settings(config, &runtime),
        runtime.sources.iter().map(|s| s.name.clone()).collect(),
    )?
    .with_metrics(metrics.clone())
    .with_delivery(wake.clone());

    let (stop_tx, stop_rx) = watch::channel(false);
    let (sink_tx, sink_rx) =
        watch::channel::<Arc<dyn Sink>>(Arc::from(crate::sinks::from_config(runtime.email.as_ref())?));
    let worker = {
        let store = Store::open(&config.state_dir)?;
        tokio::spawn(deliver::outbox_worker(
            store,
            sink_rx,
            metrics.clone(),
            wake.clone(),
            stop_rx.clone(),
        ))
    };
    // Alertmanager: a state sync beside the outbox, woken after each committed cycle.
    let am_wake = Arc::new(Notify::new());
    let am_settings = |c: &Config| c.alertmanager.clone().map(|a| (a, c.settings.min_severity));
    let (am_tx, am_rx) = watch::channel(am_settings(config));
    let am_worker = {
        let store = Store::open(&config.state_dir)?;
        tokio::spawn(crate::sinks::alertmanager::sync_worker(
            store,
            am_rx,
            metrics.clone(),
            am_wake.clone(),
            stop_rx.clone(),
        ))
    };
    let (req_tx, mut req_rx) = watch::channel(Request::Run);
    let req_tx = Arc::new(req_tx);
    tokio::spawn(signals(req_tx.clone(), stop_tx));

    let liveness = Arc::new(Liveness::default());
    let bound = cycle_bound_secs(&runtime);
    liveness.cycle_bound.store(bound, Ordering::Relaxed);
    metrics
        .healthy_within_secs
        .store(period_secs(&config_now.schedule) + bound, Ordering::Relaxed);
    if let Some(wd) = sd_notify::watchdog_enabled() {
        tokio::spawn(feed_watchdog(wd, liveness.clone(), metrics.clone()));
    }
    tracing::info!(schedule = %config_now.schedule_text, sources = runtime.sources.len(), "lockwatch started");

    let mut first = true;
    'cycles: loop {
        // One cycle. Collections are read-only: a stop abandons them. A commit that began ends.
        let started = Utc::now();
        liveness.enter(started.timestamp());
        match pipeline
            .run_cycle(&runtime.sources, wait_for(&mut req_rx, Request::Stop))
            .await
        {
            Ok(None) => {
                tracing::info!("stop requested during collection; abandoning it (nothing was committed)");
                break 'cycles;
            }
            Ok(Some(s)) => tracing::info!(
                changed = s.changed,
                emails = s.mails,
                failed_sources = s.failed_sources,
                "cycle done"
            ),
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "cycle not recorded; it will be retried next cycle")
            }
        }
        liveness.leave();
        metrics.beat();
        am_wake.notify_one();
        match pipeline.prune(Utc::now().timestamp()) {
            Ok(p) if p.total() > 0 => tracing::info!(
                snapshots = p.snapshots,
                alerts = p.alerts,
                mails = p.outbox,
                baseline_events = p.baseline_events,
                suppressions = p.suppressions,
                "pruned history older than retention"
            ),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "pruning history failed; it is retried after the next cycle")
            }
        }
        let took = (Utc::now() - started).num_milliseconds() as f64 / 1000.0;
        metrics.cycle_duration.set(took);
        let period = period_secs(&config_now.schedule);
        if took > period as f64 {
            metrics.cycle_overruns.inc();
            tracing::warn!(
                took_secs = took,
                period_secs = period,
                "the cycle took longer than the schedule's period; the next one starts at once. Lengthen the schedule or shorten source timeouts"
            );
        }
        if first {
            notify(&[NotifyState::Ready, NotifyState::Status("watching")]);
            first = false;
        }

        // Sleep until the next fire time in short steps, so that a clock jumping backwards does
        // not stall us (the target is recomputed when it moves away); wake for a stop or reload.
        let mut next = config_now
            .schedule
            .upcoming(Utc)
            .next()
            .context("schedule has no future fire time")?;
        loop {
            if *req_rx.borrow() == Request::Stop {
                break 'cycles;
            }
            if *req_rx.borrow() == Request::Reload {
                req_tx.send_if_modified(|r| {
                    let reload = *r == Request::Reload;
                    if reload {
                        *r = Request::Run;
                    }
                    reload
                });
                notify(&[NotifyState::Reloading, monotonic_now()]);
                match reload(&config.path, &config_now) {
                    Ok((new_config, new_runtime)) => {
                        pipeline.reconfigure(
                            new_config.settings.clone(),
                            mail_settings(&new_config, &new_runtime),
                            new_runtime.sources.iter().map(|s| s.name.clone()).collect(),
                        );
                        if let Ok(sink) = crate::sinks::from_config(new_runtime.email.as_ref()) {
                            sink_tx.send_replace(Arc::from(sink));
                        }
                        am_tx.send_replace(am_settings(&new_config));
                        metrics.declare_sources(
                            new_runtime.sources.iter().map(|s| s.name.as_str()),
                            Utc::now().timestamp(),
                        );
                        let bound = cycle_bound_secs(&new_runtime);
                        liveness.cycle_bound.store(bound, Ordering::Relaxed);
                        tracing::info!(
                            sources = new_runtime.sources.len(),
                            schedule = %new_config.schedule_text,
                            "configuration reloaded; it applies from the next cycle"
                        );
                        config_now = ConfigView::of(&new_config);
                        runtime = new_runtime;
                        metrics
                            .healthy_within_secs
                            .store(period_secs(&config_now.schedule) + bound, Ordering::Relaxed);
                        next = config_now
                            .schedule
                            .upcoming(Utc)
                            .next()
                            .context("schedule has no future fire time")?;
                        metrics.reloads.with_label_values(&["ok"]).inc();
                    }
                    Err(e) => {
                        metrics.reloads.with_label_values(&["refused"]).inc();
                        tracing::error!(error = %e, "configuration reload refused; the running configuration stays in force");
                    }
                }
                notify(&[NotifyState::Ready, NotifyState::Status("watching")]);
            }
            let now = Utc::now();
            if now >= next {
                break;
            }
            next = replan(&config_now.schedule, next, now, period).context("schedule has no future fire time")?;
            let remaining = (next - now).to_std().unwrap_or_default();
            metrics.beat();
            tokio::select! {
                _ = tokio::time::sleep(remaining.min(Duration::from_secs(1))) => {}
                _ = req_rx.changed() => {}
            }
        }
    }
    notify(&[NotifyState::Stopping]);
    match tokio::time::timeout(Duration::from_secs(5), worker).await {
        Ok(_) => tracing::info!("stopped cleanly"),
        Err(_) => tracing::warn!("outbox worker still sending after 5s; unsent mail stays queued for the next start"),
    }
    // Alertmanager holds open alerts until their endsAt: a post abandoned here loses nothing.
    am_worker.abort();
    Ok(())
}

/// The parts of the config the loop itself uses (the rest is in the runtime and pipeline).
struct ConfigView {
    schedule: cron::Schedule,
    schedule_text: String,
    state_dir: std::path::PathBuf,
    metrics_listen: std::net::SocketAddr,
}

impl ConfigView {
    fn of(c: &Config) -> Self {
        ConfigView {
            schedule: c.schedule.clone(),
            schedule_text: c.schedule_text.clone(),
            state_dir: c.state_dir.clone(),
            metrics_listen: c.metrics_listen,
        }
    }
}

/// Read, check and build the config again. What cannot change without a restart is refused.
fn reload(path: &std::path::Path, running: &ConfigView) -> anyhow::Result<(Config, Runtime)> {
    let config = Config::load(path).map_err(|e| anyhow::anyhow!("{e}"))?;
    if config.state_dir != running.state_dir {
        bail!(
            "state_dir changed ({} → {}): that needs a restart (systemctl restart lockwatch)",
            running.state_dir.display(),
            config.state_dir.display()
        );
    }
    if config.metrics_listen != running.metrics_listen {
        bail!(
            "metrics_listen changed ({} → {}): that needs a restart (systemctl restart lockwatch)",
            running.metrics_listen,
            config.metrics_listen
        );
    }
    let runtime = config.build().map_err(|e| anyhow::anyhow!("{e}"))?;
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    Ok((config, runtime))
}

fn monotonic_now() -> NotifyState<'static> {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    NotifyState::MonotonicUsec(ts.tv_sec as i128 * 1_000_000 + ts.tv_nsec as i128 / 1_000)
}

async fn wait_for(rx: &mut watch::Receiver<Request>, want: Request) {
    loop {
        if *rx.borrow_and_update() == want {
            return;
        }
        if rx.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}

async fn feed_watchdog(interval: Duration, liveness: Arc<Liveness>, metrics: Arc<Metrics>) {
    let every = (interval / 2).max(Duration::from_millis(100));
    loop {
        let now = Utc::now().timestamp();
        if should_feed(
            now,
            metrics.heartbeat.load(Ordering::Relaxed),
            liveness.cycle_started.load(Ordering::Relaxed),
            liveness.cycle_bound.load(Ordering::Relaxed),
            interval.as_secs() as i64,
        ) {
            notify(&[NotifyState::Watchdog]);
        } else {
            tracing::error!("the scheduler is stuck; not feeding the watchdog (systemd will restart lockwatch)");
        }
        tokio::time::sleep(every).await;
    }
}

async fn signals(req: Arc<watch::Sender<Request>>, stop: watch::Sender<bool>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return std::future::pending().await;
    };
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading the configuration");
                req.send_if_modified(|r| {
                    let run = *r == Request::Run;
                    if run {
                        *r = Request::Reload;
                    }
                    run
                });
            }
        }
    }
    tracing::info!("stop requested");
    req.send_replace(Request::Stop);
    let _ = stop.send(true);
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

    #[test]
    fn the_watchdog_is_fed_during_a_cycle_that_outlasts_it() {
        // WatchdogSec=120s; sources time out after 300s: a cycle may take 360s.
        let (watchdog, bound) = (120, 300 + 60);
        let cases = [
            // (name, now, heartbeat, cycle started) → feed
            ("between cycles, beating", 1000, 999, 0, true),
            ("between cycles, loop stalled past the watchdog", 1000, 800, 0, false),
            ("in a cycle for 10s", 1000, 990, 990, true),
            (
                "in a cycle for 200s: longer than WatchdogSec, still fed",
                1000,
                800,
                800,
                true,
            ),
            ("in a cycle for 360s: at its bound, fed", 1360, 1000, 1000, true),
            ("in a cycle past every timeout: stuck, not fed", 1400, 1000, 1000, false),
        ];
        for (name, now, heartbeat, started, want) in cases {
            assert_eq!(should_feed(now, heartbeat, started, bound, watchdog), want, "{name}");
        }
    }
}
