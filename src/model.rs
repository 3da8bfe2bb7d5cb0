//! The vocabulary shared by sources, the pure assessment/diff code, the store and the alerter.

use serde::{Deserialize, Serialize};
use std::fmt;

/// How urgent a finding or a drift is. Ordered: `Low < Medium < High < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 4] = [Severity::Low, Severity::Medium, Severity::High, Severity::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// The word used in email subjects: `CRITICAL`, `HIGH`, ...
    pub fn subject_word(self) -> &'static str {
        match self {
            Severity::Low => "LOW",
            Severity::Medium => "MEDIUM",
            Severity::High => "HIGH",
            Severity::Critical => "CRITICAL",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|v| v.as_str().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing a source observed, with its canonical posture document.
#[derive(Debug, Clone)]
pub struct Resource {
    /// `<source-name>/<kind>/<native-name>`, stable across cycles.
    pub id: String,
    pub source: String,
    pub kind: &'static str,
    /// Canonical JSON (objects with sorted keys, no volatile fields), kept as text.
    pub posture: Document,
    /// Fields of the posture the source could not read this time. The pipeline keeps their
    /// last known value and never lets a finding that rests on them resolve.
    pub unknown: Vec<Unknown>,
}

impl Resource {
    pub fn new(source: &str, kind: &'static str, native_name: &str, posture: serde_json::Value) -> Self {
        Resource {
            id: format!("{source}/{kind}/{native_name}"),
            source: source.to_string(),
            kind,
            posture: Document::from_value(&posture),
            unknown: vec![],
        }
    }

    pub fn with_unknown(mut self, unknown: Vec<Unknown>) -> Self {
        self.unknown = unknown;
        self
    }
}

/// A top-level field of a posture that could not be read, why, and what would fix it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unknown {
    pub field: String,
    /// What went wrong, stable from one cycle to the next (no timestamps, no connection ids).
    pub why: String,
    /// What the operator can do about it (usually the grant that is missing).
    pub fix: String,
    /// Readable, but what was read is not in force yet (a file edited and not reloaded): the
    /// value in force stays the last one seen, and this is no finding of its own.
    pub pending: bool,
}

impl Unknown {
    pub fn new(field: &str, why: impl Into<String>, fix: impl Into<String>) -> Self {
        Unknown {
            field: field.to_string(),
            why: why.into(),
            fix: fix.into(),
            pending: false,
        }
    }

    /// A value read that is not in force yet (see [`Unknown::pending`]).
    pub fn pending(field: &str, why: impl Into<String>, fix: impl Into<String>) -> Self {
        Unknown {
            pending: true,
            ..Unknown::new(field, why, fix)
        }
    }
}

/// The key under which a posture document records its stale or unread fields. Kinds never see
/// it: evaluation takes it out before a kind's rules run.
pub const VISIBILITY_KEY: &str = "_visibility";

/// One field of a posture that lockwatch cannot currently read, as recorded in the document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Visibility {
    pub why: String,
    pub fix: String,
    /// When it became unreadable (unix seconds).
    pub since: i64,
    /// A value read before is kept in its place (stale); `false`: it was never read.
    pub stale: bool,
    /// What was read is not in force yet; the value kept is the one in force.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pending: bool,
}

/// A posture document as its canonical JSON text, shared and cheap to clone. The daemon keeps
/// one per resource between cycles: for a fleet of ten thousand security groups, text takes a
/// fraction of the memory of parsed `Value` trees (measured in BENCHMARKS.md); it is parsed
/// when evaluated, one resource at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document(std::sync::Arc<str>);

impl Document {
    pub fn from_value(v: &serde_json::Value) -> Self {
        Document(canonical_json(v).into())
    }

