//! The state file: SQLite in WAL mode under `state_dir`. Snapshots are content-addressed (a row
//! only when a resource's document changes); alerts and the email outbox live in the same file so
//! that an event and its email are committed together.

use crate::alerting::OpenAlert;
use crate::model::{Document, Known, Severity, SnapshotWrite, Suppression};
use anyhow::{Context, bail};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub const DB_FILE: &str = "lockwatch.db";

/// Schema migrations; `PRAGMA user_version` is the number applied. Append, never edit.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE snapshots (
    id INTEGER PRIMARY KEY,
    resource_id TEXT NOT NULL,
    hash TEXT NOT NULL,
    document TEXT NOT NULL,
    observed_at INTEGER NOT NULL
);
CREATE INDEX snapshots_by_resource ON snapshots(resource_id, id);
CREATE TABLE resources (
    id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    kind TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    current_snapshot INTEGER NOT NULL REFERENCES snapshots(id),
    baseline_snapshot INTEGER NOT NULL REFERENCES snapshots(id),
    deleted_at INTEGER
);
CREATE TABLE baseline_events (
    id INTEGER PRIMARY KEY,
    resource_id TEXT NOT NULL,
    snapshot_id INTEGER NOT NULL REFERENCES snapshots(id),
    at INTEGER NOT NULL,
    how TEXT NOT NULL
);
CREATE TABLE alerts (
    id INTEGER PRIMARY KEY,
    resource_id TEXT NOT NULL,
    rule TEXT NOT NULL,
    severity TEXT NOT NULL,
    message TEXT NOT NULL,
    opened_at INTEGER NOT NULL,
    last_notified_at INTEGER NOT NULL,
    resolved_at INTEGER
);
CREATE UNIQUE INDEX alerts_open ON alerts(resource_id, rule) WHERE resolved_at IS NULL;
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    created_at INTEGER NOT NULL,
    resource_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    body_text TEXT NOT NULL,
    body_html TEXT NOT NULL,
    message_id TEXT NOT NULL,
    in_reply_to TEXT,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error TEXT,
    sent_at INTEGER
);
CREATE INDEX outbox_due ON outbox(state, next_attempt_at);
CREATE TABLE threads (
    resource_id TEXT PRIMARY KEY,
    root_message_id TEXT NOT NULL
);
CREATE TABLE source_status (
    source TEXT PRIMARY KEY,
    last_attempt_at INTEGER NOT NULL,
    last_success_at INTEGER,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
"#,
    r#"
CREATE TABLE suppressions (
    id INTEGER PRIMARY KEY,
    resource_id TEXT NOT NULL,
    rule TEXT NOT NULL,
    reason TEXT NOT NULL,
    granted_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    posture_hash TEXT NOT NULL,
    ended_at INTEGER,
    end_reason TEXT
);
CREATE UNIQUE INDEX suppressions_active ON suppressions(resource_id, rule) WHERE ended_at IS NULL;
"#,
    r#"
ALTER TABLE outbox ADD COLUMN severity TEXT;
ALTER TABLE outbox ADD COLUMN rules TEXT NOT NULL DEFAULT '[]';
"#,
    r#"
ALTER TABLE baseline_events ADD COLUMN actor TEXT;
ALTER TABLE baseline_events ADD COLUMN reason TEXT;
ALTER TABLE alerts ADD COLUMN flapping INTEGER NOT NULL DEFAULT 0;
ALTER TABLE alerts ADD COLUMN clear_cycles INTEGER NOT NULL DEFAULT 0;
CREATE INDEX alerts_by_opening ON alerts(opened_at);
ALTER TABLE suppressions ADD COLUMN finding_hash TEXT;
ALTER TABLE outbox ADD COLUMN recipients_done TEXT NOT NULL DEFAULT '[]';
ALTER TABLE resources ADD COLUMN announced TEXT NOT NULL DEFAULT '[]';
ALTER TABLE outbox ADD COLUMN refused TEXT NOT NULL DEFAULT '[]';
"#,
    r#"
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE INDEX resources_by_current ON resources(current_snapshot);
CREATE INDEX resources_by_baseline ON resources(baseline_snapshot);
CREATE INDEX baseline_events_by_snapshot ON baseline_events(snapshot_id);
CREATE INDEX alerts_by_resolution ON alerts(resolved_at) WHERE resolved_at IS NOT NULL;
CREATE INDEX outbox_by_sending ON outbox(sent_at) WHERE state = 'sent';
"#,
    r#"
CREATE TABLE reverts (
    id INTEGER PRIMARY KEY,
    resource_id TEXT NOT NULL,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    rule TEXT,
    calls TEXT NOT NULL
);
CREATE INDEX reverts_by_resource ON reverts(resource_id);
"#,
];

/// What one pruning step removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    pub snapshots: usize,
    pub baseline_events: usize,
    pub alerts: usize,
    pub outbox: usize,
    pub suppressions: usize,
}

impl Pruned {
    pub fn total(&self) -> usize {
        self.snapshots + self.baseline_events + self.alerts + self.outbox + self.suppressions
    }

    pub fn add(&mut self, o: Pruned) {
        self.snapshots += o.snapshots;
        self.baseline_events += o.baseline_events;
        self.alerts += o.alerts;
        self.outbox += o.outbox;
        self.suppressions += o.suppressions;
    }
}

/// A baseline change recorded in history.
#[derive(Debug, Clone, PartialEq)]
pub struct BaselineEvent {
    pub snapshot_id: i64,
    pub at: i64,
    /// `first seen`, `accepted` or `raised`.
    pub how: String,
    /// Who accepted it (the local user), for `accepted`.
    pub actor: Option<String>,
    pub reason: Option<String>,
}

pub struct Store {
    conn: Connection,
    pub path: PathBuf,
}

#[derive(Debug, Clone)]
pub struct SnapshotRow {
    pub id: i64,
    pub hash: String,
    pub document: serde_json::Value,
    pub observed_at: i64,
}

#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: i64,
    pub created_at: i64,
    pub resource_id: String,
    pub kind: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: String,
    pub message_id: String,
    pub in_reply_to: Option<String>,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub sent_at: Option<i64>,
    pub severity: Option<Severity>,
    pub rules: Vec<String>,
    /// Recipients that accepted or refused it on an earlier attempt.
    pub recipients_done: Vec<String>,
    /// (recipient, why) refused for good.
    pub refused: Vec<(String, String)>,
}

