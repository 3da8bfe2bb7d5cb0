//! AWS resource-policy evaluator: decides, the way IAM evaluates a request,
//! whether an OpenSearch domain access policy or a DynamoDB resource policy
//! lets callers outside the owning account in.
//!
//! Method (see NOTES.md): the policy is parsed once; then a handful of
//! *caller profiles* (anonymous internet caller, a caller signed by an
//! attacker's own AWS account, each specific foreign account / organisation an
//! Allow names) are evaluated per action class and per *witness path*.
//! Source addresses are not enumerated: every statement evaluates to the set of
//! source addresses (IPv4 + IPv6 interval sets) for which it applies, Allow sets
//! are unioned and Deny sets subtracted. Other caller-controlled keys are
//! evaluated over a small set of representative values: an Allow applies if
//! *some* representative satisfies it, a Deny only if *all* do. Every
//! approximation errs towards "more reachable", never towards "restricted".
//!
//! Self-contained: std + serde + serde_json only. Tests: `tests.rs` (building blocks, tables),
//! `cases.rs` (the fixture files, each case with its reason and source), `properties.rs`
//! (monotonicity and order properties over `grammar.rs`, and the generated-policy run).

use serde_json::Value;
use std::fmt::Write as _;

/// How far a policy lets callers in, ordered from safest to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reach {
    Restricted,
    CrossAccount,
    Public,
}

impl Reach {
    pub fn as_str(self) -> &'static str {
        match self {
            Reach::Restricted => "restricted",
            Reach::CrossAccount => "cross-account",
            Reach::Public => "public",
        }
    }
}

/// What the operator considers "ours" besides the owning account.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Trust {
    pub accounts: Vec<String>,
    pub org_ids: Vec<String>,
    pub cidrs: Vec<String>,
}

/// The actions of one AWS service, split into the classes the verdict reports.
#[derive(Debug)]
pub struct Service {
    /// Data-plane actions that read data.
    pub read: &'static [&'static str],
    /// Data-plane actions that change data (an action may be in both lists).
    pub write: &'static [&'static str],
    /// Representative control-plane actions; a fresh `<prefix>:…` name is added
    /// at evaluation time so "everything else" is always represented.
    pub other: &'static [&'static str],
    /// Action prefix, e.g. "es".
    pub prefix: &'static str,
    /// Request targets below the resource ARN, in the order paths are reported;
    /// `{}` is replaced by a fresh token; "" (the resource itself) only if the
    /// service's requests can target the bare resource ARN.
    pub sub_paths: &'static [&'static str],
}

pub const OPENSEARCH: Service = Service {
    read: &["es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPost"],
    write: &["es:ESHttpPut", "es:ESHttpPost", "es:ESHttpDelete", "es:ESHttpPatch"],
    other: &[
        "es:DescribeDomain",
        "es:DescribeElasticsearchDomain",
        "es:DescribeDomainConfig",
        "es:UpdateDomainConfig",
        "es:DeleteDomain",
        "es:ListTags",
        "es:AddTags",
        "es:ESCrossClusterGet",
    ],
    prefix: "es",
    // Requests always target a sub-resource: a domain access policy on the bare
    // domain ARN (no trailing /*) grants nothing on the data plane.
    sub_paths: &["/{}", "/{}/{}", "/_{}", "/"],
};

/// DynamoDB resource policies: evaluated and tested here; no kind reads DynamoDB tables yet.
#[cfg_attr(not(test), allow(dead_code))]
pub const DYNAMODB: Service = Service {
    read: &[
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:Query",
        "dynamodb:Scan",
        "dynamodb:GetRecords",
        "dynamodb:GetShardIterator",
        "dynamodb:DescribeStream",
        "dynamodb:ListStreams",
        "dynamodb:ConditionCheckItem",
        "dynamodb:PartiQLSelect",
    ],
    write: &[
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:PartiQLInsert",
        "dynamodb:PartiQLUpdate",
        "dynamodb:PartiQLDelete",
    ],
    other: &[
        "dynamodb:DescribeTable",
        "dynamodb:UpdateTable",
        "dynamodb:DeleteTable",
        "dynamodb:CreateBackup",
        "dynamodb:ExportTableToPointInTime",
        "dynamodb:ListTagsOfResource",
        "dynamodb:GetResourcePolicy",
        "dynamodb:PutResourcePolicy",
    ],
    prefix: "dynamodb",
    // Items live in the table itself; indexes and streams are sub-resources.
    sub_paths: &["", "/index/{}", "/stream/{}", "/{}"],
};

/// Who the reachable request comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Caller {
    /// Unsigned request from a public address.
    Anonymous,
    /// Request signed by any AWS account (an attacker can open one).
    AnyAwsAccount,
    /// Request signed by one specific foreign account or organisation.
    ForeignAccount,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum ActionClass {
    Read,
    Write,
    Other,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub reach: Reach,
    /// One sentence on-call can act on.
    pub reason: String,
    pub caller: Option<Caller>,
    pub action: Option<ActionClass>,
    /// Reachable path relative to the resource ARN ("/" is the resource itself).
    pub path: Option<String>,
    /// 1-based indices of the Allow statements that grant the reported access.
    pub allow_statements: Vec<usize>,
    /// 1-based indices of Deny statements considered that did not cover it
    /// (for a restricted verdict: the Deny statements that fenced an Allow).
    pub deny_statements: Vec<usize>,
    /// The first granting Allow statement (Some whenever reach > Restricted).
    pub statement: Option<Value>,
}

/// Everything the evaluator needs besides the policy.
pub struct Context<'a> {
    pub owner: &'a str,
    pub resource_arn: &'a str,
    pub trust: &'a Trust,
    pub service: &'a Service,
    /// Epoch seconds for aws:CurrentTime / aws:EpochTime; None = unknown.
    pub now: Option<i64>,
}

// ───────────────────────────── address sets ─────────────────────────────

/// Sorted, disjoint, non-adjacent inclusive intervals over `0..=max`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ranges {
    max: u128,
    iv: Vec<(u128, u128)>,
}

impl Ranges {
    fn empty(max: u128) -> Self {
        Ranges { max, iv: Vec::new() }
    }

    fn full(max: u128) -> Self {
        Ranges {
            max,
            iv: vec![(0, max)],
        }
    }

    fn is_empty(&self) -> bool {
        self.iv.is_empty()
    }

    /// Number of addresses, saturating (the full IPv6 space is 2^128).
    fn size(&self) -> u128 {
        self.iv
            .iter()
            .fold(0u128, |acc, &(lo, hi)| acc.saturating_add((hi - lo).saturating_add(1)))
    }

    fn from_iter(max: u128, mut iv: Vec<(u128, u128)>) -> Self {
        iv.sort_unstable();
        let mut out: Vec<(u128, u128)> = Vec::with_capacity(iv.len());
        for (lo, hi) in iv {
            match out.last_mut() {
                // Merge overlapping or adjacent intervals.
                Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                _ => out.push((lo, hi)),
            }
        }
        Ranges { max, iv: out }
    }

    fn union(&self, other: &Ranges) -> Ranges {
        let mut all = self.iv.clone();
        all.extend_from_slice(&other.iv);
        Ranges::from_iter(self.max, all)
    }

    fn complement(&self) -> Ranges {
        let mut out = Vec::with_capacity(self.iv.len() + 1);
        let mut next: Option<u128> = Some(0);
        for &(lo, hi) in &self.iv {
            if let Some(start) = next
                && lo > start
            {
                out.push((start, lo - 1));
            }
            next = hi.checked_add(1).filter(|&n| n <= self.max);
        }
        if let Some(start) = next {
            out.push((start, self.max));
        }
        Ranges { max: self.max, iv: out }
    }

    fn intersect(&self, other: &Ranges) -> Ranges {
        let (mut i, mut j, mut out) = (0, 0, Vec::new());
        while i < self.iv.len() && j < other.iv.len() {
            let (a, b) = (self.iv[i], other.iv[j]);
            let (lo, hi) = (a.0.max(b.0), a.1.min(b.1));
            if lo <= hi {
                out.push((lo, hi));
            }
            if a.1 < b.1 { i += 1 } else { j += 1 }
        }
        Ranges { max: self.max, iv: out }
    }

    fn subtract(&self, other: &Ranges) -> Ranges {
        self.intersect(&other.complement())
    }
}

/// A set of IPv4 and IPv6 source addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IpSet {
    v4: Ranges,
    v6: Ranges,
}

const V4_MAX: u128 = u32::MAX as u128;
const V6_MAX: u128 = u128::MAX;
/// One /8 of IPv4 and one /32 of IPv6: the widest a "restriction" may be.
const V4_PUBLIC_THRESHOLD: u128 = 1 << 24;
const V6_PUBLIC_THRESHOLD: u128 = 1 << 96;

/// Address space no internet caller can come from (RFC 1918, loopback,
/// link-local, CGNAT, "this network", ULA, IPv6 link-local and loopback).
const PRIVATE_CIDRS: &[&str] = &[
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "100.64.0.0/10",
    "0.0.0.0/8",
    "fc00::/7",
    "fe80::/10",
    "::1/128",
];

impl IpSet {
    pub(crate) fn empty() -> Self {
        IpSet {
            v4: Ranges::empty(V4_MAX),
            v6: Ranges::empty(V6_MAX),
        }
    }

