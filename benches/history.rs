//! History and list latency with a month of minute checks loaded, and storage per
//! website-month, on SQLite and PostgreSQL.
//!
//! Loads `BENCH_WEBSITES` (default 1,000) websites × 30 days × 1,440 checks (43.2
//! million rows at the default) through SQL, builds the aggregates from them, then
//! times the reads pages and the API make, through the same store interface.
//!
//! `BENCH_DATABASES=sqlite,postgres` chooses the databases.

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use chrono_tz::Tz;
use sitepulse::store::{DynStore, PostgresStore, SqliteStore, Store, StoreOptions};

const DAYS: i64 = 30;
const PER_DAY: i64 = 1440;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    sitepulse::install_crypto_provider();
    let websites = env_usize("BENCH_WEBSITES", 1000);
    let databases = std::env::var("BENCH_DATABASES").unwrap_or_else(|_| "sqlite,postgres".into());
    println!(
        "history bench: {websites} websites x {DAYS} days x {PER_DAY} checks = {} rows",
        websites as i64 * DAYS * PER_DAY
    );
    for db in databases.split(',') {
        match db.trim() {
            "sqlite" => sqlite(websites).await,
            "postgres" => postgres(websites).await,
            other => eprintln!("unknown database {other:?}"),
        }
    }
}

/// Midnight UTC 30 days ago, so the month ends today.
fn month_start() -> i64 {
    (Utc::now().timestamp() / 86_400 - (DAYS - 1)) * 86_400
}

