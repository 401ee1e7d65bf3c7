//! The store suite: every operation, run against a SQLite file and a real PostgreSQL.

#[macro_use]
mod common;

use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use common::TestDb;
use sitepulse::domain::{
    Check, CheckDefaults, CheckError, ErrorKind, NewWebsite, Status, WebsiteId, WebsitePatch,
    WebsiteSpec,
};
use sitepulse::store::DynStore;

both_databases!(
    websites_are_created_listed_updated_and_deleted,
    a_slot_is_stored_once,
    checks_of_deleted_websites_are_dropped_quietly,
    current_status_and_changes,
    recent_checks_page_newest_first,
    daily_history_with_gaps_and_averages,
    daily_history_follows_daylight_saving_in_zurich,
    uptime_windows,
    retention_prunes_raw_checks_but_keeps_history,
    deleting_a_website_deletes_its_history,
    newest_checks_and_day_counts_of_every_website_in_one_read,
    check_series_counts_each_bucket,
    compaction_changes_nothing_a_reader_sees,
);

fn spec(name: &str, url: &str) -> WebsiteSpec {
    NewWebsite {
        name,
        url,
        ..Default::default()
    }
    .parse(CheckDefaults::default())
    .unwrap()
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn check(website: WebsiteId, slot: DateTime<Utc>, up: bool, ms: u32) -> Check {
    Check {
        website_id: website,
        slot,
        checked_at: slot + chrono::Duration::milliseconds(7),
        up,
        status_code: Some(if up { 200 } else { 503 }),
        response_time_ms: ms,
        error: (!up).then(|| CheckError {
            kind: ErrorKind::Http,
            message: "HTTP status 503".into(),
        }),
    }
}

async fn new_site(store: &DynStore, name: &str) -> WebsiteId {
    store
        .create_website(&spec(name, "https://example.com/"))
        .await
        .unwrap()
        .id
}

async fn websites_are_created_listed_updated_and_deleted(db: TestDb) {
    let store = db.store().await;
    let zeta = store
        .create_website(&spec("zeta", "https://zeta.example/"))
        .await
        .unwrap();
    let alpha = store
        .create_website(&spec("Alpha", "http://alpha.example/x"))
        .await
        .unwrap();
    assert_eq!(alpha.name, "Alpha");
    assert_eq!(alpha.url, "http://alpha.example/x");
    assert_eq!(alpha.interval, Duration::from_secs(60));
    assert_eq!(alpha.timeout, Duration::from_secs(10));
    assert!(!alpha.paused);
    assert_eq!(alpha.status(), Status::Pending);

    let names: Vec<String> = store
        .websites()
        .await
        .unwrap()
        .into_iter()
        .map(|w| w.name)
        .collect();
    assert_eq!(
        names,
        ["Alpha", "zeta"],
        "ordered by name, case-insensitively"
    );
    // The same order on both databases, for any letters; equal names by id.
    for name in ["ärger", "Ärger", "beta", "BETA"] {
        new_site(&store, name).await;
    }
    let names: Vec<String> = store
        .websites()
        .await
        .unwrap()
        .into_iter()
        .map(|w| w.name)
        .collect();
    assert_eq!(names, ["Alpha", "beta", "BETA", "zeta", "ärger", "Ärger"]);
    for website in store.websites().await.unwrap() {
        if website.id != zeta.id && website.id != alpha.id {
            store.delete_website(website.id).await.unwrap();
        }
    }

    let patch = WebsitePatch {
        name: Some("Zeta shop"),
        interval: Some(Duration::from_secs(30)),
        paused: Some(true),
        ..Default::default()
    };
    let changed = store
        .update_website(zeta.id, &patch.apply(&zeta).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(changed.name, "Zeta shop");
    assert_eq!(changed.interval, Duration::from_secs(30));
    assert!(changed.paused);
    assert_eq!(changed.url, "https://zeta.example/");
    assert_eq!(store.website(zeta.id).await.unwrap().unwrap(), changed);

    let deleted = store.delete_website(alpha.id).await.unwrap().unwrap();
    assert_eq!(deleted.id, alpha.id);
    assert!(store.website(alpha.id).await.unwrap().is_none());
    assert!(store.delete_website(alpha.id).await.unwrap().is_none());
    assert!(
        store
            .update_website(alpha.id, &spec("x", "http://x.example"))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.websites().await.unwrap().len(), 1);
}

async fn a_slot_is_stored_once(db: TestDb) {
    let store = db.store().await;
    let id = new_site(&store, "once").await;
    let slot = at("2026-05-01T10:00:00Z");
    let first = store
        .record_checks(&[check(id, slot, true, 100)])
        .await
        .unwrap();
    assert_eq!(first.stored.len(), 1);
    // The same slot again, alone and twice in one batch (two leaders at once).
    let again = store
        .record_checks(&[check(id, slot, false, 5), check(id, slot, false, 6)])
        .await
        .unwrap();
    assert!(again.stored.is_empty());
    let checks = store.recent_checks(id, None, 10).await.unwrap();
    assert_eq!(checks.len(), 1);
    assert!(checks[0].up, "the first write wins");
    let day = NaiveDate::from_ymd_opt(2026, 5, 1).unwrap();
    let history = store.daily_history(id, day, day).await.unwrap();
    assert_eq!(history[0].checks, 1, "the aggregate counts the slot once");
}

async fn checks_of_deleted_websites_are_dropped_quietly(db: TestDb) {
    let store = db.store().await;
    let kept = new_site(&store, "kept").await;
    let gone = new_site(&store, "gone").await;
    store.delete_website(gone).await.unwrap();
    let slot = at("2026-05-01T10:00:00Z");
    let recorded = store
        .record_checks(&[
            check(gone, slot, true, 1),
            check(kept, slot, true, 1),
            check(999_999, slot, true, 1),
        ])
        .await
        .unwrap();
    assert_eq!(recorded.stored.len(), 1);
    assert_eq!(recorded.stored[0].website_id, kept);
}

async fn current_status_and_changes(db: TestDb) {
    let store = db.store().await;
    let id = new_site(&store, "flappy").await;
    let t0 = at("2026-05-01T10:00:00Z");
    let minute = chrono::Duration::minutes(1);

    let first = store
        .record_checks(&[check(id, t0, true, 80)])
        .await
        .unwrap();
    assert!(
        first.changes.is_empty(),
        "PENDING to UP is no change between UP and DOWN"
    );
    let site = store.website(id).await.unwrap().unwrap();
    assert_eq!(site.status(), Status::Up);
    assert_eq!(
        site.status_since,
        Some(t0 + chrono::Duration::milliseconds(7))
    );

    let down = store
        .record_checks(&[
            check(id, t0 + minute, false, 0),
            check(id, t0 + minute * 2, false, 0),
        ])
        .await
        .unwrap();
    assert_eq!(down.changes.len(), 1);
    assert_eq!(down.changes[0].previous, Status::Up);
    assert_eq!(down.changes[0].current, Status::Down);
    assert_eq!(down.changes[0].check.slot, t0 + minute);
    let site = store.website(id).await.unwrap().unwrap();
    assert_eq!(site.status(), Status::Down);
    let last = site.last_check.unwrap();
    assert_eq!(last.slot, t0 + minute * 2);
    assert_eq!(last.status_code, Some(503));
    assert_eq!(last.error.unwrap().kind, ErrorKind::Http);
    assert_eq!(
        site.status_since,
        Some(t0 + minute + chrono::Duration::milliseconds(7))
    );

    // A late check for an older slot is history, not the current state.
    let late = store
        .record_checks(&[check(id, t0 - minute, true, 10)])
        .await
        .unwrap();
    assert_eq!(late.stored.len(), 1);
    assert!(late.changes.is_empty());
    assert_eq!(
        store.website(id).await.unwrap().unwrap().status(),
        Status::Down
    );

    let up = store
        .record_checks(&[check(id, t0 + minute * 3, true, 90)])
        .await
        .unwrap();
    assert_eq!(up.changes.len(), 1);
    assert_eq!(
        (up.changes[0].previous, up.changes[0].current),
        (Status::Down, Status::Up)
    );
}

async fn recent_checks_page_newest_first(db: TestDb) {
    let store = db.store().await;
    let id = new_site(&store, "paged").await;
    let other = new_site(&store, "other").await;
    let t0 = at("2026-05-01T10:00:00Z");
    let mut batch: Vec<Check> = (0..25)
        .map(|i| check(id, t0 + chrono::Duration::minutes(i), i % 5 != 0, i as u32))
        .collect();
    batch.push(Check {
        website_id: other,
        slot: t0,
        checked_at: t0,
        up: false,
        status_code: None,
        response_time_ms: 3000,
        error: Some(CheckError {
            kind: ErrorKind::Connect,
            message: "Connection refused (os error 111)".into(),
        }),
    });
    store.record_checks(&batch).await.unwrap();

    let page = store.recent_checks(id, None, 10).await.unwrap();
    assert_eq!(page.len(), 10);
    assert_eq!(page[0].slot, t0 + chrono::Duration::minutes(24));
    assert!(page.windows(2).all(|w| w[0].slot > w[1].slot));
    assert_eq!(
        page[0].checked_at,
        page[0].slot + chrono::Duration::milliseconds(7)
    );
    let next = store
        .recent_checks(id, Some(page[9].slot), 100)
        .await
        .unwrap();
    assert_eq!(next.len(), 15);
    assert_eq!(next[0].slot, t0 + chrono::Duration::minutes(14));

    let failed = store.recent_checks(other, None, 10).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].status_code, None);
    assert_eq!(failed[0].response_time_ms, 3000);
    assert_eq!(
        failed[0].error,
        Some(CheckError {
            kind: ErrorKind::Connect,
            message: "Connection refused (os error 111)".into()
        })
    );
}