    pub(crate) fn full() -> Self {
        IpSet {
            v4: Ranges::full(V4_MAX),
            v6: Ranges::full(V6_MAX),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    pub(crate) fn is_full(&self) -> bool {
        self.v4.iv == [(0, V4_MAX)] && self.v6.iv == [(0, V6_MAX)]
    }

    pub(crate) fn union(&self, o: &IpSet) -> IpSet {
        IpSet {
            v4: self.v4.union(&o.v4),
            v6: self.v6.union(&o.v6),
        }
    }

    pub(crate) fn intersect(&self, o: &IpSet) -> IpSet {
        IpSet {
            v4: self.v4.intersect(&o.v4),
            v6: self.v6.intersect(&o.v6),
        }
    }

    pub(crate) fn subtract(&self, o: &IpSet) -> IpSet {
        IpSet {
            v4: self.v4.subtract(&o.v4),
            v6: self.v6.subtract(&o.v6),
        }
    }

    pub(crate) fn complement(&self) -> IpSet {
        IpSet {
            v4: self.v4.complement(),
            v6: self.v6.complement(),
        }
    }

    /// (IPv4 count, IPv6 count), saturating.
    pub(crate) fn sizes(&self) -> (u128, u128) {
        (self.v4.size(), self.v6.size())
    }

    /// More than one /8 of IPv4 or more than one /32 of IPv6.
    pub(crate) fn is_wide(&self) -> bool {
        let (a, b) = self.sizes();
        a > V4_PUBLIC_THRESHOLD || b > V6_PUBLIC_THRESHOLD
    }

    /// Parse one CIDR (or bare address) into a set; host bits are ignored.
    pub(crate) fn parse_cidr(s: &str) -> Option<IpSet> {
        let s = s.trim();
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l.parse::<u32>().ok()?)),
            None => (s, None),
        };
        let mut set = IpSet::empty();
        if let Ok(v4) = addr.parse::<std::net::Ipv4Addr>() {
            let len = len.unwrap_or(32);
            if len > 32 {
                return None;
            }
            let (lo, hi) = prefix_range(u32::from(v4) as u128, len, 32);
            set.v4 = Ranges {
                max: V4_MAX,
                iv: vec![(lo, hi)],
            };
        } else if let Ok(v6) = addr.parse::<std::net::Ipv6Addr>() {
            let len = len.unwrap_or(128);
            if len > 128 {
                return None;
            }
            let (lo, hi) = prefix_range(u128::from(v6), len, 128);
            set.v6 = Ranges {
                max: V6_MAX,
                iv: vec![(lo, hi)],
            };
        } else {
            return None;
        }
        Some(set)
    }

    /// Union of a list of CIDRs; None if any is malformed.
    pub(crate) fn parse_list<'s>(list: impl IntoIterator<Item = &'s str>) -> Option<IpSet> {
        list.into_iter()
            .try_fold(IpSet::empty(), |acc, s| Some(acc.union(&IpSet::parse_cidr(s)?)))
    }

    /// Private and special-purpose space no internet caller can use.
    pub(crate) fn private() -> IpSet {
        IpSet::parse_list(PRIVATE_CIDRS.iter().copied()).unwrap_or_else(IpSet::empty)
    }
}

/// Inclusive address range of `addr/len` in a `bits`-wide space.
fn prefix_range(addr: u128, len: u32, bits: u32) -> (u128, u128) {
    let host_bits = bits - len;
    let host_mask: u128 = if host_bits >= 128 {
        u128::MAX
    } else {
        (1u128 << host_bits) - 1
    };
    let lo = addr & !host_mask;
    (lo, lo | host_mask)
}

// ──────────────────────── three-valued logic, globs ────────────────────────

/// Result of a test that may be undecidable (unknown operator, unreadable
/// element). `Maybe` is resolved per statement effect, always towards access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tri {
    No,
    Maybe,
    Yes,
}

impl Tri {
    fn from_bool(b: bool) -> Tri {
        if b { Tri::Yes } else { Tri::No }
    }
    /// Disjunction; the variants are declared in order No < Maybe < Yes.
    fn or(self, o: Tri) -> Tri {
        if self as u8 >= o as u8 { self } else { o }
    }
    fn not(self) -> Tri {
        match self {
            Tri::Yes => Tri::No,
            Tri::No => Tri::Yes,
            Tri::Maybe => Tri::Maybe,
        }
    }
    /// Resolve for an Allow (`May`: undecidable counts as applying) or a Deny
    /// (`Must`: undecidable counts as not applying).
    fn holds(self, mode: Mode) -> bool {
        match self {
            Tri::Yes => true,
            Tri::No => false,
            Tri::Maybe => mode == Mode::May,
        }
    }
}

/// How a statement is evaluated: an Allow applies when it *may* apply to the
/// caller's best request, a Deny only when it *must* apply to every request the
/// caller could make instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    May,
    Must,
}

/// IAM wildcard match: `*` any run (including empty), `?` one character.
pub(crate) fn glob_match(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let eq = |a: u8, b: u8| {
        if ignore_case {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    let (mut pi, mut ti) = (0usize, 0usize);
    // Last `*` seen and the text position it currently absorbs up to.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == b'?' {
            pi += 1;
            ti += utf8_len(t[ti]);
        } else if pi < p.len() && eq(p[pi], t[ti]) {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            // Let the last `*` absorb one more character and retry.
            let next = st + utf8_len(t[st]);
            star = Some((sp, next));
            pi = sp + 1;
            ti = next;
        } else {
            return false;
        }
    }
    p[pi.min(p.len())..].iter().all(|&c| c == b'*') && ti == t.len()
}

