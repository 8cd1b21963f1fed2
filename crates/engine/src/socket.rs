//! The handle the layer above uses to talk to one Engine.IO session.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::task::AtomicWaker;
use volley_proto::engine::PacketType;

use crate::command::{COMMAND_QUEUE, Command};
use crate::config::TransportKind;
use crate::error::{CloseReason, SendError};
use crate::metrics::{Counters, Traffic};
use crate::request::{KeptRequest, ProtocolVersion, RequestInfo};

mod backlog;

use self::backlog::Backlog;

/// A frame ready for a transport.
///
/// `Text` holds the whole Engine.IO text packet, type digit included (`4hello`), so one
/// encoded frame can be shared by every recipient of a broadcast without copying. `Binary`
/// holds a binary message's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// An Engine.IO packet in text form, type digit first; must be UTF-8 (it is written to a
    /// WebSocket as a text frame without being checked again).
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

    /// The frame's payload length, as counted by [`EngineSocket::queued_bytes`] (the base64
    /// expansion of binary frames on long-polling is not counted).
    pub(crate) fn cost(&self) -> usize {
        match self {
            Self::Text(b) | Self::Binary(b) => b.len(),
        }
    }

    /// The payload bytes this frame counts for in the message counters, if it is a message:
    /// a text frame without its packet type, a binary frame whole.
    fn message_bytes(&self) -> Option<usize> {
        match self {
            Self::Text(b) if b.first() == Some(&PacketType::Message.digit()) => Some(b.len() - 1),
            Self::Text(_) => None,
            Self::Binary(b) => Some(b.len()),
        }
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

/// What each frame waiting to be written counts against `max_buffered_bytes` on top of its
/// payload: the size of its slot in the session's queue. A broadcast shares one payload
/// between its recipients, so a storm of small messages costs each recipient mostly slots;
/// counting them keeps the memory cap a memory cap.
pub const FRAME_SLOT_BYTES: usize = std::mem::size_of::<Frame>();

#[derive(Default)]
pub(crate) struct Queue {
    pub(crate) frames: VecDeque<Frame>,
    /// Set once the session is over: sends fail from then on.
    pub(crate) closed: bool,
    /// Set by [`EngineSocket::close`] or the engine's shutdown.
    pub(crate) close_requested: Option<CloseReason>,
    /// Set when a send overflowed the session's bounds: the driver ends the session at once,
    /// without a close packet (the client is not reading), and drops what is queued.
    pub(crate) abort: Option<CloseReason>,
    /// Requests from the HTTP handlers for the driver (see [`Shared::send_command`]). Kept
    /// here rather than in a channel of their own: most sessions never get one, and an
    /// empty `VecDeque` allocates nothing.
    pub(crate) commands: VecDeque<Command>,
    /// Set once the driver takes no more commands (the session ended).
    pub(crate) commands_closed: bool,
    /// Set by [`Engine::close`](crate::Engine::close) after its grace period: the driver
    /// ends the session for the reason it was closing for.
    pub(crate) released: bool,
}

impl fmt::Debug for Queue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("frames", &self.frames.len())
            .field("closed", &self.closed)
            .field("close_requested", &self.close_requested)
            .field("abort", &self.abort)
            .field("commands", &self.commands.len())
            .finish()
    }
}

/// The bounds of one session's outbound backlog.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_frames: usize,
    pub(crate) max_bytes: usize,
}

/// What `frames` frames of `bytes` payload bytes count against the memory cap.
fn memory(frames: usize, bytes: usize) -> usize {
    bytes.saturating_add(frames.saturating_mul(FRAME_SLOT_BYTES))
}

