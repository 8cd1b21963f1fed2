//! Packet routing: what the driver does with each Socket.IO packet from the server (CONNECT,
//! CONNECT_ERROR, DISCONNECT, EVENT, ACK), and the handlers it fires.

use std::sync::Arc;

use serde_json::Value;
use volley_proto::engine::Message;
use volley_proto::socket::{Packet, PacketData, PacketType};

use super::driver::{Driver, frames};
use crate::engine::Session;
use crate::error::{ConnectError, DisconnectReason};
use crate::handler::{AckSender, run_now_or_spawn};
use crate::socket::{Overflow, Received, SocketEvent, SocketInner, Status, lock, read, write};
use crate::{RawArgs, SocketId};

impl Driver {
    /// Handles one Engine.IO message; returns how the session ends if it must.
    pub(super) fn on_message(
        &mut self,
        session: &mut Session,
        m: Message,
    ) -> Option<(DisconnectReason, bool)> {
        let r = match m {
            Message::Text(t) => self.decoder.text(t),
            Message::Binary(b) => self.decoder.binary(b),
        };
        match r {
            Ok(Some(packet)) => self.route(session, packet),
            Ok(None) => None,
            Err(e) => {
                tracing::debug!(error = %e, "undecodable packet from the server");
                Some((DisconnectReason::ParseError, false))
            }
        }
    }

    pub(super) fn route(
        &mut self,
        session: &mut Session,
        p: Packet,
    ) -> Option<(DisconnectReason, bool)> {
        let Some(socket) = self.socket(&p.namespace) else {
            tracing::debug!(namespace = %p.namespace, "packet for a namespace without socket");
            return None;
        };
        match p.kind {
            PacketType::Connect => {
                let (sid, pid) = match &p.data {
                    PacketData::Json(json) => match serde_json::from_slice::<Value>(json) {
                        Ok(v) => {
                            let field =
                                |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
                            (field("sid").map(SocketId::from), field("pid"))
                        }
                        Err(_) => (None, None),
                    },
                    _ => (None, None),
                };
                let received = {
                    let mut st = lock(&socket.state);
                    if !st.active {
                        // Disconnected by the application meanwhile: leave again.
                        st.received.clear();
                        session.send(frames(self.inner.parser.disconnect(&socket.nsp)));
                        return None;
                    }
                    if st.connected {
                        return None;
                    }
                    st.connected = true;
                    st.sid = sid;
                    // As socket.io-client's `onconnect`: recovered when the server answers
                    // with the pid it gave last time; the pid is whatever it gave now.
                    st.recovered = pid.is_some() && st.pid == pid;
                    st.pid = pid;
                    // Flushed here, under the lock: later emits go through the channel, after.
                    for b in std::mem::take(&mut st.buffer) {
                        session.send(frames(b.packet));
                    }
                    std::mem::take(&mut st.received)
                };
                socket.status.send_replace(Status::Connected);
                // As socket.io-client's `onconnect`: the events received before the CONNECT
                // answer first, in order, then the `connect` event.
                for r in received {
                    self.dispatch(&socket, r.name, r.args, r.id);
                }
                self.fire_connect(&socket);
                None
            }
            PacketType::ConnectError => {
                let (message, data) = match &p.data {
                    PacketData::Json(json) => match serde_json::from_slice::<Value>(json) {
                        Ok(Value::String(s)) => (s, None),
                        Ok(Value::Object(mut o)) => {
                            let message = match o.remove("message") {
                                Some(Value::String(s)) => s,
                                _ => String::new(),
                            };
                            (message, o.remove("data"))
                        }
                        _ => (String::new(), None),
                    },
                    _ => (String::new(), None),
                };
                {
                    let mut st = lock(&socket.state);
                    st.active = false;
                    st.connected = false;
                    st.received.clear();
                }
                let err = match data {
                    Some(d) => ConnectError::new(message).with_data(d),
                    None => ConnectError::new(message),
                };
                self.fire_connect_error(&socket, err, true);
                (!self.any_active()).then_some((DisconnectReason::ForcedClose, true))
            }
            PacketType::Disconnect => {
                let (was, acks) = {
                    let mut st = lock(&socket.state);
                    let was = st.connected;
                    st.active = false;
                    st.connected = false;
                    st.received.clear();
                    (was, st.take_sent_acks())
                };
                socket.status.send_replace(Status::Idle);
                for tx in acks {
                    let _ = tx.send(Err(crate::AckError::Disconnected));
                }
                if was {
                    self.fire_disconnect(&socket, DisconnectReason::IoServerDisconnect);
                }
                (!self.any_active()).then_some((DisconnectReason::ForcedClose, true))
            }
            PacketType::Event | PacketType::BinaryEvent => {
                let PacketData::Event { name, args } = p.data else {
                    return None;
                };
                let args = self.decoder.raw_args(args, p.attachments);
                let (capacity, overflow) = {
                    let o = read(&socket.opts);
                    (o.buffer_capacity, o.overflow)
                };
                {
                    let mut st = lock(&socket.state);
                    if !st.connected {
                        // Before the CONNECT answer (a server that emits from its connection
                        // handler may send its events first): kept for the connect.
                        if st.active {
                            if st.received.len() >= capacity {
                                match overflow {
                                    Overflow::DropOldest if capacity > 0 => {
                                        st.received.pop_front();
                                    }
                                    _ => {
                                        tracing::debug!(event = %name, "receive buffer full");
                                        return None;
                                    }
                                }
                            }
                            st.received.push_back(Received {
                                name,
                                args,
                                id: p.id,
                            });
                        }
                        return None;
                    }
                }
                self.dispatch(&socket, name, args, p.id);
                None
            }
            PacketType::Ack | PacketType::BinaryAck => {
                let PacketData::Ack { args } = p.data else {
                    return None;
                };
                let tx = p.id.and_then(|id| lock(&socket.state).acks.remove(&id));
                if let Some(tx) = tx {
                    let _ = tx.send(Ok(self.decoder.raw_args(args, p.attachments)));
                }
                None
            }
        }
    }

