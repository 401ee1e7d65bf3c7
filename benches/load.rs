//! Mixed load while 10,000 websites are checked, measured on the real binary.
//!
//! `BENCH_WEBSITES` (default 10,000) websites with a 60 s interval point at a local
//! target. After a warm-up, `BENCH_SUBSCRIPTIONS` (default 1,000) WebSocket
//! subscribers each follow `checkCompleted` of their own website, and for
//! `BENCH_SECONDS` (default 60) an open-loop client sends, at fixed rates:
//!
//! - pages (`BENCH_PAGE_RATE`, default 50/s): website pages, their htmx fragments,
//!   filtered lists; the whole list of every website once every 2 s;
//! - GraphQL queries (`BENCH_QUERY_RATE`, default 500/s): one website with its
//!   30-day history and uptime, and pages of 50 websites with their status;
//! - GraphQL mutations (2/s, signed in): renaming a paused website.
//!
//! Latency is measured from when a request was due, not when it was sent, so a
//! service that falls behind shows it. Printed: per kind the requests, errors
//! (transport errors, non-2xx answers, GraphQL errors) and latency p50/p99/max;
//! the checks stored against those due and their lateness; events per subscriber;
//! the service's CPU and peak RSS. Goal: zero errors, every kind of request
//! answered with p99 under 1 s, no check missing, lateness p99 under 1 s, every
//! subscriber receives its website's checks.
//!
//! The default rates are a fraction of what the single-purpose benchmarks reached
//! on their own (`graphql`: over 5,000 queries/s; `pages`: lists in under 30 ms),
//! because here the checker, the target, the database and the load generator share
//! the same cores. `BENCH_DATABASES=sqlite,postgres` chooses the runs.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use chrono::Utc;
use common::{TestDb, service};
use serde_json::json;
use tokio::sync::Semaphore;
use tokio::time::Instant;

const ADMIN_PASSWORD: &str = "bench-admin-password";
/// Requests of one kind that may wait for an answer at once; beyond that the
/// client counts the request as failed instead of queueing without bound.
const IN_FLIGHT: usize = 512;

type Request = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    sitepulse::install_crypto_provider();
    let websites: usize = env_number("BENCH_WEBSITES", 10_000);
    let seconds: u64 = env_number("BENCH_SECONDS", 60);
    let page_rate: f64 = env_number("BENCH_PAGE_RATE", 50.0);
    let query_rate: f64 = env_number("BENCH_QUERY_RATE", 500.0);
    let mut subscriptions: usize = env_number("BENCH_SUBSCRIPTIONS", 1_000);
    subscriptions = subscriptions.min(websites);
    let files = common::open_file_limit();
    if files < subscriptions + 1_000 {
        subscriptions = files.saturating_sub(1_000);
        println!(
            "open-file limit {files}: {subscriptions} subscriptions (raise it with ulimit -n)"
        );
    }
    let databases = std::env::var("BENCH_DATABASES").unwrap_or_else(|_| "sqlite,postgres".into());
    let target = start_target().await;
    println!(
        "load bench: {websites} websites every 60 s, {subscriptions} subscriptions, \
         {page_rate}/s pages + 0.5/s whole list, {query_rate}/s GraphQL queries, 2/s mutations, {seconds} s"
    );
    for name in databases
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let db = match name {
            "sqlite" => TestDb::sqlite(),
            "postgres" => TestDb::postgres().await,
            other => panic!("unknown database {other:?}"),
        };
        let plan = Plan {
            websites,
            seconds,
            page_rate,
            query_rate,
            subscriptions,
        };
        run(name, &db, &target, &plan).await;
    }
}

struct Plan {
    websites: usize,
    seconds: u64,
    page_rate: f64,
    query_rate: f64,
    subscriptions: usize,
}

