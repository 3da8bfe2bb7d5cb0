//! TLS end to end: for each protocol, the happy path verified against a test CA (`ca_file`), a
//! certificate that does not chain (a clear error, the source blind, never "protected"), and TLS
//! turned off or weakened on the server (alerted). Each test asserts the exact mails.

mod support;
use serde_json::json;
use std::time::Duration;
use support::*;

const T: Duration = Duration::from_secs(40);
const BLIND: &[&str] = &["lockwatch.source.blind"];

fn blind_mail(smtp: &Smtp, mark: usize, source: &str) -> Mail {
    let m = smtp.expect(
        mark,
        &format!("lockwatch/source/{source}"),
        &[("alert", Some("high"), BLIND)],
        T,
    );
    assert!(
        m[0].subject
            .starts_with(&format!("[lockwatch] HIGH lockwatch cannot see source {source}: ")),
        "{}",
        m[0].subject
    );
    m.into_iter().next().unwrap()
}

/// The words rustls uses when a certificate does not chain to the configured CA.
fn says_certificate(text: &str) -> bool {
    let t = text.to_lowercase();
    t.contains("certificate")
        && (t.contains("unknownissuer") || t.contains("unknown issuer") || t.contains("invalid peer"))
}

#[test]
fn redis_over_tls() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = TestCa::new(tmp.path(), "good");
    let rogue = TestCa::new(tmp.path(), "rogue");
    let tls_port = free_port();
    let redis = Redis::start_with(
        tmp.path(),
        "tls-pw",
        &[
            "--tls-port",
            &tls_port.to_string(),
            "--tls-cert-file",
            ca.cert.to_str().unwrap(),
            "--tls-key-file",
            ca.key.to_str().unwrap(),
            "--tls-ca-cert-file",
            ca.ca.to_str().unwrap(),
            "--tls-auth-clients",
            "no",
        ],
    );
    let smtp = Smtp::start(tmp.path());
    let config = write_config(
        tmp.path(),
        smtp.port,
        &format!(
            "[[sources]]\nkind = \"redis\"\nname = \"good\"\nurl = \"rediss://:tls-pw@127.0.0.1:{tls_port}\"\nca_file = \"{}\"\n\
             [[sources]]\nkind = \"redis\"\nname = \"rogue\"\nurl = \"rediss://:tls-pw@127.0.0.1:{tls_port}\"\nca_file = \"{}\"\n",
            ca.ca.display(),
            rogue.ca.display()
        ),
    );
    let lw = Lockwatch::start(&config);
    let id = format!("good/redis/127.0.0.1:{tls_port}");
    assert_eq!(
        lw.metric(&format!(
            "lockwatch_resource_exposed{{resource=\"{id}\",source=\"good\"}}"
        )),
        Some(0.0),
        "seen over verified TLS"
    );
    let m = blind_mail(&smtp, 0, "rogue");
    assert!(
        says_certificate(&m.text),
        "a certificate that does not chain: {}",
        m.text
    );
    assert!(smtp.since(0, &id).is_empty(), "{:#?}", smtp.since(0, &id));

    // TLS switched off: lockwatch cannot speak to it any more. Blind, never RESOLVED or quiet.
    let mark = smtp.mark();
    assert!(redis.cli(&["CONFIG", "SET", "tls-port", "0"]).contains("OK"));
    blind_mail(&smtp, mark, "good");
    assert!(smtp.since(mark, &id).is_empty(), "{:#?}", smtp.since(mark, &id));
    assert!(!lw.proc.log_text().contains("tls-pw"));
}

#[test]
fn postgres_over_tls() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = TestCa::new(tmp.path(), "good");
    let rogue = TestCa::new(tmp.path(), "rogue");
    let pg = Postgres::start_with(
        tmp.path(),
        PgOptions {
            monitor_password: "pg-tls-pw",
            tls: Some((&ca.cert, &ca.key)),
            grant_stat_file: true,
        },
    );
    let pw = write(tmp.path(), "pgpw", "pg-tls-pw");
    let smtp = Smtp::start(tmp.path());
    let source = |name: &str, mode: &str, ca_file: &std::path::Path| {
        format!(
            "[[sources]]\nkind = \"postgres\"\nname = \"{name}\"\nurl = \"postgres://lockwatch@127.0.0.1:{}/postgres?sslmode={mode}\"\npassword_file = \"{}\"\nca_file = \"{}\"\n",
            pg.port,
            pw.display(),
            ca_file.display()
        )
    };
    let config = write_config(
        tmp.path(),
        smtp.port,
        &[
            source("prefer", "prefer", &ca.ca),
            source("strict", "require", &ca.ca),
            source("rogue", "require", &rogue.ca),
        ]
        .concat(),
    );
    let lw = Lockwatch::start(&config);
    let id = |s: &str| format!("{s}/postgres/127.0.0.1:{}", pg.port);
    for s in ["prefer", "strict"] {
        assert_eq!(
            lw.metric(&format!(
                "lockwatch_resource_exposed{{resource=\"{}\",source=\"{s}\"}}",
                id(s)
            )),
            Some(0.0),
            "{s}: seen over verified TLS"
        );
    }
    let m = blind_mail(&smtp, 0, "rogue");
    assert!(says_certificate(&m.text), "{}", m.text);

    // ssl turned off: where lockwatch may fall back to plain (sslmode=prefer) it reads the
    // weakening; where it requires TLS it goes blind. Neither is an all-clear.
    let mark = smtp.mark();
    pg.psql("ALTER SYSTEM SET ssl = off");
    pg.reload();
    let weakened = smtp.expect(mark, &id("prefer"), &[("alert", Some("high"), &["drift.weakened"])], T);
    assert!(weakened[0].text.contains("ssl was turned off"), "{}", weakened[0].text);
    let m = blind_mail(&smtp, mark, "strict");
    assert!(
        m.text.to_lowercase().contains("tls") || m.text.contains("ssl"),
        "{}",
        m.text
    );
    assert!(
        smtp.since(mark, &id("strict")).is_empty(),
        "{:#?}",
        smtp.since(mark, &id("strict"))
    );
}

