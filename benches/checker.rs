//! Checker throughput and schedule lateness, measured on the real binary.
//!
//! For each database and each size N, N websites with a 60 s interval point at a
//! local target server; `sitepulse serve` runs as a child process for a warm-up and
//! then a measured window of `BENCH_SECONDS` (default 60, so every website is due
//! exactly once). Printed per run: sustained checks/s, lateness (how long after its
//! slot each check started: p50, p99, max), checks missing from the window, CPU
//! seconds per 1,000 checks and in percent of one core, and peak RSS of the service.
//!
//! Then the checker is saturated (websites every second, far more than it can do)
//! and its checks/s are compared with `wrk` opening a new connection per request
//! against the same target, in alternating rounds (`BENCH_ROUNDS`, default 3).
//!
//! `BENCH_SIZES=1000,10000,50000` and `BENCH_DATABASES=sqlite,postgres` choose the runs.

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use chrono::Utc;
use common::TestDb;

fn env_list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

#[tokio::main]
async fn main() {
    sitepulse::install_crypto_provider();
    let sizes: Vec<usize> = env_list("BENCH_SIZES", "1000,10000,50000")
        .iter()
        .map(|s| s.parse().expect("BENCH_SIZES holds numbers"))
        .collect();
    let databases = env_list("BENCH_DATABASES", "sqlite,postgres");
    let window: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let (target, hits) = start_target().await;
    println!("checker bench: target {target}, measured window {window}s after a 10s warm-up");
    for db in &databases {
        for &n in &sizes {
            let test_db = match db.as_str() {
                "sqlite" => TestDb::sqlite(),
                "postgres" => TestDb::postgres().await,
                other => panic!("unknown database {other:?}"),
            };
            scheduled_run(db, &test_db, n, &target, window).await;
        }
    }
    saturation(&target, &hits).await;
}

/// A minimal web server answering 200 to everything, counting requests.
async fn start_target() -> (String, Arc<AtomicU64>) {
    let hits = Arc::new(AtomicU64::new(0));
    let counter = hits.clone();
    let app = Router::new().route(
        "/",
        get(move || {
            counter.fetch_add(1, Ordering::Relaxed);
            async { "ok" }
        }),
    );
    // A saturated checker opens up to `--check-concurrency` connections at once; with
    // tokio's default backlog of 1,024 the kernel would drop SYNs beyond it and the
    // checker would wait a second for each retransmission, measuring the target.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(8192).unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/"), hits)
}

