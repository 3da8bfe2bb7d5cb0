//! End to end on a real PostgreSQL (its own instance): scram for TCP → someone trusts the world
//! in pg_hba.conf → CRITICAL email → restored → RESOLVED.

mod support;
use std::time::Duration;
use support::*;

#[test]
fn postgres_trust_for_the_world_then_restored() {
    let tmp = tempfile::tempdir().unwrap();
    let pg = Postgres::start(tmp.path(), "mon-pw-4c7e");
    let smtp = Smtp::start(free_port(), tmp.path());
    let metrics_port = free_port();
    let pwfile = tmp.path().join("pgpass");
    std::fs::write(&pwfile, "mon-pw-4c7e\n").unwrap();
    let config = write_config(
        tmp.path(),
        metrics_port,
        smtp.port,
        &format!(
            "[[sources]]\nkind = \"postgres\"\nname = \"main-db\"\nurl = \"postgres://lockwatch@127.0.0.1:{}/postgres?sslmode=disable\"\npassword_file = \"{}\"\n",
            pg.port,
            pwfile.display()
        ),
    );
    let lw = Lockwatch::start(&config, metrics_port);
    let id = format!("main-db/postgres/127.0.0.1:{}", pg.port);
    let exposed_series = format!("lockwatch_resource_exposed{{resource=\"{id}\",source=\"main-db\"}}");
    wait_for("the first cycle", Duration::from_secs(30), || {
        metric(&lw.metrics(), &exposed_series)
    });
    assert_eq!(metric(&lw.metrics(), &exposed_series), Some(0.0));
    let (_, base, _) = lw.cli(&["baseline", "show", &id]);
    assert!(
        base.contains("scram-sha-256"),
        "the monitoring role must see pg_hba rules: {base}"
    );
    assert!(
        base.contains("\"unauthenticated_login\": \"denied\""),
        "a password-less login as postgres is refused: {base}"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(smtp.mails().is_empty(), "{:?}", smtp.mails());

    let original = pg.hba();
    assert!(original.contains("127.0.0.1/32            scram-sha-256"), "{original}");
    pg.set_hba(&original.replace("127.0.0.1/32            scram-sha-256", "0.0.0.0/0               trust"));

    wait_mail(
        &smtp.dir,
        &format!("[lockwatch] CRITICAL {id}"),
        Duration::from_secs(30),
    );
    // pg_hba_file_rules reads the file, the login probe meets the reloaded rules: a cycle between
    // the write and the reload reports the change in two mails of one thread.
    wait_alerts_naming(
        &smtp.dir,
        &id,
        &[
            "postgres.hba.trust_remote",
            "postgres.auth.unauthenticated_login",
            "weakened /unauthenticated_login: denied → accepted",
            "`host all all 0.0.0.0/0 trust`",
            "auth_method: scram-sha-256 → trust",
        ],
        Duration::from_secs(30),
    );
    wait_for("exposed = 1", Duration::from_secs(10), || {
        (metric(&lw.metrics(), &exposed_series) == Some(1.0)).then_some(())
    });
    let (_, history, _) = lw.cli(&["history", &id]);
    assert!(
        history.contains("weakened /hba_rules/1/auth_method: scram-sha-256 → trust"),
        "{history}"
    );

    pg.set_hba(&original);
    let resolved = wait_mail(
        &smtp.dir,
        &format!("[lockwatch] RESOLVED {id}"),
        Duration::from_secs(30),
    );
    assert_eq!(resolved["in_reply_to"], smtp.mails()[0]["message_id"], "one thread");
    wait_for("exposed = 0", Duration::from_secs(10), || {
        (metric(&lw.metrics(), &exposed_series) == Some(0.0)).then_some(())
    });
    for m in smtp.mails() {
        assert!(!m["raw"].as_str().unwrap().contains("mon-pw-4c7e"));
    }
    assert!(!lw.proc.log_text().contains("mon-pw-4c7e"));
}

#[test]
fn ssl_off_downgrade_and_superuser_added_are_weakenings() {
    let tmp = tempfile::tempdir().unwrap();
    let pg = Postgres::start(tmp.path(), "pw2");
    let smtp = Smtp::start(free_port(), tmp.path());
    let metrics_port = free_port();
    let config = write_config(
        tmp.path(),
        metrics_port,
        smtp.port,
        &format!(
            "[[sources]]\nkind = \"postgres\"\nname = \"db\"\nurl = \"postgres://lockwatch:pw2@127.0.0.1:{}/postgres?sslmode=disable\"\n",
            pg.port
        ),
    );
    let lw = Lockwatch::start(&config, metrics_port);
    let id = format!("db/postgres/127.0.0.1:{}", pg.port);
    wait_for("the first cycle", Duration::from_secs(30), || {
        lw.metrics().contains(&id).then_some(())
    });

    // scram → md5 for TCP: a downgrade (medium drift), not an exposure.
    let original = pg.hba();
    pg.set_hba(&original.replace("127.0.0.1/32            scram-sha-256", "127.0.0.1/32            md5"));
    let m = wait_mail(&smtp.dir, &format!("[lockwatch] MEDIUM {id}"), Duration::from_secs(30));
    assert!(
        m["text"].as_str().unwrap().contains("auth_method: scram-sha-256 → md5"),
        "{}",
        m["text"]
    );
    assert!(m["text"].as_str().unwrap().contains("drift.weakened"));

    // A new superuser while the downgrade is still open: another weakening, same thread.
    pg.psql("CREATE ROLE mallory LOGIN SUPERUSER PASSWORD 'x'");
    wait_for("the history to show the new superuser", Duration::from_secs(30), || {
        lw.cli(&["history", &id])
            .1
            .contains(": (absent) → mallory")
            .then_some(())
    });
    pg.psql("DROP ROLE mallory");
    pg.set_hba(&original);
    wait_mail(
        &smtp.dir,
        &format!("[lockwatch] RESOLVED {id}"),
        Duration::from_secs(30),
    );
}
