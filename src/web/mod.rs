//! Server-rendered pages (maud): the websites list, sign-in and sign-out, and the
//! account page with password change and API tokens.

mod account;
mod home;
mod layout;
mod login;

use axum::Router;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::html;

use crate::auth::{AuthError, Caller};
use crate::http::AppState;

pub use login::SESSION_COOKIE;

const APP_CSS: &str = include_str!("../../assets/app.css");

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home::page))
        .route("/login", get(login::page).post(login::submit))
        .route("/logout", get(login::confirm_logout).post(login::logout))
        .route("/account", get(account::page))
        .route("/account/password", post(account::change_password))
        .route("/account/tokens", post(account::create_token))
        .route("/account/tokens/{id}/revoke", post(account::revoke_token))
        .route("/assets/app.css", get(css))
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        APP_CSS,
    )
        .into_response()
}

/// Why a page cannot be shown, as a page.
pub enum PageError {
    /// Not signed in: go to the sign-in page and come back here afterwards.
    SignIn(Uri),
    Status(StatusCode, String),
}

impl PageError {
    pub fn from_auth(err: AuthError, uri: &Uri) -> Self {
        match err {
            AuthError::Unauthenticated => PageError::SignIn(uri.clone()),
            other => PageError::Status(other.status(), other.to_string()),
        }
    }

    pub fn internal(err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "page failed");
        PageError::Status(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong on our side; it has been logged.".into(),
        )
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::SignIn(uri) => {
                let next = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
                let next: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
                Redirect::to(&format!("/login?next={next}")).into_response()
            }
            PageError::Status(status, message) => {
                let body = html! {
                    h1 { (status.canonical_reason().unwrap_or("Error")) }
                    p.error { (message) }
                    p { a href="/" { "Back to the websites" } }
                };
                (status, layout::page("Error", None, body)).into_response()
            }
        }
    }
}

/// Reads require a signed-in user unless `--public-read` is on.
pub fn require_read(caller: &Caller, uri: &Uri) -> Result<(), PageError> {
    caller
        .require_read()
        .map_err(|e| PageError::from_auth(e, uri))
}
