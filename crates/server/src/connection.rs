//! The task of one Engine.IO connection: decodes Socket.IO packets, reassembles binary ones,
//! routes them by namespace, and runs CONNECT and DISCONNECT.
//!
//! It is the task that drives the engine session (see `volley_engine::Incoming`): handlers
//! that finish without waiting run inline here, in packet order; the others continue on
//! their own task, so a slow handler never stalls reads or heartbeats.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use serde_json::Value;
use tokio::time::Sleep;
use volley_engine::{EngineSocket, Incoming, Message, ProtocolVersion};
use volley_proto::socket::{DecodeLimits, PacketDataRef, PacketRef, PacketType};

use crate::adapter::Session;
use crate::error::{ConnectError, DisconnectReason};
use crate::handler::run_now_or_spawn;
use crate::handshake::Handshake;
use crate::server::IoInner;
use crate::short_name::ShortName;
use crate::socket::{EventsCopy, Socket};
use crate::stats::Refusal;
use tracing::Instrument as _;
use volley_core::parser::Decoder;

/// What the sockets of one connection share.
///
/// `repr(C)`: what every packet reads (the generation, on its way in; the engine, to send a
/// reply) first, in the cache line of the `Arc`'s counts.
#[repr(C)]
pub(crate) struct ConnInner {
    /// Moves (under the `sockets` lock) whenever `sockets` changes: the connection's task
    /// keeps a copy of the list ([`SocketsCopy`]) and takes the lock only when this moved.
    generation: AtomicU64,
    pub(crate) engine: EngineSocket,
    /// The connection's sockets by namespace name: a few at most
    /// (`max_namespaces_per_connection`), so a list, searched without hashing.
    sockets: Mutex<Vec<(String, Socket)>>,
    joined_once: AtomicBool,
    /// CONNECTs still resolving their namespace or running middleware.
    connecting: AtomicUsize,
}

/// Counts a CONNECT in progress for as long as it lives.
struct Connecting(Arc<ConnInner>);

impl Drop for Connecting {
    fn drop(&mut self) {
        self.0.connecting.fetch_sub(1, Ordering::AcqRel);
    }
}

impl ConnInner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(String, Socket)>> {
        self.sockets.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends a packet outside any namespace's socket (a refusal).
    fn send(&self, packet: &volley_core::Encoded) -> Result<(), volley_engine::SendError> {
        self.engine
            .send_many(packet.frames().map(crate::socket::frame))
    }

    fn get(&self, nsp: &str) -> Option<Socket> {
        let sockets = self.lock();
        sockets
            .iter()
            .find(|(name, _)| name == nsp)
            .map(|(_, s)| s.clone())
    }

    /// Counts a change of the socket list; called with the list locked.
    fn changed(&self) {
        self.generation.fetch_add(1, Ordering::Release);
    }

    pub(crate) fn remove_socket(&self, socket: &Socket) {
        let mut sockets = self.lock();
        sockets.retain(|(name, s)| name != socket.namespace() || s.id() != socket.id());
        self.changed();
    }

    /// Disconnects every socket with a DISCONNECT packet each, as Node's
    /// `socket.disconnect(true)`.
    pub(crate) fn disconnect_all_sockets(&self) {
        let sockets: Vec<Socket> = self.lock().iter().map(|(_, s)| s.clone()).collect();
        for s in sockets {
            s.disconnect();
        }
    }

    fn close_all(&self, reason: DisconnectReason) {
        let sockets: Vec<Socket> = {
            let mut list = self.lock();
            self.changed();
            list.drain(..).map(|(_, s)| s).collect()
        };
        for s in sockets {
            s.close(reason);
        }
    }
}

