//! Real HTTP servers on 127.0.0.1 for the checker to probe.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A well-behaved web server with a route for each answer the checker must handle.
/// It counts the requests it receives.
pub struct Target {
    pub addr: SocketAddr,
    pub hits: Arc<AtomicU64>,
    /// What `/switch` answers: 200 while true, 503 while false.
    pub healthy: Arc<AtomicBool>,
    server: tokio::task::AbortHandle,
}

impl Target {
    pub async fn start() -> Self {
        let hits = Arc::new(AtomicU64::new(0));
        let healthy = Arc::new(AtomicBool::new(true));
        let switch = healthy.clone();
        let app = Router::new()
            .route("/ok", get(|| async { "fine" }))
            .route(
                "/switch",
                get(move || {
                    let up = switch.load(Ordering::Relaxed);
                    async move {
                        if up {
                            StatusCode::OK
                        } else {
                            StatusCode::SERVICE_UNAVAILABLE
                        }
                    }
                }),
            )
            .route("/status/{code}", get(status))
            .route("/redirect/{n}", get(redirect))
            .route("/loop", get(|| async { Redirect::temporary("/loop") }))
            .route("/slow/{ms}", get(slow))
            .with_state(hits.clone())
            .layer(axum::middleware::from_fn_with_state(hits.clone(), count));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, app).await }).abort_handle();
        Self {
            addr,
            hits,
            healthy,
            server,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Makes `/switch` answer 200 (`true`) or 503 (`false`).
    pub fn set_healthy(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::Relaxed);
    }

    /// Stops listening: new connections are refused, as when a server is down.
    pub fn stop(&self) {
        self.server.abort();
    }

    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }
}

async fn count(
    State(hits): State<Arc<AtomicU64>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    hits.fetch_add(1, Ordering::Relaxed);
    next.run(request).await
}

async fn status(Path(code): Path<u16>) -> Response {
    (StatusCode::from_u16(code).unwrap(), "as asked").into_response()
}

async fn redirect(Path(n): Path<u32>) -> Response {
    if n == 0 {
        return Redirect::temporary("/ok").into_response();
    }
    (
        StatusCode::FOUND,
        [(header::LOCATION, format!("/redirect/{}", n - 1))],
    )
        .into_response()
}

async fn slow(Path(ms): Path<u64>) -> &'static str {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    "late"
}

/// A TCP server that accepts connections and never answers.
pub async fn silent_server() -> SocketAddr {
    raw_server(|mut socket| async move {
        let mut buf = [0u8; 1024];
        // Read the request, then hold the connection until the client gives up.
        while let Ok(n) = socket.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await
}

/// A TCP server that answers every request with bytes that are not HTTP.
pub async fn garbage_server() -> SocketAddr {
    raw_server(|mut socket| async move {
        let mut buf = [0u8; 1024];
        let _ = socket.read(&mut buf).await;
        let _ = socket
            .write_all(b"\x00\x01 this is not HTTP at all \xff\r\n\r\n")
            .await;
    })
    .await
}

/// A server that answers 200 with a body announced and streamed as 1 GiB; it stops
/// writing as soon as the client hangs up. Returns the address and a counter of the
/// bytes it managed to write.
pub async fn gigabyte_server() -> (SocketAddr, Arc<AtomicU64>) {
    let written = Arc::new(AtomicU64::new(0));
    let counter = written.clone();
    let addr = raw_server(move |mut socket| {
        let written = counter.clone();
        async move {
            let mut buf = [0u8; 1024];
            let _ = socket.read(&mut buf).await;
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\
                        Content-Length: 1073741824\r\n\r\n";
            if socket.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let chunk = vec![b'x'; 64 * 1024];
            for _ in 0..(1024 * 1024 * 1024 / chunk.len()) {
                if socket.write_all(&chunk).await.is_err() {
                    return;
                }
                written.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
        }
    })
    .await;
    (addr, written)
}

async fn raw_server<F, Fut>(handle: F) -> SocketAddr
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(handle(socket));
        }
    });
    addr
}

/// An address on which nothing listens.
pub fn closed_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr
}
