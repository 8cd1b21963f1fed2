//! The driver of one session: [`Incoming`] owns its state machine, timers and transports.
//!
//! There is no task per session inside the engine. The layer above runs one task per session
//! that loops over [`Incoming::recv`]; each call moves queued frames out, reads the transport,
//! answers HTTP long-polling requests and keeps the heartbeat, and returns the next message.
//! So a WebSocket echo costs one task and no channel hop, and replies to every frame of one
//! read are written with one flush.
//!
//! ```text
//! client                                server (Incoming)
//!   | GET ?EIO=4&transport=polling         |  handshake: 0{"sid",...}
//!   | GET (parked) ------------------------>|  answered when frames are queued
//!   | WS ?sid=..  ------------------------->|  Command::Upgrade, upgrade deadline set
//!   | 2probe ------------------------------>|
//!   |<------------------------------ 3probe |  parked GET answered with 6 (noop)
//!   | 5 ----------------------------------->|  transport = WebSocket; GET now gets 400
//! ```

use std::collections::VecDeque;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::{SinkExt as _, StreamExt as _};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, Sleep};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Utf8Bytes};
use volley_proto::engine::{Message, Packet, PacketType, payload};

use crate::config::TransportKind;
use crate::engine::EngineShared;
use crate::error::{CloseReason, EngineError};
use crate::socket::{Frame, Shared};

/// How long a long-polling session that the client closed waits for the client's last GET.
const CLIENT_CLOSE_LINGER: std::time::Duration = std::time::Duration::from_millis(100);

pub(crate) type WsStream = WebSocketStream<TokioIo<Upgraded>>;

/// What HTTP handlers ask of a session's driver.
pub(crate) enum Command {
    /// A long-polling GET: answered with a payload when frames are queued.
    Poll(oneshot::Sender<Result<Bytes, EngineError>>),
    /// A long-polling POST body, already limited to `maxPayload`.
    /// (Boxed: the channel allocates a block of 32 commands per session up front, so the
    /// size of the largest variant is paid 32 times by every session.)
    Post(Box<(Bytes, oneshot::Sender<Result<(), EngineError>>)>),
    /// A WebSocket for this sid, to upgrade to.
    Upgrade(Box<WsStream>),
    /// The HTTP layer saw the session misbehave (overlapping POSTs, oversize body).
    Fail(CloseReason),
}

enum WsStep {
    /// Nothing more to do until woken.
    Idle,
    /// Something happened: look at everything again.
    Again,
    /// The session is over.
    End(CloseReason),
}

enum Transport {
    Polling {
        parked: Option<oneshot::Sender<Result<Bytes, EngineError>>>,
    },
    Websocket {
        ws: Box<WsStream>,
        unflushed: bool,
    },
}

struct Upgrading {
    ws: Box<WsStream>,
    deadline: Instant,
    probed: bool,
    reply_pending: bool,
}

/// The stream of messages of one session, and its driver.
///
/// Call [`recv`](Self::recv) in a loop for as long as the session should live: the session
/// makes progress (heartbeats, outbound frames, long-polling answers) only while `recv` is
/// awaited. Dropping it closes the session.
pub struct Incoming {
    shared: Arc<Shared>,
    engine: Arc<EngineShared>,
    commands: mpsc::Receiver<Command>,
    transport: Transport,
    upgrading: Option<Upgrading>,
    inbox: VecDeque<Message>,
    outbox: VecDeque<Frame>,
    next_ping: Instant,
    pong_deadline: Option<Instant>,
    closing_deadline: Option<Instant>,
    closing: Option<CloseReason>,
    /// Set when a long-polling client closed while none of its GETs was parked.
    linger: Option<Instant>,
    closed: Option<CloseReason>,
    timer: Pin<Box<Sleep>>,
    timer_at: Instant,
}

impl std::fmt::Debug for Incoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incoming")
            .field("sid", &self.shared.sid)
            .field("closed", &self.closed)
            .finish()
    }
}

