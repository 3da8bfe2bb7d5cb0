//! End to end on our own MariaDB instance: an account's password removed, and the server
//! restarted with --skip-grant-tables — each CRITICAL within a cycle, RESOLVED when undone.

mod support;
use std::time::Duration;
use support::*;

fn setup(tmp: &std::path::Path) -> (Mariadb, Smtp, Lockwatch, String) {
    let db = Mariadb::start(tmp, "mon-pw-my");
    let smtp = Smtp::start(free_port(), tmp);
    let port = free_port();
    let cfg = write_config(
        tmp,
        port,
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
    let lw = Lockwatch::start(&cfg, port);
    let id = format!("shop/mysql/127.0.0.1:{}", db.port);
    let exposed = format!("lockwatch_resource_exposed{{resource=\"{id}\",source=\"shop\"}}");
    wait_for("the first cycle", Duration::from_secs(60), || {
        metric(&lw.metrics(), &exposed)
    });
    std::thread::sleep(Duration::from_secs(2));
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
    db.sql("ALTER USER app@'%' IDENTIFIED BY ''");
    let alert = wait_mail(
        &smtp.dir,
        &format!("[lockwatch] CRITICAL {id}"),
        Duration::from_secs(30),
    );
    let text = alert["text"].as_str().unwrap();
    assert!(
        text.contains("mysql.account.empty_password") && text.contains("app@%"),
        "{text}"
    );
    assert!(
        text.contains("weakened /accounts_without_password/0: (absent) → app@%"),
        "{text}"
    );
    db.sql("ALTER USER app@'%' IDENTIFIED BY 'app-pw-1'");
    let resolved = wait_mail(
        &smtp.dir,
        &format!("[lockwatch] RESOLVED {id}"),
        Duration::from_secs(30),
    );
    assert_eq!(resolved["in_reply_to"], alert["message_id"]);
    assert!(!lw.proc.log_text().contains("mon-pw-my"));
}

#[test]
fn grant_tables_skipped_then_restored() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut db, smtp, lw, id) = setup(tmp.path());
    db.run(&["--skip-grant-tables"]);
    let alert = wait_mail(
        &smtp.dir,
        &format!("[lockwatch] CRITICAL {id}"),
        Duration::from_secs(60),
    );
    let text = alert["text"].as_str().unwrap();
    assert!(text.contains("mysql.auth.unauthenticated_login"), "{text}");
    assert!(
        text.contains("weakened /unauthenticated_login: denied → accepted"),
        "{text}"
    );
    let (_, history, _) = lw.cli(&["history", &id]);
    assert!(
        history.contains("/unauthenticated_login: denied → accepted"),
        "{history}"
    );
    db.run(&[]);
    wait_mail(
        &smtp.dir,
        &format!("[lockwatch] RESOLVED {id}"),
        Duration::from_secs(60),
    );
}
