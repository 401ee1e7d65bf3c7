//! GraphQL over HTTP: `POST /graphql` executes, `GET /graphql` serves the
//! GraphiQL playground (assets embedded, no CDN), and `/graphql/ws` carries
//! subscriptions over both `graphql-transport-ws` and the legacy `graphql-ws`.
//!
//! Requests that are not GraphQL at all (malformed JSON, a syntax error, a query
//! over the depth or complexity limit, too many operations in a batch) get a 400
//! with a GraphQL error and a `code`, never a 500.

use std::time::Duration;

use std::str::FromStr;

use async_graphql::http::{ALL_WEBSOCKET_PROTOCOLS, WebSocketProtocols, WsMessage};
use async_graphql::{BatchRequest, BatchResponse, Data, ErrorExtensionValues, Value};
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use futures_util::{SinkExt, StreamExt, future};

use super::AppState;
use super::response_cache::Key;
use crate::auth::{AuthError, Caller, ClientInfo, identify_bearer};

/// Operations accepted in one batched request.
pub const MAX_BATCH: usize = 10;

const GRAPHIQL_PAGE: &str = include_str!("../../assets/graphiql/index.html");
/// GraphiQL styles itself with inline styles, which the page's own policy allows.
const GRAPHIQL_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
    connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/graphql", get(playground).post(execute))
        .route("/graphql/ws", get(subscribe))
        .route("/assets/graphiql/{file}", get(asset))
}

fn error_body(code: &str, message: &str) -> serde_json::Value {
    serde_json::json!({ "errors": [{ "message": message, "extensions": { "code": code } }] })
}

fn reject(status: StatusCode, code: &str, message: &str) -> Response {
    (status, axum::Json(error_body(code, message))).into_response()
}

async fn execute(
    State(state): State<AppState>,
    caller: Result<Caller, AuthError>,
    client: ClientInfo,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let caller = match caller {
        Ok(caller) => caller,
        Err(err) => {
            let status = err.status();
            let code = match status {
                StatusCode::TOO_MANY_REQUESTS => "RATE_LIMITED",
                StatusCode::UNAUTHORIZED => "UNAUTHENTICATED",
                _ => "INTERNAL",
            };
            return reject(status, code, &err.to_string());
        }
    };
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            let code = if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                "PAYLOAD_TOO_LARGE"
            } else {
                "BAD_REQUEST"
            };
            return reject(rejection.status(), code, &rejection.body_text());
        }
    };
    let batch: BatchRequest = match serde_json::from_slice(&body) {
        Ok(batch) => batch,
        Err(err) => {
            let message = format!("the body is not a GraphQL request in JSON: {err}");
            return reject(StatusCode::BAD_REQUEST, "BAD_REQUEST", &message);
        }
    };
    let batch = match batch {
        BatchRequest::Batch(list) if list.len() > MAX_BATCH => {
            let message = format!("at most {MAX_BATCH} operations per batch");
            return reject(StatusCode::BAD_REQUEST, "BATCH_TOO_LARGE", &message);
        }
        BatchRequest::Batch(list) if list.is_empty() => {
            return reject(StatusCode::BAD_REQUEST, "BAD_REQUEST", "the batch is empty");
        }
        other => other,
    };
    let cache = &state.graphql_cache;
    let mut version = state.events.version();
    let key = match &batch {
        BatchRequest::Single(request) => Some(Key::new(request, caller.may_read())),
        BatchRequest::Batch(_) => None,
    }
    .filter(|key| cache.cacheable(key));
    // After a change, one request computes the new answer while the others with
    // the same query wait for it, instead of all computing the same thing.
    let _refilling = match &key {
        Some(key) => {
            if let Some(answer) = cache.get(key, version) {
                return json_answer(StatusCode::OK, answer);
            }
            let guard = cache.refill(key).await;
            version = state.events.version();
            if let Some(answer) = cache.get(key, version) {
                return json_answer(StatusCode::OK, answer);
            }
            Some(guard)
        }
        None => None,
    };
    let queries: Vec<String> = batch.iter().map(|r| r.query.clone()).collect();
    let batch = batch.data(caller).data(client);
    let mut response = state.schema.execute_batch(batch).await;
    let status = label_request_errors(&mut response, &queries);
    let answer = match serde_json::to_vec(&response) {
        Ok(bytes) => Bytes::from(bytes),
        Err(err) => {
            tracing::error!(error = %err, "cannot serialise a GraphQL answer");
            return reject(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                "internal error",
            );
        }
    };
    if let Some(key) = key
        && status == StatusCode::OK
        && response.is_ok()
    {
        state.graphql_cache.put(key, version, answer.clone());
    }
    json_answer(status, answer)
}

