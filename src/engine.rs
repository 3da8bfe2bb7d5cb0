//! One cycle: collect every source concurrently, store what changed, evaluate every resource,
//! plan alerts, and commit snapshots, alert state and emails in one transaction.

use crate::alerting::{self, Notice};
use crate::config::{Email, SourceEntry};
use crate::evaluate::{self, Evaluation};
use crate::mail::{self, MailContext};
use crate::metrics::Metrics;
use crate::model::{Resource, Severity, document_hash};
use crate::store::{CycleWrites, Known, NewMail, Store};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What one source returned this cycle.
pub struct Collected {
    pub source: String,
    pub elapsed: Duration,
    pub result: Result<Vec<Resource>, String>,
}

/// Run every source at once, each bounded by its own timeout. A failure stays with its source.
pub async fn collect_all(sources: &[SourceEntry]) -> Vec<Collected> {
    futures::future::join_all(sources.iter().map(|s| async move {
        let t0 = Instant::now();
        let result = match tokio::time::timeout(s.timeout, s.source.collect()).await {
            Ok(Ok(resources)) => Ok(resources),
            Ok(Err(e)) => Err(format!("{e:#}")),
            Err(_) => Err(format!(
                "no answer from {} within {}s (timeout)",
                s.source.target(),
                s.timeout.as_secs_f64()
            )),
        };
        if let Err(e) = &result {
            tracing::warn!(source = %s.name, error = %e, "source failed; its resources keep their last known state");
        }
        Collected {
            source: s.name.clone(),
            elapsed: t0.elapsed(),
            result,
        }
    }))
    .await
}

pub struct Engine {
    store: Store,
    known: HashMap<String, Known>,
    open: HashMap<String, Vec<alerting::OpenAlert>>,
    seen_version: i64,
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
            known: HashMap::new(),
            open: HashMap::new(),
            seen_version: -1,
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
        self.open = self.store.load_open_alerts()?;
        self.seen_version = self.store.data_version()?;
        Ok(())
    }

    pub fn apply(&mut self, now: i64, collected: Vec<Collected>) -> anyhow::Result<CycleSummary> {
        // Another process (`baseline accept`) committed: our cache may be stale.
        if self.store.data_version()? != self.seen_version {
            self.reload()?;
        }
        let mut w = CycleWrites::default();
        let mut gone: Vec<String> = Vec::new();
        let mut summary = CycleSummary::default();
        for c in &collected {
            if let Some(m) = &self.metrics {
                m.scan_duration
                    .with_label_values(&[&c.source])
                    .observe(c.elapsed.as_secs_f64());
            }
            match &c.result {
                Err(e) => {
                    summary.failed_sources += 1;
                    w.source_results.push((c.source.clone(), Some(e.clone())));
                }
                Ok(resources) => {
                    w.source_results.push((c.source.clone(), None));
                    let mut present = HashSet::new();
                    for r in resources {
                        present.insert(r.id.clone());
                        let doc = r.canonical_document();
                        let hash = document_hash(&doc);
                        let entry = self.known.get_mut(&r.id);
                        match entry {
                            Some(k) if k.hash == hash && !k.deleted => continue,
                            Some(k) => {
                                k.hash = hash.clone();
                                k.document = r.posture.clone();
                                k.deleted = false;
                            }
                            None => {
                                self.known.insert(
                                    r.id.clone(),
                                    Known {
                                        source: r.source.clone(),
                                        kind: r.kind.to_string(),
                                        hash: hash.clone(),
                                        document: r.posture.clone(),
                                        baseline: r.posture.clone(),
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
                        if k.source == c.source && !k.deleted && !present.contains(id) {
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
            let eval = if is_gone {
                Evaluation {
                    findings: vec![],
                    changes: vec![],
                    exposed: false,
                    drift: None,
                }
            } else {
                evaluate::evaluate(&k.kind, &k.baseline, &k.document)
            };
            if !is_gone {
                *resource_counts.entry((k.source.clone(), k.kind.clone())).or_default() += 1;
                exposed_rows.push((k.source.clone(), id.clone(), eval.exposed));
                for f in &eval.findings {
                    *findings_by_sev.entry(f.severity).or_default() += 1;
                }
            }
            let conds = alerting::conditions(&eval, self.min_severity);
            let plan = alerting::plan(&conds, was_open, now, self.remind_every_secs);
            if let Some(sev) = plan
                .opened
                .iter()
                .chain(&plan.escalated)
                .find(|c| c.rule == alerting::DRIFT_RULE)
                .map(|c| c.severity)
            {
                drift_events.push((k.source.clone(), sev));
            }
            w.opened.extend(plan.opened.iter().map(|c| (id.clone(), c.clone())));
            w.updated.extend(
                plan.escalated
                    .iter()
                    .chain(&plan.updated)
                    .map(|c| (id.clone(), c.clone())),
            );
            w.resolved
                .extend(plan.resolved.iter().map(|o| (id.clone(), o.rule.clone())));
            let Some(notice) = plan.notice else { continue };
            if notice != Notice::Resolved {
                w.notified.push(id.clone());
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
                kind: &k.kind,
                notice,
                detected_at,
                new: &new,
                still_open: &still_open,
                resolved: &plan.resolved,
                changes: &eval.changes,
                exposed: eval.exposed,
                config_path: &self.config_path,
            });
            if is_gone {
                rendered.text = format!(
                    "{id} is no longer reported by source {}: the source answered and this resource was not in it (deleted or renamed).\n\n{}",
                    k.source, rendered.text
                );
            }
            tracing::info!(resource = %id, subject = %rendered.subject, "alert queued");
            w.mails.push(NewMail {
                resource_id: id.clone(),
                kind: match notice {
                    Notice::Alert(_) => "alert",
                    Notice::Reminder(_) => "reminder",
                    Notice::Resolved => "resolved",
                }
                .into(),
                subject: rendered.subject,
                body_text: rendered.text,
                body_html: rendered.html,
                message_id: mail::new_message_id(self.email.as_ref()),
            });
        }
        summary.mails = w.mails.len();

        if let Err(e) = self.store.apply(now, &w) {
            // Nothing was committed: forget what we assumed, so the next cycle retries all of it.
            self.reload()?;
            return Err(e.context("committing the cycle to the state file"));
        }
        self.open = self.store.load_open_alerts()?;
        self.seen_version = self.store.data_version()?;

        if let Some(m) = &self.metrics {
            for c in &collected {
                match &c.result {
                    Ok(_) => m.last_success.with_label_values(&[&c.source]).set(now as f64),
                    Err(_) => m.scan_errors.with_label_values(&[&c.source]).inc(),
                }
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
