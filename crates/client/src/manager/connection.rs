//! The open phase of the driver: one Engine.IO session, the commands of the sockets while it
//! lasts, and what its end does to the sockets (disconnect, requeue, failed acks).

use std::collections::HashMap;

use super::driver::{Driver, Phase, decoder, frames, is_ack};
use super::{Cmd, ManagerEvent};
use crate::engine::{Session, SessionEvent};
use crate::error::{ConnectError, DisconnectReason};
use crate::socket::{Buffered, Status, lock};

impl Driver {
    pub(super) async fn open(&mut self, mut session: Session) -> Phase {
        self.generation += 1;
        self.decoder = decoder(self.inner.parser);
        let transport = session.transport();
        *lock(&self.inner.current) = Some((session.handshake().sid.clone(), transport));
        self.emit(ManagerEvent::Open(transport));
        for s in self.sockets() {
            if lock(&s.state).active {
                self.send_connect(&mut session, &s);
            }
        }
        let (reason, by_client) = loop {
            tokio::select! {
                ev = session.next() => match ev {
                    SessionEvent::Message(m) => {
                        if let Some(end) = self.on_message(&mut session, m) {
                            break end;
                        }
                    }
                    SessionEvent::Upgraded => {
                        let kind = session.transport();
                        if let Some(c) = lock(&self.inner.current).as_mut() {
                            c.1 = kind;
                        }
                        self.emit(ManagerEvent::Upgrade(kind));
                    }
                    SessionEvent::Closed(reason, err) => {
                        tracing::debug!(%reason, error = ?err, "connection lost");
                        break (reason, false);
                    }
                },
                cmd = self.next_cmd() => match cmd {
                    Cmd::Send { nsp, packet, ack, volatile } => {
                        if session.heartbeat_expired() {
                            // The connection is dead though no timer said so yet (the machine
                            // slept): keep the event for the next connection.
                            if !volatile && !is_ack(&packet) {
                                self.unsent.push((nsp, Buffered { packet, ack }));
                            }
                            break (DisconnectReason::PingTimeout, false);
                        }
                        if !volatile || session.is_writable() {
                            session.send(frames(packet));
                        }
                    }
                    Cmd::Activate(nsp) => {
                        if let Some(s) = self.socket(&nsp) {
                            let st = lock(&s.state);
                            let wanted = st.active && !st.connected;
                            drop(st);
                            if wanted {
                                self.send_connect(&mut session, &s);
                            }
                        }
                    }
                    Cmd::Deactivate { nsp, was_connected } => {
                        if was_connected {
                            session.send(frames(self.inner.parser.disconnect(&nsp)));
                            if let Some(s) = self.socket(&nsp) {
                                self.fire_disconnect(&s, DisconnectReason::IoClientDisconnect);
                            }
                        }
                        // As socket.io-client's `disconnect`: the last active socket leaving
                        // closes the connection, even when it asked to connect again since
                        // (its `Activate` follows and opens a new one). Reusing the connection
                        // would put its CONNECT right behind its DISCONNECT, which the Node
                        // server reads as a CONNECT for a connected namespace (it handles the
                        // DISCONNECT a tick later) and answers by closing the connection: a
                        // recoverable "forced close" instead of a manual disconnect.
                        let others = self
                            .sockets()
                            .iter()
                            .any(|s| s.nsp != nsp && lock(&s.state).active);
                        if !others {
                            break (DisconnectReason::ForcedClose, true);
                        }
                    }
                    Cmd::ConnectPacket { nsp, generation, packet } => {
                        let wanted = generation == self.generation
                            && self.socket(&nsp).is_some_and(|s| {
                                let st = lock(&s.state);
                                st.active && !st.connected
                            });
                        if wanted {
                            session.send(frames(packet));
                        }
                    }
                    Cmd::Close => {
                        self.close_sockets(&mut session);
                        break (DisconnectReason::ForcedClose, true);
                    }
                    Cmd::Shutdown => {
                        self.close_sockets(&mut session);
                        *lock(&self.inner.current) = None;
                        session.close().await;
                        return Phase::Done;
                    }
                },
            }
        };
        *lock(&self.inner.current) = None;
        if by_client {
            session.close().await;
        } else {
            drop(session);
        }
        self.connection_lost(reason);
        self.emit(ManagerEvent::Close(reason));
        if by_client || !self.any_active() {
            Phase::Idle
        } else if self.inner.reconnection.enabled {
            Phase::Waiting
        } else {
            for s in self.sockets() {
                if lock(&s.state).active {
                    s.status
                        .send_replace(Status::Failed(ConnectError::connection_failed(format!(
                            "disconnected ({reason}) and reconnection is disabled"
                        ))));
                }
            }
            Phase::Idle
        }
    }

    /// `Manager::close`: every connected socket leaves its namespace.
    pub(super) fn close_sockets(&mut self, session: &mut Session) {
        for s in self.sockets() {
            if lock(&s.state).connected {
                session.send(frames(self.inner.parser.disconnect(&s.nsp)));
            }
        }
        self.deactivate_all();
    }

    /// The connection is gone: sockets are disconnected, events emitted on the old connection
    /// but not yet written go back to the front of their send buffers, unless they wait for an
    /// acknowledgement, and acknowledgements of events emitted while connected fail, after the
    /// disconnect event (as in socket.io-client, whose engine drops its write buffer at close):
    /// whether the driver had written such an event yet must not decide the outcome.
    pub(super) fn connection_lost(&mut self, reason: DisconnectReason) {
        let sockets = self.sockets();
        let mut was_connected = Vec::new();
        for s in &sockets {
            let mut st = lock(&s.state);
            if st.connected {
                was_connected.push(s.clone());
            }
            st.connected = false;
            // Received on the lost connection, never connected: they belonged to it.
            st.received.clear();
        }
        // No emit can reach the channel any more: take what is in it.
        let mut requeue: HashMap<String, Vec<Buffered>> = HashMap::new();
        // Emitted once the heartbeat had expired: buffered with their acks, as socket.io-client
        // buffers an emit made after `_hasPingExpired()`.
        for (nsp, b) in self.unsent.drain(..) {
            requeue.entry(nsp).or_default().push(b);
        }
        while let Ok(cmd) = self.rx.try_recv() {
            match cmd {
                Cmd::Send {
                    nsp,
                    packet,
                    ack,
                    volatile,
                } => {
                    if !volatile && !is_ack(&packet) && ack.is_none() {
                        requeue
                            .entry(nsp)
                            .or_default()
                            .push(Buffered { packet, ack });
                    }
                }
                other => self.deferred.push_back(other),
            }
        }
        let mut failed = Vec::new();
        for s in &sockets {
            let active = {
                let mut st = lock(&s.state);
                if let Some(list) = requeue.remove(&s.nsp) {
                    for b in list.into_iter().rev() {
                        st.buffer.push_front(b);
                    }
                }
                failed.extend(st.take_sent_acks());
                st.active
            };
            if active && self.inner.reconnection.enabled {
                s.status.send_replace(Status::Connecting);
            }
        }
        for s in &was_connected {
            self.fire_disconnect(s, reason);
        }
        for tx in failed {
            let _ = tx.send(Err(crate::AckError::Disconnected));
        }
    }
}
