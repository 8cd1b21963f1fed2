//! Observing a server from the outside: sockets joining and leaving any namespace (dynamic
//! ones included), room changes, and per-socket data changes, for tools that watch a whole
//! server (an admin UI, metrics) without taking the namespaces' own handlers.
//!
//! An [`Observer`] is registered once with [`SocketIo::observe`]; every method has an empty
//! default, so an observer implements only what it needs. Observers run synchronously where
//! the change happens, outside the server's locks: keep them short (count, or hand the work
//! to a task). With no observer registered, the server pays one atomic load per change.
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use volley::{DisconnectReason, Observer, Socket, SocketIo};
//!
//! #[derive(Default)]
//! struct Count(AtomicUsize);
//!
//! impl Observer for Count {
//!     fn socket_connected(&self, _socket: &Socket) {
//!         self.0.fetch_add(1, Ordering::Relaxed);
//!     }
//!     fn socket_disconnected(&self, _socket: &Socket, _reason: DisconnectReason) {
//!         self.0.fetch_sub(1, Ordering::Relaxed);
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let io = SocketIo::builder().build();
//! let count = Arc::new(Count::default());
//! io.observe(count.clone());
//! # let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! # let url = format!("http://{}", listener.local_addr()?);
//! # tokio::spawn(volley::serve(listener, io.service()));
//! let client = volley_client::Manager::builder(&url).build()?.socket("/").connect().await?;
//! assert_eq!(count.0.load(Ordering::Relaxed), 1); // counted before the connection handler ran
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use crate::adapter::RoomEvent;
use crate::error::DisconnectReason;
use crate::namespace::Namespace;
use crate::server::SocketIo;
use crate::socket::Socket;

/// Watches a whole server; see the [module docs](self). Every method defaults to nothing.
pub trait Observer: Send + Sync + 'static {
    /// A socket joined a namespace: it is registered and its CONNECT answered, and the
    /// namespace's connection handler has not run yet.
    fn socket_connected(&self, socket: &Socket) {
        let _ = socket;
    }

    /// A socket left its namespace (it already left its rooms); its `disconnect` handlers
    /// run after this.
    fn socket_disconnected(&self, socket: &Socket, reason: DisconnectReason) {
        let _ = (socket, reason);
    }

    /// A room of namespace `namespace` changed on this server (a socket joined or left, a
    /// room was created or deleted), as the namespace's
    /// [`on_room_event`](Namespace::on_room_event) handlers see it.
    fn room_event(&self, namespace: &str, event: &RoomEvent) {
        let _ = (namespace, event);
    }

    /// A socket's data was replaced ([`Socket::set_data`]).
    fn data_changed(&self, socket: &Socket) {
        let _ = socket;
    }
}

/// The observers of one server, shared by its namespaces.
#[derive(Default)]
pub(crate) struct Observers {
    any: AtomicBool,
    list: RwLock<Vec<Arc<dyn Observer>>>,
}

impl fmt::Debug for Observers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Observers")
            .field("count", &self.snapshot().len())
            .finish()
    }
}

impl Observers {
    fn add(&self, o: Arc<dyn Observer>) {
        self.list.write().unwrap_or_else(|p| p.into_inner()).push(o);
        self.any.store(true, Ordering::Release);
    }

    fn snapshot(&self) -> Vec<Arc<dyn Observer>> {
        self.list.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Runs `f` for each observer, with no lock held (an observer may register another).
    pub(crate) fn each(&self, f: impl Fn(&dyn Observer)) {
        if !self.any.load(Ordering::Acquire) {
            return;
        }
        for o in self.snapshot() {
            f(o.as_ref());
        }
    }
}

impl SocketIo {
    /// Registers an [`Observer`] of every namespace, present and future.
    pub fn observe(&self, observer: Arc<dyn Observer>) {
        self.inner.observers.add(observer);
    }

    /// Handles to the namespaces that exist now (those [`namespaces`](Self::namespaces)
    /// names), without creating any: unlike [`of`](Self::of), a dynamic namespace's child
    /// that was dropped once empty stays dropped.
    pub fn namespace_handles(&self) -> Vec<Namespace> {
        self.inner.namespace_handles()
    }
}

impl Socket {
    /// An id of the underlying connection, the same for every socket a client opened on it
    /// (one per namespace), as Node's `socket.client.id`; tools use it to group sockets by
    /// client. It is derived from the Engine.IO session id with a key random per process,
    /// so it reveals nothing of that secret.
    pub fn client_id(&self) -> String {
        use std::hash::BuildHasher;
        static KEY: std::sync::OnceLock<std::hash::RandomState> = std::sync::OnceLock::new();
        let hash = KEY
            .get_or_init(std::hash::RandomState::new)
            .hash_one(self.inner.conn.engine.sid());
        format!("{hash:016x}")
    }
}