async fn run(name: &str, db: &TestDb, target: &str, plan: &Plan) {
    db.store().await; // migrate
    common::bulk::create_websites(&db.url, plan.websites, target, 60_000, 10_000).await;
    let ids = website_ids(db).await;
    assert_eq!(ids.len(), plan.websites);
    let (child, base) =
        service::spawn(db, &[], &[("SITEPULSE_ADMIN_PASSWORD", ADMIN_PASSWORD)]).await;
    let pid = child.id();
    let client = reqwest::Client::new();
    let token = login(&client, &base).await;
    let renamed = create_paused(&client, &base, &token, target).await;

    // Every website's first check, then the subscribers.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let addr: std::net::SocketAddr = base.trim_start_matches("http://").parse().unwrap();
    let acked = Arc::new(AtomicU64::new(0));
    let closed = Arc::new(AtomicU64::new(0));
    let counts: Arc<Vec<AtomicU64>> =
        Arc::new((0..plan.subscriptions).map(|_| AtomicU64::new(0)).collect());
    let mut subscribers = tokio::task::JoinSet::new();
    for (i, id) in ids.iter().take(plan.subscriptions).enumerate() {
        let query = format!("subscription {{ checkCompleted(websiteId: \"{id}\") {{ up }} }}");
        let (acked, closed, counts) = (acked.clone(), closed.clone(), counts.clone());
        subscribers.spawn(async move {
            common::lean_ws::subscribe(addr, i, query, acked, |events| {
                counts[i].fetch_add(events as u64, Ordering::Relaxed);
            })
            .await;
            closed.fetch_add(1, Ordering::Relaxed);
        });
        if i % 100 == 99 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    common::eventually(60, "every subscriber to be connected", || {
        let acked = acked.clone();
        let n = plan.subscriptions as u64;
        async move { (acked.load(Ordering::Relaxed) >= n).then_some(()) }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    for count in counts.iter() {
        count.store(0, Ordering::Relaxed);
    }

    let from = Utc::now();
    let cpu_before = common::proc_cpu_seconds(pid);
    let window = Duration::from_secs(plan.seconds);
    let ids = Arc::new(ids);
    let pages = {
        let (client, base, ids) = (client.clone(), base.clone(), ids.clone());
        drive(plan.page_rate, window, move |i| {
            let url = match i % 4 {
                0 => format!("{base}/websites/{}", ids[pick(i, ids.len())]),
                1 => format!("{base}/websites/{}", ids[pick(i, ids.len())]),
                2 => format!("{base}/?q=site+{}", i % 97 + 1),
                _ => format!("{base}/?status=up&q=site+{}", i % 89 + 1),
            };
            let htmx = i % 4 == 1;
            let client = client.clone();
            Box::pin(async move { get_ok(&client, &url, htmx).await })
        })
    };
    let whole_list = {
        let (client, base) = (client.clone(), base.clone());
        drive(0.5, window, move |_| {
            let (client, url) = (client.clone(), format!("{base}/"));
            Box::pin(async move { get_ok(&client, &url, false).await })
        })
    };
    let one_website = {
        let (client, base, ids) = (client.clone(), base.clone(), ids.clone());
        drive(plan.query_rate / 2.0, window, move |i| {
            let body = json!({
                "query": "query($id: ID!) { website(id: $id) { name status lastCheck { up responseTimeMs } \
                          history { date availability avgResponseTimeMs checks } \
                          uptime { last24h last7d last30d } } }",
                "variables": { "id": ids[pick(i, ids.len())].to_string() },
            });
            let (client, base) = (client.clone(), base.clone());
            Box::pin(async move { graphql_ok(&client, &base, None, body).await })
        })
    };
    let website_pages = {
        let (client, base, ids) = (client.clone(), base.clone(), ids.clone());
        drive(plan.query_rate / 2.0, window, move |i| {
            let after = ids[pick(i, ids.len())].to_string();
            let body = json!({
                "query": "query($after: ID) { websites(first: 50, after: $after) { id name status lastCheck { responseTimeMs } } }",
                "variables": { "after": after },
            });
            let (client, base) = (client.clone(), base.clone());
            Box::pin(async move { graphql_ok(&client, &base, None, body).await })
        })
    };
    let mutations = {
        let (client, base, token) = (client.clone(), base.clone(), token.clone());
        drive(2.0, window, move |i| {
            let body = json!({
                "query": "mutation($id: ID!, $name: String!) { updateWebsite(id: $id, input: { name: $name }) { name } }",
                "variables": { "id": renamed.to_string(), "name": format!("renamed {i}") },
            });
            let (client, base, token) = (client.clone(), base.clone(), token.clone());
            Box::pin(async move { graphql_ok(&client, &base, Some(&token), body).await })
        })
    };
    let (pages, whole_list, one_website, website_pages, mutations) =
        tokio::join!(pages, whole_list, one_website, website_pages, mutations);
    let to = Utc::now();
    let cpu = common::proc_cpu_seconds(pid) - cpu_before;
    let rss = common::proc_memory_mb(pid, "VmHWM");
    // The last slots of the window: their checks are stored and announced shortly
    // after, so every subscriber has had a whole interval of its website's checks.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let events: Vec<u64> = counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    let dropped = closed.load(Ordering::Relaxed);
    subscribers.abort_all();
    service::stop(child);

    let elapsed = (to - from).num_milliseconds() as f64 / 1000.0;
    println!(
        "[{name}] {} websites, {elapsed:.1} s of mixed load",
        plan.websites
    );
    let mut errors = 0;
    let mut slowest_p99 = 0.0f64;
    for (kind, stats) in [
        ("pages", &pages),
        ("whole list", &whole_list),
        ("GraphQL one website with history", &one_website),
        ("GraphQL pages of 50 websites", &website_pages),
        ("GraphQL mutations", &mutations),
    ] {
        let (kind_errors, p99) = stats.print(name, kind, elapsed);
        errors += kind_errors;
        slowest_p99 = slowest_p99.max(p99);
    }

    let (mut late, down) = common::bulk::delays(&db.url, from, to).await;
    late.sort_unstable();
    let due = plan.websites as f64 * elapsed / 60.0;
    let p99 = percentile(&late, 0.99);
    println!(
        "[{name}] checks: {} stored of ~{due:.0} due ({down} down); lateness p50 {} ms, p99 {p99} ms, max {} ms",
        late.len(),
        percentile(&late, 0.5),
        late.last().copied().unwrap_or(0)
    );
    let every = (plan.seconds / 60).max(1);
    let starved = events.iter().filter(|&&e| e < every).count();
    let total: u64 = events.iter().sum();
    println!(
        "[{name}] subscriptions: {} connected, {dropped} closed during the run; {total} events, \
         {starved} subscribers with fewer than {every}",
        plan.subscriptions
    );
    println!(
        "[{name}] service: {:.1} % of one core, peak RSS {rss:.1} MB",
        cpu / elapsed * 100.0
    );
    let met = errors == 0
        && slowest_p99 < 1_000.0
        && late.len() as f64 >= due * 0.99
        && p99 < 1_000
        && dropped == 0
        && (plan.seconds < 60 || starved == 0);
    println!(
        "[{name}] goal zero errors, every kind of request answered with p99 < 1 s, no check missing, \
         lateness p99 < 1 s, every subscriber served: {}",
        if met { "met" } else { "MISSED" }
    );
}

/// Spreads indexes over the websites so consecutive requests read different ones.
fn pick(i: u64, len: usize) -> usize {
    (i.wrapping_mul(7919) % len as u64) as usize
}

#[derive(Default)]
struct Stats {
    latencies_ms: Mutex<Vec<f64>>,
    errors: AtomicU64,
    errors_by_kind: Mutex<HashMap<String, u64>>,
}

impl Stats {
    fn record(&self, due: Instant, result: Result<(), String>) {
        let ms = due.elapsed().as_secs_f64() * 1000.0;
        self.latencies_ms.lock().unwrap().push(ms);
        if let Err(e) = result {
            self.errors.fetch_add(1, Ordering::Relaxed);
            *self.errors_by_kind.lock().unwrap().entry(e).or_default() += 1;
        }
    }

    /// Prints one line; the number of errors and the p99 latency in ms.
    fn print(&self, db: &str, kind: &str, elapsed: f64) -> (u64, f64) {
        let mut l = self.latencies_ms.lock().unwrap().clone();
        l.sort_by(f64::total_cmp);
        let errors = self.errors.load(Ordering::Relaxed);
        println!(
            "[{db}] {kind}: {} requests ({:.1}/s), {errors} errors; latency from due p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            l.len(),
            l.len() as f64 / elapsed,
            percentile_f(&l, 0.5),
            percentile_f(&l, 0.99),
            percentile_f(&l, 1.0),
        );
        let mut kinds: Vec<_> = self
            .errors_by_kind
            .lock()
            .unwrap()
            .clone()
            .into_iter()
            .collect();
        kinds.sort_by_key(|k| std::cmp::Reverse(k.1));
        for (error, n) in kinds.iter().take(5) {
            println!("[{db}]   {n} × {error}");
        }
        (errors, percentile_f(&l, 0.99))
    }
}

/// Sends `make(i)` at `rate` per second for `window`, each request due at its
/// own instant whatever happened to the ones before (an open loop), and waits
/// for the last answer.
async fn drive(rate: f64, window: Duration, make: impl Fn(u64) -> Request) -> Stats {
    let stats = Arc::new(Stats::default());
    let in_flight = Arc::new(Semaphore::new(IN_FLIGHT));
    let start = Instant::now();
    let total = (rate * window.as_secs_f64()).round() as u64;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..total {
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(due).await;
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            stats.record(
                due,
                Err(format!("more than {IN_FLIGHT} waiting for an answer")),
            );
            continue;
        };
        let (stats, request) = (stats.clone(), make(i));
        tasks.spawn(async move {
            let result = tokio::time::timeout(Duration::from_secs(10), request)
                .await
                .unwrap_or_else(|_| Err("no answer within 10 s".into()));
            stats.record(due, result);
            drop(permit);
        });
        // Reap finished tasks as we go so the set stays small.
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    Arc::try_unwrap(stats).unwrap_or_else(|_| unreachable!("every request has finished"))
}

async fn get_ok(client: &reqwest::Client, url: &str, htmx: bool) -> Result<(), String> {
    let mut request = client.get(url);
    if htmx {
        request = request.header("HX-Request", "true");
    }
    let response = request.send().await.map_err(|e| format!("GET: {e}"))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("GET body: {e}"))?;
    if !status.is_success() || body.is_empty() {
        return Err(format!("GET answered {status}"));
    }
    Ok(())
}

async fn graphql_ok(
    client: &reqwest::Client,
    base: &str,
    token: Option<&str>,
    body: serde_json::Value,
) -> Result<(), String> {
    let mut request = client
        .post(format!("{base}/graphql"))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.map_err(|e| format!("POST: {e}"))?;
    let status = response.status();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| format!("POST body: {e}"))?;
    let answer: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| format!("POST body is not JSON: {e}"))?;
    if !status.is_success() {
        return Err(format!("POST answered {status}"));
    }
    if let Some(errors) = answer.get("errors") {
        return Err(format!("GraphQL errors: {errors}"));
    }
    if answer["data"].is_null() {
        return Err("GraphQL answer without data".into());
    }
    Ok(())
}

