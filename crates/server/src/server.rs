//! `SocketIo`: the server handle, its builder, and how it is served.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;
use volley_engine::{Cors, Engine, EngineConfig, TransportKind};

use crate::service::{SocketIoLayer, SocketIoService};

use crate::adapter::{AdapterFactory, Room, local_adapter_factory};
use crate::broadcast::{BroadcastOperator, IntoRooms};
use crate::encode::Args;
use crate::error::{ConnectError, EmitError};
use crate::handler::Middleware;
use crate::namespace::{DynamicNs, Matcher, Namespace, NsHandlers, NsInner, NsPredicate};
use crate::socket::Socket;

/// Server settings beyond the engine's.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) connect_timeout: Duration,
    pub(crate) ack_timeout: Duration,
    pub(crate) max_attachments: usize,
    pub(crate) attachments_timeout: Duration,
    pub(crate) max_payload: usize,
    pub(crate) max_namespaces_per_connection: usize,
    pub(crate) cleanup_empty_child_namespaces: bool,
}

pub(crate) struct IoInner {
    pub(crate) config: Config,
    adapter: AdapterFactory,
    engine: std::sync::OnceLock<Engine>,
    namespaces: RwLock<HashMap<String, Arc<NsInner>>>,
    dynamic: RwLock<Vec<DynamicNs>>,
    pub(crate) middleware: RwLock<Vec<Middleware>>,
}

impl IoInner {
    pub(crate) fn engine(&self) -> Option<&Engine> {
        self.engine.get()
    }

    /// Forgets a namespace a dynamic one created, now that it is empty (unless configured
    /// to keep them), so clients cannot grow the namespace table by trying names.
    pub(crate) fn drop_empty_child(&self, ns: &NsInner) {
        if !self.config.cleanup_empty_child_namespaces {
            return;
        }
        let mut map = self.namespaces.write().unwrap_or_else(|p| p.into_inner());
        let same = map
            .get(&ns.name)
            .is_some_and(|n| std::ptr::eq(Arc::as_ptr(n), ns));
        let empty = ns
            .sockets
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty();
        if same && empty {
            map.remove(&ns.name);
        }
    }

    /// Puts a namespace a dynamic one created back in the table if it was dropped as empty
    /// while a socket was joining it.
    pub(crate) fn keep_child(&self, ns: &Arc<NsInner>) {
        let mut map = self.namespaces.write().unwrap_or_else(|p| p.into_inner());
        map.entry(ns.name.clone()).or_insert_with(|| ns.clone());
    }

    /// The namespace a CONNECT names: a static one, a child of a dynamic one created now, or
    /// none.
    pub(crate) async fn resolve_namespace(
        self: &Arc<Self>,
        name: &str,
        auth: &Value,
    ) -> Option<Arc<NsInner>> {
        if let Some(ns) = self
            .namespaces
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
        {
            return Some(ns.clone());
        }
        let candidates: Vec<(usize, Arc<NsHandlers>)> = {
            let dynamic = self.dynamic.read().unwrap_or_else(|p| p.into_inner());
            dynamic
                .iter()
                .enumerate()
                .map(|(i, d)| (i, d.handlers.clone()))
                .collect()
        };
        for (i, handlers) in candidates {
            let matched = {
                // Predicates are async: take the matcher out of the lock first.
                let matcher = {
                    let dynamic = self.dynamic.read().unwrap_or_else(|p| p.into_inner());
                    match &dynamic.get(i)?.matcher {
                        Matcher::Pattern(p) => Matcher::Pattern(p.clone()),
                        Matcher::Predicate(f) => Matcher::Predicate(f.clone()),
                    }
                };
                DynamicNs {
                    matcher,
                    handlers: handlers.clone(),
                }
                .matches(name, auth)
                .await
            };
            if matched {
                let mut map = self.namespaces.write().unwrap_or_else(|p| p.into_inner());
                let ns = map.entry(name.to_owned()).or_insert_with(|| {
                    let child = NsInner::new_child(
                        name.to_owned(),
                        Arc::downgrade(self),
                        handlers.clone(),
                        &self.adapter,
                    );
                    let mut children = handlers.children.write().unwrap_or_else(|p| p.into_inner());
                    children.retain(|c| c.strong_count() > 0);
                    children.push(Arc::downgrade(&child));
                    child
                });
                return Some(ns.clone());
            }
        }
        None
    }
}

