//! End to end on a real PostgreSQL (its own instance, a non-superuser monitoring role): every
//! test asserts the exact mails an action causes, counted from a mark taken before it.

mod support;
use std::time::Duration;
use support::*;

const T: Duration = Duration::from_secs(30);
const SCRAM_LINE: &str = "127.0.0.1/32            scram-sha-256";

fn setup(tmp: &std::path::Path, pg: &Postgres, password: &str) -> (Smtp, Lockwatch, String) {
    let smtp = Smtp::start(tmp);
    let pwfile = tmp.join("pgpass");
    std::fs::write(&pwfile, format!("{password}\n")).unwrap();
    let config = write_config(
        tmp,
        smtp.port,
        &format!(
            "[[sources]]\nkind = \"postgres\"\nname = \"db\"\nurl = \"postgres://lockwatch@127.0.0.1:{}/postgres?sslmode=disable\"\npassword_file = \"{}\"\n",
            pg.port,
            pwfile.display()
        ),
    );
    let lw = Lockwatch::start(&config);
    let id = format!("db/postgres/127.0.0.1:{}", pg.port);
    (smtp, lw, id)
}

#[test]
fn trust_for_the_world_then_restored() {
    let tmp = tempfile::tempdir().unwrap();
    let pg = Postgres::start(tmp.path(), "mon-pw-4c7e");
    let (smtp, lw, id) = setup(tmp.path(), &pg, "mon-pw-4c7e");
    let exposed = format!("lockwatch_resource_exposed{{resource=\"{id}\",source=\"db\"}}");
    assert_eq!(lw.metric(&exposed), Some(0.0));
    let (_, base, _) = lw.cli(&["baseline", "show", &id]);
    assert!(
        base.contains("scram-sha-256"),
        "the monitoring role sees the pg_hba rules: {base}"
    );
    assert!(base.contains("\"unauthenticated_login\": \"denied\""), "{base}");
    lw.quiet(2);
    assert!(smtp.mails().is_empty(), "{:?}", smtp.mails());

    let original = pg.hba();
    assert!(original.contains(SCRAM_LINE), "{original}");
    let mark = smtp.mark();
    pg.set_hba(&original.replace(SCRAM_LINE, "0.0.0.0/0               trust"));
    let alert = smtp.expect(
        mark,
        &id,
        &[(
            "alert",
            Some("critical"),
            &[
                "drift.weakened",
                "postgres.auth.unauthenticated_login",
                "postgres.hba.trust_remote",
            ],
        )],
        T,
    );
    let text = &alert[0].text;
    assert!(text.contains("`host all all 0.0.0.0/0 trust`"), "{text}");
    assert!(
        text.contains("pg_hba.conf line `host all all 0.0.0.0/0 trust` now applies"),
        "{text}"
    );
    assert!(
        text.contains("a login as postgres without a password now succeeds"),
        "{text}"
    );
    wait_for("exposed = 1", T, || (lw.metric(&exposed) == Some(1.0)).then_some(()));

    let mark = smtp.mark();
    pg.set_hba(&original);
    let resolved = smtp.expect(
        mark,
        &id,
        &[(
            "resolved",
            None,
            &[
                "drift.weakened",
                "postgres.auth.unauthenticated_login",
                "postgres.hba.trust_remote",
            ],
        )],
        T,
    );
    assert_eq!(
        resolved[0].record["in_reply_to"], alert[0].record["message_id"],
        "one thread"
    );
    wait_for("exposed = 0", T, || (lw.metric(&exposed) == Some(0.0)).then_some(()));
    for m in smtp.mails() {
        assert!(!m["raw"].as_str().unwrap().contains("mon-pw-4c7e"));
    }
    assert!(!lw.proc.log_text().contains("mon-pw-4c7e"));
}

