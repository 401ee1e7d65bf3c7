//! Three `sitepulse` processes on a real PostgreSQL, electing through the advisory
//! lock and checking local targets every second: one leader, takeover after
//! `kill -9`, handover on SIGTERM, every check stored once, and live events on a
//! follower.

#[macro_use]
mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::Utc;
use common::TestDb;
use common::cluster::{Replica, add_websites, missed, slots, subscribe, wait_for_leader};
use common::targets::Target;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_checks_and_another_takes_over() {
    let db = TestDb::postgres().await;
    let store = db.store().await;
    let targets = [
        Target::start().await,
        Target::start().await,
        Target::start().await,
    ];
    let mut replicas = Vec::new();
    for name in ["replica-a", "replica-b", "replica-c"] {
        replicas.push(Replica::start(&db, name).await);
    }
    let (leader, _) = wait_for_leader(&replicas, Duration::from_secs(30)).await;

    // Websites added on a follower reach the leader's scheduler.
    let follower = (leader + 1) % 3;
    let urls: Vec<String> = targets.iter().map(|t| t.url("/ok")).collect();
    let (_, ids) = add_websites(&replicas[follower], &urls).await;
    let events = subscribe(&replicas[follower]).await;
    common::eventually(20, "checks of every website", || {
        let store = store.clone();
        let ids = ids.clone();
        async move {
            let slots = slots(&store, &ids, Utc::now() - chrono::Duration::hours(1)).await;
            slots.values().all(|s| s.len() >= 2).then_some(())
        }
    })
    .await;

    // Exactly one replica checks: each target is asked about once a second, not
    // once per replica.
    let before: Vec<u64> = targets.iter().map(Target::hits).collect();
    tokio::time::sleep(Duration::from_secs(5)).await;
    for (target, before) in targets.iter().zip(before) {
        let asked = target.hits() - before;
        assert!((3..=7).contains(&asked), "{asked} requests in 5 s");
    }
    let heard = events.load(Ordering::Relaxed);
    assert!(heard >= 9, "the follower's subscriber heard {heard} checks");

    // Every replica says who leads: metrics and page footers.
    for (i, replica) in replicas.iter().enumerate() {
        let metrics = reqwest::get(format!("{}/metrics", replica.base))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let gauge = format!(
            "sitepulse_leader{{replica=\"{}\",mode=\"postgres\"}} {}",
            replica.name,
            u8::from(i == leader)
        );
        assert!(metrics.contains(&gauge), "{metrics}");
        let page = reqwest::get(format!("{}/", replica.base))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let footer = page.split("<footer").nth(1).unwrap();
        assert!(footer.contains(&format!(
            "served by <span class=\"replica\">{}",
            replica.name
        )));
        assert!(footer.contains(&format!(
            "checker on <span class=\"leader\">{}",
            replicas[leader].name
        )));
    }

    // "Check now" asked of a follower runs there and is stored like any other check.
    let (token, _) = common::cluster::sign_in(&replicas[follower]).await;
    let checked = replicas[follower]
        .gql(
            Some(&token),
            "mutation($id: ID!) { checkNow(id: $id) { websiteId up statusCode } }",
            serde_json::json!({ "id": ids[0].to_string() }),
        )
        .await
        .unwrap();
    assert_eq!(checked["data"]["checkNow"]["up"], true, "{checked}");

    // The follower's listening connection is cut (as in a database failover): it
    // listens again by itself and its subscriber keeps hearing checks.
    let admin = sqlx::PgPool::connect(&db.url_string()).await.unwrap();
    let cut: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
    )
    .bind(format!("{} events", replicas[follower].name))
    .fetch_all(&admin)
    .await
    .unwrap();
    assert!(
        !cut.is_empty(),
        "the follower listens on a connection of its own"
    );
    let heard_before_cut = events.load(Ordering::Relaxed);
    common::eventually(20, "events after the listener reconnected", || async {
        (events.load(Ordering::Relaxed) >= heard_before_cut + 6).then_some(())
    })
    .await;

    // kill -9 of the leader: another takes over and checks go on.
    replicas[leader].kill();
    let killed_at = Utc::now();
    let (second, takeover) = wait_for_leader(&replicas, Duration::from_secs(30)).await;
    assert_ne!(second, leader);
    assert!(
        takeover < Duration::from_secs(45),
        "within the lease: {takeover:?}"
    );
    let heard_before = events.load(Ordering::Relaxed);
    common::eventually(20, "checks after the takeover", || {
        let store = store.clone();
        let ids = ids.clone();
        async move {
            let slots = slots(&store, &ids, killed_at + chrono::Duration::seconds(1)).await;
            slots.values().all(|s| s.len() >= 2).then_some(())
        }
    })
    .await;
    if replicas[follower].alive() {
        common::eventually(10, "events after the takeover", || async {
            (events.load(Ordering::Relaxed) > heard_before).then_some(())
        })
        .await;
    }

    // SIGTERM of the new leader: the last replica takes over within seconds and
    // picks up each schedule where it was.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stopping_at = Utc::now();
    let stopped = replicas[second].terminate();
    let (third, handover) = wait_for_leader(&replicas, Duration::from_secs(30)).await;
    stopped.await.unwrap();
    assert_ne!(third, second);
    assert!(
        handover < Duration::from_secs(5),
        "handover took {handover:?}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let around = slots(&store, &ids, stopping_at - chrono::Duration::seconds(3)).await;
    let until = stopping_at + chrono::Duration::seconds(4);
    for (id, slots) in &around {
        let gaps = missed(slots, stopping_at - chrono::Duration::seconds(3), until);
        assert!(
            gaps <= 1,
            "website {id} missed {gaps} slots at the handover: {slots:?}"
        );
    }

    // Every check a target answered is stored once: nothing checked twice.
    for replica in &mut replicas {
        replica.terminate().await.unwrap();
    }
    let stored = slots(&store, &ids, Utc::now() - chrono::Duration::hours(1)).await;
    for ((id, slots), target) in stored.iter().zip(&targets) {
        let answered = target.hits();
        let kept = slots.len() as u64;
        assert!(
            answered >= kept && answered - kept <= 2,
            "website {id}: the target answered {answered} checks, {kept} are stored"
        );
    }
}
