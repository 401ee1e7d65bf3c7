//! The HTTP edge: shared state, the router with its protective layers, health
//! endpoints, and the seed-compatible REST API.

pub mod graphql;
mod response_cache;
mod rest;
mod unread;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::compression::{CompressionLayer, CompressionLevel};
use tower_http::csrf::{CsrfLayer, ProtectionError};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::auth::{Accounts, TrustedProxies};
use crate::events::EventBus;
use crate::graphql::AppSchema;
use crate::store::DynStore;
use crate::websites::Websites;

/// Largest request body accepted: forms and API calls are small.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Pages load scripts, styles and images from this service only, and no other
/// site may frame them.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
    base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Everything a request handler may need. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: DynStore,
    pub events: EventBus,
    pub websites: Websites,
    pub accounts: Accounts,
    pub proxies: TrustedProxies,
    pub schema: AppSchema,
    /// How often idle subscription connections are pinged.
    pub ws_keepalive: Duration,
    pub graphql_cache: Arc<response_cache::ResponseCache>,
    /// What the websites list shows, kept current for pages and live updates.
    pub board: crate::web::live::Board,
    /// Runs "check now" requests.
    pub probe: crate::checker::Probe,
    /// Whether this replica runs the checker, and who does.
    pub leadership: crate::leader::Leadership,
    /// Cancelled when the service shuts down: long-lived connections end.
    pub shutdown: tokio_util::sync::CancellationToken,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The result writer's counters (results waiting for the database).
    pub writer_stats: Arc<crate::checker::WriterStats>,
}

impl FromRef<AppState> for Accounts {
    fn from_ref(state: &AppState) -> Self {
        state.accounts.clone()
    }
}

impl FromRef<AppState> for TrustedProxies {
    fn from_ref(state: &AppState) -> Self {
        state.proxies.clone()
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(rest::routes())
        .merge(graphql::routes())
        .merge(crate::web::routes(state.leadership.clone()))
        .route_layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            count_request,
        ))
        .fallback(crate::web::not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        // State-changing requests from other sites are refused (Origin and
        // Sec-Fetch-Site); scripts without those headers, using tokens, pass.
        .layer(CsrfLayer::new().with_rejection_response(cross_site_rejection))
        .layer(axum::middleware::from_fn(unread::close_after_unread_body))
        .layer(security_header(
            header::CONTENT_SECURITY_POLICY,
            CONTENT_SECURITY_POLICY,
        ))
        .layer(security_header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(security_header(header::REFERRER_POLICY, "same-origin"))
        .layer(security_header(header::X_FRAME_OPTIONS, "DENY"))
        // Pages, fragments, assets and JSON compress well; event streams are left
        // alone (the default predicate skips text/event-stream) so they flow at once.
        // The fastest level: a list of 1,000 websites is 1.5 MB of repetitive HTML,
        // which it shrinks about as well as the default level at a fraction of the time.
        .layer(CompressionLayer::new().quality(CompressionLevel::Fastest))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

fn cross_site_rejection(_: ProtectionError) -> axum::http::Response<axum::body::Body> {
    (
        StatusCode::FORBIDDEN,
        "cross-site request refused: send it from this site's own pages, or use an API token\n",
    )
        .into_response()
}

fn security_header(name: HeaderName, value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
}

/// Alive: answers as long as the process serves HTTP; touches nothing external.
async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready: the database answers within two seconds.
async fn readyz(State(state): State<AppState>) -> Response {
    match tokio::time::timeout(Duration::from_secs(2), state.store.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready\n").into_response(),
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "readiness: database unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n").into_response()
        }
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "database did not answer in time\n",
        )
            .into_response(),
    }
}

/// `/metrics`: OpenMetrics text for Prometheus.
async fn metrics(State(state): State<AppState>) -> Response {
    let leadership = &state.leadership;
    let websites = state
        .board
        .snapshot()
        .await
        .ok()
        .map(|s| (s.totals.up, s.totals.down, s.totals.pending));
    let body = state.metrics.render(
        leadership.identity(),
        &leadership.mode().to_string(),
        leadership.is_leader(),
        websites,
        state
            .writer_stats
            .buffered
            .load(std::sync::atomic::Ordering::Relaxed),
    );
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// Counts every answered request by its route pattern and status.
async fn count_request(
    State(metrics): State<Arc<crate::metrics::Metrics>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let response = next.run(request).await;
    metrics.http_request(&route, &method, response.status().as_u16());
    response
}
