//! The pipeline end to end on a real (temporary) SQLite store: what the stages do together
//! over many cycles. The decisions themselves are table-tested without SQLite in `decide`.

mod cycles {
    use super::super::*;
    use crate::model::Resource;
    use crate::sources::Collection;
    use crate::store::OutboxRow;
    use serde_json::{Value, json};
    use std::time::Duration;

    fn posture(open: bool, protected_mode: bool) -> Value {
        json!({
            "unauthenticated_probe": if open { "accepted" } else { "auth_required" },
            "requirepass_set": !open, "acl_nopass_users": if open { json!(["default"]) } else { json!([]) },
            "protected_mode": protected_mode, "bind": ["127.0.0.1"], "listen_scope": "loopback", "tls_port": 0, "version": "7"
        })
    }
    fn res(native: &str, p: Value) -> Resource {
        Resource::new("cache", "redis", native, p)
    }
    fn ok(rs: Vec<Resource>) -> Vec<Collected> {
        vec![Collected {
            source: "cache".into(),
            elapsed: Duration::ZERO,
            result: Ok(Collection::complete(rs)),
        }]
    }
    fn failed() -> Vec<Collected> {
        vec![Collected {
            source: "cache".into(),
            elapsed: Duration::ZERO,
            result: Err("connection refused".into()),
        }]
    }
    fn engine(dir: &std::path::Path) -> Pipeline {
        Pipeline::new(
            Store::open(dir).unwrap(),
            Settings::default(),
            MailSettings::default(),
            vec!["cache".to_string()],
        )
        .unwrap()
    }
    fn mails(e: &Pipeline) -> Vec<OutboxRow> {
        e.store().outbox_listing(true).unwrap()
    }
    fn subjects(e: &Pipeline) -> Vec<String> {
        mails(e).into_iter().map(|m| m.subject).collect()
    }

