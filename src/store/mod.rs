//! The database: one interface, [`Store`], and two implementations, SQLite (the
//! embedded default) and PostgreSQL (production and clusters).
//!
//! Both keep the same model: websites with their current state, raw checks (one
//! per website and slot, pruned after the retention period), and hourly and daily
//! aggregates that are updated in the same transaction as the checks they count.
//! Pages and the API read history from the aggregates, so their cost does not grow
//! with the number of raw checks.

pub mod accounts;
mod postgres;
mod sqlite;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::domain::{Check, DayStat, Status, Tally, Website, WebsiteId, WebsiteSpec};
use crate::events::StatusChange;

pub use accounts::{AccountStore, SessionCutoffs};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("migrating the database failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("the database holds a value this version cannot read: {0}")]
    Corrupt(String),
}

/// Which database a store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// What a batch of checks changed.
#[derive(Debug, Default)]
pub struct Recorded {
    /// The checks that were stored; duplicates of an existing website and slot are left out.
    pub stored: Vec<Check>,
    /// Websites that went from UP to DOWN or back, in the order it happened.
    pub changes: Vec<StatusChange>,
}

#[async_trait]
pub trait Store: AccountStore + Send + Sync + 'static {
    fn backend(&self) -> Backend;
    async fn migrate(&self) -> Result<()>;
    /// Cheap round trip for readiness probes.
    async fn ping(&self) -> Result<()>;

    async fn create_website(&self, spec: &WebsiteSpec) -> Result<Website>;
    /// `None` when no such website exists.
    async fn update_website(&self, id: WebsiteId, spec: &WebsiteSpec) -> Result<Option<Website>>;
    /// Deletes the website with its checks and aggregates; returns it as it was.
    async fn delete_website(&self, id: WebsiteId) -> Result<Option<Website>>;
    async fn website(&self, id: WebsiteId) -> Result<Option<Website>>;
    /// All websites in list order (see [`list_order`]), each with its last check.
    async fn websites(&self) -> Result<Vec<Website>>;

    /// Stores a batch of checks in one transaction, with their aggregates and the
    /// websites' current state. A check whose website and slot are already stored,
    /// or whose website no longer exists, is dropped quietly.
    async fn record_checks(&self, checks: &[Check]) -> Result<Recorded>;
    /// The newest checks of a website, newest first, with slots before `before`.
    async fn recent_checks(
        &self,
        website: WebsiteId,
        before: Option<DateTime<Utc>>,
        limit: u32,
    ) -> Result<Vec<Check>>;
    /// Daily statistics for the calendar days `from..=to` (in the store's time zone);
    /// days without checks are absent. Oldest first.
    async fn daily_history(
        &self,
        website: WebsiteId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DayStat>>;
    /// Counts over the whole hours from the one containing `since` up to now.
    async fn tally_since(&self, website: WebsiteId, since: DateTime<Utc>) -> Result<Tally>;
    /// [`Store::tally_since`] for every website that has checks in the window, in one read.
    async fn tallies_since(&self, since: DateTime<Utc>) -> Result<Vec<(WebsiteId, Tally)>>;
    /// The newest `per_website` checks of every website, newest first within each
    /// website, in one read.
    async fn latest_checks(&self, per_website: u32) -> Result<Vec<Check>>;
    /// A website's raw checks from `since` on, counted in consecutive buckets of
    /// `bucket` length; each entry is the bucket's start and its counts. Buckets
    /// without checks are absent. Oldest first.
    async fn check_series(
        &self,
        website: WebsiteId,
        since: DateTime<Utc>,
        bucket: Duration,
    ) -> Result<Vec<(DateTime<Utc>, Tally)>>;

    /// Deletes at most `limit` of a website's raw checks with slots before `before`,
    /// oldest first; returns how many. Walking the primary key per website keeps each
    /// call short, whatever the size of the table.
    async fn prune_checks(
        &self,
        website: WebsiteId,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64>;
    /// Deletes hourly and daily aggregates older than `before`; returns how many.
    async fn prune_aggregates(&self, before: DateTime<Utc>) -> Result<u64>;

    /// Moves a website's raw checks with slots before `before` into compact storage,
    /// at most a day of them per call; returns how many moved (0: nothing left).
    /// Reads see no difference. A store whose rows are compact as written does
    /// nothing.
    async fn compact_checks(&self, _website: WebsiteId, _before: DateTime<Utc>) -> Result<u64> {
        Ok(0)
    }
}

pub type DynStore = Arc<dyn Store>;

/// How to reach the database; parsed from `--database-url`.
#[derive(Clone)]
pub enum DatabaseUrl {
    Sqlite(String),
    Postgres(String),
}

impl DatabaseUrl {
    /// `postgres://` or `postgresql://` select PostgreSQL; `sqlite:` URLs and plain
    /// file paths select SQLite.
    pub fn parse(raw: &str) -> Self {
        let raw = raw.trim();
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            DatabaseUrl::Postgres(raw.to_owned())
        } else {
            DatabaseUrl::Sqlite(raw.to_owned())
        }
    }

    /// The URL with any password replaced, fit for logs and error messages.
    pub fn redacted(&self) -> String {
        match self {
            DatabaseUrl::Sqlite(path) => format!("SQLite database {path}"),
            DatabaseUrl::Postgres(raw) => {
                let shown = match url::Url::parse(raw) {
                    Ok(mut url) => {
                        if url.password().is_some() {
                            let _ = url.set_password(Some("***"));
                        }
                        url.to_string()
                    }
                    Err(_) => "(unparseable URL)".to_owned(),
                };
                format!("PostgreSQL database {shown}")
            }
        }
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Options every store shares.
#[derive(Debug, Clone, Copy)]
pub struct StoreOptions {
    /// The zone whose calendar days the daily history uses.
    pub timezone: Tz,
    /// How long to wait for a free connection before giving up.
    pub acquire_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            timezone: Tz::UTC,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// Opens the database (creating a SQLite file if missing). Does not migrate.
pub async fn connect(url: &DatabaseUrl, options: StoreOptions) -> Result<DynStore> {
    Ok(match url {
        DatabaseUrl::Sqlite(path) => Arc::new(SqliteStore::open(path, options).await?),
        DatabaseUrl::Postgres(raw) => Arc::new(PostgresStore::connect(raw, options).await?),
    })
}

/// Counts for one website and one aggregate bucket.
type Buckets<K> = BTreeMap<(WebsiteId, K), Tally>;

/// Sums a batch of stored checks into hourly (UTC) and daily (local) buckets.
fn aggregate(checks: &[Check], tz: Tz) -> (Buckets<i64>, Buckets<NaiveDate>) {
    let mut hours = Buckets::new();
    let mut days = Buckets::new();
    for check in checks {
        let hour = hour_start(check.slot);
        hours
            .entry((check.website_id, hour))
            .or_default()
            .add(check);
        let day = check.slot.with_timezone(&tz).date_naive();
        days.entry((check.website_id, day)).or_default().add(check);
    }
    (hours, days)
}

/// Seconds since the epoch of the start of the UTC hour holding `t`.
fn hour_start(t: DateTime<Utc>) -> i64 {
    t.timestamp().div_euclid(3600) * 3600
}

/// A website's current state as stored before a batch.
#[derive(Debug, Clone, Copy)]
struct Current {
    last_slot: Option<DateTime<Utc>>,
    last_up: Option<bool>,
}

/// The new current state of one website after a batch.
#[derive(Debug)]
struct NewCurrent<'a> {
    check: &'a Check,
    /// `Some` when the status changed (or was first set) in this batch.
    status_since: Option<DateTime<Utc>>,
}

/// Works out, from the stored checks of a batch and the state before it, each
/// website's new current state and the UP/DOWN changes, in slot order. Checks older
/// than the website's last check are kept as history but change nothing.
fn plan_current<'a>(
    stored: &'a [Check],
    before: &HashMap<WebsiteId, Current>,
) -> (Vec<NewCurrent<'a>>, Vec<StatusChange>) {
    let mut by_site: BTreeMap<WebsiteId, Vec<&Check>> = BTreeMap::new();
    for check in stored {
        by_site.entry(check.website_id).or_default().push(check);
    }
    let mut updates = Vec::new();
    let mut changes = Vec::new();
    for (id, mut checks) in by_site {
        let Some(current) = before.get(&id) else {
            continue;
        };
        checks.sort_by_key(|c| c.slot);
        let mut last_up = current.last_up;
        let mut newest = None;
        let mut since = None;
        for check in checks {
            if current.last_slot.is_some_and(|last| check.slot <= last) {
                continue;
            }
            if let Some(previous) = last_up
                && previous != check.up
            {
                changes.push(StatusChange {
                    website_id: id,
                    previous: Status::from_last_up(Some(previous)),
                    current: Status::from_last_up(Some(check.up)),
                    check: check.clone(),
                });
            }
            if last_up != Some(check.up) {
                since = Some(check.checked_at);
            }
            last_up = Some(check.up);
            newest = Some(check);
        }
        if let Some(check) = newest {
            updates.push(NewCurrent {
                check,
                status_since: since,
            });
        }
    }
    (updates, changes)
}

fn day_stat(date: NaiveDate, checks: i64, up: i64, sum: i64, responses: i64) -> DayStat {
    DayStat {
        date,
        checks: u32::try_from(checks).unwrap_or(u32::MAX),
        up_checks: u32::try_from(up).unwrap_or(u32::MAX),
        avg_response_time_ms: (responses > 0).then(|| sum as f64 / responses as f64),
    }
}

fn tally(checks: Option<i64>, up: Option<i64>, sum: Option<i64>, responses: Option<i64>) -> Tally {
    let n = |v: Option<i64>| u64::try_from(v.unwrap_or(0)).unwrap_or(0);
    Tally {
        checks: n(checks),
        up_checks: n(up),
        response_ms_sum: n(sum),
        responses: n(responses),
    }
}

/// `(website, checks, up, response sum, responses)` rows as read from the database.
fn tallies(rows: Vec<(WebsiteId, i64, i64, i64, i64)>) -> Vec<(WebsiteId, Tally)> {
    rows.into_iter()
        .map(|(id, checks, up, sum, responses)| {
            (
                id,
                tally(Some(checks), Some(up), Some(sum), Some(responses)),
            )
        })
        .collect()
}

/// Bucket number and counts as read from the database, turned into a series.
fn series(
    since: DateTime<Utc>,
    bucket: Duration,
    rows: Vec<(i64, i64, i64, i64, i64)>,
) -> Vec<(DateTime<Utc>, Tally)> {
    let bucket_ms = i64::try_from(bucket.as_millis()).unwrap_or(i64::MAX);
    rows.into_iter()
        .map(|(index, checks, up, sum, responses)| {
            let start = since + chrono::Duration::milliseconds(index.saturating_mul(bucket_ms));
            (
                start,
                tally(Some(checks), Some(up), Some(sum), Some(responses)),
            )
        })
        .collect()
}

fn millis_to_time(ms: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| StoreError::Corrupt(format!("timestamp {ms} ms is out of range")))
}

