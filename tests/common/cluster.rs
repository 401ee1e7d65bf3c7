//! Several `sitepulse` processes on one PostgreSQL database, electing their leader
//! through the advisory lock: for the cluster tests and the takeover report.

use std::collections::BTreeMap;
use std::process::Child;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use sitepulse::domain::WebsiteId;
use sitepulse::store::DynStore;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::{TestDb, service};

pub const ADMIN_PASSWORD: &str = "cluster-admin-password";

pub struct Replica {
    pub name: String,
    pub base: String,
    child: Option<Child>,
}

impl Replica {
    /// Starts a replica electing through PostgreSQL, checking every second.
    pub async fn start(db: &TestDb, name: &str) -> Self {
        let (child, base) = service::spawn(
            db,
            &["--leader-election", "postgres", "--check-interval", "1s"],
            &[
                ("POD_NAME", name),
                ("SITEPULSE_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ],
        )
        .await;
        Self {
            name: name.to_owned(),
            base,
            child: Some(child),
        }
    }

    pub fn alive(&self) -> bool {
        self.child.is_some()
    }

    /// `kill -9`: no chance to step down.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM; the returned task ends when the process has exited.
    pub fn terminate(&mut self) -> tokio::task::JoinHandle<()> {
        let child = self.child.take();
        tokio::task::spawn_blocking(move || {
            if let Some(child) = child {
                service::stop(child);
            }
        })
    }

    /// Runs a GraphQL operation; `None` when the replica does not answer.
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Option<Value> {
        let client = reqwest::Client::new();
        let mut request = client
            .post(format!("{}/graphql", self.base))
            .header("content-type", "application/json")
            .timeout(Duration::from_secs(2))
            .body(json!({ "query": query, "variables": variables }).to_string());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let text = request.send().await.ok()?.text().await.ok()?;
        serde_json::from_str(&text).ok()
    }

    /// `(self, leader, isLeader)` as this replica sees them.
    pub async fn cluster(&self) -> Option<(String, Option<String>, bool)> {
        let answer = self
            .gql(
                None,
                "{ cluster { self leader isLeader electionMode } }",
                json!({}),
            )
            .await?;
        let cluster = &answer["data"]["cluster"];
        assert_eq!(cluster["electionMode"], "POSTGRES");
        Some((
            cluster["self"].as_str()?.to_owned(),
            cluster["leader"].as_str().map(str::to_owned),
            cluster["isLeader"].as_bool()?,
        ))
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The index of the leader when every live replica answers, exactly one leads, and
/// all of them name it.
pub async fn agreed_leader(replicas: &[Replica]) -> Option<usize> {
    let mut leader = None;
    let mut named = Vec::new();
    for (i, replica) in replicas.iter().enumerate().filter(|(_, r)| r.alive()) {
        let (this, name, leading) = replica.cluster().await?;
        assert_eq!(this, replica.name);
        if leading {
            if leader.is_some() {
                panic!("two replicas lead at once");
            }
            leader = Some(i);
        }
        named.push(name?);
    }
    let leader = leader?;
    named
        .iter()
        .all(|n| *n == replicas[leader].name)
        .then_some(leader)
}

/// Waits until the live replicas agree on a leader; its index and how long it took.
pub async fn wait_for_leader(replicas: &[Replica], within: Duration) -> (usize, Duration) {
    let started = Instant::now();
    loop {
        if let Some(leader) = agreed_leader(replicas).await {
            return (leader, started.elapsed());
        }
        assert!(
            started.elapsed() < within,
            "no agreed leader within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Signs in as the admin on `replica`; the session token, and the answer.
pub async fn sign_in(replica: &Replica) -> (String, Value) {
    let login = replica
        .gql(
            None,
            "mutation($p: String!) { login(username: \"admin\", password: $p) { token } }",
            json!({ "p": ADMIN_PASSWORD }),
        )
        .await
        .expect("sign in");
    let token = login["data"]["login"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("{login}"))
        .to_owned();
    (token, login)
}

/// Signs in on `replica` and adds one website per URL; the API token and the ids.
pub async fn add_websites(replica: &Replica, urls: &[String]) -> (String, Vec<WebsiteId>) {
    let (token, _) = sign_in(replica).await;
    let mut ids = Vec::new();
    for (i, url) in urls.iter().enumerate() {
        let created = replica
            .gql(
                Some(&token),
                "mutation($n: String!, $u: String!) { createWebsite(input: {name: $n, url: $u}) { id } }",
                json!({ "n": format!("target {i}"), "u": url }),
            )
            .await
            .expect("create a website");
        let id = created["data"]["createWebsite"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{created}"));
        ids.push(id.parse().unwrap());
    }
    (token, ids)
}

/// Counts the `checkCompleted` events a subscription on `replica` receives.
pub async fn subscribe(replica: &Replica) -> Arc<AtomicU64> {
    let url = format!("{}/graphql/ws", replica.base.replace("http://", "ws://"));
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let send = |value: Value| Message::text(value.to_string());
    socket
        .send(send(json!({"type": "connection_init"})))
        .await
        .unwrap();
    socket
        .send(send(json!({
            "id": "1",
            "type": "subscribe",
            "payload": {"query": "subscription { checkCompleted { websiteId up } }"}
        })))
        .await
        .unwrap();
    let count = Arc::new(AtomicU64::new(0));
    let counter = count.clone();
    tokio::spawn(async move {
        while let Some(Ok(message)) = socket.next().await {
            if let Message::Text(text) = message
                && text.contains("checkCompleted")
            {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    count
}

/// Every stored slot of each website from `since` on, oldest first.
pub async fn slots(
    store: &DynStore,
    ids: &[WebsiteId],
    since: DateTime<Utc>,
) -> BTreeMap<WebsiteId, Vec<DateTime<Utc>>> {
    let mut all = BTreeMap::new();
    for id in ids {
        let mut slots: Vec<DateTime<Utc>> = store
            .recent_checks(*id, None, 100_000)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.slot)
            .filter(|slot| *slot >= since)
            .collect();
        slots.reverse();
        all.insert(*id, slots);
    }
    all
}

/// Slots missing between `from` and `to` for a website checked every second: gaps
/// in the run of its stored slots.
pub fn missed(slots: &[DateTime<Utc>], from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
    let inside: Vec<&DateTime<Utc>> = slots.iter().filter(|s| **s >= from && **s <= to).collect();
    inside
        .windows(2)
        .map(|w| ((*w[1] - *w[0]).num_milliseconds() + 500) / 1000 - 1)
        .sum()
}
