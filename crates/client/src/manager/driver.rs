//! The driver task: one per manager. It owns the Engine.IO session, the reassembler and the
//! backoff, and moves between phases: idle, opening a connection, waiting to reconnect, open
//! (see `connection.rs`), done.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::mpsc;
use volley_core::parser::Decoder;
use volley_core::{Encoded, EncodedFrame, Parser};
use volley_proto::engine::{Message, Packet as EnginePacket};
use volley_proto::socket::{DecodeLimits, PacketType};

use super::{Cmd, Manager, ManagerEvent, ManagerInner};
use crate::backoff::Backoff;
use crate::engine::Session;
use crate::error::{ConnectError, DisconnectReason, TransportError, TransportErrorKind};
use crate::socket::{Auth, Buffered, Socket, SocketInner, Status, lock, read};

pub(super) enum Phase {
    Idle,
    Opening(u32),
    Waiting,
    Open(Box<Session>),
    Done,
}

pub(super) struct Driver {
    pub(super) inner: Arc<ManagerInner>,
    pub(super) rx: mpsc::UnboundedReceiver<Cmd>,
    /// Commands taken out of the channel while draining it at a disconnect.
    pub(super) deferred: VecDeque<Cmd>,
    pub(super) backoff: Backoff,
    /// Counts sessions, so that a CONNECT prepared for an old one is not sent on a new one.
    pub(super) generation: u64,
    pub(super) decoder: Decoder,
    /// Events taken from the channel but not written when the session ended.
    pub(super) unsent: Vec<(String, Buffered)>,
}

/// The most binary attachments one packet from the server may have. The server is the peer
/// the application chose; the official client sets no limit at all.
const MAX_ATTACHMENTS: usize = 1024;

pub(super) fn decoder(parser: Parser) -> Decoder {
    parser.decoder(DecodeLimits {
        max_attachments: MAX_ATTACHMENTS,
    })
}

/// The Engine.IO packets of a Socket.IO packet: its text, then its attachments.
pub(super) fn frames(packet: Encoded) -> Vec<EnginePacket> {
    packet
        .frames()
        .map(|f| match f {
            // The engine writes the message type itself.
            EncodedFrame::Text(t) => EnginePacket::Message(Message::Text(t.slice(1..))),
            EncodedFrame::Binary(b) => EnginePacket::Message(Message::Binary(b)),
        })
        .collect()
}

/// Whether a packet is an acknowledgement (meaningless on another connection).
pub(super) fn is_ack(packet: &Encoded) -> bool {
    matches!(packet.kind(), Some(PacketType::Ack | PacketType::BinaryAck))
}

impl Driver {
    pub(super) fn emit(&self, ev: ManagerEvent) {
        let _ = self.inner.events.send(ev);
    }

    pub(super) fn sockets(&self) -> Vec<Arc<SocketInner>> {
        lock(&self.inner.sockets).values().cloned().collect()
    }

    pub(super) fn socket(&self, nsp: &str) -> Option<Arc<SocketInner>> {
        lock(&self.inner.sockets).get(nsp).cloned()
    }

    pub(super) fn any_active(&self) -> bool {
        self.sockets().iter().any(|s| lock(&s.state).active)
    }

    /// A user handle on a socket, for handlers; none once every user handle is gone.
    pub(super) fn handle(&self, socket: &Arc<SocketInner>) -> Option<Socket> {
        let guard = self.inner.guard.upgrade()?;
        Some(Socket {
            inner: socket.clone(),
            manager: Manager {
                inner: self.inner.clone(),
                _guard: guard,
            },
        })
    }

    pub(super) async fn next_cmd(&mut self) -> Cmd {
        if let Some(cmd) = self.deferred.pop_front() {
            return cmd;
        }
        self.rx.recv().await.unwrap_or(Cmd::Shutdown)
    }

    pub(super) async fn run(mut self) {
        let mut phase = Phase::Idle;
        loop {
            phase = match phase {
                Phase::Idle => self.idle().await,
                Phase::Opening(attempt) => self.opening(attempt).await,
                Phase::Waiting => self.waiting().await,
                Phase::Open(session) => self.open(*session).await,
                Phase::Done => break,
            };
        }
        self.shutdown();
    }

    /// Fails everything still waiting: the manager is gone.
    pub(super) fn shutdown(&mut self) {
        *lock(&self.inner.current) = None;
        self.rx.close();
        for s in self.sockets() {
            let acks = {
                let mut st = lock(&s.state);
                st.active = false;
                st.connected = false;
                st.buffer.clear();
                std::mem::take(&mut st.acks)
            };
            s.status
                .send_replace(Status::Failed(ConnectError::connection_failed(
                    "the manager is closed",
                )));
            for (_, tx) in acks {
                let _ = tx.send(Err(crate::AckError::Disconnected));
            }
        }
    }