/// The Socket.IO server: a cheap, cloneable handle to namespaces and their sockets, served as
/// a tower service or layer.
///
/// ```no_run
/// use volley::{Data, Socket, SocketIo};
///
/// # async fn run() -> std::io::Result<()> {
/// let io = SocketIo::builder().build();
/// io.of("/").on_connection(|socket: Socket| async move {
///     socket.on("echo", |socket: Socket, Data(msg): Data<String>| async move {
///         let _ = socket.emit("echo", &msg);
///     });
/// });
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// volley::serve(listener, io.service()).await
/// # }
/// ```
#[derive(Clone)]
pub struct SocketIo {
    inner: Arc<IoInner>,
}

impl fmt::Debug for SocketIo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SocketIo")
            .field("config", &self.inner.config)
            .finish()
    }
}

impl SocketIo {
    /// A builder with Node's defaults.
    pub fn builder() -> SocketIoBuilder {
        SocketIoBuilder::default()
    }

    fn engine(&self) -> &Engine {
        // Set in `build`, before the handle exists.
        self.inner.engine().expect("engine is set at build time")
    }

    /// The namespace `name`, created if it does not exist (as Node's `io.of(name)`).
    pub fn of(&self, name: &str) -> Namespace {
        let name = normalize(name);
        let mut map = self
            .inner
            .namespaces
            .write()
            .unwrap_or_else(|p| p.into_inner());
        let ns = map
            .entry(name.clone())
            .or_insert_with(|| {
                NsInner::new(
                    name,
                    Arc::downgrade(&self.inner),
                    Arc::default(),
                    &self.inner.adapter,
                )
            })
            .clone();
        Namespace { inner: ns }
    }

    /// A dynamic namespace: every name matching `pattern` (`*` matches any characters but
    /// `/`, e.g. `/room-*`) is created on its first connection, with the middleware and
    /// connection handler set on the returned handle.
    pub fn of_pattern(&self, pattern: &str) -> Namespace {
        self.add_dynamic(normalize(pattern), Matcher::Pattern(normalize(pattern)))
    }

    /// A dynamic namespace decided by an async function of the name and the client's `auth`.
    pub fn of_fn<F, Fut>(&self, f: F) -> Namespace
    where
        F: Fn(String, Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = bool> + Send + 'static,
    {
        let pred: NsPredicate =
            Arc::new(move |name, auth| Box::pin(f(name.to_owned(), auth.clone())));
        self.add_dynamic("<dynamic>".into(), Matcher::Predicate(pred))
    }

    fn add_dynamic(&self, label: String, matcher: Matcher) -> Namespace {
        let handlers: Arc<NsHandlers> = Arc::default();
        self.inner
            .dynamic
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(DynamicNs {
                matcher,
                handlers: handlers.clone(),
            });
        Namespace {
            inner: NsInner::new_parent(label, Arc::downgrade(&self.inner), handlers),
        }
    }

    /// A middleware run for every namespace, before the namespace's own.
    pub fn middleware<F, Fut>(&self, middleware: F) -> &Self
    where
        F: Fn(Socket) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), ConnectError>> + Send + 'static,
    {
        let m: Middleware = Arc::new(move |s| Box::pin(middleware(s)));
        self.inner
            .middleware
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(m);
        self
    }

    /// A tower service answering Socket.IO at its path and 404 elsewhere.
    pub fn service(&self) -> SocketIoService {
        SocketIoService::new(self.engine().service(), self.inner.clone())
    }

    /// A tower layer answering Socket.IO at its path and passing other requests on, e.g. to
    /// an axum `Router`.
    pub fn layer(&self) -> SocketIoLayer {
        SocketIoLayer::new(self.engine().layer(), self.inner.clone())
    }