async fn daily_history_with_gaps_and_averages(db: TestDb) {
    let store = db.store().await;
    let id = new_site(&store, "history").await;
    let day1 = at("2026-05-01T00:00:00Z");
    let day3 = at("2026-05-03T00:00:00Z");
    // Day 1: 100 checks, all up, 10..=109 ms. Day 3: 200 checks, one down (no response).
    let mut batch: Vec<Check> = (0..100)
        .map(|i| check(id, day1 + chrono::Duration::minutes(i), true, 10 + i as u32))
        .collect();
    for i in 0..200 {
        let mut c = check(id, day3 + chrono::Duration::minutes(i), true, 50);
        if i == 7 {
            c.up = false;
            c.status_code = None;
            c.response_time_ms = 10_000;
            c.error = Some(CheckError {
                kind: ErrorKind::Timeout,
                message: "no response within the timeout".into(),
            });
        }
        batch.push(c);
    }
    // Written in several batches, as the writer would.
    for part in batch.chunks(64) {
        store.record_checks(part).await.unwrap();
    }
    let from = NaiveDate::from_ymd_opt(2026, 4, 20).unwrap();
    let to = NaiveDate::from_ymd_opt(2026, 5, 19).unwrap();
    let history = store.daily_history(id, from, to).await.unwrap();
    assert_eq!(
        history.len(),
        2,
        "the day without checks is absent: {history:?}"
    );
    assert_eq!(
        history[0].date,
        NaiveDate::from_ymd_opt(2026, 5, 1).unwrap()
    );
    assert_eq!(history[0].checks, 100);
    assert_eq!(history[0].availability(), 100.0);
    assert_eq!(history[0].avg_response_time_ms, Some(59.5));
    assert_eq!(
        history[1].date,
        NaiveDate::from_ymd_opt(2026, 5, 3).unwrap()
    );
    assert_eq!(history[1].checks, 200);
    assert_eq!(history[1].availability(), 99.5);
    // The timed-out check got no response and does not count towards the average.
    assert_eq!(history[1].avg_response_time_ms, Some(50.0));
    assert_eq!(history[1].colour(), sitepulse::domain::Colour::Yellow);
}

