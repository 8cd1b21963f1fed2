//! `SocketIo`: the server handle, its builder, and how it is served.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde_json::Value;
use volley_engine::Engine;

use crate::service::{SocketIoLayer, SocketIoService};

use crate::Args;
use crate::adapter::{AdapterFactory, Room};
use crate::broadcast::{BroadcastOperator, IntoRooms};
use crate::builder::{Config, SocketIoBuilder};
use crate::error::{ConnectError, EmitError};
use crate::handler::Middleware;
use crate::namespace::{DynamicNs, Matcher, Namespace, NsHandlers, NsInner, NsPredicate};
use crate::socket::Socket;
use crate::stats::{NamespaceMetrics, ServerMetrics, ServerStats};

pub(crate) struct IoInner {
    pub(crate) config: Config,
    adapter: AdapterFactory,
    pub(crate) engine: std::sync::OnceLock<Engine>,
    namespaces: RwLock<HashMap<String, Arc<NsInner>>>,
    dynamic: RwLock<Vec<DynamicNs>>,
    pub(crate) middleware: RwLock<Vec<Middleware>>,
    /// Counters of what Socket.IO adds to the engine's (see [`ServerMetrics`]).
    pub(crate) stats: Arc<ServerStats>,
    pub(crate) observers: Arc<crate::observe::Observers>,
}

impl IoInner {
    pub(crate) fn new(config: Config, adapter: AdapterFactory) -> Self {
        Self {
            config,
            adapter,
            engine: std::sync::OnceLock::new(),
            namespaces: RwLock::new(HashMap::new()),
            dynamic: RwLock::new(Vec::new()),
            middleware: RwLock::new(Vec::new()),
            stats: Arc::default(),
            observers: Arc::default(),
        }
    }

    pub(crate) fn namespace_handles(&self) -> Vec<Namespace> {
        let map = self.namespaces.read().unwrap_or_else(|p| p.into_inner());
        map.values()
            .map(|ns| Namespace { inner: ns.clone() })
            .collect()
    }

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
/// a tower service ([`service`](Self::service), e.g. with [`serve`](crate::serve)) or layer
/// ([`layer`](Self::layer), e.g. in front of an axum `Router`).
///
/// ```
/// use volley::{AckSender, Data, Socket, SocketIo};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let io = SocketIo::builder().build();
/// io.of("/").on_connection(|socket: Socket| async move {
///     socket.on("echo", |_: Socket, Data(msg): Data<String>, ack: AckSender| async move {
///         let _ = ack.send(&msg);
///     });
/// });
///
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// # let url = format!("http://{}", listener.local_addr()?);
/// tokio::spawn(volley::serve(listener, io.service()));
/// # let client = volley_client::Manager::builder(&url).build()?.socket("/").connect().await?;
/// // A client emits "echo" and waits for the acknowledgement:
/// let reply: String = client.emit_with_ack("echo", "hi").await?;
/// assert_eq!(reply, "hi");
/// // The handle keeps working from outside any handler.
/// assert_eq!(io.of("/").sockets().len(), 1);
/// io.emit("news", "to every socket of /")?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct SocketIo {
    pub(crate) inner: Arc<IoInner>,
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
    ///
    /// ```
    /// use volley::{Socket, SocketIo};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let io = SocketIo::builder().build();
    /// io.of_pattern("/room-*").on_connection(|socket: Socket| async move {
    ///     let _ = socket.emit("welcome", socket.namespace()); // e.g. "/room-42"
    /// });
    /// # let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// # let url = format!("http://{}", listener.local_addr()?);
    /// # tokio::spawn(volley::serve(listener, io.service()));
    /// # let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    /// # let client = volley_client::Manager::builder(&url).build()?.socket("/room-42")
    /// #     .on("welcome", move |_: volley_client::Socket, volley::Data(n): volley::Data<String>| {
    /// #         let tx = tx.clone();
    /// #         async move { let _ = tx.send(n); }
    /// #     })
    /// #     .connect().await?;
    /// # assert_eq!(rx.recv().await.unwrap(), "/room-42");
    /// // A client joined "/room-42": the namespace exists now.
    /// assert!(io.namespaces().contains(&"/room-42".to_string()));
    /// assert_eq!(io.of("/room-42").sockets().len(), 1);
    /// # Ok(())
    /// # }
    /// ```
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
    ///
    /// ```
    /// use std::time::Duration;
    /// use volley::{DisconnectReason, Socket, SocketIo};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let io = SocketIo::builder().build();
    /// io.of("/").on_connection(|socket: Socket| async move {
    ///     socket.on_disconnect(|socket: Socket, reason: DisconnectReason| async move {
    ///         println!("{} left: {}", socket.id(), reason.as_str()); // "server shutting down"
    ///     });
    /// });
    /// # let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// # let url = format!("http://{}", listener.local_addr()?);
    /// # tokio::spawn(volley::serve(listener, io.service()));
    /// # let client = volley_client::Manager::builder(&url).build()?.socket("/").connect().await?;
    /// // On Ctrl-C, say: let clients go within two seconds.
    /// io.close(Duration::from_secs(2)).await;
    /// assert!(io.of("/").sockets().is_empty());
    /// # Ok(())
    /// # }
    /// ```
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

    /// A snapshot of the whole server: [`metrics`](Self::metrics), each namespace's
    /// sockets, rooms, pending acknowledgements and adapter link, and the Socket.IO counters
    /// (acknowledgement latency, volatile packets dropped, refused CONNECTs).
    ///
    /// It walks the open connections and every namespace's sockets under their read locks,
    /// so it is meant for a scrape every few seconds, not for a hot path.
    pub fn server_metrics(&self) -> ServerMetrics {
        let namespaces: Vec<Arc<NsInner>> = self
            .inner
            .namespaces
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        let mut namespaces: Vec<NamespaceMetrics> = namespaces
            .iter()
            .filter(|ns| !ns.is_parent)
            .map(|ns| ns.metrics())
            .collect();
        namespaces.sort_by(|a, b| a.name.cmp(&b.name));
        self.inner.stats.snapshot(self.metrics(), namespaces)
    }
}

fn normalize(name: &str) -> String {
    if name.starts_with('/') {
        name.to_owned()
    } else {
        format!("/{name}")
    }
}
