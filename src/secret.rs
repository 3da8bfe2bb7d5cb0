//! Secrets: read from files or the environment, never printed.

use anyhow::{Context, bail};
use std::fmt;
use std::path::{Path, PathBuf};

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

/// Where a password file is: an absolute path as written; a relative one is a systemd
/// credential, looked up in `$CREDENTIALS_DIRECTORY` (`LoadCredential=NAME:/etc/lockwatch/...`
/// in the unit makes `password_file = "NAME"` work under `DynamicUser=yes`).
pub fn credential_path(what: &str, file: &Path, credentials_dir: Option<&std::ffi::OsStr>) -> anyhow::Result<PathBuf> {
    if file.is_absolute() {
        return Ok(file.to_path_buf());
    }
    match credentials_dir {
        Some(dir) if !dir.is_empty() => Ok(Path::new(dir).join(file)),
        _ => bail!(
            "{what}: {:?} is relative, so it names a systemd credential, but $CREDENTIALS_DIRECTORY is not set \
             (run under the lockwatch unit with LoadCredential={}:/path/to/secret, or give an absolute path)",
            file.display().to_string(),
            file.display()
        ),
    }
}

/// Read a secret from `file` (trailing newline removed) or from the environment variable `env`.
pub fn load(what: &str, file: Option<&Path>, env: Option<&str>) -> anyhow::Result<Option<Secret>> {
    match (file, env) {
        (Some(_), Some(_)) => {
            bail!("{what}: set either a password file or an environment variable, not both")
        }
        (Some(path), None) => {
            let path = credential_path(what, path, std::env::var_os("CREDENTIALS_DIRECTORY").as_deref())?;
            let text = std::fs::read_to_string(&path).with_context(|| {
                format!(
                    "{what}: reading {} (check it exists and lockwatch's user can read it; under systemd, pass it with \
                     LoadCredential= and name it relatively, see Credentials in the README)",
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

/// Key names whose values are credentials, in query strings and key/value connection strings.
const SECRET_KEYS: [&str; 13] = [
    "password",
    "passwd",
    "pass",
    "pwd",
    "sslpassword",
    "sslkey_password",
    "token",
    "secret",
    "api_key",
    "apikey",
    "secret_key",
    "access_token",
    "auth_token",
];

/// Text fit for logs and messages: every credential a connection string can carry replaced by
/// `***`, wherever it stands in the text — a URL's password (`scheme://user:PASS@host`), query
/// parameters (`?password=…`) and libpq-style key/value pairs (`password=…`, `password='a b'`).
pub fn redact_dsn(text: &str) -> String {
    redact_pairs(&redact_at_tokens(&redact_userinfo(text)))
}

/// What is left of a `user:secret@host` shape outside a well-formed URL (a URL with a space in
/// it, a bare `user:secret@host`): the part between the first `:` and the last `@` of a token.
fn redact_at_tokens(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut token = String::new();
    let flush = |token: &mut String, out: &mut String| {
        if let Some(at) = token.rfind('@')
            && !token[..at].ends_with("***")
        {
            let head = &token[..at];
            let start = head.find("://").map(|i| i + 3).unwrap_or(0);
            if let Some(colon) = head[start..].find(':') {
                let colon = start + colon;
                out.push_str(&token[..=colon]);
                out.push_str("***");
                out.push_str(&token[at..]);
                token.clear();
                return;
            }
        }
        out.push_str(token);
        token.clear();
    };
    for c in text.chars() {
        if c.is_whitespace() || matches!(c, '"' | '\'' | '`') {
            flush(&mut token, &mut out);
            out.push(c);
        } else {
            token.push(c);
        }
    }
    flush(&mut token, &mut out);
    out
}

fn redact_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (before, after) = rest.split_at(i + 3);
        out.push_str(before);
        // The token runs to the next space or quote; its last '@' ends the user info.
        let end = after
            .find(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '`')
            .unwrap_or(after.len());
        let token = &after[..end];
        match token.rfind('@') {
            Some(at) if token[..at].contains(':') => {
                let colon = token.find(':').unwrap_or(at);
                out.push_str(&token[..colon]);
                out.push_str(":***");
                out.push_str(&token[at..]);
            }
            _ => out.push_str(token),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

fn redact_pairs(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let boundary = i == 0
            || matches!(
                bytes[i - 1],
                b' ' | b'\t' | b'\n' | b'?' | b'&' | b';' | b'"' | b'\'' | b',' | b'('
            );
        let key = boundary
            .then(|| {
                SECRET_KEYS.iter().find(|k| {
                    text.get(i..i + k.len()).is_some_and(|s| s.eq_ignore_ascii_case(k))
                        && text[i + k.len()..].trim_start_matches([' ', '\t']).starts_with('=')
                })
            })
            .flatten();
        let Some(key) = key else {
            let c = text[i..].chars().next().unwrap_or(' ');
            out.push(c);
            i += c.len_utf8();
            continue;
        };
        let eq = i + key.len() + text[i + key.len()..].find('=').unwrap_or(0);
        out.push_str(&text[i..=eq]);
        let value_start = eq + 1 + (text[eq + 1..].len() - text[eq + 1..].trim_start_matches([' ', '\t']).len());
        let value = &text[value_start..];
        let consumed = if let Some(quoted) = value.strip_prefix('\'') {
            // libpq quoting: 'a b', with \' and \\ escaped.
            let mut n = 1;
            let mut escaped = false;
            let mut closed = false;
            for c in quoted.chars() {
                n += c.len_utf8();
                match (escaped, c) {
                    (true, _) => escaped = false,
                    (false, '\\') => escaped = true,
                    (false, '\'') => {
                        closed = true;
                        break;
                    }
                    _ => {}
                }
            }
            if !closed {
                n = value.len();
            }
            n
        } else {
            value
                .find(|c: char| c.is_whitespace() || matches!(c, '&' | ';' | '"' | '\'' | ',' | ')'))
                .unwrap_or(value.len())
        };
        out.push_str(&text[eq + 1..value_start]);
        out.push_str("***");
        i = value_start + consumed;
    }
    out
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
            ("redis://:hun/ter@2@h:1 and more", "redis://:***@h:1 and more"),
            (
                "postgresql://mon@db/postgres?sslmode=disable&password=hunter2&x=1",
                "postgresql://mon@db/postgres?sslmode=disable&password=***&x=1",
            ),
            (
                "host=db port=5432 user=mon password=hunter2 dbname=postgres",
                "host=db port=5432 user=mon password=*** dbname=postgres",
            ),
            (
                "host=db password = 'hunter2 with \\' quote' dbname=x",
                "host=db password = *** dbname=x",
            ),
            ("host=db PASSWORD=hunter2", "host=db PASSWORD=***"),
            ("url http://h/?token=hunter2", "url http://h/?token=***"),
            (
                "error: invalid value for password='hunter2",
                "error: invalid value for password=***",
            ),
            ("bypass=1 compass=2", "bypass=1 compass=2"),
            (
                "url redis:// /:hunter2@127.0.0.1:6379: invalid",
                "url redis:// /:***@127.0.0.1:6379: invalid",
            ),
            ("not a url:hunter2@host", "not a url:***@host"),
            ("mail to oncall@example.com", "mail to oncall@example.com"),
            ("no secrets: user=mon", "no secrets: user=mon"),
        ];
        for (raw, want) in cases {
            assert_eq!(redact_dsn(raw), want, "{raw}");
            assert!(!redact_dsn(raw).contains("hunter2"), "{raw}");
        }
        assert_eq!(
            format!("{:?} {}", Secret::new("hunter2"), Secret::new("hunter2")),
            "*** ***"
        );
    }
}
