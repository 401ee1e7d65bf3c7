//! PostgreSQL, for production and clusters.
//!
//! A batch of checks is written with a handful of statements whatever its size:
//! rows travel as arrays and are expanded with `unnest`. Rows are locked in key
//! order in every transaction, so two writers (the checker and a "check now" on
//! another replica) never deadlock on the aggregates.
//!
//! New checks go to `recent_checks`, one row each. Hours that are over for more
//! than an hour are compacted into `check_blocks`, one row per website and hour
//! with a column array per field (see the migration). Reads take both.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{FromRow, Postgres, Transaction};

use super::{
    Backend, Current, Recorded, Result, Store, StoreError, StoreOptions, aggregate,
    duration_to_millis, error_from_columns, millis_to_duration, plan_current,
    status_code_from_column,
};
use crate::domain::{Check, DayStat, Tally, Website, WebsiteId, WebsiteSpec};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

const WEBSITE_COLUMNS: &str = "id, name, url, interval_ms, timeout_ms, paused, created_at, \
    updated_at, last_slot, last_delay_ms, last_up, last_status_code, last_response_ms, \
    last_error_kind, last_error_message, status_since";

const CHECK_COLUMNS: &str = "website_id::int8 AS website_id, slot, delay_ms, up, status_code, response_ms, error_kind, error_message";

/// The checks of the blocks `b`, one row each, with the columns of `CHECK_COLUMNS`.
const BLOCK_CHECK_COLUMNS: &str = "b.website_id::int8 AS website_id, \
    b.hour + c.offset_ms * interval '1 millisecond' AS slot, c.delay_ms, c.up, c.status_code, \
    c.response_ms, c.error_kind, c.error_message";
const BLOCK_UNNEST: &str = "CROSS JOIN LATERAL unnest(b.offsets, b.delay_ms, b.response_ms, \
    b.status_code, b.up, b.error_kind, b.error_message) \
    AS c (offset_ms, delay_ms, response_ms, status_code, up, error_kind, error_message)";

/// Advisory lock (two-key form) between compaction (exclusive) and writes of
/// checks old enough to belong to an hour that may be compacted (shared), so a
/// late check never slips in beside its already compacted twin.
const COMPACTION_LOCK: (i32, i32) = (0x5350_3336, 2);

/// Checks older than this may fall into a compacted hour: compaction leaves the
/// current and the previous hour alone, this leaves room for clock differences.
const LATE_CHECK: chrono::TimeDelta = chrono::TimeDelta::minutes(30);

pub struct PostgresStore {
    pool: PgPool,
    timezone: Tz,
}

impl PostgresStore {
    pub async fn connect(url: &str, options: StoreOptions) -> Result<Self> {
        let connect = PgConnectOptions::from_str(url)?.application_name("sitepulse");
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await?;
        Ok(Self {
            pool,
            timezone: options.timezone,
        })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
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
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    last_slot: Option<DateTime<Utc>>,
    last_delay_ms: Option<i32>,
    last_up: Option<bool>,
    last_status_code: Option<i16>,
    last_response_ms: Option<i32>,
    last_error_kind: Option<String>,
    last_error_message: Option<String>,
    status_since: Option<DateTime<Utc>>,
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
            created_at: row.created_at,
            updated_at: row.updated_at,
            last_check,
            status_since: row.status_since,
        })
    }
}

#[derive(FromRow)]
struct CheckRow {
    website_id: i64,
    slot: DateTime<Utc>,
    delay_ms: i32,
    up: bool,
    status_code: Option<i16>,
    response_ms: i32,
    error_kind: Option<String>,
    error_message: Option<String>,
}

impl TryFrom<CheckRow> for Check {
    type Error = StoreError;

    fn try_from(row: CheckRow) -> Result<Self> {
        Ok(Check {
            website_id: row.website_id,
            slot: row.slot,
            checked_at: row.slot + chrono::Duration::milliseconds(i64::from(row.delay_ms)),
            up: row.up,
            status_code: status_code_from_column(row.status_code.map(i64::from))?,
            response_time_ms: u32::try_from(row.response_ms).unwrap_or(0),
            error: error_from_columns(row.error_kind, row.error_message)?,
        })
    }
}

fn website_query(tail: &'static str) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(format!("SELECT {WEBSITE_COLUMNS} FROM websites {tail}"))
}

