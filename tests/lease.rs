//! The `kube` elector against an HTTP server in this test that serves the Lease
//! endpoints of `coordination.k8s.io/v1` as the API server does: 404 before the
//! Lease exists, 409 for a second create and for a write with a stale
//! `resourceVersion`. Each elector talks to it on a port of its own, so the test
//! can cut one elector off.

#[macro_use]
mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use sitepulse::leader::kube::elect;
use sitepulse::leader::{Elector, Leadership, Timings};

const NAME: &str = "leaderelection-scanner";
const NAMESPACE: &str = "site-pulse-360";

/// The stored Lease and its version, shared by every port.
#[derive(Default)]
struct ApiServer {
    lease: Mutex<Option<(Value, u64)>>,
    /// Successful writes (create or replace) per elector.
    writes: [AtomicU64; 3],
}

#[derive(Clone)]
struct Port {
    server: Arc<ApiServer>,
    elector: usize,
    down: Arc<AtomicBool>,
}

fn status(code: StatusCode, reason: &str, message: &str) -> Response {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "reason": reason, "message": message, "code": code.as_u16(),
    });
    (code, Json(body)).into_response()
}

/// The answer of an API server this elector cannot reach, when its port is cut off.
fn unreachable(port: &Port) -> Option<Response> {
    port.down.load(Ordering::Relaxed).then(|| {
        status(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "down",
        )
    })
}

fn stored(lease: &Value, version: u64) -> Value {
    let mut lease = lease.clone();
    lease["apiVersion"] = json!("coordination.k8s.io/v1");
    lease["kind"] = json!("Lease");
    lease["metadata"]["namespace"] = json!(NAMESPACE);
    lease["metadata"]["resourceVersion"] = json!(version.to_string());
    lease
}

async fn read(State(port): State<Port>, Path((ns, name)): Path<(String, String)>) -> Response {
    if let Some(answer) = unreachable(&port) {
        return answer;
    }
    let lease = port.server.lease.lock().unwrap();
    match lease.as_ref() {
        Some((lease, version)) if ns == NAMESPACE && name == NAME => {
            Json(stored(lease, *version)).into_response()
        }
        _ => status(
            StatusCode::NOT_FOUND,
            "NotFound",
            "leases.coordination.k8s.io not found",
        ),
    }
}

async fn create(
    State(port): State<Port>,
    Path(ns): Path<String>,
    Json(lease): Json<Value>,
) -> Response {
    if let Some(answer) = unreachable(&port) {
        return answer;
    }
    assert_eq!(ns, NAMESPACE);
    assert_eq!(lease["metadata"]["name"], NAME);
    let mut stored_lease = port.server.lease.lock().unwrap();
    if stored_lease.is_some() {
        return status(StatusCode::CONFLICT, "AlreadyExists", "already exists");
    }
    *stored_lease = Some((lease.clone(), 1));
    port.server.writes[port.elector].fetch_add(1, Ordering::Relaxed);
    (StatusCode::CREATED, Json(stored(&lease, 1))).into_response()
}

async fn replace(
    State(port): State<Port>,
    Path((ns, name)): Path<(String, String)>,
    Json(lease): Json<Value>,
) -> Response {
    if let Some(answer) = unreachable(&port) {
        return answer;
    }
    let mut stored_lease = port.server.lease.lock().unwrap();
    let Some((_, version)) = stored_lease.as_ref() else {
        return status(StatusCode::NOT_FOUND, "NotFound", "not found");
    };
    assert_eq!((ns.as_str(), name.as_str()), (NAMESPACE, NAME));
    let sent = lease["metadata"]["resourceVersion"].as_str().unwrap_or("");
    if sent != version.to_string() {
        return status(
            StatusCode::CONFLICT,
            "Conflict",
            "the object has been modified",
        );
    }
    let version = version + 1;
    *stored_lease = Some((lease.clone(), version));
    port.server.writes[port.elector].fetch_add(1, Ordering::Relaxed);
    Json(stored(&lease, version)).into_response()
}

struct Harness {
    server: Arc<ApiServer>,
    downs: Vec<Arc<AtomicBool>>,
    electors: Vec<Option<Elector>>,
    views: Vec<Leadership>,
}

const TIMINGS: Timings = Timings {
    lease_duration: Duration::from_secs(3),
    renew_deadline: Duration::from_secs(2),
    retry_period: Duration::from_millis(300),
};