    /// Handles a command while there is no session. Returns the next phase if it changes.
    pub(super) fn offline(&mut self, cmd: Cmd, idle: bool) -> Option<Phase> {
        match cmd {
            Cmd::Send {
                nsp,
                packet,
                ack,
                volatile,
            } => {
                // Emitted while connected, but the connection is gone: back to the buffer.
                if let Some(s) = self.socket(&nsp).filter(|_| !volatile) {
                    lock(&s.state).buffer.push_back(Buffered { packet, ack });
                }
                None
            }
            Cmd::Activate(_) if idle => Some(Phase::Opening(0)),
            Cmd::Activate(_) | Cmd::ConnectPacket { .. } => None,
            Cmd::Deactivate { nsp, was_connected } => {
                if was_connected && let Some(s) = self.socket(&nsp) {
                    self.fire_disconnect(&s, DisconnectReason::IoClientDisconnect);
                }
                if !idle && !self.any_active() {
                    self.backoff.reset();
                    return Some(Phase::Idle);
                }
                None
            }
            Cmd::Close => {
                self.deactivate_all();
                self.backoff.reset();
                (!idle).then_some(Phase::Idle)
            }
            Cmd::Shutdown => Some(Phase::Done),
        }
    }

    pub(super) fn deactivate_all(&mut self) {
        for s in self.sockets() {
            let (was, acks) = {
                let mut st = lock(&s.state);
                let was = st.connected;
                st.active = false;
                st.connected = false;
                (was, st.take_sent_acks())
            };
            s.status.send_replace(Status::Idle);
            for tx in acks {
                let _ = tx.send(Err(crate::AckError::Disconnected));
            }
            if was {
                self.fire_disconnect(&s, DisconnectReason::ForcedClose);
            }
        }
    }

    pub(super) async fn idle(&mut self) -> Phase {
        self.backoff.reset();
        loop {
            let cmd = self.next_cmd().await;
            if let Some(phase) = self.offline(cmd, true) {
                return phase;
            }
        }
    }

    pub(super) async fn opening(&mut self, attempt: u32) -> Phase {
        if attempt > 0 {
            self.emit(ManagerEvent::ReconnectAttempt(attempt));
        }
        let cfg = self.inner.engine.clone();
        let timeout = self.inner.timeout;
        let open = async move {
            match timeout {
                Some(d) => tokio::time::timeout(d, Session::open(cfg))
                    .await
                    .unwrap_or_else(|_| {
                        Err(TransportError::new(TransportErrorKind::Timeout, "timeout"))
                    }),
                None => Session::open(cfg).await,
            }
        };
        tokio::pin!(open);
        loop {
            tokio::select! {
                r = &mut open => {
                    return match r {
                        Ok(session) => {
                            if attempt > 0 {
                                self.emit(ManagerEvent::Reconnect(attempt));
                            }
                            self.backoff.reset();
                            Phase::Open(Box::new(session))
                        }
                        Err(e) => self.open_failed(attempt, e),
                    };
                }
                cmd = self.next_cmd() => {
                    if let Some(phase) = self.offline(cmd, false) {
                        return phase;
                    }
                }
            }
        }
    }

    pub(super) fn open_failed(&mut self, attempt: u32, e: TransportError) -> Phase {
        tracing::debug!(attempt, error = %e, "connection failed");
        self.emit(ManagerEvent::Error(e.clone()));
        let err = ConnectError::connection_failed(e.message().to_owned());
        for s in self.sockets() {
            let waiting = {
                let st = lock(&s.state);
                st.active && !st.connected
            };
            if waiting {
                self.fire_connect_error(&s, err.clone(), !self.inner.reconnection.enabled);
            }
        }
        if attempt > 0 {
            self.emit(ManagerEvent::ReconnectError(e));
        }
        if self.inner.reconnection.enabled {
            Phase::Waiting
        } else {
            Phase::Idle
        }
    }

    pub(super) async fn waiting(&mut self) -> Phase {
        if let Some(max) = self.inner.reconnection.attempts
            && self.backoff.attempts() >= max
        {
            self.backoff.reset();
            self.emit(ManagerEvent::ReconnectFailed);
            let err = ConnectError::connection_failed("reconnection failed");
            for s in self.sockets() {
                if lock(&s.state).active {
                    s.status.send_replace(Status::Failed(err.clone()));
                }
            }
            return Phase::Idle;
        }
        let delay = self.backoff.duration();
        let attempt = self.backoff.attempts();
        tracing::debug!(attempt, ?delay, "reconnecting after a delay");
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => return Phase::Opening(attempt),
                cmd = self.next_cmd() => {
                    if let Some(phase) = self.offline(cmd, false) {
                        return phase;
                    }
                }
            }
        }
    }

    pub(super) fn send_connect(&self, session: &mut Session, socket: &Arc<SocketInner>) {
        let auth = read(&socket.opts).auth.clone();
        match auth {
            Auth::None => {
                let auth = lock(&socket.state).connect_auth(None);
                session.send(frames(socket.parser.connect(&socket.nsp, auth.as_ref())));
            }
            Auth::Static(v) => {
                let auth = lock(&socket.state).connect_auth(Some(v));
                session.send(frames(socket.parser.connect(&socket.nsp, auth.as_ref())));
            }
            Auth::Dynamic(f) => {
                let cmd = self.inner.cmd.clone();
                let nsp = socket.nsp.clone();
                let generation = self.generation;
                let parser = socket.parser;
                let socket = socket.clone();
                tokio::spawn(async move {
                    let auth = f().await;
                    // As socket.io-client: the pid and offset as they are once `auth` is known.
                    let auth = lock(&socket.state).connect_auth(auth);
                    let packet = parser.connect(&nsp, auth.as_ref());
                    let _ = cmd.send(Cmd::ConnectPacket {
                        nsp,
                        generation,
                        packet,
                    });
                });
            }
        }
    }
}
