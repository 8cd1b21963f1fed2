//! A namespace socket: events, acknowledgements, the send buffer and the retry queue.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use volley_core::AckReply;
use volley_core::args::check_event_name;
use volley_core::handler::erase;
use volley_core::parser::EventBody;
use volley_core::{Encoded, Parser, StateMap};

use crate::error::{AckError, ConnectError, DisconnectReason, EmitError};
use crate::handler::{
    AnyHandler, BoxFuture, ConnectErrorHandler, ConnectHandler, DisconnectHandler, ErasedHandler,
    EventHandler, SocketHandle,
};
use crate::manager::{Cmd, Manager};
use crate::{AckFuture, Args, ArgsDyn, FromArgs, One, RawArgs, SocketId, TimeoutEmitter};

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|e| e.into_inner())
}

/// What happens to an emit when the send buffer of a disconnected socket is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overflow {
    /// The emit fails with [`EmitError::BufferFull`] (the default).
    #[default]
    Reject,
    /// The oldest buffered packet is dropped (its acknowledgement fails with
    /// [`AckError::Dropped`]) to make room.
    DropOldest,
}

/// The lifecycle events of a socket, as [`Socket::events`] reports them.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SocketEvent {
    /// The namespace accepted the socket (`connect`); buffered emits were just flushed.
    Connect,
    /// The socket left its namespace (`disconnect`), with the official reason.
    Disconnect(DisconnectReason),
    /// A connection attempt failed (`connect_error`), with the server's message and data when
    /// the namespace refused it.
    ConnectError(ConnectError),
}

/// Where a socket stands, for [`Socket::wait_connected`] and the retry queue.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Status {
    /// Not trying to connect.
    Idle,
    /// Trying to (re)connect.
    Connecting,
    Connected,
    /// Gave up: refused by the server, reconnection failed or disabled.
    Failed(ConnectError),
}

/// How `auth` is produced for each CONNECT.
#[derive(Clone)]
pub(crate) enum Auth {
    None,
    Static(Value),
    Dynamic(Arc<dyn Fn() -> BoxFuture<Option<Value>> + Send + Sync>),
}

#[derive(Clone)]
pub(crate) struct SocketOptions {
    pub(crate) auth: Auth,
    pub(crate) ack_timeout: Option<Duration>,
    pub(crate) retries: u32,
    pub(crate) buffer_capacity: usize,
    pub(crate) overflow: Overflow,
}

impl Default for SocketOptions {
    fn default() -> Self {
        Self {
            auth: Auth::None,
            ack_timeout: None,
            retries: 0,
            buffer_capacity: 1024,
            overflow: Overflow::Reject,
        }
    }
}

pub(crate) type AckTx = oneshot::Sender<Result<RawArgs, AckError>>;

/// An emit waiting in the send buffer.
pub(crate) struct Buffered {
    pub(crate) packet: Encoded,
    pub(crate) ack: Option<u64>,
}

#[derive(Default)]
pub(crate) struct SocketState {
    /// Wants to be connected (the official client's `socket.active`).
    pub(crate) active: bool,
    pub(crate) connected: bool,
    pub(crate) sid: Option<SocketId>,
    pub(crate) buffer: VecDeque<Buffered>,
    pub(crate) acks: HashMap<u64, AckTx>,
}

impl SocketState {
    /// Takes the acknowledgements that are not waiting in the send buffer: those whose
    /// event went out on a connection that is now gone.
    pub(crate) fn take_sent_acks(&mut self) -> Vec<AckTx> {
        let buffered: std::collections::HashSet<u64> =
            self.buffer.iter().filter_map(|b| b.ack).collect();
        let ids: Vec<u64> = self
            .acks
            .keys()
            .copied()
            .filter(|id| !buffered.contains(id))
            .collect();
        ids.into_iter()
            .filter_map(|id| self.acks.remove(&id))
            .collect()
    }
}

#[derive(Default)]
pub(crate) struct Handlers {
    pub(crate) events: HashMap<String, ErasedHandler>,
    pub(crate) any: Vec<AnyHandler>,
    pub(crate) connect: Vec<ConnectHandler>,
    pub(crate) disconnect: Vec<DisconnectHandler>,
    pub(crate) connect_error: Vec<ConnectErrorHandler>,
}

