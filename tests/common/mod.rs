//! Real parts for the tests: a temporary PostgreSQL cluster, SQLite files, and
//! HTTP targets on 127.0.0.1.
#![allow(dead_code, unused_macros)]

/// Generates one test per backend (SQLite file, temporary PostgreSQL) for every suite function named.
macro_rules! both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::TestDb::sqlite()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::TestDb::postgres().await).await;
                }
            )*
        }
    };
}

pub mod app;
pub mod bulk;
pub mod cluster;
pub mod ha;
pub mod lean_ws;
pub mod pg;
pub mod service;
pub mod targets;

use std::sync::atomic::{AtomicU32, Ordering};

use chrono_tz::Tz;
use sitepulse::store::{self, DatabaseUrl, DynStore, StoreOptions};

/// A fresh, empty database of one kind.
pub struct TestDb {
    pub url: DatabaseUrl,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("sitepulse.db");
        Self {
            url: DatabaseUrl::Sqlite(path.to_string_lossy().into_owned()),
            _dir: Some(dir),
        }
    }

    pub async fn postgres() -> Self {
        Self {
            url: DatabaseUrl::Postgres(pg::fresh_database().await),
            _dir: None,
        }
    }

    /// An existing PostgreSQL database.
    pub fn postgres_at(url: String) -> Self {
        Self {
            url: DatabaseUrl::Postgres(url),
            _dir: None,
        }
    }

    /// "sqlite" or "postgres".
    pub fn backend(&self) -> &'static str {
        match &self.url {
            DatabaseUrl::Sqlite(_) => "sqlite",
            DatabaseUrl::Postgres(_) => "postgres",
        }
    }

    pub fn url_string(&self) -> String {
        match &self.url {
            DatabaseUrl::Sqlite(s) | DatabaseUrl::Postgres(s) => s.clone(),
        }
    }

    /// Connects and migrates, with daily history in UTC.
    pub async fn store(&self) -> DynStore {
        self.store_in(Tz::UTC).await
    }

    pub async fn store_in(&self, timezone: Tz) -> DynStore {
        sitepulse::install_crypto_provider();
        let options = StoreOptions {
            timezone,
            ..StoreOptions::default()
        };
        let store = store::connect(&self.url, options).await.expect("connect");
        store.migrate().await.expect("migrate");
        store
    }
}

/// A memory figure of a process from /proc/PID/status in MB: `VmRSS` (now) or
/// `VmHWM` (peak); 0 when it cannot be read.
pub fn proc_memory_mb(pid: u32, key: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| {
            l.strip_prefix(key)
                .is_some_and(|rest| rest.starts_with(':'))
        })
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// CPU seconds (user + system) the process has used so far.
pub fn proc_cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + fields
            .get(12)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
    ticks / clock_ticks()
}

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// The soft limit on open files of this process.
pub fn open_file_limit() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024)
}

/// A unique small number for names within one test process.
pub fn unique() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Waits until the service at `base` (`http://host:port`) answers `/healthz`.
pub async fn wait_healthy(base: &str) {
    sitepulse::install_crypto_provider();
    let url = format!("{base}/healthz");
    eventually(30, "the service to answer /healthz", || {
        let url = url.clone();
        async move {
            reqwest::get(url)
                .await
                .ok()?
                .status()
                .is_success()
                .then_some(())
        }
    })
    .await;
}

/// How the tests start headless Chromium: no sandbox (they run as root in CI), no
/// network of its own, nothing from a previous run.
pub const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
];

/// Polls `f` every 50 ms until it returns `Some`, for at most `secs` seconds.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {secs}s waiting for {what}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
