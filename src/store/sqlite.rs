//! The embedded default: one SQLite file in WAL mode.
//!
//! Writers are serialised by SQLite itself; every write transaction starts with
//! `BEGIN IMMEDIATE` so that two writers queue on the busy timeout instead of one of
//! them failing when it tries to upgrade a read lock.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{FromRow, Sqlite, Transaction};

use super::{
    Backend, Current, Recorded, Result, Store, StoreError, StoreOptions, aggregate,
    duration_to_millis, error_from_columns, millis_to_duration, millis_to_time, plan_current,
    status_code_from_column,
};
use crate::domain::{Check, DayStat, Tally, Website, WebsiteId, WebsiteSpec};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

const WEBSITE_COLUMNS: &str = "id, name, url, interval_ms, timeout_ms, paused, created_at, \
    updated_at, last_slot, last_delay_ms, last_up, last_status_code, last_response_ms, \
    last_error_kind, last_error_message, status_since";

pub struct SqliteStore {
    pool: SqlitePool,
    timezone: Tz,
}

impl SqliteStore {
    /// Opens (and creates if missing) the database at `path`, which may be a plain
    /// file path or a `sqlite:` URL.
    pub async fn open(path: &str, options: StoreOptions) -> Result<Self> {
        let connect = if path.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(path)?
        } else {
            SqliteConnectOptions::new().filename(path)
        };
        let connect = connect
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await?;
        Ok(Self {
            pool,
            timezone: options.timezone,
        })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}

#[derive(FromRow)]
struct WebsiteRow {
    id: i64,
    name: String,
    url: String,
    interval_ms: i64,
    timeout_ms: i64,
    paused: bool,
    created_at: i64,
    updated_at: i64,
    last_slot: Option<i64>,
    last_delay_ms: Option<i64>,
    last_up: Option<bool>,
    last_status_code: Option<i64>,
    last_response_ms: Option<i64>,
    last_error_kind: Option<String>,
    last_error_message: Option<String>,
    status_since: Option<i64>,
}

impl TryFrom<WebsiteRow> for Website {
    type Error = StoreError;

    fn try_from(row: WebsiteRow) -> Result<Self> {
        let last_check = match (row.last_slot, row.last_up) {
            (Some(slot), Some(up)) => Some(
                CheckRow {
                    website_id: row.id,
                    slot,
                    delay_ms: row.last_delay_ms.unwrap_or(0),
                    up,
                    status_code: row.last_status_code,
                    response_ms: row.last_response_ms.unwrap_or(0),
                    error_kind: row.last_error_kind,
                    error_message: row.last_error_message,
                }
                .try_into()?,
            ),
            _ => None,
        };
        Ok(Website {
            id: row.id,
            name: row.name,
            url: row.url,
            interval: millis_to_duration(row.interval_ms)?,
            timeout: millis_to_duration(row.timeout_ms)?,
            paused: row.paused,
            created_at: millis_to_time(row.created_at)?,
            updated_at: millis_to_time(row.updated_at)?,
            last_check,
            status_since: row.status_since.map(millis_to_time).transpose()?,
        })
    }
}

#[derive(FromRow)]
struct CheckRow {
    website_id: i64,
    slot: i64,
    delay_ms: i64,
    up: bool,
    status_code: Option<i64>,
    response_ms: i64,
    error_kind: Option<String>,
    error_message: Option<String>,
}

impl TryFrom<CheckRow> for Check {
    type Error = StoreError;

    fn try_from(row: CheckRow) -> Result<Self> {
        Ok(Check {
            website_id: row.website_id,
            slot: millis_to_time(row.slot)?,
            checked_at: millis_to_time(row.slot + row.delay_ms)?,
            up: row.up,
            status_code: status_code_from_column(row.status_code)?,
            response_time_ms: u32::try_from(row.response_ms).unwrap_or(u32::MAX),
            error: error_from_columns(row.error_kind, row.error_message)?,
        })
    }
}

#[derive(FromRow)]
struct TallyRow {
    checks: Option<i64>,
    up_checks: Option<i64>,
    response_ms_sum: Option<i64>,
    responses: Option<i64>,
}