    #[test]
    fn unchanged_cycles_write_no_snapshot_rows() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = engine(dir.path());
        for t in 0..50 {
            let s = e
                .apply(
                    t,
                    ok(vec![res("a:1", posture(false, true)), res("b:2", posture(false, true))]),
                )
                .unwrap();
            assert_eq!(s.changed, if t == 0 { 2 } else { 0 });
        }
        assert_eq!(e.store().snapshots("cache/redis/a:1").unwrap().len(), 1);
        // Not a single row: the unchanged cycles commit nothing.
        let before = e.store().total_changes();
        for t in 50..60 {
            e.apply(
                t,
                ok(vec![res("a:1", posture(false, true)), res("b:2", posture(false, true))]),
            )
            .unwrap();
        }
        assert_eq!(e.store().total_changes(), before, "an unchanged cycle writes no row");
        e.apply(
            60,
            ok(vec![
                res("a:1", posture(false, false)),
                res("b:2", posture(false, true)),
            ]),
        )
        .unwrap();
        assert_eq!(e.store().snapshots("cache/redis/a:1").unwrap().len(), 2);
        assert_eq!(e.store().snapshots("cache/redis/b:2").unwrap().len(), 1);
        assert!(e.store().total_changes() > before);
    }

    #[test]
    fn first_seen_open_store_alerts_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = engine(dir.path());
        e.apply(0, ok(vec![res("a:1", posture(true, true))])).unwrap();
        assert_eq!(
            subjects(&e),
            vec!["[lockwatch] CRITICAL cache/redis/a:1 is exposed".to_string()]
        );
    }

    #[test]
    fn failing_source_never_deletes_resolves_or_moves_anything() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = engine(dir.path());
        e.apply(0, ok(vec![res("a:1", posture(false, true))])).unwrap();
        e.apply(1, ok(vec![res("a:1", posture(true, true))])).unwrap();
        assert_eq!(mails(&e).len(), 1);
        for t in 2..10 {
            let s = e.apply(t, failed()).unwrap();
            assert_eq!(s.failed_sources, 1);
        }
        // The only new mail is the blindness alert: no RESOLVED while blind.
        assert_eq!(
            subjects(&e)[1..],
            ["[lockwatch] HIGH lockwatch cannot see source cache: connection refused".to_string()],
            "{:?}",
            subjects(&e)
        );
        assert!(!e.known()["cache/redis/a:1"].deleted);
        assert_eq!(
            e.open_alerts()["cache/redis/a:1"].len(),
            2,
            "auth.disabled and drift stay open"
        );
        // When it answers again and is still open: only the blindness resolves.
        e.apply(10, ok(vec![res("a:1", posture(true, true))])).unwrap();
        assert_eq!(
            subjects(&e)[2..],
            ["[lockwatch] RESOLVED lockwatch can see source cache again".to_string()]
        );
        e.apply(11, ok(vec![res("a:1", posture(false, true))])).unwrap();
        assert_eq!(subjects(&e)[3], "[lockwatch] RESOLVED cache/redis/a:1");
    }

    #[test]
    fn blindness_after_blind_after_cycles_and_it_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = engine(dir.path());
        e.settings_mut().blind_after = 3;
        e.apply(0, ok(vec![res("a:1", posture(false, true))])).unwrap();
        e.apply(1, failed()).unwrap();
        e.apply(2, failed()).unwrap();
        assert!(mails(&e).is_empty(), "two failures are not blindness yet");
        // A restart in the middle keeps the count.
        let mut e = engine(dir.path());
        e.settings_mut().blind_after = 3;
        e.apply(3, failed()).unwrap();
        let m = mails(&e);
        assert_eq!(m.len(), 1);
        assert_eq!(
            m[0].subject,
            "[lockwatch] HIGH lockwatch cannot see source cache: connection refused"
        );
        assert!(
            m[0].body_text.contains("lockwatch.source.blind") && m[0].body_text.contains("connection refused"),
            "{}",
            m[0].body_text
        );
        assert!(
            !m[0].body_text.contains("baseline accept"),
            "no baseline advice for blindness"
        );
        e.apply(4, failed()).unwrap();
        assert_eq!(mails(&e).len(), 1, "one alert, not one per cycle");
        e.apply(5, ok(vec![res("a:1", posture(false, true))])).unwrap();
        assert_eq!(
            subjects(&e)[1],
            "[lockwatch] RESOLVED lockwatch can see source cache again"
        );
    }

    #[test]
    fn absent_from_a_successful_listing_is_deleted_and_resolved() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = engine(dir.path());
        e.apply(0, ok(vec![res("a:1", posture(true, true))])).unwrap();
        e.apply(1, ok(vec![])).unwrap();
        let m = mails(&e);
        assert_eq!(m[1].subject, "[lockwatch] RESOLVED cache/redis/a:1");
        assert!(
            m[1].body_text.contains("no longer reported by source cache"),
            "{}",
            m[1].body_text
        );
        assert!(e.known()["cache/redis/a:1"].deleted);
        // Coming back with the same posture is not a change of baseline, and alerts again.
        e.apply(2, ok(vec![res("a:1", posture(true, true))])).unwrap();
        assert!(!e.known()["cache/redis/a:1"].deleted);
        assert_eq!(subjects(&e)[2], "[lockwatch] CRITICAL cache/redis/a:1 is exposed");
    }

    #[test]
    fn reminders_follow_remind_every() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = engine(dir.path());
        e.settings_mut().remind_every = Duration::from_secs(100);
        let open = || ok(vec![res("a:1", posture(true, true))]);
        let counts: Vec<usize> = [0, 50, 99, 100, 150, 199, 200]
            .iter()
            .map(|t| {
                e.apply(*t, open()).unwrap();
                mails(&e).len()
            })
            .collect();
        assert_eq!(counts, vec![1, 1, 1, 2, 2, 2, 3]);
        assert!(subjects(&e)[1].contains("(reminder: still open)"), "{:?}", subjects(&e));
    }

    #[test]
    fn accepting_the_baseline_elsewhere_resolves_the_drift() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = engine(dir.path());
        e.apply(0, ok(vec![res("a:1", posture(false, true))])).unwrap();
        e.apply(1, ok(vec![res("a:1", posture(false, false))])).unwrap();
        assert_eq!(subjects(&e), vec!["[lockwatch] MEDIUM cache/redis/a:1".to_string()]);
        let mut cli_store = Store::open(dir.path()).unwrap();
        let shown = cli_store.acceptable(Some("cache/redis/a:1")).unwrap();
        assert_eq!(
            cli_store
                .accept_baseline(&shown, 2, "alice", None)
                .unwrap()
                .unwrap()
                .len(),
            1
        );
        e.apply(3, ok(vec![res("a:1", posture(false, false))])).unwrap();
        assert_eq!(subjects(&e)[1], "[lockwatch] RESOLVED cache/redis/a:1");
        assert!(e.open_alerts().get("cache/redis/a:1").is_none_or(|o| o.is_empty()));
    }

    #[test]
    fn suppression_lifecycle_posture_change_expiry_and_restart() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = engine(dir.path());
        let open = || ok(vec![res("a:1", posture(true, true))]);
        e.apply(0, ok(vec![res("a:1", posture(false, true))])).unwrap();
        e.apply(1, open()).unwrap();
        assert_eq!(mails(&e).len(), 1, "CRITICAL");
        // Granted (from another process, as the CLI does) for both open rules, until t=100.
        let mut cli = Store::open(dir.path()).unwrap();
        cli.add_suppression("cache/redis/a:1", "redis.auth.disabled", "test box", 2, 100, None)
            .unwrap();
        cli.add_suppression("cache/redis/a:1", crate::alerting::DRIFT_RULE, "test box", 2, 100, None)
            .unwrap();
        e.settings_mut().remind_every = Duration::from_secs(10);
        for t in 3..30 {
            e.apply(t, open()).unwrap();
        }
        assert_eq!(mails(&e).len(), 1, "no reminders while suppressed: {:?}", subjects(&e));
        // A restart keeps them.
        let mut e = engine(dir.path());
        e.settings_mut().remind_every = Duration::from_secs(10);
        e.apply(31, open()).unwrap();
        assert_eq!(mails(&e).len(), 1);
        // The posture changes further: both alert again, saying why.
        e.apply(32, ok(vec![res("a:1", posture(true, false))])).unwrap();
        let m = mails(&e);
        assert_eq!(m.len(), 2, "{:?}", subjects(&e));
        assert_eq!(m[1].subject, "[lockwatch] CRITICAL cache/redis/a:1 is exposed");
        assert!(
            m[1].body_text.contains("no longer applies: the resource changed"),
            "{}",
            m[1].body_text
        );
        assert!(Store::open(dir.path()).unwrap().suppressions(false).unwrap().is_empty());

        // Expiry: granted again, then the clock passes it.
        let mut cli = Store::open(dir.path()).unwrap();
        cli.add_suppression("cache/redis/a:1", "redis.auth.disabled", "again", 33, 50, None)
            .unwrap();
        e.apply(40, ok(vec![res("a:1", posture(true, false))])).unwrap();
        let before = mails(&e).len();
        e.apply(50, ok(vec![res("a:1", posture(true, false))])).unwrap();
        let m = mails(&e);
        assert_eq!(m.len(), before + 1, "one email when it expires: {:?}", subjects(&e));
        assert!(
            m.last().unwrap().body_text.contains("expired at"),
            "{}",
            m.last().unwrap().body_text
        );
        let ended = Store::open(dir.path()).unwrap().suppressions(true).unwrap();
        assert_eq!(
            ended.iter().map(|s| s.end_reason.clone().unwrap()).collect::<Vec<_>>(),
            ["posture changed", "posture changed", "expired"]
        );
    }

    #[test]
    fn an_expired_suppression_of_a_gone_finding_still_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = engine(dir.path());
        e.apply(0, ok(vec![res("a:1", posture(false, true))])).unwrap();
        e.apply(1, ok(vec![res("a:1", posture(false, false))])).unwrap();
        assert_eq!(subjects(&e), ["[lockwatch] MEDIUM cache/redis/a:1".to_string()]);
        let mut cli = Store::open(dir.path()).unwrap();
        cli.add_suppression(
            "cache/redis/a:1",
            crate::alerting::DRIFT_RULE,
            "maintenance",
            2,
            10,
            None,
        )
        .unwrap();
        // The drift is accepted as the new baseline: the finding goes, the posture stays.
        let shown = cli.acceptable(Some("cache/redis/a:1")).unwrap();
        cli.accept_baseline(&shown, 3, "alice", None).unwrap().unwrap();
        e.apply(4, ok(vec![res("a:1", posture(false, false))])).unwrap();
        e.apply(10, ok(vec![res("a:1", posture(false, false))])).unwrap();
        e.apply(11, ok(vec![res("a:1", posture(false, false))])).unwrap();
        let s = subjects(&e);
        assert_eq!(s.iter().filter(|x| x.contains("NOTICE")).count(), 1, "{s:?}");
        assert_eq!(
            s.last().unwrap(),
            "[lockwatch] NOTICE cache/redis/a:1: suppression expired",
            "{s:?}"
        );
    }

    #[test]
    fn below_min_severity_is_not_emailed() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = engine(dir.path());
        e.settings_mut().min_severity = Severity::High;
        e.apply(0, ok(vec![res("a:1", posture(false, true))])).unwrap();
        e.apply(1, ok(vec![res("a:1", posture(false, false))])).unwrap();
        assert!(mails(&e).is_empty(), "a medium drift is below min_severity high");
    }
}

