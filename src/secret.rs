//! Secrets: read from files or the environment, never printed.

use anyhow::{Context, bail};
use std::fmt;
use std::path::Path;

/// A password or token. `Debug` and `Display` print `***`, so it cannot reach a log by accident.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Read a secret from `file` (trailing newline removed) or from the environment variable `env`.
pub fn load(what: &str, file: Option<&Path>, env: Option<&str>) -> anyhow::Result<Option<Secret>> {
    match (file, env) {
        (Some(_), Some(_)) => {
            bail!("{what}: set either a password file or an environment variable, not both")
        }
        (Some(path), None) => {
            let text = std::fs::read_to_string(path).with_context(|| {
                format!(
                    "{what}: reading password file {} (check it exists and lockwatch's user can read it)",
                    path.display()
                )
            })?;
            Ok(Some(Secret(text.trim_end_matches(['\n', '\r']).to_string())))
        }
        (None, Some(var)) => match std::env::var(var) {
            Ok(v) => Ok(Some(Secret(v))),
            Err(_) => bail!("{what}: environment variable {var} is not set (set it, or use a password file)"),
        },
        (None, None) => Ok(None),
    }
}

/// A URL fit for logs and messages: any password replaced by `***`.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        // Not a URL we can parse: show only the scheme-less host part we can be sure holds no secret.
        Err(_) => match raw.rfind('@') {
            Some(at) => format!("***@{}", &raw[at + 1..]),
            None => raw.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_table() {
        let cases = [
            ("redis://:hunter2@127.0.0.1:6379", "redis://:***@127.0.0.1:6379"),
            (
                "postgres://mon:hunter2@db:5432/postgres",
                "postgres://mon:***@db:5432/postgres",
            ),
            ("postgres://mon@db:5432/postgres", "postgres://mon@db:5432/postgres"),
            ("not a url:hunter2@host", "***@host"),
        ];
        for (raw, want) in cases {
            assert_eq!(redact_url(raw), want);
            assert!(!redact_url(raw).contains("hunter2"));
        }
        assert_eq!(
            format!("{:?} {}", Secret::new("hunter2"), Secret::new("hunter2")),
            "*** ***"
        );
    }
}
