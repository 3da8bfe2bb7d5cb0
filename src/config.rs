//! `lockwatch.toml`: parse, then build. [`Config::parse`] is pure (no file, no environment is
//! read): it checks everything and keeps each source's table as plain data. [`Config::build`]
//! runs at start-up: it reads secrets and builds the sources and the alert sink. Every error
//! names the file, the line, and the fix.

use crate::model::Severity;
use crate::secret::{self, Secret};
use crate::sources::{self, Common, Source};
use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

pub const DEFAULT_PATH: &str = "/etc/lockwatch/lockwatch.toml";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    daemon: RawDaemon,
    #[serde(default)]
    alerts: RawAlerts,
    #[serde(default)]
    sources: Vec<toml::Spanned<toml::Table>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDaemon {
    schedule: Option<toml::Spanned<String>>,
    state_dir: Option<PathBuf>,
    metrics_listen: Option<toml::Spanned<String>>,
    blind_after: Option<toml::Spanned<u32>>,
    retention: Option<toml::Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlerts {
    remind_every: Option<toml::Spanned<String>>,
    min_severity: Option<toml::Spanned<String>>,
    max_suppression: Option<toml::Spanned<String>>,
    flap_after: Option<toml::Spanned<u32>>,
    email: Option<toml::Spanned<EmailConfig>>,
    alertmanager: Option<toml::Spanned<AlertmanagerConfig>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertmanagerConfig {
    /// Every member of the Alertmanager cluster.
    urls: Vec<String>,
    timeout: Option<String>,
    resend: Option<String>,
}

/// `[alerts.alertmanager]`, checked. Pure.
fn validate_alertmanager(a: AlertmanagerConfig) -> Result<crate::sinks::alertmanager::Settings, String> {
    if a.urls.is_empty() {
        return Err("`urls` is empty: list every member of the cluster, e.g. [\"http://127.0.0.1:9093\"]".into());
    }
    let urls = a
        .urls
        .iter()
        .map(|u| {
            let parsed = url::Url::parse(u).map_err(|e| format!("url {u:?}: {e}"))?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
                return Err(format!("url {u:?}: write http://host:9093 (or https://)"));
            }
            // Alertmanager may live under a path prefix (--web.route-prefix): keep it, as a directory.
            let mut parsed = parsed;
            if !parsed.path().ends_with('/') {
                let p = format!("{}/", parsed.path());
                parsed.set_path(&p);
            }
            Ok(parsed)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let duration = |name: &str, v: &Option<String>, default: u64| -> Result<Duration, String> {
        match v {
            None => Ok(Duration::from_secs(default)),
            Some(t) => humantime::parse_duration(t).map_err(|e| format!("{name} {t:?}: {e} (write e.g. \"30s\")")),
        }
    };
    let resend = duration("resend", &a.resend, 60)?;
    if resend < Duration::from_secs(1) {
        return Err("resend must be at least 1s".into());
    }
    Ok(crate::sinks::alertmanager::Settings {
        urls,
        timeout: duration("timeout", &a.timeout, 10)?,
        resend,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain SMTP. Only for a relay on the same host or a trusted network.
    None,
    Starttls,
    /// Implicit TLS (SMTPS, usually port 465).
    Tls,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    pub smtp_host: String,
    pub smtp_port: Option<u16>,
    pub tls: SmtpTls,
    pub from: String,
    pub to: Vec<String>,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    pub password_env: Option<String>,
    /// PEM bundle to verify the SMTP server's certificate, besides the system's roots.
    pub ca_file: Option<PathBuf>,
    #[serde(default, with = "humantime_serde_opt")]
    pub timeout: Option<Duration>,
}

mod humantime_serde_opt {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| {
                humantime::parse_duration(&s)
                    .map_err(|e| serde::de::Error::custom(format!("{s:?}: {e} (write e.g. \"30s\")")))
            })
            .transpose()
    }
}

/// Email settings after validation; the password is only named here (read by `build`).
#[derive(Debug, Clone, PartialEq)]
pub struct EmailSettings {
    pub smtp_host: String,
    pub smtp_port: u16,
    pub tls: SmtpTls,
    pub from: lettre::message::Mailbox,
    pub to: Vec<lettre::message::Mailbox>,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    pub password_env: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub timeout: Duration,
}

/// Email settings with the SMTP password loaded.
#[derive(Debug, Clone)]
pub struct Email {
    pub smtp_host: String,
    pub smtp_port: u16,
    pub tls: SmtpTls,
    pub from: lettre::message::Mailbox,
    pub to: Vec<lettre::message::Mailbox>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub ca_file: Option<PathBuf>,
    pub timeout: Duration,
}

/// A built, runnable source.
pub struct SourceEntry {
    pub name: String,
    pub kind: String,
    pub source: Box<dyn Source>,
    pub timeout: Duration,
}

/// One `[[sources]]` entry as plain data: checked by its kind, not built.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceConfig {
    pub common: Common,
    pub kind: String,
    /// The kind's own keys (without `kind`, `name`, `timeout`, `reach`).
    pub table: toml::Table,
    /// Where the entry starts, and where each of its keys is, for errors found when building.
    pub line: usize,
    pub key_lines: Vec<(String, usize)>,
}

/// How lockwatch decides: the settings of the pipeline, with their defaults in one place.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Consecutive failed cycles after which a source raises `lockwatch.source.blind`.
    pub blind_after: u32,
    pub remind_every: Duration,
    pub min_severity: Severity,
    /// The longest a suppression may last (there is no "forever").
    pub max_suppression: Duration,
    /// Openings of one rule within an hour after which it counts as flapping (0: never).
    pub flap_after: u32,
    /// How long history is kept: older snapshots (never a baseline or the latest), resolved
    /// alerts, sent mail and ended suppressions are pruned.
    pub retention: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            blind_after: 3,
            remind_every: Duration::from_secs(4 * 3600),
            min_severity: Severity::Medium,
            max_suppression: Duration::from_secs(90 * 86400),
            flap_after: 3,
            retention: Duration::from_secs(400 * 86400),
        }
    }
}

