//! A namespace socket: events, acknowledgements, the send buffer and the retry queue.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use tokio::sync::broadcast;
use volley_core::handler::erase;

use crate::error::{AckError, ConnectError, DisconnectReason};
use crate::handler::EventHandler;
use crate::manager::{Cmd, Manager};
use crate::{RawArgs, SocketId};

mod builder;
mod byte_seq;
mod emit;
mod retry;
mod state;
mod stream;

pub use builder::SocketBuilder;
pub use emit::{TimeoutEmitter, VolatileEmitter};
pub(crate) use state::{Auth, Buffered, Received, SocketInner};
pub use stream::EventStream;

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
    /// The emit fails with [`EmitError::BufferFull`](crate::EmitError::BufferFull) (the default).
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

/// A socket in one namespace of a [`Manager`]'s connection.
///
/// Cheap to clone. Emits made while the socket is not connected are buffered (bounded; see
/// [`SocketBuilder::send_buffer`]) and flushed in order once the namespace accepts the
/// socket again. Events the server sends before accepting the socket are kept (bounded by
/// the same capacity and overflow rule) and delivered, in order, once it accepts it, before
/// the `connect` event.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # // A Volley server on a free loopback port, for the example to talk to.
/// # let io = volley::SocketIo::builder().build();
/// # io.of("/").on_connection(|s: volley::Socket| async move {
/// #     s.on("count", |_: volley::Socket, ack: volley::AckSender| async move { let _ = ack.send(&3); });
/// # });
/// # let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// # let url = format!("http://{}", listener.local_addr()?);
/// # tokio::spawn(volley::serve(listener, io.service()));
/// use std::time::Duration;
/// use volley_client::{Manager, Socket, SocketEvent};
///
/// let manager = Manager::builder(&url).build()?;
/// let socket: Socket = manager.socket("/").build();
/// let mut events = socket.events();
/// // Emitted before the connection: buffered, sent once the namespace accepts the socket.
/// let count = socket.emit_with_ack::<u32>("count", &());
/// socket.connect();
/// assert_eq!(events.recv().await?, SocketEvent::Connect);
/// assert_eq!(count.await?, 3);
/// let n: u32 = socket.timeout(Duration::from_secs(5)).emit_with_ack("count", &()).await?;
/// assert_eq!(n, 3);
/// socket.disconnect();
/// # Ok(()) }
/// ```
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

    /// Whether the last namespace connection restored the previous session (connection
    /// state recovery, socket.io-client's `socket.recovered`): the server kept the socket's
    /// id, rooms and data, and sent the events missed meanwhile, in order, before this
    /// socket's `connect` handlers ran.
    ///
    /// With a server that has recovery on (Node's `connectionStateRecovery`,
    /// `volley::SocketIoBuilder::connection_state_recovery`), the socket keeps the private
    /// session id of the CONNECT answer and the offset the server appends to each event as
    /// its last argument (handlers see it: take it in [`RawArgs`](crate::RawArgs) or in a
    /// tuple), and sends both in the next CONNECT, merged into `auth`. It stays `false`
    /// after [`disconnect`](Self::disconnect) then [`connect`](Self::connect): the server
    /// does not keep a session the client left.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use volley::adapter::ConnectionStateRecovery;
    /// # use volley::{Socket as ServerSocket, SocketIo};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let io = SocketIo::builder()
    /// #     .connection_state_recovery(ConnectionStateRecovery::default())
    /// #     .build();
    /// # io.of("/").on_connection(|s: ServerSocket| async move {
    /// #     let _ = s.emit("hello", &"world");
    /// # });
    /// # let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// # let url = format!("http://{}", listener.local_addr()?);
    /// # tokio::spawn(volley::serve(listener, io.service()));
    /// use volley_client::{Manager, RawArgs, Socket};
    ///
    /// let manager = Manager::builder(&url).build()?;
    /// let socket = manager.socket("/").build();
    /// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    /// socket.on("hello", move |_: Socket, args: RawArgs| {
    ///     let tx = tx.clone();
    ///     async move {
    ///         // ["world", "<offset>"]: the server appended the offset.
    ///         let _ = tx.send(args.len());
    ///     }
    /// });
    /// socket.connect();
    /// assert_eq!(rx.recv().await, Some(2));
    /// // A first connection restores nothing.
    /// assert!(!socket.recovered());
    /// # Ok(())
    /// # }
    /// ```
    pub fn recovered(&self) -> bool {
        lock(&self.inner.state).recovered
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
            st.received.clear();
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
