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
//!
//! The submodules each hold one idea of the driver: `heartbeat` (ping and pong deadlines),
//! `timers` (every deadline checked against the clock, one timer armed), `outbox` (the
//! outbound queue), `polling` and `websocket` (the two transports), `upgrade` (the probe).

mod heartbeat;
mod outbox;
mod polling;
mod timers;
mod upgrade;
mod websocket;

use std::collections::VecDeque;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::time::{Instant, Sleep};
use volley_proto::engine::{Message, Packet};

use crate::command::{Command, WsStream};
use crate::error::{CloseReason, EngineError};
use crate::socket::{Frame, Shared};
use crate::state::EngineState;

use self::heartbeat::Heartbeat;
use self::upgrade::Upgrading;
use self::websocket::{ReadGate, WsStep, close_ws_later};

/// How long a long-polling session that the client closed waits for the client's last GET.
const CLIENT_CLOSE_LINGER: Duration = Duration::from_millis(100);

/// The transport a session is on now.
enum Transport {
    Polling {
        /// The GET waiting for something to send.
        parked: Option<oneshot::Sender<Result<Bytes, EngineError>>>,
    },
    Websocket {
        ws: Box<WsStream>,
        /// Frames were handed to the socket since the last flush.
        unflushed: bool,
        /// Whether the socket may have something to read (see [`ReadGate`]).
        read: ReadGate,
    },
}

