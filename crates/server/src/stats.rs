//! Server-wide counters the engine cannot see (acknowledgement latency, volatile packets
//! dropped, namespace CONNECTs refused), and [`ServerMetrics`], the snapshot of them with the
//! engine's ([`EngineMetrics`]) and each namespace's.
//!
//! Everything here is a relaxed atomic that the code paths bump; nothing is aggregated until
//! someone asks ([`SocketIo::server_metrics`](crate::SocketIo::server_metrics), or a
//! Prometheus scrape), so the hot path pays one uncontended increment at most.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use volley_core::adapter::AdapterStats;
use volley_engine::EngineMetrics;

/// Upper bounds of the acknowledgement latency buckets, in seconds (Prometheus' default
/// buckets, with 1 ms and 2.5 ms added: a loopback round trip is well under 5 ms).
pub const ACK_LATENCY_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A fixed-bucket histogram of durations, lock-free.
#[derive(Debug, Default)]
struct Histogram {
    /// Non-cumulative: `buckets[i]` counts observations in (bound[i-1], bound[i]]; the last
    /// one is past every bound.
    buckets: [AtomicU64; ACK_LATENCY_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Histogram {
    fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = ACK_LATENCY_BUCKETS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(ACK_LATENCY_BUCKETS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    fn snapshot(&self) -> AckLatency {
        let mut cumulative = Vec::with_capacity(ACK_LATENCY_BUCKETS.len());
        let mut total = 0;
        for (bound, bucket) in ACK_LATENCY_BUCKETS.iter().zip(&self.buckets) {
            total += bucket.load(Ordering::Relaxed);
            cumulative.push((*bound, total));
        }
        total += self.buckets[ACK_LATENCY_BUCKETS.len()].load(Ordering::Relaxed);
        AckLatency {
            buckets: cumulative,
            count: total,
            sum: Duration::from_nanos(self.sum_nanos.load(Ordering::Relaxed)),
        }
    }
}

/// Why a namespace CONNECT (or a whole connection, for `connect_timeout`) was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    InvalidNamespace,
    Middleware,
    TooManyNamespaces,
    ConnectTimeout,
}

/// The server's own counters, shared by the server handle and every namespace.
#[derive(Debug, Default)]
pub(crate) struct ServerStats {
    ack_latency: Histogram,
    ack_timeouts: AtomicU64,
    volatile_dropped: AtomicU64,
    refused: [AtomicU64; 4],
}

impl ServerStats {
    /// An acknowledgement of a single-socket `emit_with_ack` came back after `d`.
    pub(crate) fn ack_received(&self, d: Duration) {
        self.ack_latency.observe(d);
    }

    /// A single-socket `emit_with_ack` timed out.
    pub(crate) fn ack_timed_out(&self) {
        self.ack_timeouts.fetch_add(1, Ordering::Relaxed);
    }

    /// A volatile packet was not queued for one socket (its connection could not take it).
    pub(crate) fn volatile_dropped(&self) {
        self.volatile_dropped.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn refused(&self, why: Refusal) {
        self.refused[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    fn refused_count(&self, why: Refusal) -> u64 {
        self.refused[why as usize].load(Ordering::Relaxed)
    }

    pub(crate) fn snapshot(
        &self,
        engine: EngineMetrics,
        namespaces: Vec<NamespaceMetrics>,
    ) -> ServerMetrics {
        ServerMetrics {
            engine,
            namespaces,
            ack_latency: self.ack_latency.snapshot(),
            ack_timeouts_total: self.ack_timeouts.load(Ordering::Relaxed),
            volatile_dropped_total: self.volatile_dropped.load(Ordering::Relaxed),
            connects_refused_invalid_namespace_total: self.refused_count(Refusal::InvalidNamespace),
            connects_refused_middleware_total: self.refused_count(Refusal::Middleware),
            connects_refused_too_many_namespaces_total: self
                .refused_count(Refusal::TooManyNamespaces),
            connect_timeouts_total: self.refused_count(Refusal::ConnectTimeout),
        }
    }
}

/// The latency of acknowledgements to the server's single-socket `emit_with_ack`: from the
/// emit to the client's answer, as a cumulative histogram (Prometheus' shape).
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct AckLatency {
    /// `(upper bound in seconds, acknowledgements at most that late)`, for each bound of
    /// [`ACK_LATENCY_BUCKETS`], in order.
    pub buckets: Vec<(f64, u64)>,
    /// Acknowledgements received.
    pub count: u64,
    /// Their latencies added up.
    pub sum: Duration,
}

/// One namespace at the time of a snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NamespaceMetrics {
    /// Its name (`/`, `/chat`, a dynamic namespace's child...).
    pub name: String,
    /// Sockets connected to it on this server.
    pub sockets: usize,
    /// Acknowledgements its sockets' clients still owe to this server (single emits and
    /// broadcasts whose sender still waits).
    pub pending_acks: usize,
    /// Its adapter's rooms and cluster link.
    pub adapter: AdapterStats,
}

/// A snapshot of a server: its connections ([`EngineMetrics`]), its namespaces, and what
/// Socket.IO adds (acknowledgements, volatile packets, refused CONNECTs). Counters are
/// totals since the server was built. From
/// [`SocketIo::server_metrics`](crate::SocketIo::server_metrics).
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct ServerMetrics {
    /// The Engine.IO connections: open by transport, messages and bytes, backlogs, refused
    /// handshakes, slow consumers.
    pub engine: EngineMetrics,
    /// Every namespace that exists now (parents of dynamic namespaces left out).
    pub namespaces: Vec<NamespaceMetrics>,
    /// Latency of acknowledgements to single-socket `emit_with_ack`.
    pub ack_latency: AckLatency,
    /// Single-socket `emit_with_ack` calls whose acknowledgement did not come in time.
    pub ack_timeouts_total: u64,
    /// Volatile packets not sent to a socket because its connection could not take them.
    pub volatile_dropped_total: u64,
    /// CONNECTs to a namespace that does not exist.
    pub connects_refused_invalid_namespace_total: u64,
    /// CONNECTs a middleware refused.
    pub connects_refused_middleware_total: u64,
    /// CONNECTs past `max_namespaces_per_connection`.
    pub connects_refused_too_many_namespaces_total: u64,
    /// Connections closed because they joined no namespace within `connect_timeout`.
    pub connect_timeouts_total: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_histogram_is_cumulative_and_sums_durations() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(500));
        h.observe(Duration::from_millis(1));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(60));
        let s = h.snapshot();
        assert_eq!(s.count, 4);
        assert_eq!(s.buckets[0], (0.001, 2));
        assert_eq!(s.buckets[1], (0.0025, 2));
        assert_eq!(s.buckets[2], (0.005, 3));
        assert_eq!(s.buckets.last(), Some(&(10.0, 3)));
        assert_eq!(
            s.sum,
            Duration::from_micros(500) + Duration::from_millis(4) + Duration::from_secs(60)
        );
    }
}