/// Length of the UTF-8 sequence starting with byte `b` (1 for stray bytes).
fn utf8_len(b: u8) -> usize {
    match b {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

/// Replace every `*` by `star` and every `?` by `one`.
fn instantiate(pattern: &str, star: &str, one: char) -> String {
    let mut out = String::with_capacity(pattern.len() + star.len());
    for c in pattern.chars() {
        match c {
            '*' => out.push_str(star),
            '?' => out.push(one),
            c => out.push(c),
        }
    }
    out
}

fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?'])
}

/// The six colon-separated ARN fields (the last keeps its colons), or None.
fn arn_fields(s: &str) -> Option<[&str; 6]> {
    let mut it = s.splitn(6, ':');
    let f = [it.next()?, it.next()?, it.next()?, it.next()?, it.next()?, it.next()?];
    (f[0] == "arn" || has_wildcard(f[0])).then_some(f)
}

/// ArnLike/ArnEquals: field-wise globbing; a pattern that is not a six-field
/// ARN is undecidable (it would admit any account), a bare `*` matches all.
fn arn_match(pattern: &str, value: &str) -> Tri {
    if pattern == "*" {
        return Tri::Yes;
    }
    let Some(p) = arn_fields(pattern) else {
        return Tri::Maybe;
    };
    match arn_fields(value) {
        Some(v) => Tri::from_bool(p.iter().zip(v.iter()).all(|(p, v)| glob_match(p, v, false))),
        None => Tri::from_bool(glob_match(pattern, value, false)),
    }
}

fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// Seconds since the epoch for an IAM date value (epoch digits or ISO 8601).
pub(crate) fn parse_date(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(n) = s.parse::<i64>() {
        return Some(n);
    }
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes().all(|c| c.is_ascii_digit()).then(|| part.parse().ok())?
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let mut secs = days_from_civil(y, m, d) * 86_400;
    if b.len() == 10 {
        return Some(secs);
    }
    if !matches!(b[10], b'T' | b't' | b' ') || b.len() < 19 || b[13] != b':' || b[16] != b':' {
        return None;
    }
    secs += num(11..13)? * 3600 + num(14..16)? * 60 + num(17..19)?;
    // Skip fractional seconds, then read the zone.
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
    }
    match b.get(i) {
        None | Some(b'Z') | Some(b'z') if b.len() <= i + 1 => Some(secs),
        Some(&sign @ (b'+' | b'-')) if b.len() == i + 6 && b[i + 3] == b':' => {
            let off = num(i + 1..i + 3)? * 3600 + num(i + 4..i + 6)? * 60;
            Some(if sign == b'+' { secs - off } else { secs + off })
        }
        _ => None,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

// ───────────────────────────── policy parsing ─────────────────────────────

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    Allow,
    Deny,
}

impl Effect {
    fn mode(self) -> Mode {
        match self {
            Effect::Allow => Mode::May,
            Effect::Deny => Mode::Must,
        }
    }
}

/// One value of a Principal / NotPrincipal element.
#[derive(Debug, Clone)]
enum Who {
    /// `"*"` or `{"AWS": "*"}`: anonymous callers and every account.
    Everyone,
    /// `{"Federated": "*"}`: any signed caller.
    AnySigned,
    /// A bare 12-digit account id (the whole account).
    Account(String),
    /// An AWS principal ARN, possibly with wildcards.
    Arn(String),
    /// Service, CanonicalUser, a named identity provider: never an internet caller.
    NonPublic,
    Unreadable,
}

#[derive(Debug, Clone)]
enum Principals {
    Is(Vec<Who>),
    IsNot(Vec<Who>),
    Unreadable,
}

/// Action/NotAction or Resource/NotResource; `None` items are unreadable.
#[derive(Debug, Clone)]
struct Patterns {
    negated: bool,
    /// None when the element is absent.
    items: Option<Vec<Option<String>>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Base {
    StrEq,
    StrNe,
    StrEqIc,
    StrNeIc,
    StrLike,
    StrNotLike,
    NumEq,
    NumNe,
    NumLt,
    NumLe,
    NumGt,
    NumGe,
    DateEq,
    DateNe,
    DateLt,
    DateLe,
    DateGt,
    DateGe,
    Bool,
    BinEq,
    Ip,
    NotIp,
    ArnEq,
    ArnLike,
    ArnNe,
    ArnNotLike,
    Null,
}

impl Base {
    fn parse(name: &str) -> Option<Base> {
        use Base::*;
        Some(match name {
            "StringEquals" => StrEq,
            "StringNotEquals" => StrNe,
            "StringEqualsIgnoreCase" => StrEqIc,
            "StringNotEqualsIgnoreCase" => StrNeIc,
            "StringLike" => StrLike,
            "StringNotLike" => StrNotLike,
            "NumericEquals" => NumEq,
            "NumericNotEquals" => NumNe,
            "NumericLessThan" => NumLt,
            "NumericLessThanEquals" => NumLe,
            "NumericGreaterThan" => NumGt,
            "NumericGreaterThanEquals" => NumGe,
            "DateEquals" => DateEq,
            "DateNotEquals" => DateNe,
            "DateLessThan" => DateLt,
            "DateLessThanEquals" => DateLe,
            "DateGreaterThan" => DateGt,
            "DateGreaterThanEquals" => DateGe,
            "Bool" => Bool,
            "BinaryEquals" => BinEq,
            "IpAddress" => Ip,
            "NotIpAddress" => NotIp,
            "ArnEquals" => ArnEq,
            "ArnLike" => ArnLike,
            "ArnNotEquals" => ArnNe,
            "ArnNotLike" => ArnNotLike,
            "Null" => Null,
            _ => return None,
        })
    }

    /// Negated operators are true for a missing key.
    fn negated(self) -> bool {
        use Base::*;
        matches!(
            self,
            StrNe | StrNeIc | StrNotLike | NumNe | DateNe | NotIp | ArnNe | ArnNotLike
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Qual {
    Single,
    AnyValue,
    AllValues,
}

#[derive(Debug, Clone)]
enum Op {
    Known { base: Base, if_exists: bool, qual: Qual },
    Unknown(String),
}

impl Op {
    /// Operators are case-sensitive: `stringequals` is not an operator.
    fn parse(name: &str) -> Op {
        let (qual, rest) = if let Some(r) = name.strip_prefix("ForAnyValue:") {
            (Qual::AnyValue, r)
        } else if let Some(r) = name.strip_prefix("ForAllValues:") {
            (Qual::AllValues, r)
        } else {
            (Qual::Single, name)
        };
        let (if_exists, rest) = match rest.strip_suffix("IfExists") {
            Some(r) => (true, r),
            None => (false, rest),
        };
        match Base::parse(rest) {
            Some(Base::Null) if if_exists => Op::Unknown(name.to_string()),
            Some(base) => Op::Known { base, if_exists, qual },
            None => Op::Unknown(name.to_string()),
        }
    }
}

/// One (operator, key, values) triple of a Condition block.
#[derive(Debug, Clone)]
struct Entry {
    op: Op,
    /// Lower-cased: condition keys are case-insensitive.
    key: String,
    values: Vec<String>,
    /// A value was an object/array/null: the entry cannot be decided.
    unreadable: bool,
    /// For IP operators: the union of the listed CIDRs (None if one is malformed).
    ips: Option<IpSet>,
}

#[derive(Debug, Clone)]
enum Conditions {
    Entries(Vec<Entry>),
    Unreadable,
}

#[derive(Debug, Clone)]
struct Stmt<'a> {
    /// 1-based position in the Statement list.
    index: usize,
    effect: Effect,
    raw: &'a Value,
    principals: Principals,
    actions: Patterns,
    resources: Patterns,
    conditions: Conditions,
}

/// Strings of a "string or list of strings" element; None items are unreadable.
fn string_list(v: &Value) -> Vec<Option<String>> {
    match v {
        Value::Array(a) => a.iter().map(scalar_string).collect(),
        other => vec![scalar_string(other)],
    }
}

fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn parse_who_aws(s: &str) -> Who {
    if s == "*" {
        Who::Everyone
    } else if is_account_id(s) {
        Who::Account(s.to_string())
    } else {
        Who::Arn(s.to_string())
    }
}

fn parse_principal_value(v: &Value) -> Vec<Who> {
    match v {
        Value::String(s) => vec![parse_who_aws(s)],
        Value::Object(map) => {
            let mut out = Vec::new();
            for (kind, vals) in map {
                for item in string_list(vals) {
                    out.push(match (kind.as_str(), item) {
                        (_, None) => Who::Unreadable,
                        ("AWS", Some(s)) => parse_who_aws(&s),
                        ("Federated", Some(s)) if s == "*" => Who::AnySigned,
                        ("Service" | "Federated" | "CanonicalUser", Some(_)) => Who::NonPublic,
                        // An unknown principal type cannot be judged.
                        (_, Some(_)) => Who::Unreadable,
                    });
                }
            }
            if out.is_empty() { vec![Who::Unreadable] } else { out }
        }
        _ => vec![Who::Unreadable],
    }
}

fn parse_principals(stmt: &serde_json::Map<String, Value>) -> Principals {
    match (stmt.get("Principal"), stmt.get("NotPrincipal")) {
        (Some(p), None) => Principals::Is(parse_principal_value(p)),
        (None, Some(p)) => Principals::IsNot(parse_principal_value(p)),
        // Missing or both: invalid, cannot be judged.
        _ => Principals::Unreadable,
    }
}

fn parse_patterns(stmt: &serde_json::Map<String, Value>, name: &str, not_name: &str) -> Patterns {
    match (stmt.get(name), stmt.get(not_name)) {
        (Some(v), None) => Patterns {
            negated: false,
            items: Some(string_list(v)),
        },
        (None, Some(v)) => Patterns {
            negated: true,
            items: Some(string_list(v)),
        },
        (None, None) => Patterns {
            negated: false,
            items: None,
        },
        // Both present is invalid: treat as a single unreadable item.
        (Some(_), Some(_)) => Patterns {
            negated: false,
            items: Some(vec![None]),
        },
    }
}

fn parse_conditions(v: Option<&Value>, notes: &mut Notes) -> Conditions {
    let Some(v) = v else {
        return Conditions::Entries(Vec::new());
    };
    let Value::Object(ops) = v else {
        return Conditions::Unreadable;
    };
    let mut entries = Vec::new();
    for (op_name, block) in ops {
        let op = Op::parse(op_name);
        if let Op::Unknown(name) = &op {
            notes.unknown_ops.push(name.clone());
        }
        let Value::Object(keys) = block else {
            return Conditions::Unreadable;
        };
        for (key, vals) in keys {
            let items = string_list(vals);
            let unreadable = items.iter().any(Option::is_none) || items.is_empty();
            let values: Vec<String> = items.into_iter().flatten().collect();
            let ips = match op {
                Op::Known {
                    base: Base::Ip | Base::NotIp,
                    ..
                } => IpSet::parse_list(values.iter().map(String::as_str)),
                _ => None,
            };
            entries.push(Entry {
                op: op.clone(),
                key: key.to_ascii_lowercase(),
                values,
                unreadable,
                ips,
            });
        }
    }
    Conditions::Entries(entries)
}

/// Things worth telling on-call that are not the verdict itself.
#[derive(Debug, Default)]
struct Notes {
    unknown_ops: Vec<String>,
    ignored_effects: Vec<(usize, String)>,
    not_statements: Vec<usize>,
}

/// Accept a policy object or a JSON string holding one (OpenSearch returns
/// AccessPolicies as a string). Ok(None) means "no policy at all".
fn policy_object(policy: &Value) -> Result<Option<std::borrow::Cow<'_, Value>>, String> {
    match policy {
        Value::Null => Ok(None),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(v @ Value::Object(_)) => Ok(Some(std::borrow::Cow::Owned(v))),
            _ => Err("policy string is not a JSON policy document".to_string()),
        },
        Value::Object(_) => Ok(Some(std::borrow::Cow::Borrowed(policy))),
        _ => Err("policy is not a JSON object".to_string()),
    }
}

fn parse_statements<'a>(doc: &'a Value, notes: &mut Notes) -> Result<Vec<Stmt<'a>>, String> {
    let Some(stmts) = doc.get("Statement") else {
        return Err("policy has no Statement element".to_string());
    };
    let list: Vec<&Value> = match stmts {
        Value::Array(a) => a.iter().collect(),
        Value::Object(_) => vec![stmts],
        _ => return Err("Statement is neither an object nor a list".to_string()),
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, raw) in list.into_iter().enumerate() {
        let index = i + 1;
        let Value::Object(m) = raw else {
            notes.not_statements.push(index);
            continue;
        };
        let effect = match m.get("Effect").and_then(Value::as_str) {
            Some("Allow") => Effect::Allow,
            Some("Deny") => Effect::Deny,
            other => {
                let shown = other.map_or_else(|| "missing".to_string(), |e| format!("\"{e}\""));
                notes.ignored_effects.push((index, shown));
                continue;
            }
        };
        out.push(Stmt {
            index,
            effect,
            raw,
            principals: parse_principals(m),
            actions: parse_patterns(m, "Action", "NotAction"),
            resources: parse_patterns(m, "Resource", "NotResource"),
            conditions: parse_conditions(m.get("Condition"), notes),
        });
    }
    Ok(out)
}

