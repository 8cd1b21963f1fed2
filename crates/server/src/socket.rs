//! `Socket`: one client in one namespace.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::oneshot;

use crate::adapter::{AckSink, Room};
use crate::broadcast::{BroadcastOperator, IntoRooms};
use crate::connection::ConnInner;
use crate::encode::{self, Args, ArgsDyn, Encoded, One, RawArgs};
use crate::error::{AckError, DisconnectReason, EmitError};
use crate::handler::{
    AckSender, BoxFuture, DisconnectHandler, ErasedHandler, EventHandler, FromArgs, erase,
    run_now_or_spawn,
};
use crate::handshake::Handshake;
use crate::namespace::NsInner;

/// Event names Socket.IO reserves; emitting them is refused, as Node does.
const RESERVED_EVENTS: &[&str] = &[
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

pub(crate) fn check_event_name(event: &str) -> Result<(), EmitError> {
    if RESERVED_EVENTS.contains(&event) {
        return Err(EmitError::ReservedEvent(event.to_owned()));
    }
    Ok(())
}

/// Who waits for an acknowledgement from this socket.
enum AckTarget {
    Single(oneshot::Sender<RawArgs>),
    Broadcast(Arc<dyn AckSink>),
}

impl AckTarget {
    fn is_closed(&self) -> bool {
        match self {
            Self::Single(tx) => tx.is_closed(),
            Self::Broadcast(sink) => sink.is_closed(),
        }
    }
}

/// Past this many pending acknowledgements, entries nobody waits for are purged, so a client
/// that never answers cannot grow the table without bound.
const ACK_PURGE_THRESHOLD: usize = 256;

#[derive(Default)]
struct Acks {
    pending: HashMap<u64, AckTarget>,
}

impl Acks {
    fn insert(&mut self, id: u64, target: AckTarget) {
        if self.pending.len() >= ACK_PURGE_THRESHOLD {
            self.pending.retain(|_, t| !t.is_closed());
        }
        self.pending.insert(id, target);
    }
}

type AnyHandler = Arc<dyn Fn(Socket, String, RawArgs) -> BoxFuture<()> + Send + Sync>;
type OutgoingObserver = Arc<dyn Fn(&Socket, &str, &RawArgs) + Send + Sync>;
type PacketMiddleware =
    Arc<dyn Fn(&Socket, &str, &mut RawArgs) -> Result<(), PacketError> + Send + Sync>;
type ErrorHandler = Arc<dyn Fn(&Socket, &PacketError) + Send + Sync>;

/// Why a packet middleware refused an incoming event; handed to the socket's
/// [`on_error`](Socket::on_error) handlers (as Node emits `error` on the socket).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketError(pub String);

impl fmt::Display for PacketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PacketError {}

#[derive(Default)]
struct Hooks {
    any: Vec<AnyHandler>,
    any_outgoing: Vec<OutgoingObserver>,
    packet_middleware: Vec<PacketMiddleware>,
    on_error: Vec<ErrorHandler>,
}

pub(crate) struct SocketInner {
    /// Set once any hook is registered, so sockets without hooks never take their lock.
    has_hooks: AtomicBool,
    hooks: RwLock<Hooks>,
    id: Arc<str>,
    pub(crate) ns: Arc<NsInner>,
    pub(crate) conn: Arc<ConnInner>,
    handshake: Handshake,
    events: RwLock<HashMap<String, ErasedHandler>>,
    on_disconnecting: Mutex<Vec<DisconnectHandler>>,
    on_disconnect: Mutex<Vec<DisconnectHandler>>,
    acks: Mutex<Acks>,
    connected: AtomicBool,
    disconnected: AtomicBool,
    data: Mutex<Value>,
    extensions: Mutex<http::Extensions>,
}

/// One client in one namespace, as Node's server-side `socket`. Cheap to clone.
///
/// Its [`id`](Self::id) is public and random; it is not the Engine.IO session id, which
/// authenticates the connection's HTTP requests and is never exposed here.
#[derive(Clone)]
pub struct Socket {
    pub(crate) inner: Arc<SocketInner>,
}

impl fmt::Debug for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Socket")
            .field("id", &self.inner.id)
            .field("namespace", &self.inner.ns.name)
            .field("connected", &self.connected())
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Socket {
    pub(crate) fn new(ns: Arc<NsInner>, conn: Arc<ConnInner>, handshake: Handshake) -> Self {
        Self {
            inner: Arc::new(SocketInner {
                has_hooks: AtomicBool::new(false),
                hooks: RwLock::new(Hooks::default()),
                id: crate::server::random_id(),
                ns,
                conn,
                handshake,
                events: RwLock::new(HashMap::new()),
                on_disconnecting: Mutex::new(Vec::new()),
                on_disconnect: Mutex::new(Vec::new()),
                acks: Mutex::new(Acks::default()),
                connected: AtomicBool::new(false),
                disconnected: AtomicBool::new(false),
                data: Mutex::new(Value::Null),
                extensions: Mutex::new(http::Extensions::new()),
            }),
        }
    }

    /// The socket id: random, public, unique on this server.
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    pub(crate) fn id_arc(&self) -> Arc<str> {
        self.inner.id.clone()
    }

    /// The namespace name, e.g. `/` or `/chat`.
    pub fn namespace(&self) -> &str {
        &self.inner.ns.name
    }

    /// The namespace this socket is in, as Node's `socket.nsp`: emit to all of it, list its
    /// sockets, and so on.
    pub fn nsp(&self) -> crate::Namespace {
        crate::Namespace {
            inner: self.inner.ns.clone(),
        }
    }

    /// The handshake: headers, query, `auth`, address, time.
    pub fn handshake(&self) -> &Handshake {
        &self.inner.handshake
    }

    /// The transport the connection uses now (`polling` or `websocket`).
    pub fn transport(&self) -> &'static str {
        self.inner.conn.engine.transport().as_str()
    }

    /// Whether the socket is connected (false while middleware runs and after disconnect).
    pub fn connected(&self) -> bool {
        self.inner.connected.load(Ordering::Acquire)
            && !self.inner.disconnected.load(Ordering::Acquire)
    }

    pub(crate) fn set_connected(&self) {
        self.inner.connected.store(true, Ordering::Release);
    }

    /// Registers the handler of an event; a later registration for the same name replaces it.
    pub fn on<H, M>(&self, event: impl Into<String>, handler: H)
    where
        H: EventHandler<M>,
    {
        let mut events = self.inner.events.write().unwrap_or_else(|p| p.into_inner());
        events.insert(event.into(), erase(handler));
    }

    fn add_hook(&self, f: impl FnOnce(&mut Hooks)) {
        f(&mut self.inner.hooks.write().unwrap_or_else(|p| p.into_inner()));
        self.inner.has_hooks.store(true, Ordering::Release);
    }

    /// Registers a catch-all handler, run for every incoming event (before the event's own
    /// handler) with the event name and its arguments, as Node's `socket.onAny`.
    pub fn on_any<F, Fut>(&self, handler: F)
    where
        F: Fn(Socket, String, RawArgs) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let h: AnyHandler = Arc::new(move |s, e, a| Box::pin(handler(s, e, a)));
        self.add_hook(|hooks| hooks.any.push(h));
    }

    /// Registers an observer of every event this socket emits (not broadcasts), as Node's
    /// `socket.onAnyOutgoing`. It runs synchronously before the packet is queued.
    pub fn on_any_outgoing<F>(&self, observer: F)
    where
        F: Fn(&Socket, &str, &RawArgs) + Send + Sync + 'static,
    {
        self.add_hook(|hooks| hooks.any_outgoing.push(Arc::new(observer)));
    }

    /// Adds a packet middleware, run in order for every incoming event before any handler,
    /// as Node's `socket.use`. It may change the arguments; an `Err` drops the event and goes
    /// to the [`on_error`](Self::on_error) handlers.
    pub fn use_packet<F>(&self, middleware: F)
    where
        F: Fn(&Socket, &str, &mut RawArgs) -> Result<(), PacketError> + Send + Sync + 'static,
    {
        self.add_hook(|hooks| hooks.packet_middleware.push(Arc::new(middleware)));
    }

    /// Registers a handler for errors of packet middleware.
    pub fn on_error<F>(&self, handler: F)
    where
        F: Fn(&Socket, &PacketError) + Send + Sync + 'static,
    {
        self.add_hook(|hooks| hooks.on_error.push(Arc::new(handler)));
    }

    /// Removes the handler of an event.
    pub fn off(&self, event: &str) {
        let mut events = self.inner.events.write().unwrap_or_else(|p| p.into_inner());
        events.remove(event);
    }

    /// Runs `handler` once the socket disconnects, with the reason.
    pub fn on_disconnect<F, Fut>(&self, handler: F)
    where
        F: FnOnce(Socket, DisconnectReason) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        lock(&self.inner.on_disconnect).push(Box::new(move |s, r| Box::pin(handler(s, r))));
    }

    /// Runs `handler` when the socket is about to disconnect, while it is still in its rooms.
    /// The synchronous part of the handler runs before the socket leaves them.
    pub fn on_disconnecting<F, Fut>(&self, handler: F)
    where
        F: FnOnce(Socket, DisconnectReason) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        lock(&self.inner.on_disconnecting).push(Box::new(move |s, r| Box::pin(handler(s, r))));
    }

    /// Emits an event with one argument.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), EmitError> {
        self.emit_dyn(event, &One(data))
    }

    /// Emits an event with several arguments (a tuple), none (`()`) or [`RawArgs`].
    pub fn emit_args(&self, event: &str, args: impl Args) -> Result<(), EmitError> {
        self.emit_dyn(event, &args)
    }

    fn emit_dyn(&self, event: &str, args: &dyn ArgsDyn) -> Result<(), EmitError> {
        check_event_name(event)?;
        if self.inner.disconnected.load(Ordering::Acquire) {
            return Err(EmitError::Disconnected);
        }
        self.observe_outgoing(event, args);
        let enc =
            encode::event(self.namespace(), event, args, None).map_err(EmitError::Serialize)?;
        self.send_encoded(&enc)
    }

    /// Shows an outgoing event to the `on_any_outgoing` observers, if there are any.
    fn observe_outgoing(&self, event: &str, args: &dyn ArgsDyn) {
        if !self.inner.has_hooks.load(Ordering::Acquire) {
            return;
        }
        let observers = self
            .inner
            .hooks
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .any_outgoing
            .clone();
        if observers.is_empty() {
            return;
        }
        if let Ok(raw) = encode::to_raw_args(args) {
            for o in observers {
                o(self, event, &raw);
            }
        }
    }

    pub(crate) fn send_encoded(&self, enc: &Encoded) -> Result<(), EmitError> {
        let engine = &self.inner.conn.engine;
        if enc.attachments.is_empty() {
            engine.send(enc.text.clone())?;
        } else {
            engine.send_many(enc.frames())?;
        }
        Ok(())
    }

    pub(crate) fn send_ack(&self, id: u64, args: &dyn ArgsDyn) -> Result<(), EmitError> {
        if self.inner.disconnected.load(Ordering::Acquire) {
            return Err(EmitError::Disconnected);
        }
        let enc = encode::ack(self.namespace(), id, args).map_err(EmitError::Serialize)?;
        self.send_encoded(&enc)
    }

    /// Sets the timeout of the next `emit_with_ack`.
    pub fn timeout(&self, timeout: Duration) -> TimeoutEmitter<'_> {
        TimeoutEmitter {
            socket: self,
            timeout,
        }
    }

    /// Emits an event with one argument and waits for the client's acknowledgement, at most
    /// the server's default ack timeout (see [`timeout`](Self::timeout) to choose another).
    ///
    /// The event is sent at once; the returned future only waits. The reply is deserialized
    /// into `T` following [`Data`](crate::Data)'s rule.
    pub fn emit_with_ack<T, D>(&self, event: &str, data: &D) -> AckFuture<T>
    where
        T: FromArgs,
        D: Serialize + ?Sized,
    {
        let timeout = self
            .inner
            .ns
            .io()
            .map(|io| io.config.ack_timeout)
            .unwrap_or(Duration::from_secs(5));
        self.emit_with_ack_dyn(event, &One(data), timeout)
    }

    /// Like [`emit_with_ack`](Self::emit_with_ack) with several arguments.
    pub fn emit_args_with_ack<T>(&self, event: &str, args: impl Args) -> AckFuture<T>
    where
        T: FromArgs,
    {
        let timeout = self
            .inner
            .ns
            .io()
            .map(|io| io.config.ack_timeout)
            .unwrap_or(Duration::from_secs(5));
        self.emit_with_ack_dyn(event, &args, timeout)
    }

    pub(crate) fn emit_with_ack_dyn<T>(
        &self,
        event: &str,
        args: &dyn ArgsDyn,
        timeout: Duration,
    ) -> AckFuture<T>
    where
        T: FromArgs,
    {
        if let Err(e) = check_event_name(event) {
            return AckFuture::ready(Err(e.into()));
        }
        if self.inner.disconnected.load(Ordering::Acquire) {
            return AckFuture::ready(Err(AckError::Emit(EmitError::Disconnected)));
        }
        self.observe_outgoing(event, args);
        let (tx, rx) = oneshot::channel();
        let id = self.inner.ns.next_ack_id();
        lock(&self.inner.acks).insert(id, AckTarget::Single(tx));
        let sent = encode::event(self.namespace(), event, args, Some(id))
            .map_err(EmitError::Serialize)
            .and_then(|enc| self.send_encoded(&enc));
        if let Err(e) = sent {
            lock(&self.inner.acks).pending.remove(&id);
            return AckFuture::ready(Err(e.into()));
        }
        let socket = self.clone();
        AckFuture::new(async move {
            match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(reply)) => T::from_args(reply).map_err(AckError::Decode),
                Ok(Err(_)) => Err(AckError::Disconnected),
                Err(_) => {
                    lock(&socket.inner.acks).pending.remove(&id);
                    Err(AckError::Timeout)
                }
            }
        })
    }

    /// Disconnects the socket from its namespace (the client sees "io server disconnect").
    /// The connection stays open for the client's other namespaces.
    pub fn disconnect(&self) {
        if self.connected() {
            let _ = self
                .inner
                .conn
                .engine
                .send(encode::disconnect(self.namespace()));
        }
        self.close(DisconnectReason::ServerNamespaceDisconnect);
    }

    /// Disconnects every socket of this client and closes the underlying connection.
    pub fn disconnect_all(&self) {
        self.inner.conn.disconnect_all_sockets();
        self.inner.conn.engine.close();
    }

    /// Per-socket data, as JSON (Node's `socket.data`); cluster adapters share it.
    pub fn data<T: DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_value(lock(&self.inner.data).clone()).ok()
    }

    /// The raw per-socket data.
    pub fn data_value(&self) -> Value {
        lock(&self.inner.data).clone()
    }

    /// Replaces the per-socket data.
    pub fn set_data<T: Serialize>(&self, data: &T) -> Result<(), serde_json::Error> {
        *lock(&self.inner.data) = serde_json::to_value(data)?;
        Ok(())
    }

    /// Per-socket state of any type, local to this server (not shared with the cluster).
    pub fn extensions(&self) -> MutexGuard<'_, http::Extensions> {
        lock(&self.inner.extensions)
    }

    /// Delivers an incoming event to its handler.
    pub(crate) fn dispatch_event(&self, name: &str, mut args: RawArgs, ack_id: Option<u64>) {
        if self.inner.has_hooks.load(Ordering::Acquire) {
            let (middleware, any, on_error) = {
                let hooks = self.inner.hooks.read().unwrap_or_else(|p| p.into_inner());
                (
                    hooks.packet_middleware.clone(),
                    hooks.any.clone(),
                    hooks.on_error.clone(),
                )
            };
            for m in middleware {
                if let Err(e) = m(self, name, &mut args) {
                    for h in &on_error {
                        h(self, &e);
                    }
                    return;
                }
            }
            for h in any {
                run_now_or_spawn(h(self.clone(), name.to_owned(), args.clone()));
            }
        }
        let handler = {
            let events = self.inner.events.read().unwrap_or_else(|p| p.into_inner());
            events.get(name).cloned()
        };
        match handler {
            Some(h) => {
                run_now_or_spawn(h(self.clone(), args, AckSender::new(self.clone(), ack_id)))
            }
            None => tracing::trace!(socket = self.id(), event = name, "no handler"),
        }
    }

    /// Delivers an incoming acknowledgement to the waiting emitter.
    pub(crate) fn receive_ack(&self, id: u64, args: RawArgs) {
        let target = lock(&self.inner.acks).pending.remove(&id);
        match target {
            Some(AckTarget::Single(tx)) => drop(tx.send(args)),
            Some(AckTarget::Broadcast(sink)) => sink.response(self.id(), args),
            None => {}
        }
    }

    pub(crate) fn register_broadcast_ack(&self, id: u64, sink: Arc<dyn AckSink>) {
        lock(&self.inner.acks).insert(id, AckTarget::Broadcast(sink));
    }

    pub(crate) fn forget_ack(&self, id: u64) {
        lock(&self.inner.acks).pending.remove(&id);
    }

    /// Joins rooms (one, or several).
    pub fn join(&self, rooms: impl IntoRooms) {
        self.inner
            .ns
            .adapter
            .add_all(self.id(), &rooms.into_rooms());
    }

    /// Leaves a room.
    pub fn leave(&self, room: &str) {
        self.inner.ns.adapter.del(self.id(), room);
    }

    /// Leaves every room but its own.
    pub fn leave_all(&self) {
        for room in self.rooms() {
            if &*room != self.id() {
                self.inner.ns.adapter.del(self.id(), &room);
            }
        }
    }

    /// The rooms the socket is in (its own id room included).
    pub fn rooms(&self) -> Vec<Room> {
        self.inner.ns.adapter.socket_rooms(self.id())
    }

    /// A broadcast to other sockets of the namespace: every one but this socket.
    pub fn broadcast(&self) -> BroadcastOperator {
        BroadcastOperator::new(self.inner.ns.clone()).except(self.id_arc())
    }

    /// A broadcast to the sockets in `rooms`, this socket excluded (as Node's
    /// `socket.to(room)`).
    pub fn to(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.broadcast().to(rooms)
    }

    /// Same as [`to`](Self::to).
    pub fn within(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.to(rooms)
    }

    /// A broadcast to every other socket except those in `rooms`.
    pub fn except(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.broadcast().except(rooms)
    }

    /// Runs the disconnect sequence once: `disconnecting` handlers, leave the namespace,
    /// fail pending acks, `disconnect` handlers.
    pub(crate) fn close(&self, reason: DisconnectReason) {
        if self.inner.disconnected.swap(true, Ordering::AcqRel) {
            return;
        }
        let was_connected = self.inner.connected.load(Ordering::Acquire);
        if was_connected {
            for h in std::mem::take(&mut *lock(&self.inner.on_disconnecting)) {
                run_now_or_spawn(h(self.clone(), reason));
            }
        }
        self.inner.ns.adapter.del_all(self.id());
        self.inner.ns.remove_socket(self);
        self.inner.conn.remove_socket(self);
        // Dropping the senders fails every pending `emit_with_ack` with `Disconnected`.
        lock(&self.inner.acks).pending.clear();
        if was_connected {
            for h in std::mem::take(&mut *lock(&self.inner.on_disconnect)) {
                run_now_or_spawn(h(self.clone(), reason));
            }
        }
    }
}

