//! Server-rendered pages (maud) made lively with htmx: the websites list, each
//! website's page, the forms to add and change websites, sign-in, the account page
//! and, for admins, the users. Every page works without JavaScript; with it, htmx
//! swaps in fragments and live updates arrive over Server-Sent Events (`/live`).

mod account;
pub mod assets;
mod chart;
mod fmt;
mod home;
mod layout;
pub mod live;
mod login;
mod users;
mod website;

use axum::Router;
use axum::extract::{FromRequestParts, OriginalUri};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::html;

use crate::auth::{AuthError, Caller};
use crate::http::AppState;

pub use login::SESSION_COOKIE;

pub fn routes(state: crate::leader::Leadership) -> Router<AppState> {
    Router::new()
        .route("/", get(home::page))
        .route("/live", get(live::stream))
        .route(
            "/websites/new",
            get(website::new_page).post(website::create),
        )
        .route("/websites/{id}", get(website::page))
        .route(
            "/websites/{id}/edit",
            get(website::edit_page).post(website::update),
        )
        .route("/websites/{id}/pause", post(website::pause))
        .route("/websites/{id}/resume", post(website::resume))
        .route("/websites/{id}/check", post(website::check_now))
        .route(
            "/websites/{id}/delete",
            get(website::confirm_delete).post(website::delete),
        )
        .route("/users", get(users::page).post(users::create))
        .route("/users/{id}/role", post(users::set_role))
        .route("/users/{id}/delete", post(users::delete))
        .route("/login", get(login::page).post(login::submit))
        .route("/logout", get(login::confirm_logout).post(login::logout))
        .route("/account", get(account::page))
        .route("/account/password", post(account::change_password))
        .route("/account/tokens", post(account::create_token))
        .route("/account/tokens/{id}/revoke", post(account::revoke_token))
        .route("/assets/{file}", get(assets::serve))
        .route("/favicon.ico", get(assets::favicon))
        .layer(axum::middleware::from_fn_with_state(state, with_replica))
}

/// Makes the replica serving a page, and the leader, known to the page footer.
async fn with_replica(
    axum::extract::State(leadership): axum::extract::State<crate::leader::Leadership>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let replica = layout::Replica {
        this: leadership.identity().to_owned(),
        leader: leadership.leader(),
    };
    layout::REPLICA.scope(replica, next.run(request)).await
}

/// Whether htmx sent the request, which then gets a fragment instead of a page.
pub fn is_htmx(headers: &HeaderMap) -> bool {
    headers.get("hx-request").is_some_and(|v| v == "true")
}

/// Any route nobody serves: a friendly page for people, plain text for programs.
pub async fn not_found(caller: Caller, headers: HeaderMap) -> Response {
    let wants_html = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    if !wants_html {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    }
    let body = html! {
        h1 { "Page not found" }
        p { "There is nothing at this address. It may have moved, or the link was mistyped." }
        p { a href="/" { "Go to the websites" } }
    };
    (
        StatusCode::NOT_FOUND,
        layout::page("Not found", caller.user(), body),
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
                let title = match status {
                    StatusCode::NOT_FOUND => "Not found",
                    StatusCode::FORBIDDEN => "Not allowed",
                    s if s.is_server_error() => "Something went wrong",
                    s => s.canonical_reason().unwrap_or("Error"),
                };
                let body = html! {
                    h1 { (title) }
                    p.error role="alert" { (message) }
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

/// Who is calling, and the address they asked for (to come back to after signing in).
async fn page_caller(parts: &mut Parts, state: &AppState) -> Result<(Caller, Uri), PageError> {
    let uri = parts
        .extensions
        .get::<OriginalUri>()
        .map_or_else(|| parts.uri.clone(), |original| original.0.clone());
    let caller = Caller::from_request_parts(parts, state)
        .await
        .map_err(|e| PageError::from_auth(e, &uri))?;
    Ok((caller, uri))
}

/// A caller who may read pages; anyone else is sent to sign in.
pub struct Reader(pub Caller);

impl FromRequestParts<AppState> for Reader {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let (caller, uri) = page_caller(parts, state).await?;
        require_read(&caller, &uri)?;
        Ok(Reader(caller))
    }
}

/// A signed-in admin: the only one who changes websites and users.
pub struct Admin(pub Caller);

impl FromRequestParts<AppState> for Admin {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let (caller, uri) = page_caller(parts, state).await?;
        caller
            .require_admin()
            .map_err(|e| PageError::from_auth(e, &uri))?;
        Ok(Admin(caller))
    }
}