async fn daily_history_follows_daylight_saving_in_zurich(db: TestDb) {
    let zurich: Tz = "Europe/Zurich".parse().unwrap();
    let store = db.store_in(zurich).await;
    let id = new_site(&store, "zurich").await;
    // Europe/Zurich moves from UTC+1 to UTC+2 at 2026-03-29 01:00 UTC, so that
    // local day has 23 hours: 22:00 UTC on the 28th to 22:00 UTC on the 29th.
    let start = at("2026-03-28T20:00:00Z");
    let end = at("2026-03-30T02:00:00Z");
    let mut batch = Vec::new();
    let mut t = start;
    while t < end {
        batch.push(check(id, t, true, 20));
        t += chrono::Duration::minutes(10);
    }
    for part in batch.chunks(100) {
        store.record_checks(part).await.unwrap();
    }
    let from = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
    let to = NaiveDate::from_ymd_opt(2026, 3, 31).unwrap();
    let days: Vec<(String, u32)> = store
        .daily_history(id, from, to)
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.date.to_string(), d.checks))
        .collect();
    let expected = [
        // 20:00 to 23:00 UTC on the 28th is 21:00 to midnight local: 3 hours.
        ("2026-03-28".to_owned(), 3 * 6),
        // The short day: 23 hours of ten-minute checks.
        ("2026-03-29".to_owned(), 23 * 6),
        // 22:00 UTC on the 29th to 02:00 UTC on the 30th is midnight to 04:00 local.
        ("2026-03-30".to_owned(), 4 * 6),
    ];
    assert_eq!(days, expected);
    let local_midnight = zurich
        .with_ymd_and_hms(2026, 3, 29, 0, 0, 0)
        .unwrap()
        .with_timezone(&Utc);
    assert_eq!(local_midnight, at("2026-03-28T23:00:00Z"));
}

