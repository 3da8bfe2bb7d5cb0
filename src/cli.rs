//! The one-shot commands: scan, baseline, history, test-alert, outbox.

use crate::Format;
use crate::config::{Config, Runtime};
use crate::model::Severity;
use crate::pipeline::evaluate::{self, show_value};
use crate::store::Store;
use anyhow::bail;
use serde_json::json;
use std::process::ExitCode;

fn ts(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| secs.to_string())
}

fn open_existing(config: &Config) -> anyhow::Result<Store> {
    let db = config.state_dir.join(crate::store::DB_FILE);
    if !db.exists() {
        bail!(
            "no state file at {} yet: start `lockwatch run` with this config first (or pass the daemon's --config)",
            db.display()
        );
    }
    Store::open(&config.state_dir)
}

pub async fn scan(config: &Config, runtime: &Runtime, format: Format, fail_on: Severity) -> anyhow::Result<ExitCode> {
    use std::io::Write;
    let collected = crate::pipeline::collect::collect_all(&runtime.sources).await;
    let mut errors = Vec::new();
    for c in &collected {
        match &c.result {
            Err(message) => errors.push(json!({"source": c.source, "message": message})),
            Ok(coll) => {
                for f in &coll.failed {
                    errors.push(json!({"source": c.source, "message": f.message}));
                }
            }
        }
    }
    // Resources are written as they are assessed, not gathered first: a fleet of ten thousand
    // would otherwise be held twice (postures and their report) before the first byte is out.
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if format == Format::Json {
        write!(out, "{{\"errors\":{},\"resources\":[", serde_json::to_string(&errors)?)?;
    }
    let mut worst: Option<Severity> = None;
    let mut count = 0usize;
    for coll in collected.into_iter().filter_map(|c| c.result.ok()) {
        for r in coll.resources {
            let posture = r.posture.value();
            let mut e = evaluate::evaluate(r.kind, &posture, &posture);
            e.findings
                .sort_by(|a, b| b.severity.cmp(&a.severity).then(a.rule.cmp(&b.rule)));
            worst = worst.max(e.findings.iter().map(|f| f.severity).max());
            match format {
                Format::Json => {
                    let item = json!({
                        "id": r.id, "source": r.source, "kind": r.kind, "exposed": e.exposed,
                        "findings": e.findings.iter().map(|f| json!({"rule": f.rule, "severity": f.severity, "message": f.message})).collect::<Vec<_>>(),
                    });
                    write!(out, "{}{item}", if count == 0 { "" } else { "," })?;
                }
                Format::Text => {
                    writeln!(out, "{}{}", r.id, if e.exposed { "  EXPOSED" } else { "" })?;
                    if e.findings.is_empty() {
                        writeln!(out, "  no findings")?;
                    }
                    for f in &e.findings {
                        writeln!(out, "  [{}] {}: {}", f.severity, f.rule, f.message)?;
                    }
                }
            }
            count += 1;
        }
    }
    match format {
        Format::Json => writeln!(out, "]}}")?,
        Format::Text => {
            for e in &errors {
                writeln!(
                    out,
                    "ERROR {}: {}",
                    e["source"].as_str().unwrap_or_default(),
                    e["message"].as_str().unwrap_or_default()
                )?;
            }
            if count == 0 && errors.is_empty() {
                writeln!(out, "no sources configured in {}", config.path.display())?;
            }
        }
    }
    out.flush()?;
    Ok(if worst.is_some_and(|w| w >= fail_on) {
        ExitCode::from(1)
    } else if !errors.is_empty() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

pub fn baseline_show(config: &Config, resource: Option<&str>, format: Format) -> anyhow::Result<ExitCode> {
    let store = open_existing(config)?;
    let known = store.load_known()?;
    let mut ids: Vec<&String> = known
        .keys()
        .filter(|id| resource.is_none_or(|r| r == id.as_str()))
        .collect();
    ids.sort();
    if let Some(r) = resource
        && ids.is_empty()
    {
        bail!(
            "no resource {r:?} in {} (see `lockwatch baseline show` for the ids)",
            store.path.display()
        );
    }
    let mut out = Vec::new();
    for id in ids {
        let k = &known[id];
        let e = evaluate::evaluate(&k.kind, &k.baseline.value(), &k.document.value());
        let since = store.baseline_of(id)?.map(|(_, at)| at).unwrap_or_default();
        out.push((id, k, e, since));
    }
    match format {
        Format::Json => {
            let list: Vec<_> = out
                .iter()
                .map(|(id, k, e, since)| json!({"id": id, "kind": k.kind, "source": k.source, "baseline_observed_at": ts(*since), "deleted": k.deleted, "baseline": k.baseline.value(), "changes_since_baseline": e.changes}))
                .collect();
            println!("{}", serde_json::to_string_pretty(&list)?);
        }
        Format::Text => {
            for (id, k, e, since) in &out {
                let state = if k.deleted { " (deleted)" } else { "" };
                println!(
                    "{id}{state}: baseline from {}, {} change(s) since",
                    ts(*since),
                    e.changes.len()
                );
                for c in &e.changes {
                    println!(
                        "  {} {}: {} → {}",
                        c.class.as_str(),
                        c.path,
                        show_value(&c.before),
                        show_value(&c.after)
                    );
                }
                if resource.is_some() {
                    println!("{}", serde_json::to_string_pretty(&k.baseline.value())?);
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The local user who runs a command, for the record (`sudo` keeps the caller's name).
pub fn local_user() -> String {
    ["SUDO_USER", "USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        // SAFETY: getuid has no preconditions.
        .unwrap_or_else(|| format!("uid {}", unsafe { libc::getuid() }))
}

fn print_changes(out: &mut impl std::io::Write, changes: &[crate::model::Change]) -> std::io::Result<()> {
    for c in changes {
        writeln!(
            out,
            "  {} {}: {} → {}",
            c.class.as_str(),
            c.path,
            show_value(&c.before),
            show_value(&c.after)
        )?;
    }
    Ok(())
}

pub fn baseline_accept(
    config: &Config,
    resource: Option<&str>,
    yes: bool,
    snapshot: Option<&str>,
    reason: Option<&str>,
) -> anyhow::Result<ExitCode> {
    use std::io::{BufRead, IsTerminal, Write};
    let mut store = open_existing(config)?;
    if let Some(r) = resource
        && !store.resource_exists(r)?
    {
        bail!(
            "no resource {r:?} in {} (see `lockwatch baseline show` for the ids)",
            store.path.display()
        );
    }
    let shown = store.acceptable(resource)?;
    let known = store.load_known()?;
    let mut out = std::io::stdout().lock();
    if let (Some(pin), Some(id)) = (snapshot, resource) {
        let snaps = store.snapshots(id)?;
        let Some(pinned) = snaps.iter().find(|s| !pin.is_empty() && s.hash.starts_with(pin)) else {
            bail!("{id} has no snapshot {pin:?} (see `lockwatch history {id}` for its snapshots)");
        };
        let current = snaps.last().map(|s| s.hash.clone()).unwrap_or_default();
        if pinned.hash != current {
            let kind = known.get(id).map(|k| k.kind.clone()).unwrap_or_default();
            let newer = evaluate::evaluate(&kind, &pinned.document, &known[id].document.value());
            writeln!(
                out,
                "{id} changed since snapshot {}; the changes after it:",
                &pinned.hash[..12.min(pinned.hash.len())]
            )?;
            print_changes(&mut out, &newer.changes)?;
            bail!(
                "refused: the current posture is not the one you pinned; look at it again (lockwatch history {id}) before accepting it"
            );
        }
    }
    if shown.is_empty() {
        writeln!(
            out,
            "nothing to accept: the baseline already equals the current posture"
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    for (id, hash) in &shown {
        let k = &known[id];
        let e = evaluate::evaluate(&k.kind, &k.baseline.value(), &k.document.value());
        writeln!(
            out,
            "{id}: accept snapshot {} as the baseline; it changes:",
            &hash[..12.min(hash.len())]
        )?;
        print_changes(&mut out, &e.changes)?;
        if e.changes.iter().any(|c| c.class == crate::model::ChangeClass::Weakened) {
            writeln!(out, "  (this lowers the protection lockwatch holds {id} to)")?;
        }
    }
    out.flush()?;
    if !yes {
        if !std::io::stdin().is_terminal() {
            bail!("not on a terminal: read the changes above, then run again with --yes to accept them");
        }
        write!(
            out,
            "Accept {} as shown? [y/N] ",
            if shown.len() == 1 { "this" } else { "these" }
        )?;
        out.flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
            writeln!(out, "nothing accepted")?;
            return Ok(ExitCode::from(1));
        }
    }
    let who = local_user();
    match store.accept_baseline(&shown, chrono::Utc::now().timestamp(), &who, reason)? {
        Ok(ids) => {
            for id in ids {
                writeln!(
                    out,
                    "accepted the posture shown as the baseline of {id} (by {who}); the daemon resolves its drift alert on the next cycle"
                )?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(moved) => bail!(
            "refused: {} changed after it was shown; nothing was accepted. Run the command again to see the new posture",
            moved.join(", ")
        ),
    }
}

/// A resource the store knows, or an error that lists the ones it does.
fn known_resource<'a>(
    store: &Store,
    known: &'a std::collections::HashMap<String, crate::model::Known>,
    resource: &str,
) -> anyhow::Result<&'a crate::model::Known> {
    match known.get(resource) {
        Some(k) => Ok(k),
        None => bail!(
            "no resource {resource:?} in {} (known: {})",
            store.path.display(),
            store.resource_ids()?.join(", ")
        ),
    }
}

pub fn history(config: &Config, resource: &str, format: Format) -> anyhow::Result<ExitCode> {
    let store = open_existing(config)?;
    let known = store.load_known()?;
    let k = known_resource(&store, &known, resource)?;
    let snaps = store.snapshots(resource)?;
    // Where the record starts, when retention has pruned the beginning of it.
    let first_seen = store.first_seen(resource)?;
    let record_start = match (store.pruned_before()?, snaps.first(), first_seen) {
        (Some(_), Some(first), Some(seen)) if first.observed_at > seen => Some(first.observed_at),
        _ => None,
    };
    let baselines = store.baseline_events(resource)?;
    let alerts = store.alert_history(resource)?;
    let reverts = store.reverts(resource)?;
    let mut entries = Vec::new();
    let mut prev: Option<&serde_json::Value> = None;
    for s in &snaps {
        let changes = prev
            .map(|p| evaluate::evaluate(&k.kind, p, &s.document).changes)
            .unwrap_or_default();
        let events: Vec<&str> = baselines
            .iter()
            .filter(|b| b.snapshot_id == s.id)
            .map(|b| b.how.as_str())
            .collect();
        entries.push((s, changes, events));
        prev = Some(&s.document);
    }
    match format {
        Format::Json => {
            let list: Vec<_> = entries
                .iter()
                .map(|(s, changes, _)| json!({"observed_at": ts(s.observed_at), "hash": s.hash, "changes": changes, "document": s.document}))
                .collect();
            let b: Vec<_> = baselines.iter().map(|e| json!({"snapshot_hash": snaps.iter().find(|s| s.id == e.snapshot_id).map(|s| s.hash.clone()), "at": ts(e.at), "how": e.how, "by": e.actor, "reason": e.reason})).collect();
            let a: Vec<_> = alerts.iter().map(|(rule, sev, o, r)| json!({"rule": rule, "severity": sev, "opened_at": ts(*o), "resolved_at": r.map(ts)})).collect();
            let rv: Vec<_> = reverts
                .iter()
                .map(|(at, actor, rule, calls)| json!({"at": ts(*at), "by": actor, "rule": rule, "calls": calls}))
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &json!({"resource": resource, "kind": k.kind, "source": k.source, "record_starts": record_start.map(ts), "snapshots": list, "baselines": b, "alerts": a, "reverts": rv})
                )?
            );
        }
        Format::Text => {
            println!("{resource} (kind {}, source {})", k.kind, k.source);
            if let Some(start) = record_start {
                println!(
                    "record starts {}: older history was pruned (retention {}, [daemon] retention)",
                    ts(start),
                    crate::config::show_duration(config.settings.retention)
                );
            }
            for (s, changes, _) in &entries {
                println!("{}  snapshot {}", ts(s.observed_at), &s.hash[..12.min(s.hash.len())]);
                if prev_is_first(&snaps, s.id) && record_start.is_none() {
                    println!("  first seen");
                }
                for c in changes {
                    println!(
                        "  {} {}: {} → {}",
                        c.class.as_str(),
                        c.path,
                        show_value(&c.before),
                        show_value(&c.after)
                    );
                }
            }
            for e in &baselines {
                let hash = snaps
                    .iter()
                    .find(|s| s.id == e.snapshot_id)
                    .map(|s| s.hash[..12.min(s.hash.len())].to_string())
                    .unwrap_or_default();
                let how = match e.how.as_str() {
                    "raised" => "raised: the resource became strictly stronger".to_string(),
                    how => how.to_string(),
                };
                let by = e.actor.as_ref().map(|a| format!(" by {a}")).unwrap_or_default();
                let why = e.reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default();
                println!("{}  baseline set ({how}{by}{why}) to snapshot {hash}", ts(e.at));
            }
            for (at, actor, rule, calls) in &reverts {
                let rule = rule.as_ref().map(|r| format!(" for {r}")).unwrap_or_default();
                println!("{}  reverted to the baseline by {actor}{rule}:", ts(*at));
                for c in calls {
                    println!("    {c}");
                }
            }
            for (rule, sev, opened, resolved) in &alerts {
                println!(
                    "{}  alert {rule} [{sev}] opened{}",
                    ts(*opened),
                    resolved
                        .map(|r| format!(", resolved {}", ts(r)))
                        .unwrap_or_else(|| ", still open".into())
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn prev_is_first(snaps: &[crate::store::SnapshotRow], id: i64) -> bool {
    snaps.first().is_some_and(|f| f.id == id)
}

pub async fn test_alert(runtime: &Runtime) -> anyhow::Result<ExitCode> {
    let sink = crate::sinks::from_config(runtime.email.as_ref())?;
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "this host".into());
    let now = chrono::Utc::now().timestamp();
    let settings = crate::mail::MailSettings {
        message_domain: runtime
            .email
            .as_ref()
            .map(|e| e.from.email.domain().to_string())
            .unwrap_or_else(|| crate::mail::MailSettings::default().message_domain),
        ..Default::default()
    };
    let m = crate::mail::test_alert(&host, now, &settings);
    let message = crate::sinks::Message {
        resource_id: m.resource_id,
        kind: m.kind,
        severity: m.severity,
        rules: m.rules,
        subject: m.subject,
        text: m.text,
        html: m.html,
        message_id: m.message_id,
        in_reply_to: None,
        created_at: now,
    };
    match sink.send(&message, &[]).await {
        Ok(d) if d.accepted.is_empty() => bail!(
            "test alert not delivered: {}",
            d.refused
                .iter()
                .chain(&d.deferred)
                .map(|(a, w)| format!("{a}: {w}"))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        Ok(d) => {
            for (addr, why) in d.refused.iter().chain(&d.deferred) {
                eprintln!("warning: {addr} did not take the test alert: {why}");
            }
            match &runtime.email {
                Some(_) => {
                    println!(
                        "test alert accepted by {} for {}",
                        sink.describe(),
                        d.accepted.join(", ")
                    );
                    Ok(ExitCode::SUCCESS)
                }
                None => {
                    println!(
                        "no [alerts.email] configured: the test alert went to lockwatch's log only, so nobody was paged. Configure [alerts.email] to send alerts."
                    );
                    Ok(ExitCode::from(1))
                }
            }
        }
        Err(e) => bail!(
            "test alert not delivered: {} ({})",
            e.message,
            if e.permanent {
                "refused permanently: check from/to and the server's relay rules"
            } else {
                "temporary: check the server is up and reachable"
            }
        ),
    }
}

pub fn outbox(config: &Config, all: bool) -> anyhow::Result<ExitCode> {
    let store = open_existing(config)?;
    let rows = store.outbox_listing(all)?;
    if rows.is_empty() {
        println!("outbox empty: every alert was delivered");
    }
    for r in rows {
        let when = match (r.state.as_str(), r.sent_at) {
            ("sent", Some(at)) => format!("sent {}", ts(at)),
            ("pending", _) => format!("next try {}", ts(r.next_attempt_at)),
            _ => "not retried (permanent failure)".into(),
        };
        println!(
            "#{} {} {} {} attempts={} {when}\n    {}{}{}",
            r.id,
            ts(r.created_at),
            r.kind,
            r.state,
            r.attempts,
            r.subject,
            r.last_error
                .map(|e| format!("\n    last error: {e}"))
                .unwrap_or_default(),
            r.refused
                .iter()
                .map(|(a, why)| format!("\n    refused by {a}: {why}"))
                .collect::<String>()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// When a suppression asked for with `--expires DATE` or `--for DURATION` ends. Pure.
pub fn suppression_end(
    now: i64,
    expires: Option<&str>,
    for_: Option<&str>,
    max: std::time::Duration,
) -> Result<i64, String> {
    let end = match (expires, for_) {
        (Some(date), None) => {
            let day = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
                .map_err(|e| format!("--expires {date:?}: {e}; write a date such as 2026-12-31"))?;
            day.and_hms_opt(23, 59, 59).expect("valid time").and_utc().timestamp()
        }
        (None, Some(d)) => {
            let dur = humantime::parse_duration(d).map_err(|e| format!("--for {d:?}: {e}; write e.g. 14d or 12h"))?;
            now + dur.as_secs() as i64
        }
        _ => return Err("give either --expires DATE or --for DURATION".into()),
    };
    if end <= now {
        return Err(format!("that suppression would already be over ({})", ts(end)));
    }
    if end - now > max.as_secs() as i64 {
        return Err(format!(
            "suppressions last at most {} ([alerts] max_suppression); ask for less, and renew it if it is still deliberate then",
            crate::config::show_duration(max)
        ));
    }
    Ok(end)
}

pub fn suppress(
    config: &Config,
    resource: &str,
    rule: &str,
    reason: &str,
    expires: Option<&str>,
    for_: Option<&str>,
) -> anyhow::Result<ExitCode> {
    if reason.trim().is_empty() {
        bail!("--reason is empty: say why this is deliberate, for whoever reads it next");
    }
    let now = chrono::Utc::now().timestamp();
    let end = suppression_end(now, expires, for_, config.settings.max_suppression).map_err(anyhow::Error::msg)?;
    let mut store = open_existing(config)?;
    let known = store.load_known()?;
    let Some(k) = known.get(resource).filter(|k| !k.deleted) else {
        bail!("no resource {resource:?} is being watched (see `lockwatch baseline show` for the ids)");
    };
    // Only a finding the resource has now can be suppressed, and the suppression is bound to it.
    let e = evaluate::evaluate(&k.kind, &k.baseline.value(), &k.document.value());
    let current = crate::alerting::conditions(&e, Severity::Low);
    let Some(finding) = current.iter().find(|c| c.rule == rule) else {
        let rules: Vec<&str> = current.iter().map(|c| c.rule.as_str()).collect();
        bail!(
            "{resource} has no finding {rule:?} now, so there is nothing to suppress; its current findings: {}",
            if rules.is_empty() {
                "none".to_string()
            } else {
                rules.join(", ")
            }
        );
    };
    let hash = crate::alerting::condition_hash(finding);
    let s = store.add_suppression(resource, rule, reason, now, end, Some((&k.hash, &hash)))?;
    println!(
        "suppressed {rule} on {resource} until {} (\"{reason}\"); it alerts again if the finding changes before then",
        ts(s.expires_at)
    );
    Ok(ExitCode::SUCCESS)
}

pub fn suppressions(config: &Config, all: bool) -> anyhow::Result<ExitCode> {
    let store = open_existing(config)?;
    let list = store.suppressions(all)?;
    if list.is_empty() {
        println!("no {}suppressions", if all { "" } else { "active " });
    }
    for s in list {
        let state = match (&s.ended_at, &s.end_reason) {
            (Some(at), Some(why)) => format!("ended {} ({why})", ts(*at)),
            _ => format!("until {}", ts(s.expires_at)),
        };
        println!(
            "{} {} {state}, granted {}: {}",
            s.resource_id,
            s.rule,
            ts(s.granted_at),
            s.reason
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn unsuppress(config: &Config, resource: &str, rule: &str) -> anyhow::Result<ExitCode> {
    let mut store = open_existing(config)?;
    if !store.revoke_suppression(resource, rule, chrono::Utc::now().timestamp())? {
        bail!("no active suppression of {rule} on {resource} (see `lockwatch suppressions`)");
    }
    println!(
        "ended the suppression of {rule} on {resource}; it alerts on the next cycle if the finding is still there"
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn suppression_end_table() {
        let now = chrono::NaiveDate::from_ymd_opt(2026, 11, 24)
            .unwrap()
            .and_hms_opt(12, 0, 0)
            .unwrap()
            .and_utc()
            .timestamp();
        let max = Duration::from_secs(90 * 86400);
        let day = 86400;
        let cases: Vec<(Option<&str>, Option<&str>, Result<i64, &str>)> = vec![
            (None, Some("14d"), Ok(now + 14 * day)),
            (None, Some("12h"), Ok(now + 12 * 3600)),
            (Some("2026-12-31"), None, Ok(now + 37 * day + 11 * 3600 + 3599)),
            (Some("2026-11-23"), None, Err("already be over")),
            (None, Some("91d"), Err("at most")),
            (Some("2027-06-01"), None, Err("at most")),
            (Some("31/12/2026"), None, Err("--expires")),
            (None, Some("forever"), Err("--for")),
            (None, None, Err("either")),
        ];
        for (expires, for_, want) in cases {
            match (suppression_end(now, expires, for_, max), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{expires:?} {for_:?}"),
                (Err(e), Err(needle)) => assert!(e.contains(needle), "{expires:?} {for_:?}: {e}"),
                (got, want) => panic!("{expires:?} {for_:?}: got {got:?}, want {want:?}"),
            }
        }
    }
}

/// `lockwatch revert RESOURCE [--rule RULE] [--dry-run]`: read the resource's current state,
/// plan the calls that put its weakened fields back to the baseline, print them, and (unless
/// `--dry-run`) make them and record who did.
pub async fn revert(
    config: &Config,
    runtime: &Runtime,
    resource: &str,
    rule: Option<&str>,
    dry_run: bool,
) -> anyhow::Result<ExitCode> {
    let store = open_existing(config)?;
    let known = store.load_known()?;
    let k = known_resource(&store, &known, resource)?;
    let Some((baseline, _)) = store.baseline_of(resource)? else {
        bail!("{resource} has no baseline yet; there is nothing to revert to");
    };
    let Some(source) = runtime.sources.iter().find(|s| s.name == k.source) else {
        bail!(
            "{resource} comes from source {:?}, which is not in {} any more",
            k.source,
            config.path.display()
        );
    };
    if source.kind != "aws" {
        bail!(
            "{resource} is a {} resource: lockwatch reverts AWS resources only (it holds no admin credentials for self-hosted servers). Fix it on the server, then `lockwatch baseline show {resource}`",
            source.kind
        );
    }
    // What is there now, read fresh: a revert is never planned from a stale or partial view.
    let collection = tokio::time::timeout(source.timeout, source.source.collect())
        .await
        .map_err(|_| anyhow::anyhow!("reading the current state of {resource} timed out; nothing was changed"))?
        .map_err(|e| anyhow::anyhow!("cannot read the current state of {resource}: {e:#}; nothing was changed"))?;
    if let Some(f) = collection.failed.iter().find(|f| resource.starts_with(&f.scope)) {
        bail!(
            "cannot read the current state of {resource}: {}; nothing was changed",
            f.message
        );
    }
    let Some(current) = collection.resources.iter().find(|r| r.id == resource) else {
        bail!("{resource} is not there any more (deleted?); nothing was changed");
    };
    if let Some(u) = current.unknown.first() {
        bail!(
            "lockwatch cannot read {} of {resource} ({}); nothing was changed",
            u.field,
            u.why
        );
    }
    let calls = crate::revert::plan(&k.kind, resource, &baseline, &current.posture.value(), rule)
        .map_err(|e| anyhow::anyhow!(e))?;
    let region = crate::revert::region_and_name(resource)
        .map(|(r, _)| r)
        .unwrap_or_default();
    if calls.is_empty() {
        println!(
            "nothing to revert: {resource} matches its baseline in every field lockwatch reverts{}",
            rule.map(|r| format!(" for {r}")).unwrap_or_default()
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "to put {resource} back to its baseline, lockwatch {} these calls:",
        if dry_run { "would make" } else { "makes" }
    );
    for c in &calls {
        println!("  {}", c.show(region));
    }
    if dry_run {
        println!("--dry-run: nothing was changed");
        return Ok(ExitCode::SUCCESS);
    }
    let made = source.source.revert(resource, &calls).await?;
    store.record_revert(resource, chrono::Utc::now().timestamp(), &local_user(), rule, &made)?;
    println!(
        "done ({} call{}); recorded in `lockwatch history {resource}`. The next cycle reads the result and resolves what it fixed.",
        made.len(),
        if made.len() == 1 { "" } else { "s" }
    );
    Ok(ExitCode::SUCCESS)
}
