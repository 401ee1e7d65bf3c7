//! Users, sessions and API tokens in the database. Both backends implement
//! [`AccountStore`]; the rules (hashing, expiry, roles) live in `crate::auth`.

mod postgres;
mod sqlite;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::Result;
use crate::auth::model::{
    ApiToken, NewUser, Role, Session, SessionId, StoredUser, TokenId, User, UserId,
};

/// When a session stops being valid: idle since before `idle_cutoff`, or created
/// before `created_cutoff`.
#[derive(Debug, Clone, Copy)]
pub struct SessionCutoffs {
    pub idle: DateTime<Utc>,
    pub created: DateTime<Utc>,
}

#[async_trait]
pub trait AccountStore: Send + Sync + 'static {
    async fn count_users(&self) -> Result<u64>;
    async fn count_admins(&self) -> Result<u64>;
    /// `None` when a user with that name (in any case) exists.
    async fn create_user(&self, user: &NewUser) -> Result<Option<User>>;
    /// Creates the user only when no user exists at all; `None` otherwise.
    async fn create_first_user(&self, user: &NewUser) -> Result<Option<User>>;
    async fn user(&self, id: UserId) -> Result<Option<User>>;
    /// Looks a user up by the lower-cased name.
    async fn user_by_key(&self, username_key: &str) -> Result<Option<StoredUser>>;
    /// All users, ordered by name.
    async fn users(&self) -> Result<Vec<User>>;
    /// Replaces the hash and ends every session of the user except `keep`;
    /// `false` when no such user exists.
    async fn set_password(
        &self,
        id: UserId,
        password_hash: &str,
        keep: Option<SessionId>,
    ) -> Result<bool>;
    async fn set_role(&self, id: UserId, role: Role) -> Result<Option<User>>;
    /// Deletes the user with their sessions and tokens; returns them as they were.
    async fn delete_user(&self, id: UserId) -> Result<Option<User>>;

    async fn create_session(&self, user: UserId, token_hash: &[u8]) -> Result<SessionId>;
    /// The valid session with this token hash, with its user.
    async fn session(&self, token_hash: &[u8], cutoffs: SessionCutoffs) -> Result<Option<Session>>;
    async fn touch_session(&self, id: SessionId, at: DateTime<Utc>) -> Result<()>;
    /// `false` when no such session existed.
    async fn delete_session(&self, token_hash: &[u8]) -> Result<bool>;
    /// Deletes every expired session; returns how many.
    async fn prune_sessions(&self, cutoffs: SessionCutoffs) -> Result<u64>;

    async fn create_api_token(
        &self,
        user: UserId,
        name: &str,
        token_hash: &[u8],
        hint: &str,
    ) -> Result<ApiToken>;
    /// The token with this hash and its owner.
    async fn api_token(&self, token_hash: &[u8]) -> Result<Option<(ApiToken, User)>>;
    async fn touch_api_token(&self, id: TokenId, at: DateTime<Utc>) -> Result<()>;
    /// A user's tokens, newest first.
    async fn api_tokens(&self, user: UserId) -> Result<Vec<ApiToken>>;
    /// Deletes the token; with `owner`, only when it belongs to that user.
    async fn revoke_api_token(
        &self,
        id: TokenId,
        owner: Option<UserId>,
    ) -> Result<Option<ApiToken>>;
}

fn role_from_column(raw: &str) -> Result<Role> {
    Role::parse(raw).ok_or_else(|| super::StoreError::Corrupt(format!("unknown role {raw:?}")))
}

/// `true` when the error is a violated unique constraint.
fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}