#[test]
fn mongodb_over_tls() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = TestCa::new(tmp.path(), "good");
    let rogue = TestCa::new(tmp.path(), "rogue");
    let state = json!({"users": [{"db": "admin", "user": "lockwatch", "password": "mongo-tls-pw",
        "mechanisms": ["SCRAM-SHA-256"], "roles": [{"role": "clusterMonitor", "db": "admin"}, {"role": "userAdminAnyDatabase", "db": "admin"}]}]});
    let mongo = FakeMongo::start(tmp.path(), state, Some((&ca.cert, &ca.key)));
    let smtp = Smtp::start(tmp.path());
    let source = |name: &str, ca_file: &std::path::Path| {
        format!(
            "[[sources]]\nkind = \"mongodb\"\nname = \"{name}\"\nurl = \"mongodb://lockwatch:mongo-tls-pw@127.0.0.1:{}/?tls=true\"\nca_file = \"{}\"\n",
            mongo.port,
            ca_file.display()
        )
    };
    let config = write_config(
        tmp.path(),
        smtp.port,
        &[source("good", &ca.ca), source("rogue", &rogue.ca)].concat(),
    );
    let lw = Lockwatch::start(&config);
    let id = format!("good/mongodb/127.0.0.1:{}", mongo.port);
    let (code, baseline, err) = lw.cli(&["baseline", "show", &id, "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let b: serde_json::Value = serde_json::from_str(&baseline).unwrap();
    assert_eq!(b[0]["baseline"]["tls_mode"], "requireTLS", "{baseline}");
    let m = blind_mail(&smtp, 0, "rogue");
    assert!(m.text.contains("ca_file"), "the fix names ca_file: {}", m.text);

    // Plain connections allowed again (net.tls.mode preferTLS): a weakening.
    let mark = smtp.mark();
    mongo.set(json!({"tls_mode": "preferTLS"}));
    let w = smtp.expect(mark, &id, &[("alert", Some("high"), &["drift.weakened"])], T);
    assert!(
        w[0].text.contains("TLS mode is now preferTLS (was: requireTLS)"),
        "{}",
        w[0].text
    );
    assert!(!lw.proc.log_text().contains("mongo-tls-pw"));
}

#[test]
fn elasticsearch_over_https() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = TestCa::new(tmp.path(), "good");
    let rogue = TestCa::new(tmp.path(), "rogue");
    let es = FakeEs::start_tls(
        tmp.path(),
        json!({"flavor": "es8", "security": true, "users": {"lockwatch": "es-monitor-pw"}}),
        &ca.cert,
        &ca.key,
    );
    let pw = write(tmp.path(), "espw", "es-monitor-pw");
    let smtp = Smtp::start(tmp.path());
    let source = |name: &str, ca_file: &std::path::Path| {
        format!(
            "[[sources]]\nkind = \"elasticsearch\"\nname = \"{name}\"\nurl = \"https://127.0.0.1:{}\"\nusername = \"lockwatch\"\npassword_file = \"{}\"\nca_file = \"{}\"\n",
            es.port,
            pw.display(),
            ca_file.display()
        )
    };
    let config = write_config(
        tmp.path(),
        smtp.port,
        &[source("good", &ca.ca), source("rogue", &rogue.ca)].concat(),
    );
    let lw = Lockwatch::start(&config);
    let id = format!("good/elasticsearch/127.0.0.1:{}", es.port);
    let (code, baseline, err) = lw.cli(&["baseline", "show", &id, "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let b: serde_json::Value = serde_json::from_str(&baseline).unwrap();
    assert_eq!(b[0]["baseline"]["http_tls"], true, "{baseline}");
    let m = blind_mail(&smtp, 0, "rogue");
    assert!(
        m.text.contains("certificate") || m.text.contains("tls") || m.text.contains("TLS"),
        "{}",
        m.text
    );
    lw.quiet(2);
    assert!(smtp.since(0, &id).is_empty(), "{:#?}", smtp.since(0, &id));
}

fn email_config(dir: &std::path::Path, port: u16, tls: &str, ca: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join(format!(
        "smtp-{tls}-{}.toml",
        ca.parent().unwrap().file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(
        &path,
        format!(
            "[daemon]\nstate_dir = \"{}\"\n[alerts.email]\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {port}\ntls = \"{tls}\"\nca_file = \"{}\"\nfrom = \"lockwatch@example.com\"\nto = [\"oncall@example.com\"]\ntimeout = \"5s\"\n",
            dir.join("state").display(),
            ca.display()
        ),
    )
    .unwrap();
    path
}

#[test]
fn smtp_starttls_and_implicit_tls() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = TestCa::new(tmp.path(), "good");
    let rogue = TestCa::new(tmp.path(), "rogue");
    let cert = ca.cert.to_str().unwrap();
    let key = ca.key.to_str().unwrap();
    for (tls, extra) in [
        ("starttls", vec!["--tls-cert", cert, "--tls-key", key]),
        ("tls", vec!["--tls-cert", cert, "--tls-key", key, "--implicit-tls"]),
    ] {
        let dir = tmp.path().join(tls);
        std::fs::create_dir_all(&dir).unwrap();
        let smtp = Smtp::start_with(&dir, &extra);
        let (code, out, err) = cli(&email_config(&dir, smtp.port, tls, &ca.ca), &["test-alert"]);
        assert_eq!(code, 0, "{tls}: {out}{err}");
        smtp.expect(0, "lockwatch/test", &[("test", None, &[])], T);

        // A certificate that does not chain: refused, nothing sent.
        let (code, out, err) = cli(&email_config(&dir, smtp.port, tls, &rogue.ca), &["test-alert"]);
        assert_ne!(code, 0, "{tls}: {out}");
        assert!(err.to_lowercase().contains("certificate"), "{tls}: {err}");
        assert_eq!(smtp.mails().len(), 1, "{tls}");
    }

    // The server stopped offering STARTTLS: lockwatch does not fall back to plain text.
    let dir = tmp.path().join("plain");
    std::fs::create_dir_all(&dir).unwrap();
    let smtp = Smtp::start(&dir);
    let (code, out, err) = cli(&email_config(&dir, smtp.port, "starttls", &ca.ca), &["test-alert"]);
    assert_ne!(code, 0, "{out}");
    assert!(
        err.to_lowercase().contains("starttls") || err.to_lowercase().contains("tls"),
        "{err}"
    );
    assert!(smtp.mails().is_empty(), "{:#?}", smtp.mails());
}

#[test]
fn mariadb_over_tls() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = TestCa::new(tmp.path(), "good");
    let rogue = TestCa::new(tmp.path(), "rogue");
    let mut db = Mariadb::start(tmp.path(), "my-tls-pw");
    // mariadbd runs as mysql: its certificate lives in its own directory.
    let (cert, key) = (db.dir.join("server.pem"), db.dir.join("server.key"));
    std::fs::copy(&ca.cert, &cert).unwrap();
    std::fs::copy(&ca.key, &key).unwrap();
    let out = std::process::Command::new("chown")
        .args(["mysql:mysql"])
        .arg(&cert)
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success());
    let tls_args = [
        format!("--ssl-cert={}", cert.display()),
        format!("--ssl-key={}", key.display()),
    ];
    db.run(&[&tls_args[0], &tls_args[1]]);
    let pw = write(tmp.path(), "mypw", "my-tls-pw");
    let smtp = Smtp::start(tmp.path());
    let source = |name: &str, ca_file: &std::path::Path| {
        format!(
            "[[sources]]\nkind = \"mysql\"\nname = \"{name}\"\nurl = \"mysql://lockwatch@127.0.0.1:{}\"\npassword_file = \"{}\"\nca_file = \"{}\"\n",
            db.port,
            pw.display(),
            ca_file.display()
        )
    };
    let config = write_config(
        tmp.path(),
        smtp.port,
        &[source("good", &ca.ca), source("rogue", &rogue.ca)].concat(),
    );
    let lw = Lockwatch::start(&config);
    let id = format!("good/mysql/127.0.0.1:{}", db.port);
    let (code, baseline, err) = lw.cli(&["baseline", "show", &id, "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let b: serde_json::Value = serde_json::from_str(&baseline).unwrap();
    assert_eq!(b[0]["baseline"]["tls_available"], true, "{baseline}");
    let m = blind_mail(&smtp, 0, "rogue");
    assert!(says_certificate(&m.text), "{}", m.text);

    // Restarted without TLS: lockwatch, told to verify the server, does not fall back to
    // plain text; it goes blind and says why.
    let mark = smtp.mark();
    db.run(&[]);
    let m = blind_mail(&smtp, mark, "good");
    let t = m.text.to_lowercase();
    assert!(
        t.contains("tls") || t.contains("ssl") || t.contains("secure"),
        "{}",
        m.text
    );
    assert!(smtp.since(mark, &id).is_empty(), "{:#?}", smtp.since(mark, &id));
}
