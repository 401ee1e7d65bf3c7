//! Who may do what: users with argon2id password hashes, sessions kept in the
//! database (so every replica accepts them and a sign-out ends them everywhere),
//! API tokens, roles, and limits on sign-in attempts.
//!
//! [`Accounts`] holds the rules every front door shares (pages, GraphQL, REST);
//! [`Caller`] is the extractor that says who is calling.

mod caller;
mod client;
mod limit;
pub mod model;
mod password;
mod secret;

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

pub use caller::{AuthError, Caller, Identity, SESSION_COOKIE, Via, identify_bearer};
pub use client::{ClientInfo, TrustedProxies, parse_network};
pub use limit::LoginLimiter;
pub use password::{HashError, PasswordHasher};
pub use secret::{API_TOKEN_PREFIX, Secret};

use crate::domain::ValidationError;
use crate::store::{DynStore, SessionCutoffs, StoreError};
use model::{
    ApiToken, NewUser, Password, Role, Session, SessionId, TokenId, User, UserId, Username,
    parse_token_name,
};

/// A session's last-seen time is written at most this often, so that reading
/// pages does not turn into a stream of writes.
const TOUCH_EVERY: chrono::TimeDelta = chrono::TimeDelta::minutes(1);

#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Anonymous visitors may read pages and queries.
    pub public_read: bool,
    pub min_password_chars: usize,
    pub session_idle: Duration,
    pub session_max_age: Duration,
    pub login_attempts_per_minute: NonZeroU32,
    pub hash_concurrency: usize,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            public_read: true,
            min_password_chars: 12,
            session_idle: Duration::from_secs(7 * 86_400),
            session_max_age: Duration::from_secs(30 * 86_400),
            login_attempts_per_minute: NonZeroU32::new(10).expect("not zero"),
            hash_concurrency: PasswordHasher::default_concurrency(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("a user named {0:?} already exists")]
    Taken(String),
    #[error("no such user")]
    UnknownUser,
    #[error("no such API token")]
    UnknownToken,
    #[error("the last admin cannot be removed or demoted")]
    LastAdmin,
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// The same answer for an unknown user and a wrong password.
    #[error("wrong username or password")]
    Rejected,
    #[error("too many sign-in attempts; try again in {} s", .retry_after.as_secs().max(1))]
    RateLimited { retry_after: Duration },
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A successful sign-in: the user and the session token to hand to the client.
#[derive(Debug)]
pub struct SignedIn {
    pub user: User,
    pub session: SessionId,
    pub token: Secret,
}

#[derive(Clone)]
pub struct Accounts {
    inner: Arc<Inner>,
}

struct Inner {
    store: DynStore,
    hasher: PasswordHasher,
    limiter: LoginLimiter,
    config: AuthConfig,
}

