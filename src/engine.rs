//! One cycle: collect every source concurrently, store what changed, evaluate every resource,
//! plan alerts, and commit snapshots, alert state and emails in one transaction.

use crate::alerting::{self, Notice};
use crate::config::{Email, SourceEntry};
use crate::evaluate::{self, Evaluation};
use crate::mail::{self, MailContext};
use crate::metrics::Metrics;
use crate::model::{Severity, document_hash};
use crate::sources::Collection;
use crate::store::{CycleWrites, Known, NewMail, Store};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What one source returned this cycle.
pub struct Collected {
    pub source: String,
    pub elapsed: Duration,
    pub result: Result<Collection, String>,
}

/// Run every source at once, each bounded by its own timeout. A failure stays with its source.
pub async fn collect_all(sources: &[SourceEntry]) -> Vec<Collected> {
    futures::future::join_all(sources.iter().map(|s| async move {
        let t0 = Instant::now();
        let result = match tokio::time::timeout(s.timeout, s.source.collect()).await {
            Ok(Ok(collection)) => Ok(collection),
            Ok(Err(e)) => Err(format!("{e:#}")),
            Err(_) => Err(format!(
                "no answer from {} within {}s (timeout)",
                s.source.target(),
                s.timeout.as_secs_f64()
            )),
        };
        match &result {
            Err(e) => tracing::warn!(source = %s.name, error = %e, "source failed; its resources keep their last known state"),
            Ok(c) => {
                for f in &c.failed {
                    tracing::warn!(source = %s.name, part = %f.scope, error = %f.message, "part of the source failed; its resources keep their last known state");
                }
            }
        }
        Collected {
            source: s.name.clone(),
            elapsed: t0.elapsed(),
            result,
        }
    }))
    .await
}

fn ts(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| secs.to_string())
}

pub const BLIND_RULE: &str = "lockwatch.source.blind";

/// The alert subject for a source lockwatch cannot read.
pub fn blind_resource_id(source: &str) -> String {
    format!("lockwatch/source/{source}")
}

/// What a notice email needs besides the alert plan.
struct MailBits<'a> {
    internet: bool,
    kind: &'a str,
    changes: &'a [crate::model::Change],
    exposed: bool,
    about_posture: bool,
    preface: Option<String>,
    detected_at: chrono::DateTime<chrono::Utc>,
}

pub struct Engine {
    store: Store,
    /// (consecutive failed cycles, last error) per source.
    failures: HashMap<String, (u32, String)>,
    /// Active suppressions by resource id.
    suppressions: HashMap<String, Vec<crate::store::Suppression>>,
    /// Sources whose status row exists in the store (written at least once).
    status_recorded: HashSet<String>,
    pub blind_after: u32,
    known: HashMap<String, Known>,
    open: HashMap<String, Vec<alerting::OpenAlert>>,
    seen_version: i64,
    seen_epoch: i64,
    pub min_severity: Severity,
    pub remind_every_secs: i64,
    pub config_path: PathBuf,
    pub email: Option<Email>,
    pub metrics: Option<Arc<Metrics>>,
    /// Sources in the config: resources of others are kept but not evaluated.
    pub configured: HashSet<String>,
}

#[derive(Debug, Default)]
pub struct CycleSummary {
    pub changed: usize,
    pub mails: usize,
    pub failed_sources: usize,
}

impl Engine {
    pub fn new(store: Store, configured: HashSet<String>) -> anyhow::Result<Engine> {
        let mut e = Engine {
            failures: HashMap::new(),
            suppressions: HashMap::new(),
            status_recorded: HashSet::new(),
            blind_after: 3,
            known: HashMap::new(),
            open: HashMap::new(),
            seen_version: -1,
            seen_epoch: -1,
            store,
            min_severity: Severity::Medium,
            remind_every_secs: 4 * 3600,
            config_path: PathBuf::from(crate::config::DEFAULT_PATH),
            email: None,
            metrics: None,
            configured,
        };
        e.reload()?;
        Ok(e)
    }

    fn reload(&mut self) -> anyhow::Result<()> {
        self.known = self.store.load_known()?;
        self.failures = self.store.source_failures()?;
        self.status_recorded = self.failures.keys().cloned().collect();
        self.load_alert_state()?;
        self.seen_version = self.store.data_version()?;
        self.seen_epoch = self.store.accepted_epoch()?;
        Ok(())
    }

