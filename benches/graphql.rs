//! GraphQL throughput and subscription fan-out, measured on the real binary (SQLite).
//!
//! 1. The websites query, `{ websites { id name status lastCheck { responseTimeMs } } }`,
//!    with 100 websites being checked every 10 s: requests/s and p50/p99 latency with
//!    64 concurrent connections (`wrk`; without it a slower in-process client).
//!    Goal: at least 5,000 requests/s with p99 under 20 ms.
//! 2. `BENCH_SUBSCRIPTIONS` (default 10,000) WebSocket connections, each subscribed to
//!    `checkCompleted` of one paused website; `checkNow` on it 20 times. Printed:
//!    delivery latency p50/p99 from the check being written (the `checkNow` answer,
//!    which the service sends once the check is stored and announced) to each
//!    subscriber receiving it, the same from sending `checkNow` (so also the request
//!    to the target and the write), and the service's memory per idle subscription.
//!    Goal: p99 from the write under 250 ms, under 20 KB per subscription.
//!
//! `BENCH_SECONDS` (default 20) sets the length of the query run.

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use common::{TestDb, service};
use serde_json::json;
use sitepulse::domain::{CheckDefaults, NewWebsite};

const QUERY: &str = "{ websites { id name status lastCheck { responseTimeMs } } }";
const ADMIN_PASSWORD: &str = "bench-admin-password";

#[tokio::main]
async fn main() {
    sitepulse::install_crypto_provider();
    let seconds: u64 = env_number("BENCH_SECONDS", 20);
    let mut subscriptions: usize = env_number("BENCH_SUBSCRIPTIONS", 10_000);
    // Each subscriber holds one socket here and one in the service.
    let files = common::open_file_limit();
    if files < subscriptions + 500 {
        subscriptions = files.saturating_sub(500);
        println!(
            "open-file limit {files}: fan-out with {subscriptions} subscriptions (raise it with ulimit -n)"
        );
    }
    let target = start_target().await;

    let db = TestDb::sqlite();
    let store = db.store().await;
    for i in 0..100 {
        let spec = NewWebsite {
            name: &format!("website {i:03}"),
            url: &target,
            interval: Some(Duration::from_secs(10)),
            timeout: Some(Duration::from_secs(5)),
        }
        .parse(CheckDefaults::default())
        .unwrap();
        store.create_website(&spec).await.unwrap();
    }
    let paused = store
        .create_website(
            &NewWebsite {
                name: "fan-out",
                url: &target,
                interval: Some(Duration::from_secs(3600)),
                timeout: None,
            }
            .parse(CheckDefaults::default())
            .unwrap(),
        )
        .await
        .unwrap();
    store
        .update_website(
            paused.id,
            &sitepulse::domain::WebsitePatch {
                paused: Some(true),
                ..Default::default()
            }
            .apply(&paused)
            .unwrap(),
        )
        .await
        .unwrap();
    drop(store);

    let (child, base) =
        service::spawn(&db, &[], &[("SITEPULSE_ADMIN_PASSWORD", ADMIN_PASSWORD)]).await;
    // Let every website get its first check.
    tokio::time::sleep(Duration::from_secs(12)).await;
    query_run(&base, seconds).await;
    fan_out(&base, &child, paused.id, subscriptions).await;
    service::stop(child);
}

fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn query_run(base: &str, seconds: u64) {
    let body = json!({ "query": QUERY }).to_string();
    let check = post_graphql(&reqwest::Client::new(), base, None, body.clone()).await;
    assert!(check.contains("\"lastCheck\":{"), "{check}");
    println!(
        "websites query: {} bytes per answer, 100 websites",
        check.len()
    );
    if Command::new("wrk").arg("--version").output().is_ok() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("post.lua");
        std::fs::write(
            &script,
            format!(
                "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.body = {body:?}\n"
            ),
        )
        .unwrap();
        let out = Command::new("wrk")
            .args([
                "-t",
                "2",
                "-c",
                "64",
                "-d",
                &format!("{seconds}s"),
                "--latency",
                "-s",
            ])
            .arg(&script)
            .arg(format!("{base}/graphql"))
            .output()
            .expect("run wrk");
        let text = String::from_utf8_lossy(&out.stdout);
        let rps = wrk_value(&text, "Requests/sec:");
        let p50 = wrk_value(&text, "50%");
        let p99 = wrk_value(&text, "99%");
        let errors = text
            .lines()
            .find(|l| l.contains("Non-2xx") || l.contains("Socket errors"));
        println!(
            "websites query (wrk, 64 connections, {seconds}s): {rps} requests/s, p50 {p50}, p99 {p99}{}",
            errors
                .map(|e| format!(", {}", e.trim()))
                .unwrap_or_default()
        );
        let rps: f64 = rps.parse().unwrap_or(0.0);
        let p99_ms = wrk_ms(&p99);
        println!(
            "goal: >= 5000 requests/s and p99 < 20 ms: {}",
            if rps >= 5000.0 && p99_ms < 20.0 {
                "met"
            } else {
                "MISSED"
            }
        );
    } else {
        println!("wrk not installed (apt-get install wrk): websites query throughput skipped");
    }
}

