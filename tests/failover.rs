//! Fault tolerance on a highly available PostgreSQL: `just failover-test`.
//!
//! Three `sitepulse` replicas (advisory-lock election) reach a Patroni cluster
//! through HAProxy and check 50 local websites every second; a GraphQL subscriber
//! listens on a follower. Then, one after another: `kill -9` of the Patroni
//! primary, `kill -9` of the checking leader, a rolling restart of every replica
//! under a retrying load client, and the database unreachable for 30 s. After each
//! fault the checks are paused, and what the targets answered is compared with
//! what the database holds, website by website. Figures are printed as they come
//! and summed up at the end (docs/reliability.md has a run's figures).
//!
//! Needs `etcd-server`, `patroni`, `haproxy` and `postgresql` from Debian; ignored
//! by the plain test run.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use chrono::{DateTime, Utc};
use common::TestDb;
use common::cluster::{Replica, add_websites, missed, slots, subscribe, wait_for_leader};
use common::ha::HaCluster;
use serde_json::json;
use sitepulse::domain::WebsiteId;

const WEBSITES: usize = 50;
const REPLICAS: usize = 3;

/// 50 websites on one local server, each request counted per website.
struct Targets {
    base: String,
    hits: Arc<Vec<AtomicU64>>,
}

impl Targets {
    async fn start() -> Self {
        let hits: Arc<Vec<AtomicU64>> =
            Arc::new((0..WEBSITES).map(|_| AtomicU64::new(0)).collect());
        let app = Router::new()
            .route(
                "/t/{i}",
                get(
                    |State(hits): State<Arc<Vec<AtomicU64>>>, Path(i): Path<usize>| async move {
                        hits[i].fetch_add(1, Ordering::Relaxed);
                        "ok"
                    },
                ),
            )
            .with_state(hits.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { base, hits }
    }

    fn urls(&self) -> Vec<String> {
        (0..WEBSITES)
            .map(|i| format!("{}/t/{i}", self.base))
            .collect()
    }

    fn answered(&self) -> Vec<u64> {
        self.hits
            .iter()
            .map(|h| h.load(Ordering::Relaxed))
            .collect()
    }
}

/// Everything one fault's checks need.
struct Harness {
    ha: HaCluster,
    db: TestDb,
    targets: Targets,
    replicas: Vec<Replica>,
    token: String,
    ids: Vec<WebsiteId>,
    pool: sqlx::PgPool,
    /// Checks the targets answered that the database does not hold, so far.
    unstored: i64,
    summary: Vec<String>,
}

impl Harness {
    fn alive(&self) -> Vec<usize> {
        (0..self.replicas.len())
            .filter(|i| self.replicas[*i].alive())
            .collect()
    }