fn website_query(tail: &'static str) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(format!("SELECT {WEBSITE_COLUMNS} FROM websites {tail}"))
}

fn delay_ms(check: &Check) -> i64 {
    (check.checked_at - check.slot).num_milliseconds()
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn create_website(&self, spec: &WebsiteSpec) -> Result<Website> {
        let now = Utc::now().timestamp_millis();
        let sql = sqlx::AssertSqlSafe(format!(
            "INSERT INTO websites (name, url, interval_ms, timeout_ms, paused, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING {WEBSITE_COLUMNS}"
        ));
        let row: WebsiteRow = sqlx::query_as(sql)
            .bind(spec.name.as_str())
            .bind(spec.url.as_str())
            .bind(duration_to_millis(spec.interval))
            .bind(duration_to_millis(spec.timeout))
            .bind(spec.paused)
            .bind(now)
            .bind(now)
            .fetch_one(&self.pool)
            .await?;
        row.try_into()
    }

    async fn update_website(&self, id: WebsiteId, spec: &WebsiteSpec) -> Result<Option<Website>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "UPDATE websites SET name = ?, url = ?, interval_ms = ?, timeout_ms = ?, paused = ?, \
             updated_at = ? WHERE id = ? RETURNING {WEBSITE_COLUMNS}"
        ));
        let row: Option<WebsiteRow> = sqlx::query_as(sql)
            .bind(spec.name.as_str())
            .bind(spec.url.as_str())
            .bind(duration_to_millis(spec.interval))
            .bind(duration_to_millis(spec.timeout))
            .bind(spec.paused)
            .bind(Utc::now().timestamp_millis())
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(Website::try_from).transpose()
    }

    async fn delete_website(&self, id: WebsiteId) -> Result<Option<Website>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "DELETE FROM websites WHERE id = ? RETURNING {WEBSITE_COLUMNS}"
        ));
        let mut tx = self.begin_write().await?;
        let row: Option<WebsiteRow> = sqlx::query_as(sql)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        row.map(Website::try_from).transpose()
    }

    async fn website(&self, id: WebsiteId) -> Result<Option<Website>> {
        let row: Option<WebsiteRow> = sqlx::query_as(website_query("WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(Website::try_from).transpose()
    }

    async fn websites(&self) -> Result<Vec<Website>> {
        let rows: Vec<WebsiteRow> = sqlx::query_as(website_query(""))
            .fetch_all(&self.pool)
            .await?;
        let mut websites = rows
            .into_iter()
            .map(Website::try_from)
            .collect::<Result<Vec<_>>>()?;
        super::list_order(&mut websites);
        Ok(websites)
    }

    async fn record_checks(&self, checks: &[Check]) -> Result<Recorded> {
        if checks.is_empty() {
            return Ok(Recorded::default());
        }
        let mut tx = self.begin_write().await?;
        let mut stored = Vec::with_capacity(checks.len());
        for check in checks {
            // Selecting from websites drops checks of websites deleted meanwhile.
            let inserted = sqlx::query(
                "INSERT INTO checks (website_id, slot, delay_ms, up, status_code, response_ms, \
                 error_kind, error_message) \
                 SELECT id, ?, ?, ?, ?, ?, ?, ? FROM websites WHERE id = ? \
                 ON CONFLICT (website_id, slot) DO NOTHING",
            )
            .bind(check.slot.timestamp_millis())
            .bind(delay_ms(check))
            .bind(check.up)
            .bind(check.status_code.map(i64::from))
            .bind(i64::from(check.response_time_ms))
            .bind(check.error.as_ref().map(|e| e.kind.as_str()))
            .bind(check.error.as_ref().map(|e| e.message.as_str()))
            .bind(check.website_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 1 {
                stored.push(check.clone());
            }
        }

        let (hours, days) = aggregate(&stored, self.timezone);
        for ((website, hour), t) in &hours {
            upsert_tally(&mut tx, UPSERT_HOUR, *website, *hour, t).await?;
        }
        for ((website, day), t) in &days {
            let day = day.format("%Y-%m-%d").to_string();
            upsert_tally(&mut tx, UPSERT_DAY, *website, day, t).await?;
        }

        let mut before = HashMap::new();
        for check in &stored {
            if before.contains_key(&check.website_id) {
                continue;
            }
            let current: Option<(Option<i64>, Option<bool>)> =
                sqlx::query_as("SELECT last_slot, last_up FROM websites WHERE id = ?")
                    .bind(check.website_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            if let Some((last_slot, last_up)) = current {
                let last_slot = last_slot.map(millis_to_time).transpose()?;
                before.insert(check.website_id, Current { last_slot, last_up });
            }
        }
        let (updates, changes) = plan_current(&stored, &before);
        for update in updates {
            let c = update.check;
            sqlx::query(
                "UPDATE websites SET last_slot = ?, last_delay_ms = ?, last_up = ?, \
                 last_status_code = ?, last_response_ms = ?, last_error_kind = ?, \
                 last_error_message = ?, status_since = coalesce(?, status_since) WHERE id = ?",
            )
            .bind(c.slot.timestamp_millis())
            .bind(delay_ms(c))
            .bind(c.up)
            .bind(c.status_code.map(i64::from))
            .bind(i64::from(c.response_time_ms))
            .bind(c.error.as_ref().map(|e| e.kind.as_str()))
            .bind(c.error.as_ref().map(|e| e.message.as_str()))
            .bind(update.status_since.map(|t| t.timestamp_millis()))
            .bind(c.website_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Recorded { stored, changes })
    }

    async fn recent_checks(
        &self,
        website: WebsiteId,
        before: Option<DateTime<Utc>>,
        limit: u32,
    ) -> Result<Vec<Check>> {
        let rows: Vec<CheckRow> = sqlx::query_as(
            "SELECT website_id, slot, delay_ms, up, status_code, response_ms, error_kind, \
             error_message FROM checks WHERE website_id = ? AND slot < ? \
             ORDER BY slot DESC LIMIT ?",
        )
        .bind(website)
        .bind(before.map_or(i64::MAX, |t| t.timestamp_millis()))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(Check::try_from).collect()
    }

    async fn daily_history(
        &self,
        website: WebsiteId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DayStat>> {
        let rows: Vec<(String, i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT day, checks, up_checks, response_ms_sum, responses FROM check_days \
             WHERE website_id = ? AND day >= ? AND day <= ? ORDER BY day",
        )
        .bind(website)
        .bind(from.format("%Y-%m-%d").to_string())
        .bind(to.format("%Y-%m-%d").to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(day, checks, up, sum, responses)| {
                let date = NaiveDate::parse_from_str(&day, "%Y-%m-%d")
                    .map_err(|_| StoreError::Corrupt(format!("day {day:?}")))?;
                Ok(super::day_stat(date, checks, up, sum, responses))
            })
            .collect()
    }

    async fn tally_since(&self, website: WebsiteId, since: DateTime<Utc>) -> Result<Tally> {
        let row: TallyRow = sqlx::query_as(
            "SELECT sum(checks) AS checks, sum(up_checks) AS up_checks, \
             sum(response_ms_sum) AS response_ms_sum, sum(responses) AS responses \
             FROM check_hours WHERE website_id = ? AND hour >= ?",
        )
        .bind(website)
        .bind(super::hour_start(since))
        .fetch_one(&self.pool)
        .await?;
        Ok(super::tally(
            row.checks,
            row.up_checks,
            row.response_ms_sum,
            row.responses,
        ))
    }

    async fn tallies_since(&self, since: DateTime<Utc>) -> Result<Vec<(WebsiteId, Tally)>> {
        let rows: Vec<(WebsiteId, i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT website_id, sum(checks), sum(up_checks), sum(response_ms_sum), \
             sum(responses) FROM check_hours WHERE hour >= ? GROUP BY website_id",
        )
        .bind(super::hour_start(since))
        .fetch_all(&self.pool)
        .await?;
        Ok(super::tallies(rows))
    }

    async fn latest_checks(&self, per_website: u32) -> Result<Vec<Check>> {
        if per_website == 0 {
            return Ok(Vec::new());
        }
        // Per website: find the slot of its n-th newest check through the primary
        // key, then read the checks from there on.
        let rows: Vec<CheckRow> = sqlx::query_as(
            "SELECT c.website_id, c.slot, c.delay_ms, c.up, c.status_code, c.response_ms, \
             c.error_kind, c.error_message FROM websites w JOIN checks c \
             ON c.website_id = w.id AND c.slot >= coalesce((SELECT x.slot FROM checks x \
             WHERE x.website_id = w.id ORDER BY x.slot DESC LIMIT 1 OFFSET ?), 0) \
             ORDER BY c.website_id, c.slot DESC",
        )
        .bind(i64::from(per_website) - 1)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(Check::try_from).collect()
    }

    async fn check_series(
        &self,
        website: WebsiteId,
        since: DateTime<Utc>,
        bucket: Duration,
    ) -> Result<Vec<(DateTime<Utc>, Tally)>> {
        let bucket_ms = i64::try_from(bucket.as_millis()).unwrap_or(i64::MAX).max(1);
        let rows: Vec<(i64, i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT (slot - ?1) / ?2 AS bucket, count(*), sum(up), \
             sum(CASE WHEN status_code IS NULL THEN 0 ELSE response_ms END), count(status_code) \
             FROM checks WHERE website_id = ?3 AND slot >= ?1 GROUP BY bucket ORDER BY bucket",
        )
        .bind(since.timestamp_millis())
        .bind(bucket_ms)
        .bind(website)
        .fetch_all(&self.pool)
        .await?;
        Ok(super::series(since, bucket, rows))
    }

    async fn prune_checks(
        &self,
        website: WebsiteId,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let deleted = sqlx::query(
            "DELETE FROM checks WHERE website_id = ? AND slot IN \
             (SELECT slot FROM checks WHERE website_id = ? AND slot < ? ORDER BY slot LIMIT ?)",
        )
        .bind(website)
        .bind(website)
        .bind(before.timestamp_millis())
        .bind(i64::from(limit))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(deleted)
    }

    async fn prune_aggregates(&self, before: DateTime<Utc>) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let hours = sqlx::query("DELETE FROM check_hours WHERE hour < ?")
            .bind(super::hour_start(before))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let day = before.with_timezone(&self.timezone).date_naive();
        let days = sqlx::query("DELETE FROM check_days WHERE day < ?")
            .bind(day.format("%Y-%m-%d").to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(hours + days)
    }
}

/// Adds a batch's counts to one aggregate row (hour or day), creating it if needed.
const UPSERT_HOUR: &str = "INSERT INTO check_hours \
     (website_id, hour, checks, up_checks, response_ms_sum, responses) \
     VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (website_id, hour) DO UPDATE SET \
     checks = checks + excluded.checks, up_checks = up_checks + excluded.up_checks, \
     response_ms_sum = response_ms_sum + excluded.response_ms_sum, \
     responses = responses + excluded.responses";
const UPSERT_DAY: &str = "INSERT INTO check_days \
     (website_id, day, checks, up_checks, response_ms_sum, responses) \
     VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (website_id, day) DO UPDATE SET \
     checks = checks + excluded.checks, up_checks = up_checks + excluded.up_checks, \
     response_ms_sum = response_ms_sum + excluded.response_ms_sum, \
     responses = responses + excluded.responses";

async fn upsert_tally<K>(
    tx: &mut Transaction<'static, Sqlite>,
    sql: &'static str,
    website: WebsiteId,
    bucket: K,
    t: &Tally,
) -> Result<()>
where
    K: for<'q> sqlx::Encode<'q, Sqlite> + sqlx::Type<Sqlite> + Send,
{
    sqlx::query(sql)
        .bind(website)
        .bind(bucket)
        .bind(t.checks as i64)
        .bind(t.up_checks as i64)
        .bind(t.response_ms_sum as i64)
        .bind(t.responses as i64)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