pub struct Config {
    pub path: PathBuf,
    pub schedule: cron::Schedule,
    pub schedule_text: String,
    pub state_dir: PathBuf,
    pub metrics_listen: std::net::SocketAddr,
    pub settings: Settings,
    pub email: Option<EmailSettings>,
    /// `[alerts.alertmanager]`: alerts also (or only) to Alertmanager.
    pub alertmanager: Option<crate::sinks::alertmanager::Settings>,
    pub sources: Vec<SourceConfig>,
    /// Things worth fixing that do not stop lockwatch (printed by check-config, logged by run).
    pub warnings: Vec<String>,
}

/// What `build` makes of a config: runnable sources, and where alerts go.
pub struct Runtime {
    pub sources: Vec<SourceEntry>,
    pub email: Option<Email>,
}

/// A configuration error: where, what, and what to do.
#[derive(Debug)]
pub struct ConfigError {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{}: {}", self.path.display(), l, self.message),
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// "a string", "an integer": TOML's own type names, with their article.
fn toml_article(type_str: &str) -> String {
    let article = if type_str.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {type_str}")
}

/// One sentence for a schedule cron cannot read. The common slip is the five-field crontab
/// form: say so and give its six-field spelling.
fn schedule_message(text: &str, cron_error: &str) -> String {
    let fields: Vec<&str> = text.split_whitespace().collect();
    let form = "six or seven fields, seconds first (\"0 */5 * * * *\" = every 5 minutes; \"*/30 * * * * *\" = every 30 s); day-of-week counts 1 = Sunday";
    if fields.len() == 5 {
        return format!(
            "schedule {text:?} has five fields, like a crontab line; lockwatch's schedule has {form}. For this one write \"0 {text}\"."
        );
    }
    // The cron crate's own message spans lines and draws a caret: keep its first line only.
    let why = cron_error
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .trim_end_matches(':');
    format!("schedule {text:?} is not a cron expression lockwatch can read ({why}): it takes {form}.")
}

/// A duration the way people write it in the config: the largest unit that divides it
/// exactly ("90d", "4h", "30s"), not humantime's calendar breakdown ("2months 29days 2h…").
pub fn show_duration(d: Duration) -> String {
    let ms = d.as_millis();
    for (unit, size) in [("d", 86_400_000u128), ("h", 3_600_000), ("m", 60_000), ("s", 1_000)] {
        if ms >= size && ms % size == 0 {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].bytes().filter(|b| *b == b'\n').count() + 1
}

/// Does any `url`-like value in the config carry a password?
fn holds_inline_password(text: &str) -> bool {
    fn walk(v: &toml::Value) -> bool {
        match v {
            toml::Value::String(s) => url::Url::parse(s).is_ok_and(|u| u.password().is_some()),
            toml::Value::Array(a) => a.iter().any(walk),
            toml::Value::Table(t) => t.values().any(walk),
            _ => false,
        }
    }
    text.parse::<toml::Table>().is_ok_and(|t| t.values().any(walk))
}

/// The line of `key = ...` inside the table that starts at `start`, up to the next header.
fn key_line_in_entry(text: &str, start: usize, key: &str) -> Option<usize> {
    let first = line_of(text, start);
    text.lines()
        .enumerate()
        .skip(first) // the header line itself
        .take_while(|(_, l)| !l.trim_start().starts_with('['))
        .find(|(_, l)| {
            l.trim_start()
                .strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map(|(i, _)| i + 1)
}

pub const DEFAULT_SCHEDULE: &str = "*/30 * * * * *";

/// serde's words for types, in TOML's: `expected u32` becomes `expected a whole number`, a `map`
/// a table, a `sequence` an array. Pure.
pub fn in_toml_words(message: &str) -> String {
    let mut m = message.to_string();
    for int in ["u8", "u16", "u32", "u64", "usize", "i8", "i16", "i32", "i64", "isize"] {
        m = m.replace(
            &format!("expected {int}"),
            "expected a whole number (written without quotes, e.g. 3)",
        );
    }
    for float in ["f32", "f64"] {
        m = m.replace(
            &format!("expected {float}"),
            "expected a number (written without quotes)",
        );
    }
    m.replace("invalid type: map", "invalid type: a table")
        .replace("expected a map", "expected a table")
        .replace("invalid type: sequence", "invalid type: an array")
        .replace("expected a sequence", "expected an array")
        .replace("invalid type: string", "invalid type: the string")
        .replace("invalid type: integer", "invalid type: the number")
        .replace("invalid type: boolean", "invalid type: the boolean")
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: path.to_path_buf(),
            line: None,
            message: format!("cannot read the config file: {e} (pass --config PATH or set LOCKWATCH_CONFIG)"),
        })?;
        let mut config = Config::parse(path, &text)?;
        use std::os::unix::fs::PermissionsExt;
        let world_readable = std::fs::metadata(path)
            .map(|m| m.permissions().mode() & 0o004 != 0)
            .unwrap_or(false);
        if world_readable && holds_inline_password(&text) {
            config.warnings.push(format!(
                "{} is readable by every user and holds a password in a URL: chmod 640 it, or move the password to password_file",
                path.display()
            ));
        }
        Ok(config)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let err = |span: Option<std::ops::Range<usize>>, message: String| ConfigError {
            path: path.to_path_buf(),
            line: span.map(|s| line_of(text, s.start)),
            message,
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| err(e.span(), in_toml_words(e.message().trim())))?;

        let schedule_text = raw
            .daemon
            .schedule
            .as_ref()
            .map(|s| s.get_ref().clone())
            .unwrap_or_else(|| DEFAULT_SCHEDULE.into());
        let schedule = cron::Schedule::from_str(&schedule_text).map_err(|e| {
            err(
                raw.daemon.schedule.as_ref().map(|s| s.span()),
                schedule_message(&schedule_text, &e.to_string()),
            )
        })?;

        let metrics_listen = match &raw.daemon.metrics_listen {
            None => "127.0.0.1:9187".parse().expect("literal address"),
            Some(s) => s.get_ref().parse().map_err(|e| {
                err(
                    Some(s.span()),
                    format!(
                        "metrics_listen {:?}: {e}; write host:port, e.g. \"127.0.0.1:9187\"",
                        s.get_ref()
                    ),
                )
            })?,
        };

        let defaults = Settings::default();
        let blind_after = match &raw.daemon.blind_after {
            None => defaults.blind_after,
            Some(b) if *b.get_ref() == 0 => {
                return Err(err(Some(b.span()), "blind_after must be at least 1 (cycles)".into()));
            }
            Some(b) => *b.get_ref(),
        };
        let remind_every = match &raw.alerts.remind_every {
            None => defaults.remind_every,
            Some(s) => humantime::parse_duration(s.get_ref()).map_err(|e| {
                err(
                    Some(s.span()),
                    format!(
                        "remind_every {:?}: {e}; write a duration such as \"4h\" or \"30m\"",
                        s.get_ref()
                    ),
                )
            })?,
        };
        let min_severity = match &raw.alerts.min_severity {
            None => defaults.min_severity,
            Some(s) => Severity::parse(s.get_ref()).ok_or_else(|| {
                err(
                    Some(s.span()),
                    format!("min_severity {:?}: use one of low, medium, high, critical", s.get_ref()),
                )
            })?,
        };

        let flap_after = raw
            .alerts
            .flap_after
            .as_ref()
            .map(|f| *f.get_ref())
            .unwrap_or(defaults.flap_after);
        let max_suppression = match &raw.alerts.max_suppression {
            None => defaults.max_suppression,
            Some(s) => humantime::parse_duration(s.get_ref()).map_err(|e| {
                err(
                    Some(s.span()),
                    format!(
                        "max_suppression {:?}: {e}; write a duration such as \"90d\"",
                        s.get_ref()
                    ),
                )
            })?,
        };
        let retention = match &raw.daemon.retention {
            None => defaults.retention,
            Some(s) => {
                let d = humantime::parse_duration(s.get_ref()).map_err(|e| {
                    err(
                        Some(s.span()),
                        format!("retention {:?}: {e}; write a duration such as \"400d\"", s.get_ref()),
                    )
                })?;
                if d < Duration::from_secs(86400) {
                    return Err(err(
                        Some(s.span()),
                        format!(
                            "retention {:?} is shorter than a day: history would vanish under on-call's feet; keep at least \"30d\"",
                            s.get_ref()
                        ),
                    ));
                }
                d
            }
        };
        let email = match raw.alerts.email {
            None => None,
            Some(spanned) => {
                let span = spanned.span();
                Some(
                    validate_email(spanned.into_inner())
                        .map_err(|m| err(Some(span), format!("[alerts.email]: {m}")))?,
                )
            }
        };

        let alertmanager = match raw.alerts.alertmanager {
            None => None,
            Some(spanned) => {
                let span = spanned.span();
                Some(
                    validate_alertmanager(spanned.into_inner())
                        .map_err(|m| err(Some(span), format!("[alerts.alertmanager]: {m}")))?,
                )
            }
        };

        let mut sources = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for entry in raw.sources {
            let span = entry.span();
            let mut table = entry.into_inner();
            // Errors about one key point at that key's line; the rest at the [[sources]] header.
            let here = |m: String| {
                let quoted = m.split('`').nth(1).unwrap_or_default();
                let leading = m.split([' ', ':']).next().unwrap_or_default();
                let line = key_line_in_entry(text, span.start, quoted)
                    .or_else(|| key_line_in_entry(text, span.start, leading))
                    .unwrap_or_else(|| line_of(text, span.start));
                ConfigError {
                    path: path.to_path_buf(),
                    line: Some(line),
                    message: format!("[[sources]]: {m}"),
                }
            };
            let take_str = |t: &mut toml::Table, key: &str| -> Result<Option<String>, String> {
                match t.remove(key) {
                    None => Ok(None),
                    Some(toml::Value::String(s)) => Ok(Some(s)),
                    Some(other) => Err(format!(
                        "`{key}` expects a string (in quotes{}), not {} {other}",
                        match key {
                            "timeout" => ", e.g. \"30s\"",
                            _ => "",
                        },
                        toml_article(other.type_str())
                    )),
                }
            };
            let kind = take_str(&mut table, "kind").map_err(&here)?.ok_or_else(|| {
                here(format!(
                    "missing `kind`; one of: {}",
                    sources::KINDS.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
                ))
            })?;
            let name = take_str(&mut table, "name")
                .map_err(&here)?
                .ok_or_else(|| here("missing `name` (a short label, e.g. \"cache\")".into()))?;
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
                return Err(here(format!("name {name:?}: use letters, digits, '-', '_' or '.'")));
            }
            if !seen.insert(name.clone()) {
                return Err(here(format!("two sources are named {name:?}; names must be unique")));
            }
            let timeout = match take_str(&mut table, "timeout").map_err(&here)? {
                None => Duration::from_secs(30),
                Some(t) => humantime::parse_duration(&t)
                    .map_err(|e| here(format!("`timeout` {t:?}: {e} (write e.g. \"30s\", \"2m\")")))?,
            };
            let reach = match take_str(&mut table, "reach").map_err(&here)? {
                None => None,
                Some(r) => Some(match r.as_str() {
                    "internet" => crate::net::Reach::Internet,
                    "private" => crate::net::Reach::Private,
                    "loopback" => crate::net::Reach::Loopback,
                    other => {
                        return Err(here(format!(
                            "reach {other:?}: use \"internet\", \"private\" or \"loopback\""
                        )));
                    }
                }),
            };
            let sk = sources::source_kind(&kind).ok_or_else(|| {
                here(format!(
                    "unknown kind {kind:?}; lockwatch knows: {}",
                    sources::KINDS.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
                ))
            })?;
            let common = Common {
                name: name.clone(),
                timeout,
                reach,
            };
            let key_lines: Vec<(String, usize)> = table
                .keys()
                .filter_map(|k| key_line_in_entry(text, span.start, k).map(|l| (k.clone(), l)))
                .collect();
            let source = SourceConfig {
                common,
                kind,
                table,
                line: line_of(text, span.start),
                key_lines,
            };
            (sk.check)(&source.common, &source.table).map_err(|m| source.error(path, &m))?;
            sources.push(source);
        }

        Ok(Config {
            path: path.to_path_buf(),
            schedule,
            schedule_text,
            state_dir: raw
                .daemon
                .state_dir
                .unwrap_or_else(|| PathBuf::from("/var/lib/lockwatch")),
            metrics_listen,
            settings: Settings {
                blind_after,
                remind_every,
                min_severity,
                max_suppression,
                flap_after,
                retention,
            },
            email,
            alertmanager,
            sources,
            warnings: Vec::new(),
        })
    }

