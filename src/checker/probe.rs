//! One check: one HTTP GET, following at most 10 redirects.
//!
//! Connections are never reused, so every check pays for DNS, TCP and TLS as a
//! first-time visitor would, and the response time says something about all of
//! them. The body is never read: the response is dropped once its headers are in,
//! so a target that streams a gigabyte costs nothing.

use std::error::Error as StdError;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::Url;

use crate::domain::{CheckError, ErrorKind};

/// Redirects followed before a check counts as failed.
pub const MAX_REDIRECTS: usize = 10;
const MAX_MESSAGE_CHARS: usize = 300;

/// What one request found.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub started_at: DateTime<Utc>,
    pub up: bool,
    pub status_code: Option<u16>,
    pub response_time_ms: u32,
    pub error: Option<CheckError>,
}

#[derive(Clone)]
pub struct Probe {
    client: reqwest::Client,
}

impl Probe {
    pub fn new() -> anyhow::Result<Self> {
        crate::install_crypto_provider();
        // Saying the connection ends with this request lets the server close first,
        // so the waiting TIME_WAIT state lands on its side. Closing first here, a
        // busy checker fills the local port range with TIME_WAIT sockets and the
        // kernel spends most of its time searching that range for a free port.
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::CONNECTION,
            reqwest::header::HeaderValue::from_static("close"),
        );
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!(
                "SitePulse360/",
                env!("CARGO_PKG_VERSION"),
                " (uptime check)"
            ))
            .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
            .pool_max_idle_per_host(0)
            .dns_resolver(SystemResolver)
            .http1_only()
            .build()?;
        Ok(Self { client })
    }

    /// Requests `url` once; never fails, a failure is a down outcome.
    pub async fn check(&self, url: &Url, timeout: Duration) -> Outcome {
        let started_at = now_millis();
        let start = Instant::now();
        let result = self.client.get(url.clone()).timeout(timeout).send().await;
        let response_time_ms = u32::try_from(start.elapsed().as_millis()).unwrap_or(u32::MAX);
        match result {
            Ok(response) => {
                let code = response.status().as_u16();
                // Dropping the response closes the connection without reading the body.
                drop(response);
                let up = code < 400;
                Outcome {
                    started_at,
                    up,
                    status_code: Some(code),
                    response_time_ms,
                    error: (!up).then(|| CheckError {
                        kind: ErrorKind::Http,
                        message: format!("HTTP status {code}"),
                    }),
                }
            }
            Err(err) => Outcome {
                started_at,
                up: false,
                status_code: None,
                response_time_ms,
                error: Some(classify(&err)),
            },
        }
    }
}

/// The current time, truncated to whole milliseconds as the database stores it.
pub fn now_millis() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap_or_default()
}

fn classify(err: &reqwest::Error) -> CheckError {
    let kind = if err.is_timeout() {
        ErrorKind::Timeout
    } else if err.is_redirect() {
        ErrorKind::Http
    } else if chain(err).any(|e| e.is::<DnsFailure>()) {
        ErrorKind::Dns
    } else if chain(err).any(is_tls_error) {
        ErrorKind::Tls
    } else if err.is_connect() {
        ErrorKind::Connect
    } else {
        ErrorKind::Http
    };
    let message = match kind {
        ErrorKind::Timeout => "no response within the timeout".to_owned(),
        ErrorKind::Http if err.is_redirect() => {
            format!("more than {MAX_REDIRECTS} redirects")
        }
        _ => {
            // The innermost cause is the most specific; reqwest's own words add the URL.
            let inner = chain(err).last().map(ToString::to_string);
            inner.unwrap_or_else(|| err.to_string())
        }
    };
    CheckError {
        kind,
        message: message.chars().take(MAX_MESSAGE_CHARS).collect(),
    }
}

fn chain<'a>(
    err: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(err), |e| (*e).source())
}

/// rustls errors arrive wrapped in `io::Error`s, possibly several deep; an
/// `io::Error`'s `source()` skips the error it wraps, so look inside explicitly.
fn is_tls_error(err: &(dyn StdError + 'static)) -> bool {
    if err.is::<rustls::Error>() {
        return true;
    }
    match err
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
    {
        Some(inner) => is_tls_error(inner),
        None => false,
    }
}

/// The system resolver (getaddrinfo on a blocking thread), with its failures marked
/// so a check can tell "no such host" from "host did not answer".
struct SystemResolver;

#[derive(Debug, thiserror::Error)]
#[error("could not resolve {host}: {reason}")]
struct DnsFailure {
    host: String,
    reason: String,
}

impl Resolve for SystemResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map(|addrs| addrs.collect::<Vec<SocketAddr>>());
            match found {
                Ok(addrs) => {
                    if addrs.is_empty() {
                        return Err(Box::new(DnsFailure {
                            host,
                            reason: "no addresses".into(),
                        }) as _);
                    }
                    Ok(Box::new(addrs.into_iter()) as Addrs)
                }
                Err(e) => Err(Box::new(DnsFailure {
                    host,
                    reason: e.to_string(),
                }) as _),
            }
        })
    }
}