impl Incoming {
    pub(crate) fn new(
        shared: Arc<Shared>,
        engine: Arc<EngineShared>,
        commands: mpsc::Receiver<Command>,
        ws: Option<Box<WsStream>>,
        first: Option<Frame>,
    ) -> Self {
        let next_ping = Instant::now() + engine.config.ping_interval;
        engine.counters.drivers.fetch_add(1, Ordering::AcqRel);
        if let Some(f) = &first {
            shared.add_pending(1, f.cost());
        }
        let transport = match ws {
            Some(ws) => Transport::Websocket {
                ws,
                unflushed: false,
            },
            None => Transport::Polling { parked: None },
        };
        Self {
            shared,
            engine,
            commands,
            transport,
            upgrading: None,
            inbox: VecDeque::new(),
            outbox: first.into_iter().collect(),
            next_ping,
            pong_deadline: None,
            closing_deadline: None,
            closing: None,
            linger: None,
            closed: None,
            timer: Box::pin(tokio::time::sleep_until(next_ping)),
            timer_at: next_ping,
        }
    }

    /// Waits for the next message from the client, driving the session meanwhile.
    ///
    /// Returns the reason once the session is over; every later call returns it again.
    pub async fn recv(&mut self) -> Result<Message, CloseReason> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// The reason the session ended, once it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.closed
    }

    /// Polls for the next message; see [`recv`](Self::recv).
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Message, CloseReason>> {
        loop {
            if let Some(reason) = self.closed {
                return Poll::Ready(Err(reason));
            }
            if let Some(m) = self.inbox.pop_front() {
                return Poll::Ready(Ok(m));
            }
            let mut progress = false;

            // Frames queued by the handles.
            self.shared.waker.register(cx.waker());
            let (close_requested, abort) = {
                let mut q = self.shared.lock();
                if self.outbox.is_empty() {
                    std::mem::swap(&mut self.outbox, &mut q.frames);
                } else {
                    self.outbox.extend(q.frames.drain(..));
                }
                (q.close_requested, q.abort)
            };
            if let Some(reason) = abort {
                // A send went past the backlog's bounds: the client is not reading. Nothing
                // more is written to it, not even a close packet; its connection is dropped.
                self.abort(reason);
                continue;
            }
            if let (Some(reason), None) = (close_requested, self.closing) {
                self.start_closing(reason);
            }

            // Deadlines are checked against the clock before any request is looked at: a
            // request that comes after the pong deadline finds the session closed even if the
            // timer wheel has not fired yet.
            if self.poll_timers(cx) {
                progress = true;
                if self.closed.is_some() {
                    continue;
                }
            }

            // Requests from HTTP handlers; one at a time, so a POST's messages are handed up
            // before the next request is looked at.
            if let Poll::Ready(cmd) = self.commands.poll_recv(cx) {
                match cmd {
                    Some(cmd) => self.on_command(cmd),
                    // Only `Engine::close` drops the registry's sender of a live session,
                    // after its grace period: the session ends for the reason it was closing.
                    None => self.finish(self.closing.unwrap_or(CloseReason::TransportClose)),
                }
                continue;
            }

            if self.upgrading.is_some() {
                progress |= self.poll_upgrade(cx);
            }

            match &mut self.transport {
                Transport::Polling { parked } => {
                    if let Some(reply) = parked.take() {
                        if !self.outbox.is_empty() {
                            let (body, bytes) = payload_of(&self.outbox);
                            match reply.send(Ok(body)) {
                                Ok(()) => {
                                    self.shared.sub_pending(self.outbox.len(), bytes);
                                    self.outbox.clear();
                                }
                                Err(_) => progress = true,
                            }
                        } else if let Some(reason) = self.closing {
                            // What was queued went out in earlier answers; the close packet
                            // gets one of its own, as Node sends it. In the same payload the
                            // official client would act on the close before the packets
                            // before it (a DISCONNECT would read as "transport close").
                            let _ = reply.send(Ok(Bytes::from_static(b"1")));
                            self.finish(reason);
                            continue;
                        } else if self.upgrading.as_ref().is_some_and(|u| u.probed) {
                            let _ = reply.send(Ok(Bytes::from_static(b"6")));
                        } else if !reply.is_closed() {
                            *parked = Some(reply);
                        }
                    }
                }
                Transport::Websocket { .. } => match self.poll_websocket(cx) {
                    WsStep::Idle => {}
                    WsStep::Again => continue,
                    WsStep::End(reason) => {
                        self.finish(reason);
                        continue;
                    }
                },
            }

            if !progress {
                return Poll::Pending;
            }
        }
    }

    /// Writes queued frames, reads one frame, and flushes when reading would wait.
    fn poll_websocket(&mut self, cx: &mut Context<'_>) -> WsStep {
        let Transport::Websocket { ws, unflushed } = &mut self.transport else {
            return WsStep::Idle;
        };
        // Write what is queued, without flushing yet. A frame leaves the backlog once
        // tungstenite took it; `poll_ready` only lets the next one in once the socket took
        // the previous one, so tungstenite never holds more than a frame.
        let (mut sent, mut sent_bytes) = (0, 0);
        while let Some(frame) = self.outbox.pop_front() {
            match ws.poll_ready_unpin(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(_)) => return WsStep::End(CloseReason::TransportError),
                Poll::Pending => {
                    self.outbox.push_front(frame);
                    break;
                }
            }
            let cost = frame.cost();
            if ws.start_send_unpin(ws_message(frame)).is_err() {
                return WsStep::End(CloseReason::TransportError);
            }
            sent += 1;
            sent_bytes += cost;
            *unflushed = true;
        }
        self.shared.sub_pending(sent, sent_bytes);
        // Read; a message is handed up at once, and the replies it causes are written
        // together with those of the next frames, before one flush.
        if self.closing.is_none() {
            match ws.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(msg))) => {
                    // A ping frame may have queued a pong inside tungstenite.
                    *unflushed = true;
                    self.on_ws_message(msg);
                    return WsStep::Again;
                }
                Poll::Ready(Some(Err(e))) => {
                    tracing::debug!(sid = %self.shared.sid, error = %e, "websocket read error");
                    // The peer went away without a closing handshake: nobody to tell, and
                    // Node reports it as a transport close.
                    if matches!(
                        e,
                        tungstenite::Error::Io(_)
                            | tungstenite::Error::ConnectionClosed
                            | tungstenite::Error::AlreadyClosed
                            | tungstenite::Error::Protocol(
                                tungstenite::error::ProtocolError::ResetWithoutClosingHandshake
                            )
                    ) {
                        return WsStep::End(CloseReason::TransportClose);
                    }
                    // Tell the peer why, with the close code Node's `ws` sends.
                    let code = match e {
                        tungstenite::Error::Capacity(_) => Some(CloseCode::Size),
                        tungstenite::Error::Utf8(_) => Some(CloseCode::Invalid),
                        tungstenite::Error::Protocol(_) => Some(CloseCode::Protocol),
                        _ => None,
                    };
                    if let Some(code) = code {
                        let frame = CloseFrame {
                            code,
                            reason: Utf8Bytes::from_static(""),
                        };
                        let _ = ws.start_send_unpin(tungstenite::Message::Close(Some(frame)));
                        let _ = ws.poll_flush_unpin(cx);
                    }
                    return WsStep::End(CloseReason::TransportError);
                }
                Poll::Ready(None) => return WsStep::End(CloseReason::TransportClose),
                Poll::Pending => {}
            }
        }
        if *unflushed {
            match ws.poll_flush_unpin(cx) {
                Poll::Ready(Ok(())) => {
                    *unflushed = false;
                    self.shared.write_blocked.store(false, Ordering::Release);
                }
                Poll::Ready(Err(_)) => return WsStep::End(CloseReason::TransportError),
                Poll::Pending => {
                    self.shared.write_blocked.store(true, Ordering::Release);
                    return WsStep::Idle;
                }
            }
        }
        if let Some(reason) = self.closing
            && self.outbox.is_empty()
        {
            // Everything, the close packet included, is flushed: a close frame, best
            // effort, without waiting for the answer.
            let _ = ws.start_send_unpin(tungstenite::Message::Close(None));
            let _ = ws.poll_flush_unpin(cx);
            return WsStep::End(reason);
        }
        WsStep::Idle
    }

    fn on_command(&mut self, cmd: Command) {
        if self.linger.is_some() {
            // The client already closed; only its last GET is answered.
            match cmd {
                Command::Poll(reply) => drop(reply.send(Ok(Bytes::from_static(b"6")))),
                Command::Post(post) => drop(post.1.send(Err(EngineError::UnknownSid))),
                Command::Upgrade(ws) => close_ws_later(ws),
                Command::Fail(_) => {}
            }
            self.finish(CloseReason::TransportClose);
            return;
        }
        match cmd {
            Command::Poll(reply) => match &mut self.transport {
                Transport::Websocket { .. } => {
                    let _ = reply.send(Err(EngineError::BadRequest));
                }
                Transport::Polling { parked } => {
                    if let Some(first) = parked.take() {
                        // Two GETs at once: Node closes the session; the first request gets
                        // the close packet and the second an error.
                        let _ = first.send(Ok(Bytes::from_static(b"1")));
                        let _ = reply.send(Err(EngineError::Overlap));
                        self.finish(CloseReason::TransportError);
                    } else {
                        *parked = Some(reply);
                    }
                }
            },
            Command::Post(post) => {
                let (body, reply) = *post;
                if matches!(self.transport, Transport::Websocket { .. }) {
                    let _ = reply.send(Err(EngineError::BadRequest));
                    return;
                }
                let mut failed = false;
                for packet in payload::decode(body) {
                    match packet {
                        Ok(p) => self.on_packet(p),
                        Err(e) => {
                            tracing::debug!(sid = %self.shared.sid, error = %e, "bad polling payload");
                            failed = true;
                            break;
                        }
                    }
                }
                if failed {
                    let _ = reply.send(Err(EngineError::BadRequest));
                    self.inbox.clear();
                    self.finish(CloseReason::ParseError);
                } else {
                    let _ = reply.send(Ok(()));
                }
            }
            Command::Upgrade(ws) => {
                let can_upgrade = self.engine.config.allow_upgrades
                    && self.upgrading.is_none()
                    && self.closing.is_none()
                    && matches!(self.transport, Transport::Polling { .. });
                if can_upgrade {
                    self.upgrading = Some(Upgrading {
                        ws,
                        deadline: Instant::now() + self.engine.config.upgrade_timeout,
                        probed: false,
                        reply_pending: false,
                    });
                } else {
                    close_ws_later(ws);
                }
            }
            Command::Fail(reason) => self.finish(reason),
        }
    }

    /// Handles one packet from the client, whatever transport carried it.
    fn on_packet(&mut self, packet: Packet) {
        match packet {
            Packet::Message(m) => self.inbox.push_back(m),
            Packet::Pong(_) => {
                if self.pong_deadline.take().is_some() {
                    self.next_ping = Instant::now() + self.engine.config.ping_interval;
                }
            }
            Packet::Close => {
                // The client closes: its pending GET is released with a noop, as Node does.
                if let Transport::Polling { parked } = &mut self.transport {
                    if let Some(reply) = parked.take() {
                        let _ = reply.send(Ok(Bytes::from_static(b"6")));
                    } else {
                        // The GET the client sent before its close may still be on its way
                        // (another connection can overtake it); wait a moment for it rather
                        // than answer it with an error. Sends already fail.
                        self.shared.lock().closed = true;
                        self.linger = Some(Instant::now() + CLIENT_CLOSE_LINGER);
                        return;
                    }
                }
                self.finish(CloseReason::TransportClose);
            }
            // A v4 client sends no ping except the upgrade probe, and nothing else here
            // needs an answer.
            Packet::Ping(_) | Packet::Open(_) | Packet::Upgrade | Packet::Noop => {}
        }
    }

    fn on_ws_message(&mut self, msg: tungstenite::Message) {
        match msg {
            tungstenite::Message::Text(text) => match Packet::decode_text(Bytes::from(text)) {
                Ok(p) => self.on_packet(p),
                Err(e) => {
                    tracing::debug!(sid = %self.shared.sid, error = %e, "bad websocket packet");
                    self.finish(CloseReason::ParseError);
                }
            },
            tungstenite::Message::Binary(data) => self.on_packet(Packet::decode_binary(data)),
            tungstenite::Message::Close(_) => self.finish(CloseReason::TransportClose),
            tungstenite::Message::Ping(_)
            | tungstenite::Message::Pong(_)
            | tungstenite::Message::Frame(_) => {}
        }
    }

    /// Drives a WebSocket that is being probed for an upgrade. Returns whether anything
    /// happened.
    fn poll_upgrade(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(up) = self.upgrading.as_mut() else {
            return false;
        };
        if up.reply_pending {
            match up.ws.poll_flush_unpin(cx) {
                Poll::Ready(Ok(())) => up.reply_pending = false,
                Poll::Ready(Err(_)) => {
                    self.upgrading = None;
                    return true;
                }
                Poll::Pending => {}
            }
        }
        let msg = match up.ws.poll_next_unpin(cx) {
            Poll::Pending => return false,
            Poll::Ready(Some(Ok(msg))) => msg,
            Poll::Ready(_) => {
                self.upgrading = None;
                return true;
            }
        };
        let packet = match msg {
            tungstenite::Message::Text(t) => Packet::decode_text(Bytes::from(t)).ok(),
            tungstenite::Message::Ping(_) | tungstenite::Message::Pong(_) => return true,
            _ => None,
        };
        match packet {
            Some(Packet::Ping(p)) if &p[..] == b"probe" && !up.probed => {
                up.probed = true;
                let pong = tungstenite::Message::Text(Utf8Bytes::from_static("3probe"));
                let sent = up.ws.start_send_unpin(pong).is_ok();
                up.reply_pending = sent;
                if !sent {
                    self.upgrading = None;
                }
            }
            Some(Packet::Upgrade) if up.probed => {
                let Some(up) = self.upgrading.take() else {
                    return true;
                };
                if let Transport::Polling { parked } = &mut self.transport
                    && let Some(reply) = parked.take()
                {
                    if self.outbox.is_empty() {
                        let _ = reply.send(Ok(Bytes::from_static(b"6")));
                    } else {
                        let (body, bytes) = payload_of(&self.outbox);
                        if reply.send(Ok(body)).is_ok() {
                            self.shared.sub_pending(self.outbox.len(), bytes);
                            self.outbox.clear();
                        }
                    }
                }
                self.transport = Transport::Websocket {
                    ws: up.ws,
                    unflushed: up.reply_pending,
                };
                self.shared
                    .transport
                    .store(TransportKind::WebSocket as u8, Ordering::Release);
            }
            // Anything else during an upgrade aborts it, as Node does.
            _ => {
                if let Some(up) = self.upgrading.take() {
                    close_ws_later(up.ws);
                }
            }
        }
        true
    }

    /// Fires due timers and re-arms the timer. Returns whether anything fired.
    fn poll_timers(&mut self, cx: &mut Context<'_>) -> bool {
        let now = Instant::now();
        let mut fired = false;
        if let Some(at) = self.linger
            && at <= now
        {
            self.finish(CloseReason::TransportClose);
            return true;
        }
        if let Some(at) = self.closing_deadline
            && at <= now
        {
            let reason = self.closing.unwrap_or(CloseReason::ForcedClose);
            self.finish(reason);
            return true;
        }
        if let Some(at) = self.pong_deadline {
            if at <= now {
                self.finish(CloseReason::PingTimeout);
                return true;
            }
        } else if self.next_ping <= now && self.closing.is_none() && self.linger.is_none() {
            self.push_control(PacketType::Ping);
            // From the time the ping was due, not from when the timer got to run: a client
            // that misses it is gone exactly pingInterval + pingTimeout after the last pong.
            // Should this task have been starved past that, the client still gets half a
            // timeout to answer.
            let timeout = self.engine.config.ping_timeout;
            self.pong_deadline = Some((self.next_ping + timeout).max(now + timeout / 2));
            fired = true;
        }
        if let Some(up) = &self.upgrading
            && up.deadline <= now
        {
            if let Some(up) = self.upgrading.take() {
                close_ws_later(up.ws);
            }
            fired = true;
        }
        let mut next = match self.pong_deadline {
            Some(at) => at,
            // A closing session sends no more pings: a `next_ping` already past must not
            // arm the timer, or it fires again at once and the driver never yields.
            None if self.closing.is_some() || self.linger.is_some() => self
                .closing_deadline
                .or(self.linger)
                .unwrap_or(self.next_ping),
            None => self.next_ping,
        };
        if let Some(up) = &self.upgrading {
            next = next.min(up.deadline);
        }
        if let Some(at) = self.closing_deadline {
            next = next.min(at);
        }
        if let Some(at) = self.linger {
            next = next.min(at);
        }
        if next != self.timer_at {
            self.timer.as_mut().reset(next);
            self.timer_at = next;
        }
        if !fired && self.timer.as_mut().poll(cx).is_ready() {
            // The deadline passed between reading the clock and polling: go round again.
            fired = true;
        }
        fired
    }

    /// Queues a packet of the driver's own (ping, close), counted in the backlog like the
    /// others.
    fn push_control(&mut self, ty: PacketType) {
        let frame = Frame::control(ty);
        self.shared.add_pending(1, frame.cost());
        self.outbox.push_back(frame);
    }

    fn start_closing(&mut self, reason: CloseReason) {
        self.closing = Some(reason);
        // On WebSocket the close packet follows the queued frames on the stream; on
        // long-polling it is sent on its own once they are gone (see `poll_recv`).
        if matches!(self.transport, Transport::Websocket { .. }) {
            self.push_control(PacketType::Close);
        }
        // A long-polling client may never come back for the close packet.
        self.closing_deadline = Some(Instant::now() + self.engine.config.ping_timeout);
        if let Some(up) = self.upgrading.take() {
            close_ws_later(up.ws);
        }
    }

    /// Ends the session: no more sends, the sid is forgotten, a parked GET gets the close
    /// packet.
    fn finish(&mut self, reason: CloseReason) {
        if self.closed.is_some() {
            return;
        }
        self.closed = Some(reason);
        // Sends fail from now on; what is still queued will never be written, so its memory
        // goes now, not when the last handle is dropped.
        let dropped = {
            let mut q = self.shared.lock();
            q.closed = true;
            std::mem::take(&mut q.frames)
        };
        drop(dropped);
        self.outbox = VecDeque::new();
        self.inbox.shrink_to_fit();
        self.shared.clear_pending();
        self.shared.write_blocked.store(false, Ordering::Release);
        self.engine.registry.remove(&self.shared.sid);
        match &mut self.transport {
            Transport::Polling { parked } => {
                if let Some(reply) = parked.take() {
                    let _ = reply.send(Ok(Bytes::from_static(b"1")));
                }
            }
            Transport::Websocket { .. } => {}
        }
        if let Some(up) = self.upgrading.take() {
            close_ws_later(up.ws);
        }
        // Requests that raced with the end get the answer Node gives for an unknown sid.
        self.commands.close();
        while let Ok(cmd) = self.commands.try_recv() {
            match cmd {
                Command::Poll(r) => drop(r.send(Err(EngineError::UnknownSid))),
                Command::Post(post) => drop(post.1.send(Err(EngineError::UnknownSid))),
                Command::Upgrade(ws) => close_ws_later(ws),
                Command::Fail(_) => {}
            }
        }
        tracing::debug!(sid = %self.shared.sid, %reason, "session closed");
    }
}

