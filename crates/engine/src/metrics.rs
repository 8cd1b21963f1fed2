//! Engine-wide counters and the public snapshot of them, [`EngineMetrics`].
//!
//! A leaf module: sessions update the counters as they come and go, and
//! [`Engine::metrics`](crate::Engine::metrics) reads them together with the registry.

use std::sync::atomic::{AtomicU64, AtomicUsize};

/// Engine-wide counters, updated by sessions as they come and go.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Session states (`Shared`) still allocated: open sessions, and closed ones some handle
    /// still points to.
    pub(crate) allocated: AtomicUsize,
    /// Session drivers (`Incoming`) still alive.
    pub(crate) drivers: AtomicUsize,
    pub(crate) opened: AtomicU64,
    pub(crate) slow_consumer_closes: AtomicU64,
    pub(crate) rate_limited: AtomicU64,
}

/// A snapshot of an engine's state, from [`Engine::metrics`](crate::Engine::metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EngineMetrics {
    /// Sessions open now (as [`Engine::session_count`](crate::Engine::session_count)).
    pub sessions_open: usize,
    /// Sessions whose state is still in memory: the open ones, plus closed ones that some
    /// [`EngineSocket`](crate::EngineSocket) or [`Incoming`](crate::Incoming) still points
    /// to. Equal to `sessions_open` once handlers have let go of closed sessions; a gap that
    /// keeps growing is a leak.
    pub sessions_allocated: usize,
    /// Frames waiting to be written, over all open sessions.
    pub queued_frames: usize,
    /// Bytes of those frames.
    pub queued_bytes: usize,
    /// The largest backlog of one session, in bytes.
    pub max_session_queued_bytes: usize,
    /// Sessions opened since the engine was created.
    pub sessions_opened_total: u64,
    /// Sessions closed because their backlog went past `max_buffered_packets` or
    /// `max_buffered_bytes`, or did not drain within `slow_consumer_timeout` (slow
    /// consumers), since the engine was created.
    pub slow_consumer_closes_total: u64,
    /// Handshakes refused by the handshake rate limit, since the engine was created.
    pub handshakes_rate_limited_total: u64,
    /// Client addresses the handshake rate limit tracks now.
    pub rate_limited_addresses: usize,
}