/// Scenario 1 of "never a false all-clear": the line is deleted from pg_hba.conf but the server
/// is not reloaded. pg_hba_file_rules shows the file; the server still runs the old rules.
#[test]
fn a_rule_deleted_but_not_reloaded_is_still_live() {
    let tmp = tempfile::tempdir().unwrap();
    let pg = Postgres::start(tmp.path(), "pw-pending");
    let (smtp, lw, id) = setup(tmp.path(), &pg, "pw-pending");
    let original = pg.hba();
    let with_trust = format!("{original}\nhost all all 198.51.100.0/24 trust\n");
    let mark = smtp.mark();
    pg.set_hba(&with_trust);
    let rules: &[&str] = &["drift.weakened", "postgres.hba.trust_remote"];
    smtp.expect(mark, &id, &[("alert", Some("critical"), rules)], T);

    // Deleted on disk, not reloaded: no RESOLVED; one mail says why the alert stays.
    let mark = smtp.mark();
    pg.write_hba(&original);
    let still = smtp.expect(mark, &id, &[("reminder", Some("critical"), rules)], T);
    assert!(
        still[0].text.contains("pg_hba.conf changed on disk at")
            && still[0].text.contains("the server has not reloaded it since")
            && still[0].text.contains("the rules it loaded before are still live"),
        "{}",
        still[0].text
    );
    lw.quiet(3);
    assert_eq!(smtp.since(mark, &id).len(), 1, "{:#?}", smtp.since(mark, &id));

    // Reloaded: now, and only now, resolved.
    let mark = smtp.mark();
    pg.reload();
    smtp.expect(mark, &id, &[("resolved", None, rules)], T);
}

/// Scenario 2: the monitoring role loses its grant on pg_hba_file_rules while a trust rule is
/// open. The finding must not vanish with its evidence.
#[test]
fn losing_the_grant_on_pg_hba_file_rules_keeps_the_alert_open() {
    let tmp = tempfile::tempdir().unwrap();
    let pg = Postgres::start(tmp.path(), "pw-grant");
    let (smtp, lw, id) = setup(tmp.path(), &pg, "pw-grant");
    let original = pg.hba();
    let mark = smtp.mark();
    pg.set_hba(&format!("{original}\nhost all all 198.51.100.0/24 trust\n"));
    smtp.expect(
        mark,
        &id,
        &[(
            "alert",
            Some("critical"),
            &["drift.weakened", "postgres.hba.trust_remote"],
        )],
        T,
    );

    let mark = smtp.mark();
    pg.psql("REVOKE SELECT ON pg_hba_file_rules FROM lockwatch; REVOKE EXECUTE ON FUNCTION pg_hba_file_rules() FROM lockwatch;");
    let lost = smtp.expect(
        mark,
        &id,
        &[(
            "alert",
            Some("high"),
            &[
                "drift.weakened",
                "postgres.hba.trust_remote",
                "postgres.visibility.lost",
            ],
        )],
        T,
    );
    assert!(
        lost[0].text.contains("can no longer read hba_rules"),
        "{}",
        lost[0].text
    );
    assert!(
        lost[0].text.contains("permission denied"),
        "the server's own words: {}",
        lost[0].text
    );
    assert!(lost[0].text.contains("SQLSTATE 42501"), "{}", lost[0].text);
    assert!(
        lost[0].text.contains("GRANT SELECT ON pg_hba_file_rules"),
        "the fix: {}",
        lost[0].text
    );
    // While blind, the rule really goes away: still no RESOLVED on evidence lockwatch lacks.
    pg.set_hba(&original);
    lw.quiet(3);
    assert_eq!(smtp.since(mark, &id).len(), 1, "{:#?}", smtp.since(mark, &id));

    let mark = smtp.mark();
    pg.psql(
        "GRANT SELECT ON pg_hba_file_rules TO lockwatch; GRANT EXECUTE ON FUNCTION pg_hba_file_rules() TO lockwatch;",
    );
    smtp.expect(
        mark,
        &id,
        &[(
            "resolved",
            None,
            &[
                "drift.weakened",
                "postgres.hba.trust_remote",
                "postgres.visibility.lost",
            ],
        )],
        T,
    );
}

