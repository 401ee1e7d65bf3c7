//! Sign-in attempts are limited per client address and per username, so neither
//! one address trying many names nor many addresses trying one name gets far.
//!
//! Each key gets a burst of `per_minute` attempts, then one more every
//! `60 s / per_minute` (the generic cell rate algorithm of `governor`, whose
//! compare-and-swap state holds under parallel requests). The state lives in this
//! process: with several replicas an attacker gets the limit once per replica.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

pub struct LoginLimiter {
    by_address: DefaultKeyedRateLimiter<IpAddr>,
    by_username: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
}

impl LoginLimiter {
    pub fn new(per_minute: NonZeroU32) -> Self {
        let quota = Quota::per_minute(per_minute);
        Self {
            by_address: RateLimiter::keyed(quota),
            by_username: RateLimiter::keyed(quota),
            clock: DefaultClock::default(),
        }
    }

    /// Counts one attempt; `Err` says how long until the next one is allowed.
    pub fn attempt(&self, client: IpAddr, username_key: &str) -> Result<(), Duration> {
        let now = self.clock.now();
        // An address over its limit is turned away before its username is even
        // looked at: spraying names from one address cannot grow the username table.
        self.by_address
            .check_key(&network_of(client))
            .map_err(|denied| denied.wait_time_from(now))?;
        self.by_username
            .check_key(&username_key.to_owned())
            .map_err(|denied| denied.wait_time_from(now))
    }

    /// Forgets keys whose limit has fully recovered; keeps memory bounded.
    pub fn forget_idle(&self) {
        self.by_address.retain_recent();
        self.by_username.retain_recent();
        self.by_address.shrink_to_fit();
        self.by_username.shrink_to_fit();
    }
}

/// An IPv6 client usually owns a whole /64: limit the network, not the address.
fn network_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_address_and_per_username() {
        let limiter = LoginLimiter::new(NonZeroU32::new(3).unwrap());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for name in ["x", "y", "z"] {
            assert!(limiter.attempt(a, name).is_ok());
        }
        let wait = limiter.attempt(a, "w").unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        // Another address may still try other names, but not the exhausted "x" more
        // than its own limit allows.
        assert!(limiter.attempt(b, "x").is_ok());
        assert!(limiter.attempt(b, "x").is_ok());
        assert!(limiter.attempt(b, "x").is_err());
        // A blocked address does not count against the names it tries.
        let c: IpAddr = "192.0.2.3".parse().unwrap();
        assert!(limiter.attempt(c, "w").is_ok());
    }

    #[test]
    fn ipv6_clients_are_limited_per_network() {
        let one: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let two: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        assert_eq!(network_of(one), network_of(two));
        let mapped: IpAddr = "::ffff:192.0.2.9".parse().unwrap();
        assert_eq!(network_of(mapped), "192.0.2.9".parse::<IpAddr>().unwrap());
    }
}