async fn uptime_windows(db: TestDb) {
    let store = db.store().await;
    let id = new_site(&store, "uptime").await;
    let now = Utc::now();
    // An outage 3 days ago, all good in the last 24 hours.
    let mut batch = Vec::new();
    for h in 0..24 * 5 {
        let t = now - chrono::Duration::hours(h) - chrono::Duration::minutes(1);
        let up = !(70..74).contains(&h);
        batch.push(check(id, t, up, 100));
    }
    store.record_checks(&batch).await.unwrap();
    let day = store
        .tally_since(id, now - chrono::Duration::hours(24))
        .await
        .unwrap();
    let week = store
        .tally_since(id, now - chrono::Duration::days(7))
        .await
        .unwrap();
    assert!(day.checks >= 24 && day.checks <= 25, "{day:?}");
    assert_eq!(day.uptime(), Some(100.0));
    assert_eq!(week.checks, 120);
    assert_eq!(week.up_checks, 116);
    assert!((week.uptime().unwrap() - 96.666).abs() < 0.01);
    assert_eq!(week.avg_response_time_ms(), Some(100.0));
    let nothing = store.tally_since(id + 1000, now).await.unwrap();
    assert_eq!(nothing.uptime(), None);
}

async fn retention_prunes_raw_checks_but_keeps_history(db: TestDb) {
    let store = db.store().await;
    let id = new_site(&store, "old").await;
    let now = Utc::now();
    let old: Vec<Check> = (0..250)
        .map(|i| {
            check(
                id,
                now - chrono::Duration::days(40) + chrono::Duration::minutes(i),
                true,
                5,
            )
        })
        .collect();
    let recent: Vec<Check> = (0..10)
        .map(|i| {
            check(
                id,
                now - chrono::Duration::hours(1) + chrono::Duration::minutes(i),
                true,
                5,
            )
        })
        .collect();
    store.record_checks(&old).await.unwrap();
    store.record_checks(&recent).await.unwrap();

    let before = now - chrono::Duration::days(31);
    // Small batches: never more than asked for.
    assert_eq!(store.prune_checks(id, before, 100).await.unwrap(), 100);
    assert_eq!(store.prune_checks(id, before, 100).await.unwrap(), 100);
    assert_eq!(store.prune_checks(id, before, 100).await.unwrap(), 50);
    assert_eq!(store.prune_checks(id, before, 100).await.unwrap(), 0);
    let left = store.recent_checks(id, None, 1000).await.unwrap();
    assert_eq!(left.len(), 10, "recent checks are kept");

    let old_day = (now - chrono::Duration::days(40)).date_naive();
    let history = store
        .daily_history(id, old_day - chrono::Duration::days(1), now.date_naive())
        .await
        .unwrap();
    let total: u32 = history.iter().map(|d| d.checks).sum();
    assert_eq!(total, 260, "daily history outlives the raw checks");

    // Aggregates go only when past their own retention.
    assert_eq!(
        store
            .prune_aggregates(now - chrono::Duration::days(400))
            .await
            .unwrap(),
        0
    );
    assert!(
        store
            .prune_aggregates(now - chrono::Duration::days(35))
            .await
            .unwrap()
            > 0
    );
    let history = store
        .daily_history(id, old_day - chrono::Duration::days(1), now.date_naive())
        .await
        .unwrap();
    assert_eq!(history.iter().map(|d| d.checks).sum::<u32>(), 10);
}

