//! The checker against real HTTP servers on 127.0.0.1.

mod common;

use std::time::Duration;

use common::targets::{self, Target};
use common::{TestDb, eventually};
use sitepulse::checker::{CheckerConfig, Probe, Scheduler, WriterConfig, spawn_writer};
use sitepulse::domain::{CheckDefaults, ErrorKind, NewWebsite, WebsitePatch};
use sitepulse::events::{Event, EventBus};
use sitepulse::store::DynStore;
use sitepulse::websites::Websites;
use tokio_util::sync::CancellationToken;
use url::Url;

async fn probe(url: &str, timeout_ms: u64) -> sitepulse::checker::Outcome {
    Probe::new()
        .unwrap()
        .check(&Url::parse(url).unwrap(), Duration::from_millis(timeout_ms))
        .await
}

#[tokio::test]
async fn a_200_is_up() {
    let target = Target::start().await;
    let out = probe(&target.url("/ok"), 2000).await;
    assert!(out.up);
    assert_eq!(out.status_code, Some(200));
    assert_eq!(out.error, None);
    assert!(out.response_time_ms < 2000);
}

#[tokio::test]
async fn a_redirect_chain_ending_in_200_is_up_with_200() {
    let target = Target::start().await;
    let out = probe(&target.url("/redirect/5"), 2000).await;
    assert!(out.up, "{out:?}");
    assert_eq!(out.status_code, Some(200));
    assert_eq!(target.hits(), 7, "five hops, the last redirect, and /ok");
}

#[tokio::test]
async fn client_and_server_errors_are_down_with_their_code() {
    let target = Target::start().await;
    for code in [404u16, 500, 400, 503] {
        let out = probe(&target.url(&format!("/status/{code}")), 2000).await;
        assert!(!out.up, "{code}");
        assert_eq!(out.status_code, Some(code));
        assert_eq!(out.error.unwrap().kind, ErrorKind::Http);
    }
    let out = probe(&target.url("/status/399"), 2000).await;
    assert!(out.up, "below 400 is up");
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let addr = targets::silent_server().await;
    let out = probe(&format!("http://{addr}/"), 300).await;
    assert!(!out.up);
    assert_eq!(out.status_code, None);
    assert_eq!(out.error.unwrap().kind, ErrorKind::Timeout);
    assert!(
        out.response_time_ms >= 300,
        "records how long it took to fail"
    );
}

#[tokio::test]
async fn a_closed_port_is_a_connect_error_without_code() {
    let addr = targets::closed_port();
    let out = probe(&format!("http://{addr}/"), 2000).await;
    assert!(!out.up);
    assert_eq!(out.status_code, None);
    let error = out.error.unwrap();
    assert_eq!(error.kind, ErrorKind::Connect, "{error:?}");
    assert!(
        error.message.to_lowercase().contains("refused"),
        "{error:?}"
    );
}

#[tokio::test]
async fn an_unresolvable_host_is_a_dns_error() {
    let out = probe("http://no-such-host.invalid/", 5000).await;
    assert!(!out.up);
    assert_eq!(out.status_code, None);
    assert_eq!(out.error.unwrap().kind, ErrorKind::Dns);
}

#[tokio::test]
async fn a_redirect_loop_is_down() {
    let target = Target::start().await;
    let out = probe(&target.url("/loop"), 5000).await;
    assert!(!out.up);
    let error = out.error.unwrap();
    assert_eq!(error.kind, ErrorKind::Http);
    assert!(error.message.contains("redirects"), "{error:?}");
    assert_eq!(
        target.hits(),
        11,
        "the first request and ten redirects, no more"
    );
}

#[tokio::test]
async fn garbage_is_an_http_error() {
    let addr = targets::garbage_server().await;
    let out = probe(&format!("http://{addr}/"), 2000).await;
    assert!(!out.up);
    assert_eq!(out.status_code, None);
    assert_eq!(out.error.unwrap().kind, ErrorKind::Http);
}

