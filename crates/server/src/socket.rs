//! `Socket`: one client in one namespace.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::oneshot;
use volley_core::args::check_event_name;
use volley_core::{AckReply, DEFAULT_ACK_TIMEOUT, Encoded, EncodedFrame, SocketHandle};
use volley_engine::Frame;

use crate::adapter::{AckSink, BroadcastOptions, BroadcastPacket, Session};
use crate::connection::ConnInner;
use crate::error::{AckError, DisconnectReason, EmitError, send_error};
use crate::{AckFuture, Args, ArgsDyn, FromArgs, One, RawArgs, SocketId, TimeoutEmitter};

mod acks;
mod close;
mod events;
mod hooks;
mod rooms;

use self::acks::{AckTarget, Acks};
use crate::handler::DisconnectHandler;
use crate::handshake::Handshake;
use crate::namespace::NsInner;
use events::Events;
pub(crate) use events::EventsCopy;
use hooks::Hooks;
pub use hooks::PacketError;

// `repr(C)`, the fields an incoming event and an emit read first: with the `Arc`'s counts
// (a handler gets its own `Socket` clone) they span the first 48 bytes, one cache line for
// half the allocations (16-byte aligned), two for the others, where the compiler's order
// spread them over three or four, cold when many connections take turns.
#[repr(C)]
pub(crate) struct SocketInner {
    pub(crate) ns: Arc<NsInner>,
    pub(crate) conn: Arc<ConnInner>,
    /// Set once any hook is registered, so sockets without hooks never take their lock.
    has_hooks: AtomicBool,
    connected: AtomicBool,
    disconnected: AtomicBool,
    recovered: bool,
    /// Event handlers by name (see [`Events`]); its generation comes first.
    events: Events,
    hooks: RwLock<Hooks>,
    id: SocketId,
    handshake: Handshake,
    on_disconnecting: Mutex<Vec<DisconnectHandler>>,
    on_disconnect: Mutex<Vec<DisconnectHandler>>,
    acks: Mutex<Acks>,
    data: Mutex<Value>,
    extensions: Mutex<http::Extensions>,
    /// Connection state recovery's private session id (a secret; never logged).
    pid: Option<Arc<str>>,
}