    pub(super) fn dispatch(
        &self,
        socket: &Arc<SocketInner>,
        name: String,
        args: RawArgs,
        id: Option<u64>,
    ) {
        let Some(handle) = self.handle(socket) else {
            return;
        };
        let (handler, any, streams) = {
            let h = read(&socket.handlers);
            (
                h.events.get(&name).cloned(),
                h.any.clone(),
                h.streams.clone(),
            )
        };
        let mut gone = false;
        for tx in &streams {
            gone |= tx.send((name.clone(), args.clone())).is_err();
        }
        if gone {
            write(&socket.handlers).streams.retain(|tx| !tx.is_closed());
        }
        for a in any {
            run_now_or_spawn(a(handle.clone(), name.clone(), args.clone()));
        }
        // socket.io-client's `emitEvent`: once the listeners ran, a string last argument is
        // the offset to resume from, when the server gave a pid and the event has no ack id
        // (its last argument would be the ack callback). The handlers see it as it came.
        let offset = match args.len() {
            0 => None,
            n if id.is_none() => Some(n - 1),
            _ => None,
        }
        .filter(|_| lock(&socket.state).pid.is_some())
        .and_then(|i| args.get::<String>(i))
        .and_then(Result::ok);
        match handler {
            Some(h) => run_now_or_spawn(h(handle.clone(), args, AckSender::new(handle, id))),
            None => tracing::trace!(event = %name, "no handler for event"),
        }
        if let Some(offset) = offset {
            let mut st = lock(&socket.state);
            if st.pid.is_some() {
                st.last_offset = Some(offset);
            }
        }
    }

    pub(super) fn fire_connect(&self, socket: &Arc<SocketInner>) {
        let _ = socket.events.send(SocketEvent::Connect);
        let Some(handle) = self.handle(socket) else {
            return;
        };
        let handlers = read(&socket.handlers).connect.clone();
        for h in handlers {
            run_now_or_spawn(h(handle.clone()));
        }
    }

    pub(super) fn fire_disconnect(&self, socket: &Arc<SocketInner>, reason: DisconnectReason) {
        let _ = socket.events.send(SocketEvent::Disconnect(reason));
        let Some(handle) = self.handle(socket) else {
            return;
        };
        let handlers = read(&socket.handlers).disconnect.clone();
        for h in handlers {
            run_now_or_spawn(h(handle.clone(), reason));
        }
    }

    pub(super) fn fire_connect_error(
        &self,
        socket: &Arc<SocketInner>,
        err: ConnectError,
        terminal: bool,
    ) {
        if terminal {
            socket.status.send_replace(Status::Failed(err.clone()));
        }
        let _ = socket.events.send(SocketEvent::ConnectError(err.clone()));
        let Some(handle) = self.handle(socket) else {
            return;
        };
        let handlers = read(&socket.handlers).connect_error.clone();
        for h in handlers {
            run_now_or_spawn(h(handle.clone(), err.clone()));
        }
    }
}