/// A batch of checks as parallel arrays, the shape `unnest` takes.
#[derive(Default)]
struct CheckArrays {
    website_id: Vec<i64>,
    slot: Vec<DateTime<Utc>>,
    delay_ms: Vec<i32>,
    up: Vec<bool>,
    status_code: Vec<Option<i16>>,
    response_ms: Vec<i32>,
    error_kind: Vec<Option<&'static str>>,
    error_message: Vec<Option<String>>,
}

impl CheckArrays {
    fn push(&mut self, check: &Check) {
        let delay = (check.checked_at - check.slot).num_milliseconds();
        self.website_id.push(check.website_id);
        self.slot.push(check.slot);
        self.delay_ms.push(i32::try_from(delay).unwrap_or(i32::MAX));
        self.up.push(check.up);
        self.status_code.push(
            check
                .status_code
                .map(|c| i16::try_from(c).unwrap_or(i16::MAX)),
        );
        self.response_ms
            .push(i32::try_from(check.response_time_ms).unwrap_or(i32::MAX));
        self.error_kind
            .push(check.error.as_ref().map(|e| e.kind.as_str()));
        self.error_message
            .push(check.error.as_ref().map(|e| e.message.clone()));
    }
}

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
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
        let sql = sqlx::AssertSqlSafe(format!(
            "INSERT INTO websites (name, url, interval_ms, timeout_ms, paused, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, now(), now()) RETURNING {WEBSITE_COLUMNS}"
        ));
        let row: WebsiteRow = sqlx::query_as(sql)
            .bind(spec.name.as_str())
            .bind(spec.url.as_str())
            .bind(duration_to_millis(spec.interval))
            .bind(duration_to_millis(spec.timeout))
            .bind(spec.paused)
            .fetch_one(&self.pool)
            .await?;
        row.try_into()
    }

    async fn update_website(&self, id: WebsiteId, spec: &WebsiteSpec) -> Result<Option<Website>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "UPDATE websites SET name = $1, url = $2, interval_ms = $3, timeout_ms = $4, \
             paused = $5, updated_at = now() WHERE id = $6 RETURNING {WEBSITE_COLUMNS}"
        ));
        let row: Option<WebsiteRow> = sqlx::query_as(sql)
            .bind(spec.name.as_str())
            .bind(spec.url.as_str())
            .bind(duration_to_millis(spec.interval))
            .bind(duration_to_millis(spec.timeout))
            .bind(spec.paused)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(Website::try_from).transpose()
    }

    async fn delete_website(&self, id: WebsiteId) -> Result<Option<Website>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "DELETE FROM websites WHERE id = $1 RETURNING {WEBSITE_COLUMNS}"
        ));
        let row: Option<WebsiteRow> = sqlx::query_as(sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(Website::try_from).transpose()
    }

    async fn website(&self, id: WebsiteId) -> Result<Option<Website>> {
        let row: Option<WebsiteRow> = sqlx::query_as(website_query("WHERE id = $1"))
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
        let mut arrays = CheckArrays::default();
        for check in checks {
            arrays.push(check);
        }
        let mut tx = self.pool.begin().await?;
        let late = Utc::now() - LATE_CHECK;
        if checks.iter().any(|c| c.slot < late) {
            sqlx::query("SELECT pg_advisory_xact_lock_shared($1, $2)")
                .bind(COMPACTION_LOCK.0)
                .bind(COMPACTION_LOCK.1)
                .execute(&mut *tx)
                .await?;
        }
        // Joining websites drops checks of websites deleted meanwhile; a slot already
        // compacted into a block counts as stored.
        let inserted: Vec<(i64, DateTime<Utc>)> = sqlx::query_as(
            "INSERT INTO recent_checks (website_id, slot, delay_ms, up, status_code, response_ms, \
             error_kind, error_message) \
             SELECT t.website_id::int4, t.slot, t.delay_ms, t.up, t.status_code, t.response_ms, \
             t.error_kind, t.error_message \
             FROM unnest($1::int8[], $2::timestamptz[], $3::int4[], $4::bool[], $5::int2[], \
             $6::int4[], $7::text[], $8::text[]) \
             AS t(website_id, slot, delay_ms, up, status_code, response_ms, error_kind, error_message) \
             JOIN websites w ON w.id = t.website_id \
             WHERE NOT EXISTS (SELECT 1 FROM check_blocks b WHERE b.website_id = t.website_id \
             AND b.hour = date_trunc('hour', t.slot, 'UTC') \
             AND (extract(epoch FROM t.slot - b.hour) * 1000)::int4 = ANY (b.offsets)) \
             ORDER BY t.website_id, t.slot \
             ON CONFLICT (website_id, slot) DO NOTHING RETURNING website_id::int8, slot",
        )
        .bind(arrays.website_id)
        .bind(arrays.slot)
        .bind(arrays.delay_ms)
        .bind(arrays.up)
        .bind(arrays.status_code)
        .bind(arrays.response_ms)
        .bind(arrays.error_kind)
        .bind(arrays.error_message)
        .fetch_all(&mut *tx)
        .await?;
        let mut keys: HashSet<(i64, i64)> = inserted
            .into_iter()
            .map(|(id, slot)| (id, slot.timestamp_micros()))
            .collect();
        let stored: Vec<Check> = checks
            .iter()
            .filter(|c| keys.remove(&(c.website_id, c.slot.timestamp_micros())))
            .cloned()
            .collect();

        let (hours, days) = aggregate(&stored, self.timezone);
        let hours = hours.into_iter().map(|((id, hour), t)| {
            let hour = DateTime::from_timestamp(hour, 0).unwrap_or_default();
            ((id, hour), t)
        });
        upsert_tallies(&mut tx, TallyTable::Hours, hours.collect()).await?;
        upsert_tallies(&mut tx, TallyTable::Days, days.into_iter().collect()).await?;

        let mut ids: Vec<i64> = stored.iter().map(|c| c.website_id).collect();
        ids.sort_unstable();
        ids.dedup();
        let rows: Vec<(i64, Option<DateTime<Utc>>, Option<bool>)> = sqlx::query_as(
            "SELECT id, last_slot, last_up FROM websites WHERE id = ANY($1) ORDER BY id FOR UPDATE",
        )
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
        let before: HashMap<_, _> = rows
            .into_iter()
            .map(|(id, last_slot, last_up)| (id, Current { last_slot, last_up }))
            .collect();
        let (updates, changes) = plan_current(&stored, &before);
        if !updates.is_empty() {
            let mut current = CheckArrays::default();
            let mut since = Vec::with_capacity(updates.len());
            for update in &updates {
                current.push(update.check);
                since.push(update.status_since);
            }
            sqlx::query(
                "UPDATE websites w SET last_slot = t.slot, last_delay_ms = t.delay_ms, \
                 last_up = t.up, last_status_code = t.status_code, last_response_ms = t.response_ms, \
                 last_error_kind = t.error_kind, last_error_message = t.error_message, \
                 status_since = coalesce(t.since, w.status_since) \
                 FROM unnest($1::int8[], $2::timestamptz[], $3::int4[], $4::bool[], $5::int2[], \
                 $6::int4[], $7::text[], $8::text[], $9::timestamptz[]) \
                 AS t(id, slot, delay_ms, up, status_code, response_ms, error_kind, error_message, since) \
                 WHERE w.id = t.id",
            )
            .bind(current.website_id)
            .bind(current.slot)
            .bind(current.delay_ms)
            .bind(current.up)
            .bind(current.status_code)
            .bind(current.response_ms)
            .bind(current.error_kind)
            .bind(current.error_message)
            .bind(since)
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
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {CHECK_COLUMNS} FROM recent_checks WHERE website_id = $1 \
             AND ($2::timestamptz IS NULL OR slot < $2) ORDER BY slot DESC LIMIT $3"
        ));
        let mut rows: Vec<CheckRow> = sqlx::query_as(sql)
            .bind(website)
            .bind(before)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        if rows.len() < limit as usize {
            // Every block holds at least one check: the `limit` newest blocks hold
            // every compacted check that can be among the `limit` newest.
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT * FROM (SELECT {BLOCK_CHECK_COLUMNS} FROM (SELECT * FROM check_blocks \
                 WHERE website_id = $1 AND ($2::timestamptz IS NULL OR hour < $2) \
                 ORDER BY hour DESC LIMIT $3) b {BLOCK_UNNEST}) x \
                 WHERE $2::timestamptz IS NULL OR slot < $2 ORDER BY slot DESC LIMIT $3"
            ));
            let older: Vec<CheckRow> = sqlx::query_as(sql)
                .bind(website)
                .bind(before)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
            rows.extend(older);
            rows.sort_by_key(|row| std::cmp::Reverse(row.slot));
            rows.truncate(limit as usize);
        }
        rows.into_iter().map(Check::try_from).collect()
    }

    async fn daily_history(
        &self,
        website: WebsiteId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DayStat>> {
        let rows: Vec<(NaiveDate, i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT day, checks::int8, up_checks::int8, response_ms_sum, responses::int8 \
             FROM check_days WHERE website_id = $1 AND day BETWEEN $2 AND $3 ORDER BY day",
        )
        .bind(website)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(date, checks, up, sum, responses)| {
                super::day_stat(date, checks, up, sum, responses)
            })
            .collect())
    }

    async fn tally_since(&self, website: WebsiteId, since: DateTime<Utc>) -> Result<Tally> {
        let hour = DateTime::from_timestamp(super::hour_start(since), 0).unwrap_or_default();
        let (checks, up, sum, responses): (Option<i64>, Option<i64>, Option<i64>, Option<i64>) =
            sqlx::query_as(
                "SELECT sum(checks)::int8, sum(up_checks)::int8, sum(response_ms_sum)::int8, \
                 sum(responses)::int8 FROM check_hours WHERE website_id = $1 AND hour >= $2",
            )
            .bind(website)
            .bind(hour)
            .fetch_one(&self.pool)
            .await?;
        Ok(super::tally(checks, up, sum, responses))
    }

    async fn tallies_since(&self, since: DateTime<Utc>) -> Result<Vec<(WebsiteId, Tally)>> {
        let hour = DateTime::from_timestamp(super::hour_start(since), 0).unwrap_or_default();
        let rows: Vec<(i64, i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT website_id, sum(checks)::int8, sum(up_checks)::int8, \
             sum(response_ms_sum)::int8, sum(responses)::int8 FROM check_hours \
             WHERE hour >= $1 GROUP BY website_id",
        )
        .bind(hour)
        .fetch_all(&self.pool)
        .await?;
        Ok(super::tallies(rows))
    }

    async fn latest_checks(&self, per_website: u32) -> Result<Vec<Check>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT c.* FROM websites w CROSS JOIN LATERAL (SELECT {CHECK_COLUMNS} \
             FROM recent_checks WHERE website_id = w.id ORDER BY slot DESC LIMIT $1) c \
             ORDER BY c.website_id, c.slot DESC"
        ));
        let mut rows: Vec<CheckRow> = sqlx::query_as(sql)
            .bind(i64::from(per_website))
            .fetch_all(&self.pool)
            .await?;
        // Websites checked less often than every couple of minutes have fewer recent
        // rows: the rest comes from their newest blocks.
        let mut found: HashMap<i64, u32> = HashMap::new();
        for row in &rows {
            *found.entry(row.website_id).or_default() += 1;
        }
        let website_ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM websites ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        let (short, missing): (Vec<i64>, Vec<i64>) = website_ids
            .into_iter()
            .filter_map(|id| {
                let have = found.get(&id).copied().unwrap_or(0);
                (have < per_website).then(|| (id, i64::from(per_website - have)))
            })
            .unzip();
        if !short.is_empty() {
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT x.* FROM unnest($1::int8[], $2::int8[]) AS w(id, missing) \
                 CROSS JOIN LATERAL (SELECT {BLOCK_CHECK_COLUMNS} FROM (SELECT * FROM check_blocks \
                 WHERE website_id = w.id ORDER BY hour DESC LIMIT w.missing) b {BLOCK_UNNEST} \
                 ORDER BY slot DESC LIMIT w.missing) x"
            ));
            let older: Vec<CheckRow> = sqlx::query_as(sql)
                .bind(short)
                .bind(missing)
                .fetch_all(&self.pool)
                .await?;
            if !older.is_empty() {
                rows.extend(older);
                rows.sort_by(|a, b| a.website_id.cmp(&b.website_id).then(b.slot.cmp(&a.slot)));
                // A late check in recent_checks can be older than compacted ones: keep
                // the newest `per_website` whichever table they came from.
                let mut kept: HashMap<i64, u32> = HashMap::new();
                rows.retain(|row| {
                    let n = kept.entry(row.website_id).or_default();
                    *n += 1;
                    *n <= per_website
                });
            }
        }
        rows.into_iter().map(Check::try_from).collect()
    }

    async fn check_series(
        &self,
        website: WebsiteId,
        since: DateTime<Utc>,
        bucket: Duration,
    ) -> Result<Vec<(DateTime<Utc>, Tally)>> {
        let bucket_ms = i64::try_from(bucket.as_millis()).unwrap_or(i64::MAX).max(1);
        let rows: Vec<(i64, i64, i64, i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT (floor(extract(epoch FROM slot - $1) * 1000)::int8 / $2) AS bucket, \
                 count(*), count(*) FILTER (WHERE up), \
                 coalesce(sum(response_ms) FILTER (WHERE status_code IS NOT NULL), 0)::int8, \
                 count(status_code) FROM ( \
                 SELECT slot, up, response_ms, status_code FROM recent_checks \
                 WHERE website_id = $3 AND slot >= $1 \
                 UNION ALL SELECT slot, up, response_ms, status_code FROM \
                 (SELECT {BLOCK_CHECK_COLUMNS} FROM check_blocks b {BLOCK_UNNEST} \
                 WHERE b.website_id = $3 AND b.hour >= date_trunc('hour', $1, 'UTC')) x \
                 WHERE slot >= $1) c \
                 GROUP BY bucket ORDER BY bucket"
        )))
        .bind(since)
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
        // Blocks go whole once their hour is entirely before `before`, about as many
        // checks per call as `limit` for minute checks.
        let deleted: i64 = sqlx::query_scalar(
            "WITH r AS (DELETE FROM recent_checks WHERE website_id = $1 AND slot IN \
             (SELECT slot FROM recent_checks WHERE website_id = $1 AND slot < $2 \
             ORDER BY slot LIMIT $3) RETURNING 1), \
             b AS (DELETE FROM check_blocks WHERE website_id = $1 AND hour IN \
             (SELECT hour FROM check_blocks WHERE website_id = $1 \
             AND hour <= $2 - interval '1 hour' ORDER BY hour LIMIT greatest(1, $3 / 60)) \
             RETURNING cardinality(offsets) AS n) \
             SELECT (SELECT count(*) FROM r) + coalesce((SELECT sum(n) FROM b), 0)::int8",
        )
        .bind(website)
        .bind(before)
        .bind(i64::from(limit))
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(deleted).unwrap_or(0))
    }

    async fn compact_checks(&self, website: WebsiteId, before: DateTime<Utc>) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
            .bind(COMPACTION_LOCK.0)
            .bind(COMPACTION_LOCK.1)
            .execute(&mut *tx)
            .await?;
        // Whole UTC hours before `before`, at most a day from the oldest; merged
        // into an existing block of the same hour (a check that arrived late), the
        // block's own check wins a slot both hold.
        let moved: i64 = sqlx::query_scalar(
            "WITH bound AS (SELECT least(date_trunc('hour', $2::timestamptz, 'UTC'), \
             date_trunc('hour', min(slot), 'UTC') + interval '1 day') AS upto \
             FROM recent_checks WHERE website_id = $1), \
             moved AS (DELETE FROM recent_checks r USING bound \
             WHERE r.website_id = $1 AND r.slot < bound.upto RETURNING r.*), \
             packed AS (SELECT website_id, hour, \
             array_agg((extract(epoch FROM slot - hour) * 1000)::int4 ORDER BY slot) AS offsets, \
             array_agg(delay_ms ORDER BY slot) AS delay_ms, \
             array_agg(response_ms ORDER BY slot) AS response_ms, \
             array_agg(status_code ORDER BY slot) AS status_code, \
             array_agg(up ORDER BY slot) AS up, \
             CASE WHEN bool_or(error_kind IS NOT NULL) \
             THEN array_agg(error_kind ORDER BY slot) END AS error_kind, \
             CASE WHEN bool_or(error_kind IS NOT NULL) \
             THEN array_agg(error_message ORDER BY slot) END AS error_message \
             FROM (SELECT *, date_trunc('hour', slot, 'UTC') AS hour FROM moved) m \
             GROUP BY website_id, hour), \
             stored AS (INSERT INTO check_blocks AS b (website_id, hour, offsets, delay_ms, \
             response_ms, status_code, up, error_kind, error_message) \
             SELECT * FROM packed ORDER BY website_id, hour \
             ON CONFLICT (website_id, hour) DO UPDATE SET \
             (offsets, delay_ms, response_ms, status_code, up, error_kind, error_message) = \
             (SELECT array_agg(o ORDER BY o), array_agg(d ORDER BY o), array_agg(r ORDER BY o), \
             array_agg(s ORDER BY o), array_agg(u ORDER BY o), \
             CASE WHEN bool_or(k IS NOT NULL) THEN array_agg(k ORDER BY o) END, \
             CASE WHEN bool_or(k IS NOT NULL) THEN array_agg(m ORDER BY o) END \
             FROM (SELECT DISTINCT ON (o) o, d, r, s, u, k, m FROM ( \
             SELECT 0 AS src, * FROM unnest(b.offsets, b.delay_ms, b.response_ms, b.status_code, \
             b.up, b.error_kind, b.error_message) AS x (o, d, r, s, u, k, m) \
             UNION ALL \
             SELECT 1, * FROM unnest(excluded.offsets, excluded.delay_ms, excluded.response_ms, \
             excluded.status_code, excluded.up, excluded.error_kind, excluded.error_message) \
             AS y (o, d, r, s, u, k, m)) z ORDER BY o, src) merged) \
             RETURNING 1) \
             SELECT count(*) FROM moved",
        )
        .bind(website)
        .bind(before)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(u64::try_from(moved).unwrap_or(0))
    }

    async fn prune_aggregates(&self, before: DateTime<Utc>) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let hour = DateTime::from_timestamp(super::hour_start(before), 0).unwrap_or_default();
        let hours = sqlx::query("DELETE FROM check_hours WHERE hour < $1")
            .bind(hour)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let day = before.with_timezone(&self.timezone).date_naive();
        let days = sqlx::query("DELETE FROM check_days WHERE day < $1")
            .bind(day)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(hours + days)
    }
}

