//! The WebSocket transport: frames are written as they come, read one at a time, and flushed
//! once reading would wait, so the replies to every frame of one read leave together.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data as OpData, OpCode};
use tokio_tungstenite::tungstenite::{self, Utf8Bytes};
use volley_proto::engine::{Message, Packet, v3};

use super::{Incoming, Transport};
use crate::command::WsStream;
use crate::error::CloseReason;
use crate::socket::{Frame, Shared};

/// How many messages the driver reads in a row before it looks at everything else again
/// (see [`Incoming::read_ahead`]).
pub(super) const READ_AHEAD: u8 = 16;

/// How long a WebSocket that is not going to be used is given to answer its close frame.
const CLOSE_WS_WAIT: Duration = Duration::from_secs(5);

/// Tells whether the WebSocket's read side may have something, so the driver reads only then.
///
/// The driver is woken for many reasons besides the socket becoming readable, above all for
/// frames queued by the handles: one wake per recipient of a broadcast. A read attempt on a
/// socket with nothing to read still costs tungstenite's zero-fill of its free read buffer
/// (the whole buffer, cache lines that would otherwise stay cold) and a trip through the IO and
/// tokio's readiness check. So reads are polled with a waker of their own, which marks the gate
/// open before waking the task: after a read came back `Pending`, the next one is attempted
/// only once the socket (or tungstenite's write side, which also wakes readers) woke it.
///
/// The gate wakes the task through the session's own `AtomicWaker` (`Shared::waker`)
/// rather than one of its own, so a read registers no waker: the driver's full round
/// registers `Shared::waker` before it looks at the gate, and a read between two full
/// rounds (`read_ahead`) either hands a message up (the caller polls again) or is followed
/// by a full round in the same poll, whose registration comes before its own look at the
/// gate. A wake that finds no waker registered has set the flag first, and that full round
/// sees it.
///
/// The flag (`Shared::read_open`) and the waker live in the session's [`Shared`] state, which
/// is the read waker itself: a socket's wake and the read after it touch the lines of
/// `Shared` the driver touches anyway, not a separate allocation of the gate's own.
pub(super) struct ReadGate {
    /// The session's `Shared` as a [`Waker`] (see the [`Wake`] impl below), made once.
    waker: Waker,
}

/// Waking the session's WebSocket read waker opens the read gate and wakes the driver.
impl Wake for Shared {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.read_open.store(true, Ordering::Release);
        self.waker.wake();
    }
}

impl ReadGate {
    /// Open: whatever hyper or tungstenite already buffered is read first.
    pub(super) fn new(shared: &Arc<Shared>) -> Self {
        shared.read_open.store(true, Ordering::Release);
        Self {
            waker: Waker::from(shared.clone()),
        }
    }

    /// Polls the next message if the socket may have one; `Pending` otherwise. The task is
    /// woken once it may (see [`ReadGate`] for the registration this relies on).
    fn poll_next(
        &self,
        shared: &Shared,
        ws: &mut WsStream,
    ) -> Poll<Option<Result<tungstenite::Message, tungstenite::Error>>> {
        // Closed before polling, with a plain load and store rather than a locked swap: only
        // the driver closes the gate, and a wake that comes between the load and the store
        // comes before the poll below, which then sees what the wake was for. A wake for
        // something the poll did not see is caused by the waker the poll registered, so it
        // happens after the store and opens the gate again.
        let open = &shared.read_open;
        if !open.load(Ordering::Acquire) {
            return Poll::Pending;
        }
        open.store(false, Ordering::Release);
        let poll = ws.poll_next_unpin(&mut Context::from_waker(&self.waker));
        if poll.is_ready() {
            // More may be buffered already: no wake would tell.
            open.store(true, Ordering::Release);
        }
        poll
    }
}

/// What the WebSocket transport asks of the driver's loop.
pub(super) enum WsStep {
    /// Nothing more to do until woken.
    Idle,
    /// Something happened: look at everything again.
    Again,
    /// A message came: it is handed up (the inbox is empty whenever the driver reads).
    Message(Message),
    /// The session is over.
    End(CloseReason),
}