/// The connection task's own copy of its socket list, so that a packet finds its socket
/// without the list's lock nor a `Socket` clone (a lock, an unlock and two reference count
/// updates per packet): one load of [`ConnInner::generation`] tells whether the list changed
/// since the copy was made. The list changes only on CONNECT, DISCONNECT and close, under its
/// lock, which also moves the generation; a copy refreshed under the lock is the list as of
/// the generation read with it. A packet read while a change is under way finds the list as it
/// was just before the change, as it would have had it taken the lock first.
///
/// A socket removed from the list stays in the copy (inert: it is disconnected) until the
/// next packet refreshes it, or the connection ends.
#[derive(Default)]
struct SocketsCopy {
    generation: u64,
    sockets: Vec<SocketCopy>,
}

/// One socket in a [`SocketsCopy`]. `repr(C)`: its namespace's name, the socket and the first
/// of its handlers fill its first 64 bytes, what a packet for its busiest event reads.
///
/// Not aligned to a cache line (`align(64)`), although those 64 bytes then span two lines
/// for most allocations: glibc's aligned allocation left the heap so that the per-message
/// allocations took a slower path (callgrind, echo benchmark: 11 instructions more per echo
/// at 1 in flight, 42 at 16), more than the 0.3 cold line per echo the alignment saved.
#[repr(C)]
struct SocketCopy {
    /// The namespace's name (the list's key), kept here so that the lookup does not reach
    /// into the socket for it; [`ShortName::NONE`] when too long, then it does.
    nsp: ShortName,
    socket: Socket,
    /// The connection's copy of the socket's handler table.
    events: EventsCopy,
}

impl SocketsCopy {
    fn get(&mut self, conn: &ConnInner, nsp: &str) -> Option<(&Socket, &mut EventsCopy)> {
        if conn.generation.load(Ordering::Acquire) != self.generation {
            self.refresh(conn);
        }
        let key = ShortName::new(nsp.as_bytes());
        self.sockets
            .iter_mut()
            .find(|s| match key {
                Some(key) => s.nsp == key,
                None => s.nsp == ShortName::NONE && s.socket.namespace() == nsp,
            })
            .map(|s| (&s.socket, &mut s.events))
    }

    #[cold]
    #[inline(never)]
    fn refresh(&mut self, conn: &ConnInner) {
        let list = conn.lock();
        self.generation = conn.generation.load(Ordering::Acquire);
        self.sockets.clear();
        self.sockets.extend(list.iter().map(|(name, s)| SocketCopy {
            nsp: ShortName::new(name.as_bytes()).unwrap_or(ShortName::NONE),
            socket: s.clone(),
            events: EventsCopy::default(),
        }));
    }
}

