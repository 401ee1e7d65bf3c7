//! The REST endpoints of the original system, with its JSON shapes, so scripts
//! written for it keep working. Reads follow `--public-read`; writes need an
//! admin, by HTTP Basic (as the original's proxy asked), a Bearer token or a
//! session.

use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{delete, get, post};
use axum::{Form, Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::AppState;
use crate::auth::{AuthError, Caller};
use crate::domain::{Check, NewWebsite, Website, WebsiteId};
use crate::websites::WebsiteError;

/// Checks returned by `/state` when the caller names no limit: 30 days at one a minute.
pub const DEFAULT_STATE_LIMIT: u32 = 43_200;
pub const MAX_STATE_LIMIT: u32 = 100_000;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api", get(list))
        .route("/api/website", post(create))
        .route("/api/website/{id}", delete(remove))
        .route("/api/website/{id}/state", get(state_of))
}

#[derive(Serialize)]
struct WebsiteJson {
    #[serde(rename = "ID")]
    id: WebsiteId,
    #[serde(rename = "Name")]
    name: String,
    #[serde(rename = "URL")]
    url: String,
}

impl From<Website> for WebsiteJson {
    fn from(w: Website) -> Self {
        Self {
            id: w.id,
            name: w.name,
            url: w.url,
        }
    }
}

#[derive(Serialize)]
struct CheckJson {
    /// Checks are keyed by website and slot; the slot in milliseconds is unique
    /// within a website.
    #[serde(rename = "ID")]
    id: i64,
    #[serde(rename = "CreatedAt")]
    created_at: DateTime<Utc>,
    #[serde(rename = "UpdatedAt")]
    updated_at: DateTime<Utc>,
    #[serde(rename = "DeletedAt")]
    deleted_at: Option<DateTime<Utc>>,
    website: WebsiteId,
    up: bool,
    /// 0 when no response arrived, as the original stored it.
    return_code: u16,
    request_date: DateTime<Utc>,
    response_time_ms: u32,
}

impl From<Check> for CheckJson {
    fn from(c: Check) -> Self {
        Self {
            id: c.slot.timestamp_millis(),
            created_at: c.checked_at,
            updated_at: c.checked_at,
            deleted_at: None,
            website: c.website_id,
            up: c.up,
            return_code: c.status_code.unwrap_or(0),
            request_date: c.checked_at,
            response_time_ms: c.response_time_ms,
        }
    }
}

#[derive(Deserialize)]
struct WebsiteInput {
    #[serde(rename = "Name", alias = "name")]
    name: String,
    #[serde(rename = "URL", alias = "url", alias = "Url")]
    url: String,
}

/// A REST error: a status and `{"error": "...", "field": "..."}`.
pub struct ApiError {
    status: StatusCode,
    message: String,
    field: Option<&'static str>,
    retry_after: Option<HeaderValue>,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        Self {
            status: err.status(),
            retry_after: err.retry_after(),
            message: err.to_string(),
            field: None,
        }
    }
}

impl From<WebsiteError> for ApiError {
    fn from(err: WebsiteError) -> Self {
        match err {
            WebsiteError::Invalid(invalid) => Self {
                field: Some(invalid.field),
                ..Self::new(StatusCode::BAD_REQUEST, invalid.to_string())
            },
            WebsiteError::NotFound(_) => Self::new(StatusCode::NOT_FOUND, err.to_string()),
            WebsiteError::Store(store) => internal(store),
        }
    }
}

fn internal(err: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %err, "REST request failed");
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.message, "field": self.field });
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"Site Pulse 360\", Bearer"),
            );
        }
        if let Some(retry) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, retry);
        }
        response
    }
}

/// The caller, with authentication failures answered in the REST shape.
struct ApiCaller(Caller);

impl FromRequestParts<AppState> for ApiCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Caller::from_request_parts(parts, state)
            .await
            .map(ApiCaller)
            .map_err(ApiError::from)
    }
}

fn parse_id(raw: &str) -> Result<WebsiteId, ApiError> {
    raw.parse::<WebsiteId>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("{raw:?} is not a website id (a positive integer)"),
            )
        })
}

async fn list(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
) -> Result<Json<Vec<WebsiteJson>>, ApiError> {
    caller.require_read()?;
    let websites = state.websites.list().await.map_err(internal)?;
    Ok(Json(websites.into_iter().map(WebsiteJson::from).collect()))
}

async fn create(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    request: Request,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let is_json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"));
    let input: WebsiteInput = if is_json {
        Json::<WebsiteInput>::from_request(request, &())
            .await
            .map_err(|e| ApiError::new(e.status(), e.body_text()))?
            .0
    } else {
        Form::<WebsiteInput>::from_request(request, &())
            .await
            .map_err(|e| ApiError::new(e.status(), e.body_text()))?
            .0
    };
    state
        .websites
        .create(&NewWebsite {
            name: &input.name,
            url: &input.url,
            interval: None,
            timeout: None,
        })
        .await?;
    Ok(Redirect::to("/").into_response())
}

async fn remove(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> Result<Json<WebsiteJson>, ApiError> {
    caller.require_admin()?;
    let website = state.websites.delete(parse_id(&id)?).await?;
    Ok(Json(website.into()))
}

#[derive(Deserialize)]
struct StateQuery {
    limit: Option<String>,
}

async fn state_of(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
    Query(query): Query<StateQuery>,
) -> Result<Json<Vec<CheckJson>>, ApiError> {
    caller.require_read()?;
    let id = parse_id(&id)?;
    let limit = match query.limit.as_deref() {
        None => DEFAULT_STATE_LIMIT,
        Some(raw) => raw
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_STATE_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("limit must be a number from 1 to {MAX_STATE_LIMIT}"),
                )
            })?,
    };
    if state.store.website(id).await.map_err(internal)?.is_none() {
        return Err(WebsiteError::NotFound(id).into());
    }
    let checks = state
        .store
        .recent_checks(id, None, limit)
        .await
        .map_err(internal)?;
    Ok(Json(checks.into_iter().map(CheckJson::from).collect()))
}