fn spawn_service(db: &TestDb, extra: &[&str]) -> Child {
    let port = common::pg::free_port();
    Command::new(env!("CARGO_BIN_EXE_sitepulse"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--database-url", &db.url_string()])
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start sitepulse")
}

/// Peak resident set size in MB.
fn peak_rss_mb(pid: u32) -> f64 {
    common::proc_memory_mb(pid, "VmHWM")
}

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn scheduled_run(db_name: &str, db: &TestDb, n: usize, target: &str, window: u64) {
    db.store().await; // migrate
    common::bulk::create_websites(&db.url, n, target, 60_000, 10_000).await;
    let child = spawn_service(db, &[]);
    let pid = child.id();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let from = Utc::now();
    let cpu_before = common::proc_cpu_seconds(pid);
    tokio::time::sleep(Duration::from_secs(window)).await;
    let to = Utc::now();
    let cpu = common::proc_cpu_seconds(pid) - cpu_before;
    let rss = peak_rss_mb(pid);
    stop(child);

    let (mut late, down) = common::bulk::delays(&db.url, from, to).await;
    late.sort_unstable();
    let checks = late.len() as f64;
    let expected = n as f64 * (to - from).num_milliseconds() as f64 / 60_000.0;
    let p99 = percentile(&late, 0.99);
    let max = late.last().copied().unwrap_or(0);
    println!(
        "[{db_name} N={n}] {:.1} checks/s ({} checks, ~{:.0} due, {down} down); lateness p50 {} ms, \
         p99 {p99} ms, max {max} ms; CPU {:.3} s per 1,000 checks, {:.1} % of one core; peak RSS {:.1} MB",
        checks / (to - from).num_milliseconds() as f64 * 1000.0,
        late.len(),
        expected,
        percentile(&late, 0.5),
        cpu / (checks / 1000.0).max(1e-9),
        cpu / (to - from).num_milliseconds() as f64 * 1000.0 * 100.0,
        rss,
    );
    if n == 10_000 {
        let core = cpu / (to - from).num_milliseconds() as f64 * 1000.0 * 100.0;
        println!(
            "[{db_name} N={n}] goal p99 < 1000 ms, < 15 % of a core, < 150 MB: {}",
            if p99 < 1000 && core < 15.0 && rss < 150.0 {
                "met"
            } else {
                "MISSED"
            }
        );
    }
    if n == 50_000 {
        println!(
            "[{db_name} N={n}] goal every check inside its minute (max lateness < 60 s, none missing): {}",
            if max < 60_000 && checks >= expected * 0.99 {
                "met"
            } else {
                "MISSED"
            }
        );
    }
}

/// The checker flat out versus wrk with a new connection per request, in
/// alternating rounds (`BENCH_ROUNDS`, default 3) so that both meet the same
/// moods of a shared machine; the ratio is taken of the medians.
async fn saturation(target: &str, hits: &AtomicU64) {
    let db = TestDb::sqlite();
    db.store().await;
    // Far more than two cores can check: the checker runs flat out.
    let n = 30_000;
    common::bulk::create_websites(&db.url, n, target, 1000, 900).await;
    let concurrency = std::env::var("BENCH_CONCURRENCY").unwrap_or_else(|_| "1024".into());
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let (mut checker, mut generator) = (Vec::new(), Vec::new());
    for round in 1..=rounds.max(1) {
        let child = spawn_service(&db, &["--check-concurrency", &concurrency]);
        tokio::time::sleep(Duration::from_secs(5)).await;
        let before = hits.load(Ordering::Relaxed);
        let overflows_before = listen_overflows();
        let start = Instant::now();
        tokio::time::sleep(Duration::from_secs(15)).await;
        let rate = (hits.load(Ordering::Relaxed) - before) as f64 / start.elapsed().as_secs_f64();
        let overflows = listen_overflows() - overflows_before;
        stop(child);
        println!(
            "[saturated] round {round}: checker {rate:.0} checks/s with {n} websites due every \
             second, at most {concurrency} at once; {overflows} connections dropped by a full \
             listen queue"
        );
        checker.push(rate);
        let Some(rate) = wrk_rate(target) else {
            println!("[saturated] wrk is not installed (apt-get install wrk): no ratio");
            return;
        };
        println!(
            "[saturated] round {round}: wrk, new connection per request: {rate:.0} requests/s"
        );
        generator.push(rate);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (checker, generator) = (median(&mut checker), median(&mut generator));
    let ratio = checker / generator;
    println!(
        "[saturated] medians: checker {checker:.0} checks/s, wrk {generator:.0} requests/s; \
         ratio {ratio:.2} (goal >= 0.5: {})",
        if ratio >= 0.5 { "met" } else { "MISSED" }
    );
}

/// Requests per second `wrk` reaches in 15 s with a new connection per request.
fn wrk_rate(target: &str) -> Option<f64> {
    let out = Command::new("wrk")
        .args(["-t", "2", "-c", "64", "-d", "15s"])
        .args(["-H", "Connection: close", target])
        .output()
        .ok()
        .filter(|out| out.status.success())?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with("Requests/sec:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// The kernel's count of connections dropped because a listen queue was full.
fn listen_overflows() -> u64 {
    let text = std::fs::read_to_string("/proc/net/netstat").unwrap_or_default();
    let mut lines = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(name, _)| *name == "ListenOverflows")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0)
}