// ───────────────────────── callers and request keys ─────────────────────────

/// Identifiers that appear nowhere in the policy, so no pattern names them.
#[derive(Debug, Clone)]
struct Fresh {
    token: String,
    account: String,
    org: String,
    vpc: String,
    vpce: String,
}

impl Fresh {
    fn new(doc: &Value, text: &str, token: String, owner: &str, trust: &Trust) -> Fresh {
        let text = text.to_ascii_lowercase();
        let mut wild = Vec::new();
        collect_wildcard_leaves(doc, &mut wild);
        // Among candidates the policy does not spell out, take the one its
        // partial wildcards ("z*", "4*", "vpce-0a*") match least often, so the
        // fresh value stands for "an arbitrary one" rather than a named one.
        let pick = |cands: &[&str], samples: &dyn Fn(&str) -> Vec<String>| -> String {
            let score = |c: &str| -> usize {
                let samples = samples(c);
                wild.iter()
                    .map(|w| samples.iter().filter(|s| glob_match(w, s, true)).count())
                    .sum()
            };
            cands
                .iter()
                .filter(|c| !text.contains(&c.to_ascii_lowercase()))
                .min_by_key(|c| score(c))
                // All spelled out: reuse one; none left (owned/trusted): a stand-in.
                .or(cands.first())
                .map_or_else(|| "000000000001".to_string(), |c| c.to_string())
        };
        let accounts: Vec<&str> = [
            "400000000123",
            "738201946552",
            "291847563019",
            "563920174836",
            "847362910457",
            "102938475610",
            "650173829461",
            "918273645501",
        ]
        .into_iter()
        .filter(|a| *a != owner && !trust.accounts.iter().any(|t| t == a))
        .collect();
        let account = pick(&accounts, &|a| vec![a.to_string(), format!("arn:aws:iam::{a}:root")]);
        let orgs: Vec<&str> = ["o-zq0fresh01", "o-7kx2vmq9aa", "o-q9wz3k1pbb", "o-m4n8b2v6cc"]
            .into_iter()
            .filter(|o| !trust.org_ids.iter().any(|t| t == o))
            .collect();
        let org = pick(&orgs, &|o| vec![o.to_string()]);
        let vpc = pick(&["vpc-0zq0f1", "vpc-7k2x9a", "vpc-q3w8e5", "vpc-m6n1b4"], &|v| {
            vec![v.to_string()]
        });
        let vpce = pick(&["vpce-0zq0f1", "vpce-7k2x9a", "vpce-q3w8e5", "vpce-m6n1b4"], &|v| {
            vec![v.to_string()]
        });
        Fresh {
            token,
            account,
            org,
            vpc,
            vpce,
        }
    }
}

/// Lower-cased string leaves with a wildcard that are not wildcards only.
fn collect_wildcard_leaves(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) if has_wildcard(s) && !s.chars().all(|c| c == '*' || c == '?') => {
            out.push(s.to_ascii_lowercase())
        }
        Value::Array(a) => a.iter().for_each(|x| collect_wildcard_leaves(x, out)),
        Value::Object(m) => m.values().for_each(|x| collect_wildcard_leaves(x, out)),
        _ => {}
    }
}

/// A kind of caller evaluated against the policy.
#[derive(Debug, Clone)]
struct Profile {
    caller: Caller,
    /// None for anonymous callers.
    account: Option<String>,
    /// Possible aws:PrincipalOrgID values (None = not in an organisation).
    orgs: Vec<Option<String>>,
    /// How the reason names this caller.
    label: String,
}

/// Where the request comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Net {
    /// From a public address: aws:SourceIp present, no VPC keys.
    Internet,
    /// Through the caller's own VPC endpoint: no aws:SourceIp, the caller's own
    /// (unguessable-to-us, but not ours) aws:SourceVpc / aws:SourceVpce.
    OwnVpc,
}

/// One caller in one network situation with one transport choice.
struct Scenario<'p> {
    profile: &'p Profile,
    net: Net,
    secure: bool,
}

/// The values a condition key can take for a scenario.
#[derive(Debug, Default)]
struct Dom<'s> {
    /// The key may be absent.
    missing: bool,
    /// Concrete values it may have.
    values: Vec<String>,
    /// The caller chooses the value freely.
    free: bool,
    /// A principal/source ARN in this account whose name the caller chooses.
    arn_account: Option<&'s str>,
}

enum KeyDom<'s> {
    /// aws:SourceIp from the internet: handled as an address set.
    SourceIp,
    Vals(Dom<'s>),
}

fn missing_dom<'s>() -> KeyDom<'s> {
    KeyDom::Vals(Dom {
        missing: true,
        ..Dom::default()
    })
}

fn lit_dom<'s>(v: String) -> KeyDom<'s> {
    KeyDom::Vals(Dom {
        values: vec![v],
        ..Dom::default()
    })
}

fn free_dom<'s>(missing: bool) -> KeyDom<'s> {
    KeyDom::Vals(Dom {
        missing,
        free: true,
        ..Dom::default()
    })
}

/// Keys describing the signed principal: absent for anonymous callers, chosen
/// by the caller (it owns its account) otherwise.
const PRINCIPAL_CONTROLLED: &[&str] = &[
    "aws:principaltype",
    "aws:userid",
    "aws:username",
    "aws:multifactorauthpresent",
    "aws:multifactorauthage",
    "aws:tokenissuetime",
    "aws:federatedprovider",
    "aws:sourceidentity",
    "aws:rolesessionname",
    "aws:principalservicename",
    "aws:principalservicenameslist",
    "aws:calledvia",
    "aws:calledviafirst",
    "aws:calledvialast",
    "aws:viaawsservice",
    "aws:ec2instancesourceip",
    "aws:ec2instancesourcevpc",
    "aws:assumedroot",
];

struct Env<'a> {
    ctx: &'a Context<'a>,
    fresh: &'a Fresh,
    region: Option<&'a str>,
}

impl<'a> Env<'a> {
    fn domain<'s>(&'s self, key: &str, sc: &'s Scenario<'s>) -> KeyDom<'s> {
        let p = sc.profile;
        let acct = p.account.as_deref();
        let internet = sc.net == Net::Internet;
        let orgs = |suffix: &str| -> KeyDom<'s> {
            KeyDom::Vals(Dom {
                missing: p.orgs.iter().any(Option::is_none),
                values: p.orgs.iter().flatten().map(|o| format!("{o}{suffix}")).collect(),
                ..Dom::default()
            })
        };
        match key {
            "aws:sourceip" if internet => KeyDom::SourceIp,
            "aws:sourceip" => missing_dom(),
            "aws:securetransport" => lit_dom(sc.secure.to_string()),
            "aws:currenttime" | "aws:epochtime" => match self.ctx.now {
                Some(now) => lit_dom(now.to_string()),
                None => free_dom(false),
            },
            "aws:sourcevpc" if !internet => lit_dom(self.fresh.vpc.clone()),
            "aws:sourcevpce" if !internet => lit_dom(self.fresh.vpce.clone()),
            "aws:vpcsourceip" if !internet => free_dom(false),
            "aws:sourcevpc" | "aws:sourcevpce" | "aws:vpcsourceip" => missing_dom(),
            "aws:resourceaccount" => lit_dom(self.ctx.owner.to_string()),
            "aws:requestedregion" => match self.region {
                Some(r) => lit_dom(r.to_string()),
                None => free_dom(false),
            },
            "aws:principalisawsservice" => lit_dom("false".to_string()),
            _ if acct.is_none() && is_principal_key(key) => missing_dom(),
            "aws:principalarn" => KeyDom::Vals(Dom {
                arn_account: acct,
                ..Dom::default()
            }),
            "aws:sourcearn" => KeyDom::Vals(Dom {
                missing: true,
                arn_account: acct,
                ..Dom::default()
            }),
            "aws:principalaccount" => lit_dom(acct.unwrap_or_default().to_string()),
            "aws:sourceaccount" | "aws:sourceowner" => KeyDom::Vals(Dom {
                missing: true,
                values: vec![acct.unwrap_or_default().to_string()],
                ..Dom::default()
            }),
            "aws:principalorgid" => orgs(""),
            "aws:sourceorgid" => orgs(""),
            "aws:principalorgpaths" | "aws:sourceorgpaths" => orgs("/r-zq/ou-zq/"),
            _ if is_principal_key(key) => free_dom(true),
            // User agent, referer, request tags, service keys, unknown keys: the
            // caller picks them or they say nothing about who calls.
            _ => free_dom(true),
        }
    }
}

fn is_principal_key(key: &str) -> bool {
    key.starts_with("aws:principal") || key.starts_with("aws:source") || PRINCIPAL_CONTROLLED.contains(&key)
}

// ───────────────────────────── conditions ─────────────────────────────

/// Instantiate an ARN pattern inside `account`, if its account field admits it.
fn arn_in_account(pattern: &str, account: &str) -> Option<String> {
    let f = arn_fields(pattern)?;
    if !glob_match(f[4], account, false) {
        return None;
    }
    let inst = |s: &str| instantiate(s, "", 'x');
    Some(format!(
        "arn:{}:{}:{}:{account}:{}",
        inst(f[1]),
        inst(f[2]),
        inst(f[3]),
        inst(f[5])
    ))
}