/// Runs one connection until its engine session ends.
pub(crate) async fn run(io: Arc<IoInner>, engine: EngineSocket, mut incoming: Incoming) {
    let conn = Arc::new(ConnInner {
        engine: engine.clone(),
        sockets: Mutex::new(Vec::new()),
        generation: AtomicU64::new(0),
        joined_once: AtomicBool::new(false),
        connecting: AtomicUsize::new(0),
    });
    let config = &io.config;
    let mut decoder = config.parser.decoder(DecodeLimits {
        max_attachments: config.max_attachments,
    });
    let v3 = engine.protocol() == ProtocolVersion::V3;
    if v3 {
        // Protocol v4 (socket.io-client 2.x): the client is in `/` at once, without a CONNECT.
        conn.connecting.fetch_add(1, Ordering::AcqRel);
        let guard = Connecting(conn.clone());
        let (io, conn) = (io.clone(), conn.clone());
        run_now_or_spawn(Box::pin(async move {
            connect(io, conn, "/".to_owned(), Value::Object(Default::default())).await;
            drop(guard);
        }));
    }
    // Both deadlines are boxed and dropped once they no longer apply: an idle connection
    // keeps no timer, and a message does not build one (a `select!` branch's future is
    // built even while its condition is false).
    let mut connect_deadline = Some(Box::pin(tokio::time::sleep(config.connect_timeout)));
    let mut attachments_deadline: Option<Pin<Box<Sleep>>> = None;
    let mut sockets = SocketsCopy::default();

    let reason = loop {
        let msg = tokio::select! {
            biased;
            msg = incoming.recv() => msg,
            () = fire(&mut connect_deadline), if connect_deadline.is_some() => {
                connect_deadline = None;
                if !conn.joined_once.load(Ordering::Acquire) {
                    // No namespace joined in time: Node closes such connections.
                    io.stats.refused(Refusal::ConnectTimeout);
                    engine.close();
                }
                continue;
            }
            () = fire(&mut attachments_deadline), if attachments_deadline.is_some() => {
                tracing::debug!("binary attachments did not arrive in time");
                conn.close_all(DisconnectReason::ParseError);
                engine.close();
                attachments_deadline = None;
                continue;
            }
        };
        // A text frame's packet borrows its namespace and event name from the frame; a
        // binary one (an attachment or a MessagePack packet) comes out whole.
        let (text, whole);
        let decoded = match msg {
            Ok(Message::Text(t)) => {
                text = t;
                decoder.text_ref(&text).map(|p| p.map(|p| (p, Vec::new())))
            }
            Ok(Message::Binary(data)) => {
                let r = decoder.binary(data);
                if decoder.buffered_bytes() > config.max_payload {
                    tracing::debug!("binary attachments exceed maxPayload");
                    conn.close_all(DisconnectReason::ParseError);
                    engine.close();
                    continue;
                }
                match r {
                    Ok(Some(mut p)) => {
                        let attachments = std::mem::take(&mut p.attachments);
                        whole = p;
                        Ok(Some((whole.view(), attachments)))
                    }
                    Ok(None) => Ok(None),
                    Err(e) => Err(e),
                }
            }
            Err(reason) => break DisconnectReason::from_engine(reason),
        };
        match decoded {
            Ok(Some((packet, attachments))) => {
                attachments_deadline = None;
                handle_packet(&io, &conn, &mut sockets, &decoder, packet, attachments);
                if connect_deadline.is_some() && conn.joined_once.load(Ordering::Acquire) {
                    // Joined: the deadline no longer applies; its timer goes now.
                    connect_deadline = None;
                }
            }
            Ok(None) => {
                if attachments_deadline.is_none() {
                    attachments_deadline =
                        Some(Box::pin(tokio::time::sleep(config.attachments_timeout)));
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "undecodable socket.io packet");
                conn.close_all(DisconnectReason::ParseError);
                engine.close();
            }
        }
    };
    conn.close_all(reason);
}

/// Waits for an optional deadline; never completes without one.
async fn fire(deadline: &mut Option<Pin<Box<Sleep>>>) {
    match deadline {
        Some(sleep) => sleep.as_mut().await,
        None => std::future::pending().await,
    }
}

fn handle_packet(
    io: &Arc<IoInner>,
    conn: &Arc<ConnInner>,
    sockets: &mut SocketsCopy,
    decoder: &Decoder,
    packet: PacketRef<'_>,
    attachments: Vec<Bytes>,
) {
    let PacketRef {
        kind,
        namespace,
        id,
        data,
    } = packet;
    match kind {
        PacketType::Connect => {
            let (namespace, auth) = if conn.engine.protocol() == ProtocolVersion::V3 {
                // Protocol v4: `/nsp?x=y` carries the auth as a query, and there is no payload.
                v2_namespace(namespace)
            } else {
                let auth = match data {
                    PacketDataRef::Json(raw) => serde_json::from_slice(&raw).unwrap_or(Value::Null),
                    _ => Value::Object(Default::default()),
                };
                (namespace.to_owned(), auth)
            };
            let joined = conn.lock().len() + conn.connecting.load(Ordering::Acquire);
            if joined >= io.config.max_namespaces_per_connection {
                io.stats.refused(Refusal::TooManyNamespaces);
                let err = ConnectError::new("Too many namespaces");
                let packet = io.config.parser.connect_error(&namespace, &err.to_json());
                let _ = conn.send(&packet);
                return;
            }
            conn.connecting.fetch_add(1, Ordering::AcqRel);
            let guard = Connecting(conn.clone());
            let (io, conn) = (io.clone(), conn.clone());
            run_now_or_spawn(Box::pin(async move {
                connect(io, conn, namespace, auth).await;
                drop(guard);
            }));
        }
        PacketType::Disconnect => {
            if let Some((socket, _)) = sockets.get(conn, namespace) {
                socket.close(DisconnectReason::ClientNamespaceDisconnect);
            }
        }
        PacketType::Event | PacketType::BinaryEvent => {
            let (Some((socket, events)), PacketDataRef::Event { name, args }) =
                (sockets.get(conn, namespace), data)
            else {
                return;
            };
            if socket.connected() {
                socket.dispatch_event(events, &name, decoder.raw_args(args, attachments), id);
            }
        }
        PacketType::Ack | PacketType::BinaryAck => {
            let (Some((socket, _)), Some(id), PacketDataRef::Ack { args }) =
                (sockets.get(conn, namespace), id, data)
            else {
                return;
            };
            socket.receive_ack(id, decoder.raw_args(args, attachments));
        }
        // A client has no business sending CONNECT_ERROR; Node ignores it too.
        PacketType::ConnectError => {}
    }
}

