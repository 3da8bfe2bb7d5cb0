//! The status page on the metrics listener, rendered by a real browser (Debian's chromium,
//! headless): the open alert a change created, and the resource's timeline.

mod support;
use std::process::Command;
use std::time::Duration;
use support::*;

const T: Duration = Duration::from_secs(30);
const CHROMIUM: &str = "/usr/bin/chromium";

/// The DOM chromium builds from `url` (no JavaScript on the page; what a person would see).
fn rendered(url: &str, dir: &std::path::Path) -> String {
    assert!(
        std::path::Path::new(CHROMIUM).exists(),
        "chromium not found at {CHROMIUM}: run the README's test command (scripts/test.sh), which installs it"
    );
    let out = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-extensions",
            "--dump-dom",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.join(unique("chromium", "d")).display()
        ))
        .arg(url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "chromium: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_page_shows_the_open_alert_and_the_timeline() {
    let tmp = tempfile::tempdir().unwrap();
    let redis = Redis::start(tmp.path(), "page-pw");
    let smtp = Smtp::start(tmp.path());
    let config = write_config(
        tmp.path(),
        smtp.port,
        &format!(
            "[[sources]]\nkind = \"redis\"\nname = \"cache\"\nurl = \"redis://:page-pw@127.0.0.1:{}\"\n",
            redis.port
        ),
    );
    let lw = Lockwatch::start(&config);
    let id = format!("cache/redis/127.0.0.1:{}", redis.port);
    let base = format!("http://127.0.0.1:{}", lw.metrics_port);
    let page = rendered(&format!("{base}/"), tmp.path());
    assert!(
        page.contains("Open alerts (0)") && page.contains("No open alerts."),
        "{page}"
    );
    assert!(page.contains("<td>cache</td>"), "{page}");

    let mark = smtp.mark();
    assert!(redis.cli(&["CONFIG", "SET", "requirepass", ""]).contains("OK"));
    smtp.expect(
        mark,
        &id,
        &[("alert", Some("critical"), &["drift.weakened", "redis.auth.disabled"])],
        T,
    );
    let page = rendered(&format!("{base}/"), tmp.path());
    assert!(page.contains("Open alerts (2)"), "{page}");
    assert!(page.contains(&format!("<a href=\"/resource/{id}\">{id}</a>")), "{page}");
    assert!(
        page.contains("<td>redis.auth.disabled</td>") && page.contains("CRITICAL"),
        "{page}"
    );
    assert!(!page.contains("page-pw"), "no secret on the page");

    let timeline = rendered(&format!("{base}/resource/{id}"), tmp.path());
    assert!(timeline.contains("first seen"), "{timeline}");
    assert!(
        timeline.contains("weakened /requirepass_set: true → false"),
        "{timeline}"
    );
    assert!(timeline.contains("still open"), "{timeline}");
    let missing = http_get(lw.metrics_port, "/resource/nope/none/x").unwrap();
    assert!(missing.contains("no resource nope/none/x"), "{missing}");
}
