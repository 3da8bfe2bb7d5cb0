//! Two lockwatch daemons (each with its own state) watching one Redis, posting to a two-member
//! Alertmanager cluster (Debian's prometheus-alertmanager, gossiping on loopback) that mails the
//! test SMTP sink: a change pages exactly once; with one daemon killed, the next change still
//! pages.

mod support;
use std::time::Duration;
use support::*;

const T: Duration = Duration::from_secs(60);

fn daemon_config(dir: &std::path::Path, name: &str, redis_port: u16, am: &[AmMember]) -> std::path::PathBuf {
    let d = dir.join(name);
    std::fs::create_dir_all(&d).unwrap();
    let urls: Vec<String> = am.iter().map(|m| format!("\"{}\"", m.url())).collect();
    let path = d.join("lockwatch.toml");
    std::fs::write(
        &path,
        format!(
            "[daemon]\nschedule = \"* * * * * *\"\nstate_dir = \"{}\"\nmetrics_listen = \"127.0.0.1:0\"\n\
             [alerts.alertmanager]\nurls = [{}]\nresend = \"2s\"\n\
             [[sources]]\nkind = \"redis\"\nname = \"cache\"\nurl = \"redis://:am-pw@127.0.0.1:{redis_port}\"\n",
            d.join("state").display(),
            urls.join(", ")
        ),
    )
    .unwrap();
    path
}

/// Mails the sink got from Alertmanager: (subject, raw).
fn pages(smtp: &Smtp) -> Vec<(String, String)> {
    smtp.mails()
        .into_iter()
        .map(|m| {
            (
                m["subject"].as_str().unwrap_or_default().to_string(),
                m["raw"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn posts(lw: &Lockwatch) -> f64 {
    lw.metric("lockwatch_alertmanager_posts_total{result=\"ok\"}")
        .unwrap_or(0.0)
}

/// Wait until each daemon has posted `n` more times: at a 2 s resend, longer than the cluster's
/// group_interval, so a second notification would have been sent by then.
fn settle(daemons: &[&Lockwatch], n: f64) {
    let start: Vec<f64> = daemons.iter().map(|d| posts(d)).collect();
    wait_for("more posts to Alertmanager", T, || {
        daemons.iter().zip(&start).all(|(d, s)| posts(d) >= s + n).then_some(())
    });
}

#[test]
fn two_daemons_one_page_and_either_alone_still_pages() {
    let tmp = tempfile::tempdir().unwrap();
    let redis = Redis::start(tmp.path(), "am-pw");
    let smtp = Smtp::start(tmp.path());
    let am = am_cluster(tmp.path(), &am_config(tmp.path(), smtp.port), 2);
    let mut a = Lockwatch::start(&daemon_config(tmp.path(), "a", redis.port, &am));
    let b = Lockwatch::start(&daemon_config(tmp.path(), "b", redis.port, &am));
    let id = format!("cache/redis/127.0.0.1:{}", redis.port);
    settle(&[&a, &b], 2.0);
    assert!(
        pages(&smtp).is_empty(),
        "a protected Redis pages nobody: {:?}",
        pages(&smtp)
    );

    // The password is removed: both daemons see it, the cluster pages once.
    assert!(redis.cli(&["CONFIG", "SET", "requirepass", ""]).contains("OK"));
    wait_for("one page", T, || (!pages(&smtp).is_empty()).then_some(()));
    for m in &am {
        wait_for("both members to hold the alerts", T, || {
            let held = am_alerts(m);
            (held
                == vec![
                    ("drift.weakened".to_string(), id.clone(), "active".to_string()),
                    ("redis.auth.disabled".to_string(), id.clone(), "active".to_string()),
                ])
            .then_some(())
        });
    }
    settle(&[&a, &b], 3.0);
    let got = pages(&smtp);
    assert_eq!(
        got.len(),
        1,
        "one incident, one page: {:#?}",
        got.iter().map(|p| &p.0).collect::<Vec<_>>()
    );
    assert!(
        got[0].0.starts_with("[FIRING:2]") && got[0].0.contains(&id),
        "{}",
        got[0].0
    );
    assert!(got[0].1.contains("redis.auth.disabled"), "{}", got[0].1);

    // One daemon dies; the other alone still pages the next change.
    a.proc.kill9();
    assert!(
        redis
            .cli_as(None, &["ACL", "SETUSER", "reporting", "on", "nopass", "~*", "+@read"])
            .contains("OK")
    );
    wait_for("a second page", T, || (pages(&smtp).len() > 1).then_some(()));
    settle(&[&b], 3.0);
    let got = pages(&smtp);
    assert_eq!(got.len(), 2, "{:#?}", got.iter().map(|p| &p.0).collect::<Vec<_>>());
    assert!(got[1].1.contains("redis.acl.nopass_user"), "{}", got[1].1);
    assert!(!got[1].1.contains("am-pw"));
}
