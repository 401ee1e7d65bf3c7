//! The database goes away and comes back. This binary owns its PostgreSQL cluster,
//! so stopping it disturbs no other test.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::Utc;
use common::{TestDb, eventually};
use sitepulse::checker::{WriterConfig, spawn_writer};
use sitepulse::domain::{Check, CheckDefaults, NewWebsite};
use sitepulse::events::EventBus;

fn check(website: i64, n: i64) -> Check {
    // Slots one second apart, from a fixed recent minute.
    static BASE: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    let base = *BASE.get_or_init(|| (Utc::now().timestamp() / 60 - 60) * 60);
    let slot = chrono::DateTime::from_timestamp(base + n, 0).unwrap();
    Check {
        website_id: website,
        slot,
        checked_at: slot,
        up: true,
        status_code: Some(200),
        response_time_ms: 12,
        error: None,
    }
}

/// One test, because the steps share one cluster that they stop and start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_wait_for_the_database_and_readiness_follows_it() {
    sitepulse::init_logging(sitepulse::config::LogFormat::Text);
    let db = TestDb::postgres().await;
    let store = db.store().await;
    let spec = NewWebsite {
        name: "patient",
        url: "http://127.0.0.1:9/",
        ..Default::default()
    }
    .parse(CheckDefaults::default())
    .unwrap();
    let site = store.create_website(&spec).await.unwrap();

    // A service on the same database, to watch /readyz.
    let mut config = sitepulse::config::Config::defaults();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.database_url = db.url_string();
    let server = sitepulse::Server::start(config).await.unwrap();
    let readyz = format!("http://{}/readyz", server.addr());
    let healthz = format!("http://{}/healthz", server.addr());
    assert_eq!(reqwest::get(&readyz).await.unwrap().status(), 200);

    let config = WriterConfig {
        flush_every: Duration::from_millis(50),
        buffer_capacity: 30,
        ..WriterConfig::default()
    };
    let (writer, writer_task) = spawn_writer(store.clone(), EventBus::default(), config);
    writer.submit(check(site.id, 0));
    eventually(10, "the first result to be stored", || async {
        (writer.stats().stored.load(Ordering::Relaxed) == 1).then_some(())
    })
    .await;

    common::pg::cluster().stop();
    // Not ready while the database is gone, but alive.
    eventually(10, "/readyz to report the database missing", || async {
        let status = reqwest::get(&readyz).await.ok()?.status();
        (status == 503).then_some(())
    })
    .await;
    assert_eq!(reqwest::get(&healthz).await.unwrap().status(), 200);

    // 20 results during the outage: all wait in the buffer.
    for n in 1..=20 {
        writer.submit(check(site.id, n));
    }
    eventually(10, "a failed write", || async {
        (writer.stats().failed_flushes.load(Ordering::Relaxed) > 0).then_some(())
    })
    .await;
    assert_eq!(writer.stats().dropped.load(Ordering::Relaxed), 0);
    // 15 more overflow the buffer of 30: the 5 oldest are dropped and counted.
    for n in 21..=35 {
        writer.submit(check(site.id, n));
    }
    eventually(10, "the overflow to be counted", || async {
        (writer.stats().dropped.load(Ordering::Relaxed) == 5).then_some(())
    })
    .await;

    common::pg::cluster().start_again();
    eventually(30, "the buffered results to be written", || async {
        (writer.stats().stored.load(Ordering::Relaxed) == 31).then_some(())
    })
    .await;
    let stored = store.recent_checks(site.id, None, 100).await.unwrap();
    assert_eq!(stored.len(), 31);
    // What was lost is the oldest of the outage, n = 1..=5.
    let oldest_kept = stored.iter().map(|c| c.slot).min().unwrap();
    assert_eq!(oldest_kept, check(site.id, 0).slot);
    assert!(!stored.iter().any(|c| c.slot == check(site.id, 3).slot));
    assert!(stored.iter().any(|c| c.slot == check(site.id, 6).slot));
    eventually(10, "/readyz to recover", || async {
        let status = reqwest::get(&readyz).await.ok()?.status();
        (status == 200).then_some(())
    })
    .await;

    drop(writer);
    writer_task.await.unwrap();
    server.shutdown();
    server.wait().await.unwrap();
}
