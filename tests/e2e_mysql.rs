//! End to end on our own MariaDB instance: an account's password removed, the server restarted
//! with --skip-grant-tables, the monitoring account's grant revoked. Every test asserts the
//! exact mails since a mark taken before the action.

mod support;
use std::time::Duration;
use support::*;

const T: Duration = Duration::from_secs(60);

fn setup(tmp: &std::path::Path) -> (Mariadb, Smtp, Lockwatch, String) {
    let db = Mariadb::start(tmp, "mon-pw-my");
    let smtp = Smtp::start(tmp);
    let cfg = write_config(
        tmp,
        smtp.port,
        &format!(
            "[[sources]]\nkind = \"mysql\"\nname = \"shop\"\nurl = \"mysql://lockwatch:mon-pw-my@127.0.0.1:{}\"\ntimeout = \"5s\"\n",
            db.port
        ),
    );
    // A restart takes a few cycles; that is not blindness worth an email here.
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("[daemon]\n", "[daemon]\nblind_after = 30\n");
    std::fs::write(&cfg, text).unwrap();
    let lw = Lockwatch::start(&cfg);
    let id = format!("shop/mysql/127.0.0.1:{}", db.port);
    lw.quiet(2);
    assert!(
        smtp.mails().is_empty(),
        "a protected server must not alert: {:?}",
        smtp.mails()
    );
    let (_, base, _) = lw.cli(&["baseline", "show", &id]);
    assert!(
        base.contains("\"unauthenticated_login\": \"denied\"") && base.contains("mariadb"),
        "{base}"
    );
    (db, smtp, lw, id)
}

#[test]
fn account_password_removed_then_restored() {
    let tmp = tempfile::tempdir().unwrap();
    let (db, smtp, lw, id) = setup(tmp.path());
    let mark = smtp.mark();
    db.sql("ALTER USER app@'%' IDENTIFIED BY ''");
    let alert = smtp.expect(
        mark,
        &id,
        &[(
            "alert",
            Some("critical"),
            &["drift.weakened", "mysql.account.empty_password"],
        )],
        T,
    );
    let text = &alert[0].text;
    assert!(text.contains("app@%"), "{text}");
    assert!(text.contains("account `app@%` has no password"), "{text}");
    assert!(
        text.contains("Fix:") || text.contains("ALTER USER"),
        "every finding says the fix: {text}"
    );
    let mark = smtp.mark();
    db.sql("ALTER USER app@'%' IDENTIFIED BY 'app-pw-1'");
    let resolved = smtp.expect(
        mark,
        &id,
        &[("resolved", None, &["drift.weakened", "mysql.account.empty_password"])],
        T,
    );
    assert_eq!(resolved[0].record["in_reply_to"], alert[0].record["message_id"]);
    assert!(!lw.proc.log_text().contains("mon-pw-my"));
}

#[test]
fn grant_tables_skipped_then_restored() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut db, smtp, lw, id) = setup(tmp.path());
    let mark = smtp.mark();
    db.run(&["--skip-grant-tables"]);
    let alert = smtp.expect(
        mark,
        &id,
        &[(
            "alert",
            Some("critical"),
            &["drift.weakened", "mysql.auth.unauthenticated_login"],
        )],
        T,
    );
    assert!(
        alert[0]
            .text
            .contains("a login with a made-up user and no password now succeeds"),
        "{}",
        alert[0].text
    );
    let (_, history, _) = lw.cli(&["history", &id]);
    assert!(
        history.contains("/unauthenticated_login: denied → accepted"),
        "{history}"
    );
    // While the server restarts the source fails: that is no all-clear.
    let mark = smtp.mark();
    db.run(&[]);
    smtp.expect(
        mark,
        &id,
        &[(
            "resolved",
            None,
            &["drift.weakened", "mysql.auth.unauthenticated_login"],
        )],
        T,
    );
}

/// The monitoring account loses SELECT on mysql.user while an account has no password: the
/// finding must not vanish with its evidence.
#[test]
fn a_revoked_grant_is_no_all_clear() {
    let tmp = tempfile::tempdir().unwrap();
    let (db, smtp, lw, id) = setup(tmp.path());
    let mark = smtp.mark();
    db.sql("ALTER USER app@'%' IDENTIFIED BY ''");
    smtp.expect(
        mark,
        &id,
        &[(
            "alert",
            Some("critical"),
            &["drift.weakened", "mysql.account.empty_password"],
        )],
        T,
    );

    let mark = smtp.mark();
    db.sql("REVOKE SELECT ON mysql.user FROM lockwatch@'127.0.0.1'; FLUSH PRIVILEGES;");
    let lost = smtp.expect(
        mark,
        &id,
        &[(
            "alert",
            Some("high"),
            &[
                "drift.weakened",
                "mysql.account.empty_password",
                "mysql.visibility.lost",
            ],
        )],
        T,
    );
    assert!(lost[0].text.contains("reading mysql.user failed"), "{}", lost[0].text);
    assert!(
        lost[0].text.contains("ERROR 1142"),
        "the server's own code: {}",
        lost[0].text
    );
    assert!(
        lost[0].text.contains("GRANT SELECT ON mysql.user"),
        "the fix: {}",
        lost[0].text
    );
    // Fixed while lockwatch cannot see it: held open.
    db.sql("ALTER USER app@'%' IDENTIFIED BY 'app-pw-1'");
    lw.quiet(3);
    assert_eq!(smtp.since(mark, &id).len(), 1, "{:#?}", smtp.since(mark, &id));

    let mark = smtp.mark();
    db.sql("GRANT SELECT ON mysql.user TO lockwatch@'127.0.0.1'; FLUSH PRIVILEGES;");
    smtp.expect(
        mark,
        &id,
        &[(
            "resolved",
            None,
            &[
                "drift.weakened",
                "mysql.account.empty_password",
                "mysql.visibility.lost",
            ],
        )],
        T,
    );
}