/// Principal ARNs a caller of `account` can present: the account root, roles
/// and users it names itself, and every pattern instantiated in its account.
fn principal_arn_reps<'v>(account: &str, token: &str, patterns: impl Iterator<Item = &'v str>) -> Vec<String> {
    let mut reps = vec![
        format!("arn:aws:iam::{account}:root"),
        format!("arn:aws:iam::{account}:role/{token}"),
        format!("arn:aws:iam::{account}:user/{token}"),
        format!("arn:aws:sts::{account}:assumed-role/{token}/{token}"),
    ];
    reps.extend(patterns.filter_map(|p| arn_in_account(p, account)));
    reps
}

/// Representative values of a key for one condition entry (None = absent).
fn reps(dom: &Dom, entry: &Entry, token: &str) -> Vec<Option<String>> {
    let mut out: Vec<Option<String>> = Vec::new();
    if dom.missing {
        out.push(None);
    }
    out.extend(dom.values.iter().cloned().map(Some));
    if dom.free {
        out.push(Some(token.to_string()));
        for v in &entry.values {
            out.push(Some(v.clone()));
            out.push(Some(instantiate(v, "", 'x')));
            out.push(Some(instantiate(v, token, 'x')));
            // Neighbours let free numbers and dates fall on either side.
            if let Ok(n) = v.trim().parse::<f64>() {
                out.extend([n - 1.0, n + 1.0].map(|x| Some(x.to_string())));
            }
            if let Some(d) = parse_date(v) {
                out.extend([d - 1, d + 1].map(|x| Some(x.to_string())));
            }
        }
    }
    if let Some(acct) = dom.arn_account {
        out.extend(
            principal_arn_reps(acct, token, entry.values.iter().map(String::as_str))
                .into_iter()
                .map(Some),
        );
    }
    out
}

/// Does present value `v` match listed value `x` under the positive form of `base`?
fn positive_match(base: Base, x: &str, v: &str, ips: Option<&IpSet>) -> Tri {
    use Base::*;
    let num = |s: &str| s.trim().parse::<f64>().ok();
    let cmp_num = |f: fn(f64, f64) -> bool| match (num(v), num(x)) {
        (Some(a), Some(b)) => Tri::from_bool(f(a, b)),
        _ => Tri::No,
    };
    let cmp_date = |f: fn(i64, i64) -> bool| match (parse_date(v), parse_date(x)) {
        (Some(a), Some(b)) => Tri::from_bool(f(a, b)),
        _ => Tri::No,
    };
    match base {
        StrEq | StrNe | BinEq => Tri::from_bool(v == x),
        StrEqIc | StrNeIc => Tri::from_bool(v.to_lowercase() == x.to_lowercase()),
        StrLike | StrNotLike => Tri::from_bool(glob_match(x, v, false)),
        NumEq | NumNe => cmp_num(|a, b| a == b),
        NumLt => cmp_num(|a, b| a < b),
        NumLe => cmp_num(|a, b| a <= b),
        NumGt => cmp_num(|a, b| a > b),
        NumGe => cmp_num(|a, b| a >= b),
        DateEq | DateNe => cmp_date(|a, b| a == b),
        DateLt => cmp_date(|a, b| a < b),
        DateLe => cmp_date(|a, b| a <= b),
        DateGt => cmp_date(|a, b| a > b),
        DateGe => cmp_date(|a, b| a >= b),
        Bool => Tri::from_bool(v.eq_ignore_ascii_case(x)),
        ArnEq | ArnLike | ArnNe | ArnNotLike => arn_match(x, v),
        // An address key other than aws:SourceIp: containment in the listed set.
        Ip | NotIp => match (IpSet::parse_cidr(v), ips) {
            (Some(a), Some(set)) => Tri::from_bool(a.subtract(set).is_empty()),
            _ => Tri::Maybe,
        },
        Null => Tri::Maybe,
    }
}

/// One entry against one representative value of its key.
fn entry_on_value(entry: &Entry, base: Base, if_exists: bool, qual: Qual, rep: Option<&str>) -> Tri {
    if base == Base::Null {
        // Null matches "true" when the key is absent, "false" when present.
        let want = if rep.is_none() { "true" } else { "false" };
        let other = if rep.is_none() { "false" } else { "true" };
        return entry.values.iter().fold(Tri::No, |acc, x| {
            acc.or(if x.eq_ignore_ascii_case(want) {
                Tri::Yes
            } else if x.eq_ignore_ascii_case(other) {
                Tri::No
            } else {
                Tri::Maybe
            })
        });
    }
    let Some(v) = rep else {
        // Missing key: IfExists and negated operators pass, ForAllValues is
        // vacuously true, ForAnyValue and plain operators fail.
        return Tri::from_bool(if_exists || qual == Qual::AllValues || (qual == Qual::Single && base.negated()));
    };
    let mut any = entry
        .values
        .iter()
        .fold(Tri::No, |acc, x| acc.or(positive_match(base, x, v, entry.ips.as_ref())));
    if entry.unreadable && any != Tri::Yes {
        any = Tri::Maybe;
    }
    // Values are OR'ed; a negated operator holds when none matches.
    if base.negated() { any.not() } else { any }
}

/// The source addresses for which an entry holds, in the given mode.
fn entry_set(env: &Env, entry: &Entry, sc: &Scenario, mode: Mode) -> IpSet {
    let all_or_none = |b: bool| if b { IpSet::full() } else { IpSet::empty() };
    let Op::Known { base, if_exists, qual } = entry.op else {
        // Unknown operator: may match in an Allow, may not in a Deny.
        return all_or_none(mode == Mode::May);
    };
    let dom = match env.domain(&entry.key, sc) {
        KeyDom::SourceIp => match base {
            Base::Ip | Base::NotIp => {
                return match (&entry.ips, entry.unreadable) {
                    (Some(set), false) if base == Base::Ip => set.clone(),
                    (Some(set), false) => set.complement(),
                    // Malformed addresses never restrict.
                    _ => all_or_none(mode == Mode::May),
                };
            }
            // Non-address operators on the address: the caller picks it.
            _ => Dom {
                free: true,
                ..Dom::default()
            },
        },
        KeyDom::Vals(d) => d,
    };
    let reps = reps(&dom, entry, &env.fresh.token);
    let holds = |r: &Option<String>| entry_on_value(entry, base, if_exists, qual, r.as_deref()).holds(mode);
    all_or_none(match mode {
        Mode::May => reps.iter().any(holds),
        Mode::Must => !reps.is_empty() && reps.iter().all(holds),
    })
}

/// Addresses for which the whole Condition block holds (entries are AND'ed).
fn conditions_set(env: &Env, conds: &Conditions, sc: &Scenario, mode: Mode) -> IpSet {
    match conds {
        Conditions::Unreadable if mode == Mode::May => IpSet::full(),
        Conditions::Unreadable => IpSet::empty(),
        Conditions::Entries(entries) => {
            let mut acc = IpSet::full();
            for e in entries {
                acc = acc.intersect(&entry_set(env, e, sc, mode));
                if acc.is_empty() {
                    break;
                }
            }
            acc
        }
    }
}

// ───────────────────────────── principals ─────────────────────────────

/// Is the caller presenting `rep` (None = anonymous) in `account` named by `who`?
fn who_lists(who: &Who, rep: Option<&str>, account: Option<&str>) -> Tri {
    match (who, rep, account) {
        (Who::Everyone, _, _) => Tri::Yes,
        (Who::Unreadable, _, _) => Tri::Maybe,
        (Who::NonPublic, _, _) => Tri::No,
        (_, None, _) | (_, _, None) => Tri::No,
        (Who::AnySigned, Some(_), Some(_)) => Tri::Yes,
        (Who::Account(a), Some(_), Some(acct)) => Tri::from_bool(a == acct),
        (Who::Arn(p), Some(r), Some(acct)) => match arn_fields(p) {
            // An empty account field: any account.
            Some(f) if f[4].is_empty() => Tri::Yes,
            // "arn:aws:iam::<account>:root" names every principal of the account.
            Some(f) if f[5] == "root" && glob_match(f[2], "iam", false) => {
                Tri::from_bool(glob_match(f[4], acct, false))
            }
            _ => arn_match(p, r),
        },
    }
}

/// Does a statement's Principal/NotPrincipal admit the scenario's caller?
fn principal_applies(principals: &Principals, profile: &Profile, mode: Mode, token: &str) -> bool {
    let (whos, negated) = match principals {
        Principals::Unreadable => return mode == Mode::May,
        Principals::Is(w) => (w, false),
        Principals::IsNot(w) => (w, true),
    };
    // "*" decides alone; and only ARN patterns depend on the name the caller picks.
    if whos.iter().any(|w| matches!(w, Who::Everyone)) {
        return !negated;
    }
    let names_matter = whos.iter().any(|w| matches!(w, Who::Arn(_)));
    let reps: Vec<Option<String>> = match &profile.account {
        None => vec![None],
        Some(_) if !names_matter => vec![Some(String::new())],
        Some(acct) => {
            let pats = whos.iter().filter_map(|w| match w {
                Who::Arn(p) => Some(p.as_str()),
                _ => None,
            });
            principal_arn_reps(acct, token, pats).into_iter().map(Some).collect()
        }
    };
    let applies = |rep: &Option<String>| {
        let listed = whos.iter().fold(Tri::No, |acc, w| {
            acc.or(who_lists(w, rep.as_deref(), profile.account.as_deref()))
        });
        (if negated { listed.not() } else { listed }).holds(mode)
    };
    // An Allow admits the caller if any identity it can present is admitted; a
    // Deny stops it only if every identity it could present is covered.
    match mode {
        Mode::May => reps.iter().any(applies),
        Mode::Must => reps.iter().all(applies),
    }
}

