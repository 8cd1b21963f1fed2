//! The outbound side of the driver: frames move from the handles' shared queue into the
//! driver's own outbox, and from there to the transport; the backlog counts them until the
//! transport took them.
//!
//! A slow consumer is bounded twice: in memory by the handles (`send` past
//! `max_buffered_bytes` aborts the session), and in time here: the outbox must be emptied
//! and the transport flushed (every frame the driver took written out) within
//! `slow_consumer_timeout` of the moment it first held frames, or the session is aborted.
//! Drainage is judged on what the driver had taken, before it takes what was queued since,
//! so a client that keeps up with a busy stream is never cut for frames that arrived while
//! it was being written to.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::time::Instant;
use volley_proto::engine::{PacketType, payload, v3};

use super::Incoming;
use crate::error::CloseReason;
use crate::socket::Frame;

impl Incoming {
    /// Moves the frames queued by the handles into the outbox. Returns the close the handles
    /// asked for, and the abort a send past the backlog's bounds asked for, if any.
    pub(super) fn take_queued(&mut self) -> (Option<CloseReason>, Option<CloseReason>) {
        if !self.backlog_waits() {
            // The transport took and wrote everything the driver had: the backlog drained.
            self.backlog_since = None;
        }
        let mut q = self.shared.lock();
        if self.outbox.is_empty() {
            std::mem::swap(&mut self.outbox, &mut q.frames);
        } else {
            self.outbox.extend(q.frames.drain(..));
        }
        (q.close_requested, q.abort)
    }

    /// Whether something the driver took waits to be written: frames in the outbox, or a
    /// WebSocket whose last frames are stuck in its write buffer (while it is, new frames
    /// stay in the shared queue without waking the driver).
    fn backlog_waits(&self) -> bool {
        !self.outbox.is_empty() || self.shared.write_blocked.load(Ordering::Acquire)
    }

    /// When the backlog will have gone undrained for `slow_consumer_timeout`, if frames wait;
    /// starts counting at `now` if they just began to. A closing session is bounded by its
    /// closing deadline instead, and ends for the reason it closes.
    pub(super) fn backlog_deadline(&mut self, now: Instant) -> Option<Instant> {
        if !self.backlog_waits() || self.closing.is_some() {
            return None;
        }
        let since = *self.backlog_since.get_or_insert(now);
        since.checked_add(self.engine.config.slow_consumer_timeout)
    }

    /// The backlog did not drain in time: the client is not reading. It is cut off as one
    /// whose backlog went past its memory cap.
    pub(super) fn cut_slow_consumer(&mut self) {
        tracing::debug!(
            sid = %self.shared.sid,
            frames = self.shared.pending_frames(),
            bytes = self.shared.pending_bytes(),
            "outbound backlog not drained within slow_consumer_timeout: closing the session \
             (slow consumer)"
        );
        self.engine
            .counters
            .slow_consumer_closes
            .fetch_add(1, Ordering::Relaxed);
        self.abort(CloseReason::TransportError);
    }

    /// Queues a packet of the driver's own (ping, close), counted in the backlog like the
    /// others.
    pub(super) fn push_control(&mut self, ty: PacketType) {
        let frame = Frame::control(ty);
        self.shared.add_pending(1, frame.cost());
        self.outbox.push_back(frame);
    }
}

/// How a session frames its long-polling payloads.
#[derive(Debug, Clone, Copy)]
pub(super) enum Framing {
    /// Engine.IO v4: records separated by `\x1e`.
    V4,
    /// Engine.IO v3: `<length>:<packet>`, or the binary framing when the client supports it
    /// and a binary message is in the payload.
    V3 {
        /// The client takes binary payloads.
        supports_binary: bool,
    },
}

/// Encodes queued frames as one long-polling payload; also returns what the frames counted
/// for in the backlog.
pub(super) fn payload_of(frames: &VecDeque<Frame>, framing: Framing) -> (Bytes, usize) {
    let cost = frames.iter().map(Frame::cost).sum();
    if let Framing::V3 { supports_binary } = framing {
        let binary = supports_binary && frames.iter().any(|f| matches!(f, Frame::Binary(_)));
        let mut out = BytesMut::with_capacity(frames.iter().map(|f| frame_len(f) + 8).sum());
        for f in frames {
            match (f, binary) {
                (Frame::Text(t), false) => v3::push_text(t, &mut out),
                (Frame::Text(t), true) => v3::push_text_binary(t, &mut out),
                (Frame::Binary(b), false) => v3::push_binary_as_text(b, &mut out),
                (Frame::Binary(b), true) => v3::push_binary_binary(b, &mut out),
            }
        }
        return (out.freeze(), cost);
    }
    let mut out = BytesMut::with_capacity(frames.iter().map(|f| frame_len(f) + 1).sum());
    for f in frames {
        if !out.is_empty() {
            out.put_u8(payload::SEPARATOR);
        }
        match f {
            Frame::Text(t) => out.put_slice(t),
            Frame::Binary(b) => {
                out.put_u8(b'b');
                payload::encode_base64(b, &mut out);
            }
        }
    }
    (out.freeze(), cost)
}

/// The length of a frame in a long-polling payload (binary frames as `b` + base64).
fn frame_len(f: &Frame) -> usize {
    match f {
        Frame::Text(t) => t.len(),
        Frame::Binary(b) => 1 + b.len().div_ceil(3) * 4,
    }
}