/// An item of the retry queue.
struct Queued {
    body: EventBody,
    reply: Option<AckTx>,
}

pub(crate) struct SocketInner {
    pub(crate) nsp: String,
    pub(crate) parser: Parser,
    pub(crate) cmd: mpsc::UnboundedSender<Cmd>,
    pub(crate) state: Mutex<SocketState>,
    pub(crate) handlers: RwLock<Handlers>,
    pub(crate) opts: RwLock<SocketOptions>,
    pub(crate) status: watch::Sender<Status>,
    pub(crate) events: broadcast::Sender<SocketEvent>,
    next_id: AtomicU64,
    retry_tx: Mutex<Option<mpsc::UnboundedSender<Queued>>>,
    /// The manager's runtime, so that a socket used from outside it can still spawn.
    runtime: tokio::runtime::Handle,
}

impl SocketInner {
    pub(crate) fn new(
        nsp: String,
        parser: Parser,
        cmd: mpsc::UnboundedSender<Cmd>,
        runtime: tokio::runtime::Handle,
    ) -> Self {
        Self {
            nsp,
            parser,
            cmd,
            state: Mutex::default(),
            handlers: RwLock::default(),
            opts: RwLock::default(),
            status: watch::Sender::new(Status::Idle),
            events: broadcast::Sender::new(64),
            next_id: AtomicU64::new(0),
            retry_tx: Mutex::new(None),
            runtime,
        }
    }

    /// Sends a packet now if connected, else buffers it (volatile packets are dropped).
    fn push(
        &self,
        packet: Encoded,
        id: Option<u64>,
        ack: Option<AckTx>,
        volatile: bool,
    ) -> Result<(), EmitError> {
        if self.cmd.is_closed() {
            return Err(EmitError::Closed);
        }
        let (capacity, overflow) = {
            let o = read(&self.opts);
            (o.buffer_capacity, o.overflow)
        };
        let dropped;
        {
            let mut st = lock(&self.state);
            if st.connected {
                if let (Some(id), Some(tx)) = (id, ack) {
                    st.acks.insert(id, tx);
                }
                let cmd = Cmd::Send {
                    nsp: self.nsp.clone(),
                    packet,
                    ack: id,
                    volatile,
                };
                if self.cmd.send(cmd).is_err() {
                    if let Some(id) = id {
                        st.acks.remove(&id);
                    }
                    return Err(EmitError::Closed);
                }
                return Ok(());
            }
            if volatile {
                // As in JavaScript: a volatile event is not buffered.
                return Ok(());
            }
            if capacity == 0 {
                return Err(EmitError::BufferFull);
            }
            dropped = if st.buffer.len() >= capacity {
                match overflow {
                    Overflow::Reject => return Err(EmitError::BufferFull),
                    Overflow::DropOldest => st
                        .buffer
                        .pop_front()
                        .and_then(|b| b.ack)
                        .and_then(|id| st.acks.remove(&id)),
                }
            } else {
                None
            };
            if let (Some(id), Some(tx)) = (id, ack) {
                st.acks.insert(id, tx);
            }
            st.buffer.push_back(Buffered { packet, ack: id });
        }
        if let Some(tx) = dropped {
            let _ = tx.send(Err(AckError::Dropped));
        }
        Ok(())
    }

    /// Forgets an acknowledgement that timed out, and its event if it is still buffered.
    fn forget_ack(&self, id: u64) {
        let mut st = lock(&self.state);
        st.acks.remove(&id);
        st.buffer.retain(|b| b.ack != Some(id));
    }

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn retry_queue(self: &Arc<Self>) -> mpsc::UnboundedSender<Queued> {
        let mut slot = lock(&self.retry_tx);
        if let Some(tx) = slot.as_ref() {
            return tx.clone();
        }
        let (tx, rx) = mpsc::unbounded_channel();
        self.runtime.spawn(retry_loop(
            Arc::downgrade(self),
            rx,
            self.status.subscribe(),
        ));
        *slot = Some(tx.clone());
        tx
    }
}

