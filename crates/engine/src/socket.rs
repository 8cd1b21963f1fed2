//! The handle the layer above uses to talk to one Engine.IO session.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::task::AtomicWaker;
use volley_proto::engine::PacketType;

use crate::config::TransportKind;
use crate::error::{CloseReason, SendError};
use crate::request::RequestInfo;

/// A frame ready for a transport.
///
/// `Text` holds the whole Engine.IO text packet, type digit included (`4hello`), so one
/// encoded frame can be shared by every recipient of a broadcast without copying. `Binary`
/// holds a binary message's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// An Engine.IO packet in text form, type digit first; must be UTF-8.
    Text(Bytes),
    /// A binary message.
    Binary(Bytes),
}

impl Frame {
    /// A text message frame: `4` followed by `text`.
    pub fn message(text: &str) -> Self {
        let mut b = BytesMut::with_capacity(text.len() + 1);
        b.put_u8(PacketType::Message.digit());
        b.put_slice(text.as_bytes());
        Self::Text(b.freeze())
    }

    /// A binary message frame.
    pub fn binary(data: impl Into<Bytes>) -> Self {
        Self::Binary(data.into())
    }

    pub(crate) fn control(ty: PacketType) -> Self {
        Self::Text(Bytes::from_static(match ty {
            PacketType::Close => b"1",
            PacketType::Ping => b"2",
            PacketType::Noop => b"6",
            PacketType::Pong => b"3",
            PacketType::Upgrade => b"5",
            PacketType::Open | PacketType::Message => b"",
        }))
    }
}

#[derive(Debug, Default)]
pub(crate) struct Queue {
    pub(crate) frames: VecDeque<Frame>,
    /// Set once the session is over: sends fail from then on.
    pub(crate) closed: bool,
    /// Set by [`EngineSocket::close`] or the engine's shutdown.
    pub(crate) close_requested: Option<CloseReason>,
}

/// State shared between the session's handles and its driver ([`Incoming`](crate::Incoming)).
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) sid: Arc<str>,
    pub(crate) request: RequestInfo,
    pub(crate) queue: Mutex<Queue>,
    pub(crate) waker: AtomicWaker,
    pub(crate) transport: AtomicU8,
    pub(crate) post_in_flight: AtomicBool,
    pub(crate) max_buffered: usize,
}

impl Shared {
    pub(crate) fn new(
        sid: Arc<str>,
        request: RequestInfo,
        transport: TransportKind,
        max_buffered: usize,
    ) -> Self {
        Self {
            sid,
            request,
            queue: Mutex::new(Queue::default()),
            waker: AtomicWaker::new(),
            transport: AtomicU8::new(transport as u8),
            post_in_flight: AtomicBool::new(false),
            max_buffered,
        }
    }

    /// Locks the queue. A poisoned lock only means a panic elsewhere while holding it; the
    /// queue itself is always in a consistent state, so it is used as is.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn transport(&self) -> TransportKind {
        if self.transport.load(Ordering::Acquire) == TransportKind::Websocket as u8 {
            TransportKind::Websocket
        } else {
            TransportKind::Polling
        }
    }

    pub(crate) fn request_close(&self, reason: CloseReason) {
        let mut q = self.lock();
        if q.closed || q.close_requested.is_some() {
            return;
        }
        q.close_requested = Some(reason);
        drop(q);
        self.waker.wake();
    }
}

/// A cheap, cloneable handle to one Engine.IO session: sends frames, closes it, and tells
/// what the handshake request looked like.
///
/// Sending never waits: a frame goes into the session's bounded outbound queue and the
/// session's driver writes it out on the current transport.
#[derive(Clone)]
pub struct EngineSocket {
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for EngineSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineSocket")
            .field("sid", &self.shared.sid)
            .field("transport", &self.transport())
            .finish()
    }
}

impl EngineSocket {
    /// The session id (a secret: it authenticates long-polling requests).
    pub fn sid(&self) -> &str {
        &self.shared.sid
    }

    /// The transport in use now.
    pub fn transport(&self) -> TransportKind {
        self.shared.transport()
    }

    /// The handshake request (method, URI, headers, remote address).
    pub fn request(&self) -> &RequestInfo {
        &self.shared.request
    }

    /// Queues a frame.
    pub fn send(&self, frame: Frame) -> Result<(), SendError> {
        let mut q = self.shared.lock();
        if q.closed || q.close_requested.is_some() {
            return Err(SendError::Closed);
        }
        if q.frames.len() >= self.shared.max_buffered {
            return Err(SendError::Full);
        }
        let was_empty = q.frames.is_empty();
        q.frames.push_back(frame);
        drop(q);
        if was_empty {
            self.shared.waker.wake();
        }
        Ok(())
    }

    /// Queues several frames at once, in order; either all are queued or none.
    pub fn send_many(&self, frames: impl IntoIterator<Item = Frame>) -> Result<(), SendError> {
        let mut q = self.shared.lock();
        if q.closed || q.close_requested.is_some() {
            return Err(SendError::Closed);
        }
        let was_empty = q.frames.is_empty();
        let before = q.frames.len();
        q.frames.extend(frames);
        if q.frames.len() > self.shared.max_buffered {
            q.frames.truncate(before);
            return Err(SendError::Full);
        }
        drop(q);
        if was_empty {
            self.shared.waker.wake();
        }
        Ok(())
    }

    /// Queues a text message (`4` + `text`).
    pub fn send_text(&self, text: &str) -> Result<(), SendError> {
        self.send(Frame::message(text))
    }

    /// Queues a binary message.
    pub fn send_binary(&self, data: impl Into<Bytes>) -> Result<(), SendError> {
        self.send(Frame::Binary(data.into()))
    }

    /// How many frames wait in the outbound queue.
    pub fn queued(&self) -> usize {
        self.shared.lock().frames.len()
    }

    /// Whether nothing waits in the outbound queue (the transport can take more now).
    pub fn is_writable(&self) -> bool {
        let q = self.shared.lock();
        !q.closed && q.close_requested.is_none() && q.frames.is_empty()
    }

    /// Whether the session is still open.
    pub fn is_open(&self) -> bool {
        let q = self.shared.lock();
        !q.closed && q.close_requested.is_none()
    }

    /// Closes the session: frames already queued are still delivered, then a close packet,
    /// and the driver ends with [`CloseReason::ForcedClose`].
    pub fn close(&self) {
        self.shared.request_close(CloseReason::ForcedClose);
    }
}
