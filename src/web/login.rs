//! Sign-in and sign-out pages. The session token lives in an `HttpOnly`,
//! `SameSite=Lax` cookie (`Secure` when the client used HTTPS); the database keeps
//! only its hash.

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout;
use crate::auth::{Caller, ClientInfo, LoginError, Via};
use crate::http::AppState;

pub use crate::auth::SESSION_COOKIE;

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    next: Option<String>,
}

/// Where to go after signing in: only paths of this site, so a crafted link cannot
/// send the user elsewhere.
pub fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.starts_with("/\\")
                && path.is_ascii()
                && !path.chars().any(|c| c.is_ascii_control()) =>
        {
            path
        }
        _ => "/",
    }
}

fn form(username: &str, next: &str, error: Option<&str>) -> Markup {
    html! {
        h1 { "Sign in" }
        @if let Some(error) = error {
            p.error role="alert" { (error) }
        }
        form.card method="post" action="/login" {
            input type="hidden" name="next" value=(next);
            label { "Username"
                input name="username" value=(username) autocomplete="username" required autofocus;
            }
            label { "Password"
                input type="password" name="password" autocomplete="current-password" required;
            }
            button type="submit" { "Sign in" }
        }
    }
}

pub async fn page(caller: Caller, Query(query): Query<NextQuery>) -> Markup {
    let next = safe_next(query.next.as_deref());
    let body = match caller.user() {
        Some(user) => html! {
            h1 { "Signed in" }
            p { "You are signed in as " strong { (user.username) } ". "
                a href=(next) { "Continue" } }
        },
        None => form("", next, None),
    };
    layout::page("Sign in", caller.user(), body)
}

fn session_cookie(token: &str, max_age_secs: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}"
    ))
    .expect("session tokens are URL-safe base64")
}

pub async fn submit(
    State(state): State<AppState>,
    client: ClientInfo,
    form_result: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let Form(input) = match form_result {
        Ok(form) => form,
        Err(rejection) => {
            let message = format!(
                "The sign-in form could not be read: {}",
                rejection.body_text()
            );
            let body = form("", "/", Some(&message));
            return (rejection.status(), layout::page("Sign in", None, body)).into_response();
        }
    };
    let next = safe_next(input.next.as_deref()).to_owned();
    match state
        .accounts
        .login(&input.username, &input.password, client.ip)
        .await
    {
        Ok(signed_in) => {
            let max_age = state.accounts.config().session_max_age.as_secs();
            let mut response = Redirect::to(&next).into_response();
            response.headers_mut().insert(
                header::SET_COOKIE,
                session_cookie(signed_in.token.expose(), max_age, client.https),
            );
            response
        }
        Err(err) => {
            let (status, message) = match &err {
                LoginError::Rejected => (
                    StatusCode::UNAUTHORIZED,
                    "Wrong username or password.".to_owned(),
                ),
                LoginError::RateLimited { .. } => (
                    StatusCode::TOO_MANY_REQUESTS,
                    format!("{}.", capitalised(&err.to_string())),
                ),
                LoginError::Hash(_) | LoginError::Store(_) => {
                    tracing::error!(error = %err, "sign-in failed");
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "Signing in is not possible right now; try again shortly.".to_owned(),
                    )
                }
            };
            let body = form(&input.username, &next, Some(&message));
            let mut response = (status, layout::page("Sign in", None, body)).into_response();
            if let LoginError::RateLimited { retry_after } = err {
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(retry_after.as_secs().max(1)),
                );
            }
            response
        }
    }
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// `GET /logout`: a button, since signing out changes state and must be a POST.
pub async fn confirm_logout(caller: Caller) -> Markup {
    let body = html! {
        h1 { "Sign out" }
        form.card method="post" action="/logout" {
            button type="submit" { "Sign out" }
        }
    };
    layout::page("Sign out", caller.user(), body)
}

pub async fn logout(State(state): State<AppState>, caller: Caller, client: ClientInfo) -> Response {
    if let Some(identity) = &caller.identity
        && let Via::Session { token, .. } = &identity.via
        && let Err(err) = state.accounts.logout(token).await
    {
        tracing::error!(error = %err, "sign-out failed");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "Signing out is not possible right now; try again shortly.\n",
        )
            .into_response();
    }
    let mut response = Redirect::to("/login").into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session_cookie("", 0, client.https));
    response
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(safe_next(Some("/websites/3?x=1")), "/websites/3?x=1");
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("/\nSet-Cookie: x")), "/");
        assert_eq!(safe_next(None), "/");
    }
}
