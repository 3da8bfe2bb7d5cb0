//! One cycle, top to bottom:
//!
//! ```text
//! collect ─▶ observe ─▶ evaluate ─▶ decide ─▶ commit ─▶ deliver ─▶ record
//!  (I/O)     (cache)     (pure)      (pure)   (SQLite)   (sinks)   (metrics)
//! ```
//!
//! Each stage is a function with plain inputs and outputs; [`Pipeline`] holds what carries from
//! one cycle to the next (the cached postures and the alert state) and runs them in order.

pub mod collect;
pub mod decide;
pub mod deliver;
pub mod evaluate;
pub mod observe;

use crate::alerting::OpenAlert;
use crate::config::{Settings, SourceEntry};
use crate::mail::{self, MailSettings};
use crate::metrics::{CycleStats, Metrics, SourceStats};
use crate::model::Severity;
use crate::model::{Known, Suppression};
use crate::store::{CycleWrites, Store};
use collect::Collected;
use decide::{Decision, Health, Policy, ResourceEval};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

pub struct Pipeline {
    store: Store,
    settings: Settings,
    mail: MailSettings,
    /// Sources in the config, sorted: resources of others are kept but not evaluated.
    configured: Vec<String>,
    known: HashMap<String, Known>,
    open: HashMap<String, Vec<OpenAlert>>,
    suppressions: HashMap<String, Vec<Suppression>>,
    health: HashMap<String, Health>,
    /// Sources whose status row exists in the store (written at least once).
    status_recorded: HashSet<String>,
    seen_version: i64,
    seen_epoch: i64,
    metrics: Option<Arc<Metrics>>,
    /// Woken after a commit that queued mail: the outbox worker delivers it.
    delivery: Option<Arc<tokio::sync::Notify>>,
    /// Who accepted a baseline since the last cycle, said in the mail that follows.
    accepted: HashMap<String, String>,
}

impl Pipeline {
    pub fn new(store: Store, settings: Settings, mail: MailSettings, configured: Vec<String>) -> anyhow::Result<Self> {
        let mut configured = configured;
        configured.sort();
        let mut p = Pipeline {
            store,
            settings,
            mail,
            configured,
            known: HashMap::new(),
            open: HashMap::new(),
            suppressions: HashMap::new(),
            health: HashMap::new(),
            status_recorded: HashSet::new(),
            seen_version: -1,
            seen_epoch: -1,
            metrics: None,
            delivery: None,
            accepted: HashMap::new(),
        };
        p.reload()?;
        Ok(p)
    }

    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    pub fn with_delivery(mut self, wake: Arc<tokio::sync::Notify>) -> Self {
        self.delivery = Some(wake);
        self
    }

    /// A reloaded config: new settings, mail settings and set of sources, from the next cycle.
    /// Resources of a source no longer configured are kept, not evaluated (as before).
    pub fn reconfigure(&mut self, settings: Settings, mail: MailSettings, configured: Vec<String>) {
        let mut configured = configured;
        configured.sort();
        self.settings = settings;
        self.mail = mail;
        self.configured = configured;
    }

    fn policy(&self) -> Policy {
        Policy {
            min_severity: self.settings.min_severity,
            remind_every_secs: self.settings.remind_every.as_secs() as i64,
            blind_after: self.settings.blind_after,
            flap_after: self.settings.flap_after,
        }
    }

    /// One whole cycle: collect from every source, then the rest. Collection is read-only and
    /// is abandoned when `stop` completes first (`Ok(None)`: nothing was committed); a commit
    /// that has begun always ends.
    pub async fn run_cycle(
        &mut self,
        sources: &[SourceEntry],
        stop: impl std::future::Future<Output = ()>,
    ) -> anyhow::Result<Option<CycleStats>> {
        let collected = tokio::select! {
            c = collect::collect_all(sources) => c,
            _ = stop => return Ok(None),
        };
        collect::log_failures(&collected);
        self.apply(chrono::Utc::now().timestamp(), collected).map(Some)
    }