async fn deleting_a_website_deletes_its_history(db: TestDb) {
    let store = db.store().await;
    let id = new_site(&store, "doomed").await;
    let t = at("2026-05-01T10:00:00Z");
    store.record_checks(&[check(id, t, true, 1)]).await.unwrap();
    store.delete_website(id).await.unwrap().unwrap();
    assert!(store.recent_checks(id, None, 10).await.unwrap().is_empty());
    let day = t.date_naive();
    assert!(store.daily_history(id, day, day).await.unwrap().is_empty());
    assert_eq!(
        store
            .tally_since(id, t - chrono::Duration::days(1))
            .await
            .unwrap()
            .checks,
        0
    );
}

/// History as pages ask for it: the last N calendar days in the configured zone.
mod history {
    use super::*;
    use sitepulse::events::EventBus;
    use sitepulse::websites::{WebsiteError, Websites};

    #[tokio::test]
    async fn the_last_30_days_including_today_and_uptime_windows() {
        let tokyo: Tz = "Asia/Tokyo".parse().unwrap();
        let db = TestDb::sqlite();
        let store = db.store_in(tokyo).await;
        let websites = Websites::new(
            store.clone(),
            EventBus::default(),
            CheckDefaults::default(),
            tokyo,
        );
        let id = new_site(&store, "tokyo").await;
        let now = Utc::now();
        let batch: Vec<Check> = [0i64, 2, 10, 28, 31, 45]
            .iter()
            .map(|days| {
                check(
                    id,
                    now - chrono::Duration::days(*days) - chrono::Duration::minutes(5),
                    *days != 10,
                    100,
                )
            })
            .collect();
        store.record_checks(&batch).await.unwrap();

        let history = websites.history(id, 30).await.unwrap();
        let today = now.with_timezone(&tokyo).date_naive();
        let dates: Vec<NaiveDate> = history.iter().map(|d| d.date).collect();
        // 28 days ago is inside (today and the 29 days before it); 31 and 45 days ago are not.
        assert_eq!(dates.len(), 4, "{dates:?}");
        assert_eq!(
            *dates.last().unwrap(),
            (now - chrono::Duration::minutes(5))
                .with_timezone(&tokyo)
                .date_naive()
        );
        assert!(
            dates
                .iter()
                .all(|d| *d > today - chrono::Duration::days(30))
        );
        assert_eq!(websites.history(id, 90).await.unwrap().len(), 6);
        assert!(matches!(
            websites.history(id, 0).await,
            Err(WebsiteError::Invalid(_))
        ));
        assert!(matches!(
            websites.history(id, 401).await,
            Err(WebsiteError::Invalid(_))
        ));

        let uptime = websites.uptime(id).await.unwrap();
        assert_eq!(uptime.day.checks, 1);
        assert_eq!(uptime.day.uptime(), Some(100.0));
        assert_eq!(uptime.week.checks, 2);
        assert_eq!(uptime.month.checks, 4);
        assert_eq!(uptime.month.uptime(), Some(75.0));
    }
}