/// One client in one namespace, as Node's server-side `socket`. Cheap to clone.
///
/// Its [`id`](Self::id) is public and random; it is not the Engine.IO session id, which
/// authenticates the connection's HTTP requests and is never exposed here.
///
/// ```
/// use volley::{Data, Socket, SocketIo};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let io = SocketIo::builder().build();
/// io.of("/").on_connection(|socket: Socket| async move {
///     socket
///         .on("ping", |socket: Socket, Data(n): Data<u32>| async move {
///             let _ = socket.emit("pong", &(n + 1));
///         })
///         .on("hello", |socket: Socket| async move {
///             let _ = socket.emit_args("hello", ("several", "arguments", 3));
///         });
/// });
/// # let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// # let url = format!("http://{}", listener.local_addr()?);
/// # tokio::spawn(volley::serve(listener, io.service()));
/// # let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
/// # let client = volley_client::Manager::builder(&url).build()?.socket("/")
/// #     .on_any(move |_, event: String, args: volley::RawArgs| {
/// #         let tx = tx.clone();
/// #         async move { let _ = tx.send((event, args)); }
/// #     })
/// #     .connect().await?;
/// // From a connected client (volley-client here):
/// client.emit("ping", &41)?;
/// # let (event, args) = rx.recv().await.unwrap();
/// # assert_eq!((event.as_str(), args.parse::<u32>()?), ("pong", 42));
/// client.emit_args("hello", ())?;
/// // It receives "pong" with 42, then "hello" with three arguments.
/// # let (event, args) = rx.recv().await.unwrap();
/// # assert_eq!(event, "hello");
/// # assert_eq!(args.parse::<(String, String, u8)>()?.2, 3);
/// # Ok(())
/// # }
/// ```
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
    /// A socket, fresh or (with `restored`) recovered from a session.
    pub(crate) fn new(
        ns: Arc<NsInner>,
        conn: Arc<ConnInner>,
        handshake: Handshake,
        restored: Option<&Session>,
    ) -> Self {
        let (id, pid, data) = match restored {
            Some(s) => (
                s.id.clone(),
                Some(Arc::from(s.pid.as_str())),
                s.data.clone(),
            ),
            // Protocol v4 (Engine.IO v3) clients compute their id from the session id, as
            // Node gives it: `sid` in `/`, `/nsp#sid` elsewhere.
            None if conn.engine.protocol() == volley_engine::ProtocolVersion::V3 => (
                SocketId::from(if ns.name == "/" {
                    conn.engine.sid().to_owned()
                } else {
                    format!("{}#{}", ns.name, conn.engine.sid())
                }),
                ns.recovery.and_then(|_| crate::builder::random_pid()),
                Value::Null,
            ),
            None => (
                SocketId::from(crate::builder::random_id()),
                ns.recovery.and_then(|_| crate::builder::random_pid()),
                Value::Null,
            ),
        };
        Self {
            inner: Arc::new(SocketInner {
                has_hooks: AtomicBool::new(false),
                hooks: RwLock::new(Hooks::default()),
                id,
                ns,
                conn,
                handshake,
                events: Events::default(),
                on_disconnecting: Mutex::new(Vec::new()),
                on_disconnect: Mutex::new(Vec::new()),
                acks: Mutex::new(Acks::default()),
                connected: AtomicBool::new(false),
                disconnected: AtomicBool::new(false),
                data: Mutex::new(data),
                extensions: Mutex::new(http::Extensions::new()),
                pid,
                recovered: restored.is_some(),
            }),
        }
    }

    /// The socket id: random, public, unique on this server.
    pub fn id(&self) -> &SocketId {
        &self.inner.id
    }

    /// The application state of type `T` given to the builder
    /// ([`SocketIoBuilder::state`](crate::SocketIoBuilder::state)), cloned; `None` when none
    /// was given. What the [`State`](crate::State) extractor gives event handlers, for the
    /// places that take a plain `Socket`: middleware and `on_connection`.
    ///
    /// ```
    /// use volley::{ConnectError, Socket, SocketIo};
    ///
    /// #[derive(Clone)]
    /// struct Banned(Vec<String>);
    ///
    /// let io = SocketIo::builder()
    ///     .state(Banned(vec!["mallory".into()]))
    ///     .build();
    /// io.of("/").middleware(|socket: Socket| async move {
    ///     let name = socket.handshake().auth()["name"].as_str().unwrap_or_default().to_owned();
    ///     match socket.app_state::<Banned>() {
    ///         Some(Banned(names)) if names.contains(&name) => Err(ConnectError::new("banned")),
    ///         _ => Ok(()),
    ///     }
    /// });
    /// ```
    pub fn app_state<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.inner.ns.state.as_deref()?.get::<T>()
    }

    /// Whether connection state recovery restored this socket (Node's `socket.recovered`):
    /// its client came back within the window with its private session id and last
    /// offset, and got its id, rooms and data back, the packets it missed replayed before
    /// anything new. Connection handlers use it to tell a recovery from a first connection
    /// (middlewares are skipped on recovery unless configured otherwise).
    pub fn recovered(&self) -> bool {
        self.inner.recovered
    }

    /// The private session id, sent only in the CONNECT reply.
    pub(crate) fn pid(&self) -> Option<&str> {
        self.inner.pid.as_deref()
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

    /// The transport the connection uses now (polling or WebSocket).
    pub fn transport(&self) -> volley_proto::TransportKind {
        self.inner.conn.engine.transport()
    }

    /// Whether the connection can take a packet now (a volatile emit is dropped otherwise).
    pub(crate) fn is_writable(&self) -> bool {
        self.inner.conn.engine.is_writable()
    }

    /// Whether the socket is connected (false while middleware runs and after disconnect).
    pub fn connected(&self) -> bool {
        self.inner.connected.load(Ordering::Acquire)
            && !self.inner.disconnected.load(Ordering::Acquire)
    }

    pub(crate) fn set_connected(&self) {
        self.inner.connected.store(true, Ordering::Release);
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
        let enc = self
            .inner
            .ns
            .parser
            .event(self.namespace(), event, args, None)?;
        if self.inner.ns.recovery.is_some() {
            // As Node: through the adapter to the socket's own room, so that the packet
            // gets its offset and is kept for a recovery.
            let opts = BroadcastOptions {
                rooms: vec![self.id().as_arc().clone()],
                ..Default::default()
            };
            self.inner
                .ns
                .adapter
                .broadcast(&BroadcastPacket::new(enc), &opts);
            return Ok(());
        }
        self.send_owned(enc)
    }

    /// Sends a packet made for this socket alone: its buffers move to the engine unshared.
    fn send_owned(&self, enc: Encoded) -> Result<(), EmitError> {
        let engine = &self.inner.conn.engine;
        let (first, attachments) = enc.into_parts();
        if attachments.is_empty() {
            engine.send(frame(first))
        } else {
            engine.send_many(
                std::iter::once(frame(first)).chain(attachments.into_iter().map(Frame::Binary)),
            )
        }
        .map_err(send_error)
    }

    pub(crate) fn send_encoded(&self, enc: &Encoded) -> Result<(), EmitError> {
        let engine = &self.inner.conn.engine;
        if enc.frame_count() == 1 {
            engine.send(frame(enc.first_frame()))
        } else {
            engine.send_many(enc.frames().map(frame))
        }
        .map_err(send_error)
    }

    /// Sends a broadcast packet if the socket is connected (and, for a volatile one,
    /// writable now); whether it was queued.
    pub(crate) fn send_broadcast(&self, enc: &Encoded, volatile: bool) -> bool {
        if volatile && !self.is_writable() {
            self.inner.ns.stats.volatile_dropped();
            return false;
        }
        self.connected() && self.send_encoded(enc).is_ok()
    }

    /// Sets the timeout of the next `emit_with_ack`, as Node's `socket.timeout(ms)`; see
    /// [`emit_with_ack`](Self::emit_with_ack) for an example.
    pub fn timeout(&self, timeout: Duration) -> TimeoutEmitter<'_> {
        TimeoutEmitter::new(self, timeout)
    }

    fn default_ack_timeout(&self) -> Duration {
        self.inner
            .ns
            .io()
            .map(|io| io.config.ack_timeout)
            .unwrap_or(DEFAULT_ACK_TIMEOUT)
    }

    /// Emits an event with one argument and waits for the client's acknowledgement, at most
    /// the server's default ack timeout (see [`timeout`](Self::timeout) to choose another).
    ///
    /// The event is sent at once; the returned future only waits. The reply is deserialized
    /// into `T` following [`Data`](crate::Data)'s rule. Errors: [`AckError::Timeout`], the
    /// socket disconnected first, or the reply does not fit `T`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use volley::{AckSender, Socket, SocketIo};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let io = SocketIo::builder().build();
    /// io.of("/").on_connection(|socket: Socket| async move {
    ///     socket.on("greet me", |socket: Socket, ack: AckSender| async move {
    ///         // Asks the client back, waiting at most two seconds for its answer.
    ///         let name: String = match socket
    ///             .timeout(Duration::from_secs(2))
    ///             .emit_with_ack("name?", &())
    ///             .await
    ///         {
    ///             Ok(name) => name,
    ///             Err(_) => "stranger".into(), // timeout, disconnected, or not a string
    ///         };
    ///         let _ = ack.send(&format!("hello {name}"));
    ///     });
    /// });
    /// # let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// # let url = format!("http://{}", listener.local_addr()?);
    /// # tokio::spawn(volley::serve(listener, io.service()));
    /// # let client = volley_client::Manager::builder(&url).build()?.socket("/")
    /// #     .on("name?", |_: volley_client::Socket, ack: volley_client::AckSender| async move {
    /// #         let _ = ack.send("Ada");
    /// #     })
    /// #     .connect().await?;
    /// // The client answers "name?" with "Ada".
    /// let greeting: String = client.emit_args_with_ack("greet me", ()).await?;
    /// assert_eq!(greeting, "hello Ada");
    /// # Ok(())
    /// # }
    /// ```
    pub fn emit_with_ack<T, D>(&self, event: &str, data: &D) -> AckFuture<T>
    where
        T: FromArgs,
        D: Serialize + ?Sized,
    {
        self.emit_with_ack_dyn(event, &One(data), None)
    }

    /// Like [`emit_with_ack`](Self::emit_with_ack) with several arguments.
    pub fn emit_args_with_ack<T>(&self, event: &str, args: impl Args) -> AckFuture<T>
    where
        T: FromArgs,
    {
        self.emit_with_ack_dyn(event, &args, None)
    }

    /// Disconnects the socket from its namespace (the client sees "io server disconnect").
    /// The connection stays open for the client's other namespaces.
    ///
    /// ```
    /// use volley::{DisconnectReason, Socket, SocketIo};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let io = SocketIo::builder().build();
    /// io.of("/").on_connection(|socket: Socket| async move {
    ///     socket.on("kick me", |socket: Socket| async move { socket.disconnect() });
    ///     socket.on_disconnect(|socket: Socket, reason: DisconnectReason| async move {
    ///         // Here: "server namespace disconnect".
    ///         println!("{} left: {}", socket.id(), reason.as_str());
    ///     });
    /// });
    /// # let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// # let url = format!("http://{}", listener.local_addr()?);
    /// # tokio::spawn(volley::serve(listener, io.service()));
    /// # let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    /// # let client = volley_client::Manager::builder(&url).build()?.socket("/")
    /// #     .on_disconnect(move |_, reason| {
    /// #         let tx = tx.clone();
    /// #         async move { let _ = tx.send(reason); }
    /// #     })
    /// #     .connect().await?;
    /// // From a connected client (volley-client here):
    /// client.emit_args("kick me", ())?;
    /// // Its `disconnect` handler gets "io server disconnect", and it does not reconnect.
    /// # let reason = rx.recv().await.unwrap();
    /// # assert_eq!(reason.as_str(), "io server disconnect");
    /// # Ok(())
    /// # }
    /// ```
    pub fn disconnect(&self) {
        if self.connected() {
            let _ = self.send_encoded(&self.inner.ns.parser.disconnect(self.namespace()));
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
        self.session_live();
        self.inner.ns.observers.each(|o| o.data_changed(self));
        Ok(())
    }

    /// Per-socket state of any type, local to this server (not shared with the cluster).
    pub fn extensions(&self) -> MutexGuard<'_, http::Extensions> {
        lock(&self.inner.extensions)
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

    /// Acknowledgements this socket's client still owes, with someone waiting for them.
    pub(crate) fn pending_acks(&self) -> usize {
        lock(&self.inner.acks)
            .pending
            .values()
            .filter(|t| !t.is_closed())
            .count()
    }

    pub(crate) fn forget_ack(&self, id: u64) {
        lock(&self.inner.acks).pending.remove(&id);
    }
}

