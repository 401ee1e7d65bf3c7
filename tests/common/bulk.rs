//! Bulk set-up and read-back straight in the database, for benchmarks: many
//! websites in one statement, and the lateness of the checks stored.

use chrono::{DateTime, Utc};
use sitepulse::store::DatabaseUrl;
use sqlx::Connection;

/// Inserts `n` websites in one statement.
pub async fn create_websites(
    db: &DatabaseUrl,
    n: usize,
    url: &str,
    interval_ms: i64,
    timeout_ms: i64,
) {
    match db {
        DatabaseUrl::Sqlite(path) => {
            let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{path}"))
                .await
                .unwrap();
            sqlx::query(
                "WITH RECURSIVE m(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM m WHERE i < ?) \
                 INSERT INTO websites (name, url, interval_ms, timeout_ms, paused, created_at, updated_at) \
                 SELECT 'site ' || i, ?, ?, ?, 0, 0, 0 FROM m",
            )
            .bind(n as i64)
            .bind(url)
            .bind(interval_ms)
            .bind(timeout_ms)
            .execute(&mut conn)
            .await
            .unwrap();
        }
        DatabaseUrl::Postgres(url_db) => {
            let mut conn = sqlx::PgConnection::connect(url_db).await.unwrap();
            sqlx::query(
                "INSERT INTO websites (name, url, interval_ms, timeout_ms, paused, created_at, updated_at) \
                 SELECT 'site ' || i, $2, $3, $4, false, now(), now() FROM generate_series(1, $1::int8) i",
            )
            .bind(n as i64)
            .bind(url)
            .bind(interval_ms)
            .bind(timeout_ms)
            .execute(&mut conn)
            .await
            .unwrap();
        }
    }
}

/// Delays (ms) of the checks whose slots lie in `[from, to)`.
pub async fn delays(db: &DatabaseUrl, from: DateTime<Utc>, to: DateTime<Utc>) -> (Vec<i64>, u64) {
    match db {
        DatabaseUrl::Sqlite(path) => {
            let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{path}"))
                .await
                .unwrap();
            let rows: Vec<(i64, bool)> =
                sqlx::query_as("SELECT delay_ms, up FROM checks WHERE slot >= ? AND slot < ?")
                    .bind(from.timestamp_millis())
                    .bind(to.timestamp_millis())
                    .fetch_all(&mut conn)
                    .await
                    .unwrap();
            split(rows)
        }
        DatabaseUrl::Postgres(url) => {
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            let rows: Vec<(i32, bool)> =
                sqlx::query_as("SELECT delay_ms, up FROM checks WHERE slot >= $1 AND slot < $2")
                    .bind(from)
                    .bind(to)
                    .fetch_all(&mut conn)
                    .await
                    .unwrap();
            split(rows.into_iter().map(|(d, up)| (i64::from(d), up)).collect())
        }
    }
}

fn split(rows: Vec<(i64, bool)>) -> (Vec<i64>, u64) {
    let down = rows.iter().filter(|(_, up)| !up).count() as u64;
    (rows.into_iter().map(|(d, _)| d).collect(), down)
}
