//! Sign-in throughput, and whether pages stay fast while the sign-in form is
//! hammered, measured on the real binary (SQLite).
//!
//! 1. Baseline: p50/p99 of `/healthz` and of the websites page (`/`, 100 websites)
//!    on an idle service.
//! 2. Logins per second: 50 parallel clients signing in with the right password.
//! 3. Storm: 50 parallel clients posting wrong passwords as fast as they get
//!    answers, with the sign-in limit lifted so that every attempt costs a full
//!    argon2id verification; meanwhile one client measures `/healthz` and `/`.
//!    Goal: the page's p99 stays under 50 ms.
//! 4. The same storm with the default limit (10 a minute): how much of it is
//!    turned away before hashing.
//!
//! `BENCH_SECONDS` (default 15) sets the length of phases 2–4.

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::app::form_body;
use common::{TestDb, service};
use sitepulse::domain::{CheckDefaults, NewWebsite};

const ADMIN_PASSWORD: &str = "bench-admin-password";
const CLIENTS: usize = 50;
const ADMIN_ENV: &[(&str, &str)] = &[("SITEPULSE_ADMIN_PASSWORD", ADMIN_PASSWORD)];

#[tokio::main]
async fn main() {
    sitepulse::install_crypto_provider();
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    let window = Duration::from_secs(seconds);
    let db = TestDb::sqlite();
    let store = db.store().await;
    for i in 0..100 {
        let spec = NewWebsite {
            name: &format!("website {i:03}"),
            url: "http://127.0.0.1:9/",
            ..Default::default()
        }
        .parse(CheckDefaults::default())
        .unwrap();
        store.create_website(&spec).await.unwrap();
    }
    drop(store);

    let (child, base) = service::spawn(&db, &["--login-rate-limit", "1000000"], ADMIN_ENV).await;
    let client = reqwest::Client::new();
    println!("login bench: {CLIENTS} clients, {seconds}s per phase, hashing concurrency = default");

    let idle = probe(&client, &base, Duration::from_secs(5), None).await;
    idle.print("idle");

    let (ok, elapsed) = storm(&base, ADMIN_PASSWORD, window).await;
    println!(
        "logins: {:.1} successful sign-ins/s ({ok} in {:.1}s)",
        ok.ok as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );

    let stop = Arc::new(AtomicBool::new(false));
    let prober = {
        let client = client.clone();
        let base = base.clone();
        let stop = stop.clone();
        tokio::spawn(
            async move { probe(&client, &base, Duration::from_secs(3600), Some(stop)).await },
        )
    };
    let (counts, elapsed) = storm(&base, "wrong-password-guess", window).await;
    stop.store(true, Ordering::Relaxed);
    let during = prober.await.unwrap();
    println!(
        "storm without limit: {:.1} wrong attempts/s verified ({counts})",
        counts.rejected as f64 / elapsed.as_secs_f64()
    );
    during.print("during storm");
    println!(
        "goal: page p99 under 50 ms during the storm: {}",
        if during.page_p99() < 50.0 {
            "met"
        } else {
            "MISSED"
        }
    );
    service::stop(child);

    let (child, base) = service::spawn(&db, &[], ADMIN_ENV).await;
    let (counts, elapsed) = storm(&base, "wrong-password-guess", window).await;
    println!(
        "storm with the default limit: {:.0} attempts/s answered, {counts}",
        counts.total() as f64 / elapsed.as_secs_f64()
    );
    service::stop(child);
}

#[derive(Default, Clone, Copy)]
struct Counts {
    ok: u64,
    rejected: u64,
    limited: u64,
    other: u64,
}

impl Counts {
    fn total(&self) -> u64 {
        self.ok + self.rejected + self.limited + self.other
    }
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} signed in, {} rejected (401), {} limited (429), {} other",
            self.ok, self.rejected, self.limited, self.other
        )
    }
}

/// `CLIENTS` clients posting the sign-in form back to back for `window`.
async fn storm(base: &str, password: &str, window: Duration) -> (Counts, Duration) {
    let ok = Arc::new(AtomicU64::new(0));
    let rejected = Arc::new(AtomicU64::new(0));
    let limited = Arc::new(AtomicU64::new(0));
    let other = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + window;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CLIENTS {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let url = format!("{base}/login");
        let body = form_body(&[("username", "admin"), ("password", password)]);
        let counters = [ok.clone(), rejected.clone(), limited.clone(), other.clone()];
        tasks.spawn(async move {
            while Instant::now() < deadline {
                let status = client
                    .post(&url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body.clone())
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0);
                let slot = match status {
                    303 => 0,
                    401 => 1,
                    429 => 2,
                    _ => 3,
                };
                counters[slot].fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    tasks.join_all().await;
    let counts = Counts {
        ok: ok.load(Ordering::Relaxed),
        rejected: rejected.load(Ordering::Relaxed),
        limited: limited.load(Ordering::Relaxed),
        other: other.load(Ordering::Relaxed),
    };
    (counts, started.elapsed())
}

struct Latencies {
    healthz: Vec<f64>,
    page: Vec<f64>,
}

impl Latencies {
    fn page_p99(&self) -> f64 {
        percentile(&self.page, 0.99)
    }

    fn print(&self, label: &str) {
        println!(
            "{label}: /healthz p50 {:.1} ms p99 {:.1} ms | page / p50 {:.1} ms p99 {:.1} ms max {:.1} ms ({} requests each)",
            percentile(&self.healthz, 0.5),
            percentile(&self.healthz, 0.99),
            percentile(&self.page, 0.5),
            percentile(&self.page, 0.99),
            percentile(&self.page, 1.0),
            self.page.len()
        );
    }
}

/// One request to `/healthz` and one to `/` every 20 ms, each timed.
async fn probe(
    client: &reqwest::Client,
    base: &str,
    duration: Duration,
    stop: Option<Arc<AtomicBool>>,
) -> Latencies {
    let mut out = Latencies {
        healthz: Vec::new(),
        page: Vec::new(),
    };
    let deadline = Instant::now() + duration;
    while Instant::now() < deadline && !stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed)) {
        for (path, sink) in [("/healthz", &mut out.healthz), ("/", &mut out.page)] {
            let started = Instant::now();
            let response = client.get(format!("{base}{path}")).send().await;
            if let Ok(response) = response {
                let _ = response.bytes().await;
            }
            sink.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    out.healthz.sort_by(f64::total_cmp);
    out.page.sort_by(f64::total_cmp);
    out
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}