/// Without EXECUTE on pg_stat_file lockwatch says it cannot verify reloads, and still notices
/// an edit that is not reloaded (the rules changed, the server's load time did not).
#[test]
fn without_the_file_time_an_unreloaded_edit_is_still_noticed() {
    let tmp = tempfile::tempdir().unwrap();
    let pg = Postgres::start_with(
        tmp.path(),
        PgOptions {
            monitor_password: "pw-nostat",
            tls: None,
            grant_stat_file: false,
        },
    );
    let (smtp, lw, id) = setup(tmp.path(), &pg, "pw-nostat");
    let first = smtp.expect(
        0,
        &id,
        &[("alert", Some("medium"), &["postgres.hba.reload_unverified"])],
        T,
    );
    assert!(
        first[0].text.contains("GRANT EXECUTE ON FUNCTION pg_stat_file(text)"),
        "{}",
        first[0].text
    );
    assert!(
        !first[0].text.contains("was weakened"),
        "a first sight: {}",
        first[0].text
    );

    let original = pg.hba();
    let mark = smtp.mark();
    pg.set_hba(&format!("{original}\nhost all all 198.51.100.0/24 trust\n"));
    let rules: &[&str] = &[
        "drift.weakened",
        "postgres.hba.reload_unverified",
        "postgres.hba.trust_remote",
    ];
    smtp.expect(mark, &id, &[("alert", Some("critical"), rules)], T);
    let mark = smtp.mark();
    pg.write_hba(&original);
    let still = smtp.expect(mark, &id, &[("reminder", Some("critical"), rules)], T);
    assert!(
        still[0].text.contains("the server has not reloaded since"),
        "{}",
        still[0].text
    );
    lw.quiet(3);
    let mark = smtp.mark();
    pg.reload();
    smtp.expect(
        mark,
        &id,
        &[(
            "partly-resolved",
            Some("medium"),
            &[
                "drift.weakened",
                "postgres.hba.reload_unverified",
                "postgres.hba.trust_remote",
            ],
        )],
        T,
    );
}

#[test]
fn a_downgrade_then_a_new_superuser_are_both_announced() {
    let tmp = tempfile::tempdir().unwrap();
    let pg = Postgres::start(tmp.path(), "pw2");
    let (smtp, lw, id) = setup(tmp.path(), &pg, "pw2");

    // scram → md5 for TCP: a downgrade (medium drift), not an exposure.
    let original = pg.hba();
    let mark = smtp.mark();
    pg.set_hba(&original.replace(SCRAM_LINE, "127.0.0.1/32            md5"));
    let m = smtp.expect(mark, &id, &[("alert", Some("medium"), &["drift.weakened"])], T);
    assert!(
        m[0].text
            .contains("pg_hba.conf line `host all all 127.0.0.1/32 md5` now applies"),
        "{}",
        m[0].text
    );

    // A new superuser while the downgrade is still open: announced in the same thread.
    let mark = smtp.mark();
    pg.psql("CREATE ROLE mallory LOGIN SUPERUSER PASSWORD 'x'");
    let further = smtp.expect(mark, &id, &[("alert", Some("medium"), &["drift.weakened"])], T);
    assert!(
        further[0].subject.ends_with("(further weakened)"),
        "{}",
        further[0].subject
    );
    assert!(
        further[0].text.contains("`mallory` became a superuser"),
        "{}",
        further[0].text
    );

    let mark = smtp.mark();
    pg.psql("DROP ROLE mallory");
    pg.set_hba(&original);
    smtp.expect(mark, &id, &[("resolved", None, &["drift.weakened"])], T);
    lw.quiet(2);
    assert_eq!(smtp.since(mark, &id).len(), 1);
}

/// A monitoring role the server does not know: the error is the server's own (with SQLSTATE)
/// and says what to do, not "db error".
#[test]
fn an_unknown_monitoring_role_is_named_with_the_servers_words() {
    let tmp = tempfile::tempdir().unwrap();
    let pg = Postgres::start(tmp.path(), "pw-role");
    let cfg = write(
        tmp.path(),
        "role.toml",
        &format!(
            "[daemon]\nstate_dir = \"{}\"\n[[sources]]\nkind = \"postgres\"\nname = \"main\"\nurl = \"postgres://nosuchrole@127.0.0.1:{}/postgres\"\npassword_env = \"LOCKWATCH_TEST_PG_PW\"\n",
            tmp.path().display(),
            pg.port
        ),
    );
    let out = std::process::Command::new(lockwatch_bin())
        .args(["--config", cfg.to_str().unwrap(), "scan"])
        .env("LOCKWATCH_TEST_PG_PW", "whatever")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(
        // With password authentication the server does not say whether the role exists.
        err.contains("password authentication failed for user \"nosuchrole\" (SQLSTATE 28P01)")
            && err.contains("check the monitoring role's password"),
        "{err}"
    );
    assert!(!err.contains("db error"), "{err}");
}
