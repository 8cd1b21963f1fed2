//! Namespaces: static ones by name, dynamic ones by pattern or by an async decision.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, RwLock, Weak};

use serde_json::Value;

use std::sync::atomic::{AtomicU64, Ordering};

use volley_core::Parser;

use crate::adapter::AckStream;
use crate::adapter::{
    Adapter, AdapterError, AdapterFactory, BroadcastPacket, ConnectionStateRecovery, LocalSockets,
    Room, RoomEvent, ServerAck,
};
use crate::broadcast::BroadcastOperator;
use crate::error::{ConnectError, EmitError};
use crate::handler::{BoxFuture, ConnectHandler, Middleware};
use crate::server::IoInner;
use crate::socket::Socket;
use crate::stats::{NamespaceMetrics, ServerStats};
use crate::{Args, FromArgs, RawArgs, SocketId};

mod sockets;

/// What runs when a client joins a namespace: middleware, then the connection handler.
/// Dynamic namespaces share one set between the parent and every child it creates.
#[derive(Default)]
pub(crate) struct NsHandlers {
    pub(crate) middleware: RwLock<Vec<Middleware>>,
    pub(crate) on_connection: RwLock<Option<ConnectHandler>>,
    pub(crate) room_events: RwLock<Vec<RoomEventHandler>>,
    pub(crate) server_events: RwLock<HashMap<String, ServerEventHandler>>,
    /// The namespaces a dynamic namespace created (empty for a static one).
    pub(crate) children: RwLock<Vec<Weak<NsInner>>>,
}

type RoomEventHandler = Arc<dyn Fn(&RoomEvent) + Send + Sync>;

/// Handles an event another server sent with `server_side_emit`.
pub(crate) type ServerEventHandler =
    Arc<dyn Fn(RawArgs, Option<ServerAck>) -> BoxFuture<()> + Send + Sync>;

pub(crate) struct NsInner {
    pub(crate) name: String,
    pub(crate) io: Weak<IoInner>,
    pub(crate) handlers: Arc<NsHandlers>,
    /// Keyed by server-generated random ids, so a fast seeded hasher is safe here (a room
    /// broadcast looks every recipient up).
    pub(crate) sockets: RwLock<HashMap<SocketId, Socket, foldhash::fast::RandomState>>,
    pub(crate) adapter: Arc<dyn Adapter>,
    /// The server's wire format.
    pub(crate) parser: Parser,
    /// The application state handlers extract.
    pub(crate) state: Option<Arc<volley_core::StateMap>>,
    /// Ack ids for this namespace's emits, shared by single and broadcast emits so they
    /// never collide in one socket's table.
    next_ack_id: AtomicU64,
    /// Connection state recovery settings (none for a parent namespace).
    pub(crate) recovery: Option<ConnectionStateRecovery>,
    /// Packets for sockets being restored, sent once they are connected.
    held: Mutex<HashMap<SocketId, Vec<BroadcastPacket>>>,
    /// Whether this is the handle of a dynamic namespace, whose operations apply to every
    /// namespace it created.
    pub(crate) is_parent: bool,
    /// Whether a dynamic namespace created this one (it is dropped once empty, when the
    /// server is configured to clean up).
    pub(crate) is_child: bool,
    /// The server's counters.
    pub(crate) stats: Arc<ServerStats>,
    /// The server's observers (shared, so ones registered later are seen).
    pub(crate) observers: Arc<crate::observe::Observers>,
}

impl NsInner {
    pub(crate) fn new(
        name: String,
        io: Weak<IoInner>,
        handlers: Arc<NsHandlers>,
        factory: &AdapterFactory,
    ) -> Arc<Self> {
        Self::build(name, io, handlers, factory, false, false)
    }

    fn build(
        name: String,
        io: Weak<IoInner>,
        handlers: Arc<NsHandlers>,
        factory: &AdapterFactory,
        is_parent: bool,
        is_child: bool,
    ) -> Arc<Self> {
        let label: Arc<str> = Arc::from(name.as_str());
        let (parser, state, recovery, stats, observers) = io
            .upgrade()
            .map(|io| {
                (
                    io.config.parser,
                    io.config.state.clone(),
                    io.config.recovery,
                    io.stats.clone(),
                    io.observers.clone(),
                )
            })
            .unwrap_or_default();
        let recovery = recovery.filter(|_| !is_parent);
        Arc::new_cyclic(|me: &Weak<NsInner>| Self {
            name,
            io,
            handlers,
            sockets: RwLock::new(HashMap::default()),
            adapter: factory(LocalSockets::new(label, me.clone()).with_recovery(recovery)),
            parser,
            state,
            next_ack_id: AtomicU64::new(0),
            recovery,
            held: Mutex::new(HashMap::new()),
            is_parent,
            is_child,
            stats,
            observers,
        })
    }