    /// The stages after collection, on what was collected.
    pub fn apply(&mut self, now: i64, mut collected: Vec<Collected>) -> anyhow::Result<CycleStats> {
        self.catch_up_with_other_writers()?;

        // observe: what changed since the last cycle, and what vanished.
        let observed = observe::observe(&mut self.known, &mut collected, now);

        // evaluate: findings and drift of every current resource (pure).
        let evaluated = evaluate_known(&self.known, &observed.deleted, &observed.previous, &self.configured);

        // The baseline ratchets up where a resource got strictly stronger.
        let raised = decide::ratchet(&evaluated);
        for id in &raised {
            if let Some(k) = self.known.get_mut(id) {
                k.baseline = k.document.clone();
            }
        }

        // decide: alerts, suppressions, blindness (pure).
        let policy = self.policy();
        let health = self.next_health(&collected);
        let recent = self.store.recent_openings(now - 3600)?;
        let mut decisions = decide::decide_resources(&evaluated, &self.open, &self.suppressions, &recent, &policy, now);
        for d in &mut decisions.resources {
            if let Some(note) = self.accepted.remove(&d.resource_id) {
                d.notes.insert(0, note);
            }
        }
        self.accepted.clear();
        let blindness = decide::decide_blindness(&self.configured, &health, &self.open, &policy, now);

        // commit: snapshots, alert state, source status and emails in one transaction.
        let detected_at = chrono::DateTime::from_timestamp(now, 0).unwrap_or_else(chrono::Utc::now);
        let mut writes = CycleWrites {
            snapshots: observed.snapshots,
            deleted: observed.deleted,
            raised,
            resolved: decisions.resolved_by_suppression.clone(),
            ended_suppressions: decisions.ended_suppressions.clone(),
            ..Default::default()
        };
        for d in &decisions.resources {
            if let (Some(keys), Some(k)) = (&d.announced, self.known.get_mut(&d.resource_id)) {
                k.announced = keys.clone();
            }
        }
        for d in decisions.resources.iter().chain(&blindness) {
            record_alerts(&mut writes, d);
            if let Some(m) = mail::for_decision(d, &self.mail, detected_at) {
                tracing::info!(resource = %m.resource_id, subject = %m.subject, "alert queued");
                writes.mails.push(m);
            }
        }
        writes
            .mails
            .extend(decisions.expiry_notices.iter().map(|n| mail::for_expiry(n, &self.mail)));
        writes.source_results = self.status_changes(&collected, &health);
        let stats = self.stats(now, &collected, &evaluated, &decisions, &health, &writes);
        if let Err(e) = self.store.apply(now, &writes) {
            // Nothing was committed: forget what we assumed, so the next cycle retries all of it.
            self.reload()?;
            return Err(e.context("committing the cycle to the state file"));
        }
        self.status_recorded
            .extend(writes.source_results.iter().map(|(s, _)| s.clone()));
        self.health = health;
        // Our commit changed alerts. `seen_version` is left as it was at the start of the cycle:
        // a commit by another connection during the cycle (a `baseline accept`) is still seen
        // at the next check instead of being taken for our own.
        self.load_alert_state()?;

        // deliver: the outbox worker sends what was queued, through the sinks.
        if !writes.mails.is_empty()
            && let Some(wake) = &self.delivery
        {
            wake.notify_one();
        }

        // record: metrics, in one place.
        let mut stats = stats;
        stats.alerts_open_by_severity = Severity::ALL
            .iter()
            .map(|s| {
                (
                    *s,
                    self.open.values().flatten().filter(|o| o.severity == *s).count() as i64,
                )
            })
            .collect();
        if let Some(m) = &self.metrics {
            m.record_cycle(&stats);
        }
        Ok(stats)
    }