fn wrk_value(text: &str, label: &str) -> String {
    text.lines()
        .find(|l| l.trim_start().starts_with(label))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("?")
        .to_owned()
}

fn wrk_ms(value: &str) -> f64 {
    let (number, unit) = value.split_at(
        value
            .find(|c: char| c.is_ascii_alphabetic())
            .unwrap_or(value.len()),
    );
    let n: f64 = number.parse().unwrap_or(f64::MAX);
    match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        _ => f64::MAX,
    }
}

async fn fan_out(base: &str, child: &Child, website: i64, n: usize) {
    let rss_before = rss_kb(child.id());
    let started = Instant::now();
    // When each subscriber received each event, in nanoseconds since `started`.
    let received = Arc::new(std::sync::Mutex::new(Vec::<u64>::with_capacity(n * 20)));
    let acked = Arc::new(AtomicU64::new(0));
    let addr: std::net::SocketAddr = base.trim_start_matches("http://").parse().unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let received = received.clone();
        let acked = acked.clone();
        let query = format!(
            "subscription {{ checkCompleted(websiteId: \"{website}\") {{ responseTimeMs }} }}"
        );
        tasks.spawn(common::lean_ws::subscribe(
            addr,
            i,
            query,
            acked,
            move |events| {
                let now = started.elapsed().as_nanos() as u64;
                received
                    .lock()
                    .unwrap()
                    .extend(std::iter::repeat_n(now, events));
            },
        ));
        // Open connections at a steady pace rather than all in the same instant.
        if i % 200 == 199 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    common::eventually(120, "every subscriber to be connected", || {
        let acked = acked.clone();
        async move { (acked.load(Ordering::Relaxed) as usize >= n).then_some(()) }
    })
    .await;
    // Subscriptions are set up right after the ack; give them a moment.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_idle = rss_kb(child.id());
    let per_subscription = (rss_idle.saturating_sub(rss_before)) as f64 / n as f64;

    let client = reqwest::Client::new();
    let token = login(&client, base).await;
    let rounds = 20;
    // (sent, answered) of each checkNow, in nanoseconds since `started`.
    let mut marks = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let expected = received.lock().unwrap().len() + n;
        let sent = started.elapsed().as_nanos() as u64;
        let check_now =
            json!({ "query": format!("mutation {{ checkNow(id: \"{website}\") {{ up }} }}") });
        let answer = post_graphql(&client, base, Some(&token), check_now.to_string()).await;
        let answered = started.elapsed().as_nanos() as u64;
        assert!(answer.contains("\"up\":true"), "{answer}");
        marks.push((sent, answered));
        let deadline = Instant::now() + Duration::from_secs(10);
        while received.lock().unwrap().len() < expected && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut times = received.lock().unwrap().clone();
    times.sort_unstable();
    let delivered = times.len();
    // Each event belongs to the last checkNow sent before it arrived.
    let (mut from_write, mut from_request) = (Vec::new(), Vec::new());
    for t in &times {
        if let Some((sent, answered)) = marks.iter().rev().find(|(sent, _)| sent <= t) {
            from_request.push((t - sent) as f64 / 1e6);
            from_write.push(t.saturating_sub(*answered) as f64 / 1e6);
        }
    }
    from_write.sort_by(f64::total_cmp);
    from_request.sort_by(f64::total_cmp);
    let p99 = percentile(&from_write, 0.99);
    println!(
        "fan-out: {n} subscriptions, {rounds} checks, {delivered} of {} events delivered",
        n * rounds
    );
    println!(
        "  latency from the write: p50 {:.1} ms p99 {p99:.1} ms max {:.1} ms",
        percentile(&from_write, 0.5),
        percentile(&from_write, 1.0)
    );
    println!(
        "  latency from sending checkNow: p50 {:.1} ms p99 {:.1} ms max {:.1} ms",
        percentile(&from_request, 0.5),
        percentile(&from_request, 0.99),
        percentile(&from_request, 1.0)
    );
    println!(
        "memory: {:.1} MB before, {:.1} MB with {n} idle subscriptions: {per_subscription:.1} KB per subscription",
        rss_before as f64 / 1024.0,
        rss_idle as f64 / 1024.0
    );
    println!(
        "goal: p99 < 250 ms and < 20 KB per subscription: {}",
        if p99 < 250.0 && per_subscription < 20.0 && delivered == n * rounds {
            "met"
        } else {
            "MISSED"
        }
    );
    tasks.abort_all();
}

/// Posts a GraphQL request; the answer's text.
async fn post_graphql(
    client: &reqwest::Client,
    base: &str,
    token: Option<&str>,
    body: String,
) -> String {
    let mut request = client
        .post(format!("{base}/graphql"))
        .header("content-type", "application/json")
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap().text().await.unwrap()
}

async fn login(client: &reqwest::Client, base: &str) -> String {
    let body = json!({ "query": format!("mutation {{ login(username: \"admin\", password: \"{ADMIN_PASSWORD}\") {{ token }} }}") });
    let answer: serde_json::Value =
        serde_json::from_str(&post_graphql(client, base, None, body.to_string()).await).unwrap();
    answer["data"]["login"]["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse().ok())
        .unwrap_or(0)
}

async fn start_target() -> String {
    let app = Router::new().route("/", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/")
}
