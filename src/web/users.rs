//! `/users`, for admins: who may sign in, adding users, changing roles, removing.

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use super::{Admin, PageError, fmt, layout};
use crate::auth::model::{Role, UserId};
use crate::auth::{AccountError, Caller, Identity};
use crate::http::AppState;

fn identity(caller: &Caller) -> Result<&Identity, PageError> {
    caller
        .require_admin()
        .map_err(|e| PageError::Status(e.status(), e.to_string()))
}

/// The outcome of a form, shown at the top of the page.
enum Notice {
    Done(String),
    Failed(String),
}

#[derive(Debug, Default, Deserialize)]
pub struct NewUserForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    role: String,
}

#[derive(Debug, Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    role: String,
}

fn parse_role(raw: &str) -> Option<Role> {
    Role::parse(raw)
}

async fn render(
    state: &AppState,
    identity: &Identity,
    status: StatusCode,
    notice: Option<Notice>,
    typed: &NewUserForm,
) -> Result<Response, PageError> {
    let users = state.accounts.users().await.map_err(PageError::internal)?;
    let tz = state.board.timezone();
    let me = identity.user.id;
    let body = html! {
        h1 { "Users" }
        @match &notice {
            Some(Notice::Done(text)) => p.notice role="status" { (text) },
            Some(Notice::Failed(text)) => p.error role="alert" { (text) },
            None => {},
        }
        table.users {
            thead { tr {
                th scope="col" { "Username" }
                th scope="col" { "Role" }
                th scope="col" { "Added" }
                th scope="col" { span.visually-hidden { "Actions" } }
            } }
            tbody {
                @for user in &users {
                    tr {
                        td { (user.username) @if user.id == me { " (you)" } }
                        td {
                            form.inline method="post" action={ "/users/" (user.id) "/role" } {
                                label.visually-hidden for={ "role-" (user.id) } { "Role of " (user.username) }
                                select id={ "role-" (user.id) } name="role" {
                                    @for role in [Role::Admin, Role::Viewer] {
                                        option value=(role.as_str()) selected[user.role == role] { (role) }
                                    }
                                }
                                " "
                                button type="submit" { "Change role" }
                            }
                        }
                        td { (fmt::time(user.created_at, tz)) }
                        td {
                            form.inline method="post" action={ "/users/" (user.id) "/delete" } {
                                button.danger type="submit" aria-label={ "Remove " (user.username) } { "Remove" }
                            }
                        }
                    }
                }
            }
        }
        section {
            h2 { "Add a user" }
            form.card method="post" action="/users" {
                div.field {
                    label for="new-username" { "Username" }
                    input #new-username name="username" value=(typed.username) required maxlength="64" autocomplete="off";
                }
                div.field {
                    label for="new-password" { "Password" }
                    input #new-password type="password" name="password" required autocomplete="new-password"
                        minlength=(state.accounts.config().min_password_chars);
                    p.hint { "At least " (state.accounts.config().min_password_chars) " characters. Tell it to the user; they can change it on their account page." }
                }
                div.field {
                    label for="new-role" { "Role" }
                    select #new-role name="role" {
                        option value="viewer" selected[typed.role != "admin"] { "viewer: reads everything, changes nothing" }
                        option value="admin" selected[typed.role == "admin"] { "admin: manages websites and users" }
                    }
                }
                button.primary type="submit" { "Add user" }
            }
        }
    };
    Ok((status, layout::page("Users", Some(&identity.user), body)).into_response())
}

fn failure(err: AccountError) -> Result<(StatusCode, Notice), PageError> {
    let status = match &err {
        AccountError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        AccountError::Taken(_) | AccountError::LastAdmin => StatusCode::CONFLICT,
        AccountError::UnknownUser | AccountError::UnknownToken => StatusCode::NOT_FOUND,
        AccountError::Hash(_) | AccountError::Store(_) => return Err(PageError::internal(err)),
    };
    let message = match err {
        AccountError::Invalid(e) => e.message,
        other => capitalise(&other.to_string()),
    };
    Ok((status, Notice::Failed(message)))
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

/// `GET /users`.
pub async fn page(
    State(state): State<AppState>,
    Admin(caller): Admin,
) -> Result<Response, PageError> {
    let identity = identity(&caller)?;
    render(
        &state,
        identity,
        StatusCode::OK,
        None,
        &NewUserForm::default(),
    )
    .await
}

/// `POST /users`.
pub async fn create(
    State(state): State<AppState>,
    Admin(caller): Admin,
    form: Result<Form<NewUserForm>, FormRejection>,
) -> Result<Response, PageError> {
    let identity = identity(&caller)?;
    let Ok(Form(form)) = form else {
        let notice = Notice::Failed("The form could not be read.".into());
        return render(
            &state,
            identity,
            StatusCode::BAD_REQUEST,
            Some(notice),
            &NewUserForm::default(),
        )
        .await;
    };
    let Some(role) = parse_role(&form.role) else {
        let notice = Notice::Failed("Choose the role admin or viewer.".into());
        return render(
            &state,
            identity,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(notice),
            &form,
        )
        .await;
    };
    match state
        .accounts
        .create_user(&form.username, &form.password, role)
        .await
    {
        Ok(user) => {
            let notice = Notice::Done(format!("Added {} as {}.", user.username, user.role));
            render(
                &state,
                identity,
                StatusCode::OK,
                Some(notice),
                &NewUserForm::default(),
            )
            .await
        }
        Err(err) => {
            let (status, notice) = failure(err)?;
            render(&state, identity, status, Some(notice), &form).await
        }
    }
}

fn user_id(raw: &str) -> Option<UserId> {
    raw.parse().ok()
}

/// `POST /users/{id}/role`.
pub async fn set_role(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(id): Path<String>,
    form: Result<Form<RoleForm>, FormRejection>,
) -> Result<Response, PageError> {
    let identity = identity(&caller)?;
    let typed = NewUserForm::default();
    let (Some(id), Some(role)) = (
        user_id(&id),
        form.ok().and_then(|Form(f)| parse_role(&f.role)),
    ) else {
        let notice = Notice::Failed("Choose the role admin or viewer for an existing user.".into());
        return render(
            &state,
            identity,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(notice),
            &typed,
        )
        .await;
    };
    match state.accounts.set_role(id, role).await {
        Ok(_) => Ok(Redirect::to("/users").into_response()),
        Err(err) => {
            let (status, notice) = failure(err)?;
            render(&state, identity, status, Some(notice), &typed).await
        }
    }
}

/// `POST /users/{id}/delete`: removes the user with their sessions and API tokens.
pub async fn delete(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let identity = identity(&caller)?;
    let typed = NewUserForm::default();
    let Some(id) = user_id(&id) else {
        let notice = Notice::Failed("There is no such user.".into());
        return render(
            &state,
            identity,
            StatusCode::NOT_FOUND,
            Some(notice),
            &typed,
        )
        .await;
    };
    match state.accounts.delete_user(id).await {
        Ok(user) => {
            let notice = Notice::Done(format!("Removed {}.", user.username));
            render(&state, identity, StatusCode::OK, Some(notice), &typed).await
        }
        Err(err) => {
            let (status, notice) = failure(err)?;
            render(&state, identity, status, Some(notice), &typed).await
        }
    }
}