    /// The small tables other writers touch without changing any posture or baseline.
    fn load_alert_state(&mut self) -> anyhow::Result<()> {
        self.open = self.store.load_open_alerts()?;
        self.load_suppressions()
    }

    fn load_suppressions(&mut self) -> anyhow::Result<()> {
        self.suppressions.clear();
        for s in self.store.suppressions(false)? {
            self.suppressions.entry(s.resource_id.clone()).or_default().push(s);
        }
        Ok(())
    }

    /// Record a plan's alert-state changes in `w` and queue its email, if it has one.
    fn record(
        &self,
        w: &mut CycleWrites,
        id: &str,
        plan: &alerting::Plan,
        was_open: &[alerting::OpenAlert],
        bits: MailBits<'_>,
    ) {
        w.opened.extend(plan.opened.iter().map(|c| (id.to_string(), c.clone())));
        w.updated.extend(
            plan.escalated
                .iter()
                .chain(&plan.updated)
                .map(|c| (id.to_string(), c.clone())),
        );
        w.resolved
            .extend(plan.resolved.iter().map(|o| (id.to_string(), o.rule.clone())));
        let Some(notice) = plan.notice else { return };
        if notice != Notice::Resolved {
            w.notified.push(id.to_string());
        }
        let new: Vec<alerting::Condition> = plan.opened.iter().chain(&plan.escalated).cloned().collect();
        let mut still_open = plan.still_open.clone();
        still_open.extend(
            was_open
                .iter()
                .filter(|o| plan.updated.iter().any(|u| u.rule == o.rule))
                .cloned(),
        );
        let mut rendered = mail::render(&MailContext {
            resource_id: id,
            kind: bits.kind,
            notice,
            detected_at: bits.detected_at,
            new: &new,
            still_open: &still_open,
            resolved: &plan.resolved,
            changes: bits.changes,
            exposed: bits.exposed,
            config_path: &self.config_path,
            about_posture: bits.about_posture,
            internet: bits.internet,
        });
        if let Some(p) = bits.preface {
            rendered.text = p + &rendered.text;
        }
        tracing::info!(resource = %id, subject = %rendered.subject, "alert queued");
        w.mails.push(NewMail {
            resource_id: id.to_string(),
            kind: match notice {
                Notice::Alert(_) => "alert",
                Notice::Reminder(_) => "reminder",
                Notice::Resolved => "resolved",
                Notice::PartlyResolved(_) => "partly-resolved",
            }
            .into(),
            subject: rendered.subject,
            body_text: rendered.text,
            body_html: rendered.html,
            message_id: mail::new_message_id(self.email.as_ref()),
        });
    }