    /// A namespace created by a dynamic one, for a name a client asked for.
    pub(crate) fn new_child(
        name: String,
        io: Weak<IoInner>,
        handlers: Arc<NsHandlers>,
        factory: &AdapterFactory,
    ) -> Arc<Self> {
        Self::build(name, io, handlers, factory, false, true)
    }

    /// The handle of a dynamic namespace: it has no sockets of its own.
    pub(crate) fn new_parent(
        label: String,
        io: Weak<IoInner>,
        handlers: Arc<NsHandlers>,
    ) -> Arc<Self> {
        let factory: AdapterFactory = crate::adapter::local_adapter_factory();
        Self::build(label, io, handlers, &factory, true, false)
    }

    /// For a dynamic namespace's handle, the namespaces it created so far.
    pub(crate) fn children(&self) -> Vec<Arc<NsInner>> {
        self.handlers
            .children
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter_map(Weak::upgrade)
            .collect()
    }

    pub(crate) fn next_ack_id(&self) -> u64 {
        self.next_ack_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn server_event(&self, event: &str, args: RawArgs, ack: Option<ServerAck>) {
        let handler = self
            .handlers
            .server_events
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(event)
            .cloned();
        if let Some(h) = handler {
            crate::handler::run_now_or_spawn(h(args, ack));
        }
    }

    pub(crate) fn room_event(&self, event: RoomEvent) {
        let handlers = self
            .handlers
            .room_events
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for h in handlers {
            h(&event);
        }
        self.observers.each(|o| o.room_event(&self.name, &event));
    }

    /// Its sockets, pending acknowledgements and adapter, now.
    pub(crate) fn metrics(&self) -> NamespaceMetrics {
        let sockets = self.sockets();
        let mut m = NamespaceMetrics::default();
        m.name.clone_from(&self.name);
        m.sockets = sockets.len();
        m.pending_acks = sockets.iter().map(Socket::pending_acks).sum();
        m.adapter = self.adapter.stats();
        m
    }

    pub(crate) fn io(&self) -> Option<Arc<IoInner>> {
        self.io.upgrade()
    }

    pub(crate) fn add_socket(&self, socket: &Socket) {
        let mut s = self.sockets.write().unwrap_or_else(|p| p.into_inner());
        s.insert(socket.id().clone(), socket.clone());
    }

    pub(crate) fn remove_socket(&self, socket: &Socket) {
        let now_empty = {
            let mut s = self.sockets.write().unwrap_or_else(|p| p.into_inner());
            s.remove(socket.id());
            s.is_empty()
        };
        if now_empty
            && self.is_child
            && let Some(io) = self.io()
        {
            io.drop_empty_child(self);
        }
    }

    pub(crate) fn get(&self, id: &str) -> Option<Socket> {
        let s = self.sockets.read().unwrap_or_else(|p| p.into_inner());
        s.get(id).cloned()
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<SocketId, Vec<BroadcastPacket>>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends the packets held for a restored socket, now connected, and stops holding.
    pub(crate) fn release(&self, socket: &Socket) {
        let mut held = self.held();
        for p in held.remove(socket.id()).unwrap_or_default() {
            socket.send_broadcast(p.encoded(), false);
        }
    }

    /// Stops holding packets for a socket that was not restored after all.
    pub(crate) fn unhold(&self, id: &str) {
        self.held().remove(id);
    }

    pub(crate) fn sockets(&self) -> Vec<Socket> {
        let s = self.sockets.read().unwrap_or_else(|p| p.into_inner());
        s.values().cloned().collect()
    }
}

/// A namespace handle, as Node's `io.of(name)`: set its middleware and connection handler,
/// list its sockets, emit to all of them or to some rooms. Cheap to clone.
///
/// A dynamic namespace's handle configures every child namespace it creates.
///
/// ```
/// use volley::{ConnectError, Socket, SocketIo};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let io = SocketIo::builder().build();
/// let chat = io.of("/chat");
/// chat.middleware(|socket: Socket| async move {
///     // Runs before the socket joins; an error is the client's `connect_error`.
///     match socket.handshake().auth()["name"].as_str() {
///         Some(_) => Ok(()),
///         None => Err(ConnectError::new("who are you?")),
///     }
/// })
/// .on_connection(|socket: Socket| async move {
///     socket.join("lobby");
/// });
/// # let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// # let url = format!("http://{}", listener.local_addr()?);
/// # tokio::spawn(volley::serve(listener, io.service()));
/// # let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
/// # let client = volley_client::Manager::builder(&url).build()?.socket("/chat")
/// #     .auth(serde_json::json!({ "name": "Ada" }))
/// #     .on("news", move |_: volley_client::Socket, volley::Data(text): volley::Data<String>| {
/// #         let tx = tx.clone();
/// #         async move { let _ = tx.send(text); }
/// #     })
/// #     .connect().await?;
/// # let refused = volley_client::Manager::builder(&url).build()?.socket("/chat").connect().await;
/// # assert_eq!(refused.unwrap_err().message(), "who are you?");
///
/// // Later, from anywhere: everyone in the lobby of /chat.
/// chat.to("lobby").emit("news", "welcome")?;
/// # assert_eq!(rx.recv().await.unwrap(), "welcome");
/// assert_eq!(chat.sockets().len(), 1); // the client with a name; the one without was refused
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Namespace {
    pub(crate) inner: Arc<NsInner>,
}

impl fmt::Debug for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Namespace")
            .field("name", &self.inner.name)
            .finish()
    }
}