#[derive(Clone, Copy)]
enum TallyTable {
    Hours,
    Days,
}

/// Adds a batch's counts to an aggregate table; `rows` are sorted by key.
async fn upsert_tallies<K>(
    tx: &mut Transaction<'static, Postgres>,
    table: TallyTable,
    rows: Vec<((WebsiteId, K), Tally)>,
) -> Result<()>
where
    K: sqlx::postgres::PgHasArrayType + for<'q> sqlx::Encode<'q, Postgres> + sqlx::Type<Postgres>,
    Vec<K>: for<'q> sqlx::Encode<'q, Postgres> + sqlx::Type<Postgres> + Send,
{
    if rows.is_empty() {
        return Ok(());
    }
    let sql = match table {
        TallyTable::Hours => {
            "INSERT INTO check_hours AS a (website_id, hour, checks, up_checks, response_ms_sum, responses) \
             SELECT * FROM unnest($1::int8[], $2::timestamptz[], $3::int4[], $4::int4[], $5::int8[], $6::int4[]) \
             ON CONFLICT (website_id, hour) DO UPDATE SET checks = a.checks + excluded.checks, \
             up_checks = a.up_checks + excluded.up_checks, \
             response_ms_sum = a.response_ms_sum + excluded.response_ms_sum, \
             responses = a.responses + excluded.responses"
        }
        TallyTable::Days => {
            "INSERT INTO check_days AS a (website_id, day, checks, up_checks, response_ms_sum, responses) \
             SELECT * FROM unnest($1::int8[], $2::date[], $3::int4[], $4::int4[], $5::int8[], $6::int4[]) \
             ON CONFLICT (website_id, day) DO UPDATE SET checks = a.checks + excluded.checks, \
             up_checks = a.up_checks + excluded.up_checks, \
             response_ms_sum = a.response_ms_sum + excluded.response_ms_sum, \
             responses = a.responses + excluded.responses"
        }
    };
    let n = rows.len();
    let (mut ids, mut keys) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut checks, mut up, mut sums, mut responses) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let int = |v: u64| i32::try_from(v).unwrap_or(i32::MAX);
    for ((id, key), t) in rows {
        ids.push(id);
        keys.push(key);
        checks.push(int(t.checks));
        up.push(int(t.up_checks));
        sums.push(i64::try_from(t.response_ms_sum).unwrap_or(i64::MAX));
        responses.push(int(t.responses));
    }
    sqlx::query(sql)
        .bind(ids)
        .bind(keys)
        .bind(checks)
        .bind(up)
        .bind(sums)
        .bind(responses)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