/// Never a false all-clear: what the pipeline does when evidence goes missing, when a
/// resource keeps getting weaker, and when it gets stronger than its baseline.
mod trust {
    use super::super::*;
    use crate::model::{Resource, Unknown};
    use crate::sources::Collection;
    use serde_json::{Value, json};
    use std::time::Duration;

    fn doc(nopass: &[&str], password: bool) -> Value {
        json!({
            "unauthenticated_probe": if password { "auth_required" } else { "accepted" },
            "requirepass_set": password, "acl_nopass_users": nopass,
            "protected_mode": true, "bind": ["127.0.0.1"], "listen_scope": "loopback", "tls_port": 0,
            "version": "7", "reach": "loopback"
        })
    }
    fn cycle(p: &mut Pipeline, t: i64, posture: Value, unknown: Vec<Unknown>) {
        let r = Resource::new("cache", "redis", "a:1", posture).with_unknown(unknown);
        p.apply(
            t,
            vec![Collected {
                source: "cache".into(),
                elapsed: Duration::ZERO,
                result: Ok(Collection::complete(vec![r])),
            }],
        )
        .unwrap();
    }
    fn pipeline(dir: &std::path::Path) -> Pipeline {
        Pipeline::new(
            Store::open(dir).unwrap(),
            Settings::default(),
            MailSettings::default(),
            vec!["cache".to_string()],
        )
        .unwrap()
    }
    /// (subject, rules) of every mail so far.
    fn sent(p: &Pipeline) -> Vec<(String, Vec<String>)> {
        p.store()
            .outbox_listing(true)
            .unwrap()
            .into_iter()
            .map(|m| (m.subject, m.rules))
            .collect()
    }
    fn denied() -> Vec<Unknown> {
        vec![Unknown::new(
            "acl_nopass_users",
            "ACL LIST failed: NOPERM User lockwatch has no permissions to run the 'acl|list' command",
            "ACL SETUSER lockwatch +acl|list",
        )]
    }