    pub fn apply(&mut self, now: i64, mut collected: Vec<Collected>) -> anyhow::Result<CycleSummary> {
        // Another connection committed since the last check (our own commits do not move
        // `data_version`). `baseline accept` changes baselines: reload everything. Anything else
        // (the outbox worker's deliveries, `suppress`) leaves the cached documents valid: reload
        // only the small tables, not every posture of a large fleet.
        let version = self.store.data_version()?;
        if version != self.seen_version {
            if self.store.accepted_epoch()? != self.seen_epoch {
                self.reload()?;
            } else {
                self.load_alert_state()?;
                self.seen_version = version;
            }
        }
        let mut w = CycleWrites::default();
        let mut gone: Vec<String> = Vec::new();
        let mut summary = CycleSummary::default();
        for c in collected.iter_mut() {
            if let Some(m) = &self.metrics {
                m.scan_duration
                    .with_label_values(&[&c.source])
                    .observe(c.elapsed.as_secs_f64());
            }
            match &mut c.result {
                Err(e) => {
                    summary.failed_sources += 1;
                    w.source_results.push((c.source.clone(), Some(e.clone())));
                }
                Ok(collection) => {
                    if collection.failed.is_empty() {
                        w.source_results.push((c.source.clone(), None));
                    } else {
                        summary.failed_sources += 1;
                        let msg = collection
                            .failed
                            .iter()
                            .map(|f| f.message.as_str())
                            .collect::<Vec<_>>()
                            .join("; ");
                        w.source_results.push((c.source.clone(), Some(msg)));
                    }
                    let mut present = HashSet::new();
                    // Taken, not copied: a changed posture moves into the cache; an unchanged
                    // one is dropped here. A large fleet holds one copy of each posture.
                    for r in std::mem::take(&mut collection.resources) {
                        present.insert(r.id.clone());
                        let hash = document_hash(r.posture.as_str());
                        let entry = self.known.get_mut(&r.id);
                        if entry.as_ref().is_some_and(|k| k.hash == hash && !k.deleted) {
                            continue;
                        }
                        let doc = r.posture.as_str().to_string();
                        match entry {
                            Some(k) => {
                                k.hash = hash.clone();
                                k.document = r.posture;
                                k.deleted = false;
                            }
                            None => {
                                let first = r.posture;
                                self.known.insert(
                                    r.id.clone(),
                                    Known {
                                        source: r.source.clone(),
                                        kind: r.kind.to_string(),
                                        hash: hash.clone(),
                                        document: first.clone(),
                                        baseline: first,
                                        deleted: false,
                                    },
                                );
                            }
                        }
                        summary.changed += 1;
                        w.snapshots
                            .push((r.id.clone(), r.source.clone(), r.kind.to_string(), hash, doc));
                    }
                    for (id, k) in self.known.iter_mut() {
                        let listed = !collection.failed.iter().any(|f| id.starts_with(&f.scope));
                        if k.source == c.source && !k.deleted && listed && !present.contains(id) {
                            k.deleted = true;
                            w.deleted.push(id.clone());
                            gone.push(id.clone());
                        }
                    }
                }
            }
        }

        let detected_at = chrono::DateTime::from_timestamp(now, 0).unwrap_or_else(chrono::Utc::now);
        let mut exposed_rows: Vec<(String, String, bool)> = Vec::new();
        let mut findings_by_sev: HashMap<Severity, i64> = HashMap::new();
        let mut suppressed_by_sev: HashMap<Severity, i64> = HashMap::new();
        let mut expiry_notices: Vec<(String, String, String)> = Vec::new();
        let mut resource_counts: HashMap<(String, String), i64> = HashMap::new();
        let mut drift_events: Vec<(String, Severity)> = Vec::new();
        let mut ids: Vec<&String> = self.known.keys().collect();
        ids.sort();
        for id in ids {
            let k = &self.known[id];
            let was_open = self.open.get(id).map(Vec::as_slice).unwrap_or(&[]);
            let is_gone = gone.contains(id);
            if (k.deleted && !is_gone) || !self.configured.contains(&k.source) {
                continue;
            }
            // Parsed here, one resource at a time; the cache keeps text.
            let document = k.document.value();
            let baseline = (!k.baseline.same(&k.document)).then(|| k.baseline.value());
            let eval = if is_gone {
                Evaluation {
                    findings: vec![],
                    changes: vec![],
                    exposed: false,
                    drift: None,
                }
            } else {
                evaluate::evaluate(&k.kind, baseline.as_ref().unwrap_or(&document), &document)
            };
            if !is_gone {
                *resource_counts.entry((k.source.clone(), k.kind.clone())).or_default() += 1;
                exposed_rows.push((k.source.clone(), id.clone(), eval.exposed));
                for f in &eval.findings {
                    *findings_by_sev.entry(f.severity).or_default() += 1;
                }
            }
            let conds = alerting::conditions(&eval, self.min_severity);
            // Suppressions: silent while they hold; when one expires or the posture it was
            // granted for changes, the finding alerts again, saying why.
            let mut was_open_now: Vec<alerting::OpenAlert> = was_open.to_vec();
            let mut suppressed: Vec<String> = Vec::new();
            let mut notes: Vec<String> = Vec::new();
            for sup in self.suppressions.get(id).into_iter().flatten() {
                let ending = if now >= sup.expires_at {
                    Some("expired")
                } else if is_gone || sup.posture_hash != k.hash {
                    Some("posture changed")
                } else {
                    None
                };
                let Some(why) = ending else {
                    suppressed.push(sup.rule.clone());
                    continue;
                };
                w.ended_suppressions.push((sup.id, why.to_string()));
                let note = format!(
                    "The suppression of {} granted {} (\"{}\") {}.",
                    sup.rule,
                    ts(sup.granted_at),
                    sup.reason,
                    if why == "expired" {
                        format!("expired at {}", ts(sup.expires_at))
                    } else {
                        "no longer applies: the resource changed since it was granted".to_string()
                    }
                );
                if conds.iter().any(|c| c.rule == sup.rule) {
                    if was_open_now.iter().any(|o| o.rule == sup.rule) {
                        w.resolved.push((id.clone(), sup.rule.clone()));
                        was_open_now.retain(|o| o.rule != sup.rule);
                    }
                    notes.push(note);
                } else if why == "expired" {
                    expiry_notices.push((id.clone(), k.kind.clone(), note));
                }
            }
            for f in eval.findings.iter().filter(|f| suppressed.contains(&f.rule)) {
                *suppressed_by_sev.entry(f.severity).or_default() += 1;
            }
            let was_open = was_open_now.as_slice();
            let plan = alerting::plan_with(&conds, was_open, now, self.remind_every_secs, &suppressed);
            if let Some(sev) = plan
                .opened
                .iter()
                .chain(&plan.escalated)
                .find(|c| c.rule == alerting::DRIFT_RULE)
                .map(|c| c.severity)
            {
                drift_events.push((k.source.clone(), sev));
            }
            if is_gone {
                notes.insert(
                    0,
                    format!(
                        "{id} is no longer reported by source {}: the source answered and this resource was not in it (deleted or renamed).",
                        k.source
                    ),
                );
            }
            let preface = (!notes.is_empty()).then(|| notes.join("\n") + "\n\n");
            self.record(
                &mut w,
                id,
                &plan,
                was_open,
                MailBits {
                    internet: document.get("reach").and_then(serde_json::Value::as_str) == Some("internet"),
                    kind: &k.kind,
                    changes: &eval.changes,
                    exposed: eval.exposed,
                    about_posture: true,
                    preface,
                    detected_at,
                },
            );
        }

        for (id, kind, note) in expiry_notices {
            let text = format!(
                "{note}\nThe finding is no longer present, so nothing alerts now.\n\nResource: {id} (kind {kind})\n"
            );
            w.mails.push(NewMail {
                resource_id: id.clone(),
                kind: "notice".into(),
                subject: format!("[lockwatch] NOTICE {id}: suppression expired"),
                body_html: format!("<html><body><pre>{}</pre></body></html>", mail::esc(&text)),
                body_text: text,
                message_id: mail::new_message_id(self.email.as_ref()),
            });
        }

        // Blindness: a source that keeps failing is itself an alert.
        let mut status_changed: HashSet<String> = HashSet::new();
        for c in &collected {
            let failed = match &c.result {
                Err(e) => Some(e.clone()),
                Ok(coll) if !coll.failed.is_empty() => Some(
                    coll.failed
                        .iter()
                        .map(|f| f.message.as_str())
                        .collect::<Vec<_>>()
                        .join("; "),
                ),
                Ok(_) => None,
            };
            let entry = self.failures.entry(c.source.clone()).or_default();
            let next = match failed {
                Some(msg) => (entry.0 + 1, msg),
                None => (0, String::new()),
            };
            if *entry != next || !self.status_recorded.contains(&c.source) {
                status_changed.insert(c.source.clone());
            }
            *entry = next;
        }
        // A source's status row is written only when it changes, so that an unchanged cycle
        // writes nothing at all (timestamps live in the metrics).
        w.source_results.retain(|(s, _)| status_changed.contains(s));
        self.status_recorded.extend(status_changed.iter().cloned());
        let mut sources: Vec<&String> = self.configured.iter().collect();
        sources.sort();
        for source in sources {
            let (count, last_error) = self.failures.get(source).cloned().unwrap_or_default();
            let id = blind_resource_id(source);
            let conds = if count >= self.blind_after {
                vec![alerting::Condition {
                    rule: BLIND_RULE.into(),
                    severity: Severity::High,
                    message: format!(
                        "lockwatch has failed to read source {source} for {} or more cycles in a row: it cannot see whether \
                         protection changes there. Its resources keep their last known state. Last error: {last_error}",
                        self.blind_after
                    ),
                }]
            } else {
                vec![]
            };
            let was_open = self.open.get(&id).map(Vec::as_slice).unwrap_or(&[]);
            let plan = alerting::plan(&conds, was_open, now, self.remind_every_secs);
            self.record(
                &mut w,
                &id,
                &plan,
                was_open,
                MailBits {
                    internet: false,
                    kind: "source",
                    changes: &[],
                    exposed: false,
                    about_posture: false,
                    preface: None,
                    detected_at,
                },
            );
        }
        summary.mails = w.mails.len();

        if let Err(e) = self.store.apply(now, &w) {
            // Nothing was committed: forget what we assumed, so the next cycle retries all of it.
            self.reload()?;
            return Err(e.context("committing the cycle to the state file"));
        }
        // Our commit changed alerts. `seen_version` is left as it was at the start of the cycle:
        // a commit by another connection during the cycle (a `baseline accept`) is still seen
        // at the next check instead of being taken for our own.
        self.load_alert_state()?;

        if let Some(m) = &self.metrics {
            for c in &collected {
                match &c.result {
                    Ok(coll) if coll.failed.is_empty() => {
                        m.last_success.with_label_values(&[&c.source]).set(now as f64)
                    }
                    _ => m.scan_errors.with_label_values(&[&c.source]).inc(),
                }
            }
            for (source, (count, _)) in &self.failures {
                m.source_failures.with_label_values(&[source]).set(*count as i64);
                m.source_blind
                    .with_label_values(&[source])
                    .set((*count >= self.blind_after) as i64);
            }
            m.resources.reset();
            for ((source, kind), n) in resource_counts {
                m.resources.with_label_values(&[&source, &kind]).set(n);
            }
            m.resource_exposed.reset();
            for (source, id, exposed) in exposed_rows {
                m.resource_exposed
                    .with_label_values(&[&source, &id])
                    .set(exposed as i64);
            }
            for s in Severity::ALL {
                m.findings_open
                    .with_label_values(&[s.as_str()])
                    .set(*findings_by_sev.get(&s).unwrap_or(&0));
                m.findings_suppressed
                    .with_label_values(&[s.as_str()])
                    .set(*suppressed_by_sev.get(&s).unwrap_or(&0));
                let open = self.open.values().flatten().filter(|o| o.severity == s).count() as i64;
                m.alerts_open.with_label_values(&[s.as_str()]).set(open);
            }
            for (source, sev) in drift_events {
                m.drift_events.with_label_values(&[&source, sev.as_str()]).inc();
            }
            m.cycles.inc();
            m.last_cycle.set(now);
        }
        Ok(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Resource;
    use crate::store::OutboxRow;
    use serde_json::{Value, json};

    fn posture(open: bool, protected_mode: bool) -> Value {
        json!({
            "unauthenticated_probe": if open { "accepted" } else { "auth_required" },
            "requirepass_set": !open, "acl_nopass_users": if open { json!(["default"]) } else { json!([]) },
            "protected_mode": protected_mode, "bind": ["127.0.0.1"], "listen_scope": "loopback", "tls_port": 0, "version": "7"
        })
    }
    fn res(native: &str, p: Value) -> Resource {
        Resource::new("cache", "redis", native, p)
    }
    fn ok(rs: Vec<Resource>) -> Vec<Collected> {
        vec![Collected {
            source: "cache".into(),
            elapsed: Duration::ZERO,
            result: Ok(Collection::complete(rs)),
        }]
    }
    fn failed() -> Vec<Collected> {
        vec![Collected {
            source: "cache".into(),
            elapsed: Duration::ZERO,
            result: Err("connection refused".into()),
        }]
    }
    fn engine(dir: &std::path::Path) -> Engine {
        Engine::new(Store::open(dir).unwrap(), ["cache".to_string()].into()).unwrap()
    }
    fn mails(e: &Engine) -> Vec<OutboxRow> {
        e.store.outbox_listing(true).unwrap()
    }
    fn subjects(e: &Engine) -> Vec<String> {
        mails(e).into_iter().map(|m| m.subject).collect()
    }

    #[test]
    fn unchanged_cycles_write_no_snapshot_rows() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = engine(dir.path());
        for t in 0..50 {
            let s = e
                .apply(
                    t,
                    ok(vec![res("a:1", posture(false, true)), res("b:2", posture(false, true))]),
                )
                .unwrap();
            assert_eq!(s.changed, if t == 0 { 2 } else { 0 });
        }
        assert_eq!(e.store.snapshots("cache/redis/a:1").unwrap().len(), 1);
        // Not a single row: the unchanged cycles commit nothing.
        let before = e.store.total_changes();
        for t in 50..60 {
            e.apply(
                t,
                ok(vec![res("a:1", posture(false, true)), res("b:2", posture(false, true))]),
            )
            .unwrap();
        }
        assert_eq!(e.store.total_changes(), before, "an unchanged cycle writes no row");
        e.apply(
            60,
            ok(vec![
                res("a:1", posture(false, false)),
                res("b:2", posture(false, true)),
            ]),
        )
        .unwrap();
        assert_eq!(e.store.snapshots("cache/redis/a:1").unwrap().len(), 2);
        assert_eq!(e.store.snapshots("cache/redis/b:2").unwrap().len(), 1);
        assert!(e.store.total_changes() > before);
    }

    #[test]
    fn first_seen_open_store_alerts_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = engine(dir.path());
        e.apply(0, ok(vec![res("a:1", posture(true, true))])).unwrap();
        assert_eq!(
            subjects(&e),
            vec!["[lockwatch] CRITICAL cache/redis/a:1 is exposed".to_string()]
        );
    }