#[tokio::test]
async fn a_gigabyte_body_is_not_read() {
    let (addr, written) = targets::gigabyte_server().await;
    let out = probe(&format!("http://{addr}/"), 5000).await;
    // Headers arrived with 200: up, as the check semantics say; the body is left unread.
    assert!(out.up, "{out:?}");
    assert_eq!(out.status_code, Some(200));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent = written.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        sent < 64 * 1024 * 1024,
        "the server could push only what socket buffers hold, not 1 GiB: {sent} bytes"
    );
}

#[tokio::test]
async fn https_to_a_plain_http_port_is_a_tls_error() {
    let target = Target::start().await;
    let out = probe(&format!("https://{}/ok", target.addr), 2000).await;
    assert!(!out.up);
    let error = out.error.unwrap();
    assert_eq!(error.kind, ErrorKind::Tls, "{error:?}");
}

/// A running scheduler and writer over a SQLite store.
struct Running {
    store: DynStore,
    websites: Websites,
    events: EventBus,
    cancel: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    _db: TestDb,
}

impl Running {
    async fn start(db: TestDb, defaults: CheckDefaults) -> Self {
        Self::start_with(db, defaults, CheckerConfig::default().concurrency).await
    }

    /// With at most `concurrency` checks in flight.
    async fn start_with(db: TestDb, defaults: CheckDefaults, concurrency: usize) -> Self {
        let store = db.store().await;
        let events = EventBus::default();
        let websites = Websites::new(store.clone(), events.clone(), defaults, chrono_tz::Tz::UTC);
        let writer_config = WriterConfig {
            flush_every: Duration::from_millis(50),
            ..WriterConfig::default()
        };
        let (writer, writer_task) = spawn_writer(store.clone(), events.clone(), writer_config);
        let scheduler = Scheduler::new(
            store.clone(),
            Probe::new().unwrap(),
            writer,
            events.clone(),
            CheckerConfig {
                concurrency,
                resync_every: Duration::from_secs(60),
                ..CheckerConfig::default()
            },
        );
        let cancel = CancellationToken::new();
        let scheduler_task = tokio::spawn(scheduler.run(cancel.clone()));
        Self {
            store,
            websites,
            events,
            cancel,
            tasks: vec![scheduler_task, writer_task],
            _db: db,
        }
    }

    async fn stop(self) {
        self.cancel.cancel();
        for task in self.tasks {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("checker stops within its grace period")
                .unwrap();
        }
    }

    async fn checks(&self, id: i64) -> Vec<sitepulse::domain::Check> {
        self.store.recent_checks(id, None, 1000).await.unwrap()
    }
}