impl Namespace {
    /// The namespace name (for a dynamic namespace's handle, its pattern).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Sets the handler run for each socket that joins, after middleware accepted it.
    pub fn on_connection<F, Fut>(&self, handler: F) -> &Self
    where
        F: Fn(Socket) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let h: ConnectHandler = Arc::new(move |s| Box::pin(handler(s)));
        *self
            .inner
            .handlers
            .on_connection
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Some(h);
        self
    }

    /// Adds a middleware, run in order for each socket before it joins; an `Err` refuses
    /// the socket with `CONNECT_ERROR` (the client's `connect_error`, with `message` and
    /// `data`).
    pub fn middleware<F, Fut>(&self, middleware: F) -> &Self
    where
        F: Fn(Socket) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), ConnectError>> + Send + 'static,
    {
        let m: Middleware = Arc::new(move |s| Box::pin(middleware(s)));
        self.inner
            .handlers
            .middleware
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(m);
        self
    }

    /// The sockets connected to this namespace on this server.
    pub fn sockets(&self) -> Vec<Socket> {
        self.inner.sockets()
    }

    /// A connected socket by id (on this server).
    pub fn get_socket(&self, id: &str) -> Option<Socket> {
        self.inner.get(id)
    }

    /// Observes room lifecycle events (create, delete, join, leave), as Node's adapter
    /// events. The handler runs synchronously where the change happens: keep it short.
    pub fn on_room_event<F>(&self, handler: F) -> &Self
    where
        F: Fn(&RoomEvent) + Send + Sync + 'static,
    {
        self.inner
            .handlers
            .room_events
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::new(handler));
        self
    }

    /// The adapter of this namespace.
    pub fn adapter(&self) -> &Arc<dyn Adapter> {
        &self.inner.adapter
    }

    /// A broadcast to every socket of the namespace; narrow it with `to`, `except`, ...
    pub fn broadcast(&self) -> BroadcastOperator {
        BroadcastOperator::new(self.inner.clone())
    }

    /// Targets the sockets in `rooms` (one room, or several: their union).
    pub fn to(&self, rooms: impl crate::broadcast::IntoRooms) -> BroadcastOperator {
        self.broadcast().to(rooms)
    }

    /// Same as [`to`](Self::to).
    pub fn within(&self, rooms: impl crate::broadcast::IntoRooms) -> BroadcastOperator {
        self.to(rooms)
    }

    /// Excludes the sockets in `rooms`.
    pub fn except(&self, rooms: impl crate::broadcast::IntoRooms) -> BroadcastOperator {
        self.broadcast().except(rooms)
    }

    /// Only this server's sockets.
    pub fn local(&self) -> BroadcastOperator {
        self.broadcast().local()
    }

    /// Drops the packet for sockets that cannot take it now.
    pub fn volatile(&self) -> BroadcastOperator {
        self.broadcast().volatile()
    }

    /// Sets the acknowledgement timeout of the next broadcast.
    pub fn timeout(&self, d: std::time::Duration) -> BroadcastOperator {
        self.broadcast().timeout(d)
    }

    /// The namespace's sockets, wherever they are connected.
    pub async fn fetch_sockets(&self) -> Result<Vec<crate::RemoteSocket>, AdapterError> {
        self.broadcast().fetch_sockets().await
    }

    /// Makes every socket of the namespace join rooms.
    pub fn sockets_join(&self, rooms: impl crate::broadcast::IntoRooms) {
        self.broadcast().sockets_join(rooms);
    }

    /// Makes every socket of the namespace leave rooms.
    pub fn sockets_leave(&self, rooms: impl crate::broadcast::IntoRooms) {
        self.broadcast().sockets_leave(rooms);
    }

    /// Disconnects every socket of the namespace; with `close`, their whole connections.
    pub fn disconnect_sockets(&self, close: bool) {
        self.broadcast().disconnect_sockets(close);
    }

    /// Emits to every socket of the namespace.
    pub fn emit<T: serde::Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
    ) -> Result<(), EmitError> {
        self.broadcast().emit(event, data)
    }

    /// Emits with several arguments to every socket of the namespace.
    pub fn emit_args(&self, event: &str, args: impl Args) -> Result<(), EmitError> {
        self.broadcast().emit_args(event, args)
    }

    /// Handles `event` sent by another server with `server_side_emit`.
    pub fn on_server_event<F, Fut>(&self, event: &str, handler: F) -> &Self
    where
        F: Fn(RawArgs, Option<ServerAck>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let h: ServerEventHandler = Arc::new(move |a, ack| Box::pin(handler(a, ack)));
        self.inner
            .handlers
            .server_events
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(event.to_owned(), h);
        self
    }

    /// Sends an event to the other servers of the cluster (Node's `serverSideEmit`); without
    /// a cluster adapter nobody receives it.
    pub async fn server_side_emit(&self, event: &str, args: impl Args) -> Result<(), AdapterError> {
        crate::broadcast::server_side_emit::<RawArgs>(&self.inner, event, &args, None).await?;
        Ok(())
    }

    /// Like [`server_side_emit`](Self::server_side_emit), collecting one answer per other
    /// server until all answered or `timeout`.
    pub async fn server_side_emit_with_ack<T: FromArgs>(
        &self,
        event: &str,
        args: impl Args,
        timeout: std::time::Duration,
    ) -> Result<AckStream<T>, AdapterError> {
        crate::broadcast::server_side_emit::<T>(&self.inner, event, &args, Some(timeout))
            .await?
            .ok_or(AdapterError::Closed)
    }

    /// How many servers share this namespace (1 without a cluster adapter).
    pub async fn server_count(&self) -> Result<usize, AdapterError> {
        self.inner.adapter.server_count().await
    }

    /// Every room with a member (cluster-wide with a cluster adapter).
    pub async fn all_rooms(&self) -> Result<Vec<Room>, AdapterError> {
        self.inner.adapter.all_rooms().await
    }
}

