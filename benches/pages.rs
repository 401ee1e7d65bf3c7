//! Server time of the pages, measured on the real binary (release, SQLite):
//!
//! 1. The websites list (`/`) with 1,000 websites, each with a full strip of
//!    recent checks. Goal: p99 under 30 ms.
//! 2. A website's page (`/websites/{id}`) with 30 days of minute checks (43,200
//!    raw checks) behind it. Goal: p99 under 10 ms.
//! 3. The compressed size of the list with 100 websites. Goal: under 30 KB.
//!
//! One client sends requests back to back over a kept-alive connection, so the
//! time measured is the service's time plus a loopback round trip. The websites
//! are paused, so the checker does not change what is measured.
//! `BENCH_REQUESTS` (default 1000) sets how many requests each phase sends.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use chrono::{Duration, Utc};
use common::{TestDb, service};
use sitepulse::domain::{Check, CheckDefaults, CheckError, ErrorKind, NewWebsite, WebsiteId};
use sitepulse::store::DynStore;

const STRIP: i64 = 30;

#[tokio::main]
async fn main() {
    sitepulse::install_crypto_provider();
    let requests: usize = std::env::var("BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let client = reqwest::Client::new();

    // 1 and 2: 1,000 websites; the first has 30 days of minute checks.
    let db = TestDb::sqlite();
    let store = db.store().await;
    let started = Instant::now();
    let ids = seed_websites(&store, 1000).await;
    let now = Utc::now();
    for id in &ids {
        let batch: Vec<Check> = (0..STRIP)
            .map(|i| check(*id, now - Duration::minutes(i + 1), i % 17 != 5))
            .collect();
        store.record_checks(&batch).await.unwrap();
    }
    let detail = ids[0];
    let minutes = 30 * 24 * 60;
    let mut batch = Vec::with_capacity(1000);
    for i in STRIP..minutes {
        batch.push(check(detail, now - Duration::minutes(i + 1), i % 503 != 0));
        if batch.len() == 1000 {
            store.record_checks(&batch).await.unwrap();
            batch.clear();
        }
    }
    store.record_checks(&batch).await.unwrap();
    drop(store);
    println!(
        "pages bench: seeded 1,000 websites with {STRIP} checks each and one with {minutes} minute checks in {:.1}s; {requests} requests per phase",
        started.elapsed().as_secs_f64()
    );

    let (child, base) = service::spawn(&db, &[], &[]).await;
    let list = time(&client, &format!("{base}/"), requests).await;
    list.print("list, 1,000 websites", 30.0);
    // What a browser asks for: compressed.
    let compressed = time_with(
        &client,
        &format!("{base}/"),
        requests,
        &[("accept-encoding", "gzip, deflate, br, zstd")],
    )
    .await;
    compressed.print("list, 1,000 websites, compressed for a browser", 30.0);
    let page = time(&client, &format!("{base}/websites/{detail}"), requests).await;
    page.print("website page, 30 days of minute checks", 10.0);
    let fragment = time_with(
        &client,
        &format!("{base}/websites/{detail}"),
        requests,
        &[("HX-Request", "true")],
    )
    .await;
    fragment.print("website page as an htmx fragment", 10.0);
    service::stop(child);

    // 3: the list with 100 websites, as a browser receives it.
    let db = TestDb::sqlite();
    let store = db.store().await;
    let ids = seed_websites(&store, 100).await;
    for id in &ids {
        let batch: Vec<Check> = (0..STRIP)
            .map(|i| check(*id, now - Duration::minutes(i + 1), i % 17 != 5))
            .collect();
        store.record_checks(&batch).await.unwrap();
    }
    drop(store);
    let (child, base) = service::spawn(&db, &[], &[]).await;
    let plain = size(&client, &format!("{base}/"), None).await;
    let gzip = size(&client, &format!("{base}/"), Some("gzip")).await;
    let brotli = size(&client, &format!("{base}/"), Some("br")).await;
    println!(
        "list with 100 websites: {:.1} KB uncompressed, {:.1} KB gzip, {:.1} KB brotli; goal under 30 KB compressed: {}",
        plain as f64 / 1024.0,
        gzip as f64 / 1024.0,
        brotli as f64 / 1024.0,
        verdict((gzip as f64) < 30.0 * 1024.0)
    );
    service::stop(child);
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

async fn seed_websites(store: &DynStore, count: usize) -> Vec<WebsiteId> {
    let mut ids = Vec::with_capacity(count);
    for i in 0..count {
        let mut spec = NewWebsite {
            name: &format!("Website {i:04}"),
            url: &format!("https://site-{i:04}.example.com/status"),
            ..Default::default()
        }
        .parse(CheckDefaults::default())
        .unwrap();
        spec.paused = true;
        ids.push(store.create_website(&spec).await.unwrap().id);
    }
    ids
}

/// A check with a plausible, varying response time; the down ones timed out.
/// Each website's slots sit at their own second of the minute, as the scheduler
/// spreads them.
fn check(website: WebsiteId, slot: chrono::DateTime<Utc>, up: bool) -> Check {
    let slot = slot + Duration::seconds(website % 60);
    let noise = (slot.timestamp() as u64 ^ (website as u64).wrapping_mul(0x9e37_79b9))
        .wrapping_mul(0x2545_f491_4f6c_dd1d)
        >> 54;
    let ms = 35 + noise as u32 % 400;
    Check {
        website_id: website,
        slot,
        checked_at: slot + Duration::milliseconds(3),
        up,
        status_code: up.then_some(200),
        response_time_ms: if up { ms } else { 10_000 },
        error: (!up).then(|| CheckError {
            kind: ErrorKind::Timeout,
            message: "no response within 10s".into(),
        }),
    }
}

struct Timings(Vec<f64>);

impl Timings {
    fn percentile(&self, p: f64) -> f64 {
        let mut sorted = self.0.clone();
        sorted.sort_by(f64::total_cmp);
        let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted[index]
    }

    fn print(&self, label: &str, goal_ms: f64) {
        let p99 = self.percentile(0.99);
        println!(
            "{label}: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} requests); goal p99 under {goal_ms} ms: {}",
            self.percentile(0.5),
            p99,
            self.percentile(1.0),
            self.0.len(),
            verdict(p99 < goal_ms)
        );
    }
}

async fn time(client: &reqwest::Client, url: &str, requests: usize) -> Timings {
    time_with(client, url, requests, &[]).await
}

async fn time_with(
    client: &reqwest::Client,
    url: &str,
    requests: usize,
    headers: &[(&str, &str)],
) -> Timings {
    // Warm up: the first request reads the list into memory.
    for _ in 0..10 {
        send(client, url, headers).await;
    }
    let mut timings = Vec::with_capacity(requests);
    for _ in 0..requests {
        let started = Instant::now();
        send(client, url, headers).await;
        timings.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    Timings(timings)
}

async fn send(client: &reqwest::Client, url: &str, headers: &[(&str, &str)]) {
    let mut request = client.get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    assert!(
        response.status().is_success(),
        "{url}: {}",
        response.status()
    );
    response.bytes().await.unwrap();
}

async fn size(client: &reqwest::Client, url: &str, encoding: Option<&str>) -> usize {
    let mut request = client.get(url);
    if let Some(encoding) = encoding {
        request = request.header("accept-encoding", encoding);
    }
    let response = request.send().await.unwrap();
    if let Some(encoding) = encoding {
        assert_eq!(response.headers()["content-encoding"], encoding);
    }
    response.bytes().await.unwrap().len()
}