/// The namespace and auth object of a protocol v4 CONNECT: `/nsp?x=y&z` is the namespace
/// `/nsp` with `{"x":"y","z":""}`, as Node reads it (`URLSearchParams`, the last value of a
/// repeated key wins).
fn v2_namespace(raw: &str) -> (String, Value) {
    let (path, query) = raw.split_once('?').unwrap_or((raw, ""));
    let mut auth = serde_json::Map::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        auth.insert(form_decode(k), Value::String(form_decode(v)));
    }
    let path = if path.is_empty() { "/" } else { path };
    (path.to_owned(), Value::Object(auth))
}

/// Decodes `application/x-www-form-urlencoded` text: `+` is a space, `%XX` a byte; bad
/// escapes are kept, invalid UTF-8 becomes U+FFFD.
fn form_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(b[i + 1]), hex(b[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Joins a namespace: find or create it, run middleware, register, answer CONNECT, run the
/// connection handler.
/// Connection state recovery: the session a CONNECT's auth (`{pid, offset}`, both strings)
/// names, if the adapter still has it; anything else gets a fresh session.
async fn restore(ns: &Arc<crate::namespace::NsInner>, auth: &Value) -> Option<Session> {
    let (Some(Value::String(pid)), Some(Value::String(offset))) =
        (auth.get("pid"), auth.get("offset"))
    else {
        return None;
    };
    match ns.adapter.restore_session(pid, offset).await {
        Ok(Some(session)) => {
            tracing::debug!(sid = %session.id, "connection state recovered");
            Some(session)
        }
        Ok(None) => {
            tracing::debug!("connection state not recovered: unknown or expired session");
            None
        }
        Err(e) => {
            tracing::debug!(error = %e, "connection state not recovered");
            None
        }
    }
}

async fn connect(io: Arc<IoInner>, conn: Arc<ConnInner>, name: String, auth: Value) {
    let v3 = conn.engine.protocol() == ProtocolVersion::V3;
    let send_error = |err: &ConnectError| {
        let _ = conn.send(&io.config.parser.connect_error(&name, &err.to_json()));
    };
    // A middleware's refusal reaches a protocol v4 client as its data, or else its message,
    // as a plain value (`44/nsp,"not authorized"`), as Node sends it.
    let send_refusal = |err: &ConnectError| {
        if !v3 {
            return send_error(err);
        }
        let payload = err
            .data()
            .cloned()
            .unwrap_or_else(|| Value::String(err.message().to_owned()));
        let _ = conn.send(&io.config.parser.connect_error(&name, &payload));
    };
    if conn.get(&name).is_some() {
        // Already connected to this namespace on this connection.
        return;
    }
    let Some(ns) = io.resolve_namespace(&name, &auth).await else {
        io.stats.refused(Refusal::InvalidNamespace);
        send_error(&ConnectError::new("Invalid namespace"));
        return;
    };
    let session = match ns.recovery {
        Some(_) => restore(&ns, &auth).await,
        None => None,
    };
    let handshake = Handshake::new(conn.engine.clone(), auth);
    let socket = Socket::new(ns.clone(), conn.clone(), handshake, session.as_ref());
    let skip_middlewares = session.is_some() && ns.recovery.is_some_and(|r| r.skip_middlewares);
    let middleware: Vec<_> = if skip_middlewares {
        Vec::new()
    } else {
        let global = io
            .middleware
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let local = ns
            .handlers
            .middleware
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        global.into_iter().chain(local).collect()
    };
    // Middleware may join rooms before refusing; a socket that does not get in leaves them.
    let abandon = |socket: &Socket| {
        if let Some(s) = &session {
            // Not restored after all: the session stays recoverable, as in Node.
            let _ = ns.adapter.persist_session(Session {
                missed_packets: Vec::new(),
                ..s.clone()
            });
        }
        ns.adapter.del_all(socket.id());
        ns.unhold(socket.id());
    };
    // The socket's id and namespace, never its recovery pid nor the auth payload.
    let span = tracing::info_span!("volley.socket", ns = %name, socket = %socket.id());
    for m in middleware {
        if let Err(err) = m(socket.clone()).instrument(span.clone()).await {
            io.stats.refused(Refusal::Middleware);
            abandon(&socket);
            send_refusal(&err);
            return;
        }
    }
    if !conn.engine.is_open() {
        abandon(&socket);
        return;
    }
    {
        let mut map = conn.lock();
        if map.iter().any(|(n, _)| *n == name) {
            drop(map);
            abandon(&socket);
            return;
        }
        map.push((name.clone(), socket.clone()));
        conn.changed();
    }
    conn.joined_once.store(true, Ordering::Release);
    ns.add_socket(&socket);
    if ns.is_child {
        // An empty child may have been dropped while middleware ran.
        io.keep_child(&ns);
    }
    ns.adapter
        .add_all(socket.id(), &[socket.id().as_arc().clone()]);
    socket.set_connected();
    socket.session_live();
    // As Node: the missed packets first (the client keeps events that come before the
    // CONNECT reply until it is connected), then the reply, then what came meanwhile.
    let missed = session.map(|s| s.missed_packets).unwrap_or_default();
    let replayed = missed
        .iter()
        .all(|p| socket.send_encoded(p.encoded()).is_ok());
    let sid = match socket.pid() {
        Some(pid) => serde_json::json!({ "sid": socket.id(), "pid": pid }),
        None => serde_json::json!({ "sid": socket.id() }),
    };
    // Protocol v4 clients get a CONNECT without a payload (`40`, `40/nsp,`).
    let reply = ns.parser.connect(&name, (!v3).then_some(&sid));
    if !replayed || socket.send_encoded(&reply).is_err() {
        ns.unhold(socket.id());
        socket.close(DisconnectReason::TransportClose);
        return;
    }
    ns.release(&socket);
    ns.observers.each(|o| o.socket_connected(&socket));
    let handler = ns
        .handlers
        .on_connection
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    if let Some(h) = handler {
        h(socket).instrument(span).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_socket_copy_s_first_64_bytes_hold_its_first_handler() {
        let end = std::mem::offset_of!(SocketCopy, events) + EventsCopy::FIRST_ENTRY_END;
        assert!(end <= 64, "{end}");
    }

    #[test]
    fn v2_connect_namespace_and_query() {
        assert_eq!(
            v2_namespace("/custom?x=y&token=a%20b+c&flag"),
            (
                "/custom".to_owned(),
                serde_json::json!({"x": "y", "token": "a b c", "flag": ""})
            )
        );
        assert_eq!(
            v2_namespace("/custom"),
            ("/custom".to_owned(), serde_json::json!({}))
        );
        assert_eq!(
            v2_namespace("?a=1&a=2"),
            ("/".to_owned(), serde_json::json!({"a": "2"}))
        );
        assert_eq!(form_decode("%zz%4"), "%zz%4");
    }
}