/// Decides whether a dynamic namespace exists: `async fn(name, auth) -> bool`.
pub(crate) type NsPredicate = Arc<dyn Fn(&str, &Value) -> BoxFuture<bool> + Send + Sync>;

pub(crate) enum Matcher {
    /// A name pattern where `*` matches any run of characters other than `/`.
    Pattern(String),
    /// An async decision.
    Predicate(NsPredicate),
}

pub(crate) struct DynamicNs {
    pub(crate) matcher: Matcher,
    pub(crate) handlers: Arc<NsHandlers>,
}

impl DynamicNs {
    pub(crate) async fn matches(&self, name: &str, auth: &Value) -> bool {
        match &self.matcher {
            Matcher::Pattern(p) => glob_match(p.as_bytes(), name.as_bytes()),
            Matcher::Predicate(f) => f(name, auth).await,
        }
    }
}

/// `*` matches any run of bytes except `/`; everything else matches itself.
///
/// The name comes from the client, so this runs in O(pattern × name) time with one row of
/// state, whatever the pattern (no backtracking).
pub(crate) fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    // reach[i]: the first i bytes of the pattern match the name read so far.
    let mut reach = vec![false; pattern.len() + 1];
    reach[0] = true;
    close_stars(pattern, &mut reach);
    for &c in name {
        let mut next = vec![false; pattern.len() + 1];
        for (i, &p) in pattern.iter().enumerate() {
            if !reach[i] {
                continue;
            }
            if p == b'*' {
                if c != b'/' {
                    next[i] = true; // the star takes this byte and may take more
                }
            } else if p == c {
                next[i + 1] = true;
            }
        }
        close_stars(pattern, &mut next);
        if !next.iter().any(|&r| r) {
            return false;
        }
        reach = next;
    }
    reach[pattern.len()]
}

/// A star may also match nothing: whoever reaches it reaches past it.
fn close_stars(pattern: &[u8], reach: &mut [bool]) {
    for (i, &p) in pattern.iter().enumerate() {
        if p == b'*' && reach[i] {
            reach[i + 1] = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs() {
        assert!(glob_match(b"/room-*", b"/room-1"));
        assert!(glob_match(b"/room-*", b"/room-"));
        assert!(!glob_match(b"/room-*", b"/room-1/x"));
        assert!(glob_match(b"/a/*/c", b"/a/b/c"));
        assert!(!glob_match(b"/a", b"/ab"));
        assert!(glob_match(b"*", b""));
        assert!(glob_match(b"/a**b", b"/axxb"));
        assert!(!glob_match(b"/a*b", b"/a/b"));
        // Adversarial: many stars against a long name without the final byte.
        let name = vec![b'a'; 100_000];
        assert!(!glob_match(b"*a*a*a*a*a*a*a*b", &name));
    }
}