    #[test]
    fn lost_evidence_never_resolves() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = pipeline(dir.path());
        cycle(&mut p, 0, doc(&[], true), vec![]);
        cycle(&mut p, 1, doc(&["bob"], true), vec![]);
        assert_eq!(
            sent(&p),
            vec![(
                // High on a loopback-only server; the weakening that exposed it is critical.
                "[lockwatch] CRITICAL cache/redis/a:1 is exposed on a loopback-only server".to_string(),
                vec!["drift.weakened".to_string(), "redis.acl.nopass_user".to_string()]
            )]
        );
        // The monitoring user loses ACL LIST: the nopass user is no longer seen, which must not
        // read as fixed. Its last value is kept; lockwatch says it lost sight.
        for t in 2..6 {
            cycle(&mut p, t, doc(&[], true), denied());
        }
        let s = sent(&p);
        assert_eq!(s.len(), 2, "{s:#?}");
        assert_eq!(
            s[1],
            (
                // Still exposed as far as lockwatch knows: the last value stands.
                "[lockwatch] HIGH cache/redis/a:1 is exposed on a loopback-only server".to_string(),
                vec![
                    "drift.weakened".to_string(),
                    "redis.acl.nopass_user".to_string(),
                    "redis.visibility.lost".to_string()
                ]
            )
        );
        let body = &p.store().outbox_listing(true).unwrap()[1].body_text;
        assert!(
            body.contains("can no longer read acl_nopass_users") && body.contains("NOPERM"),
            "{body}"
        );
        assert!(!s.iter().any(|(subject, _)| subject.contains("RESOLVED")), "{s:#?}");
        // Readable again, and the user really is gone: now, and only now, RESOLVED.
        cycle(&mut p, 6, doc(&[], true), vec![]);
        assert_eq!(sent(&p)[2].0, "[lockwatch] RESOLVED cache/redis/a:1");
    }

    #[test]
    fn held_alerts_stay_open_while_a_field_is_stale() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = pipeline(dir.path());
        cycle(&mut p, 0, doc(&[], true), vec![]);
        cycle(&mut p, 1, doc(&[], false), vec![]);
        assert_eq!(
            sent(&p)[0].0,
            "[lockwatch] CRITICAL cache/redis/a:1 is exposed on a loopback-only server"
        );
        // The password comes back while ACL LIST is denied: the probe says auth is required,
        // but with evidence missing no alert may resolve.
        cycle(&mut p, 2, doc(&[], true), denied());
        let s = sent(&p);
        assert!(!s.iter().any(|(subject, _)| subject.contains("RESOLVED")), "{s:#?}");
        let open: Vec<String> = p.open_alerts()["cache/redis/a:1"]
            .iter()
            .map(|o| o.rule.clone())
            .collect();
        assert!(open.contains(&"redis.auth.disabled".to_string()), "{open:?}");
        cycle(&mut p, 3, doc(&[], true), vec![]);
        assert_eq!(sent(&p).last().unwrap().0, "[lockwatch] RESOLVED cache/redis/a:1");
    }

    #[test]
    fn a_resource_first_seen_unreadable_gets_a_medium_finding() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = pipeline(dir.path());
        cycle(&mut p, 0, doc(&[], true), denied());
        assert_eq!(
            sent(&p),
            vec![(
                "[lockwatch] MEDIUM cache/redis/a:1 (on a loopback-only server)".to_string(),
                vec!["redis.visibility.lost".to_string()]
            )]
        );
        let body = &p.store().outbox_listing(true).unwrap()[0].body_text;
        assert!(
            body.contains("cannot read acl_nopass_users") && body.contains("+acl|list"),
            "{body}"
        );
    }

    #[test]
    fn every_further_weakening_is_mailed_in_the_thread() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = pipeline(dir.path());
        cycle(&mut p, 0, doc(&[], true), vec![]);
        cycle(&mut p, 1, doc(&["bob"], true), vec![]);
        cycle(&mut p, 2, doc(&["bob", "carol"], true), vec![]);
        let s = sent(&p);
        assert_eq!(s.len(), 2, "{s:#?}");
        assert_eq!(
            s[1].0,
            "[lockwatch] CRITICAL cache/redis/a:1 is exposed on a loopback-only server (further weakened)"
        );
        let body = &p.store().outbox_listing(true).unwrap()[1].body_text;
        assert!(body.contains("Further weakened") && body.contains("carol"), "{body}");
        // A set, not a list: the same members in another order are no change at all.
        cycle(&mut p, 3, doc(&["carol", "bob"], true), vec![]);
        assert_eq!(sent(&p).len(), 2);
    }

    #[test]
    fn a_fix_not_in_force_yet_keeps_the_alert_open_and_says_so_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = pipeline(dir.path());
        cycle(&mut p, 0, doc(&[], true), vec![]);
        cycle(&mut p, 1, doc(&["bob"], true), vec![]);
        assert_eq!(sent(&p).len(), 1);
        // What is read shows the fix, but it is not in force yet (a file not reloaded).
        let pending = || {
            vec![Unknown::pending(
                "acl_nopass_users",
                "the ACL file changed on disk; the server has not loaded it",
                "ACL LOAD",
            )]
        };
        for t in 2..5 {
            cycle(&mut p, t, doc(&[], true), pending());
        }
        let s = sent(&p);
        assert_eq!(s.len(), 2, "{s:#?}");
        assert_eq!(
            s[1].0,
            "[lockwatch] CRITICAL cache/redis/a:1 is exposed on a loopback-only server (reminder: still open)"
        );
        let body = &p.store().outbox_listing(true).unwrap()[1].body_text;
        assert!(
            body.starts_with("Not in force yet: the ACL file changed on disk"),
            "{body}"
        );
        // In force: resolved.
        cycle(&mut p, 5, doc(&[], true), vec![]);
        assert_eq!(sent(&p)[2].0, "[lockwatch] RESOLVED cache/redis/a:1");
    }

    #[test]
    fn a_flapping_rule_is_mailed_once_and_held_until_stable() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = pipeline(dir.path());
        cycle(&mut p, 0, doc(&[], true), vec![]);
        // Someone toggles the password every minute.
        let mut t = 60;
        for _ in 0..3 {
            cycle(&mut p, t, doc(&[], false), vec![]);
            cycle(&mut p, t + 60, doc(&[], true), vec![]);
            t += 120;
        }
        let subjects: Vec<String> = sent(&p).into_iter().map(|(s, _)| s).collect();
        assert_eq!(
            subjects,
            [
                "[lockwatch] CRITICAL cache/redis/a:1 is exposed on a loopback-only server",
                "[lockwatch] RESOLVED cache/redis/a:1",
                "[lockwatch] CRITICAL cache/redis/a:1 is exposed on a loopback-only server",
                "[lockwatch] RESOLVED cache/redis/a:1",
                "[lockwatch] CRITICAL cache/redis/a:1 is exposed on a loopback-only server",
            ]
        );
        let third = &p.store().outbox_listing(true).unwrap()[4].body_text;
        assert!(third.contains("flapping"), "{third}");
        // It flips again while held: nothing new to tell, no mail.
        cycle(&mut p, t, doc(&[], false), vec![]);
        assert_eq!(sent(&p).len(), 5);
        // Clear for three cycles in a row: held for two, resolved on the third.
        cycle(&mut p, t + 60, doc(&[], true), vec![]);
        cycle(&mut p, t + 120, doc(&[], true), vec![]);
        assert_eq!(sent(&p).len(), 5);
        cycle(&mut p, t + 180, doc(&[], true), vec![]);
        assert_eq!(sent(&p).len(), 6);
        assert_eq!(sent(&p)[5].0, "[lockwatch] RESOLVED cache/redis/a:1");
    }

    #[test]
    fn the_baseline_ratchets_up() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = pipeline(dir.path());
        // First seen without a password: that is the baseline, and it alerts at once.
        cycle(&mut p, 0, doc(&[], false), vec![]);
        assert_eq!(
            sent(&p),
            vec![(
                "[lockwatch] HIGH cache/redis/a:1 is exposed on a loopback-only server".to_string(),
                vec!["redis.auth.disabled".to_string()]
            )]
        );
        // The password is restored: strictly stronger, so it becomes the baseline.
        cycle(&mut p, 1, doc(&[], true), vec![]);
        assert_eq!(sent(&p)[1].0, "[lockwatch] RESOLVED cache/redis/a:1");
        let events = p.store().baseline_events("cache/redis/a:1").unwrap();
        assert_eq!(
            events.iter().map(|e| e.how.as_str()).collect::<Vec<_>>(),
            ["first seen", "raised"]
        );
        // Removed again: that is drift now, critical, not only the absolute finding.
        cycle(&mut p, 2, doc(&[], false), vec![]);
        assert_eq!(
            sent(&p)[2],
            (
                "[lockwatch] CRITICAL cache/redis/a:1 is exposed on a loopback-only server".to_string(),
                vec!["drift.weakened".to_string(), "redis.auth.disabled".to_string()]
            )
        );
    }
}