    #[test]
    fn failing_source_never_deletes_resolves_or_moves_anything() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = engine(dir.path());
        e.apply(0, ok(vec![res("a:1", posture(false, true))])).unwrap();
        e.apply(1, ok(vec![res("a:1", posture(true, true))])).unwrap();
        assert_eq!(mails(&e).len(), 1);
        for t in 2..10 {
            let s = e.apply(t, failed()).unwrap();
            assert_eq!(s.failed_sources, 1);
        }
        // The only new mail is the blindness alert: no RESOLVED while blind.
        assert_eq!(
            subjects(&e)[1..],
            ["[lockwatch] HIGH lockwatch/source/cache".to_string()],
            "{:?}",
            subjects(&e)
        );
        assert!(!e.known["cache/redis/a:1"].deleted);
        assert_eq!(e.open["cache/redis/a:1"].len(), 2, "auth.disabled and drift stay open");
        // When it answers again and is still open: only the blindness resolves.
        e.apply(10, ok(vec![res("a:1", posture(true, true))])).unwrap();
        assert_eq!(
            subjects(&e)[2..],
            ["[lockwatch] RESOLVED lockwatch/source/cache".to_string()]
        );
        e.apply(11, ok(vec![res("a:1", posture(false, true))])).unwrap();
        assert_eq!(subjects(&e)[3], "[lockwatch] RESOLVED cache/redis/a:1");
    }

    #[test]
    fn blindness_after_blind_after_cycles_and_it_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = engine(dir.path());
        e.blind_after = 3;
        e.apply(0, ok(vec![res("a:1", posture(false, true))])).unwrap();
        e.apply(1, failed()).unwrap();
        e.apply(2, failed()).unwrap();
        assert!(mails(&e).is_empty(), "two failures are not blindness yet");
        // A restart in the middle keeps the count.
        let mut e = engine(dir.path());
        e.blind_after = 3;
        e.apply(3, failed()).unwrap();
        let m = mails(&e);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].subject, "[lockwatch] HIGH lockwatch/source/cache");
        assert!(
            m[0].body_text.contains("lockwatch.source.blind") && m[0].body_text.contains("connection refused"),
            "{}",
            m[0].body_text
        );
        assert!(
            !m[0].body_text.contains("baseline accept"),
            "no baseline advice for blindness"
        );
        e.apply(4, failed()).unwrap();
        assert_eq!(mails(&e).len(), 1, "one alert, not one per cycle");
        e.apply(5, ok(vec![res("a:1", posture(false, true))])).unwrap();
        assert_eq!(subjects(&e)[1], "[lockwatch] RESOLVED lockwatch/source/cache");
    }

    #[test]
    fn absent_from_a_successful_listing_is_deleted_and_resolved() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = engine(dir.path());
        e.apply(0, ok(vec![res("a:1", posture(true, true))])).unwrap();
        e.apply(1, ok(vec![])).unwrap();
        let m = mails(&e);
        assert_eq!(m[1].subject, "[lockwatch] RESOLVED cache/redis/a:1");
        assert!(
            m[1].body_text.contains("no longer reported by source cache"),
            "{}",
            m[1].body_text
        );
        assert!(e.known["cache/redis/a:1"].deleted);
        // Coming back with the same posture is not a change of baseline, and alerts again.
        e.apply(2, ok(vec![res("a:1", posture(true, true))])).unwrap();
        assert!(!e.known["cache/redis/a:1"].deleted);
        assert_eq!(subjects(&e)[2], "[lockwatch] CRITICAL cache/redis/a:1 is exposed");
    }

    #[test]
    fn reminders_follow_remind_every() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = engine(dir.path());
        e.remind_every_secs = 100;
        let open = || ok(vec![res("a:1", posture(true, true))]);
        let counts: Vec<usize> = [0, 50, 99, 100, 150, 199, 200]
            .iter()
            .map(|t| {
                e.apply(*t, open()).unwrap();
                mails(&e).len()
            })
            .collect();
        assert_eq!(counts, vec![1, 1, 1, 2, 2, 2, 3]);
        assert!(subjects(&e)[1].contains("(reminder: still open)"), "{:?}", subjects(&e));
    }

    #[test]
    fn accepting_the_baseline_elsewhere_resolves_the_drift() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = engine(dir.path());
        e.apply(0, ok(vec![res("a:1", posture(false, true))])).unwrap();
        e.apply(1, ok(vec![res("a:1", posture(false, false))])).unwrap();
        assert_eq!(subjects(&e), vec!["[lockwatch] MEDIUM cache/redis/a:1".to_string()]);
        let mut cli_store = Store::open(dir.path()).unwrap();
        assert_eq!(cli_store.accept_baseline(Some("cache/redis/a:1"), 2).unwrap().len(), 1);
        e.apply(3, ok(vec![res("a:1", posture(false, false))])).unwrap();
        assert_eq!(subjects(&e)[1], "[lockwatch] RESOLVED cache/redis/a:1");
        assert!(e.open.get("cache/redis/a:1").is_none_or(|o| o.is_empty()));
    }

    #[test]
    fn suppression_lifecycle_posture_change_expiry_and_restart() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = engine(dir.path());
        let open = || ok(vec![res("a:1", posture(true, true))]);
        e.apply(0, ok(vec![res("a:1", posture(false, true))])).unwrap();
        e.apply(1, open()).unwrap();
        assert_eq!(mails(&e).len(), 1, "CRITICAL");
        // Granted (from another process, as the CLI does) for both open rules, until t=100.
        let mut cli = Store::open(dir.path()).unwrap();
        cli.add_suppression("cache/redis/a:1", "redis.auth.disabled", "test box", 2, 100)
            .unwrap();
        cli.add_suppression("cache/redis/a:1", alerting::DRIFT_RULE, "test box", 2, 100)
            .unwrap();
        e.remind_every_secs = 10;
        for t in 3..30 {
            e.apply(t, open()).unwrap();
        }
        assert_eq!(mails(&e).len(), 1, "no reminders while suppressed: {:?}", subjects(&e));
        // A restart keeps them.
        let mut e = engine(dir.path());
        e.remind_every_secs = 10;
        e.apply(31, open()).unwrap();
        assert_eq!(mails(&e).len(), 1);
        // The posture changes further: both alert again, saying why.
        e.apply(32, ok(vec![res("a:1", posture(true, false))])).unwrap();
        let m = mails(&e);
        assert_eq!(m.len(), 2, "{:?}", subjects(&e));
        assert_eq!(m[1].subject, "[lockwatch] CRITICAL cache/redis/a:1 is exposed");
        assert!(
            m[1].body_text.contains("no longer applies: the resource changed"),
            "{}",
            m[1].body_text
        );
        assert!(Store::open(dir.path()).unwrap().suppressions(false).unwrap().is_empty());

        // Expiry: granted again, then the clock passes it.
        let mut cli = Store::open(dir.path()).unwrap();
        cli.add_suppression("cache/redis/a:1", "redis.auth.disabled", "again", 33, 50)
            .unwrap();
        e.apply(40, ok(vec![res("a:1", posture(true, false))])).unwrap();
        let before = mails(&e).len();
        e.apply(50, ok(vec![res("a:1", posture(true, false))])).unwrap();
        let m = mails(&e);
        assert_eq!(m.len(), before + 1, "one email when it expires: {:?}", subjects(&e));
        assert!(
            m.last().unwrap().body_text.contains("expired at"),
            "{}",
            m.last().unwrap().body_text
        );
        let ended = Store::open(dir.path()).unwrap().suppressions(true).unwrap();
        assert_eq!(
            ended.iter().map(|s| s.end_reason.clone().unwrap()).collect::<Vec<_>>(),
            ["posture changed", "posture changed", "expired"]
        );
    }

    #[test]
    fn an_expired_suppression_of_a_gone_finding_still_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = engine(dir.path());
        e.apply(0, ok(vec![res("a:1", posture(false, true))])).unwrap();
        e.apply(1, ok(vec![res("a:1", posture(false, false))])).unwrap();
        assert_eq!(subjects(&e), ["[lockwatch] MEDIUM cache/redis/a:1".to_string()]);
        let mut cli = Store::open(dir.path()).unwrap();
        cli.add_suppression("cache/redis/a:1", alerting::DRIFT_RULE, "maintenance", 2, 10)
            .unwrap();
        // The drift is accepted as the new baseline: the finding goes, the posture stays.
        cli.accept_baseline(Some("cache/redis/a:1"), 3).unwrap();
        e.apply(4, ok(vec![res("a:1", posture(false, false))])).unwrap();
        e.apply(10, ok(vec![res("a:1", posture(false, false))])).unwrap();
        e.apply(11, ok(vec![res("a:1", posture(false, false))])).unwrap();
        let s = subjects(&e);
        assert_eq!(s.iter().filter(|x| x.contains("NOTICE")).count(), 1, "{s:?}");
        assert_eq!(
            s.last().unwrap(),
            "[lockwatch] NOTICE cache/redis/a:1: suppression expired",
            "{s:?}"
        );
    }

    #[test]
    fn below_min_severity_is_not_emailed() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = engine(dir.path());
        e.min_severity = Severity::High;
        e.apply(0, ok(vec![res("a:1", posture(false, true))])).unwrap();
        e.apply(1, ok(vec![res("a:1", posture(false, false))])).unwrap();
        assert!(mails(&e).is_empty(), "a medium drift is below min_severity high");
    }
}