fn duration_to_millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn millis_to_duration(ms: i64) -> Result<Duration> {
    u64::try_from(ms)
        .map(Duration::from_millis)
        .map_err(|_| StoreError::Corrupt(format!("negative duration {ms} ms")))
}

fn error_from_columns(
    kind: Option<String>,
    message: Option<String>,
) -> Result<Option<crate::domain::CheckError>> {
    let Some(kind) = kind else { return Ok(None) };
    let kind = crate::domain::ErrorKind::parse(&kind)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown error kind {kind:?}")))?;
    Ok(Some(crate::domain::CheckError {
        kind,
        message: message.unwrap_or_default(),
    }))
}

fn status_code_from_column(code: Option<i64>) -> Result<Option<u16>> {
    code.map(|c| u16::try_from(c).map_err(|_| StoreError::Corrupt(format!("status code {c}"))))
        .transpose()
}

/// Puts websites in the order every list shows them: by name ignoring case, then
/// by id. Sorted here rather than by the database, so both databases give the same
/// order for any name and the database spends no time on it.
pub fn list_order(websites: &mut [Website]) {
    websites.sort_by_cached_key(|w| (w.name.to_lowercase(), w.id));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_the_log() {
        let url = DatabaseUrl::parse("postgres://app:s3cret@db:5432/sitepulse");
        let shown = url.redacted();
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("app:***@db:5432/sitepulse"), "{shown}");
        assert!(matches!(
            DatabaseUrl::parse("sitepulse.db"),
            DatabaseUrl::Sqlite(_)
        ));
        assert!(matches!(
            DatabaseUrl::parse("sqlite://x.db"),
            DatabaseUrl::Sqlite(_)
        ));
    }

    fn check(id: WebsiteId, secs: i64, up: bool) -> Check {
        let t = DateTime::from_timestamp(secs, 0).unwrap();
        Check {
            website_id: id,
            slot: t,
            checked_at: t,
            up,
            status_code: Some(if up { 200 } else { 500 }),
            response_time_ms: 10,
            error: None,
        }
    }

    #[test]
    fn changes_are_found_in_slot_order() {
        let stored = vec![check(1, 30, true), check(1, 10, false), check(1, 20, false)];
        let before = HashMap::from([(
            1,
            Current {
                last_slot: Some(DateTime::from_timestamp(5, 0).unwrap()),
                last_up: Some(true),
            },
        )]);
        let (updates, changes) = plan_current(&stored, &before);
        assert_eq!(changes.len(), 2);
        assert_eq!(
            (changes[0].previous, changes[0].current),
            (Status::Up, Status::Down)
        );
        assert_eq!(changes[0].check.slot.timestamp(), 10);
        assert_eq!(changes[1].check.slot.timestamp(), 30);
        assert_eq!(updates[0].check.slot.timestamp(), 30);
        assert_eq!(updates[0].status_since.unwrap().timestamp(), 30);
    }

    #[test]
    fn the_first_check_sets_status_without_a_change_event() {
        let stored = vec![check(1, 10, false), check(1, 20, false)];
        let before = HashMap::from([(
            1,
            Current {
                last_slot: None,
                last_up: None,
            },
        )]);
        let (updates, changes) = plan_current(&stored, &before);
        assert!(changes.is_empty());
        assert_eq!(updates[0].status_since.unwrap().timestamp(), 10);
    }
}