mod partial {
    use super::super::*;
    use crate::model::Resource;
    use crate::sources::Collection;
    use crate::sources::PartFailure;
    use serde_json::json;
    use std::time::Duration;

    #[test]
    fn a_failed_part_keeps_its_resources_while_the_rest_updates() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = Pipeline::new(
            Store::open(dir.path()).unwrap(),
            Settings::default(),
            MailSettings::default(),
            vec!["cache".to_string()],
        )
        .unwrap();
        let p = json!({"unauthenticated_probe": "auth_required", "requirepass_set": true, "acl_nopass_users": [], "protected_mode": true,
                       "bind": ["127.0.0.1"], "listen_scope": "loopback", "tls_port": 0, "version": "7"});
        let r = |n: &str| Resource::new("cache", "redis", n, p.clone());
        let coll = |rs, failed| {
            vec![Collected {
                source: "cache".into(),
                elapsed: Duration::ZERO,
                result: Ok(Collection { resources: rs, failed }),
            }]
        };
        e.apply(0, coll(vec![r("east/a"), r("west/b")], vec![])).unwrap();
        let west_down = vec![PartFailure {
            scope: "cache/redis/west/".into(),
            message: "west: throttled".into(),
        }];
        let s = e.apply(1, coll(vec![r("east/a")], west_down)).unwrap();
        assert_eq!(s.failed_sources, 1);
        assert!(
            !e.known()["cache/redis/west/b"].deleted,
            "absence inside a failed part proves nothing"
        );
        e.apply(2, coll(vec![r("east/a")], vec![])).unwrap();
        assert!(
            e.known()["cache/redis/west/b"].deleted,
            "absence from a successful listing is a deletion"
        );
    }
}