/// State shared between the session's handles and its driver ([`Incoming`](crate::Incoming)).
///
/// Laid out in the order written (`repr(C)`), what every message touches first: the flags
/// and the waker share a cache line with the `Arc`'s reference counts, which the
/// WebSocket's read waker (this `Shared`, see `ReadGate`) moves on every readable event, as
/// tokio clones the waker and drops it once woken; the queue and the counters follow, the
/// request, sid and engine counters (read once in a while) last. With the compiler's order
/// the reference counts shared their line with the request instead: one more cold line
/// per message.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct Shared {
    /// The WebSocket's read side may have something: its last read did not come back
    /// `Pending`, or the socket woke it since (see `ReadGate` in the session's WebSocket
    /// transport, whose waker is this `Shared`).
    pub(crate) read_open: AtomicBool,
    /// Set while the driver has handed a message up and has not been polled since: its
    /// caller is handling that message (often emitting the reply from the driver's own
    /// task) and polls it again next, and that poll takes whatever was queued meanwhile.
    pub(crate) handed_up: AtomicBool,
    /// Set while the WebSocket's write side cannot take more (the socket buffer is full and
    /// a flush is pending).
    pub(crate) write_blocked: AtomicBool,
    /// Set while commands (or the engine's release) wait in the queue: the driver looks at
    /// them without taking the lock when none does.
    commands_waiting: AtomicBool,
    pub(crate) transport: AtomicU8,
    pub(crate) post_in_flight: AtomicBool,
    /// The session speaks Engine.IO v3.
    pub(crate) v3: bool,
    /// The client takes binary payloads and frames (Engine.IO v3: no `b64`).
    pub(crate) supports_binary: bool,
    pub(crate) waker: AtomicWaker,
    /// The backlog, as two running totals each with one writer at a time, so that each is
    /// moved with a plain load and store rather than a locked read-modify-write: frames not
    /// yet handed to the transport (in the shared queue or in the driver's outbox) are
    /// `accepted − settled`. `accepted` counts the frames `send` accepted, and is written
    /// only with the queue locked.
    accepted: Backlog,
    /// The frames the driver handed to the transport (written to the WebSocket or answered
    /// to a GET), less those it queued itself (pings, the close and open packets), which it
    /// counts here as negative; written only by the driver.
    settled: Backlog,
    limits: Limits,
    /// This session's message counts (see [`Traffic`]).
    pub(crate) traffic: Traffic,
    pub(crate) queue: Mutex<Queue>,
    pub(crate) sid: Arc<str>,
    counters: Arc<Counters>,
    pub(crate) request: KeptRequest,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.counters.allocated.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Shared {
    pub(crate) fn new(
        sid: Arc<str>,
        request: &RequestInfo,
        transport: TransportKind,
        limits: Limits,
        counters: Arc<Counters>,
    ) -> Self {
        counters.allocated.fetch_add(1, Ordering::Relaxed);
        let v3 = request.protocol() == ProtocolVersion::V3;
        let supports_binary = request.supports_binary();
        Self {
            v3,
            supports_binary,
            sid,
            request: KeptRequest::new(request),
            queue: Mutex::new(Queue::default()),
            waker: AtomicWaker::new(),
            transport: AtomicU8::new(transport as u8),
            post_in_flight: AtomicBool::new(false),
            limits,
            accepted: Backlog::default(),
            settled: Backlog::default(),
            write_blocked: AtomicBool::new(false),
            traffic: Traffic::default(),
            handed_up: AtomicBool::new(false),
            commands_waiting: AtomicBool::new(false),
            read_open: AtomicBool::new(false),
            counters,
        }
    }

    /// Frames and bytes not yet handed to the transport. `settled` is read first: the frames
    /// it counts were accepted before the driver took them, so `accepted`, read after it,
    /// counts them too and the difference never goes below zero. Either total may move
    /// meanwhile: the result is the backlog at some moment of the call, or a little more.
    fn pending(&self) -> (usize, usize) {
        let (settled_frames, settled_bytes) = self.settled.get();
        let (frames, bytes) = self.accepted.get();
        (
            frames.wrapping_sub(settled_frames),
            bytes.wrapping_sub(settled_bytes),
        )
    }

    /// Frames not yet handed to the transport.
    pub(crate) fn pending_frames(&self) -> usize {
        self.pending().0
    }

    /// Bytes of the frames not yet handed to the transport.
    pub(crate) fn pending_bytes(&self) -> usize {
        self.pending().1
    }

    /// Counts frames the driver queues itself (pings, the close packet, the open packet).
    /// Only the driver calls it.
    pub(crate) fn add_pending(&self, frames: usize, bytes: usize) {
        self.settled
            .add(frames.wrapping_neg(), bytes.wrapping_neg());
    }

    /// The driver handed `frames` frames of `bytes` bytes to the transport. Only the driver
    /// calls it.
    pub(crate) fn sub_pending(&self, frames: usize, bytes: usize) {
        if frames == 0 && bytes == 0 {
            return;
        }
        self.settled.add(frames, bytes);
    }

    /// The session ended: nothing is pending any more. Sends fail from then on (the queue is
    /// closed under the lock before the driver calls this), so `accepted` no longer moves and
    /// the backlog stays at zero.
    pub(crate) fn clear_pending(&self) {
        let (frames, bytes) = self.accepted.get();
        self.settled.set(frames, bytes);
    }

    /// Checks the bounds for `frames` more frames of `bytes` more bytes, with the queue
    /// locked; counts them if they fit. Past a bound the session is aborted: the queue is
    /// emptied, later sends fail, and the driver ends the session as a transport error.
    fn admit(&self, q: &mut Queue, frames: usize, bytes: usize) -> Result<(), SendError> {
        if q.closed || q.close_requested.is_some() || q.abort.is_some() {
            return Err(SendError::Closed);
        }
        if memory(frames, bytes) > self.limits.max_bytes {
            // A message larger than the whole budget could never be buffered: refuse the
            // message, not the client.
            return Err(SendError::Full);
        }
        let (pending_frames, pending_bytes) = self.pending();
        let total_frames = pending_frames.saturating_add(frames);
        if total_frames > self.limits.max_frames
            || memory(total_frames, pending_bytes.saturating_add(bytes)) > self.limits.max_bytes
        {
            tracing::debug!(
                pending_frames,
                pending_bytes,
                "outbound backlog over its bound: closing the session (slow consumer)"
            );
            q.abort = Some(CloseReason::TransportError);
            q.frames = VecDeque::new();
            self.counters
                .slow_consumer_closes
                .fetch_add(1, Ordering::Relaxed);
            return Err(SendError::Full);
        }
        // With the queue locked: `accepted`'s one writer.
        self.accepted.add(frames, bytes);
        Ok(())
    }

    /// Wakes the driver for frames just queued (`was_empty`: the queue had none before), when
    /// it needs waking.
    ///
    /// A driver whose WebSocket cannot take more is woken by the socket itself when it can:
    /// waking it for every frame queued meanwhile only burns a poll and a failed write each
    /// time (a client that stopped reading cost the others 20-40 %). A driver that handed a
    /// message up is polled again anyway; waking it, typically from its own task emitting a
    /// reply, only cost one more empty poll per message. Ordering: the driver clears
    /// `handed_up` before it locks the queue to take the frames, and this runs after the
    /// queue's lock was released, so a frame it does not see is one this wake is for. The
    /// lock orders the two (the driver's clear happens before its unlock, which comes before
    /// this lock or after this unlock), so no fence nor `SeqCst` is needed on either side.
    fn notify_queued(&self, was_empty: bool) {
        if was_empty
            && !self.write_blocked.load(Ordering::Acquire)
            && !self.handed_up.load(Ordering::Acquire)
        {
            self.waker.wake();
        }
    }

    /// Locks the queue. A poisoned lock only means a panic elsewhere while holding it; the
    /// queue itself is always in a consistent state, so it is used as is.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn transport(&self) -> TransportKind {
        if self.transport.load(Ordering::Acquire) == TransportKind::WebSocket as u8 {
            TransportKind::WebSocket
        } else {
            TransportKind::Polling
        }
    }

    /// Hands a command to the driver; gives it back once the session takes no more
    /// (it ended), or when [`COMMAND_QUEUE`] already wait (a client with more requests in
    /// flight than a well-behaved one ever has).
    pub(crate) fn send_command(&self, cmd: Command) -> Result<(), Command> {
        let mut q = self.lock();
        if q.commands_closed || q.commands.len() >= COMMAND_QUEUE {
            return Err(cmd);
        }
        q.commands.push_back(cmd);
        self.commands_waiting.store(true, Ordering::Release);
        drop(q);
        self.waker.wake();
        Ok(())
    }

    /// The next command for the driver: `Some(Err(()))` once the engine released the session
    /// (see [`release`](Self::release)).
    pub(crate) fn next_command(&self) -> Option<Result<Command, ()>> {
        if !self.commands_waiting.load(Ordering::Acquire) {
            return None;
        }
        let mut q = self.lock();
        let next = match q.commands.pop_front() {
            Some(cmd) => Some(Ok(cmd)),
            None if q.released => Some(Err(())),
            None => None,
        };
        if q.commands.is_empty() && !q.released {
            self.commands_waiting.store(false, Ordering::Release);
        }
        next
    }

    /// Refuses commands from now on and returns those still waiting.
    pub(crate) fn close_commands(&self) -> VecDeque<Command> {
        let mut q = self.lock();
        q.commands_closed = true;
        self.commands_waiting.store(false, Ordering::Release);
        std::mem::take(&mut q.commands)
    }

    /// Tells the driver to end the session now, for the reason it was closing for
    /// ([`Engine::close`](crate::Engine::close), once the grace period is over).
    pub(crate) fn release(&self) {
        let mut q = self.lock();
        if q.commands_closed {
            return;
        }
        q.released = true;
        self.commands_waiting.store(true, Ordering::Release);
        drop(q);
        self.waker.wake();
    }

    pub(crate) fn request_close(&self, reason: CloseReason) {
        let mut q = self.lock();
        if q.closed || q.close_requested.is_some() || q.abort.is_some() {
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
/// session's driver writes it out on the current transport. A client that does not read
/// cannot make the queue grow past `max_buffered_packets` / `max_buffered_bytes`, nor keep
/// it for longer than `slow_consumer_timeout`: the send that would cross a bound, or the
/// timeout, closes the session instead (see [`send`](Self::send)).
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

    /// The Engine.IO protocol revision of this session.
    pub fn protocol(&self) -> ProtocolVersion {
        if self.shared.v3 {
            ProtocolVersion::V3
        } else {
            ProtocolVersion::V4
        }
    }

    /// The transport in use now.
    pub fn transport(&self) -> TransportKind {
        self.shared.transport()
    }

    /// The handshake request (method, URI, headers, remote address).
    ///
    /// The session keeps it compactly and builds this the first time it is asked for.
    pub fn request(&self) -> &RequestInfo {
        self.shared.request.info()
    }

    /// The handshake request, shared: the layer above keeps it without copying the headers.
    pub fn request_arc(&self) -> Arc<RequestInfo> {
        self.shared.request.info().clone()
    }

    /// Queues a frame.
    ///
    /// Never waits. Fails with [`SendError::Closed`] once the session is closed or closing,
    /// and with [`SendError::Full`] when the frame alone is larger than `max_buffered_bytes`
    /// (the session stays open) or when it would take the session's backlog of frames not yet
    /// written to the transport past `max_buffered_packets` or `max_buffered_bytes` (each
    /// frame counting its payload plus [`FRAME_SLOT_BYTES`]): the client is not reading fast
    /// enough, and the session is then closed at once as a transport error, its backlog
    /// dropped ([`CloseReason::TransportError`]). A backlog that does not drain within
    /// `slow_consumer_timeout` closes the session the same way.
    pub fn send(&self, frame: Frame) -> Result<(), SendError> {
        let cost = frame.cost();
        let mut q = self.shared.lock();
        let overflow = self.shared.admit(&mut q, 1, cost);
        if let Err(e) = overflow {
            let abort = q.abort.is_some();
            drop(q);
            if abort {
                self.shared.waker.wake();
            }
            return Err(e);
        }
        let was_empty = q.frames.is_empty();
        if let Some(bytes) = frame.message_bytes() {
            self.shared.traffic.sent(1, bytes);
        }
        q.frames.push_back(frame);
        drop(q);
        self.shared.notify_queued(was_empty);
        Ok(())
    }

    /// Queues several frames at once, in order; either all are queued or none. The bounds
    /// apply to the frames together, as for [`send`](Self::send).
    pub fn send_many(&self, frames: impl IntoIterator<Item = Frame>) -> Result<(), SendError> {
        let frames: Vec<Frame> = frames.into_iter().collect();
        let cost = frames.iter().map(Frame::cost).sum();
        let mut q = self.shared.lock();
        let overflow = self.shared.admit(&mut q, frames.len(), cost);
        if let Err(e) = overflow {
            let abort = q.abort.is_some();
            drop(q);
            if abort {
                self.shared.waker.wake();
            }
            return Err(e);
        }
        let was_empty = q.frames.is_empty();
        let (messages, bytes) = frames
            .iter()
            .filter_map(Frame::message_bytes)
            .fold((0, 0), |(n, b), len| (n + 1, b + len));
        self.shared.traffic.sent(messages, bytes);
        q.frames.extend(frames);
        drop(q);
        self.shared.notify_queued(was_empty);
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

    /// How many frames wait to be handed to the transport: queued by the handles, or taken by
    /// the driver but not yet written to the WebSocket (or answered to a GET).
    pub fn queued(&self) -> usize {
        self.shared.pending_frames()
    }

    /// The bytes of the frames counted by [`queued`](Self::queued) (payload bytes, before
    /// any base64 encoding for long-polling).
    pub fn queued_bytes(&self) -> usize {
        self.shared.pending_bytes()
    }

    /// Whether the session is open and nothing waits to be written: no frame pending and,
    /// on WebSocket, a write side that can take more now. Volatile emits use it to skip
    /// clients that are behind.
    pub fn is_writable(&self) -> bool {
        if self.shared.pending_frames() != 0 || self.shared.write_blocked.load(Ordering::Acquire) {
            return false;
        }
        let q = self.shared.lock();
        !q.closed && q.close_requested.is_none() && q.abort.is_none()
    }

    /// Whether the session is still open.
    pub fn is_open(&self) -> bool {
        let q = self.shared.lock();
        !q.closed && q.close_requested.is_none() && q.abort.is_none()
    }

    /// Closes the session: frames already queued are still delivered, then a close packet,
    /// and the driver ends with [`CloseReason::ForcedClose`].
    pub fn close(&self) {
        self.shared.request_close(CloseReason::ForcedClose);
    }
}

#[cfg(test)]
mod tests;