// ─────────────────────── profiles, actions, witness paths ───────────────────────

/// A 12-digit account matching a partially wildcarded account field, if any.
fn account_matching(glob: &str) -> Option<String> {
    if !has_wildcard(glob) {
        return is_account_id(glob).then(|| glob.to_string());
    }
    // A field of wildcards only admits every account: AnyAwsAccount covers it.
    if glob.chars().all(|c| c == '*' || c == '?') {
        return None;
    }
    let literal = glob.chars().filter(|c| *c != '*').count();
    let fill = "0".repeat(12usize.checked_sub(literal)?);
    let mut out = String::new();
    let mut filled = false;
    for c in glob.chars() {
        match c {
            '*' if !filled => {
                out.push_str(&fill);
                filled = true;
            }
            '*' => {}
            '?' => out.push('0'),
            c => out.push(c),
        }
    }
    (is_account_id(&out) && glob_match(glob, &out, false)).then_some(out)
}

/// Account ids a string names: a bare id or the account field of an ARN.
fn accounts_in(s: &str) -> Option<String> {
    if is_account_id(s) {
        return Some(s.to_string());
    }
    account_matching(arn_fields(s)?[4])
}

/// The callers worth evaluating. Foreign accounts and organisations are taken
/// from Allow statements only, so adding a Deny can never add a caller.
fn profiles(stmts: &[Stmt], ctx: &Context, fresh: &Fresh) -> Vec<Profile> {
    let mut out = vec![
        Profile {
            caller: Caller::Anonymous,
            account: None,
            orgs: vec![None],
            label: "anonymous callers".into(),
        },
        Profile {
            caller: Caller::AnyAwsAccount,
            account: Some(fresh.account.clone()),
            orgs: vec![None, Some(fresh.org.clone())],
            label: "any AWS account".into(),
        },
    ];
    let trusted = |a: &str| a == ctx.owner || ctx.trust.accounts.iter().any(|t| t == a);
    let mut accounts: Vec<String> = Vec::new();
    let mut orgs: Vec<String> = Vec::new();
    for s in stmts.iter().filter(|s| s.effect == Effect::Allow) {
        if let Principals::Is(whos) | Principals::IsNot(whos) = &s.principals {
            for w in whos {
                match w {
                    Who::Account(a) => accounts.push(a.clone()),
                    Who::Arn(p) => accounts.extend(accounts_in(p)),
                    _ => {}
                }
            }
        }
        let Conditions::Entries(entries) = &s.conditions else {
            continue;
        };
        for e in entries {
            accounts.extend(e.values.iter().filter_map(|v| accounts_in(v)));
            let org_key = matches!(
                e.key.as_str(),
                "aws:principalorgid" | "aws:principalorgpaths" | "aws:sourceorgid" | "aws:sourceorgpaths"
            );
            // With no organisation configured every named organisation is ours.
            if org_key && !ctx.trust.org_ids.is_empty() {
                for v in &e.values {
                    let org = instantiate(v.split('/').next().unwrap_or(v), "", 'x');
                    if !org.is_empty() && !ctx.trust.org_ids.contains(&org) {
                        orgs.push(org);
                    }
                }
            }
        }
    }
    accounts.sort();
    accounts.dedup();
    orgs.sort();
    orgs.dedup();
    for a in accounts.into_iter().filter(|a| !trusted(a) && *a != fresh.account) {
        out.push(Profile {
            caller: Caller::ForeignAccount,
            label: format!("account {a}"),
            account: Some(a),
            orgs: vec![None, Some(fresh.org.clone())],
        });
    }
    for o in orgs {
        out.push(Profile {
            caller: Caller::ForeignAccount,
            label: format!("members of organisation {o}"),
            account: Some(fresh.account.clone()),
            orgs: vec![Some(o)],
        });
    }
    out
}

/// Pattern suffixes left after `text` has been matched as a prefix of `pattern`.
fn glob_prefix_rests<'p>(pattern: &'p str, text: &str) -> Vec<&'p str> {
    let p = pattern.as_bytes();
    // NFA positions in the pattern; `*` may absorb any number of characters.
    let close = |mut set: Vec<usize>| {
        let mut i = 0;
        while i < set.len() {
            let pos = set[i];
            if pos < p.len() && p[pos] == b'*' && !set.contains(&(pos + 1)) {
                set.push(pos + 1);
            }
            i += 1;
        }
        set
    };
    let mut states = close(vec![0]);
    for &c in text.as_bytes() {
        let mut next = Vec::new();
        for &pos in &states {
            if pos >= p.len() {
                continue;
            }
            let to = match p[pos] {
                b'*' => Some(pos),
                b'?' => Some(pos + 1),
                pc if pc == c => Some(pos + 1),
                _ => None,
            };
            if let Some(t) = to.filter(|t| !next.contains(t)) {
                next.push(t);
            }
        }
        states = close(next);
        if states.is_empty() {
            return Vec::new();
        }
    }
    let mut rests: Vec<&str> = states.into_iter().filter_map(|i| pattern.get(i..)).collect();
    rests.sort_unstable();
    rests.dedup();
    rests
}

/// A concrete request target below the resource, with how to show it.
#[derive(Debug, Clone)]
struct Witness {
    /// Full ARN tested against Resource/NotResource.
    arn: String,
    /// Path shown to on-call, relative to the resource ("/" = the resource).
    shown: String,
}

/// Placeholders in witness templates for the fresh token and for `?`.
const TOKEN_SLOT: char = '\u{0}';
const ONE_SLOT: char = '\u{1}';

/// Witness path templates: every Allow Resource pattern's wildcards filled
/// with a fresh path segment, the fresh token, or nothing; then the service's
/// own shapes (the resource itself among them); then the other statements'
/// Resource/NotResource patterns (a Deny's exceptions are where access hides).
/// Returns (suffix template, shown path), suffixes relative to `root`.
fn witness_templates(stmts: &[Stmt], root: &str, service: &Service) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    // Never capped: a dropped witness could hide a reachable path.
    let root_is_target = service.sub_paths.contains(&"");
    let mut push = |suffix: String, shown: String| {
        if (root_is_target || !suffix.is_empty()) && seen.insert(suffix.clone()) {
            out.push((suffix, if shown.is_empty() { "/".into() } else { shown }));
        }
    };
    let slot = TOKEN_SLOT.to_string();
    let slash_slot = format!("/{TOKEN_SLOT}");
    // Sort key: false (first) for Allow statements with a positive Resource.
    let allow_first = |s: &&Stmt| s.effect != Effect::Allow || s.resources.negated;
    let mut ordered: Vec<&Stmt> = stmts.iter().collect();
    ordered.sort_by_key(allow_first);
    let split = ordered.iter().take_while(|s| !allow_first(s)).count();
    for i in 0..=ordered.len() {
        if i == split {
            for sub in service.sub_paths {
                push(sub.replace("{}", &slot), sub.replace("{}", "*"));
            }
        }
        let Some(s) = ordered.get(i) else { break };
        for p in s.resources.items.iter().flatten().flatten() {
            for rest in glob_prefix_rests(p, root) {
                for star in [slash_slot.as_str(), slot.as_str(), ""] {
                    let suffix = instantiate(rest, star, ONE_SLOT);
                    if suffix.is_empty() || suffix.starts_with('/') {
                        // Show the pattern, not the token: "/*", "/logs-*".
                        let shown = match rest.strip_prefix('*') {
                            _ if suffix.is_empty() => String::new(),
                            _ if rest.starts_with('/') => rest.to_string(),
                            Some(tail) => format!("/*{tail}"),
                            None => suffix.replace(TOKEN_SLOT, "*").replace(ONE_SLOT, "?"),
                        };
                        push(suffix, shown);
                    }
                }
            }
        }
    }
    out
}

fn fill(template: &str, token: &str) -> String {
    template
        .replace(TOKEN_SLOT, token)
        .replace(ONE_SLOT, &token[..token.len().min(1)])
}

/// The fresh path token: of a few candidates the policy does not spell out,
/// the one that the fewest Deny Resource patterns cover in the witnesses, so a
/// Deny on `/logs-z*` cannot hide that `/logs-*` is otherwise reachable.
fn choose_token(templates: &[(String, String)], stmts: &[Stmt], root: &str, text: &str) -> String {
    const CANDIDATES: [&str; 8] = ["zq0x", "qx7k", "kv3j", "jw5q", "xq2v", "vk9z", "wj4x", "yh8w"];
    let denies: Vec<&str> = stmts
        .iter()
        .filter(|s| s.effect == Effect::Deny)
        .flat_map(|s| s.resources.items.iter().flatten().flatten())
        .map(String::as_str)
        .filter(|p| has_wildcard(p))
        .collect();
    let score = |t: &str| -> usize {
        templates
            .iter()
            .filter(|(tpl, _)| tpl.contains(TOKEN_SLOT) || tpl.contains(ONE_SLOT))
            .map(|(tpl, _)| {
                let arn = format!("{root}{}", fill(tpl, t));
                denies.iter().filter(|p| glob_match(p, &arn, false)).count()
            })
            .sum()
    };
    let lower = text.to_ascii_lowercase();
    CANDIDATES
        .iter()
        .filter(|c| !lower.contains(*c))
        .min_by_key(|c| if denies.is_empty() { 0 } else { score(c) })
        .unwrap_or(&CANDIDATES[0])
        .to_string()
}

