//! Takeover report (`just cluster-demo`): three replicas on a temporary PostgreSQL,
//! electing through the advisory lock, checking 10 local websites every second.
//! Prints how long until another replica leads after `kill -9` of the leader and
//! after SIGTERM, and how many slots were missed around each.
//!
//! Goals: SIGTERM handover under 3 s with no missed slot; `kill -9` takeover within
//! the lease duration (45 s).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Duration;

use chrono::{DateTime, Utc};
use common::TestDb;
use common::cluster::{Replica, add_websites, missed, slots, wait_for_leader};
use common::targets::Target;
use sitepulse::domain::WebsiteId;
use sitepulse::store::DynStore;

const WEBSITES: usize = 10;

#[tokio::main]
async fn main() {
    sitepulse::install_crypto_provider();
    let db = TestDb::postgres().await;
    let store = db.store().await;
    let target = Target::start().await;
    let mut replicas = Vec::new();
    for name in ["replica-a", "replica-b", "replica-c"] {
        replicas.push(Replica::start(&db, name).await);
    }
    let (leader, first) = wait_for_leader(&replicas, Duration::from_secs(30)).await;
    println!(
        "cluster demo: 3 replicas, {WEBSITES} websites every 1 s; {} leads after {:.2}s",
        replicas[leader].name,
        first.as_secs_f64()
    );
    let urls: Vec<String> = (0..WEBSITES)
        .map(|i| target.url(&format!("/status/{}", 200 + i)))
        .collect();
    let (_, ids) = add_websites(&replicas[leader], &urls).await;
    tokio::time::sleep(Duration::from_secs(5)).await;

    replicas[leader].kill();
    let killed = Utc::now();
    let (second, takeover) = wait_for_leader(&replicas, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let gaps_kill = gaps(&store, &ids, killed).await;
    println!(
        "kill -9 of {}: {} leads after {:.2}s; slots missed per website {gaps_kill}; goal within the lease (45 s): {}",
        replicas[leader].name,
        replicas[second].name,
        takeover.as_secs_f64(),
        verdict(takeover < Duration::from_secs(45))
    );

    let stopping = Utc::now();
    let stopped = replicas[second].terminate();
    let (third, handover) = wait_for_leader(&replicas, Duration::from_secs(60)).await;
    stopped.await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let gaps_term = gaps(&store, &ids, stopping).await;
    println!(
        "SIGTERM of {}: {} leads after {:.2}s; slots missed per website {gaps_term}; goal under 3 s with no missed slot: {}",
        replicas[second].name,
        replicas[third].name,
        handover.as_secs_f64(),
        verdict(handover < Duration::from_secs(3) && gaps_term.max == 0)
    );
    for replica in &mut replicas {
        replica.terminate().await.unwrap();
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

struct Gaps {
    min: i64,
    max: i64,
    total: i64,
}

impl std::fmt::Display for Gaps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "min {} max {} (total {} over {WEBSITES} websites)",
            self.min, self.max, self.total
        )
    }
}

/// Slots missed by each website from 5 s before `at` to 5 s after.
async fn gaps(store: &DynStore, ids: &[WebsiteId], at: DateTime<Utc>) -> Gaps {
    let from = at - chrono::Duration::seconds(5);
    let to = at + chrono::Duration::seconds(5);
    let all = slots(store, ids, from).await;
    let per: Vec<i64> = all.values().map(|s| missed(s, from, to)).collect();
    Gaps {
        min: per.iter().copied().min().unwrap_or(0),
        max: per.iter().copied().max().unwrap_or(0),
        total: per.iter().sum(),
    }
}
