//! GraphQL errors with an `extensions.code` clients can match on:
//! `UNAUTHENTICATED`, `FORBIDDEN`, `NOT_FOUND`, `BAD_USER_INPUT` (with `field`),
//! `RATE_LIMITED` (with `retryAfter` seconds) and `INTERNAL` (details only in the log).

use async_graphql::{Error, ErrorExtensions};

use crate::auth::{AccountError, AuthError, LoginError};
use crate::domain::ValidationError;
use crate::store::StoreError;
use crate::websites::WebsiteError;

pub fn coded(code: &'static str, message: impl Into<String>) -> Error {
    Error::new(message).extend_with(|_, e| e.set("code", code))
}

pub fn not_found(what: &str) -> Error {
    coded("NOT_FOUND", format!("no {what} with that id"))
}

pub fn invalid(err: ValidationError) -> Error {
    Error::new(err.message).extend_with(|_, e| {
        e.set("code", "BAD_USER_INPUT");
        e.set("field", err.field);
    })
}

pub fn internal(err: impl std::fmt::Display) -> Error {
    tracing::error!(error = %err, "GraphQL request failed");
    coded("INTERNAL", "internal error")
}

pub fn auth(err: AuthError) -> Error {
    match err {
        AuthError::Unauthenticated => coded("UNAUTHENTICATED", "sign in first"),
        AuthError::InvalidCredentials => coded("UNAUTHENTICATED", err.to_string()),
        AuthError::Forbidden => coded("FORBIDDEN", err.to_string()),
        AuthError::Login(login) => self::login(login),
        AuthError::Unavailable => internal("authentication unavailable"),
    }
}

pub fn login(err: LoginError) -> Error {
    match err {
        LoginError::Rejected => coded("UNAUTHENTICATED", "wrong username or password"),
        LoginError::RateLimited { retry_after } => {
            Error::new(err.to_string()).extend_with(|_, e| {
                e.set("code", "RATE_LIMITED");
                e.set("retryAfter", retry_after.as_secs().max(1));
            })
        }
        other => internal(other),
    }
}

pub fn website(err: WebsiteError) -> Error {
    match err {
        WebsiteError::Invalid(v) => invalid(v),
        WebsiteError::NotFound(_) => not_found("website"),
        WebsiteError::Store(e) => internal(e),
    }
}

pub fn account(err: AccountError) -> Error {
    match err {
        AccountError::Invalid(v) => invalid(v),
        AccountError::Taken(_) => Error::new(err.to_string()).extend_with(|_, e| {
            e.set("code", "BAD_USER_INPUT");
            e.set("field", "username");
        }),
        AccountError::UnknownUser => not_found("user"),
        AccountError::UnknownToken => not_found("API token"),
        AccountError::LastAdmin => coded("FORBIDDEN", err.to_string()),
        AccountError::Hash(e) => internal(e),
        AccountError::Store(e) => internal(e),
    }
}

pub fn store(err: StoreError) -> Error {
    internal(err)
}
