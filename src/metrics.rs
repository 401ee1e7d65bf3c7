//! What `/metrics` reports, in the OpenMetrics text format Prometheus reads:
//! checks by result and their duration, HTTP requests by route and status, open
//! live connections, and, read at scrape time, leadership, websites by status and
//! results waiting for the database.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::domain::Check;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CheckLabels {
    result: &'static str,
    /// Why a failed check failed (`dns`, `connect`, `tls`, `timeout`, `http`); empty when up.
    error: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    /// The route's pattern (`/websites/{id}`), not the path, so ids do not multiply series.
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConnectionLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReplicaLabels {
    replica: String,
    mode: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: &'static str,
}

/// The kinds of long-lived connection counted.
#[derive(Debug, Clone, Copy)]
pub enum Connection {
    /// A GraphQL subscription WebSocket.
    GraphqlWs,
    /// A page's live event stream.
    LiveEvents,
}

pub struct Metrics {
    registry: Registry,
    checks: Family<CheckLabels, Counter>,
    check_seconds: Histogram,
    http: Family<HttpLabels, Counter>,
    connections: Family<ConnectionLabels, Gauge>,
    leader: Family<ReplicaLabels, Gauge>,
    websites: Family<StatusLabels, Gauge>,
    buffered: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("sitepulse");
        let checks = Family::<CheckLabels, Counter>::default();
        registry.register(
            "checks",
            "Checks made by this replica, by result",
            checks.clone(),
        );
        let check_seconds = Histogram::new(exponential_buckets(0.005, 2.0, 13));
        registry.register(
            "check_duration_seconds",
            "Response time of the checks made by this replica (to the response headers or the failure)",
            check_seconds.clone(),
        );
        let http = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route and status",
            http.clone(),
        );
        let connections = Family::<ConnectionLabels, Gauge>::default();
        registry.register(
            "open_connections",
            "Open GraphQL subscription sockets and live page streams",
            connections.clone(),
        );
        let leader = Family::<ReplicaLabels, Gauge>::default();
        registry.register(
            "leader",
            "1 while this replica runs the checker",
            leader.clone(),
        );
        let websites = Family::<StatusLabels, Gauge>::default();
        registry.register("websites", "Websites by current status", websites.clone());
        let buffered = Gauge::default();
        registry.register(
            "buffered_results",
            "Check results waiting to be written to the database",
            buffered.clone(),
        );
        Self {
            registry,
            checks,
            check_seconds,
            http,
            connections,
            leader,
            websites,
            buffered,
        }
    }
}

impl Metrics {
    pub fn shared() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// A check this replica made.
    pub fn check(&self, check: &Check) {
        let labels = CheckLabels {
            result: if check.up { "up" } else { "down" },
            error: check.error.as_ref().map_or("", |e| e.kind.as_str()),
        };
        self.checks.get_or_create(&labels).inc();
        self.check_seconds
            .observe(f64::from(check.response_time_ms) / 1000.0);
    }

    pub fn http_request(&self, route: &str, method: &str, status: u16) {
        let labels = HttpLabels {
            route: route.to_owned(),
            method: method.to_owned(),
            status,
        };
        self.http.get_or_create(&labels).inc();
    }

    /// Counts a connection as open until the returned guard is dropped.
    pub fn open(self: &Arc<Self>, kind: Connection) -> OpenConnection {
        let labels = ConnectionLabels {
            kind: match kind {
                Connection::GraphqlWs => "graphql_ws",
                Connection::LiveEvents => "live_events",
            },
        };
        self.connections.get_or_create(&labels).inc();
        OpenConnection {
            metrics: self.clone(),
            labels,
        }
    }

    /// The text for a scrape, with the values read at scrape time filled in.
    pub fn render(
        &self,
        replica: &str,
        mode: &str,
        leading: bool,
        websites: Option<(usize, usize, usize)>,
        buffered: u64,
    ) -> String {
        self.leader
            .get_or_create(&ReplicaLabels {
                replica: replica.to_owned(),
                mode: mode.to_owned(),
            })
            .set(i64::from(leading));
        if let Some((up, down, pending)) = websites {
            for (status, count) in [("up", up), ("down", down), ("pending", pending)] {
                self.websites
                    .get_or_create(&StatusLabels { status })
                    .set(i64::try_from(count).unwrap_or(i64::MAX));
            }
        }
        self.buffered
            .set(i64::try_from(buffered).unwrap_or(i64::MAX));
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Keeps a connection counted while it lives.
pub struct OpenConnection {
    metrics: Arc<Metrics>,
    labels: ConnectionLabels,
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.metrics.connections.get_or_create(&self.labels).dec();
    }
}