/// Sends queued events one at a time, each until acknowledged or out of tries: the official
/// client's `retries` (at-least-once delivery, in order).
async fn retry_loop(
    socket: Weak<SocketInner>,
    mut rx: mpsc::UnboundedReceiver<Queued>,
    mut status: watch::Receiver<Status>,
) {
    while let Some(item) = rx.recv().await {
        let mut tries: u32 = 0;
        let result = loop {
            if status.wait_for(|s| *s == Status::Connected).await.is_err() {
                return;
            }
            let Some(inner) = socket.upgrade() else {
                return;
            };
            let (retries, timeout) = {
                let o = read(&inner.opts);
                (o.retries, o.ack_timeout)
            };
            tries = tries.saturating_add(1);
            let (tx, reply) = oneshot::channel();
            let id = inner.next_id();
            let packet = inner.parser.event_packet(&inner.nsp, &item.body, Some(id));
            if let Err(e) = inner.push(packet, Some(id), Some(tx), false) {
                break Err(AckError::Emit(e));
            }
            drop(inner);
            let outcome = match timeout {
                Some(d) => match tokio::time::timeout(d, reply).await {
                    Ok(r) => r.unwrap_or(Err(AckError::Disconnected)),
                    Err(_) => {
                        if let Some(inner) = socket.upgrade() {
                            inner.forget_ack(id);
                        }
                        Err(AckError::Timeout)
                    }
                },
                None => reply.await.unwrap_or(Err(AckError::Disconnected)),
            };
            match outcome {
                Ok(args) => break Ok(args),
                Err(e) if tries > retries => break Err(e),
                Err(e) => tracing::debug!(tries, error = %e, "retrying an unacknowledged event"),
            }
        };
        if let Some(reply) = item.reply {
            let _ = reply.send(result);
        }
    }
}

/// A socket in one namespace of a [`Manager`]'s connection.
///
/// Cheap to clone. Emits made while the socket is not connected are buffered (bounded; see
/// [`SocketBuilder::send_buffer`]) and flushed in order once the namespace accepts the
/// socket again.
#[derive(Clone)]
pub struct Socket {
    pub(crate) inner: Arc<SocketInner>,
    pub(crate) manager: Manager,
}

impl fmt::Debug for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Socket")
            .field("namespace", &self.inner.nsp)
            .field("id", &self.id())
            .finish()
    }
}

impl Socket {
    /// The namespace, e.g. `"/"` or `"/admin"`.
    pub fn namespace(&self) -> &str {
        &self.inner.nsp
    }

    /// The socket id the server gave on the last namespace connection.
    pub fn id(&self) -> Option<SocketId> {
        lock(&self.inner.state).sid.clone()
    }

    /// Whether the namespace connection is up.
    pub fn connected(&self) -> bool {
        lock(&self.inner.state).connected
    }

    /// Whether the socket wants to be connected (it reconnects when the connection drops).
    /// False after [`disconnect`](Self::disconnect), a server-side disconnect or a refusal.
    pub fn active(&self) -> bool {
        lock(&self.inner.state).active
    }

    /// The manager this socket belongs to.
    pub fn manager(&self) -> &Manager {
        &self.manager
    }

    /// How many emits wait in the send buffer.
    pub fn buffered(&self) -> usize {
        lock(&self.inner.state).buffer.len()
    }

    /// Registers the handler of an event (replacing any previous one); see
    /// [`handler`](crate::handler) for the shapes. Chainable.
    pub fn on<H, M>(&self, event: impl Into<String>, handler: H) -> &Self
    where
        H: EventHandler<Socket, M>,
        M: 'static,
    {
        write(&self.inner.handlers)
            .events
            .insert(event.into(), erase(handler));
        self
    }

    /// Removes the handler of an event.
    pub fn off(&self, event: &str) {
        write(&self.inner.handlers).events.remove(event);
    }