    /// Another connection committed since the last check (our own commits do not move
    /// `data_version`). `baseline accept` changes baselines: reload everything. Anything else
    /// (the outbox worker's deliveries, `suppress`) leaves the cached documents valid: reload
    /// only the small tables, not every posture of a large fleet.
    fn catch_up_with_other_writers(&mut self) -> anyhow::Result<()> {
        let version = self.store.data_version()?;
        if version != self.seen_version {
            if self.store.accepted_epoch()? != self.seen_epoch {
                for (id, at, actor, reason) in self.store.accepted_since(self.seen_epoch)? {
                    let when = chrono::DateTime::from_timestamp(at, 0)
                        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                        .unwrap_or_default();
                    self.accepted.insert(
                        id,
                        format!(
                            "The current posture was accepted as the baseline by {} at {when}{}.",
                            actor.as_deref().unwrap_or("an operator"),
                            reason.map(|r| format!(" (\"{r}\")")).unwrap_or_default()
                        ),
                    );
                }
                self.reload()?;
            } else {
                self.load_alert_state()?;
                self.seen_version = version;
            }
        }
        Ok(())
    }

    fn reload(&mut self) -> anyhow::Result<()> {
        self.known = self.store.load_known()?;
        self.health = self
            .store
            .source_failures()?
            .into_iter()
            .map(|(s, (n, e))| {
                (
                    s,
                    Health {
                        consecutive_failures: n,
                        last_error: e,
                    },
                )
            })
            .collect();
        self.status_recorded = self.health.keys().cloned().collect();
        self.load_alert_state()?;
        self.seen_version = self.store.data_version()?;
        self.seen_epoch = self.store.accepted_epoch()?;
        Ok(())
    }

    /// The small tables other writers touch without changing any posture or baseline.
    fn load_alert_state(&mut self) -> anyhow::Result<()> {
        self.open = self.store.load_open_alerts()?;
        self.suppressions.clear();
        for s in self.store.suppressions(false)? {
            self.suppressions.entry(s.resource_id.clone()).or_default().push(s);
        }
        Ok(())
    }

    /// Each collected source's health after this cycle; the others keep theirs.
    fn next_health(&self, collected: &[Collected]) -> HashMap<String, Health> {
        let mut health = self.health.clone();
        for c in collected {
            let prev = health.get(&c.source).cloned().unwrap_or_default();
            health.insert(c.source.clone(), decide::next_health(&prev, c.failure().as_deref()));
        }
        health
    }

    /// A source's status row is written only when its health changes, so that an unchanged
    /// cycle writes nothing at all (timestamps live in the metrics).
    fn status_changes(
        &self,
        collected: &[Collected],
        health: &HashMap<String, Health>,
    ) -> Vec<(String, Option<String>)> {
        collected
            .iter()
            .filter(|c| {
                health.get(&c.source) != self.health.get(&c.source) || !self.status_recorded.contains(&c.source)
            })
            .map(|c| (c.source.clone(), c.failure()))
            .collect()
    }

    fn stats(
        &self,
        now: i64,
        collected: &[Collected],
        evaluated: &[ResourceEval],
        decisions: &decide::Decisions,
        health: &HashMap<String, Health>,
        writes: &CycleWrites,
    ) -> CycleStats {
        let mut stats = CycleStats {
            at: now,
            changed: writes.snapshots.len(),
            mails: writes.mails.len(),
            failed_sources: collected.iter().filter(|c| c.failure().is_some()).count(),
            suppressed_by_severity: decisions.suppressed_by_severity.clone(),
            drift_events: decisions.drift_events.clone(),
            ..Default::default()
        };
        let mut names: Vec<&String> = health.keys().collect();
        names.sort();
        for name in names {
            let h = &health[name];
            let c = collected.iter().find(|c| &c.source == name);
            stats.sources.push(SourceStats {
                name: name.clone(),
                elapsed: c.map(|c| c.elapsed).unwrap_or_default(),
                succeeded: c.map(|c| c.failure().is_none()),
                consecutive_failures: h.consecutive_failures,
                blind: h.consecutive_failures >= self.settings.blind_after,
            });
        }
        for r in evaluated.iter().filter(|r| !r.gone) {
            *stats.resources.entry((r.source.clone(), r.kind.clone())).or_default() += 1;
            stats.exposed.push((r.source.clone(), r.id.clone(), r.eval.exposed));
            for f in &r.eval.findings {
                *stats.findings_by_severity.entry(f.severity).or_default() += 1;
            }
        }
        stats
    }

