//! [`AccountStore`] on SQLite: times as milliseconds since the epoch.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::FromRow;

use super::{AccountStore, SessionCutoffs, is_unique_violation, role_from_column};
use crate::auth::model::{
    ApiToken, NewUser, Role, Session, SessionId, StoredUser, TokenId, User, UserId,
};
use crate::store::{Result, SqliteStore, millis_to_time};

#[derive(FromRow)]
struct UserRow {
    id: i64,
    username: String,
    role: String,
    created_at: i64,
}

impl UserRow {
    fn into_user(self) -> Result<User> {
        Ok(User {
            id: self.id,
            username: self.username,
            role: role_from_column(&self.role)?,
            created_at: millis_to_time(self.created_at)?,
        })
    }
}

#[derive(FromRow)]
struct TokenRow {
    id: i64,
    user_id: i64,
    name: String,
    hint: String,
    created_at: i64,
    last_used_at: Option<i64>,
}

/// A token with the columns of its owner.
#[derive(FromRow)]
struct OwnedTokenRow {
    #[sqlx(flatten)]
    token: TokenRow,
    username: String,
    role: String,
    user_created_at: i64,
}

impl TokenRow {
    fn into_token(self) -> Result<ApiToken> {
        Ok(ApiToken {
            id: self.id,
            user_id: self.user_id,
            name: self.name,
            hint: self.hint,
            created_at: millis_to_time(self.created_at)?,
            last_used_at: self.last_used_at.map(millis_to_time).transpose()?,
        })
    }
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

async fn insert_user(
    store: &SqliteStore,
    user: &NewUser,
    only_if_first: bool,
) -> Result<Option<User>> {
    let now = now_ms();
    let sql = if only_if_first {
        "INSERT INTO users (username, username_key, password_hash, role, created_at, updated_at) \
         SELECT ?, ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM users) \
         RETURNING id, username, role, created_at"
    } else {
        "INSERT INTO users (username, username_key, password_hash, role, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?) RETURNING id, username, role, created_at"
    };
    let row = sqlx::query_as::<_, UserRow>(sql)
        .bind(user.username.as_str())
        .bind(user.username.key())
        .bind(&user.password_hash)
        .bind(user.role.as_str())
        .bind(now)
        .bind(now)
        .fetch_optional(store.pool())
        .await;
    match row {
        Ok(row) => row.map(UserRow::into_user).transpose(),
        Err(err) if is_unique_violation(&err) => Ok(None),
        Err(err) => Err(err.into()),
    }
}

#[async_trait]
impl AccountStore for SqliteStore {
    async fn count_users(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
            .fetch_one(self.pool())
            .await?;
        Ok(n.unsigned_abs())
    }

    async fn count_admins(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE role = 'admin'")
            .fetch_one(self.pool())
            .await?;
        Ok(n.unsigned_abs())
    }

    async fn create_user(&self, user: &NewUser) -> Result<Option<User>> {
        insert_user(self, user, false).await
    }

    async fn create_first_user(&self, user: &NewUser) -> Result<Option<User>> {
        insert_user(self, user, true).await
    }