    /// Text that is already canonical JSON (a stored snapshot); checked to be JSON.
    pub fn from_text(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str::<serde::de::IgnoredAny>(text)?;
        Ok(Document(text.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The parsed document. The text is JSON by construction; were it ever not, `Null` is
    /// returned and the assessment reports it cannot read the posture (never a panic).
    pub fn value(&self) -> serde_json::Value {
        serde_json::from_str(&self.0).unwrap_or(serde_json::Value::Null)
    }

    /// The same text (and usually the same allocation: a baseline equal to the current posture
    /// shares it).
    pub fn same(&self, other: &Document) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
    }
}

/// serde_json's `Map` is a BTreeMap here (no `preserve_order`), so keys come out sorted.
pub fn canonical_json(v: &serde_json::Value) -> String {
    serde_json::to_string(v).expect("serializing a serde_json::Value cannot fail")
}

pub fn document_hash(doc: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(doc.as_bytes()))
}

/// What an assessment rule concluded about one posture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable rule id, e.g. `redis.auth.disabled`.
    pub rule: String,
    pub severity: Severity,
    /// What is wrong and what to do about it, for an on-call engineer.
    pub message: String,
    /// The finding makes the resource reachable without authentication.
    pub exposed: bool,
}

impl Finding {
    pub fn new(rule: &str, severity: Severity, exposed: bool, message: impl Into<String>) -> Self {
        Finding {
            rule: rule.to_string(),
            severity,
            message: message.into(),
            exposed,
        }
    }
}

/// Direction of one field change against the baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeClass {
    Weakened,
    Strengthened,
    Neutral,
}

impl ChangeClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeClass::Weakened => "weakened",
            ChangeClass::Strengthened => "strengthened",
            ChangeClass::Neutral => "neutral",
        }
    }
}

/// A source's verdict on one field change: its direction, and for a weakening how bad it is on
/// its own (before considering whether it exposes the resource).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classification {
    pub class: ChangeClass,
    pub severity: Severity,
}

impl Classification {
    pub const NEUTRAL: Classification = Classification {
        class: ChangeClass::Neutral,
        severity: Severity::Low,
    };
    pub const fn weakened(severity: Severity) -> Self {
        Classification {
            class: ChangeClass::Weakened,
            severity,
        }
    }
    pub const STRENGTHENED: Classification = Classification {
        class: ChangeClass::Strengthened,
        severity: Severity::Low,
    };
}

/// One field that differs between the baseline and the current posture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// JSON pointer into the posture document.
    pub path: String,
    /// `null` when the field did not exist.
    pub before: serde_json::Value,
    /// `null` when the field no longer exists.
    pub after: serde_json::Value,
    pub class: ChangeClass,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub severity: Option<Severity>,
}

/// What the engine remembers about a resource between cycles.
#[derive(Debug, Clone)]
pub struct Known {
    pub source: String,
    pub kind: String,
    pub hash: String,
    /// Shared with `baseline` while the two are equal (the usual case): a large fleet keeps one
    /// copy of each posture in memory, not two.
    pub document: Document,
    pub baseline: Document,
    pub deleted: bool,
    /// The weaknesses already told on-call while its alerts are open (change keys, see
    /// `decide::change_key`): a weakening not among them is announced.
    pub announced: Vec<String>,
}

/// A changed posture, to be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotWrite {
    pub id: String,
    pub source: String,
    pub kind: String,
    pub hash: String,
    pub document: String,
}

/// An operator's decision that a finding is deliberate, for a while, for one posture.
#[derive(Debug, Clone, PartialEq)]
pub struct Suppression {
    pub id: i64,
    pub resource_id: String,
    pub rule: String,
    pub reason: String,
    pub granted_at: i64,
    pub expires_at: i64,
    pub posture_hash: String,
    /// The finding it was granted for (`alerting::condition_hash`): it ends when the finding
    /// changes, whatever else in the posture does. `None` for suppressions bound to the posture.
    pub finding_hash: Option<String>,
    pub ended_at: Option<i64>,
    pub end_reason: Option<String>,
}