pub(crate) fn frame(f: EncodedFrame) -> Frame {
    match f {
        EncodedFrame::Text(t) => Frame::Text(t),
        EncodedFrame::Binary(b) => Frame::Binary(b),
    }
}

impl SocketHandle for Socket {
    fn send_ack(&self, id: u64, args: &dyn ArgsDyn) -> Result<(), EmitError> {
        if self.inner.disconnected.load(Ordering::Acquire) {
            return Err(EmitError::Disconnected);
        }
        let enc = self.inner.ns.parser.ack(self.namespace(), id, args)?;
        self.send_owned(enc)
    }

    fn request_ack(&self, event: &str, args: &dyn ArgsDyn, timeout: Option<Duration>) -> AckReply {
        let timeout = timeout.unwrap_or_else(|| self.default_ack_timeout());
        let fail = |e: EmitError| -> AckReply { Box::pin(std::future::ready(Err(e.into()))) };
        if self.inner.disconnected.load(Ordering::Acquire) {
            return fail(EmitError::Disconnected);
        }
        self.observe_outgoing(event, args);
        let (tx, rx) = oneshot::channel();
        let id = self.inner.ns.next_ack_id();
        lock(&self.inner.acks).insert(id, AckTarget::Single(tx));
        let sent = self
            .inner
            .ns
            .parser
            .event(self.namespace(), event, args, Some(id))
            .map_err(EmitError::from)
            .and_then(|enc| self.send_owned(enc));
        if let Err(e) = sent {
            lock(&self.inner.acks).pending.remove(&id);
            return fail(e);
        }
        let socket = self.clone();
        let sent_at = tokio::time::Instant::now();
        Box::pin(async move {
            let reply = volley_core::ack::await_reply(rx, Some(timeout)).await;
            let stats = &socket.inner.ns.stats;
            match &reply {
                Ok(_) => stats.ack_received(sent_at.elapsed()),
                Err(AckError::Timeout) => {
                    stats.ack_timed_out();
                    lock(&socket.inner.acks).pending.remove(&id);
                }
                Err(_) => {}
            }
            reply
        })
    }

    fn state(&self) -> Option<&volley_core::StateMap> {
        self.inner.ns.state.as_deref()
    }
}