    /// Sets every website paused or not through a live replica, retrying writes
    /// that fail while the database fails over.
    async fn set_paused(&self, paused: bool) {
        for id in &self.ids {
            let started = Instant::now();
            loop {
                let replica = &self.replicas[self.alive()[0]];
                let answer = replica
                    .gql(
                        Some(&self.token),
                        "mutation($id: ID!, $p: Boolean!) { updateWebsite(id: $id, input: {paused: $p}) { id } }",
                        json!({ "id": id.to_string(), "p": paused }),
                    )
                    .await;
                if answer.as_ref().is_some_and(|a| a["errors"].is_null()) {
                    break;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(60),
                    "cannot {} website {id}: {answer:?}",
                    if paused { "pause" } else { "resume" }
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }

    /// Stored checks per website.
    async fn stored(&self) -> BTreeMap<WebsiteId, i64> {
        sqlx::query_as("SELECT website_id::int8, count(*)::int8 FROM checks GROUP BY 1")
            .fetch_all(&self.pool)
            .await
            .unwrap()
            .into_iter()
            .collect()
    }

    /// Pauses the checks, waits until the database holds every result it is going
    /// to get, and compares with the targets; returns the checks the targets
    /// answered that were not stored during this fault. Resumes the checks.
    async fn settle_and_compare(&mut self, fault: &str) -> i64 {
        self.set_paused(true).await;
        let mut last = (Vec::new(), BTreeMap::new());
        // Results wait in writers' buffers until written; give them a while.
        for _ in 0..30 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let answered = self.targets.answered();
            let stored = self.stored().await;
            let settled = last.0 == answered && last.1 == stored;
            last = (answered, stored);
            if settled {
                break;
            }
        }
        let (answered, stored) = last;
        let mut more_stored = 0;
        let mut missing = 0;
        for (i, id) in self.ids.iter().enumerate() {
            let held = stored.get(id).copied().unwrap_or(0);
            let seen = answered[i] as i64;
            if held > seen {
                more_stored += held - seen;
            }
            missing += seen - held;
        }
        assert_eq!(
            more_stored, 0,
            "{fault}: the database holds checks no target answered"
        );
        let lost = missing - self.unstored;
        self.unstored = missing;
        let total: i64 = stored.values().sum();
        println!(
            "[{fault}] answered by the targets {}, stored {total}, answered but not stored during this fault {lost}",
            answered.iter().sum::<u64>()
        );
        self.set_paused(false).await;
        lost
    }

    /// Slots missed between `from` and `to` over all websites.
    async fn missed_slots(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
        let started = Instant::now();
        let store = loop {
            let options = sitepulse::store::StoreOptions::default();
            match sitepulse::store::connect(&self.db.url, options).await {
                Ok(store) => break store,
                Err(err) if started.elapsed() < Duration::from_secs(60) => {
                    println!("waiting for the database: {err}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(err) => panic!("the database stays unreachable: {err}"),
            }
        };
        let all = slots(&store, &self.ids, from - chrono::Duration::seconds(2)).await;
        all.values().map(|s| missed(s, from, to)).sum()
    }

    /// A live replica that does not lead.
    async fn follower(&self) -> usize {
        let (leader, _) = wait_for_leader(&self.replicas, Duration::from_secs(60)).await;
        self.alive().into_iter().find(|i| *i != leader).unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs etcd, Patroni and HAProxy from Debian; run `just failover-test`"]
async fn faults_one_after_another() {
    sitepulse::install_crypto_provider();
    let started = Instant::now();
    let ha = HaCluster::start().await;
    println!(
        "HA PostgreSQL ready in {:.1} s (etcd ×3, Patroni ×3, HAProxy on 127.0.0.1:{}; files in {})",
        started.elapsed().as_secs_f64(),
        ha.haproxy_port,
        ha.dir().display()
    );
    let db = TestDb::postgres_at(ha.database_url());
    let targets = Targets::start().await;
    let mut replicas = Vec::new();
    for i in 0..REPLICAS {
        replicas.push(Replica::start(&db, &format!("replica-{i}")).await);
    }
    let (leader, _) = wait_for_leader(&replicas, Duration::from_secs(30)).await;
    let (token, ids) = add_websites(&replicas[leader], &targets.urls()).await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(&ha.database_url())
        .await
        .unwrap();
    let mut h = Harness {
        ha,
        db,
        targets,
        replicas,
        token,
        ids,
        pool,
        unstored: 0,
        summary: Vec::new(),
    };
    let follower = h.follower().await;
    let mut events = subscribe(&h.replicas[follower]).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        events.load(Ordering::Relaxed) > 0,
        "the follower's subscriber receives checks"
    );

    // 1. kill -9 of the Patroni primary.
    {
        let before_events = events.load(Ordering::Relaxed);
        let primary = h.ha.primary().await.expect("one primary");
        let from = Utc::now();
        let killed = Instant::now();
        h.ha.kill_member(primary);
        // How long until a write through the service succeeds again.
        let (leader, _) = wait_for_leader(&h.replicas, Duration::from_secs(60)).await;
        let mut writes_back = None;
        while killed.elapsed() < Duration::from_secs(90) {
            let answer = h.replicas[leader]
                .gql(
                    Some(&h.token),
                    "mutation($id: ID!, $n: String!) { updateWebsite(id: $id, input: {name: $n}) { id } }",
                    json!({ "id": h.ids[0].to_string(), "n": format!("target 0 ({})", killed.elapsed().as_millis()) }),
                )
                .await;
            if answer.is_some_and(|a| a["errors"].is_null() && !a["data"].is_null()) {
                writes_back = Some(killed.elapsed());
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let writes_back = writes_back.expect("writes succeed again within 90 s");
        let new_primary = h.ha.primary().await;
        println!(
            "[primary killed] pg{primary} killed; writes succeed again after {:.1} s; new primary {:?}",
            writes_back.as_secs_f64(),
            new_primary.map(|i| format!("pg{i}"))
        );
        tokio::time::sleep(Duration::from_secs(5)).await;
        let to = Utc::now() - chrono::Duration::seconds(2);
        let missed = h.missed_slots(from, to).await;
        h.ha.restart_member(primary);
        let lost = h.settle_and_compare("primary killed").await;
        let got = events.load(Ordering::Relaxed) - before_events;
        println!("[primary killed] slots missed {missed}; subscriber events meanwhile {got}");
        assert_eq!(lost, 0, "every check made during the failover is stored");
        assert!(got > 0, "the subscriber kept receiving events");
        h.summary.push(format!(
            "kill -9 of the Patroni primary: writes back after {:.1} s, {missed} slots missed, {lost} checks lost, {got} events to the subscriber",
            writes_back.as_secs_f64()
        ));
    }

    // 2. kill -9 of the checking leader.
    {
        let before_events = events.load(Ordering::Relaxed);
        let (leader, _) = wait_for_leader(&h.replicas, Duration::from_secs(30)).await;
        if leader == follower {
            panic!("the subscriber's replica leads");
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        let from = Utc::now();
        h.replicas[leader].kill();
        let (new_leader, takeover) = wait_for_leader(&h.replicas, Duration::from_secs(30)).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        let to = Utc::now() - chrono::Duration::seconds(2);
        let missed = h.missed_slots(from, to).await;
        let name = h.replicas[leader].name.clone();
        h.replicas[leader] = Replica::start(&h.db, &name).await;
        let lost = h.settle_and_compare("leader killed").await;
        let got = events.load(Ordering::Relaxed) - before_events;
        println!(
            "[leader killed] {name} killed; {} leads after {:.2} s; slots missed {missed}; \
             checks the killed process made but never wrote {lost}; subscriber events meanwhile {got}",
            h.replicas[new_leader].name,
            takeover.as_secs_f64()
        );
        assert!(got > 0, "the subscriber kept receiving events");
        assert!(missed <= WEBSITES as i64 * 2, "{missed} slots missed");
        h.summary.push(format!(
            "kill -9 of the checking leader: new leader after {:.2} s, {missed} slots missed, {lost} checks in flight or unwritten in the killed process lost",
            takeover.as_secs_f64()
        ));
    }

    // 3. A rolling restart under a retrying load client.
    {
        let bases: Arc<Mutex<Vec<Option<String>>>> = Arc::new(Mutex::new(
            h.replicas.iter().map(|r| Some(r.base.clone())).collect(),
        ));
        let stop = Arc::new(AtomicBool::new(false));
        let counts = Arc::new((AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)));
        let load = tokio::spawn(load_client(
            bases.clone(),
            h.token.clone(),
            stop.clone(),
            counts.clone(),
        ));
        tokio::time::sleep(Duration::from_secs(2)).await;
        let from = Utc::now();
        let restarting = Instant::now();
        for i in 0..REPLICAS {
            // SIGTERM while the load client still sends requests its way: what it
            // refuses or drops is retried on another replica.
            let stopping = h.replicas[i].terminate();
            tokio::time::sleep(Duration::from_millis(500)).await;
            bases.lock().unwrap()[i] = None;
            stopping.await.unwrap();
            let name = h.replicas[i].name.clone();
            h.replicas[i] = Replica::start(&h.db, &name).await;
            bases.lock().unwrap()[i] = Some(h.replicas[i].base.clone());
            wait_for_leader(&h.replicas, Duration::from_secs(30)).await;
        }
        let took = restarting.elapsed();
        tokio::time::sleep(Duration::from_secs(3)).await;
        stop.store(true, Ordering::Relaxed);
        load.await.unwrap();
        let to = Utc::now() - chrono::Duration::seconds(2);
        let missed = h.missed_slots(from, to).await;
        let follower = h.follower().await;
        events = subscribe(&h.replicas[follower]).await;
        let lost = h.settle_and_compare("rolling restart").await;
        let (ok, retried, failed) = (
            counts.0.load(Ordering::Relaxed),
            counts.1.load(Ordering::Relaxed),
            counts.2.load(Ordering::Relaxed),
        );
        println!(
            "[rolling restart] {REPLICAS} replicas restarted one by one in {:.1} s; load client: {ok} requests answered, \
             {retried} retried on another replica, {failed} failed; slots missed {missed}",
            took.as_secs_f64()
        );
        assert_eq!(failed, 0, "no request failed after its retry");
        assert_eq!(missed, 0, "no slot missed");
        assert_eq!(lost, 0, "nothing lost");
        assert!(events.load(Ordering::Relaxed) > 0);
        h.summary.push(format!(
            "rolling restart: {ok} requests, {retried} retried, {failed} failed, {missed} slots missed, {lost} checks lost"
        ));
    }

    // 4. The database unreachable for 30 s.
    {
        let before_events = events.load(Ordering::Relaxed);
        let from = Utc::now();
        let cut = Instant::now();
        h.ha.stop_haproxy();
        let not_ready = wait_readiness(&h.replicas, false, Duration::from_secs(20)).await;
        let outage = Duration::from_secs(30);
        tokio::time::sleep(outage.saturating_sub(cut.elapsed())).await;
        h.ha.start_haproxy();
        let ready = wait_readiness(&h.replicas, true, Duration::from_secs(30)).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        let to = Utc::now() - chrono::Duration::seconds(2);
        let missed = h.missed_slots(from, to).await;
        let lost = h.settle_and_compare("database unreachable").await;
        let got = events.load(Ordering::Relaxed) - before_events;
        println!(
            "[database unreachable] /readyz false on every replica {:.1} s after the cut, true again {:.1} s after the return; \
             slots missed {missed}; checks lost {lost}; subscriber events meanwhile {got}",
            not_ready.as_secs_f64(),
            ready.as_secs_f64()
        );
        assert_eq!(lost, 0, "results buffered during the outage are all stored");
        assert!(got > 0, "the subscriber kept receiving events");
        h.summary.push(format!(
            "database unreachable 30 s: /readyz false after {:.1} s and true {:.1} s after its return, {missed} slots missed, {lost} checks lost",
            not_ready.as_secs_f64(),
            ready.as_secs_f64()
        ));
    }

    println!(
        "\nsummary ({:.0} s in all):",
        started.elapsed().as_secs_f64()
    );
    for line in &h.summary {
        println!("- {line}");
    }
}

/// Until every replica's `/readyz` answers `ready`; how long that took.
async fn wait_readiness(replicas: &[Replica], ready: bool, within: Duration) -> Duration {
    let started = Instant::now();
    let client = reqwest::Client::new();
    loop {
        let mut all = true;
        for replica in replicas.iter().filter(|r| r.alive()) {
            let ok = client
                .get(format!("{}/readyz", replica.base))
                .timeout(Duration::from_secs(3))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200);
            all &= ok == ready;
        }
        if all {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "/readyz did not become {ready} on every replica within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Pages and GraphQL reads round-robin over the replicas; a request that fails is
/// retried on the next replica, as a Service would send it elsewhere. Counts
/// (answered, retried, failed on every replica).
async fn load_client(
    bases: Arc<Mutex<Vec<Option<String>>>>,
    token: String,
    stop: Arc<AtomicBool>,
    counts: Arc<(AtomicU64, AtomicU64, AtomicU64)>,
) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut n = 0usize;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let live: Vec<String> = bases.lock().unwrap().iter().flatten().cloned().collect();
        let mut answered = false;
        for attempt in 0..live.len() {
            let base = &live[(n + attempt) % live.len()];
            let request = if n.is_multiple_of(2) {
                client.get(format!("{base}/"))
            } else {
                client
                    .post(format!("{base}/graphql"))
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(json!({ "query": "{ websites { id name status } }" }).to_string())
            };
            let ok = match request.send().await {
                Ok(response) if response.status().is_success() => response
                    .text()
                    .await
                    .is_ok_and(|body| !body.contains("\"errors\"")),
                _ => false,
            };
            if ok {
                answered = true;
                break;
            }
            counts.1.fetch_add(1, Ordering::Relaxed);
        }
        if answered {
            counts.0.fetch_add(1, Ordering::Relaxed);
        } else {
            counts.2.fetch_add(1, Ordering::Relaxed);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
