//! Prometheus metrics and the `/metrics` + `/healthz` endpoint.

use crate::model::Severity;
use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// What one cycle did, for the log and the metrics.
#[derive(Debug, Default)]
pub struct CycleStats {
    pub at: i64,
    /// Resources whose posture changed (new snapshot rows).
    pub changed: usize,
    /// Emails queued.
    pub mails: usize,
    pub failed_sources: usize,
    pub sources: Vec<SourceStats>,
    /// (source, kind) → resources currently reported.
    pub resources: HashMap<(String, String), i64>,
    /// (source, resource id, exposed) for every current resource.
    pub exposed: Vec<(String, String, bool)>,
    pub findings_by_severity: HashMap<Severity, i64>,
    pub suppressed_by_severity: HashMap<Severity, i64>,
    pub alerts_open_by_severity: HashMap<Severity, i64>,
    /// (source, severity) of each drift alert opened or escalated.
    pub drift_events: Vec<(String, Severity)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SourceStats {
    pub name: String,
    pub elapsed: Duration,
    /// Collected completely this cycle (no failed part). `None`: not collected this cycle.
    pub succeeded: Option<bool>,
    pub consecutive_failures: u32,
    pub blind: bool,
}

pub struct Metrics {
    pub registry: Registry,
    pub resources: IntGaugeVec,
    pub findings_open: IntGaugeVec,
    pub findings_suppressed: IntGaugeVec,
    pub resource_exposed: IntGaugeVec,
    pub drift_events: IntCounterVec,
    pub scan_duration: HistogramVec,
    pub scan_errors: IntCounterVec,
    pub source_blind: IntGaugeVec,
    pub source_failures: IntGaugeVec,
    pub last_success: GaugeVec,
    pub alerts_sent: IntCounter,
    pub alert_send_failures: IntCounter,
    pub alert_recipients_refused: IntCounter,
    pub alert_queue_depth: IntGauge,
    pub alert_oldest_pending_age: IntGauge,
    pub alerts_open: IntGaugeVec,
    pub cycles: IntCounter,
    pub last_cycle: IntGauge,
    pub cycle_duration: prometheus::Gauge,
    pub cycle_overruns: IntCounter,
    pub reloads: IntCounterVec,
    pub alertmanager_posts: IntCounterVec,
    /// Unix time the scheduler loop last proved alive; `/healthz` reads it.
    pub heartbeat: AtomicI64,
    pub healthy_within_secs: AtomicI64,
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        let r = Registry::new();
        fn reg<T: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: T) -> T {
            r.register(Box::new(c.clone())).expect("metric names are unique");
            c
        }
        let igv = |name: &str, help: &str, labels: &[&str]| {
            reg(
                &r,
                IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric"),
            )
        };
        let icv = |name: &str, help: &str, labels: &[&str]| {
            reg(
                &r,
                IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"),
            )
        };
        let m = Metrics {
            resources: igv(
                "lockwatch_resources",
                "Resources currently reported, by source and kind.",
                &["source", "kind"],
            ),
            findings_open: igv(
                "lockwatch_findings_open",
                "Findings on the current postures, by severity.",
                &["severity"],
            ),
            findings_suppressed: igv(
                "lockwatch_findings_suppressed",
                "Findings on the current postures that an operator suppressed for a while, by severity.",
                &["severity"],
            ),
            resource_exposed: igv(
                "lockwatch_resource_exposed",
                "1 when the resource is reachable without authentication.",
                &["source", "resource"],
            ),
            drift_events: icv(
                "lockwatch_drift_events_total",
                "Weakenings against the baseline detected, by source and severity.",
                &["source", "severity"],
            ),
            scan_duration: reg(
                &r,
                HistogramVec::new(
                    HistogramOpts::new("lockwatch_scan_duration_seconds", "Time one source took to collect.")
                        .buckets(vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0]),
                    &["source"],
                )
                .expect("valid metric"),
            ),
            scan_errors: icv(
                "lockwatch_scan_errors_total",
                "Collections that failed, by source.",
                &["source"],
            ),
            source_blind: igv(
                "lockwatch_source_blind",
                "1 while a source has failed blind_after cycles in a row: lockwatch cannot see it.",
                &["source"],
            ),
            source_failures: igv(
                "lockwatch_source_consecutive_failures",
                "Failed cycles in a row, by source (0 after a success).",
                &["source"],
            ),
            last_success: reg(
                &r,
                GaugeVec::new(
                    Opts::new(
                        "lockwatch_last_scan_success_timestamp_seconds",
                        "Unix time of the last successful collection (daemon start until the first).",
                    ),
                    &["source"],
                )
                .expect("valid metric"),
            ),
            alerts_sent: reg(
                &r,
                IntCounter::new(
                    "lockwatch_alerts_sent_total",
                    "Alert emails accepted by the mail server (or logged).",
                )
                .expect("valid metric"),
            ),
            alert_send_failures: reg(
                &r,
                IntCounter::new("lockwatch_alert_send_failures_total", "Failed alert delivery attempts.")
                    .expect("valid metric"),
            ),
            alert_recipients_refused: reg(
                &r,
                IntCounter::new(
                    "lockwatch_alert_recipients_refused_total",
                    "Recipients a mail server refused permanently (the others still got the alert).",
                )
                .expect("valid metric"),
            ),
            alert_queue_depth: reg(
                &r,
                IntGauge::new("lockwatch_alert_queue_depth", "Alert emails waiting in the outbox.")
                    .expect("valid metric"),
            ),
            alert_oldest_pending_age: reg(
                &r,
                IntGauge::new(
                    "lockwatch_alert_oldest_pending_age_seconds",
                    "Age of the oldest alert email waiting in the outbox (0 when empty).",
                )
                .expect("valid metric"),
            ),
            alerts_open: igv("lockwatch_alerts_open", "Open alerts, by severity.", &["severity"]),
            cycles: reg(
                &r,
                IntCounter::new("lockwatch_cycles_total", "Scan cycles completed.").expect("valid metric"),
            ),
            last_cycle: reg(
                &r,
                IntGauge::new(
                    "lockwatch_last_cycle_timestamp_seconds",
                    "Unix time the last cycle completed.",
                )
                .expect("valid metric"),
            ),
            cycle_duration: reg(
                &r,
                prometheus::Gauge::new(
                    "lockwatch_cycle_duration_seconds",
                    "How long the last cycle took, collection to commit.",
                )
                .expect("valid metric"),
            ),
            cycle_overruns: reg(
                &r,
                IntCounter::new(
                    "lockwatch_cycle_overruns_total",
                    "Cycles that took longer than the schedule's period (the next one started at once).",
                )
                .expect("valid metric"),
            ),
            reloads: icv(
                "lockwatch_config_reloads_total",
                "Configuration reloads (SIGHUP), by result: ok or refused.",
                &["result"],
            ),
            alertmanager_posts: icv(
                "lockwatch_alertmanager_posts_total",
                "Posts of the open alerts to Alertmanager cluster members, by result: ok or failed.",
                &["result"],
            ),
            heartbeat: AtomicI64::new(chrono::Utc::now().timestamp()),
            healthy_within_secs: AtomicI64::new(i64::MAX),
            registry: r,
        };
        for s in crate::model::Severity::ALL {
            m.findings_open.with_label_values(&[s.as_str()]).set(0);
            m.findings_suppressed.with_label_values(&[s.as_str()]).set(0);
            m.alerts_open.with_label_values(&[s.as_str()]).set(0);
        }
        for r in ["ok", "failed"] {
            m.alertmanager_posts.with_label_values(&[r]).inc_by(0);
        }
        let build = reg(
            &m.registry,
            IntGaugeVec::new(
                Opts::new("lockwatch_build_info", "Version of the running lockwatch."),
                &["version"],
            )
            .expect("valid metric"),
        );
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        Arc::new(m)
    }

    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding to a Vec cannot fail");
        String::from_utf8(buf).expect("prometheus text format is UTF-8")
    }

    /// The sources of the running config get their series at once (before their first cycle),
    /// so that "never succeeded" is visible.
    pub fn declare_sources<'a>(&self, names: impl Iterator<Item = &'a str>, now: i64) {
        for name in names {
            let l = [name];
            if self
                .last_success
                .get_metric_with_label_values(&l)
                .map(|g| g.get())
                .unwrap_or(0.0)
                == 0.0
            {
                self.last_success.with_label_values(&l).set(now as f64);
            }
            self.scan_errors.with_label_values(&l).inc_by(0);
            self.source_blind.with_label_values(&l).add(0);
            self.source_failures.with_label_values(&l).add(0);
        }
    }

    /// Everything a cycle changes in the metrics, in one place.
    pub fn record_cycle(&self, s: &CycleStats) {
        for src in &s.sources {
            let l = [src.name.as_str()];
            if let Some(ok) = src.succeeded {
                self.scan_duration
                    .with_label_values(&l)
                    .observe(src.elapsed.as_secs_f64());
                if ok {
                    self.last_success.with_label_values(&l).set(s.at as f64);
                } else {
                    self.scan_errors.with_label_values(&l).inc();
                }
            }
            self.source_failures
                .with_label_values(&l)
                .set(src.consecutive_failures as i64);
            self.source_blind.with_label_values(&l).set(src.blind as i64);
        }
        self.resources.reset();
        for ((source, kind), n) in &s.resources {
            self.resources.with_label_values(&[source, kind]).set(*n);
        }
        self.resource_exposed.reset();
        for (source, id, exposed) in &s.exposed {
            self.resource_exposed
                .with_label_values(&[source, id])
                .set(*exposed as i64);
        }
        for sev in crate::model::Severity::ALL {
            let l = [sev.as_str()];
            let get = |m: &std::collections::HashMap<crate::model::Severity, i64>| *m.get(&sev).unwrap_or(&0);
            self.findings_open
                .with_label_values(&l)
                .set(get(&s.findings_by_severity));
            self.findings_suppressed
                .with_label_values(&l)
                .set(get(&s.suppressed_by_severity));
            self.alerts_open
                .with_label_values(&l)
                .set(get(&s.alerts_open_by_severity));
        }
        for (source, sev) in &s.drift_events {
            self.drift_events.with_label_values(&[source, sev.as_str()]).inc();
        }
        self.cycles.inc();
        self.last_cycle.set(s.at);
    }

    /// When a source last collected successfully, if it has since start-up (without creating
    /// a series for a name the metrics do not have).
    pub fn last_success_of(&self, source: &str) -> Option<i64> {
        self.registry
            .gather()
            .iter()
            .find(|f| f.name() == "lockwatch_last_scan_success_timestamp_seconds")?
            .get_metric()
            .iter()
            .find(|m| {
                m.get_label()
                    .iter()
                    .any(|l| l.name() == "source" && l.value() == source)
            })
            .map(|m| m.get_gauge().get_value() as i64)
            .filter(|t| *t > 0)
    }

    pub fn beat(&self) {
        self.heartbeat.store(chrono::Utc::now().timestamp(), Ordering::Relaxed);
    }

    fn healthy(&self) -> bool {
        let age = chrono::Utc::now().timestamp() - self.heartbeat.load(Ordering::Relaxed);
        age <= self.healthy_within_secs.load(Ordering::Relaxed)
    }
}