async fn newest_checks_and_day_counts_of_every_website_in_one_read(db: TestDb) {
    let store = db.store().await;
    let busy = new_site(&store, "busy").await;
    let quiet = new_site(&store, "quiet").await;
    let never = new_site(&store, "never").await;
    // Whole seconds: both databases keep at least that precision.
    let now = DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap();
    let mut batch = Vec::new();
    for m in 0..50 {
        batch.push(check(
            busy,
            now - chrono::Duration::minutes(m),
            m % 10 != 3,
            40,
        ));
    }
    batch.push(check(quiet, now - chrono::Duration::hours(30), false, 90));
    batch.push(check(quiet, now - chrono::Duration::minutes(5), true, 70));
    store.record_checks(&batch).await.unwrap();

    let latest = store.latest_checks(30).await.unwrap();
    let of = |id| {
        latest
            .iter()
            .filter(|c| c.website_id == id)
            .collect::<Vec<_>>()
    };
    let busy_checks = of(busy);
    assert_eq!(busy_checks.len(), 30);
    assert_eq!(busy_checks[0].slot, now - chrono::Duration::minutes(0));
    assert!(
        busy_checks.windows(2).all(|w| w[0].slot > w[1].slot),
        "newest first"
    );
    assert_eq!(busy_checks[29].slot, now - chrono::Duration::minutes(29));
    assert_eq!(of(quiet).len(), 2);
    assert!(of(never).is_empty());
    assert!(store.latest_checks(0).await.unwrap().is_empty());

    let tallies = store
        .tallies_since(now - chrono::Duration::hours(24))
        .await
        .unwrap();
    let tally = |id| tallies.iter().find(|(w, _)| *w == id).map(|(_, t)| *t);
    let busy_day = tally(busy).unwrap();
    assert_eq!((busy_day.checks, busy_day.up_checks), (50, 45));
    let quiet_day = tally(quiet).unwrap();
    assert_eq!(
        (quiet_day.checks, quiet_day.up_checks),
        (1, 1),
        "30 hours ago is outside"
    );
    assert_eq!(tally(never), None);
}

async fn check_series_counts_each_bucket(db: TestDb) {
    let store = db.store().await;
    let id = new_site(&store, "series").await;
    let since = at("2026-03-01T00:00:00Z");
    let mut batch = Vec::new();
    // Minute checks for 20 minutes; the 7th is down; then a gap; one more later.
    for m in 0..20 {
        batch.push(check(
            id,
            since + chrono::Duration::minutes(m),
            m != 7,
            10 * (m as u32 + 1),
        ));
    }
    batch.push(check(id, since + chrono::Duration::minutes(61), true, 33));
    // Before the window: not counted.
    batch.push(check(id, since - chrono::Duration::minutes(1), true, 1));
    store.record_checks(&batch).await.unwrap();

    let series = store
        .check_series(id, since, Duration::from_secs(300))
        .await
        .unwrap();
    let starts: Vec<i64> = series
        .iter()
        .map(|(start, _)| (*start - since).num_minutes())
        .collect();
    assert_eq!(starts, [0, 5, 10, 15, 60]);
    let (_, second) = series[1];
    assert_eq!(
        (second.checks, second.up_checks, second.responses),
        (5, 4, 5)
    );
    assert_eq!(second.response_ms_sum, 60 + 70 + 80 + 90 + 100);
    assert_eq!(series[4].1.checks, 1);
    assert_eq!(series[4].1.avg_response_time_ms(), Some(33.0));
}