    /// Registers a catch-all handler, run for every event before the event's own handler.
    pub fn on_any<F, Fut>(&self, handler: F)
    where
        F: Fn(Socket, String, RawArgs) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        write(&self.inner.handlers)
            .any
            .push(Arc::new(move |s, e, a| Box::pin(handler(s, e, a))));
    }

    /// Runs `handler` every time the namespace accepts the socket (`connect`).
    pub fn on_connect<F, Fut>(&self, handler: F)
    where
        F: Fn(Socket) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        write(&self.inner.handlers)
            .connect
            .push(Arc::new(move |s| Box::pin(handler(s))));
    }

    /// Runs `handler` every time the socket leaves its namespace (`disconnect`).
    pub fn on_disconnect<F, Fut>(&self, handler: F)
    where
        F: Fn(Socket, DisconnectReason) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        write(&self.inner.handlers)
            .disconnect
            .push(Arc::new(move |s, r| Box::pin(handler(s, r))));
    }

    /// Runs `handler` on every failed connection attempt (`connect_error`).
    pub fn on_connect_error<F, Fut>(&self, handler: F)
    where
        F: Fn(Socket, ConnectError) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        write(&self.inner.handlers)
            .connect_error
            .push(Arc::new(move |s, e| Box::pin(handler(s, e))));
    }

    /// A receiver of this socket's lifecycle events from now on.
    pub fn events(&self) -> broadcast::Receiver<SocketEvent> {
        self.inner.events.subscribe()
    }

    /// Emits an event with one argument (buffered while disconnected).
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), EmitError> {
        self.emit_dyn(event, &One(data), false)
    }

    /// Emits an event with several arguments (a tuple), none (`()`) or [`RawArgs`].
    pub fn emit_args(&self, event: &str, args: impl Args) -> Result<(), EmitError> {
        self.emit_dyn(event, &args, false)
    }

    /// Emits that are dropped instead of buffered when the socket cannot send them at once.
    pub fn volatile(&self) -> VolatileEmitter<'_> {
        VolatileEmitter { socket: self }
    }

    fn emit_dyn(&self, event: &str, args: &dyn ArgsDyn, volatile: bool) -> Result<(), EmitError> {
        check_event_name(event)?;
        let body = self.inner.parser.event_body(event, args)?;
        if !volatile && read(&self.inner.opts).retries > 0 {
            let queued = Queued { body, reply: None };
            let _ = self.inner.retry_queue().send(queued);
            return Ok(());
        }
        let packet = self.inner.parser.event_packet(&self.inner.nsp, &body, None);
        self.inner.push(packet, None, None, volatile)
    }

    /// Sets the timeout of the next acknowledged emit.
    pub fn timeout(&self, timeout: Duration) -> TimeoutEmitter<'_> {
        TimeoutEmitter::new(self, timeout)
    }

    /// Emits an event with one argument and waits for the server's acknowledgement, at most
    /// the socket's [`ack_timeout`](SocketBuilder::ack_timeout) if it has one (see
    /// [`timeout`](Self::timeout) for a per-emit one).
    ///
    /// The event is sent (or buffered) at once; the returned future only waits. The reply is
    /// deserialized into `T` following [`Data`](crate::Data)'s rule, or kept as [`RawArgs`].
    pub fn emit_with_ack<T, D>(&self, event: &str, data: &D) -> AckFuture<T>
    where
        T: FromArgs,
        D: Serialize + ?Sized,
    {
        self.emit_with_ack_dyn(event, &One(data), None)
    }

    /// Like [`emit_with_ack`](Self::emit_with_ack) with several arguments.
    pub fn emit_args_with_ack<T: FromArgs>(&self, event: &str, args: impl Args) -> AckFuture<T> {
        self.emit_with_ack_dyn(event, &args, None)
    }

    /// (Re)connects the socket to its namespace without waiting: opens the manager's
    /// connection if needed. A no-op when already connected.
    pub fn connect(&self) {
        {
            let mut st = lock(&self.inner.state);
            if st.active && st.connected {
                return;
            }
            st.active = true;
        }
        self.inner.status.send_replace(Status::Connecting);
        let _ = self.inner.cmd.send(Cmd::Activate(self.inner.nsp.clone()));
    }

    /// Waits until the namespace accepts the socket. Fails when it refuses
    /// ([`ConnectError::is_from_server`]), when the manager gives up reconnecting, or when the
    /// socket is not trying to connect.
    pub async fn wait_connected(&self) -> Result<(), ConnectError> {
        let mut rx = self.inner.status.subscribe();
        let status = rx
            .wait_for(|s| !matches!(s, Status::Connecting))
            .await
            .map(|s| s.clone())
            .unwrap_or(Status::Idle);
        match status {
            Status::Connected => Ok(()),
            Status::Failed(e) => Err(e),
            Status::Idle | Status::Connecting => Err(ConnectError::connection_failed(
                "the socket is not connecting",
            )),
        }
    }

    /// Leaves the namespace (the server sees "client namespace disconnect") and stops
    /// reconnecting it. Buffered emits stay for a later [`connect`](Self::connect). When it
    /// was the manager's last active socket, the connection is closed.
    pub fn disconnect(&self) {
        let failed = {
            let mut st = lock(&self.inner.state);
            if !st.active && !st.connected {
                return;
            }
            st.active = false;
            let was = st.connected;
            st.connected = false;
            let acks = st.take_sent_acks();
            let _ = self.inner.cmd.send(Cmd::Deactivate {
                nsp: self.inner.nsp.clone(),
                was_connected: was,
            });
            acks
        };
        self.inner.status.send_replace(Status::Idle);
        for tx in failed {
            let _ = tx.send(Err(AckError::Disconnected));
        }
    }
}

