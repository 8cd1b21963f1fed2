//! Engine-wide counters and the public snapshot of them, [`EngineMetrics`].
//!
//! A leaf module: sessions update the counters as they come and go, and
//! [`Engine::metrics`](crate::Engine::metrics) reads them together with the registry.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

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
    pub(crate) refused_unavailable: AtomicU64,
    pub(crate) refused_forbidden: AtomicU64,
    pub(crate) refused_bad_request: AtomicU64,
    /// Sessions ended (their driver finished), since the engine was created. Written and
    /// read under the registry's lock, with `retired`.
    pub(crate) closed: AtomicU64,
    /// The traffic of the sessions that ended. Added to under the registry's lock when a
    /// session ends, and read under it together with the open sessions' own counts, so a
    /// snapshot never counts a session twice nor misses it.
    pub(crate) retired: Traffic,
}

/// Engine.IO *message* packets and their payload bytes, in and out, as
/// `@socket.io/admin-ui` counts them: every message packet (a Socket.IO binary attachment is
/// one), its payload without the packet type, binary as its raw length.
///
/// Each session has its own (in its `Shared`), so the hot path only touches the session's
/// own cache lines, summed at snapshot time. Each counter has one writer at a time (the
/// driver for what comes in, the queue lock's holder for what goes out), so an increment is
/// a plain load and store rather than a locked read-modify-write.
#[derive(Debug, Default)]
pub(crate) struct Traffic {
    pub(crate) messages_in: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) messages_out: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
}

/// Adds `n` to a counter that has one writer at a time: a plain load and store, no locked
/// read-modify-write instruction. Readers see either the old or the new value.
fn bump(counter: &AtomicU64, n: u64) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(n),
        Ordering::Relaxed,
    );
}

impl Traffic {
    /// Counts one message received with `bytes` bytes of payload. Only the session's driver
    /// calls it.
    pub(crate) fn received(&self, bytes: usize) {
        bump(&self.messages_in, 1);
        bump(&self.bytes_in, bytes as u64);
    }

    /// Counts `messages` messages sent with `bytes` bytes of payload together. Called with
    /// the session's queue locked, so one sender at a time.
    pub(crate) fn sent(&self, messages: usize, bytes: usize) {
        if messages > 0 {
            bump(&self.messages_out, messages as u64);
            bump(&self.bytes_out, bytes as u64);
        }
    }

    /// Adds `other`'s counts to these. Called with the registry locked, so one writer.
    pub(crate) fn add(&self, other: &Traffic) {
        for (to, from) in [
            (&self.messages_in, &other.messages_in),
            (&self.bytes_in, &other.bytes_in),
            (&self.messages_out, &other.messages_out),
            (&self.bytes_out, &other.bytes_out),
        ] {
            bump(to, from.load(Ordering::Relaxed));
        }
    }

    /// Adds these counts to a snapshot.
    pub(crate) fn add_to(&self, m: &mut EngineMetrics) {
        m.messages_received_total += self.messages_in.load(Ordering::Relaxed);
        m.bytes_received_total += self.bytes_in.load(Ordering::Relaxed);
        m.messages_sent_total += self.messages_out.load(Ordering::Relaxed);
        m.bytes_sent_total += self.bytes_out.load(Ordering::Relaxed);
    }
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
    /// Handshakes refused because the server is full (`max_connections`) or shutting down.
    pub handshakes_refused_unavailable_total: u64,
    /// Handshakes refused by the `allow_request` hook.
    pub handshakes_refused_forbidden_total: u64,
    /// Handshakes refused as malformed: a transport that is not allowed, a method other
    /// than GET, a WebSocket handshake without an upgrade, a protocol version not served.
    pub handshakes_refused_bad_request_total: u64,
    /// Client addresses the handshake rate limit tracks now.
    pub rate_limited_addresses: usize,
    /// Open sessions whose transport is long-polling now (not yet upgraded).
    pub polling_sessions: usize,
    /// Open sessions whose transport is WebSocket now (upgraded, or WebSocket from the start).
    pub websocket_sessions: usize,
    /// Sessions that ended, for any reason, since the engine was created.
    pub sessions_closed_total: u64,
    /// Engine.IO message packets received from clients, since the engine was created: one
    /// per message (a Socket.IO packet with binary attachments is one plus one per
    /// attachment), as `@socket.io/admin-ui` counts `packetsIn`. Pings, pongs and other
    /// control packets are not counted.
    pub messages_received_total: u64,
    /// Engine.IO message packets queued for clients (admin-ui's `packetsOut`), since the
    /// engine was created. A message refused by [`EngineSocket::send`](crate::EngineSocket::send)
    /// is not counted; one accepted and then dropped because its session ended is.
    pub messages_sent_total: u64,
    /// Payload bytes of the messages received: UTF-8 bytes of a text message without its
    /// packet type, the raw length of a binary one (admin-ui's `bytesIn`).
    pub bytes_received_total: u64,
    /// Payload bytes of the messages sent, counted as `bytes_received_total` (admin-ui's
    /// `bytesOut`).
    pub bytes_sent_total: u64,
}