#[cfg(test)]
mod partial_tests {
    use super::*;
    use crate::model::Resource;
    use crate::sources::PartFailure;
    use serde_json::json;

    #[test]
    fn a_failed_part_keeps_its_resources_while_the_rest_updates() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = Engine::new(Store::open(dir.path()).unwrap(), ["cache".to_string()].into()).unwrap();
        let p = json!({"unauthenticated_probe": "auth_required", "requirepass_set": true, "acl_nopass_users": [], "protected_mode": true,
                       "bind": ["127.0.0.1"], "listen_scope": "loopback", "tls_port": 0, "version": "7"});
        let r = |n: &str| Resource::new("cache", "redis", n, p.clone());
        let coll = |rs, failed| {
            vec![Collected {
                source: "cache".into(),
                elapsed: Duration::ZERO,
                result: Ok(Collection { resources: rs, failed }),
            }]
        };
        e.apply(0, coll(vec![r("east/a"), r("west/b")], vec![])).unwrap();
        let west_down = vec![PartFailure {
            scope: "cache/redis/west/".into(),
            message: "west: throttled".into(),
        }];
        let s = e.apply(1, coll(vec![r("east/a")], west_down)).unwrap();
        assert_eq!(s.failed_sources, 1);
        assert!(
            !e.known["cache/redis/west/b"].deleted,
            "absence inside a failed part proves nothing"
        );
        e.apply(2, coll(vec![r("east/a")], vec![])).unwrap();
        assert!(
            e.known["cache/redis/west/b"].deleted,
            "absence from a successful listing is a deletion"
        );
    }
}