/// Serve `/metrics` and `/healthz` until the process exits.
/// A status page as an HTTP answer: the page, 404 with `missing`, or 500 with the error.
fn respond(
    page: Result<anyhow::Result<Option<String>>, tokio::task::JoinError>,
    missing: String,
) -> (axum::http::StatusCode, axum::response::Html<String>) {
    use axum::{http::StatusCode, response::Html};
    match page {
        Ok(Ok(Some(html))) => (StatusCode::OK, Html(html)),
        Ok(Ok(None)) => (StatusCode::NOT_FOUND, Html(missing)),
        Ok(Err(e)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Html(crate::mail::esc(&format!("{e:#}"))),
        ),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Html(crate::mail::esc(&e.to_string())),
        ),
    }
}

pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    status: Arc<std::sync::Mutex<crate::store::Store>>,
) {
    use axum::{Router, extract::Path, http::StatusCode, routing::get};
    let m1 = metrics.clone();
    let m2 = metrics.clone();
    let s1 = status.clone();
    let app = Router::new()
        .route(
            "/metrics",
            get(move || {
                let m = m1.clone();
                async move {
                    (
                        [(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                        m.render(),
                    )
                }
            }),
        )
        .route(
            "/",
            get(move || {
                let (m, s) = (m2.clone(), s1.clone());
                async move {
                    let page = tokio::task::spawn_blocking(move || {
                        let store = s.lock().unwrap_or_else(|p| p.into_inner());
                        crate::status::index(&store, |name| m.last_success_of(name), chrono::Utc::now().timestamp())
                    })
                    .await;
                    respond(page.map(|r| r.map(Some)), String::new())
                }
            }),
        )
        .route(
            "/resource/{*id}",
            get(move |Path(id): Path<String>| {
                let s = status.clone();
                async move {
                    let lookup = id.clone();
                    let page = tokio::task::spawn_blocking(move || {
                        let store = s.lock().unwrap_or_else(|p| p.into_inner());
                        crate::status::resource(&store, &lookup)
                    })
                    .await;
                    respond(page, format!("no resource {}", crate::mail::esc(&id)))
                }
            }),
        )
        .route(
            "/healthz",
            get(move || {
                let m = metrics.clone();
                async move {
                    if m.healthy() {
                        (StatusCode::OK, "ok\n")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "scheduler loop stalled\n")
                    }
                }
            }),
        );
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!(error = %e, "metrics server stopped");
    }
}