    async fn user(&self, id: UserId) -> Result<Option<User>> {
        sqlx::query_as::<_, UserRow>(
            "SELECT id, username, role, created_at FROM users WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .map(UserRow::into_user)
        .transpose()
    }

    async fn user_by_key(&self, username_key: &str) -> Result<Option<StoredUser>> {
        let row: Option<(i64, String, String, i64, String)> = sqlx::query_as(
            "SELECT id, username, role, created_at, password_hash FROM users \
             WHERE username_key = ?",
        )
        .bind(username_key)
        .fetch_optional(self.pool())
        .await?;
        row.map(|(id, username, role, created_at, password_hash)| {
            Ok(StoredUser {
                user: UserRow {
                    id,
                    username,
                    role,
                    created_at,
                }
                .into_user()?,
                password_hash,
            })
        })
        .transpose()
    }

    async fn users(&self) -> Result<Vec<User>> {
        sqlx::query_as::<_, UserRow>(
            "SELECT id, username, role, created_at FROM users ORDER BY username_key",
        )
        .fetch_all(self.pool())
        .await?
        .into_iter()
        .map(UserRow::into_user)
        .collect()
    }

    async fn set_password(
        &self,
        id: UserId,
        password_hash: &str,
        keep: Option<SessionId>,
    ) -> Result<bool> {
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        let updated =
            sqlx::query("UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?")
                .bind(password_hash)
                .bind(now_ms())
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        sqlx::query("DELETE FROM sessions WHERE user_id = ? AND id IS NOT ?")
            .bind(id)
            .bind(keep)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(updated == 1)
    }

    async fn set_role(&self, id: UserId, role: Role) -> Result<Option<User>> {
        sqlx::query_as::<_, UserRow>(
            "UPDATE users SET role = ?, updated_at = ? WHERE id = ? \
             RETURNING id, username, role, created_at",
        )
        .bind(role.as_str())
        .bind(now_ms())
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .map(UserRow::into_user)
        .transpose()
    }

    async fn delete_user(&self, id: UserId) -> Result<Option<User>> {
        sqlx::query_as::<_, UserRow>(
            "DELETE FROM users WHERE id = ? RETURNING id, username, role, created_at",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .map(UserRow::into_user)
        .transpose()
    }

    async fn create_session(&self, user: UserId, token_hash: &[u8]) -> Result<SessionId> {
        let now = now_ms();
        let id = sqlx::query_scalar(
            "INSERT INTO sessions (user_id, token_hash, created_at, last_seen_at) \
             VALUES (?, ?, ?, ?) RETURNING id",
        )
        .bind(user)
        .bind(token_hash)
        .bind(now)
        .bind(now)
        .fetch_one(self.pool())
        .await?;
        Ok(id)
    }

    async fn session(&self, token_hash: &[u8], cutoffs: SessionCutoffs) -> Result<Option<Session>> {
        let row: Option<(i64, i64, i64, i64, String, String, i64)> = sqlx::query_as(
            "SELECT s.id, s.created_at, s.last_seen_at, u.id, u.username, u.role, u.created_at \
             FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = ? AND s.last_seen_at >= ? AND s.created_at >= ?",
        )
        .bind(token_hash)
        .bind(cutoffs.idle.timestamp_millis())
        .bind(cutoffs.created.timestamp_millis())
        .fetch_optional(self.pool())
        .await?;
        row.map(
            |(id, created_at, last_seen_at, uid, username, role, ucreated)| {
                Ok(Session {
                    id,
                    created_at: millis_to_time(created_at)?,
                    last_seen_at: millis_to_time(last_seen_at)?,
                    user: UserRow {
                        id: uid,
                        username,
                        role,
                        created_at: ucreated,
                    }
                    .into_user()?,
                })
            },
        )
        .transpose()
    }

    async fn touch_session(&self, id: SessionId, at: DateTime<Utc>) -> Result<()> {
        sqlx::query("UPDATE sessions SET last_seen_at = max(last_seen_at, ?) WHERE id = ?")
            .bind(at.timestamp_millis())
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    async fn delete_session(&self, token_hash: &[u8]) -> Result<bool> {
        let done = sqlx::query("DELETE FROM sessions WHERE token_hash = ?")
            .bind(token_hash)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn prune_sessions(&self, cutoffs: SessionCutoffs) -> Result<u64> {
        let done = sqlx::query("DELETE FROM sessions WHERE last_seen_at < ? OR created_at < ?")
            .bind(cutoffs.idle.timestamp_millis())
            .bind(cutoffs.created.timestamp_millis())
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }

    async fn create_api_token(
        &self,
        user: UserId,
        name: &str,
        token_hash: &[u8],
        hint: &str,
    ) -> Result<ApiToken> {
        sqlx::query_as::<_, TokenRow>(
            "INSERT INTO api_tokens (user_id, name, token_hash, hint, created_at) \
             VALUES (?, ?, ?, ?, ?) \
             RETURNING id, user_id, name, hint, created_at, last_used_at",
        )
        .bind(user)
        .bind(name)
        .bind(token_hash)
        .bind(hint)
        .bind(now_ms())
        .fetch_one(self.pool())
        .await?
        .into_token()
    }

    async fn api_token(&self, token_hash: &[u8]) -> Result<Option<(ApiToken, User)>> {
        // One round trip: every API request starts here.
        let row = sqlx::query_as::<_, OwnedTokenRow>(
            "SELECT t.id, t.user_id, t.name, t.hint, t.created_at, t.last_used_at, \
             u.username, u.role, u.created_at AS user_created_at \
             FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = ?",
        )
        .bind(token_hash)
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| {
            let user = UserRow {
                id: row.token.user_id,
                username: row.username,
                role: row.role,
                created_at: row.user_created_at,
            }
            .into_user()?;
            Ok((row.token.into_token()?, user))
        })
        .transpose()
    }

    async fn touch_api_token(&self, id: TokenId, at: DateTime<Utc>) -> Result<()> {
        sqlx::query("UPDATE api_tokens SET last_used_at = ? WHERE id = ?")
            .bind(at.timestamp_millis())
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    async fn api_tokens(&self, user: UserId) -> Result<Vec<ApiToken>> {
        sqlx::query_as::<_, TokenRow>(
            "SELECT id, user_id, name, hint, created_at, last_used_at FROM api_tokens \
             WHERE user_id = ? ORDER BY created_at DESC, id DESC",
        )
        .bind(user)
        .fetch_all(self.pool())
        .await?
        .into_iter()
        .map(TokenRow::into_token)
        .collect()
    }

    async fn revoke_api_token(
        &self,
        id: TokenId,
        owner: Option<UserId>,
    ) -> Result<Option<ApiToken>> {
        sqlx::query_as::<_, TokenRow>(
            "DELETE FROM api_tokens WHERE id = ? AND (? IS NULL OR user_id = ?) \
             RETURNING id, user_id, name, hint, created_at, last_used_at",
        )
        .bind(id)
        .bind(owner)
        .bind(owner)
        .fetch_optional(self.pool())
        .await?
        .map(TokenRow::into_token)
        .transpose()
    }
}