async fn sqlite(websites: usize) {
    let db = common::TestDb::sqlite();
    let path = db.url_string();
    let store = SqliteStore::open(&path, StoreOptions::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let pool = store.pool().clone();
    create_websites(&store, websites).await;
    let start_ms = month_start() * 1000;
    let load = Instant::now();
    let rows_per_site = DAYS * PER_DAY - 1;
    for id in 1..=websites as i64 {
        // A deterministic mix: one check in 700 fails, response times 40–139 ms.
        sqlx::query(
            "WITH RECURSIVE m(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM m WHERE i < ?) \
             INSERT INTO checks (website_id, slot, delay_ms, up, status_code, response_ms) \
             SELECT ?, ? + i * 60000, 2, (i * 7 + ?) % 700 != 0, \
             CASE WHEN (i * 7 + ?) % 700 != 0 THEN 200 ELSE 503 END, 40 + (i * 13 + ?) % 100 FROM m",
        )
        .bind(rows_per_site)
        .bind(id)
        .bind(start_ms)
        .bind(id)
        .bind(id)
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    }
    let loaded = load.elapsed();
    let raw_bytes: i64 = sqlx::query_scalar("SELECT sum(pgsize) FROM dbstat WHERE name = 'checks'")
        .fetch_one(&pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO check_days SELECT website_id, date(slot / 1000, 'unixepoch'), count(*), \
         sum(up), sum(response_ms), count(status_code) FROM checks GROUP BY 1, 2",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO check_hours SELECT website_id, slot / 3600000 * 3600, count(*), sum(up), \
         sum(response_ms), count(status_code) FROM checks GROUP BY 1, 2",
    )
    .execute(&pool)
    .await
    .unwrap();
    set_current_state_sqlite(&pool).await;
    sqlx::query("ANALYZE").execute(&pool).await.unwrap();
    let aggregate_bytes: i64 = sqlx::query_scalar(
        "SELECT sum(pgsize) FROM dbstat WHERE name IN ('check_days', 'check_hours')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let store: DynStore = Arc::new(store);
    report(
        "sqlite",
        websites,
        loaded,
        raw_bytes,
        aggregate_bytes,
        store,
    )
    .await;
}

async fn set_current_state_sqlite(pool: &sqlx::SqlitePool) {
    sqlx::query(
        "UPDATE websites SET (last_slot, last_delay_ms, last_up, last_status_code, \
         last_response_ms, status_since) = (SELECT slot, delay_ms, up, status_code, response_ms, \
         slot FROM checks c WHERE c.website_id = websites.id ORDER BY slot DESC LIMIT 1)",
    )
    .execute(pool)
    .await
    .unwrap();
}

async fn postgres(websites: usize) {
    let url = common::pg::fresh_database().await;
    let store = PostgresStore::connect(&url, StoreOptions::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let pool = store.pool().clone();
    create_websites(&store, websites).await;
    let start = month_start();
    let load = Instant::now();
    let per_statement = 50;
    for first in (1..=websites as i64).step_by(per_statement) {
        let last = (first + per_statement as i64 - 1).min(websites as i64);
        sqlx::query(
            "INSERT INTO recent_checks (slot, website_id, delay_ms, response_ms, status_code, up) \
             SELECT to_timestamp($1 + i * 60), w, 2, 40 + (i * 13 + w) % 100, \
             CASE WHEN (i * 7 + w) % 700 != 0 THEN 200 ELSE 503 END, (i * 7 + w) % 700 != 0 \
             FROM generate_series($2::int8, $3::int8) AS w, generate_series(0, $4::int8) AS i \
             ORDER BY w, i",
        )
        .bind(start as f64)
        .bind(first)
        .bind(last)
        .bind(DAYS * PER_DAY - 1)
        .execute(&pool)
        .await
        .unwrap();
    }
    let loaded = load.elapsed();
    // In service the retention pass packs every hour that ended over an hour ago, a
    // day per call; here the same up to the last loaded hour but one.
    let data_end = chrono::DateTime::from_timestamp(start + DAYS * 86_400, 0).unwrap();
    let compaction = Instant::now();
    let mut moved = 0;
    for website in 1..=websites as i64 {
        loop {
            let n = store
                .compact_checks(website, data_end - chrono::Duration::hours(1))
                .await
                .unwrap();
            moved += n;
            if n == 0 {
                break;
            }
        }
    }
    let compaction = compaction.elapsed();
    println!(
        "[postgres] compaction: {moved} checks packed in {:.1} s ({:.0} checks/s, one website-day per statement)",
        compaction.as_secs_f64(),
        moved as f64 / compaction.as_secs_f64()
    );
    // The month went through recent_checks at once, which a running service never
    // does: there the table holds the last two hours and reuses its space. Rewrite
    // it to that size before measuring.
    sqlx::query("VACUUM FULL recent_checks")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("VACUUM ANALYZE recent_checks, check_blocks")
        .execute(&pool)
        .await
        .unwrap();
    let (recent_bytes, block_bytes): (i64, i64) = sqlx::query_as(
        "SELECT pg_total_relation_size('recent_checks'), pg_total_relation_size('check_blocks')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    println!(
        "[postgres] raw checks: {:.3} MB per website in packed hours, {:.3} MB in the last two hours' rows",
        block_bytes as f64 / websites as f64 / 1e6,
        recent_bytes as f64 / websites as f64 / 1e6,
    );
    let raw_bytes = recent_bytes + block_bytes;
    sqlx::query(
        "INSERT INTO check_days SELECT website_id, (slot AT TIME ZONE 'UTC')::date, count(*), \
         count(*) FILTER (WHERE up), sum(response_ms), count(status_code) FROM checks GROUP BY 1, 2",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO check_hours SELECT website_id, date_trunc('hour', slot), count(*), \
         count(*) FILTER (WHERE up), sum(response_ms), count(status_code) FROM checks GROUP BY 1, 2",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "UPDATE websites w SET last_slot = c.slot, last_delay_ms = c.delay_ms, last_up = c.up, \
         last_status_code = c.status_code, last_response_ms = c.response_ms, status_since = c.slot \
         FROM (SELECT DISTINCT ON (website_id) * FROM checks ORDER BY website_id, slot DESC) c \
         WHERE c.website_id = w.id",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("VACUUM ANALYZE").execute(&pool).await.unwrap();
    let aggregate_bytes: i64 = sqlx::query_scalar(
        "SELECT pg_total_relation_size('check_days') + pg_total_relation_size('check_hours')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let store: DynStore = Arc::new(store);
    report(
        "postgres",
        websites,
        loaded,
        raw_bytes,
        aggregate_bytes,
        store,
    )
    .await;
}

async fn create_websites(store: &dyn Store, n: usize) {
    for i in 0..n {
        let spec = sitepulse::domain::NewWebsite {
            name: &format!("site {i:05}"),
            url: &format!("https://site-{i}.example/"),
            ..Default::default()
        }
        .parse(Default::default())
        .unwrap();
        store.create_website(&spec).await.unwrap();
    }
}

async fn report(
    db: &str,
    websites: usize,
    loaded: Duration,
    raw_bytes: i64,
    aggregate_bytes: i64,
    store: DynStore,
) {
    let rows = websites as i64 * DAYS * PER_DAY;
    println!(
        "\n[{db}] loaded {rows} checks in {:.1}s",
        loaded.as_secs_f64()
    );
    println!(
        "[{db}] storage: raw checks {:.2} MB per website-month ({:.1} bytes per check); \
         aggregates {:.3} MB per website-month",
        raw_bytes as f64 / websites as f64 / 1e6,
        raw_bytes as f64 / rows as f64,
        aggregate_bytes as f64 / websites as f64 / 1e6,
    );

    let today = Utc::now().with_timezone(&Tz::UTC).date_naive();
    let from = today - chrono::Duration::days(DAYS - 1);
    let mut history = Vec::new();
    for i in 0..2000u64 {
        let id = (i * 7919 % websites as u64) as i64 + 1;
        let t = Instant::now();
        let days = store.daily_history(id, from, today).await.unwrap();
        history.push(t.elapsed());
        assert_eq!(
            days.len(),
            DAYS as usize,
            "30 days of history for website {id}"
        );
    }
    let mut list = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        let all = store.websites().await.unwrap();
        list.push(t.elapsed());
        assert_eq!(all.len(), websites);
    }
    // The service keeps the list in memory, current from the event bus, and reads
    // the store only at start, after a missed event and every few minutes.
    let events = sitepulse::events::EventBus::new(1024);
    let served = sitepulse::websites::Websites::new(
        store.clone(),
        events.clone(),
        Default::default(),
        Tz::UTC,
    );
    let shutdown = tokio_util::sync::CancellationToken::new();
    tokio::spawn(served.clone().follow(events.subscribe(), shutdown.clone()));
    tokio::time::sleep(Duration::from_millis(100)).await;
    served.list().await.unwrap(); // the one read from the store
    let mut served_list = Vec::new();
    for _ in 0..1000 {
        let t = Instant::now();
        let all = served.list().await.unwrap();
        served_list.push(t.elapsed());
        assert_eq!(all.len(), websites);
    }
    shutdown.cancel();
    let mut uptime = Vec::new();
    for i in 0..1000u64 {
        let id = (i * 104_729 % websites as u64) as i64 + 1;
        let t = Instant::now();
        let tally = store
            .tally_since(id, Utc::now() - chrono::Duration::days(30))
            .await
            .unwrap();
        uptime.push(t.elapsed());
        assert!(tally.checks > 0);
    }
    print_latency(db, "30-day history of one website", &mut history, 5.0);
    print_latency(
        db,
        "list of all websites with status, from the store",
        &mut list,
        20.0,
    );
    print_latency(
        db,
        "list of all websites with status, as served (kept in memory)",
        &mut served_list,
        20.0,
    );
    print_latency(db, "30-day uptime of one website", &mut uptime, 5.0);
}

fn print_latency(db: &str, what: &str, samples: &mut [Duration], goal_ms: f64) {
    samples.sort();
    let pct = |p: f64| {
        let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
        samples[i].as_secs_f64() * 1000.0
    };
    let p99 = pct(0.99);
    println!(
        "[{db}] {what}: p50 {:.3} ms, p99 {:.3} ms over {} runs (goal p99 < {goal_ms} ms: {})",
        pct(0.5),
        p99,
        samples.len(),
        if p99 < goal_ms { "met" } else { "MISSED" }
    );
}