/// `socket.timeout(d)`: the next acknowledged emit waits at most `d`.
#[derive(Debug)]
pub struct TimeoutEmitter<'a> {
    socket: &'a Socket,
    timeout: Duration,
}

impl TimeoutEmitter<'_> {
    /// Emits with one argument and waits for the acknowledgement.
    pub fn emit_with_ack<T, D>(self, event: &str, data: &D) -> AckFuture<T>
    where
        T: FromArgs,
        D: Serialize + ?Sized,
    {
        self.socket
            .emit_with_ack_dyn(event, &One(data), self.timeout)
    }

    /// Emits with several arguments and waits for the acknowledgement.
    pub fn emit_args_with_ack<T>(self, event: &str, args: impl Args) -> AckFuture<T>
    where
        T: FromArgs,
    {
        self.socket.emit_with_ack_dyn(event, &args, self.timeout)
    }
}

/// The acknowledgement of an emit: resolves with the client's reply, or an [`AckError`].
#[must_use = "the acknowledgement is only received when this future is awaited"]
pub struct AckFuture<T> {
    inner: Pin<Box<dyn Future<Output = Result<T, AckError>> + Send>>,
}

impl<T> fmt::Debug for AckFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AckFuture")
    }
}

impl<T: Send + 'static> AckFuture<T> {
    pub(crate) fn new(f: impl Future<Output = Result<T, AckError>> + Send + 'static) -> Self {
        Self { inner: Box::pin(f) }
    }

    pub(crate) fn ready(r: Result<T, AckError>) -> Self {
        Self::new(std::future::ready(r))
    }
}

impl<T> Future for AckFuture<T> {
    type Output = Result<T, AckError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}
