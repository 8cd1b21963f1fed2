//! The optional handshake rate limit: a token bucket per client address, in a table of
//! bounded size.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// A limit on how often one client address may open sessions (handshakes), as a token
/// bucket: `burst` handshakes at once, then `per_second` on average.
///
/// IPv4 addresses are limited one by one; IPv6 addresses by their /64 prefix, since one
/// client usually holds a whole /64. Requests without a known remote address (the server
/// did not put a [`SocketAddr`](std::net::SocketAddr) in the request extensions) are not
/// limited. Behind a reverse proxy every client has the proxy's address: limit there, or
/// use `allow_request` with your own key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HandshakeRateLimit {
    per_second: f64,
    burst: u32,
    max_addresses: usize,
}

/// The default of [`HandshakeRateLimit::max_addresses`]: 100,000 addresses tracked at once.
pub const DEFAULT_RATE_LIMIT_MAX_ADDRESSES: usize = 100_000;

/// The table of a rate limit forgets full buckets at most this often...
const MIN_PRUNE_GAP: Duration = Duration::from_millis(10);

/// ... and at least this often, when it needs to.
const MAX_PRUNE_GAP: Duration = Duration::from_secs(1);

impl HandshakeRateLimit {
    /// `per_second` handshakes per second on average per address, with a burst of twice
    /// that (at least 1), and at most [`DEFAULT_RATE_LIMIT_MAX_ADDRESSES`] addresses tracked
    /// at once.
    pub fn per_second(per_second: u32) -> Self {
        Self {
            per_second: f64::from(per_second.max(1)),
            burst: per_second.saturating_mul(2).max(1),
            max_addresses: DEFAULT_RATE_LIMIT_MAX_ADDRESSES,
        }
    }

    /// How many handshakes one address may make at once, after being idle (at least 1).
    pub fn burst(mut self, burst: u32) -> Self {
        self.burst = burst.max(1);
        self
    }

    /// How many addresses the table may hold (at least 1). An address whose bucket is full
    /// again is forgotten, so only addresses seen within the last `burst / per_second`
    /// seconds take room; when the table is full of those, handshakes from new addresses
    /// are refused until room is made.
    pub fn max_addresses(mut self, n: usize) -> Self {
        self.max_addresses = n.max(1);
        self
    }

    /// Average handshakes per second allowed per address.
    pub fn rate(&self) -> f64 {
        self.per_second
    }

    /// Handshakes allowed at once per address.
    pub fn burst_size(&self) -> u32 {
        self.burst
    }

    /// Most addresses tracked at once.
    pub fn address_capacity(&self) -> usize {
        self.max_addresses
    }

    /// How long an idle bucket takes to fill up again.
    fn refill_time(&self) -> Duration {
        Duration::from_secs_f64(f64::from(self.burst) / self.per_second)
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Debug)]
struct Table {
    buckets: HashMap<IpAddr, Bucket>,
    last_prune: Instant,
}

/// The per-address buckets of one engine.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    limit: HandshakeRateLimit,
    table: Mutex<Table>,
}

impl RateLimiter {
    pub(crate) fn new(limit: HandshakeRateLimit) -> Self {
        Self {
            limit,
            table: Mutex::new(Table {
                buckets: HashMap::new(),
                last_prune: Instant::now(),
            }),
        }
    }

    /// Takes a token for `ip`; `Err(wait)` when there is none, with the time until one is
    /// due.
    pub(crate) fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        let key = key_of(ip);
        let now = Instant::now();
        let limit = &self.limit;
        let burst = f64::from(limit.burst);
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        // Forget full buckets (they are the same as no bucket) once per refill time, and
        // when the table is full; never more than once per 10 ms to 1 s, so that a flood
        // from new addresses cannot make every handshake walk the table.
        let full = table.buckets.len() >= limit.max_addresses;
        let since = now.duration_since(table.last_prune);
        let refill = limit.refill_time();
        let min_gap = refill.clamp(MIN_PRUNE_GAP, MAX_PRUNE_GAP);
        if since >= min_gap && (full || since >= refill) && !table.buckets.contains_key(&key) {
            table.last_prune = now;
            table.buckets.retain(|_, b| {
                b.tokens + now.duration_since(b.at).as_secs_f64() * limit.per_second < burst
            });
        }
        let wait_for_room = || Duration::from_secs_f64(1.0 / limit.per_second);
        let at_capacity = table.buckets.len() >= limit.max_addresses;
        let bucket = match table.buckets.entry(key) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(_) if at_capacity => {
                return Err(wait_for_room());
            }
            std::collections::hash_map::Entry::Vacant(e) => e.insert(Bucket {
                tokens: burst,
                at: now,
            }),
        };
        let refilled =
            bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * limit.per_second;
        bucket.tokens = refilled.min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / limit.per_second,
            ))
        }
    }

    /// How many addresses are tracked now.
    pub(crate) fn tracked(&self) -> usize {
        self.table
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .buckets
            .len()
    }
}

/// IPv4 (also when mapped into IPv6) as is; IPv6 by its /64 prefix.
fn key_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(bits))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_then_the_rate() {
        let rl = RateLimiter::new(HandshakeRateLimit::per_second(2).burst(3));
        for _ in 0..3 {
            assert!(rl.check(v4(1)).is_ok());
        }
        let wait = rl.check(v4(1)).unwrap_err();
        assert!(wait <= Duration::from_millis(500), "{wait:?}");
        // Another address has its own bucket.
        assert!(rl.check(v4(2)).is_ok());
        tokio::time::advance(Duration::from_millis(500)).await;
        assert!(rl.check(v4(1)).is_ok());
        assert!(rl.check(v4(1)).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn the_table_is_bounded_and_idle_addresses_are_forgotten() {
        let rl = RateLimiter::new(HandshakeRateLimit::per_second(10).burst(1).max_addresses(4));
        for i in 0..4 {
            assert!(rl.check(v4(i)).is_ok());
        }
        assert_eq!(rl.tracked(), 4);
        // Full of recently seen addresses: a new one is refused, the table does not grow.
        assert!(rl.check(v4(9)).is_err());
        assert_eq!(rl.tracked(), 4);
        // Once their buckets are full again (burst / rate = 100 ms) they are forgotten.
        tokio::time::advance(Duration::from_millis(100)).await;
        assert!(rl.check(v4(9)).is_ok());
        assert_eq!(rl.tracked(), 1);
    }

    #[test]
    fn ipv6_is_keyed_by_its_64_prefix_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(key_of(a), key_of(b));
        assert_ne!(key_of(a), key_of(c));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(key_of(mapped), v4(1));
    }
}
