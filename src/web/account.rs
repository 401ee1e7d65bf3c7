//! `/account`: who is signed in, changing the password, and API tokens (created
//! with a name, shown once, listed with their last use, revocable).

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use maud::html;
use serde::Deserialize;

use super::{PageError, layout};
use crate::auth::{AccountError, Caller, ClientInfo, Identity, LoginError, Secret};
use crate::http::AppState;

/// What the page reports at its top after a form was sent.
enum Notice {
    Done(String),
    Failed(String),
    NewToken { name: String, secret: Secret },
}

fn signed_in<'a>(caller: &'a Caller, uri: &Uri) -> Result<&'a Identity, PageError> {
    caller
        .require_user()
        .map_err(|e| PageError::from_auth(e, uri))
}

fn when(time: Option<DateTime<Utc>>, tz: chrono_tz::Tz) -> String {
    time.map_or_else(|| "never".to_owned(), |t| super::fmt::time(t, tz))
}

async fn render(
    state: &AppState,
    identity: &Identity,
    status: StatusCode,
    notice: Option<Notice>,
) -> Result<Response, PageError> {
    let user = &identity.user;
    let tz = state.board.timezone();
    let tokens = state
        .accounts
        .api_tokens(user.id)
        .await
        .map_err(PageError::internal)?;
    let body = html! {
        h1 { "Your account" }
        p { "Signed in as " strong { (user.username) } " (" (user.role) ")." }
        @match &notice {
            Some(Notice::Done(text)) => p.notice role="status" { (text) },
            Some(Notice::Failed(text)) => p.error role="alert" { (text) },
            Some(Notice::NewToken { name, secret }) => div.notice role="status" {
                p { "New API token " strong { (name) } ". Copy it now: it is shown only once." }
                code.token #new-token { (secret.expose()) }
                button type="button" data-copy="new-token" hidden { "Copy token" }
                p { "Send it as " code { "Authorization: Bearer …" } "." }
            },
            None => {},
        }
        section {
            h2 { "API tokens" }
            @if tokens.is_empty() {
                p.empty { "No API tokens yet." }
            } @else {
                table.tokens {
                    thead { tr { th { "Name" } th { "Ends in" } th { "Created" } th { "Last used" } th {} } }
                    tbody {
                        @for token in &tokens {
                            tr {
                                td { (token.name) }
                                td { code { "…" (token.hint) } }
                                td { (when(Some(token.created_at), tz)) }
                                td { (when(token.last_used_at, tz)) }
                                td {
                                    form.inline method="post" action={ "/account/tokens/" (token.id) "/revoke" } {
                                        button.danger type="submit" { "Revoke" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            form.card method="post" action="/account/tokens" {
                label { "Name" input name="name" required maxlength="100" placeholder="e.g. deploy script"; }
                button type="submit" { "Create token" }
            }
        }
        section {
            h2 { "Change password" }
            form.card method="post" action="/account/password" {
                label { "Current password"
                    input type="password" name="current_password" autocomplete="current-password" required; }
                label { "New password"
                    input type="password" name="new_password" autocomplete="new-password" required
                        minlength=(state.accounts.config().min_password_chars); }
                label { "New password again"
                    input type="password" name="confirm_password" autocomplete="new-password" required; }
                button type="submit" { "Change password" }
            }
        }
    };
    Ok((status, layout::page("Account", Some(user), body)).into_response())
}

pub async fn page(
    State(state): State<AppState>,
    caller: Caller,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, PageError> {
    let identity = signed_in(&caller, &uri)?;
    render(&state, identity, StatusCode::OK, None).await
}

#[derive(Deserialize)]
pub struct PasswordForm {
    current_password: String,
    new_password: String,
    confirm_password: String,
}

pub async fn change_password(
    State(state): State<AppState>,
    caller: Caller,
    client: ClientInfo,
    OriginalUri(uri): OriginalUri,
    form: Result<Form<PasswordForm>, FormRejection>,
) -> Result<Response, PageError> {
    let identity = signed_in(&caller, &uri)?;
    let form = match form {
        Ok(Form(form)) => form,
        Err(rejection) => {
            let notice = Notice::Failed(format!(
                "The form could not be read: {}",
                rejection.body_text()
            ));
            return render(&state, identity, rejection.status(), Some(notice)).await;
        }
    };
    let failed = |status, text: String| (status, Some(Notice::Failed(text)));
    let (status, notice) = if form.new_password != form.confirm_password {
        failed(StatusCode::BAD_REQUEST, "The new passwords differ.".into())
    } else {
        match state
            .accounts
            .verify_login(&identity.user.username, &form.current_password, client.ip)
            .await
        {
            Err(LoginError::Rejected) => failed(
                StatusCode::BAD_REQUEST,
                "The current password is wrong.".into(),
            ),
            Err(err @ LoginError::RateLimited { .. }) => {
                failed(StatusCode::TOO_MANY_REQUESTS, err.to_string())
            }
            Err(err) => return Err(PageError::internal(err)),
            Ok(_) => match state
                .accounts
                .change_password(identity.user.id, &form.new_password, caller.session())
                .await
            {
                Ok(()) => (
                    StatusCode::OK,
                    Some(Notice::Done(
                        "Password changed; your other sessions were signed out.".into(),
                    )),
                ),
                Err(AccountError::Invalid(invalid)) => {
                    failed(StatusCode::BAD_REQUEST, invalid.message)
                }
                Err(err) => return Err(PageError::internal(err)),
            },
        }
    };
    render(&state, identity, status, notice).await
}

#[derive(Deserialize)]
pub struct TokenForm {
    name: String,
}

pub async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    OriginalUri(uri): OriginalUri,
    form: Result<Form<TokenForm>, FormRejection>,
) -> Result<Response, PageError> {
    let identity = signed_in(&caller, &uri)?;
    let (status, notice) = match form {
        Err(rejection) => (
            rejection.status(),
            Notice::Failed(format!(
                "The form could not be read: {}",
                rejection.body_text()
            )),
        ),
        Ok(Form(form)) => match state
            .accounts
            .create_api_token(identity.user.id, &form.name)
            .await
        {
            Ok((token, secret)) => (
                StatusCode::CREATED,
                Notice::NewToken {
                    name: token.name,
                    secret,
                },
            ),
            Err(AccountError::Invalid(invalid)) => {
                (StatusCode::BAD_REQUEST, Notice::Failed(invalid.message))
            }
            Err(err) => return Err(PageError::internal(err)),
        },
    };
    render(&state, identity, status, Some(notice)).await
}

pub async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    OriginalUri(uri): OriginalUri,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let identity = signed_in(&caller, &uri)?;
    let Ok(id) = id.parse() else {
        return Err(PageError::Status(
            StatusCode::NOT_FOUND,
            "No such API token.".into(),
        ));
    };
    match state.accounts.revoke_api_token(&identity.user, id).await {
        Ok(_) => Ok(Redirect::to("/account").into_response()),
        Err(AccountError::UnknownToken) => Err(PageError::Status(
            StatusCode::NOT_FOUND,
            "No such API token.".into(),
        )),
        Err(err) => Err(PageError::internal(err)),
    }
}
