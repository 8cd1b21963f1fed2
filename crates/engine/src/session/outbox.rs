//! The outbound side of the driver: frames move from the handles' shared queue into the
//! driver's own outbox, and from there to the transport; the backlog counts them until the
//! transport took them.

use std::collections::VecDeque;

use bytes::{BufMut, Bytes, BytesMut};
use volley_proto::engine::{PacketType, payload, v3};

use super::Incoming;
use crate::error::CloseReason;
use crate::socket::Frame;

impl Incoming {
    /// Moves the frames queued by the handles into the outbox. Returns the close the handles
    /// asked for, and the abort a send past the backlog's bounds asked for, if any.
    pub(super) fn take_queued(&mut self) -> (Option<CloseReason>, Option<CloseReason>) {
        let mut q = self.shared.lock();
        if self.outbox.is_empty() {
            std::mem::swap(&mut self.outbox, &mut q.frames);
        } else {
            self.outbox.extend(q.frames.drain(..));
        }
        (q.close_requested, q.abort)
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