/// PostgreSQL packs hours that are over into one row per website and hour; SQLite
/// keeps its rows. Either way every read gives the same answers before and after,
/// a slot stays stored once, and late checks and retention still work.
async fn compaction_changes_nothing_a_reader_sees(db: TestDb) {
    use sitepulse::checker::Retention;
    use tokio_util::sync::CancellationToken;

    let store = db.store().await;
    let minutely = new_site(&store, "minutely").await;
    let hourly = new_site(&store, "hourly").await;
    let now = Utc::now();
    let hour = |t: DateTime<Utc>| DateTime::from_timestamp(t.timestamp() / 3600 * 3600, 0).unwrap();
    let base = hour(now) - chrono::Duration::hours(6);
    let mut old = Vec::new();
    for m in 0..300 {
        let slot = base + chrono::Duration::milliseconds(m * 60_000 + 123);
        let mut c = check(minutely, slot, m % 17 != 0, 20 + (m as u32 % 50));
        if m % 51 == 0 {
            // A timeout: no status code, an error message with odd characters.
            c.status_code = None;
            c.error = Some(CheckError {
                kind: ErrorKind::Timeout,
                message: "no response within the timeout — «ü»".into(),
            });
        }
        old.push(c);
    }
    let hours_of_hourly: Vec<Check> = (0..3)
        .map(|h| check(hourly, base + chrono::Duration::hours(h * 2), true, 90))
        .collect();
    let fresh: Vec<Check> = (1..=20)
        .map(|m| check(minutely, now - chrono::Duration::minutes(m), true, 11))
        .collect();
    for batch in [&old, &hours_of_hourly, &fresh] {
        store.record_checks(batch).await.unwrap();
    }

    let middle = base + chrono::Duration::minutes(150);
    let snapshot = || async {
        (
            store.recent_checks(minutely, None, 1000).await.unwrap(),
            store
                .recent_checks(minutely, Some(middle), 25)
                .await
                .unwrap(),
            store.recent_checks(hourly, None, 10).await.unwrap(),
            store.latest_checks(30).await.unwrap(),
            store
                .check_series(
                    minutely,
                    base + chrono::Duration::minutes(30),
                    Duration::from_secs(300),
                )
                .await
                .unwrap(),
            store
                .daily_history(
                    minutely,
                    base.date_naive() - chrono::Duration::days(1),
                    now.date_naive() + chrono::Duration::days(1),
                )
                .await
                .unwrap(),
        )
    };
    let before = snapshot().await;
    assert_eq!(before.0.len(), 320);
    assert_eq!(before.1.len(), 25);
    assert!(before.1.iter().all(|c| c.slot < middle));
    assert_eq!(before.2.len(), 3);

    let pass = Retention::default()
        .prune_once(&store, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(pass.checks, 0, "nothing is past its retention");
    match db.backend() {
        "postgres" => assert_eq!(
            pass.compacted, 303,
            "every check of a finished hour is packed"
        ),
        _ => assert_eq!(pass.compacted, 0),
    }
    assert_eq!(
        snapshot().await,
        before,
        "reads are unchanged by compaction"
    );

    // The same checks again (a retried batch, a second leader): nothing is stored twice.
    let again = store.record_checks(&old).await.unwrap();
    assert!(again.stored.is_empty(), "a compacted slot is still taken");
    assert_eq!(snapshot().await, before);

    // A check that arrives late for a compacted hour is stored, read in order, and
    // merged into its hour at the next pass.
    let late = check(minutely, base + chrono::Duration::seconds(90), false, 7);
    assert_eq!(
        store
            .record_checks(std::slice::from_ref(&late))
            .await
            .unwrap()
            .stored
            .len(),
        1
    );
    let all = store.recent_checks(minutely, None, 1000).await.unwrap();
    assert_eq!(all.len(), 321);
    assert!(
        all.windows(2).all(|w| w[0].slot > w[1].slot),
        "newest first"
    );
    assert_eq!(
        all[all.len() - 3],
        late,
        "between the first and the second minute"
    );
    Retention::default()
        .prune_once(&store, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(
        store.recent_checks(minutely, None, 1000).await.unwrap(),
        all
    );

    // Retention removes whole hours before its cut-off.
    let cut = base + chrono::Duration::hours(2);
    let mut pruned = 0;
    loop {
        let n = store.prune_checks(minutely, cut, 100).await.unwrap();
        pruned += n;
        if n == 0 {
            break;
        }
    }
    assert_eq!(pruned, 121, "two hours of minute checks and the late one");
    let left = store.recent_checks(minutely, None, 1000).await.unwrap();
    assert_eq!(left.len(), 200);
    assert!(left.iter().all(|c| c.slot >= cut));
}