/// `socket.volatile()`: emits dropped when the socket is disconnected or the transport busy.
#[derive(Debug)]
pub struct VolatileEmitter<'a> {
    socket: &'a Socket,
}

impl VolatileEmitter<'_> {
    /// Emits with one argument, or drops it.
    pub fn emit<T: Serialize + ?Sized>(self, event: &str, data: &T) -> Result<(), EmitError> {
        self.socket.emit_dyn(event, &One(data), true)
    }

    /// Emits with several arguments, or drops them.
    pub fn emit_args(self, event: &str, args: impl Args) -> Result<(), EmitError> {
        self.socket.emit_dyn(event, &args, true)
    }
}

/// A deferred registration of a [`SocketBuilder`].
type Setup = Box<dyn FnOnce(&Socket) + Send>;

/// Configures a namespace socket; from [`Manager::socket`].
#[must_use = "a socket builder does nothing until `connect` or `build`"]
pub struct SocketBuilder {
    manager: Manager,
    nsp: String,
    opts: SocketOptions,
    setup: Vec<Setup>,
}

impl fmt::Debug for SocketBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SocketBuilder {{ namespace: {:?}, .. }}", self.nsp)
    }
}

impl SocketBuilder {
    pub(crate) fn new(manager: Manager, nsp: &str) -> Self {
        let nsp = if nsp.starts_with('/') {
            nsp.to_owned()
        } else {
            format!("/{nsp}")
        };
        Self {
            manager,
            nsp,
            opts: SocketOptions::default(),
            setup: Vec::new(),
        }
    }

    /// A fixed `auth` object sent with every CONNECT.
    pub fn auth(mut self, auth: impl Serialize) -> Self {
        self.opts.auth = match serde_json::to_value(auth) {
            Ok(Value::Null) | Err(_) => Auth::None,
            Ok(v) => Auth::Static(v),
        };
        self
    }

    /// An `auth` object computed again for every CONNECT, reconnections included (e.g. to
    /// fetch a fresh token). `None` sends no auth.
    pub fn auth_with<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Option<Value>> + Send + 'static,
    {
        self.opts.auth = Auth::Dynamic(Arc::new(move || Box::pin(f())));
        self
    }

    /// The default timeout of [`Socket::emit_with_ack`] (none by default, as in JavaScript:
    /// the acknowledgement is awaited until it comes or the socket disconnects).
    pub fn ack_timeout(mut self, timeout: Duration) -> Self {
        self.opts.ack_timeout = Some(timeout);
        self
    }

    /// At-least-once delivery: every emit waits for the server's acknowledgement (within
    /// [`ack_timeout`](Self::ack_timeout)) and is sent again, up to `retries` more times,
    /// across reconnections. Events go out one at a time, in order. The server must
    /// acknowledge every event, and may see duplicates.
    pub fn retries(mut self, retries: u32) -> Self {
        self.opts.retries = retries;
        self
    }

    /// The send buffer of a disconnected socket: at most `capacity` emits (1024 by default;
    /// 0 disables buffering), and what to do when it is full.
    pub fn send_buffer(mut self, capacity: usize, overflow: Overflow) -> Self {
        self.opts.buffer_capacity = capacity;
        self.opts.overflow = overflow;
        self
    }

    /// Registers an event handler; see [`Socket::on`].
    pub fn on<H, M>(mut self, event: impl Into<String>, handler: H) -> Self
    where
        H: EventHandler<Socket, M>,
        M: 'static,
    {
        let event = event.into();
        self.setup.push(Box::new(move |s| {
            s.on(event, handler);
        }));
        self
    }