    /// Read secrets and build the sources and the SMTP settings. Nothing connects yet.
    pub fn build(&self) -> Result<Runtime, ConfigError> {
        let mut sources = Vec::with_capacity(self.sources.len());
        for s in &self.sources {
            let kind = sources::source_kind(&s.kind).ok_or_else(|| ConfigError {
                path: self.path.clone(),
                line: Some(s.line),
                message: format!("unknown kind {:?}; lockwatch knows: {}", s.kind, sources::kind_names()),
            })?;
            let source = (kind.build)(&s.common, s.table.clone()).map_err(|m| s.error(&self.path, &m))?;
            sources.push(SourceEntry {
                name: s.common.name.clone(),
                kind: s.kind.clone(),
                source,
                timeout: s.common.timeout,
            });
        }
        let email = match &self.email {
            None => None,
            Some(e) => {
                let password = secret::load("[alerts.email]", e.password_file.as_deref(), e.password_env.as_deref())
                    .map_err(|err| ConfigError {
                        path: self.path.clone(),
                        line: None,
                        message: format!("{err:#}"),
                    })?;
                Some(Email {
                    smtp_host: e.smtp_host.clone(),
                    smtp_port: e.smtp_port,
                    tls: e.tls,
                    from: e.from.clone(),
                    to: e.to.clone(),
                    username: e.username.clone(),
                    password,
                    ca_file: e.ca_file.clone(),
                    timeout: e.timeout,
                })
            }
        };
        Ok(Runtime { sources, email })
    }