impl Harness {
    async fn start() -> Self {
        sitepulse::install_crypto_provider();
        let server = Arc::new(ApiServer::default());
        let mut downs = Vec::new();
        let mut electors = Vec::new();
        let mut views = Vec::new();
        for elector in 0..3 {
            let down = Arc::new(AtomicBool::new(false));
            let port = Port {
                server: server.clone(),
                elector,
                down: down.clone(),
            };
            let base = "/apis/coordination.k8s.io/v1/namespaces";
            let app = Router::new()
                .route(&format!("{base}/{{ns}}/leases"), post(create))
                .route(
                    &format!("{base}/{{ns}}/leases/{{name}}"),
                    get(read).put(replace),
                )
                .with_state(port);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            tokio::spawn(async move { axum::serve(listener, app).await });
            let config = kube::Config::new(url.parse().unwrap());
            let client = kube::Client::try_from(config).unwrap();
            let (view, handle) = elect(client, NAMESPACE, NAME, &format!("pod-{elector}"), TIMINGS);
            downs.push(down);
            electors.push(Some(handle));
            views.push(view);
        }
        Self {
            server,
            downs,
            electors,
            views,
        }
    }

    /// The elector that leads, once exactly one does and every live one names it.
    fn leader(&self) -> Option<usize> {
        let leading: Vec<usize> = (0..3).filter(|i| self.views[*i].is_leader()).collect();
        let [leader] = leading[..] else { return None };
        let name = format!("pod-{leader}");
        (0..3)
            .filter(|i| self.electors[*i].is_some() && !self.downs[*i].load(Ordering::Relaxed))
            .all(|i| self.views[i].leader().as_deref() == Some(name.as_str()))
            .then_some(leader)
    }

    async fn wait_for_leader(&self, within: Duration) -> (usize, Duration) {
        let started = Instant::now();
        loop {
            if let Some(leader) = self.leader() {
                return (leader, started.elapsed());
            }
            assert!(
                started.elapsed() < within,
                "no single leader within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn lease(&self) -> Value {
        self.server
            .lease
            .lock()
            .unwrap()
            .as_ref()
            .unwrap()
            .0
            .clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_of_three_leads_and_renews_on_time() {
    let harness = Harness::start().await;
    let (leader, _) = harness.wait_for_leader(Duration::from_secs(5)).await;
    let lease = harness.lease();
    assert_eq!(lease["spec"]["holderIdentity"], format!("pod-{leader}"));
    assert_eq!(lease["spec"]["leaseDurationSeconds"], 3);
    // It stays the leader and renews about every retry period; the others only read.
    let before: Vec<u64> = harness
        .server
        .writes
        .iter()
        .map(|w| w.load(Ordering::Relaxed))
        .collect();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(harness.leader(), Some(leader));
    for (i, before) in before.into_iter().enumerate() {
        let writes = harness.server.writes[i].load(Ordering::Relaxed) - before;
        if i == leader {
            assert!(
                (6..=14).contains(&writes),
                "{writes} renewals in 3 s at 300 ms"
            );
        } else {
            assert_eq!(writes, 0, "a follower wrote the Lease");
        }
    }
    assert_eq!(harness.lease()["spec"]["leaseTransitions"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_cannot_renew_stops_before_another_takes_over() {
    let harness = Harness::start().await;
    let (old, _) = harness.wait_for_leader(Duration::from_secs(5)).await;
    let mut old_state = harness.views[old].watch();
    harness.downs[old].store(true, Ordering::Relaxed);
    let cut = Instant::now();

    // The old leader gives up at its renew deadline (2 s)…
    old_state.wait_for(|s| !s.leading).await.unwrap();
    let stopped = cut.elapsed();
    assert!(
        stopped >= Duration::from_millis(1400) && stopped < Duration::from_secs(3),
        "stopped leading after {stopped:?}"
    );
    // …and only then, once the Lease expired (3 s after its last renewal), does
    // another replica take it.
    let others: Vec<usize> = (0..3).filter(|i| *i != old).collect();
    let new = loop {
        if let Some(i) = others.iter().find(|i| harness.views[**i].is_leader()) {
            break *i;
        }
        assert!(cut.elapsed() < Duration::from_secs(8), "nobody took over");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let took_over = cut.elapsed();
    assert!(
        took_over > stopped && took_over >= Duration::from_millis(2600),
        "took over after {took_over:?}, the old leader stopped after {stopped:?}"
    );
    assert!(took_over < Duration::from_secs(5), "{took_over:?}");
    let lease = harness.lease();
    assert_eq!(lease["spec"]["holderIdentity"], format!("pod-{new}"));
    assert_eq!(lease["spec"]["leaseTransitions"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn releasing_hands_over_at_once() {
    let mut harness = Harness::start().await;
    let (old, _) = harness.wait_for_leader(Duration::from_secs(5)).await;
    let started = Instant::now();
    harness.electors[old].take().unwrap().release().await;
    assert!(!harness.views[old].is_leader());
    let (new, _) = harness.wait_for_leader(Duration::from_secs(5)).await;
    let handover = started.elapsed();
    assert_ne!(new, old);
    assert!(
        handover < Duration::from_secs(1),
        "handover took {handover:?}; the Lease (3 s) need not expire"
    );
}