impl Incoming {
    /// Writes queued frames, reads one frame, and flushes when reading would wait.
    pub(super) fn poll_websocket(&mut self, cx: &mut Context<'_>) -> WsStep {
        let Transport::Websocket {
            ws,
            unflushed,
            read,
        } = &mut self.transport
        else {
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
            let msg = if self.shared.v3 {
                ws_message_v3(frame, self.shared.supports_binary)
            } else {
                ws_message(frame)
            };
            if ws.start_send_unpin(msg).is_err() {
                return WsStep::End(CloseReason::TransportError);
            }
            sent += 1;
            sent_bytes += cost;
            *unflushed = true;
        }
        self.shared.sub_pending(sent, sent_bytes);
        // Read; a message is handed up at once, and the replies it causes are written
        // together with those of the next frames, before one flush.
        if self.closing.is_none()
            && let Poll::Ready(r) = read.poll_next(&self.shared, ws)
        {
            return match self.on_ws_read(r, cx) {
                Ok(Some(m)) => WsStep::Message(m),
                Ok(None) => WsStep::Again,
                Err(reason) => WsStep::End(reason),
            };
        }
        let Transport::Websocket { ws, unflushed, .. } = &mut self.transport else {
            return WsStep::Idle;
        };
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

    /// Between the frames of one read: the next message straight from the WebSocket, without
    /// a full round of the driver (queued frames, timers, commands, writes), at most
    /// [`READ_AHEAD`] times in a row. `None` when the socket has nothing ready or what it
    /// had was no message; the full round then takes over.
    pub(super) fn read_ahead(&mut self, cx: &mut Context<'_>) -> Option<Message> {
        if self.read_ahead_left == 0
            || self.closed.is_some()
            || self.closing.is_some()
            || self.upgrading.is_some()
            || !self.inbox.is_empty()
        {
            return None;
        }
        let Transport::Websocket { ws, read, .. } = &mut self.transport else {
            return None;
        };
        let Poll::Ready(r) = read.poll_next(&self.shared, ws) else {
            return None;
        };
        self.read_ahead_left -= 1;
        let m = match self.on_ws_read(r, cx) {
            Ok(m) => m?,
            Err(reason) => {
                self.finish(reason);
                return None;
            }
        };
        // The last full round may have ended with the flag clear.
        Some(self.hand_up(m))
    }

    /// What one read of the WebSocket gave: a message is handled (an Engine.IO message is
    /// returned, to be handed up), or the session ends for the reason returned.
    fn on_ws_read(
        &mut self,
        r: Option<Result<tungstenite::Message, tungstenite::Error>>,
        cx: &mut Context<'_>,
    ) -> Result<Option<Message>, CloseReason> {
        let Transport::Websocket { ws, unflushed, .. } = &mut self.transport else {
            return Ok(None);
        };
        match r {
            Some(Ok(msg)) => {
                // A ping frame may have queued a pong inside tungstenite.
                *unflushed = true;
                Ok(self.on_ws_message(msg))
            }
            Some(Err(e)) => {
                tracing::debug!(error = %e, "websocket read error");
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
                    return Err(CloseReason::TransportClose);
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
                Err(CloseReason::TransportError)
            }
            None => Err(CloseReason::TransportClose),
        }
    }

    /// Handles one WebSocket message; an Engine.IO message is returned.
    fn on_ws_message(&mut self, msg: tungstenite::Message) -> Option<Message> {
        match msg {
            tungstenite::Message::Text(text) if self.shared.v3 => {
                match v3::decode_text_record(Bytes::from(text), 0) {
                    Ok(p) => self.on_packet(p),
                    Err(e) => {
                        tracing::debug!(error = %e, "bad websocket packet");
                        self.finish(CloseReason::ParseError);
                        None
                    }
                }
            }
            tungstenite::Message::Binary(data) if self.shared.v3 => {
                match v3::decode_binary_frame(data) {
                    Ok(p) => self.on_packet(p),
                    Err(e) => {
                        tracing::debug!(error = %e, "bad websocket packet");
                        self.finish(CloseReason::ParseError);
                        None
                    }
                }
            }
            // tungstenite validated the text: it is not checked again.
            tungstenite::Message::Text(text) => match Packet::decode_utf8(Bytes::from(text)) {
                Ok(p) => self.on_packet(p),
                Err(e) => {
                    tracing::debug!(error = %e, "bad websocket packet");
                    self.finish(CloseReason::ParseError);
                    None
                }
            },
            tungstenite::Message::Binary(data) => self.on_packet(Packet::decode_binary(data)),
            tungstenite::Message::Close(_) => {
                self.finish(CloseReason::TransportClose);
                None
            }
            tungstenite::Message::Ping(_)
            | tungstenite::Message::Pong(_)
            | tungstenite::Message::Frame(_) => None,
        }
    }
}

/// The WebSocket message of a frame. A text frame goes as a ready-made WebSocket frame
/// rather than as `Message::Text`, whose `Utf8Bytes` would check the UTF-8 of every
/// outgoing message again: [`Frame::Text`] is UTF-8 by contract (its packets are built from
/// strings and JSON), and tungstenite writes a `Message::Text` as exactly this frame.
fn ws_message(frame: Frame) -> tungstenite::Message {
    match frame {
        Frame::Text(t) => {
            debug_assert!(std::str::from_utf8(&t).is_ok(), "a text frame is UTF-8");
            tungstenite::Message::Frame(tungstenite::protocol::frame::Frame::message(
                t,
                OpCode::Data(OpData::Text),
                true,
            ))
        }
        Frame::Binary(b) => tungstenite::Message::Binary(b),
    }
}

/// The WebSocket message of a frame on an Engine.IO v3 session: binary messages carry their
/// type byte, or go as `b4` + base64 text to a client without binary support.
fn ws_message_v3(frame: Frame, supports_binary: bool) -> tungstenite::Message {
    match frame {
        Frame::Binary(b) if supports_binary => tungstenite::Message::Binary(v3::binary_frame(&b)),
        Frame::Binary(b) => {
            let mut out = bytes::BytesMut::with_capacity(2 + b.len().div_ceil(3) * 4);
            out.extend_from_slice(b"b4");
            volley_proto::engine::payload::encode_base64(&b, &mut out);
            ws_message(Frame::Text(out.freeze()))
        }
        text => ws_message(text),
    }
}

/// Sends a close frame on a WebSocket that is not going to be used, off the driver.
pub(super) fn close_ws_later(mut ws: Box<WsStream>) {
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        handle.spawn(async move {
            let close = async {
                let _ = ws.send(tungstenite::Message::Close(None)).await;
                // Drain until the peer answers or goes away.
                while let Some(Ok(_)) = ws.next().await {}
            };
            let _ = tokio::time::timeout(CLOSE_WS_WAIT, close).await;
        });
    }
}