    /// The next few times the schedule fires, for `check-config`.
    pub fn next_runs(&self, n: usize) -> Vec<chrono::DateTime<chrono::Utc>> {
        self.schedule.upcoming(chrono::Utc).take(n).collect()
    }
}

impl SourceConfig {
    /// An error about this entry: at the line of the key it names (`url …`, `` `url` …``), else
    /// at the entry's header.
    fn error(&self, path: &Path, message: &str) -> ConfigError {
        let line_of_key = |key: &str| self.key_lines.iter().find(|(k, _)| k == key).map(|(_, l)| *l);
        let leading = message.split([' ', ':']).next().unwrap_or_default();
        let quoted = message.split('`').nth(1).unwrap_or_default();
        // A type error names the value, not the key ("invalid type: the number `5`, expected
        // a string"): the key is the only one holding such a value.
        let typed = |(k, v): (&String, &toml::Value)| -> Option<String> {
            let shown = match v {
                toml::Value::String(s) => format!("the string {s:?}"),
                toml::Value::Integer(i) => format!("the number `{i}`"),
                toml::Value::Boolean(b) => format!("the boolean `{b}`"),
                toml::Value::Array(_) => "an array".into(),
                toml::Value::Table(_) => "a table".into(),
                _ => return None,
            };
            message
                .starts_with(&format!("invalid type: {shown},"))
                .then(|| k.clone())
        };
        let by_value: Vec<String> = self.table.iter().filter_map(typed).collect();
        let line = line_of_key(leading)
            .or_else(|| line_of_key(quoted))
            .or_else(|| (by_value.len() == 1).then(|| line_of_key(&by_value[0])).flatten())
            .unwrap_or(self.line);
        ConfigError {
            path: path.to_path_buf(),
            line: Some(line),
            message: format!(
                "source {:?} (kind {}): {}",
                self.common.name,
                self.kind,
                secret::redact_dsn(message)
            ),
        }
    }
}