    #[cfg(test)]
    pub fn store(&self) -> &Store {
        &self.store
    }

    #[cfg(test)]
    pub fn known(&self) -> &HashMap<String, Known> {
        &self.known
    }

    #[cfg(test)]
    pub fn open_alerts(&self) -> &HashMap<String, Vec<OpenAlert>> {
        &self.open
    }

    /// Retention: prune what ended more than `retention` before `now`, in small transactions
    /// (at most PRUNE_STEPS of PRUNE_BATCH rows per table per call), so a store that fell far
    /// behind catches up over several cycles without ever stalling one.
    pub fn prune(&mut self, now: i64) -> anyhow::Result<crate::store::Pruned> {
        const PRUNE_BATCH: usize = 500;
        const PRUNE_STEPS: usize = 20;
        let cutoff = now - self.settings.retention.as_secs() as i64;
        let mut total = crate::store::Pruned::default();
        for _ in 0..PRUNE_STEPS {
            let step = self.store.prune_step(cutoff, PRUNE_BATCH)?;
            total.add(step);
            if step.total() == 0 {
                break;
            }
        }
        Ok(total)
    }

    #[cfg(test)]
    pub fn settings_mut(&mut self) -> &mut Settings {
        &mut self.settings
    }
}

/// Evaluate every current resource of a configured source, in id order; a resource that
/// vanished this cycle is evaluated as gone (so that its alerts resolve). Pure.
pub fn evaluate_known(
    known: &HashMap<String, Known>,
    vanished: &[String],
    previous: &HashMap<String, crate::model::Document>,
    configured: &[String],
) -> Vec<ResourceEval> {
    let mut ids: Vec<&String> = known.keys().collect();
    ids.sort();
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let k = &known[id];
        let gone = vanished.binary_search(id).is_ok();
        if (k.deleted && !gone) || configured.binary_search(&k.source).is_err() {
            continue;
        }
        let mut weakened_now = Vec::new();
        let eval = if gone {
            evaluate::Evaluation::gone()
        } else {
            // Parsed here, one resource at a time; the cache keeps text.
            let document = k.document.value();
            let baseline = (!k.baseline.same(&k.document)).then(|| k.baseline.value());
            let e = evaluate::evaluate(&k.kind, baseline.as_ref().unwrap_or(&document), &document);
            if let Some(prev) = previous.get(id) {
                let prev = prev.value();
                let delta = evaluate::evaluate(&k.kind, &prev, &document);
                weakened_now = delta.changes.into_iter().filter(|c| c.severity.is_some()).collect();
            }
            e
        };
        out.push(ResourceEval {
            id: id.clone(),
            source: k.source.clone(),
            kind: k.kind.clone(),
            hash: k.hash.clone(),
            gone,
            eval,
            weakened_now,
            announced: k.announced.clone(),
        });
    }
    out
}

/// A decision's alert-state changes, as rows to write.
fn record_alerts(w: &mut CycleWrites, d: &Decision) {
    let id = &d.resource_id;
    w.opened.extend(d.plan.opened.iter().map(|c| (id.clone(), c.clone())));
    w.updated.extend(
        d.plan
            .escalated
            .iter()
            .chain(&d.plan.updated)
            .map(|c| (id.clone(), c.clone())),
    );
    w.resolved
        .extend(d.plan.resolved.iter().map(|o| (id.clone(), o.rule.clone())));
    if matches!(d.plan.notice, Some(n) if n != crate::alerting::Notice::Resolved) {
        w.notified.push(id.clone());
    }
    w.flapping
        .extend(d.flapping.iter().map(|rule| (id.clone(), rule.clone())));
    w.clearing
        .extend(d.clearing.iter().map(|(rule, n)| (id.clone(), rule.clone(), *n)));
    if let Some(keys) = &d.announced {
        w.announced.push((id.clone(), keys.clone()));
    }
}

#[cfg(test)]
mod tests;