impl OutboxRow {
    /// The message the sinks deliver.
    pub fn message(&self) -> crate::sinks::Message {
        crate::sinks::Message {
            resource_id: self.resource_id.clone(),
            kind: crate::sinks::MessageKind::parse(&self.kind).unwrap_or(crate::sinks::MessageKind::Alert),
            severity: self.severity,
            rules: self.rules.clone(),
            subject: self.subject.clone(),
            text: self.body_text.clone(),
            html: self.body_html.clone(),
            message_id: self.message_id.clone(),
            in_reply_to: self.in_reply_to.clone(),
            created_at: self.created_at,
        }
    }
}

/// Everything one cycle writes, applied in one transaction.
#[derive(Debug, Default)]
pub struct CycleWrites {
    pub snapshots: Vec<SnapshotWrite>,
    pub deleted: Vec<String>,
    /// Resources whose current posture becomes the baseline because it is strictly stronger.
    pub raised: Vec<String>,
    /// (resource id, change keys): what on-call has been told while alerts are open.
    pub announced: Vec<(String, Vec<String>)>,
    /// (resource id, rule): open alerts now held open as flapping.
    pub flapping: Vec<(String, String)>,
    /// (resource id, rule, cycles): how long a flapping alert's condition has been absent.
    pub clearing: Vec<(String, String, u32)>,
    pub opened: Vec<(String, crate::alerting::Condition)>,
    pub updated: Vec<(String, crate::alerting::Condition)>,
    pub resolved: Vec<(String, String)>,
    /// (resource id): every open alert of it was just notified.
    pub notified: Vec<String>,
    /// Emails to enqueue; the store fills in threading.
    pub mails: Vec<crate::sinks::Outgoing>,
    /// (source, error or None on success)
    pub source_results: Vec<(String, Option<String>)>,
    /// (suppression id, why it ended: "expired" or "posture changed")
    pub ended_suppressions: Vec<(i64, String)>,
}

impl Store {
    /// Create `state_dir` (mode 0700) if it does not exist — only its last component: a missing
    /// parent is most likely a typo, and a fresh state there would silently start over with new
    /// baselines and no suppressions. (Under systemd, `StateDirectory=` creates it.)
    pub fn create_state_dir(state_dir: &Path) -> anyhow::Result<()> {
        if state_dir.is_dir() {
            return Ok(());
        }
        Self::check_state_dir(state_dir)?;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(state_dir)
            .with_context(|| {
                format!(
                    "creating state_dir {} (point daemon.state_dir somewhere lockwatch may write)",
                    state_dir.display()
                )
            })
    }

    /// `state_dir` exists, or can be created where it is (its parent exists).
    pub fn check_state_dir(state_dir: &Path) -> anyhow::Result<()> {
        if let Some(parent) = state_dir.parent().filter(|p| !p.as_os_str().is_empty())
            && !state_dir.is_dir()
            && !parent.is_dir()
        {
            bail!(
                "state_dir {}: its parent directory {} does not exist. Check daemon.state_dir for a typo, or create the parent first",
                state_dir.display(),
                parent.display()
            );
        }
        Ok(())
    }

    /// Open (creating if needed) the state file in `state_dir`: directory 0700, file 0600.
    pub fn open(state_dir: &Path) -> anyhow::Result<Store> {
        Self::create_state_dir(state_dir)?;
        let path = state_dir.join(DB_FILE);
        if !path.exists() {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .with_context(|| format!("creating {}", path.display()))?;
        } else if std::fs::metadata(&path)?.permissions().mode() & 0o077 != 0 {
            tracing::warn!(path = %path.display(), "state file is readable by other users; chmod 600 it");
        }
        let conn = Connection::open(&path).with_context(|| format!("opening {}", path.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        let check: String = conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .with_context(|| damaged(&path, "it cannot be read as a SQLite database"))?;
        if check != "ok" {
            bail!(damaged(&path, &format!("integrity check says: {check}")));
        }
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // WAL + NORMAL: a commit survives kill -9 (it is in the OS page cache); only a power
        // loss can undo the last commits. FULL would widen the crash window between the mail
        // server accepting an alert and us recording it (see RELIABILITY.md).
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let mut store = Store { conn, path };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&mut self) -> anyhow::Result<()> {
        let version: usize = self.conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))? as usize;
        if version > MIGRATIONS.len() {
            bail!(
                "{} was written by a newer lockwatch (schema {version}, this binary knows {}); upgrade lockwatch",
                self.path.display(),
                MIGRATIONS.len()
            );
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
            let tx = self.conn.transaction()?;
            tx.execute_batch(sql)
                .with_context(|| format!("applying schema migration {}", i + 1))?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            tx.commit()?;
        }
        Ok(())
    }

    /// Rows inserted, updated or deleted through this connection since it opened.
    #[cfg(test)]
    pub fn total_changes(&self) -> u64 {
        self.conn.total_changes()
    }

    /// Changes whenever another connection commits; cheap to poll.
    pub fn data_version(&self) -> anyhow::Result<i64> {
        Ok(self.conn.query_row("PRAGMA data_version", [], |r| r.get(0))?)
    }

    /// Changes only when `baseline accept` approves something (another process): the daemon's
    /// cached postures and baselines must then be reloaded. Its own commits and the outbox
    /// worker's deliveries leave it alone, so they never cost a reload of every document.
    pub fn accepted_epoch(&self) -> anyhow::Result<i64> {
        Ok(self.conn.query_row(
            "SELECT COALESCE(MAX(id), 0) FROM baseline_events WHERE how = 'accepted'",
            [],
            |r| r.get(0),
        )?)
    }