async fn login(client: &reqwest::Client, base: &str) -> String {
    let body = json!({
        "query": "mutation($p: String!) { login(username: \"admin\", password: $p) { token } }",
        "variables": { "p": ADMIN_PASSWORD },
    });
    let answer = client
        .post(format!("{base}/graphql"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let answer: serde_json::Value = serde_json::from_slice(&answer).unwrap();
    answer["data"]["login"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("login failed: {answer}"))
        .to_owned()
}

/// A paused website the mutations rename, so they do not disturb the checks.
async fn create_paused(client: &reqwest::Client, base: &str, token: &str, url: &str) -> i64 {
    let body = json!({
        "query": "mutation($url: String!) { createWebsite(input: { name: \"renamed\", url: $url }) { id } }",
        "variables": { "url": url },
    });
    let answer = client
        .post(format!("{base}/graphql"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let answer: serde_json::Value = serde_json::from_slice(&answer).unwrap();
    let id = answer["data"]["createWebsite"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("createWebsite failed: {answer}"))
        .to_owned();
    let pause = json!({
        "query": "mutation($id: ID!) { updateWebsite(id: $id, input: { paused: true }) { paused } }",
        "variables": { "id": id },
    });
    graphql_ok(client, base, Some(token), pause)
        .await
        .expect("pause the renamed website");
    id.parse().expect("numeric website id")
}

async fn website_ids(db: &TestDb) -> Vec<i64> {
    let store = db.store().await;
    let mut ids: Vec<i64> = store
        .websites()
        .await
        .expect("list websites")
        .iter()
        .map(|w| w.id)
        .collect();
    ids.sort_unstable();
    ids
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn percentile_f(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn start_target() -> String {
    let app = Router::new().route("/", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/")
}