fn json_answer(status: StatusCode, body: Bytes) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Gives errors that concern the request as a whole (it could not be parsed,
/// failed validation, or exceeds a limit) a code, and makes the answer a 400
/// when no operation could run.
fn label_request_errors(response: &mut BatchResponse, queries: &[String]) -> StatusCode {
    let responses: Vec<&mut async_graphql::Response> = match response {
        BatchResponse::Single(r) => vec![r],
        BatchResponse::Batch(list) => list.iter_mut().collect(),
    };
    let mut all_failed = true;
    for (r, query) in responses.into_iter().zip(queries) {
        // Only looked at when the request failed as a whole.
        let unparsable =
            std::cell::LazyCell::new(|| async_graphql::parser::parse_query(query).is_err());
        let mut request_error = false;
        for error in &mut r.errors {
            let has_code = error
                .extensions
                .as_ref()
                .is_some_and(|e| e.get("code").is_some());
            if has_code || !error.path.is_empty() {
                continue;
            }
            request_error = true;
            let code = if error.message.contains("nested too deep") {
                "QUERY_TOO_DEEP"
            } else if error.message.contains("too complex") {
                "QUERY_TOO_COMPLEX"
            } else if *unparsable {
                "GRAPHQL_PARSE_FAILED"
            } else {
                "GRAPHQL_VALIDATION_FAILED"
            };
            error
                .extensions
                .get_or_insert_with(ErrorExtensionValues::default)
                .set("code", code);
        }
        if !(request_error && r.data == Value::Null) {
            all_failed = false;
        }
    }
    if all_failed {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    }
}

async fn playground() -> Response {
    (
        [(header::CONTENT_SECURITY_POLICY, GRAPHIQL_POLICY)],
        Html(GRAPHIQL_PAGE),
    )
        .into_response()
}

async fn asset(Path(file): Path<String>) -> Response {
    let (body, content_type): (&'static [u8], &str) = match file.as_str() {
        "graphiql.min.js" => (
            include_bytes!("../../assets/graphiql/graphiql.min.js"),
            "text/javascript",
        ),
        "graphiql.min.css" => (
            include_bytes!("../../assets/graphiql/graphiql.min.css"),
            "text/css",
        ),
        "react.production.min.js" => (
            include_bytes!("../../assets/graphiql/react.production.min.js"),
            "text/javascript",
        ),
        "react-dom.production.min.js" => (
            include_bytes!("../../assets/graphiql/react-dom.production.min.js"),
            "text/javascript",
        ),
        "graphql-ws.min.js" => (
            include_bytes!("../../assets/graphiql/graphql-ws.min.js"),
            "text/javascript",
        ),
        "start.js" => (
            include_bytes!("../../assets/graphiql/start.js"),
            "text/javascript",
        ),
        "start.css" => (
            include_bytes!("../../assets/graphiql/start.css"),
            "text/css",
        ),
        _ => return (StatusCode::NOT_FOUND, "no such asset\n").into_response(),
    };
    (
        [
            (
                header::CONTENT_TYPE,
                format!("{content_type}; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, "public, max-age=86400".to_owned()),
        ],
        body,
    )
        .into_response()
}

async fn subscribe(
    State(state): State<AppState>,
    caller: Result<Caller, AuthError>,
    client: ClientInfo,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let Some(protocol) = headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(',')
                .find_map(|p| WebSocketProtocols::from_str(p.trim()).ok())
        })
    else {
        return reject(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "ask for the graphql-transport-ws or graphql-ws sub-protocol",
        );
    };
    // Bad credentials in headers leave the connection anonymous; `connection_init`
    // may still authenticate it.
    let caller = caller.unwrap_or_else(|_| Caller {
        identity: None,
        public_read: state.accounts.config().public_read,
    });
    // Small buffers: thousands of mostly idle connections must stay cheap, and a
    // client has no business sending large messages.
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_message_size(super::MAX_BODY_BYTES)
        .on_upgrade(move |socket| serve_socket(socket, state, caller, client, protocol))
}

/// The `Authorization` value of a `connection_init` payload, in any case.
fn payload_authorization(payload: &serde_json::Value) -> Option<&str> {
    payload
        .as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        .and_then(|(_, v)| v.as_str())
}

/// Runs one subscription connection in one task: GraphQL messages and keep-alive
/// pings go straight to the socket. A client that stops reading stops this task
/// at its socket; its subscriptions then fall behind and are told what they
/// missed, while everyone else carries on.
async fn serve_socket(
    socket: WebSocket,
    state: AppState,
    caller: Caller,
    client: ClientInfo,
    protocol: WebSocketProtocols,
) {
    let (mut sink, stream) = socket.split();
    let input = stream
        .take_while(|message| future::ready(message.is_ok()))
        .filter_map(|message| {
            future::ready(match message {
                Ok(Message::Text(text)) => Some(text.as_bytes().to_vec()),
                Ok(Message::Binary(bytes)) => Some(bytes.to_vec()),
                _ => None,
            })
        });
    let mut data = Data::default();
    data.insert(caller.clone());
    data.insert(client);
    let accounts = state.accounts.clone();
    let on_init = move |payload: serde_json::Value| async move {
        let mut data = Data::default();
        if let Some(value) = payload_authorization(&payload) {
            let value = value.trim();
            let token = value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
                .unwrap_or(value);
            let identity = identify_bearer(&accounts, token)
                .await
                .map_err(|e| async_graphql::Error::new(e.to_string()))?;
            data.insert(Caller {
                identity: Some(identity),
                public_read: caller.public_read,
            });
        }
        Ok(data)
    };
    let legacy = protocol == WebSocketProtocols::SubscriptionsTransportWS;
    let mut graphql = async_graphql::http::WebSocket::new(state.schema.clone(), input, protocol)
        .connection_data(data)
        .on_connection_init(on_init);
    let every = state.ws_keepalive;
    let mut keepalive = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    let shutdown = state.shutdown.clone();
    let _open = state.metrics.open(crate::metrics::Connection::GraphqlWs);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => {
                // Going away (1001): clients reconnect, through a Service to
                // another replica.
                let close = CloseFrame { code: 1001, reason: "server shutting down".into() };
                let _ = sink.send(Message::Close(Some(close))).await;
                break;
            }
            message = graphql.next() => {
                let Some(message) = message else { break };
                let (message, last) = match message {
                    WsMessage::Text(text) => (Message::Text(text.into()), false),
                    WsMessage::Close(code, reason) => (
                        Message::Close(Some(CloseFrame { code, reason: reason.into() })),
                        true,
                    ),
                };
                if sink.send(message).await.is_err() || last {
                    break;
                }
            }
            _ = keepalive.tick() => {
                // A WebSocket ping keeps proxies from closing an idle connection;
                // legacy clients also expect the protocol's own "ka".
                if sink.send(Message::Ping(Bytes::new())).await.is_err() {
                    break;
                }
                if legacy && sink.send(Message::Text(r#"{"type":"ka"}"#.into())).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = sink.close().await;
}

/// How often an idle subscription connection is pinged.
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(15);