fn witnesses(templates: &[(String, String)], root: &str, token: &str) -> Vec<Witness> {
    templates
        .iter()
        .map(|(tpl, shown)| Witness {
            arn: format!("{root}{}", fill(tpl, token)),
            shown: shown.clone(),
        })
        .collect()
}

/// (action, class) pairs to try; a fresh action stands for "everything else".
fn actions(service: &Service, token: &str) -> Vec<(String, ActionClass)> {
    let mut out: Vec<(String, ActionClass)> = Vec::new();
    out.extend(service.read.iter().map(|a| (a.to_string(), ActionClass::Read)));
    out.extend(service.write.iter().map(|a| (a.to_string(), ActionClass::Write)));
    out.extend(service.other.iter().map(|a| (a.to_string(), ActionClass::Other)));
    out.push((format!("{}:Zz{token}", service.prefix), ActionClass::Other));
    out
}

/// Does a statement's Action/NotAction or Resource/NotResource cover `target`?
fn patterns_cover(p: &Patterns, target: &str, ignore_case: bool, absent: Tri) -> Tri {
    let Some(items) = &p.items else { return absent };
    let listed = items.iter().fold(Tri::No, |acc, item| {
        acc.or(match item {
            Some(pat) => Tri::from_bool(glob_match(pat, target, ignore_case)),
            None => Tri::Maybe,
        })
    });
    if p.negated { listed.not() } else { listed }
}

// ───────────────────────────── evaluation ─────────────────────────────

/// One reachable (caller, action, path) combination.
#[derive(Debug, Clone)]
struct Finding {
    reach: Reach,
    profile: usize,
    net: Net,
    action: usize,
    witness: usize,
    /// Admitted addresses after Denies, private space and trusted ranges.
    admitted: IpSet,
    allows: Vec<usize>,
}

/// What the per-class search found.
#[derive(Debug, Default)]
struct Search {
    /// Best finding per class: Read, Write, Other.
    best: [Option<Finding>; 3],
    /// Allow statements that would reach outsiders if no Deny existed.
    fenced_allows: Vec<usize>,
    /// Deny statements that removed access an Allow granted.
    fencing_denies: Vec<usize>,
    /// Allows open to everyone, but only from a narrow public range.
    narrow_allows: Vec<usize>,
}

fn class_slot(c: ActionClass) -> usize {
    match c {
        ActionClass::Read => 0,
        ActionClass::Write => 1,
        ActionClass::Other => 2,
    }
}

/// Would this admitted set let the profile in, and how far?
fn reach_of(profile: &Profile, net: Net, admitted: &IpSet) -> Option<Reach> {
    let open = match net {
        Net::OwnVpc => !admitted.is_empty(),
        Net::Internet if profile.caller == Caller::ForeignAccount => !admitted.is_empty(),
        Net::Internet => admitted.is_wide(),
    };
    open.then_some(match profile.caller {
        Caller::ForeignAccount => Reach::CrossAccount,
        _ => Reach::Public,
    })
}

struct Prepared<'a> {
    /// The resource ARN without a trailing "/" or "/*".
    root: String,
    stmts: Vec<Stmt<'a>>,
    profiles: Vec<Profile>,
    actions: Vec<(String, ActionClass)>,
    witnesses: Vec<Witness>,
    /// covers[s][a * witnesses + w]: statement s applies to action a on witness w.
    covers: Vec<Vec<bool>>,
    /// Private space plus trusted ranges: never an outsider's address.
    excluded: IpSet,
    mentions_transport: bool,
}

fn search(env: &Env, prep: &Prepared) -> Search {
    let mut out = Search::default();
    let nw = prep.witnesses.len();
    let token = env.fresh.token.as_str();
    for (pi, profile) in prep.profiles.iter().enumerate() {
        let nets: &[Net] = if profile.account.is_none() {
            &[Net::Internet]
        } else {
            &[Net::Internet, Net::OwnVpc]
        };
        let transports: &[bool] = if prep.mentions_transport {
            &[true, false]
        } else {
            &[true]
        };
        for &net in nets {
            for &secure in transports {
                let sc = Scenario { profile, net, secure };
                // Addresses for which each statement applies to this caller.
                let sets: Vec<IpSet> = prep
                    .stmts
                    .iter()
                    .map(|s| {
                        let mode = s.effect.mode();
                        if principal_applies(&s.principals, profile, mode, token) {
                            conditions_set(env, &s.conditions, &sc, mode)
                        } else {
                            IpSet::empty()
                        }
                    })
                    .collect();
                // Cells covered by the same statements have the same outcome.
                // (Keyed by control-plane-ness too: only data-plane cells record fences.)
                let mut memo: std::collections::HashMap<(bool, Vec<usize>), Option<Cell>> = Default::default();
                for (ai, (_, class)) in prep.actions.iter().enumerate() {
                    let slot = class_slot(*class);
                    // A public finding for this class cannot be improved upon.
                    if out.best[slot].as_ref().is_some_and(|f| f.reach == Reach::Public) {
                        continue;
                    }
                    for wi in 0..nw {
                        let cell = ai * nw + wi;
                        let applying: Vec<usize> = (0..prep.stmts.len())
                            .filter(|&si| prep.covers[si][cell] && !sets[si].is_empty())
                            .collect();
                        if !applying.iter().any(|&si| prep.stmts[si].effect == Effect::Allow) {
                            continue;
                        }
                        let outcome = memo.entry((slot == 2, applying)).or_insert_with_key(|(_, applying)| {
                            judge_cell(&mut out, prep, &sets, applying, profile, net, slot)
                        });
                        if let Some(c) = outcome
                            && out.best[slot].as_ref().is_none_or(|f| c.reach > f.reach)
                        {
                            out.best[slot] = Some(Finding {
                                reach: c.reach,
                                profile: pi,
                                net,
                                action: ai,
                                witness: wi,
                                admitted: c.admitted.clone(),
                                allows: c.allows.clone(),
                            });
                        }
                    }
                }
            }
        }
    }
    out
}

/// What a set of applying statements lets through.
#[derive(Debug, Clone)]
struct Cell {
    reach: Reach,
    admitted: IpSet,
    allows: Vec<usize>,
}

/// Combine the statements that apply to one (action, path): Allows unioned,
/// Denies subtracted. Records fenced and narrow grants for the reason.
fn judge_cell(
    out: &mut Search,
    prep: &Prepared,
    sets: &[IpSet],
    applying: &[usize],
    profile: &Profile,
    net: Net,
    slot: usize,
) -> Option<Cell> {
    let of = |effect: Effect| {
        applying
            .iter()
            .copied()
            .filter(move |&si| prep.stmts[si].effect == effect)
    };
    let granted = of(Effect::Allow).fold(IpSet::empty(), |acc, si| acc.union(&sets[si]));
    let denied = of(Effect::Deny).fold(IpSet::empty(), |acc, si| acc.union(&sets[si]));
    let outsider = |s: &IpSet| match net {
        Net::Internet => s.subtract(&prep.excluded),
        Net::OwnVpc => s.clone(),
    };
    let admitted = outsider(&granted.subtract(&denied));
    let allows_into = |target: &IpSet| -> Vec<usize> {
        of(Effect::Allow)
            .filter(|&si| !sets[si].intersect(target).is_empty())
            .map(|si| prep.stmts[si].index)
            .collect()
    };
    if let Some(reach) = reach_of(profile, net, &admitted) {
        let allows = allows_into(&admitted);
        return Some(Cell {
            reach,
            admitted,
            allows,
        });
    }
    if slot == 2 {
        return None;
    }
    let without_denies = outsider(&granted);
    if reach_of(profile, net, &without_denies).is_some() {
        // An Allow reaches outsiders, a Deny takes it away.
        for i in allows_into(&without_denies) {
            push_unique(&mut out.fenced_allows, i);
        }
        for si in of(Effect::Deny) {
            if !sets[si].intersect(&without_denies).is_empty() {
                push_unique(&mut out.fencing_denies, prep.stmts[si].index);
            }
        }
    } else if profile.caller != Caller::ForeignAccount && !admitted.is_empty() {
        for i in allows_into(&admitted) {
            push_unique(&mut out.narrow_allows, i);
        }
    }
    None
}

fn push_unique(v: &mut Vec<usize>, i: usize) {
    if !v.contains(&i) {
        v.push(i);
    }
}