/// The stream of messages of one session, and its driver.
///
/// Call [`recv`](Self::recv) in a loop for as long as the session should live: the session
/// makes progress (heartbeats, outbound frames, long-polling answers) only while `recv` is
/// awaited. Dropping it closes the session.
pub struct Incoming {
    shared: Arc<Shared>,
    engine: Arc<EngineState>,
    transport: Transport,
    /// (Boxed: rare, and `Incoming` is touched whole for every message, a cache line per 64
    /// bytes.)
    upgrading: Option<Box<Upgrading>>,
    inbox: VecDeque<Message>,
    outbox: VecDeque<Frame>,
    /// Since when the outbox has held frames without being emptied (see `outbox`).
    backlog_since: Option<Instant>,
    heartbeat: Heartbeat,
    closing_deadline: Option<Instant>,
    closing: Option<CloseReason>,
    /// Set when a long-polling client closed while none of its GETs was parked.
    linger: Option<Instant>,
    closed: Option<CloseReason>,
    timer: Pin<Box<Sleep>>,
    timer_at: Instant,
    /// The waker `timer` was last polled with.
    timer_waker: Option<Waker>,
    /// Messages the driver may still read ahead before its next full round.
    read_ahead_left: u8,
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
        engine: Arc<EngineState>,
        ws: Option<Box<WsStream>>,
        first: Option<Frame>,
    ) -> Self {
        let heartbeat = if shared.v3 {
            Heartbeat::new_v3(
                Instant::now(),
                engine.config.ping_interval,
                engine.config.ping_timeout,
            )
        } else {
            Heartbeat::new(Instant::now(), engine.config.ping_interval)
        };
        let next_ping = heartbeat.next_ping();
        engine.counters.drivers.fetch_add(1, Ordering::AcqRel);
        if let Some(f) = &first {
            shared.add_pending(1, f.cost());
        }
        let transport = match ws {
            Some(ws) => Transport::Websocket {
                ws,
                unflushed: false,
                read: ReadGate::new(&shared),
            },
            None => Transport::Polling { parked: None },
        };
        Self {
            shared,
            engine,
            transport,
            upgrading: None,
            inbox: VecDeque::new(),
            outbox: first.into_iter().collect(),
            backlog_since: None,
            heartbeat,
            closing_deadline: None,
            closing: None,
            linger: None,
            closed: None,
            timer: Box::pin(tokio::time::sleep_until(next_ping)),
            timer_at: next_ping,
            timer_waker: None,
            read_ahead_left: websocket::READ_AHEAD,
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
        // Between the frames of one read, the next one is handed up at once; `handed_up`
        // stays set, so frames queued meanwhile wait for the full round below, which comes
        // once the socket has nothing more ready (or after `READ_AHEAD` messages).
        if let Some(m) = self.read_ahead(cx) {
            return Poll::Ready(Ok(m));
        }
        self.read_ahead_left = websocket::READ_AHEAD;
        // From here on, frames queued by the handles wake this task again (see
        // `Shared::notify_queued`). A plain store is enough: the queue's lock, taken below
        // before the frames are looked at, orders it against a sender's check (which comes
        // after its own unlock): either this round's lock comes after the sender's unlock and
        // sees its frame, or the sender's lock comes after this round's unlock and its check
        // sees the flag clear.
        self.shared.handed_up.store(false, Ordering::Release);
        loop {
            if let Some(reason) = self.closed {
                return Poll::Ready(Err(reason));
            }
            if let Some(m) = self.inbox.pop_front() {
                return Poll::Ready(Ok(self.hand_up(m)));
            }
            let mut progress = false;

            // Frames queued by the handles.
            self.shared.waker.register(cx.waker());
            let (close_requested, abort) = self.take_queued();
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
            // (They wake the task through `shared.waker`, registered above.)
            if let Some(cmd) = self.shared.next_command() {
                match cmd {
                    Ok(cmd) => self.on_command(cmd),
                    // `Engine::close` let go of the session after its grace period: it ends
                    // for the reason it was closing.
                    Err(()) => self.finish(self.closing.unwrap_or(CloseReason::TransportClose)),
                }
                continue;
            }

            if self.upgrading.is_some() {
                progress |= self.poll_upgrade(cx);
            }

            match &self.transport {
                Transport::Polling { .. } => match self.answer_parked_get() {
                    polling::Answer::Waiting => {}
                    polling::Answer::Again => progress = true,
                    polling::Answer::Closed => continue,
                },
                Transport::Websocket { .. } => match self.poll_websocket(cx) {
                    WsStep::Idle => {}
                    WsStep::Again => continue,
                    WsStep::Message(m) => return Poll::Ready(Ok(self.hand_up(m))),
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

    /// `m`, handed up: the caller polls again next, so frames its handler queues meanwhile
    /// need no wake (see `Shared::notify_queued`); the flag is cleared at the start of the
    /// next full round.
    #[inline]
    fn hand_up(&self, m: Message) -> Message {
        self.shared.handed_up.store(true, Ordering::Release);
        m
    }

    fn on_command(&mut self, cmd: Command) {
        if self.linger.is_some() {
            // The client already closed; only its last GET is answered.
            match cmd {
                Command::Poll(reply) => drop(reply.send(Ok(control_body(self.shared.v3, b"6")))),
                Command::Post(post) => drop(post.2.send(Err(EngineError::UnknownSid))),
                Command::Upgrade(ws) => close_ws_later(ws),
                Command::Fail(_) => {}
            }
            self.finish(CloseReason::TransportClose);
            return;
        }
        match cmd {
            Command::Poll(reply) => self.on_poll(reply),
            Command::Post(post) => {
                let (body, binary, reply) = *post;
                self.on_post(body, binary, reply);
            }
            Command::Upgrade(ws) => self.on_upgrade_request(ws),
            Command::Fail(reason) => self.finish(reason),
        }
    }

    /// Handles one packet from the client, whatever transport carried it. A message is
    /// returned, for the caller to hand up or queue in `inbox` (a WebSocket's message is
    /// handed up at once, without a trip through the queue's buffer).
    #[must_use]
    fn on_packet(&mut self, packet: Packet) -> Option<Message> {
        if !matches!(packet, Packet::Pong(_))
            && self.closing.is_none()
            && self.linger.is_none()
            && self.heartbeat.awaits_refresh()
        {
            // As engine.io 6.6, which only looks at packets while the session is open. The
            // clock is read only when the packet counts.
            self.heartbeat
                .packet_received(Instant::now(), self.engine.config.ping_timeout);
        }
        match packet {
            Packet::Message(m) => {
                self.shared.traffic.received(match &m {
                    Message::Text(b) | Message::Binary(b) => b.len(),
                });
                return Some(m);
            }
            Packet::Pong(_) if self.shared.v3 => {
                // Node: "invalid heartbeat direction".
                self.finish(CloseReason::TransportError);
            }
            Packet::Pong(_) => self
                .heartbeat
                .pong_received(Instant::now(), self.engine.config.ping_interval),
            // Engine.IO v3: the client pings, the server answers and restarts its timeout.
            Packet::Ping(p) if self.shared.v3 && p.is_empty() => {
                if self.closing.is_none() && self.linger.is_none() {
                    let config = &self.engine.config;
                    self.heartbeat.ping_received(
                        Instant::now(),
                        config.ping_interval,
                        config.ping_timeout,
                    );
                    self.push_control(volley_proto::engine::PacketType::Pong);
                }
            }
            Packet::Close => {
                // The client closes: its pending GET is released with a noop, as Node does.
                if let Transport::Polling { parked } = &mut self.transport {
                    if let Some(reply) = parked.take() {
                        let _ = reply.send(Ok(control_body(self.shared.v3, b"6")));
                    } else {
                        // The GET the client sent before its close may still be on its way
                        // (another connection can overtake it); wait a moment for it rather
                        // than answer it with an error. Sends already fail.
                        self.shared.lock().closed = true;
                        self.linger = Some(Instant::now() + CLIENT_CLOSE_LINGER);
                        return None;
                    }
                }
                self.finish(CloseReason::TransportClose);
            }
            // A v4 client sends no ping except the upgrade probe, and nothing else here
            // needs an answer.
            Packet::Ping(_) | Packet::Open(_) | Packet::Upgrade | Packet::Noop => {}
        }
        None
    }

    fn start_closing(&mut self, reason: CloseReason) {
        self.closing = Some(reason);
        // On WebSocket the close packet follows the queued frames on the stream; on
        // long-polling it is sent on its own once they are gone (see `answer_parked_get`).
        if matches!(self.transport, Transport::Websocket { .. }) {
            self.push_control(volley_proto::engine::PacketType::Close);
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
        self.engine
            .registry
            .retire(&self.shared, &self.engine.counters);
        match &mut self.transport {
            Transport::Polling { parked } => {
                if let Some(reply) = parked.take() {
                    let _ = reply.send(Ok(control_body(self.shared.v3, b"1")));
                }
            }
            Transport::Websocket { .. } => {}
        }
        if let Some(up) = self.upgrading.take() {
            close_ws_later(up.ws);
        }
        // Requests that raced with the end get the answer Node gives for an unknown sid.
        for cmd in self.shared.close_commands() {
            match cmd {
                Command::Poll(r) => drop(r.send(Err(EngineError::UnknownSid))),
                Command::Post(post) => drop(post.2.send(Err(EngineError::UnknownSid))),
                Command::Upgrade(ws) => close_ws_later(ws),
                Command::Fail(_) => {}
            }
        }
        tracing::debug!(%reason, "session closed");
    }

    /// Ends the session at once for a client that does not read: its WebSocket is dropped
    /// rather than closed politely (a close frame would only wait behind what it did not
    /// read), and nothing queued is kept.
    pub(super) fn abort(&mut self, reason: CloseReason) {
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

/// A long-polling body holding one control packet (`1`, `6`): as is in v4, framed as
/// `1:<packet>` in v3.
pub(super) fn control_body(v3: bool, packet: &'static [u8]) -> Bytes {
    if v3 {
        let mut out = bytes::BytesMut::new();
        volley_proto::engine::v3::push_text(packet, &mut out);
        out.freeze()
    } else {
        Bytes::from_static(packet)
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

#[cfg(all(test, target_pointer_width = "64"))]
mod tests {
    /// The driver's state is touched whole for every message: each 64 bytes more is one more
    /// cache line missed per message when many sessions take turns.
    #[test]
    fn the_driver_state_fits_four_cache_lines() {
        let size = std::mem::size_of::<super::Incoming>();
        assert!(size <= 256, "Incoming is {size} bytes");
    }
}
