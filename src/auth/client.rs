//! Where a request came from: the peer address, or, when the peer is a trusted
//! reverse proxy, the client it names in `X-Forwarded-For` and whether the client
//! used HTTPS (`X-Forwarded-Proto`). Headers from anyone else are ignored, since
//! any client can send them.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::request::Parts;
use ipnet::IpNet;

/// Networks whose forwarding headers are believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Arc<Vec<IpNet>>);

impl TrustedProxies {
    pub fn new(networks: Vec<IpNet>) -> Self {
        Self(Arc::new(networks))
    }

    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }
}

/// Parses `10.0.0.0/8` or a single address such as `127.0.0.1`.
pub fn parse_network(raw: &str) -> Result<IpNet, String> {
    let raw = raw.trim();
    IpNet::from_str(raw)
        .or_else(|_| IpAddr::from_str(raw).map(IpNet::from))
        .map_err(|_| format!("{raw:?} is neither an IP address nor a network such as 10.0.0.0/8"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientInfo {
    pub ip: IpAddr,
    /// The client used HTTPS (as told by a trusted proxy).
    pub https: bool,
}

impl ClientInfo {
    pub fn from_parts(parts: &Parts, proxies: &TrustedProxies) -> Self {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip().to_canonical())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        if !proxies.trusts(peer) {
            return Self {
                ip: peer,
                https: false,
            };
        }
        // The right-most address that is not one of our proxies is the client;
        // anything left of it was written by the client and proves nothing.
        let forwarded: Vec<IpAddr> = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|item| item.trim().parse::<IpAddr>().ok())
            .map(|ip| ip.to_canonical())
            .collect();
        let ip = forwarded
            .iter()
            .rev()
            .find(|ip| !proxies.trusts(**ip))
            .or(forwarded.first())
            .copied()
            .unwrap_or(peer);
        let https = parts
            .headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"));
        Self { ip, https }
    }
}

impl<S> FromRequestParts<S> for ClientInfo
where
    TrustedProxies: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::from_parts(parts, &TrustedProxies::from_ref(state)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    fn parts(peer: &str, headers: &[(&str, &str)]) -> Parts {
        let mut req = Request::builder().uri("/");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let (mut parts, ()) = req.body(()).unwrap().into_parts();
        parts
            .extensions
            .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
        parts
    }

    #[test]
    fn forwarding_headers_count_only_from_trusted_proxies() {
        let proxies = TrustedProxies::new(vec![parse_network("10.0.0.0/8").unwrap()]);
        let spoofed = parts(
            "192.0.2.7:5000",
            &[
                ("x-forwarded-for", "1.2.3.4"),
                ("x-forwarded-proto", "https"),
            ],
        );
        let info = ClientInfo::from_parts(&spoofed, &proxies);
        assert_eq!(info.ip, "192.0.2.7".parse::<IpAddr>().unwrap());
        assert!(!info.https);

        let proxied = parts(
            "10.1.2.3:5000",
            &[
                ("x-forwarded-for", "6.6.6.6, 198.51.100.4, 10.9.9.9"),
                ("x-forwarded-proto", "https"),
            ],
        );
        let info = ClientInfo::from_parts(&proxied, &proxies);
        assert_eq!(info.ip, "198.51.100.4".parse::<IpAddr>().unwrap());
        assert!(info.https);
    }

    #[test]
    fn networks_parse_with_clear_errors() {
        assert!(parse_network("127.0.0.1").is_ok());
        assert!(parse_network("fd00::/8").is_ok());
        assert!(
            parse_network("proxy.local")
                .unwrap_err()
                .contains("10.0.0.0/8")
        );
    }
}
