//! The one extractor that says who is calling, used by pages, GraphQL and REST:
//! an `Authorization: Bearer` API or session token, HTTP Basic credentials (as
//! scripts written for the original system send), or the session cookie.

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::model::{SessionId, TokenId, User};
use super::{Accounts, ClientInfo, LoginError, Secret, TrustedProxies};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "sitepulse_session";

/// How the caller proved who they are.
#[derive(Debug, Clone)]
pub enum Via {
    /// A session, from the cookie or a Bearer session token.
    Session {
        id: SessionId,
        token: Secret,
    },
    ApiToken(TokenId),
    Basic,
}

#[derive(Debug, Clone)]
pub struct Identity {
    pub user: User,
    pub via: Via,
}

/// Who is calling, and whether anonymous callers may read.
#[derive(Debug, Clone)]
pub struct Caller {
    pub identity: Option<Identity>,
    pub public_read: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("sign in first")]
    Unauthenticated,
    #[error("the credentials are not valid (expired, revoked or wrong)")]
    InvalidCredentials,
    #[error("your role does not allow this")]
    Forbidden,
    #[error(transparent)]
    Login(LoginError),
    #[error("authentication is unavailable right now")]
    Unavailable,
}

impl Caller {
    pub fn user(&self) -> Option<&User> {
        self.identity.as_ref().map(|i| &i.user)
    }

    pub fn may_read(&self) -> bool {
        self.public_read || self.identity.is_some()
    }

    pub fn require_read(&self) -> Result<(), AuthError> {
        if self.may_read() {
            Ok(())
        } else {
            Err(AuthError::Unauthenticated)
        }
    }

    /// Any signed-in user (for their own password and API tokens).
    pub fn require_user(&self) -> Result<&Identity, AuthError> {
        self.identity.as_ref().ok_or(AuthError::Unauthenticated)
    }

    /// An admin: changes to websites and users.
    pub fn require_admin(&self) -> Result<&Identity, AuthError> {
        let identity = self.require_user()?;
        if identity.user.is_admin() {
            Ok(identity)
        } else {
            Err(AuthError::Forbidden)
        }
    }

    pub fn is_admin(&self) -> bool {
        self.user().is_some_and(User::is_admin)
    }

    /// The session id when signed in through a session.
    pub fn session(&self) -> Option<SessionId> {
        match self.identity.as_ref()?.via {
            Via::Session { id, .. } => Some(id),
            _ => None,
        }
    }
}

/// The value of the session cookie, if the request carries one.
pub fn session_cookie(headers: &HeaderMap) -> Option<Secret> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| Secret::from_client(value))
        .filter(|s| !s.expose().is_empty())
}

enum Presented {
    Bearer(Secret),
    Basic { username: String, password: String },
}

fn authorization(headers: &HeaderMap) -> Result<Option<Presented>, AuthError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| AuthError::InvalidCredentials)?;
    let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value, ""));
    if scheme.eq_ignore_ascii_case("bearer") {
        return Ok(Some(Presented::Bearer(Secret::from_client(rest))));
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = STANDARD
            .decode(rest.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or(AuthError::InvalidCredentials)?;
        let (username, password) = decoded
            .split_once(':')
            .ok_or(AuthError::InvalidCredentials)?;
        return Ok(Some(Presented::Basic {
            username: username.to_owned(),
            password: password.to_owned(),
        }));
    }
    Err(AuthError::InvalidCredentials)
}

impl<S> FromRequestParts<S> for Caller
where
    Accounts: FromRef<S>,
    TrustedProxies: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        let accounts = Accounts::from_ref(state);
        let public_read = accounts.config().public_read;
        let identity = match authorization(&parts.headers)? {
            Some(Presented::Bearer(token)) => Some(bearer(&accounts, token).await?),
            Some(Presented::Basic { username, password }) => {
                let client = ClientInfo::from_parts(parts, &TrustedProxies::from_ref(state));
                let user = accounts
                    .verify_login(&username, &password, client.ip)
                    .await
                    .map_err(|err| match err {
                        LoginError::Rejected => AuthError::InvalidCredentials,
                        other => AuthError::Login(other),
                    })?;
                Some(Identity {
                    user,
                    via: Via::Basic,
                })
            }
            // A stale cookie is no error: the visitor is simply not signed in.
            None => match session_cookie(&parts.headers) {
                Some(token) => {
                    accounts
                        .session(&token)
                        .await
                        .map_err(unavailable)?
                        .map(|session| Identity {
                            user: session.user,
                            via: Via::Session {
                                id: session.id,
                                token,
                            },
                        })
                }
                None => None,
            },
        };
        let caller = Caller {
            identity,
            public_read,
        };
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

/// Who a Bearer token (API or session) belongs to, for callers outside an HTTP
/// request such as a WebSocket's `connection_init`.
pub async fn identify_bearer(accounts: &Accounts, token: &str) -> Result<Identity, AuthError> {
    bearer(accounts, Secret::from_client(token)).await
}

async fn bearer(accounts: &Accounts, token: Secret) -> Result<Identity, AuthError> {
    if token.is_api_token() {
        let (api_token, user) = accounts
            .api_token(&token)
            .await
            .map_err(unavailable)?
            .ok_or(AuthError::InvalidCredentials)?;
        return Ok(Identity {
            user,
            via: Via::ApiToken(api_token.id),
        });
    }
    let session = accounts
        .session(&token)
        .await
        .map_err(unavailable)?
        .ok_or(AuthError::InvalidCredentials)?;
    Ok(Identity {
        user: session.user,
        via: Via::Session {
            id: session.id,
            token,
        },
    })
}

fn unavailable(err: crate::store::StoreError) -> AuthError {
    tracing::error!(error = %err, "cannot check credentials");
    AuthError::Unavailable
}

impl AuthError {
    pub fn status(&self) -> StatusCode {
        match self {
            AuthError::Unauthenticated | AuthError::InvalidCredentials => StatusCode::UNAUTHORIZED,
            AuthError::Forbidden => StatusCode::FORBIDDEN,
            AuthError::Login(LoginError::RateLimited { .. }) => StatusCode::TOO_MANY_REQUESTS,
            AuthError::Login(LoginError::Rejected) => StatusCode::UNAUTHORIZED,
            AuthError::Login(_) | AuthError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// `Retry-After` for a rate-limited caller.
    pub fn retry_after(&self) -> Option<HeaderValue> {
        match self {
            AuthError::Login(LoginError::RateLimited { retry_after }) => {
                Some(HeaderValue::from(retry_after.as_secs().max(1)))
            }
            _ => None,
        }
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let mut response = (self.status(), format!("{self}\n")).into_response();
        if let Some(retry) = self.retry_after() {
            response.headers_mut().insert(header::RETRY_AFTER, retry);
        }
        response
    }
}