impl Incoming {
    /// Ends the session at once for a client that does not read: its WebSocket is dropped
    /// rather than closed politely (a close frame would only wait behind what it did not
    /// read), and nothing queued is kept.
    fn abort(&mut self, reason: CloseReason) {
        if self.closed.is_some() {
            return;
        }
        if let Transport::Websocket { ws, .. } =
            std::mem::replace(&mut self.transport, Transport::Polling { parked: None })
        {
            drop(ws);
        }
        self.finish(reason);
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        self.engine.counters.drivers.fetch_sub(1, Ordering::AcqRel);
        self.finish(CloseReason::ForcedClose);
        if let Transport::Websocket { ws, .. } =
            std::mem::replace(&mut self.transport, Transport::Polling { parked: None })
        {
            close_ws_later(ws);
        }
    }
}

/// Encodes queued frames as one long-polling payload; also returns what the frames counted
/// for in the backlog.
fn payload_of(frames: &VecDeque<Frame>) -> (Bytes, usize) {
    let cost = frames.iter().map(Frame::cost).sum();
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

fn frame_len(f: &Frame) -> usize {
    match f {
        Frame::Text(t) => t.len(),
        Frame::Binary(b) => 1 + b.len().div_ceil(3) * 4,
    }
}

fn ws_message(frame: Frame) -> tungstenite::Message {
    match frame {
        Frame::Text(t) => match Utf8Bytes::try_from(t.clone()) {
            Ok(t) => tungstenite::Message::Text(t),
            // Frames are built from strings; a non-UTF-8 one is a bug of the layer above,
            // and is sent as binary rather than dropped.
            Err(_) => tungstenite::Message::Binary(t),
        },
        Frame::Binary(b) => tungstenite::Message::Binary(b),
    }
}

/// Sends a close frame on a WebSocket that is not going to be used, off the driver.
fn close_ws_later(mut ws: Box<WsStream>) {
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        handle.spawn(async move {
            let close = async {
                let _ = ws.send(tungstenite::Message::Close(None)).await;
                // Drain until the peer answers or goes away.
                while let Some(Ok(_)) = ws.next().await {}
            };
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), close).await;
        });
    }
}