    /// Registers a catch-all handler; see [`Socket::on_any`].
    pub fn on_any<F, Fut>(mut self, handler: F) -> Self
    where
        F: Fn(Socket, String, RawArgs) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.setup.push(Box::new(move |s| s.on_any(handler)));
        self
    }

    /// Registers a `connect` handler; see [`Socket::on_connect`].
    pub fn on_connect<F, Fut>(mut self, handler: F) -> Self
    where
        F: Fn(Socket) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.setup.push(Box::new(move |s| s.on_connect(handler)));
        self
    }

    /// Registers a `disconnect` handler; see [`Socket::on_disconnect`].
    pub fn on_disconnect<F, Fut>(mut self, handler: F) -> Self
    where
        F: Fn(Socket, DisconnectReason) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.setup.push(Box::new(move |s| s.on_disconnect(handler)));
        self
    }

    /// Registers a `connect_error` handler; see [`Socket::on_connect_error`].
    pub fn on_connect_error<F, Fut>(mut self, handler: F) -> Self
    where
        F: Fn(Socket, ConnectError) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.setup
            .push(Box::new(move |s| s.on_connect_error(handler)));
        self
    }

    /// The socket, configured but not connecting yet ([`Socket::connect`] starts it). A
    /// manager has one socket per namespace: building the same namespace again returns it,
    /// with these options and handlers added.
    pub fn build(self) -> Socket {
        let inner = self.manager.register(&self.nsp);
        *write(&inner.opts) = self.opts;
        let socket = Socket {
            inner,
            manager: self.manager,
        };
        for f in self.setup {
            f(&socket);
        }
        socket
    }

    /// Builds the socket, connects it, and waits for the namespace to accept it.
    ///
    /// While the server cannot be reached the manager keeps retrying (the first connection
    /// too); wrap this in a timeout to bound the wait. Fails when the namespace refuses the
    /// socket or the manager gives up.
    pub async fn connect(self) -> Result<Socket, ConnectError> {
        let socket = self.build();
        socket.connect();
        socket.wait_connected().await?;
        Ok(socket)
    }
}

impl SocketHandle for Socket {
    fn request_ack(&self, event: &str, args: &dyn ArgsDyn, timeout: Option<Duration>) -> AckReply {
        let timeout = timeout.or(read(&self.inner.opts).ack_timeout);
        let fail = |e: EmitError| -> AckReply { Box::pin(std::future::ready(Err(e.into()))) };
        let body = match self.inner.parser.event_body(event, args) {
            Ok(b) => b,
            Err(e) => return fail(e.into()),
        };
        let (tx, rx) = oneshot::channel();
        if read(&self.inner.opts).retries > 0 {
            let queued = Queued {
                body,
                reply: Some(tx),
            };
            let _ = self.inner.retry_queue().send(queued);
            return Box::pin(async move { rx.await.unwrap_or(Err(AckError::Disconnected)) });
        }
        let id = self.inner.next_id();
        let packet = self
            .inner
            .parser
            .event_packet(&self.inner.nsp, &body, Some(id));
        if let Err(e) = self.inner.push(packet, Some(id), Some(tx), false) {
            return fail(e);
        }
        let socket = Arc::downgrade(&self.inner);
        Box::pin(async move {
            let reply = volley_core::ack::await_reply(rx, timeout).await;
            if let (Err(AckError::Timeout), Some(s)) = (&reply, socket.upgrade()) {
                s.forget_ack(id);
            }
            reply?
        })
    }

    fn send_ack(&self, id: u64, args: &dyn ArgsDyn) -> Result<(), EmitError> {
        let packet = self.inner.parser.ack(&self.inner.nsp, id, args)?;
        let st = lock(&self.inner.state);
        if !st.connected {
            // The id belongs to the connection that asked; a new one would not know it.
            return Err(EmitError::Closed);
        }
        let cmd = Cmd::Send {
            nsp: self.inner.nsp.clone(),
            packet,
            ack: None,
            volatile: false,
        };
        self.inner.cmd.send(cmd).map_err(|_| EmitError::Closed)
    }

    fn state(&self) -> Option<&StateMap> {
        self.manager.state()
    }
}