impl Accounts {
    pub fn new(store: DynStore, config: AuthConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                hasher: PasswordHasher::new(config.hash_concurrency),
                limiter: LoginLimiter::new(config.login_attempts_per_minute),
                store,
                config,
            }),
        }
    }

    pub fn config(&self) -> &AuthConfig {
        &self.inner.config
    }

    fn store(&self) -> &DynStore {
        &self.inner.store
    }

    pub fn parse_password(&self, raw: &str) -> Result<Password, ValidationError> {
        Password::parse(raw, self.inner.config.min_password_chars)
    }

    /// Checks a username and password, counting the attempt against the limits of
    /// the client's address and of the username.
    pub async fn verify_login(
        &self,
        username: &str,
        password: &str,
        client: IpAddr,
    ) -> Result<User, LoginError> {
        let key = username.trim().to_lowercase();
        self.inner
            .limiter
            .attempt(client, &key)
            .map_err(|retry_after| LoginError::RateLimited { retry_after })?;
        let stored = match Username::parse(username) {
            Ok(_) => self.store().user_by_key(&key).await?,
            Err(_) => None,
        };
        let hash = stored.as_ref().map(|s| s.password_hash.as_str());
        // Long inputs are never hashed: they cannot be a valid password.
        let plausible = password.chars().count() <= model::MAX_PASSWORD_CHARS;
        let matches = self
            .inner
            .hasher
            .verify(if plausible { password } else { "" }, hash)
            .await?;
        match stored {
            Some(stored) if matches && plausible => Ok(stored.user),
            _ => Err(LoginError::Rejected),
        }
    }

    /// Signs a user in: verifies the password and opens a session.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        client: IpAddr,
    ) -> Result<SignedIn, LoginError> {
        let user = self.verify_login(username, password, client).await?;
        let token = Secret::session();
        let session = self.store().create_session(user.id, &token.hash()).await?;
        tracing::info!(user = %user.username, "signed in");
        Ok(SignedIn {
            user,
            session,
            token,
        })
    }

    /// Ends the session of this token; `false` when there was none.
    pub async fn logout(&self, token: &Secret) -> Result<bool, StoreError> {
        self.store().delete_session(&token.hash()).await
    }

    fn cutoffs(&self) -> SessionCutoffs {
        let now = Utc::now();
        let back =
            |d: Duration| now - chrono::TimeDelta::from_std(d).unwrap_or(chrono::TimeDelta::MAX);
        SessionCutoffs {
            idle: back(self.inner.config.session_idle),
            created: back(self.inner.config.session_max_age),
        }
    }

    /// The valid session of this token; refreshes its idle timer.
    pub async fn session(&self, token: &Secret) -> Result<Option<Session>, StoreError> {
        let Some(session) = self.store().session(&token.hash(), self.cutoffs()).await? else {
            return Ok(None);
        };
        let now = Utc::now();
        if now - session.last_seen_at >= TOUCH_EVERY {
            self.store().touch_session(session.id, now).await?;
        }
        Ok(Some(session))
    }

    /// The owner of this API token; records when it was last used.
    pub async fn api_token(&self, token: &Secret) -> Result<Option<(ApiToken, User)>, StoreError> {
        let Some((api_token, user)) = self.store().api_token(&token.hash()).await? else {
            return Ok(None);
        };
        let now = Utc::now();
        if api_token
            .last_used_at
            .is_none_or(|last| now - last >= TOUCH_EVERY)
        {
            self.store().touch_api_token(api_token.id, now).await?;
        }
        Ok(Some((api_token, user)))
    }

    /// Deletes expired sessions; returns how many.
    pub async fn prune_sessions(&self) -> Result<u64, StoreError> {
        self.store().prune_sessions(self.cutoffs()).await
    }

    /// Forgets clients and usernames whose sign-in limit has fully recovered.
    pub fn forget_idle_limits(&self) {
        self.inner.limiter.forget_idle();
    }

    pub async fn create_user(
        &self,
        username: &str,
        password: &str,
        role: Role,
    ) -> Result<User, AccountError> {
        let new = self.new_user(username, password, role).await?;
        self.store()
            .create_user(&new)
            .await?
            .ok_or_else(|| AccountError::Taken(new.username.as_str().to_owned()))
    }

    async fn new_user(
        &self,
        username: &str,
        password: &str,
        role: Role,
    ) -> Result<NewUser, AccountError> {
        let username = Username::parse(username)?;
        let password = self.parse_password(password)?;
        Ok(NewUser {
            username,
            password_hash: self.inner.hasher.hash(password.expose()).await?,
            role,
        })
    }

    /// Creates the first admin when no user exists yet. Returns the user and, when
    /// no password was given, the generated one (to be shown once).
    pub async fn ensure_first_admin(
        &self,
        username: &str,
        password: Option<&str>,
    ) -> Result<Option<(User, Option<String>)>, AccountError> {
        if self.store().count_users().await? > 0 {
            return Ok(None);
        }
        let generated = match password {
            Some(_) => None,
            None => Some(secret::random_text(18)),
        };
        let password = password.or(generated.as_deref()).unwrap_or_default();
        let new = self.new_user(username, password, Role::Admin).await?;
        // Another replica may have created it meanwhile: then this one did nothing.
        let created = self.store().create_first_user(&new).await?;
        Ok(created.map(|user| (user, generated)))
    }

    pub async fn user_by_name(&self, username: &str) -> Result<Option<User>, AccountError> {
        let key = Username::parse(username)?.key();
        Ok(self.store().user_by_key(&key).await?.map(|s| s.user))
    }

    pub async fn users(&self) -> Result<Vec<User>, StoreError> {
        self.store().users().await
    }

    /// Sets a new password and ends the user's sessions except `keep` (the one
    /// that asked for the change, if any).
    pub async fn change_password(
        &self,
        user: UserId,
        password: &str,
        keep: Option<SessionId>,
    ) -> Result<(), AccountError> {
        let password = self.parse_password(password)?;
        let hash = self.inner.hasher.hash(password.expose()).await?;
        if !self.store().set_password(user, &hash, keep).await? {
            return Err(AccountError::UnknownUser);
        }
        Ok(())
    }

    pub async fn set_role(&self, user: UserId, role: Role) -> Result<User, AccountError> {
        let current = self
            .store()
            .user(user)
            .await?
            .ok_or(AccountError::UnknownUser)?;
        if current.is_admin() && role != Role::Admin && self.store().count_admins().await? <= 1 {
            return Err(AccountError::LastAdmin);
        }
        self.store()
            .set_role(user, role)
            .await?
            .ok_or(AccountError::UnknownUser)
    }

    pub async fn delete_user(&self, user: UserId) -> Result<User, AccountError> {
        let current = self
            .store()
            .user(user)
            .await?
            .ok_or(AccountError::UnknownUser)?;
        if current.is_admin() && self.store().count_admins().await? <= 1 {
            return Err(AccountError::LastAdmin);
        }
        self.store()
            .delete_user(user)
            .await?
            .ok_or(AccountError::UnknownUser)
    }

    /// Creates an API token for `user`; the secret is returned only here.
    pub async fn create_api_token(
        &self,
        user: UserId,
        name: &str,
    ) -> Result<(ApiToken, Secret), AccountError> {
        let name = parse_token_name(name)?;
        let secret = Secret::api_token();
        let token = self
            .store()
            .create_api_token(user, &name, &secret.hash(), &secret.hint())
            .await?;
        Ok((token, secret))
    }

    pub async fn api_tokens(&self, user: UserId) -> Result<Vec<ApiToken>, StoreError> {
        self.store().api_tokens(user).await
    }

    /// Revokes a token of the caller's own; admins may revoke anyone's.
    pub async fn revoke_api_token(
        &self,
        caller: &User,
        id: TokenId,
    ) -> Result<ApiToken, AccountError> {
        let owner = (!caller.is_admin()).then_some(caller.id);
        self.store()
            .revoke_api_token(id, owner)
            .await?
            .ok_or(AccountError::UnknownToken)
    }
}