    /// Shuts the server down: refuses new connections (HTTP 503), closes every connection
    /// after what was already queued on it, and disconnects every socket with
    /// [`DisconnectReason::ServerShuttingDown`](crate::DisconnectReason::ServerShuttingDown)
    /// (`"server shutting down"`). Pending `emit_with_ack` futures fail with
    /// [`AckError::Disconnected`](crate::AckError::Disconnected).
    ///
    /// Waits at most `grace` for the clients to take their close packets; connections still
    /// open then (a long-polling client that did not come back) are ended without waiting
    /// more. Returns once every socket has been disconnected, so within `grace` plus the time
    /// the connection tasks take to notice (at most a second).
    pub async fn close(&self, grace: Duration) {
        self.engine().close(grace).await;
    }

    /// A broadcast from the main namespace `/`; see [`Namespace::broadcast`].
    pub fn broadcast(&self) -> BroadcastOperator {
        self.of("/").broadcast()
    }

    /// Targets rooms of the main namespace.
    pub fn to(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.broadcast().to(rooms)
    }

    /// Same as [`to`](Self::to).
    pub fn within(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.to(rooms)
    }

    /// Excludes rooms of the main namespace.
    pub fn except(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.broadcast().except(rooms)
    }

    /// Only this server's sockets of the main namespace.
    pub fn local(&self) -> BroadcastOperator {
        self.broadcast().local()
    }

    /// Drops the packet for sockets that cannot take it now.
    pub fn volatile(&self) -> BroadcastOperator {
        self.broadcast().volatile()
    }

    /// Sets the acknowledgement timeout of the next broadcast.
    pub fn timeout(&self, d: Duration) -> BroadcastOperator {
        self.broadcast().timeout(d)
    }

    /// Emits to every socket of the main namespace.
    pub fn emit<T: serde::Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
    ) -> Result<(), EmitError> {
        self.broadcast().emit(event, data)
    }

    /// Emits with several arguments to every socket of the main namespace.
    pub fn emit_args(&self, event: &str, args: impl Args) -> Result<(), EmitError> {
        self.broadcast().emit_args(event, args)
    }

    /// Sends an event to the other servers of the cluster (main namespace).
    pub async fn server_side_emit(
        &self,
        event: &str,
        args: impl Args,
    ) -> Result<(), crate::adapter::AdapterError> {
        self.of("/").server_side_emit(event, args).await
    }

    /// How many servers are in the cluster (1 without a cluster adapter).
    pub async fn server_count(&self) -> Result<usize, crate::adapter::AdapterError> {
        self.of("/").server_count().await
    }

    /// The sockets of the main namespace, wherever they are connected.
    pub async fn fetch_sockets(
        &self,
    ) -> Result<Vec<crate::RemoteSocket>, crate::adapter::AdapterError> {
        self.broadcast().fetch_sockets().await
    }

    /// Makes every socket of the main namespace join rooms.
    pub fn sockets_join(&self, rooms: impl IntoRooms) {
        self.broadcast().sockets_join(rooms);
    }

    /// Makes every socket of the main namespace leave rooms.
    pub fn sockets_leave(&self, rooms: impl IntoRooms) {
        self.broadcast().sockets_leave(rooms);
    }

    /// Disconnects every socket of the main namespace; with `close`, their connections.
    pub fn disconnect_sockets(&self, close: bool) {
        self.broadcast().disconnect_sockets(close);
    }

    /// Emits to every socket of the main namespace and collects their acknowledgements
    /// (see [`BroadcastOperator::emit_with_ack`]).
    pub fn emit_with_ack<T: crate::FromArgs, D: serde::Serialize + ?Sized>(
        &self,
        event: &str,
        data: &D,
    ) -> crate::AckStream<T> {
        self.broadcast().emit_with_ack(event, data)
    }

    /// Every room with a member in the main namespace.
    pub async fn all_rooms(&self) -> Result<Vec<Room>, crate::adapter::AdapterError> {
        self.of("/").all_rooms().await
    }

    /// The names of the namespaces that exist now (static ones, and those dynamic namespaces
    /// created and still hold).
    pub fn namespaces(&self) -> Vec<String> {
        let map = self
            .inner
            .namespaces
            .read()
            .unwrap_or_else(|p| p.into_inner());
        map.keys().cloned().collect()
    }

    /// How many Engine.IO connections are open.
    pub fn connection_count(&self) -> usize {
        self.engine().session_count()
    }

    /// A snapshot of the connections: how many are open and still allocated, how much waits
    /// to be written to clients (frames and bytes, in total and for the most behind one),
    /// and how many were refused or cut off by the limits.
    pub fn metrics(&self) -> volley_engine::EngineMetrics {
        self.engine().metrics()
    }
}