/// Evaluate a resource policy for the callers that matter. Err only when the
/// input is not a policy at all; an absent policy (null, "") is restricted.
pub fn evaluate(policy: &Value, ctx: &Context) -> Result<Verdict, String> {
    let Some(doc) = policy_object(policy)? else {
        return Ok(restricted(
            "There is no resource policy, so only identities of the owning account can get in through their own IAM policies.".into(),
            Vec::new(),
            Vec::new(),
        ));
    };
    let mut notes = Notes::default();
    let stmts = parse_statements(&doc, &mut notes)?;
    let root = ctx.resource_arn.trim_end_matches("/*").trim_end_matches('/');
    let templates = witness_templates(&stmts, root, ctx.service);
    let text = doc.to_string();
    let token = choose_token(&templates, &stmts, root, &text);
    let fresh = Fresh::new(&doc, &text, token, ctx.owner, ctx.trust);
    let region = arn_fields(root).map(|f| f[3]).filter(|r| !r.is_empty());
    let env = Env {
        ctx,
        fresh: &fresh,
        region,
    };
    let witnesses = witnesses(&templates, root, &fresh.token);
    let actions = actions(ctx.service, &fresh.token);
    let covers = stmts
        .iter()
        .map(|s| {
            let mode = s.effect.mode();
            // An absent Action cannot be judged; an absent Resource is "all".
            let res: Vec<bool> = witnesses
                .iter()
                .map(|w| patterns_cover(&s.resources, &w.arn, false, Tri::Yes).holds(mode))
                .collect();
            let mut row = Vec::with_capacity(actions.len() * witnesses.len());
            for (a, _) in &actions {
                let act = patterns_cover(&s.actions, a, true, Tri::Maybe).holds(mode);
                row.extend(res.iter().map(|&r| act && r));
            }
            row
        })
        .collect();
    // Malformed trusted ranges are skipped: trust never widens a verdict.
    let excluded = ctx
        .trust
        .cidrs
        .iter()
        .filter_map(|c| IpSet::parse_cidr(c))
        .fold(IpSet::private(), |acc, c| acc.union(&c));
    let mentions_transport = stmts.iter().any(|s| match &s.conditions {
        Conditions::Entries(e) => e.iter().any(|e| e.key == "aws:securetransport"),
        Conditions::Unreadable => false,
    });
    let prep = Prepared {
        root: root.to_string(),
        profiles: profiles(&stmts, ctx, &fresh),
        stmts,
        actions,
        witnesses,
        covers,
        excluded,
        mentions_transport,
    };
    let found = search(&env, &prep);
    Ok(verdict(&prep, &found, &notes))
}

fn restricted(reason: String, allows: Vec<usize>, denies: Vec<usize>) -> Verdict {
    Verdict {
        reach: Reach::Restricted,
        reason,
        caller: None,
        action: None,
        path: None,
        allow_statements: allows,
        deny_statements: denies,
        statement: None,
    }
}

/// "statement 2", "statements 1 and 3", "statements 1, 2 and 4".
fn statements_phrase(ix: &[usize]) -> String {
    let nums: Vec<String> = ix.iter().map(usize::to_string).collect();
    match nums.as_slice() {
        [] => "no statement".into(),
        [one] => format!("statement {one}"),
        [init @ .., last] => format!("statements {} and {last}", init.join(", ")),
    }
}

/// "GET" for OpenSearch HTTP actions, the action name otherwise.
fn action_phrase(action: &str) -> String {
    match action.strip_prefix("es:ESHttp") {
        Some(verb) => verb.to_ascii_uppercase(),
        None => action.to_string(),
    }
}

fn where_phrase(f: &Finding, excluded: &IpSet) -> String {
    match f.net {
        Net::OwnVpc => " through its own VPC endpoint (the request carries no aws:SourceIp)".into(),
        Net::Internet if f.admitted.union(excluded).is_full() => " from any address".into(),
        Net::Internet if f.admitted.union(excluded).v4.iv == [(0, V4_MAX)] => " from any IPv4 address".into(),
        Net::Internet if f.admitted.union(excluded).v6.iv == [(0, V6_MAX)] => " from any IPv6 address".into(),
        Net::Internet => {
            let (v4, v6) = f.admitted.sizes();
            if v4 > V4_PUBLIC_THRESHOLD {
                format!(" from {v4} public IPv4 addresses (more than a /8)")
            } else if v6 > V6_PUBLIC_THRESHOLD {
                " from more than a /32 of public IPv6 space".into()
            } else {
                " from the listed addresses".into()
            }
        }
    }
}

fn verdict(prep: &Prepared, found: &Search, notes: &Notes) -> Verdict {
    let [read, write, other] = &found.best;
    // Report the worse of read and write; reads win a tie (a leak is a leak).
    let data = match (read, write) {
        (Some(r), Some(w)) if w.reach > r.reach => Some((w, Some(r))),
        (Some(r), w) => Some((r, w.as_ref())),
        (None, Some(w)) => Some((w, None)),
        (None, None) => None,
    };
    let control = |below: Reach| -> String {
        match other {
            Some(o) if o.reach > below => {
                let p = &prep.profiles[o.profile];
                format!(
                    "; control-plane actions such as {} are open to {} by {}, but they cannot read or change data",
                    prep.actions[o.action].0,
                    p.label,
                    statements_phrase(&o.allows)
                )
            }
            _ => String::new(),
        }
    };
    let extras = notes_phrase(notes);
    let Some((f, second)) = data else {
        let reason = restricted_reason(prep, found) + &control(Reach::Restricted) + &extras + ".";
        let mut allows = found.fenced_allows.clone();
        for &i in &found.narrow_allows {
            push_unique(&mut allows, i);
        }
        allows.sort_unstable();
        let mut denies = found.fencing_denies.clone();
        denies.sort_unstable();
        return restricted(reason, allows, denies);
    };
    let profile = &prep.profiles[f.profile];
    let (action, class) = &prep.actions[f.action];
    let witness = &prep.witnesses[f.witness];
    let mut reason = match f.reach {
        Reach::Public => format!(
            "{} on {} is allowed to {}{} by {}",
            action_phrase(action),
            witness.shown,
            match profile.caller {
                Caller::Anonymous => "anyone, unsigned,",
                _ => "any AWS account",
            },
            where_phrase(f, &prep.excluded),
            statements_phrase(&f.allows)
        ),
        _ => format!(
            "{} on {} is granted to {}, outside the owner's control, by {}",
            action_phrase(action),
            witness.shown,
            profile.label,
            statements_phrase(&f.allows)
        ),
    };
    if let Some(s) = second.filter(|s| s.reach == f.reach) {
        let what = if s.action < f.action { "reads" } else { "writes" };
        let _ = write!(
            reason,
            " ({what} such as {} too)",
            action_phrase(&prep.actions[s.action].0)
        );
    }
    // Denies that name this action but did not stop the request.
    let mut denies = Vec::new();
    for s in prep.stmts.iter().filter(|s| s.effect == Effect::Deny) {
        if !patterns_cover(&s.actions, action, true, Tri::Maybe).holds(Mode::Must) {
            continue;
        }
        denies.push(s.index);
        if patterns_cover(&s.resources, &witness.arn, false, Tri::Yes).holds(Mode::Must) {
            let _ = write!(reason, "; the Deny in statement {} does not cover this caller", s.index);
        } else {
            let _ = write!(
                reason,
                "; the Deny in statement {} covers only {}",
                s.index,
                resources_phrase(&s.resources, &prep.root)
            );
        }
    }
    reason += &control(f.reach);
    reason += &extras;
    reason.push('.');
    let statement = f
        .allows
        .first()
        .and_then(|i| prep.stmts.iter().find(|s| s.index == *i))
        .map(|s| s.raw.clone());
    Verdict {
        reach: f.reach,
        reason,
        caller: Some(profile.caller),
        action: Some(*class),
        path: Some(witness.shown.clone()),
        allow_statements: f.allows.clone(),
        deny_statements: denies,
        statement,
    }
}

fn resources_phrase(p: &Patterns, root: &str) -> String {
    // Paths below this resource are shown relative to it, like the verdict path.
    let relative = |r: &String| match r.strip_prefix(root) {
        Some("") => "the resource itself".to_string(),
        Some(rest) if rest.starts_with('/') => rest.to_string(),
        _ => r.clone(),
    };
    let items: Vec<String> = p.items.iter().flatten().flatten().map(relative).collect();
    let list = if items.is_empty() {
        "unreadable resources".to_string()
    } else {
        items.join(", ")
    };
    if p.negated {
        format!("resources other than {list}")
    } else {
        list
    }
}

fn restricted_reason(prep: &Prepared, found: &Search) -> String {
    if !found.fenced_allows.is_empty() {
        let mut denies = found.fencing_denies.clone();
        denies.sort_unstable();
        format!(
            "The Allow in {} would admit callers from outside the account, but the Deny in {} fences every such request",
            statements_phrase(&found.fenced_allows),
            statements_phrase(&denies)
        )
    } else if !found.narrow_allows.is_empty() {
        format!(
            "{} {} callers outside the account only from a public range no wider than a /8, a network restriction",
            capitalised(&statements_phrase(&found.narrow_allows)),
            if found.narrow_allows.len() == 1 {
                "admits"
            } else {
                "admit"
            }
        )
    } else if !prep.stmts.iter().any(|s| s.effect == Effect::Allow) {
        "No statement allows anything, so only identities of the owning account can get in through their own IAM policies".into()
    } else {
        "No Allow admits a data-plane request from outside the owning account, its trusted accounts, organisations, VPCs or ranges".into()
    }
}

fn notes_phrase(notes: &Notes) -> String {
    let mut out = String::new();
    let mut ops = notes.unknown_ops.clone();
    ops.sort();
    ops.dedup();
    for op in ops {
        let _ = write!(
            out,
            "; \"{op}\" is not an IAM condition operator (they are case-sensitive), so it was taken as matching in Allow statements and as not matching in Deny statements"
        );
    }
    for (i, e) in &notes.ignored_effects {
        let _ = write!(out, "; statement {i} has Effect {e} and was ignored");
    }
    for i in &notes.not_statements {
        let _ = write!(out, "; statement {i} is not an object and was ignored");
    }
    out
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod cases;
#[cfg(test)]
mod grammar;
#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;