fn every_second() -> CheckDefaults {
    CheckDefaults {
        interval: Duration::from_secs(1),
        timeout: Duration::from_millis(800),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_websites_do_not_delay_the_others() {
    let target = Target::start().await;
    let silent = targets::silent_server().await;
    let running = Running::start(TestDb::sqlite(), every_second()).await;
    let w = &running.websites;
    // Five hanging websites, added first and checked at once, each holding its check
    // open for 20 s.
    for i in 0..5 {
        w.create(&NewWebsite {
            name: &format!("hangs {i}"),
            url: &format!("http://{silent}/"),
            interval: Some(Duration::from_secs(30)),
            timeout: Some(Duration::from_secs(20)),
        })
        .await
        .unwrap();
    }
    let mut ids = Vec::new();
    for i in 0..5 {
        let site = w
            .create(&NewWebsite {
                name: &format!("fine {i}"),
                url: &target.url("/ok"),
                ..Default::default()
            })
            .await
            .unwrap();
        ids.push(site.id);
    }
    // With checks run one after another, the first hanging check alone would hold the
    // others back for 20 s. Run concurrently, each healthy site is checked every second.
    for id in &ids {
        eventually(10, "three checks of every healthy website", || async {
            (running.checks(*id).await.len() >= 3).then_some(())
        })
        .await;
    }
    for id in ids {
        for check in running.checks(id).await {
            assert!(check.up, "{check:?}");
        }
    }
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_website_keeps_its_rhythm_on_its_slots() {
    let target = Target::start().await;
    let running = Running::start(TestDb::sqlite(), every_second()).await;
    let site = running
        .websites
        .create(&NewWebsite {
            name: "rhythm",
            url: &target.url("/slow/300"),
            ..Default::default()
        })
        .await
        .unwrap();
    let checks = eventually(15, "five checks", || async {
        let c = running.checks(site.id).await;
        (c.len() >= 5).then_some(c)
    })
    .await;
    let phase = sitepulse::checker::schedule::phase_ms(site.id, Duration::from_secs(1));
    // Apart from the first check (made at once when the website was added), every slot
    // sits on the website's grid, one interval apart: a 300 ms response does not push
    // the next check later.
    let on_grid: Vec<_> = checks[..checks.len() - 1].iter().collect();
    for pair in on_grid.windows(2) {
        assert_eq!((pair[0].slot - pair[1].slot).num_milliseconds(), 1000);
    }
    for check in on_grid {
        assert_eq!((check.slot.timestamp_millis() - phase).rem_euclid(1000), 0);
    }
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn website_changes_take_effect_without_a_restart() {
    let first = Target::start().await;
    let second = Target::start().await;
    let running = Running::start(TestDb::sqlite(), every_second()).await;
    let mut events = running.events.subscribe();

    // Added: checked at once, then every second.
    let site = running
        .websites
        .create(&NewWebsite {
            name: "moving",
            url: &first.url("/ok"),
            ..Default::default()
        })
        .await
        .unwrap();
    eventually(5, "a check of the new website", || async {
        (first.hits() >= 2).then_some(())
    })
    .await;
    // The writer announces what it stored.
    let completed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Ok(Event::CheckCompleted(c)) = events.recv().await {
                break c;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(completed.website_id, site.id);

    // Changed: the new URL is used.
    running
        .websites
        .update(
            site.id,
            &WebsitePatch {
                url: Some(&second.url("/status/500")),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    eventually(5, "checks against the new URL", || async {
        (second.hits() >= 2).then_some(())
    })
    .await;
    eventually(5, "the website to turn DOWN", || async {
        let w = running.store.website(site.id).await.unwrap().unwrap();
        (w.status() == sitepulse::domain::Status::Down).then_some(())
    })
    .await;

    // Paused: no more checks.
    running
        .websites
        .update(
            site.id,
            &WebsitePatch {
                paused: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let paused_at = second.hits();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(second.hits(), paused_at, "a paused website is not checked");

    // Resumed, then deleted: checks resume, then stop.
    running
        .websites
        .update(
            site.id,
            &WebsitePatch {
                paused: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    eventually(5, "checks after resuming", || async {
        (second.hits() > paused_at).then_some(())
    })
    .await;
    running.websites.delete(site.id).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let deleted_at = second.hits();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        second.hits(),
        deleted_at,
        "a deleted website is not checked"
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overloaded_checker_skips_slots_instead_of_falling_behind() {
    let silent = targets::silent_server().await;
    // One check at a time, three websites whose every check takes 900 ms of each
    // second: nearly three times what the checker can do.
    let running = Running::start_with(TestDb::sqlite(), every_second(), 1).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let site = running
            .websites
            .create(&NewWebsite {
                name: &format!("slow {i}"),
                url: &format!("http://{silent}/"),
                interval: Some(Duration::from_secs(1)),
                timeout: Some(Duration::from_millis(900)),
            })
            .await
            .unwrap();
        ids.push(site.id);
    }
    tokio::time::sleep(Duration::from_secs(9)).await;
    let store = running.store.clone();
    running.stop().await;

    let mut total = 0;
    for id in ids {
        let mut checks = store.recent_checks(id, None, 100).await.unwrap();
        checks.reverse();
        assert!(
            checks.len() >= 2,
            "every website still gets checked: {checks:?}"
        );
        total += checks.len();
        for pair in checks.windows(2) {
            let ended = pair[0].checked_at
                + chrono::Duration::milliseconds(i64::from(pair[0].response_time_ms));
            assert!(
                pair[1].checked_at >= ended,
                "a website's checks never overlap: {pair:?}"
            );
        }
        for check in &checks {
            // Queued without bound, the last checks would start about 5 s late.
            let late = check.checked_at - check.slot;
            assert!(
                late < chrono::Duration::seconds(3),
                "{late} late: {check:?}"
            );
        }
    }
    assert!(
        total <= 12,
        "about one check per 900 ms, not one per slot: {total}"
    );
}