fn normalize(name: &str) -> String {
    if name.starts_with('/') {
        name.to_owned()
    } else {
        format!("/{name}")
    }
}

/// A public socket id: 120 random bits, base64url (20 characters), like Node's.
pub(crate) fn random_id() -> Arc<str> {
    let mut bytes = [0u8; 15];
    if getrandom::fill(&mut bytes).is_err() {
        // The ids are public, so uniqueness is what matters; fall back to a counter mixed
        // with the clock rather than fail the connection.
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        bytes[..8].copy_from_slice(&n.to_le_bytes());
        bytes[8..15].copy_from_slice(&t.to_le_bytes()[..7]);
    }
    Arc::from(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// Builds a [`SocketIo`].
pub struct SocketIoBuilder {
    engine: volley_engine::EngineConfigBuilder,
    config: Config,
    adapter: AdapterFactory,
}

impl fmt::Debug for SocketIoBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SocketIoBuilder")
            .field("engine", &self.engine)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Default for SocketIoBuilder {
    fn default() -> Self {
        Self {
            adapter: local_adapter_factory(),
            engine: EngineConfig::builder().path("/socket.io/"),
            config: Config {
                connect_timeout: Duration::from_secs(45),
                ack_timeout: Duration::from_secs(5),
                max_attachments: 10,
                attachments_timeout: Duration::from_secs(10),
                max_payload: 1_000_000,
                max_namespaces_per_connection: usize::MAX,
                cleanup_empty_child_namespaces: true,
            },
        }
    }
}

impl SocketIoBuilder {
    /// The path to serve (default `/socket.io/`).
    pub fn path(mut self, path: &str) -> Self {
        self.engine = self.engine.path(path);
        self
    }

    /// Interval between heartbeats (default 25 s).
    pub fn ping_interval(mut self, d: Duration) -> Self {
        self.engine = self.engine.ping_interval(d);
        self
    }

    /// Time a client has to answer a heartbeat (default 20 s).
    pub fn ping_timeout(mut self, d: Duration) -> Self {
        self.engine = self.engine.ping_timeout(d);
        self
    }

    /// Time an upgrade to WebSocket may take (default 10 s).
    pub fn upgrade_timeout(mut self, d: Duration) -> Self {
        self.engine = self.engine.upgrade_timeout(d);
        self
    }

    /// Largest message or POST body in bytes (default 1,000,000, Node's `maxHttpBufferSize`).
    pub fn max_payload(mut self, bytes: usize) -> Self {
        self.engine = self.engine.max_payload(bytes);
        self.config.max_payload = bytes;
        self
    }

    /// Accepted transports (default both).
    pub fn transports(mut self, t: &[TransportKind]) -> Self {
        self.engine = self.engine.transports(t);
        self
    }

    /// Whether polling connections may upgrade to WebSocket (default true).
    pub fn allow_upgrades(mut self, yes: bool) -> Self {
        self.engine = self.engine.allow_upgrades(yes);
        self
    }

    /// How many packets may wait to be written to one client (default 10,000). An emit that
    /// would go past it fails with [`EmitError::QueueFull`] and closes that client's
    /// connection (reason "transport error"): it does not read fast enough. A binary packet
    /// counts for 1 + its attachments.
    pub fn max_buffered_packets(mut self, n: usize) -> Self {
        self.engine = self.engine.max_buffered_packets(n);
        self
    }

    /// How many bytes may wait to be written to one client (default 16 MiB); same policy as
    /// [`max_buffered_packets`](Self::max_buffered_packets). A single packet larger than this
    /// is refused with [`EmitError::QueueFull`] and the connection stays open.
    pub fn max_buffered_bytes(mut self, bytes: usize) -> Self {
        self.engine = self.engine.max_buffered_bytes(bytes);
        self
    }

    /// How many connections may be open at once; handshakes beyond it get HTTP 503 (default
    /// unlimited, as Node).
    pub fn max_connections(mut self, n: usize) -> Self {
        self.engine = self.engine.max_connections(n);
        self
    }

    /// Limits how often one client address may open connections (default: no limit, as
    /// Node); handshakes over it get HTTP 429 with `Retry-After`.
    pub fn handshake_rate_limit(mut self, limit: volley_engine::HandshakeRateLimit) -> Self {
        self.engine = self.engine.handshake_rate_limit(limit);
        self
    }

    /// CORS (default none, as Node).
    pub fn cors(mut self, cors: Cors) -> Self {
        self.engine = self.engine.cors(cors);
        self
    }

    /// How long a connection may stay without joining any namespace (default 45 s).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.config.connect_timeout = d;
        self
    }

    /// Default timeout of `emit_with_ack` (default 5 s).
    pub fn ack_timeout(mut self, d: Duration) -> Self {
        self.config.ack_timeout = d;
        self
    }

    /// Most binary attachments in one packet (default 10, as Node's parser).
    pub fn max_attachments(mut self, n: usize) -> Self {
        self.config.max_attachments = n;
        self
    }

    /// How many namespaces one connection may join at once (default unlimited, as Node);
    /// a CONNECT beyond it gets `CONNECT_ERROR {"message":"Too many namespaces"}`.
    pub fn max_namespaces_per_connection(mut self, n: usize) -> Self {
        self.config.max_namespaces_per_connection = n;
        self
    }

    /// Whether a namespace that a dynamic namespace created is forgotten once its last
    /// socket leaves (default true: otherwise every name a client tries stays in memory;
    /// Node's `cleanupEmptyChildNamespaces`, which defaults to false there). Handlers live on
    /// the dynamic namespace, so a namespace created again behaves the same.
    pub fn cleanup_empty_child_namespaces(mut self, yes: bool) -> Self {
        self.config.cleanup_empty_child_namespaces = yes;
        self
    }

    /// Sets the session cookie on handshakes (Node's `cookie` option; default none).
    pub fn cookie(mut self, cookie: volley_engine::Cookie) -> Self {
        self.engine = self.engine.cookie(cookie);
        self
    }

    /// How long a binary packet may wait for its attachments (default 10 s).
    pub fn attachments_timeout(mut self, d: Duration) -> Self {
        self.config.attachments_timeout = d;
        self
    }

    /// The adapter of every namespace (default: [`LocalAdapter`](crate::adapter::LocalAdapter)).
    pub fn adapter(mut self, factory: AdapterFactory) -> Self {
        self.adapter = factory;
        self
    }

    /// Changes engine settings not covered above.
    pub fn engine(
        mut self,
        f: impl FnOnce(volley_engine::EngineConfigBuilder) -> volley_engine::EngineConfigBuilder,
    ) -> Self {
        self.engine = f(self.engine);
        self
    }

    /// Builds the server. The main namespace `/` exists from the start.
    pub fn build(self) -> SocketIo {
        let inner = Arc::new(IoInner {
            config: self.config,
            adapter: self.adapter,
            engine: std::sync::OnceLock::new(),
            namespaces: RwLock::new(HashMap::new()),
            dynamic: RwLock::new(Vec::new()),
            middleware: RwLock::new(Vec::new()),
        });
        let weak = Arc::downgrade(&inner);
        let engine = Engine::new(self.engine.build(), move |socket, incoming| {
            let io = weak.upgrade();
            async move {
                if let Some(io) = io {
                    crate::connection::run(io, socket, incoming).await;
                }
            }
        });
        let _ = inner.engine.set(engine);
        let io = SocketIo { inner };
        io.of("/");
        io
    }
}