fn validate_email(e: EmailConfig) -> Result<EmailSettings, String> {
    let from = e
        .from
        .parse()
        .map_err(|err| format!("from {:?} is not an email address: {err}", e.from))?;
    if e.to.is_empty() {
        return Err("`to` is empty: list at least one recipient".into());
    }
    let to =
        e.to.iter()
            .map(|t| {
                t.parse()
                    .map_err(|err| format!("to {t:?} is not an email address: {err}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
    if (e.password_file.is_some() || e.password_env.is_some()) && e.username.is_none() {
        return Err("a password is set but no `username`".into());
    }
    if e.password_file.is_some() && e.password_env.is_some() {
        return Err("set either password_file or password_env, not both".into());
    }
    let smtp_port = e.smtp_port.unwrap_or(match e.tls {
        SmtpTls::None => 25,
        SmtpTls::Starttls => 587,
        SmtpTls::Tls => 465,
    });
    Ok(EmailSettings {
        smtp_host: e.smtp_host,
        smtp_port,
        tls: e.tls,
        from,
        to,
        username: e.username,
        password_file: e.password_file,
        password_env: e.password_env,
        ca_file: e.ca_file,
        timeout: e.timeout.unwrap_or(Duration::from_secs(30)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("lockwatch.toml"), text)
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.schedule_text, DEFAULT_SCHEDULE);
        assert_eq!(c.metrics_listen.to_string(), "127.0.0.1:9187");
        assert_eq!(c.settings, Settings::default());
        assert!(c.email.is_none());
        assert!(c.sources.is_empty());
    }

    #[test]
    fn errors_point_at_the_line() {
        let cases: Vec<(&str, usize, &str)> = vec![
            ("[daemon]\nschedul = \"* * * * * *\"\n", 2, "unknown field `schedul`"),
            ("[daemon]\nschedule = \"*/5 * * * *\"\n", 2, "seconds first"),
            ("[alerts]\nremind_every = \"often\"\n", 2, "remind_every"),
            (
                "[alerts]\nmin_severity = \"urgent\"\n",
                2,
                "low, medium, high, critical",
            ),
            (
                "[[sources]]\nkind = \"redis\"\nname = \"a\"\nurl = \"redis://127.0.0.1\"\nurll = \"x\"\n",
                5,
                "unknown field `urll`",
            ),
            (
                "[[sources]]\nkind = \"mongo\"\nname = \"a\"\n",
                1,
                "unknown kind \"mongo\"",
            ),
            ("[[sources]]\nname = \"a\"\n", 1, "missing `kind`"),
            (
                "[[sources]]\nkind = \"redis\"\nname = \"a\"\nurl = \"redis://h\"\n[[sources]]\nkind = \"redis\"\nname = \"a\"\nurl = \"redis://h\"\n",
                5,
                "named \"a\"",
            ),
            (
                "[[sources]]\nkind = \"postgres\"\nname = \"db\"\nurl = \"postgres://127.0.0.1/x\"\n",
                4,
                "names no user",
            ),
            (
                "[alerts.email]\nsmtp_host = \"h\"\ntls = \"none\"\nfrom = \"not an address\"\nto = [\"a@b.c\"]\n",
                1,
                "is not an email address",
            ),
            (
                "[alerts.email]\nsmtp_host = \"h\"\ntls = \"sometimes\"\nfrom = \"a@b.c\"\nto = [\"a@b.c\"]\n",
                3,
                "unknown variant `sometimes`",
            ),
            ("[daemon]\nblind_after = \"3\"\n", 2, "expected a whole number"),
            (
                "[[sources]]\nkind = \"redis\"\nname = \"a\"\nurl = 5\n",
                4,
                "invalid type: the number `5`, expected a string",
            ),
            (
                "[[sources]]\nkind = \"mongodb\"\nname = \"m\"\nurl = \"mongodb://h\"\n\npassword_env = [\"A\"]\n",
                6,
                "invalid type: an array, expected a string",
            ),
            (
                "[[sources]]\nkind = \"redis\"\nname = \"a\"\nurl = \"redis://h\"\nca_file = \"/ca.pem\"\n",
                5,
                "use rediss://",
            ),
            ("[alerts.alertmanager]\nurls = []\n", 1, "list every member"),
            ("[alerts.alertmanager]\nurls = [\"ftp://h\"]\n", 1, "http://host:9093"),
            (
                "[alerts.alertmanager]\nurls = [\"http://h:9093\"]\nresend = \"soon\"\n",
                1,
                "resend",
            ),
            ("this is not toml", 1, ""),
        ];
        for (text, line, needle) in cases {
            let e = match parse(text) {
                Ok(_) => panic!("accepted: {text}"),
                Err(e) => e,
            };
            assert_eq!(e.line, Some(line), "{text} → {e}");
            assert!(e.to_string().contains(needle), "{text} → {e}");
            assert!(e.to_string().starts_with("lockwatch.toml:"), "{e}");
        }
    }

    #[test]
    fn world_readable_config_with_a_password_warns() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        let cases = [
            (
                "[[sources]]\nkind = \"redis\"\nname = \"a\"\nurl = \"redis://:pw@h:1\"\n",
                0o644,
                true,
            ),
            (
                "[[sources]]\nkind = \"redis\"\nname = \"a\"\nurl = \"redis://:pw@h:1\"\n",
                0o640,
                false,
            ),
            (
                "[[sources]]\nkind = \"redis\"\nname = \"a\"\nurl = \"redis://h:1\"\n",
                0o644,
                false,
            ),
        ];
        for (text, mode, warns) in cases {
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let c = Config::load(&path).unwrap();
            assert_eq!(!c.warnings.is_empty(), warns, "{text} {mode:o}");
            assert!(c.warnings.iter().all(|w| !w.contains("pw@")));
        }
    }

    #[test]
    fn secrets_never_appear_in_errors() {
        let e = parse("[[sources]]\nkind = \"redis\"\nname = \"a\"\nurl = \"ftp://u:canary-s3cret@h\"\n")
            .err()
            .unwrap();
        assert!(!e.to_string().contains("canary-s3cret"), "{e}");
    }

    #[test]
    fn full_config() {
        let c = parse(
            r#"
[daemon]
schedule = "*/2 * * * * *"
state_dir = "/tmp/x"
metrics_listen = "127.0.0.1:0"
[alerts]
remind_every = "30m"
min_severity = "high"
[alerts.email]
smtp_host = "localhost"
smtp_port = 2525
tls = "none"
from = "lockwatch@example.com"
to = ["oncall@example.com"]
[[sources]]
kind = "redis"
name = "cache"
url = "redis://:pw@127.0.0.1:6379"
timeout = "5s"
[[sources]]
kind = "postgres"
name = "main-db"
url = "postgres://lockwatch@127.0.0.1:5432/postgres"
"#,
        )
        .unwrap();
        assert_eq!(c.sources.len(), 2);
        assert_eq!(c.sources[0].common.timeout, Duration::from_secs(5));
        assert_eq!(c.settings.min_severity, Severity::High);
        assert_eq!(c.email.as_ref().unwrap().smtp_port, 2525);
        let built = c.build().unwrap();
        assert!(!built.sources[0].source.target().contains("pw"));
    }

    #[test]
    fn durations_show_as_written() {
        let cases = [
            ("90d", "90d"),
            ("4h", "4h"),
            ("36h", "36h"),
            ("90m", "90m"),
            ("30s", "30s"),
            ("1500ms", "1500ms"),
            ("14days", "14d"),
        ];
        for (written, shown) in cases {
            assert_eq!(
                show_duration(humantime::parse_duration(written).unwrap()),
                shown,
                "{written}"
            );
        }
    }
}