    pub fn load_known(&self) -> anyhow::Result<HashMap<String, Known>> {
        let mut stmt = self.conn.prepare(
            "SELECT r.id, r.source, r.kind, r.deleted_at IS NOT NULL, c.hash, c.document, b.document, r.announced
             FROM resources r JOIN snapshots c ON c.id = r.current_snapshot JOIN snapshots b ON b.id = r.baseline_snapshot",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, bool>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, String>(7)?,
            ))
        })?;
        let mut out = HashMap::new();
        for row in rows {
            let (id, source, kind, deleted, hash, doc, base, announced) = row?;
            let parse =
                |s: &str| Document::from_text(s).with_context(|| format!("stored document of {id} is not JSON"));
            let document = parse(&doc)?;
            let baseline = if base == doc { document.clone() } else { parse(&base)? };
            out.insert(
                id.clone(),
                Known {
                    source,
                    kind,
                    hash,
                    document,
                    baseline,
                    deleted,
                    announced: serde_json::from_str(&announced).unwrap_or_default(),
                },
            );
        }
        Ok(out)
    }

    /// How often each (resource, rule) alert opened since `since`: resource → rule → count.
    pub fn recent_openings(&self, since: i64) -> anyhow::Result<HashMap<String, HashMap<String, u32>>> {
        let mut stmt = self.conn.prepare(
            "SELECT resource_id, rule, COUNT(*) FROM alerts WHERE opened_at >= ?1 GROUP BY resource_id, rule",
        )?;
        let mut out: HashMap<String, HashMap<String, u32>> = HashMap::new();
        for row in stmt.query_map([since], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?))
        })? {
            let (res, rule, n) = row?;
            out.entry(res).or_default().insert(rule, n as u32);
        }
        Ok(out)
    }

    /// (consecutive failures, last error) per source, as of the last committed cycle.
    pub fn source_failures(&self) -> anyhow::Result<HashMap<String, (u32, String)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT source, consecutive_failures, COALESCE(last_error, '') FROM source_status")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                (r.get::<_, i64>(1)? as u32, r.get::<_, String>(2)?),
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn load_open_alerts(&self) -> anyhow::Result<HashMap<String, Vec<OpenAlert>>> {
        let mut stmt = self.conn.prepare(
            "SELECT resource_id, rule, severity, message, opened_at, last_notified_at, flapping, clear_cycles FROM alerts WHERE resolved_at IS NULL ORDER BY id",
        )?;
        let mut out: HashMap<String, Vec<OpenAlert>> = HashMap::new();
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get::<_, i64>(6)? != 0,
                r.get::<_, i64>(7)?,
            ))
        })?;
        for row in rows {
            let (res, rule, sev, message, opened_at, last_notified_at, flapping, clear_cycles) = row?;
            let severity = Severity::parse(&sev).unwrap_or(Severity::Critical);
            out.entry(res).or_default().push(OpenAlert {
                rule,
                severity,
                message,
                opened_at,
                last_notified_at,
                flapping,
                clear_cycles: clear_cycles.clamp(0, u32::MAX as i64) as u32,
            });
        }
        Ok(out)
    }

    pub fn apply(&mut self, now: i64, w: &CycleWrites) -> anyhow::Result<()> {
        let tx = self.conn.transaction()?;
        for s in &w.snapshots {
            let (id, source, kind) = (&s.id, &s.source, &s.kind);
            tx.execute(
                "INSERT INTO snapshots (resource_id, hash, document, observed_at) VALUES (?1, ?2, ?3, ?4)",
                params![id, s.hash, s.document, now],
            )?;
            let snap = tx.last_insert_rowid();
            let existed: bool = tx.query_row("SELECT COUNT(*) FROM resources WHERE id = ?1", [id], |r| {
                r.get::<_, i64>(0)
            })? > 0;
            if existed {
                tx.execute(
                    "UPDATE resources SET current_snapshot = ?2, deleted_at = NULL WHERE id = ?1",
                    params![id, snap],
                )?;
            } else {
                tx.execute(
                    "INSERT INTO resources (id, source, kind, first_seen, current_snapshot, baseline_snapshot) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                    params![id, source, kind, now, snap],
                )?;
                tx.execute(
                    "INSERT INTO baseline_events (resource_id, snapshot_id, at, how) VALUES (?1, ?2, ?3, 'first seen')",
                    params![id, snap, now],
                )?;
            }
        }
        for id in &w.raised {
            tx.execute(
                "UPDATE resources SET baseline_snapshot = current_snapshot WHERE id = ?1",
                [id],
            )?;
            tx.execute(
                "INSERT INTO baseline_events (resource_id, snapshot_id, at, how) SELECT id, current_snapshot, ?2, 'raised' FROM resources WHERE id = ?1",
                params![id, now],
            )?;
        }
        for id in &w.deleted {
            tx.execute(
                "UPDATE resources SET deleted_at = ?2 WHERE id = ?1 AND deleted_at IS NULL",
                params![id, now],
            )?;
        }
        // Resolve before opening: a suppression that ends re-opens its alert loudly.
        for (res, rule) in &w.resolved {
            tx.execute(
                "UPDATE alerts SET resolved_at = ?3 WHERE resource_id = ?1 AND rule = ?2 AND resolved_at IS NULL",
                params![res, rule, now],
            )?;
        }
        for (res, c) in &w.opened {
            tx.execute(
                "INSERT INTO alerts (resource_id, rule, severity, message, opened_at, last_notified_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                params![res, c.rule, c.severity.as_str(), c.message, now],
            )?;
        }
        for (res, c) in &w.updated {
            tx.execute(
                "UPDATE alerts SET severity = ?3, message = ?4 WHERE resource_id = ?1 AND rule = ?2 AND resolved_at IS NULL",
                params![res, c.rule, c.severity.as_str(), c.message],
            )?;
        }
        for (res, keys) in &w.announced {
            tx.execute(
                "UPDATE resources SET announced = ?2 WHERE id = ?1",
                params![res, serde_json::to_string(keys)?],
            )?;
        }
        for (res, rule) in &w.flapping {
            tx.execute(
                "UPDATE alerts SET flapping = 1 WHERE resource_id = ?1 AND rule = ?2 AND resolved_at IS NULL",
                params![res, rule],
            )?;
        }
        for (res, rule, n) in &w.clearing {
            tx.execute(
                "UPDATE alerts SET clear_cycles = ?3 WHERE resource_id = ?1 AND rule = ?2 AND resolved_at IS NULL",
                params![res, rule, n],
            )?;
        }
        for res in &w.notified {
            tx.execute(
                "UPDATE alerts SET last_notified_at = ?2 WHERE resource_id = ?1 AND resolved_at IS NULL",
                params![res, now],
            )?;
        }
        for m in &w.mails {
            let root: Option<String> = tx
                .query_row(
                    "SELECT root_message_id FROM threads WHERE resource_id = ?1",
                    [&m.resource_id],
                    |r| r.get(0),
                )
                .optional()?;
            if root.is_none() {
                tx.execute(
                    "INSERT INTO threads (resource_id, root_message_id) VALUES (?1, ?2)",
                    params![m.resource_id, m.message_id],
                )?;
            }
            tx.execute(
                "INSERT INTO outbox (created_at, resource_id, kind, subject, body_text, body_html, message_id, in_reply_to, next_attempt_at, severity, rules)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?1, ?9, ?10)",
                params![
                    now,
                    m.resource_id,
                    m.kind.as_str(),
                    m.subject,
                    m.text,
                    m.html,
                    m.message_id,
                    root,
                    m.severity.map(Severity::as_str),
                    serde_json::to_string(&m.rules)?
                ],
            )?;
        }
        for (id, reason) in &w.ended_suppressions {
            tx.execute(
                "UPDATE suppressions SET ended_at = ?2, end_reason = ?3 WHERE id = ?1 AND ended_at IS NULL",
                params![id, now, reason],
            )?;
        }
        for (source, error) in &w.source_results {
            match error {
                None => tx.execute(
                    "INSERT INTO source_status (source, last_attempt_at, last_success_at, consecutive_failures, last_error) VALUES (?1, ?2, ?2, 0, NULL)
                     ON CONFLICT(source) DO UPDATE SET last_attempt_at = ?2, last_success_at = ?2, consecutive_failures = 0, last_error = NULL",
                    params![source, now],
                )?,
                Some(e) => tx.execute(
                    "INSERT INTO source_status (source, last_attempt_at, consecutive_failures, last_error) VALUES (?1, ?2, 1, ?3)
                     ON CONFLICT(source) DO UPDATE SET last_attempt_at = ?2, consecutive_failures = consecutive_failures + 1, last_error = ?3",
                    params![source, now, e],
                )?,
            };
        }
        tx.commit()?;
        Ok(())
    }

    /// The resources whose current posture differs from their baseline (one, or all), with the
    /// hash of their current snapshot: what `baseline accept` shows before it asks.
    pub fn acceptable(&self, resource: Option<&str>) -> anyhow::Result<Vec<(String, String)>> {
        let mut stmt = self.conn.prepare(
            "SELECT r.id, s.hash FROM resources r JOIN snapshots s ON s.id = r.current_snapshot
             WHERE r.baseline_snapshot != r.current_snapshot AND r.deleted_at IS NULL AND (?1 IS NULL OR r.id = ?1) ORDER BY r.id",
        )?;
        Ok(stmt
            .query_map([resource], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?)
    }

    /// Approve postures as baselines, exactly those shown: each `(resource, hash)` pin must still
    /// be the resource's current snapshot, or nothing is accepted and the resources that moved
    /// are returned as the error. Records who and why. Returns the ids accepted.
    pub fn accept_baseline(
        &mut self,
        pins: &[(String, String)],
        now: i64,
        actor: &str,
        reason: Option<&str>,
    ) -> anyhow::Result<Result<Vec<String>, Vec<String>>> {
        let tx = self.conn.transaction()?;
        let mut moved = Vec::new();
        for (id, hash) in pins {
            let current: Option<String> = tx
                .query_row(
                    "SELECT s.hash FROM resources r JOIN snapshots s ON s.id = r.current_snapshot WHERE r.id = ?1 AND r.deleted_at IS NULL",
                    [id],
                    |r| r.get(0),
                )
                .optional()?;
            if current.as_deref() != Some(hash.as_str()) {
                moved.push(id.clone());
            }
        }
        if !moved.is_empty() {
            return Ok(Err(moved));
        }
        let mut ids = Vec::new();
        for (id, _) in pins {
            let n = tx.execute(
                "UPDATE resources SET baseline_snapshot = current_snapshot WHERE id = ?1 AND baseline_snapshot != current_snapshot",
                [id],
            )?;
            if n == 0 {
                continue;
            }
            tx.execute(
                "INSERT INTO baseline_events (resource_id, snapshot_id, at, how, actor, reason)
                 SELECT id, current_snapshot, ?2, 'accepted', ?3, ?4 FROM resources WHERE id = ?1",
                params![id, now, actor, reason],
            )?;
            ids.push(id.clone());
        }
        tx.commit()?;
        Ok(Ok(ids))
    }

    /// `baseline accept`s recorded after event id `after`: (resource, at, actor, reason).
    pub fn accepted_since(&self, after: i64) -> anyhow::Result<Vec<(String, i64, Option<String>, Option<String>)>> {
        let mut stmt = self.conn.prepare(
            "SELECT resource_id, at, actor, reason FROM baseline_events WHERE how = 'accepted' AND id > ?1 ORDER BY id",
        )?;
        Ok(stmt
            .query_map([after], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<Result<_, _>>()?)
    }

    // ---- suppressions ---------------------------------------------------------------------------

    /// Grant a suppression bound to the resource's current posture; replaces an active one for
    /// the same (resource, rule).
    pub fn add_suppression(
        &mut self,
        resource: &str,
        rule: &str,
        reason: &str,
        now: i64,
        expires_at: i64,
        finding: Option<(&str, &str)>,
    ) -> anyhow::Result<Suppression> {
        let tx = self.conn.transaction()?;
        let hash: String = tx
            .query_row(
                "SELECT s.hash FROM resources r JOIN snapshots s ON s.id = r.current_snapshot WHERE r.id = ?1 AND r.deleted_at IS NULL",
                [resource],
                |r| r.get(0),
            )
            .optional()?
            .ok_or_else(|| anyhow::anyhow!("no resource {resource:?} is being watched (see `lockwatch baseline show` for the ids)"))?;
        // `finding` = (the posture it was judged on, the finding's hash): bound to the finding.
        if let Some((seen, _)) = finding
            && seen != hash
        {
            anyhow::bail!("{resource} changed while the suppression was being granted; run the command again");
        }
        tx.execute(
            "UPDATE suppressions SET ended_at = ?3, end_reason = 'replaced' WHERE resource_id = ?1 AND rule = ?2 AND ended_at IS NULL",
            params![resource, rule, now],
        )?;
        tx.execute(
            "INSERT INTO suppressions (resource_id, rule, reason, granted_at, expires_at, posture_hash, finding_hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![resource, rule, reason, now, expires_at, hash, finding.map(|f| f.1)],
        )?;
        let id = tx.last_insert_rowid();
        tx.commit()?;
        Ok(Suppression {
            id,
            resource_id: resource.into(),
            rule: rule.into(),
            reason: reason.into(),
            granted_at: now,
            expires_at,
            posture_hash: hash,
            finding_hash: finding.map(|f| f.1.to_string()),
            ended_at: None,
            end_reason: None,
        })
    }

    pub fn revoke_suppression(&mut self, resource: &str, rule: &str, now: i64) -> anyhow::Result<bool> {
        let n = self.conn.execute(
            "UPDATE suppressions SET ended_at = ?3, end_reason = 'revoked' WHERE resource_id = ?1 AND rule = ?2 AND ended_at IS NULL",
            params![resource, rule, now],
        )?;
        Ok(n > 0)
    }

    pub fn suppressions(&self, include_ended: bool) -> anyhow::Result<Vec<Suppression>> {
        let sql = format!(
            "SELECT id, resource_id, rule, reason, granted_at, expires_at, posture_hash, ended_at, end_reason, finding_hash FROM suppressions {} ORDER BY id",
            if include_ended { "" } else { "WHERE ended_at IS NULL" }
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map([], |r| {
            Ok(Suppression {
                id: r.get(0)?,
                resource_id: r.get(1)?,
                rule: r.get(2)?,
                reason: r.get(3)?,
                granted_at: r.get(4)?,
                expires_at: r.get(5)?,
                posture_hash: r.get(6)?,
                ended_at: r.get(7)?,
                end_reason: r.get(8)?,
                finding_hash: r.get(9)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn resource_exists(&self, id: &str) -> anyhow::Result<bool> {
        Ok(self
            .conn
            .query_row("SELECT COUNT(*) FROM resources WHERE id = ?1", [id], |r| {
                r.get::<_, i64>(0)
            })?
            > 0)
    }

    pub fn resource_ids(&self) -> anyhow::Result<Vec<String>> {
        let mut stmt = self.conn.prepare("SELECT id FROM resources ORDER BY id")?;
        Ok(stmt.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?)
    }

    pub fn snapshots(&self, resource: &str) -> anyhow::Result<Vec<SnapshotRow>> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, hash, document, observed_at FROM snapshots WHERE resource_id = ?1 ORDER BY id")?;
        let rows = stmt.query_map([resource], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get::<_, String>(2)?, r.get(3)?))
        })?;
        rows.map(|row| {
            let (id, hash, doc, observed_at) = row?;
            Ok(SnapshotRow {
                id,
                hash,
                document: serde_json::from_str(&doc)?,
                observed_at,
            })
        })
        .collect()
    }

    /// One small transaction of retention: at most `batch` rows of each table whose time ended
    /// before `cutoff`. Never a resource's baseline or latest snapshot, nor the event that set the
    /// baseline in force; a snapshot counts by when it was superseded, not when it appeared.
    pub fn prune_step(&mut self, cutoff: i64, batch: usize) -> anyhow::Result<Pruned> {
        let tx = self.conn.transaction()?;
        let n = batch as i64;
        let baseline_events = tx.execute(
            "DELETE FROM baseline_events WHERE id IN (
                 SELECT e.id FROM baseline_events e
                 WHERE e.at < ?1 AND NOT EXISTS (SELECT 1 FROM resources r WHERE r.baseline_snapshot = e.snapshot_id)
                 LIMIT ?2)",
            rusqlite::params![cutoff, n],
        )?;
        let snapshots = tx.execute(
            "DELETE FROM snapshots WHERE id IN (
                 SELECT s.id FROM snapshots s
                 WHERE s.observed_at < ?1
                   AND EXISTS (SELECT 1 FROM snapshots n WHERE n.resource_id = s.resource_id AND n.id > s.id AND n.observed_at < ?1)
                   AND NOT EXISTS (SELECT 1 FROM resources r WHERE r.current_snapshot = s.id)
                   AND NOT EXISTS (SELECT 1 FROM resources r WHERE r.baseline_snapshot = s.id)
                   AND NOT EXISTS (SELECT 1 FROM baseline_events e WHERE e.snapshot_id = s.id)
                 LIMIT ?2)",
            rusqlite::params![cutoff, n],
        )?;
        let alerts = tx.execute(
            "DELETE FROM alerts WHERE id IN (
                 SELECT id FROM alerts WHERE resolved_at IS NOT NULL AND resolved_at < ?1 LIMIT ?2)",
            rusqlite::params![cutoff, n],
        )?;
        let outbox = tx.execute(
            "DELETE FROM outbox WHERE id IN (
                 SELECT id FROM outbox WHERE state = 'sent' AND sent_at < ?1 LIMIT ?2)",
            rusqlite::params![cutoff, n],
        )?;
        let suppressions = tx.execute(
            "DELETE FROM suppressions WHERE id IN (
                 SELECT id FROM suppressions WHERE ended_at IS NOT NULL AND ended_at < ?1 LIMIT ?2)",
            rusqlite::params![cutoff, n],
        )?;
        let pruned = Pruned {
            snapshots,
            baseline_events,
            alerts,
            outbox,
            suppressions,
        };
        if pruned.total() > 0 {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('pruned_before', ?1)
                 ON CONFLICT(key) DO UPDATE SET value = MAX(CAST(value AS INTEGER), ?1)",
                [cutoff],
            )?;
        }
        tx.commit()?;
        Ok(pruned)
    }

    /// The latest retention cutoff that removed something: history before it may be gone.
    pub fn pruned_before(&self) -> anyhow::Result<Option<i64>> {
        Ok(self
            .conn
            .query_row(
                "SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'pruned_before'",
                [],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// When the resource was first seen.
    pub fn first_seen(&self, resource: &str) -> anyhow::Result<Option<i64>> {
        Ok(self
            .conn
            .query_row("SELECT first_seen FROM resources WHERE id = ?1", [resource], |r| {
                r.get(0)
            })
            .optional()?)
    }

    /// Every baseline a resource has had.
    pub fn baseline_events(&self, resource: &str) -> anyhow::Result<Vec<BaselineEvent>> {
        let mut stmt = self.conn.prepare(
            "SELECT snapshot_id, at, how, actor, reason FROM baseline_events WHERE resource_id = ?1 ORDER BY id",
        )?;
        Ok(stmt
            .query_map([resource], |r| {
                Ok(BaselineEvent {
                    snapshot_id: r.get(0)?,
                    at: r.get(1)?,
                    how: r.get(2)?,
                    actor: r.get(3)?,
                    reason: r.get(4)?,
                })
            })?
            .collect::<Result<_, _>>()?)
    }

    /// A revert made by `lockwatch revert`: when, by whom, for which rule, the calls made.
    pub fn record_revert(
        &self,
        resource: &str,
        at: i64,
        actor: &str,
        rule: Option<&str>,
        calls: &[String],
    ) -> anyhow::Result<()> {
        self.conn.execute(
            "INSERT INTO reverts (resource_id, at, actor, rule, calls) VALUES (?1, ?2, ?3, ?4, ?5)",
            rusqlite::params![resource, at, actor, rule, serde_json::to_string(calls)?],
        )?;
        Ok(())
    }

    /// (at, actor, rule, calls) of every revert of a resource, oldest first.
    pub fn reverts(&self, resource: &str) -> anyhow::Result<Vec<(i64, String, Option<String>, Vec<String>)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT at, actor, rule, calls FROM reverts WHERE resource_id = ?1 ORDER BY id")?;
        let rows = stmt.query_map([resource], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, String>(3)?))
        })?;
        rows.map(|r| {
            let (at, actor, rule, calls) = r?;
            Ok((at, actor, rule, serde_json::from_str(&calls).unwrap_or_default()))
        })
        .collect()
    }

    /// Alerts resolved at or after `since`, oldest first (for Alertmanager's `endsAt`).
    pub fn resolved_since(&self, since: i64) -> anyhow::Result<Vec<crate::sinks::alertmanager::Resolved>> {
        let mut stmt = self.conn.prepare(
            "SELECT resource_id, rule, severity, message, opened_at, resolved_at FROM alerts \
             WHERE resolved_at IS NOT NULL AND resolved_at >= ?1 ORDER BY resolved_at, id",
        )?;
        let rows = stmt.query_map([since], |r| {
            Ok(crate::sinks::alertmanager::Resolved {
                resource_id: r.get(0)?,
                rule: r.get(1)?,
                severity: Severity::parse(&r.get::<_, String>(2)?).unwrap_or(Severity::Critical),
                message: r.get(3)?,
                opened_at: r.get(4)?,
                resolved_at: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// (rule, severity, opened_at, resolved_at) of every alert a resource has had.
    pub fn alert_history(&self, resource: &str) -> anyhow::Result<Vec<(String, String, i64, Option<i64>)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT rule, severity, opened_at, resolved_at FROM alerts WHERE resource_id = ?1 ORDER BY id")?;
        Ok(stmt
            .query_map([resource], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<Result<_, _>>()?)
    }

    pub fn baseline_of(&self, resource: &str) -> anyhow::Result<Option<(serde_json::Value, i64)>> {
        self.conn
            .query_row(
                "SELECT s.document, s.observed_at FROM resources r JOIN snapshots s ON s.id = r.baseline_snapshot WHERE r.id = ?1",
                [resource],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
            )
            .optional()?
            .map(|(d, at)| Ok((serde_json::from_str(&d)?, at)))
            .transpose()
    }

    // ---- outbox ---------------------------------------------------------------------------------

    fn outbox_rows(&self, filter: &str, args: &[&dyn rusqlite::ToSql]) -> anyhow::Result<Vec<OutboxRow>> {
        let sql = format!(
            "SELECT id, created_at, resource_id, kind, subject, body_text, body_html, message_id, in_reply_to, state, attempts,
                    next_attempt_at, last_error, sent_at, severity, rules, recipients_done, refused FROM outbox {filter}"
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map(args, |r| {
            Ok(OutboxRow {
                id: r.get(0)?,
                created_at: r.get(1)?,
                resource_id: r.get(2)?,
                kind: r.get(3)?,
                subject: r.get(4)?,
                body_text: r.get(5)?,
                body_html: r.get(6)?,
                message_id: r.get(7)?,
                in_reply_to: r.get(8)?,
                state: r.get(9)?,
                attempts: r.get(10)?,
                next_attempt_at: r.get(11)?,
                last_error: r.get(12)?,
                sent_at: r.get(13)?,
                severity: r.get::<_, Option<String>>(14)?.as_deref().and_then(Severity::parse),
                rules: serde_json::from_str(&r.get::<_, String>(15)?).unwrap_or_default(),
                recipients_done: serde_json::from_str(&r.get::<_, String>(16)?).unwrap_or_default(),
                refused: serde_json::from_str(&r.get::<_, String>(17)?).unwrap_or_default(),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn due_mail(&self, now: i64, limit: i64) -> anyhow::Result<Vec<OutboxRow>> {
        self.outbox_rows(
            // Per resource, strictly in order: a mail waits while an older one for the same
            // resource is still pending, so a RESOLVED never overtakes its alert.
            "WHERE state = 'pending' AND next_attempt_at <= ?1 AND NOT EXISTS (SELECT 1 FROM outbox older
               WHERE older.state = 'pending' AND older.resource_id = outbox.resource_id AND older.id < outbox.id)
             ORDER BY id LIMIT ?2",
            &[&now, &limit],
        )
    }

    pub fn outbox_listing(&self, include_sent: bool) -> anyhow::Result<Vec<OutboxRow>> {
        if include_sent {
            self.outbox_rows("ORDER BY id", &[])
        } else {
            // A mail some recipient refused stays listed, for whoever has to fix the address.
            self.outbox_rows("WHERE state != 'sent' OR refused != '[]' ORDER BY id", &[])
        }
    }

    #[cfg(test)]
    pub fn mark_sent(&self, id: i64, now: i64) -> anyhow::Result<()> {
        self.conn.execute(
            "UPDATE outbox SET state = 'sent', sent_at = ?2, attempts = attempts + 1, last_error = NULL WHERE id = ?1",
            params![id, now],
        )?;
        Ok(())
    }

    /// Record who has it (or refused it) so far; a row some recipient still waits for stays
    /// pending until `next_at`, one every recipient has dealt with is sent.
    pub fn mark_recipients(
        &self,
        id: i64,
        done: &[String],
        refused: &[(String, String)],
        waiting: Option<(i64, &str)>,
        now: i64,
    ) -> anyhow::Result<()> {
        let (done, refused) = (serde_json::to_string(done)?, serde_json::to_string(refused)?);
        match waiting {
            Some((next_at, error)) => self.conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?2, last_error = ?3, recipients_done = ?4, refused = ?5 WHERE id = ?1",
                params![id, next_at, error, done, refused],
            )?,
            None => self.conn.execute(
                "UPDATE outbox SET state = 'sent', sent_at = ?2, attempts = attempts + 1, last_error = NULL, recipients_done = ?3, refused = ?4 WHERE id = ?1",
                params![id, now, done, refused],
            )?,
        };
        Ok(())
    }

    pub fn mark_retry(&self, id: i64, next_at: i64, error: &str) -> anyhow::Result<()> {
        self.conn.execute(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?2, last_error = ?3 WHERE id = ?1",
            params![id, next_at, error],
        )?;
        Ok(())
    }

    pub fn mark_failed(&self, id: i64, error: &str) -> anyhow::Result<()> {
        self.conn.execute(
            "UPDATE outbox SET state = 'failed', attempts = attempts + 1, last_error = ?2 WHERE id = ?1",
            params![id, error],
        )?;
        Ok(())
    }

    /// (pending count, created_at of the oldest pending)
    pub fn queue_depth(&self) -> anyhow::Result<(i64, Option<i64>)> {
        Ok(self.conn.query_row(
            "SELECT COUNT(*), MIN(created_at) FROM outbox WHERE state = 'pending'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?)
    }

    /// Make every pending mail due now (used at start-up).
    pub fn reset_backoff(&self, now: i64) -> anyhow::Result<()> {
        self.conn.execute(
            "UPDATE outbox SET next_attempt_at = ?1 WHERE state = 'pending' AND next_attempt_at > ?1",
            [now],
        )?;
        Ok(())
    }

    pub fn next_due_at(&self) -> anyhow::Result<Option<i64>> {
        Ok(self.conn.query_row(
            "SELECT MIN(next_attempt_at) FROM outbox WHERE state = 'pending'",
            [],
            |r| r.get(0),
        )?)
    }
}

fn damaged(path: &Path, what: &str) -> String {
    format!(
        "state file {} is damaged: {what}. lockwatch will not overwrite it. Keep it for inspection, move it aside \
         (mv {0} {0}.damaged) and start again: baselines are re-learned from the next scan and pending emails in the old file are not sent.",
        path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerting::Condition;

    fn snap(id: &str, hash: &str) -> SnapshotWrite {
        SnapshotWrite {
            id: id.into(),
            source: "s".into(),
            kind: "redis".into(),
            hash: hash.into(),
            document: format!("{{\"h\":\"{hash}\"}}"),
        }
    }

    fn outgoing(resource: &str, subject: &str, message_id: &str) -> crate::sinks::Outgoing {
        crate::sinks::Outgoing {
            resource_id: resource.into(),
            kind: crate::sinks::MessageKind::Alert,
            severity: Some(Severity::High),
            rules: vec!["r".into()],
            subject: subject.into(),
            text: "t".into(),
            html: "h".into(),
            message_id: message_id.into(),
        }
    }

    #[test]
    fn content_addressed_snapshots_and_baseline() {
        let dir = tempfile::tempdir().unwrap();
        let mut st = Store::open(dir.path()).unwrap();
        st.apply(
            1,
            &CycleWrites {
                snapshots: vec![snap("s/redis/a", "h1")],
                ..Default::default()
            },
        )
        .unwrap();
        st.apply(
            2,
            &CycleWrites {
                snapshots: vec![snap("s/redis/a", "h2")],
                ..Default::default()
            },
        )
        .unwrap();
        let known = st.load_known().unwrap();
        assert_eq!(known["s/redis/a"].hash, "h2");
        assert_eq!(known["s/redis/a"].baseline.value()["h"], "h1");
        assert_eq!(st.snapshots("s/redis/a").unwrap().len(), 2);
        // Accepting pins what was shown: a hash that is not the current one is refused.
        let stale = [("s/redis/a".to_string(), "h1".to_string())];
        assert_eq!(
            st.accept_baseline(&stale, 3, "alice", None).unwrap(),
            Err(vec!["s/redis/a".to_string()])
        );
        assert_eq!(
            st.acceptable(None).unwrap(),
            vec![("s/redis/a".to_string(), "h2".to_string())]
        );
        let shown = st.acceptable(Some("s/redis/a")).unwrap();
        assert_eq!(
            st.accept_baseline(&shown, 3, "alice", Some("planned")).unwrap(),
            Ok(vec!["s/redis/a".to_string()])
        );
        assert_eq!(st.load_known().unwrap()["s/redis/a"].baseline.value()["h"], "h2");
        assert!(st.acceptable(None).unwrap().is_empty());
        let last = st.baseline_events("s/redis/a").unwrap().pop().unwrap();
        assert_eq!(
            (last.how.as_str(), last.actor.as_deref(), last.reason.as_deref()),
            ("accepted", Some("alice"), Some("planned"))
        );
    }

    #[test]
    fn files_are_private_and_reopen_keeps_state() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        {
            let mut st = Store::open(&state).unwrap();
            let c = Condition {
                rule: "r".into(),
                severity: Severity::High,
                message: "m".into(),
            };
            st.apply(
                1,
                &CycleWrites {
                    snapshots: vec![snap("x", "h")],
                    opened: vec![("x".into(), c)],
                    ..Default::default()
                },
            )
            .unwrap();
        }
        assert_eq!(std::fs::metadata(&state).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(
            std::fs::metadata(state.join(DB_FILE)).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let st = Store::open(&state).unwrap();
        assert_eq!(st.load_open_alerts().unwrap()["x"][0].severity, Severity::High);
    }

    /// Retention removes what ended before the cutoff, a few rows at a time, and never a
    /// baseline, a latest snapshot, the snapshot in force until after the cutoff, an open alert,
    /// a pending mail or an active suppression.
    #[test]
    fn retention_prunes_what_ended_long_ago_and_keeps_what_matters() {
        let day = 86_400;
        let dir = tempfile::tempdir().unwrap();
        let mut st = Store::open(dir.path()).unwrap();
        for (t, a, b) in [
            (0, "a1", Some("b1")),
            (10 * day, "a2", None),
            (20 * day, "a3", None),
            (500 * day, "a4", None),
        ] {
            let mut snapshots = vec![snap("s/redis/a", a)];
            snapshots.extend(b.map(|h| snap("s/redis/b", h)));
            st.apply(
                t,
                &CycleWrites {
                    snapshots,
                    ..Default::default()
                },
            )
            .unwrap();
        }
        let sql = |st: &Store, q: &str| st.conn.execute(q, []).unwrap();
        for (resolved, rule) in [("1000", "old"), (&*(460 * day).to_string(), "recent"), ("NULL", "open")] {
            sql(
                &st,
                &format!(
                    "INSERT INTO alerts (resource_id, rule, severity, message, opened_at, last_notified_at, resolved_at)
                     VALUES ('s/redis/a', '{rule}', 'high', 'm', 0, 0, {resolved})"
                ),
            );
        }
        for (state, sent) in [
            ("sent", "1000"),
            ("sent", &*(460 * day).to_string()),
            ("pending", "NULL"),
            ("failed", "NULL"),
        ] {
            sql(
                &st,
                &format!(
                    "INSERT INTO outbox (created_at, resource_id, kind, subject, body_text, body_html, message_id, next_attempt_at, state, sent_at)
                     VALUES (0, 's/redis/a', 'alert', 's', 't', 'h', '<{state}{sent}@x>', 0, '{state}', {sent})"
                ),
            );
        }
        for ended in ["1000", "NULL"] {
            sql(
                &st,
                &format!(
                    "INSERT INTO suppressions (resource_id, rule, reason, granted_at, expires_at, posture_hash, ended_at)
                     VALUES ('s/redis/{ended}', 'r', 'why', 0, 99999999999, 'h', {ended})"
                ),
            );
        }
        assert_eq!(st.pruned_before().unwrap(), None);

        let cutoff = 450 * day;
        let mut total = Pruned::default();
        let mut steps = 0;
        loop {
            let step = st.prune_step(cutoff, 1).unwrap();
            if step.total() == 0 {
                break;
            }
            assert!(
                step.snapshots <= 1 && step.alerts <= 1 && step.outbox <= 1,
                "one row a table a step"
            );
            total.add(step);
            steps += 1;
        }
        assert_eq!(
            total,
            Pruned {
                snapshots: 1,
                baseline_events: 0,
                alerts: 1,
                outbox: 1,
                suppressions: 1,
            }
        );
        assert_eq!(steps, 1);
        let hashes = |id: &str| -> Vec<String> { st.snapshots(id).unwrap().into_iter().map(|s| s.hash).collect() };
        // a2 was superseded on day 20: gone. a3 stayed in force until day 500: kept.
        assert_eq!(hashes("s/redis/a"), ["a1", "a3", "a4"]);
        assert_eq!(hashes("s/redis/b"), ["b1"]);
        let count = |q: &str| st.conn.query_row(q, [], |r| r.get::<_, i64>(0)).unwrap();
        assert_eq!(count("SELECT COUNT(*) FROM alerts WHERE rule IN ('recent', 'open')"), 2);
        assert_eq!(count("SELECT COUNT(*) FROM alerts"), 2);
        assert_eq!(
            count("SELECT COUNT(*) FROM outbox"),
            3,
            "pending and failed mail is never pruned"
        );
        assert_eq!(count("SELECT COUNT(*) FROM suppressions WHERE ended_at IS NULL"), 1);
        assert_eq!(st.pruned_before().unwrap(), Some(cutoff));
        assert_eq!(st.first_seen("s/redis/a").unwrap(), Some(0));
        // The baseline still loads, and the store is usable.
        assert_eq!(st.load_known().unwrap()["s/redis/a"].baseline.value()["h"], "a1");
    }

    #[test]
    fn outbox_threads_and_states() {
        let dir = tempfile::tempdir().unwrap();
        let mut st = Store::open(dir.path()).unwrap();
        let mail = |mid: &str| outgoing("x", "s", mid);
        st.apply(
            10,
            &CycleWrites {
                mails: vec![mail("<1@x>")],
                ..Default::default()
            },
        )
        .unwrap();
        st.apply(
            11,
            &CycleWrites {
                mails: vec![mail("<2@x>")],
                ..Default::default()
            },
        )
        .unwrap();
        let due = st.due_mail(11, 10).unwrap();
        assert_eq!(due.len(), 1, "the second mail of a resource waits for the first");
        assert_eq!(due[0].in_reply_to, None);
        st.mark_sent(due[0].id, 12).unwrap();
        let due = st.due_mail(12, 10).unwrap();
        assert_eq!(due[0].in_reply_to.as_deref(), Some("<1@x>"));
        st.mark_retry(due[0].id, 100, "421 try later").unwrap();
        assert_eq!(st.due_mail(50, 10).unwrap().len(), 0);
        assert_eq!(st.queue_depth().unwrap(), (1, Some(11)));
        st.mark_failed(due[0].id, "550 no such user").unwrap();
        assert_eq!(st.queue_depth().unwrap().0, 0);
        assert_eq!(st.outbox_listing(false).unwrap()[0].state, "failed");
    }

    #[test]
    fn mail_for_one_resource_leaves_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut st = Store::open(dir.path()).unwrap();
        let mail = |res: &str, mid: &str| outgoing(res, mid, mid);
        st.apply(
            10,
            &CycleWrites {
                mails: vec![mail("a", "<a1>"), mail("b", "<b1>")],
                ..Default::default()
            },
        )
        .unwrap();
        st.apply(
            11,
            &CycleWrites {
                mails: vec![mail("a", "<a2>")],
                ..Default::default()
            },
        )
        .unwrap();
        let due = st.due_mail(11, 10).unwrap();
        assert_eq!(
            due.iter().map(|r| r.message_id.as_str()).collect::<Vec<_>>(),
            ["<a1>", "<b1>"]
        );
        // a1 is backing off; a2 is due but must wait behind it.
        st.mark_retry(due[0].id, 100, "421").unwrap();
        assert!(st.due_mail(50, 10).unwrap().iter().all(|r| r.resource_id != "a"));
        st.mark_sent(due[0].id, 101).unwrap();
        assert_eq!(
            st.due_mail(101, 10)
                .unwrap()
                .iter()
                .map(|r| r.message_id.as_str())
                .collect::<Vec<_>>(),
            ["<b1>", "<a2>"]
        );
    }

    #[test]
    fn damaged_file_is_refused_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DB_FILE);
        std::fs::write(
            &path,
            b"this is not a sqlite database, and it is long enough to have a header.............",
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let before = std::fs::read(&path).unwrap();
        let err = Store::open(dir.path()).err().unwrap();
        assert!(format!("{err:#}").contains("damaged"), "{err:#}");
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }
}
