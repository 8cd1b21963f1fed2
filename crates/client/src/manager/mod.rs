//! The manager: one Engine.IO connection, its reconnection loop, and the namespace sockets
//! multiplexed over it.
//!
//! One driver task per manager owns the session, the reassembler and the backoff. Sockets
//! talk to it through one ordered command channel; it touches socket state only in short
//! critical sections and never runs user code while holding a lock.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};
use volley_core::{Encoded, Parser, StateMap};

use crate::engine::{EngineConfig, TransportKind};
use crate::error::{DisconnectReason, TransportError};
use crate::socket::{SocketBuilder, SocketInner, lock};

mod builder;
mod connection;
mod driver;
mod routing;

pub use builder::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_RECONNECTION_DELAY, DEFAULT_RECONNECTION_DELAY_MAX,
    ManagerBuilder,
};

/// What the driver is asked to do. One channel, so that the order of emits, connects and
/// disconnects is kept.
pub(crate) enum Cmd {
    /// Write a packet (the socket was connected when it was emitted).
    Send {
        nsp: String,
        packet: Encoded,
        ack: Option<u64>,
        volatile: bool,
    },
    /// A socket wants to connect.
    Activate(String),
    /// A socket was disconnected by the application.
    Deactivate { nsp: String, was_connected: bool },
    /// A CONNECT whose auth was computed asynchronously, for session `generation`.
    ConnectPacket {
        nsp: String,
        generation: u64,
        packet: Encoded,
    },
    /// `Manager::close`.
    Close,
    /// The last handle was dropped.
    Shutdown,
}

/// The lifecycle events of a manager (its Engine.IO connection), as
/// [`Manager::events`] reports them.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ManagerEvent {
    /// A connection opened (`open`), over this transport.
    Open(TransportKind),
    /// The connection closed (`close`), with the reason its sockets were given.
    Close(DisconnectReason),
    /// Opening a connection failed (`error`).
    Error(TransportError),
    /// A reconnection attempt starts (`reconnect_attempt`), numbered from 1.
    ReconnectAttempt(u32),
    /// A reconnection attempt failed (`reconnect_error`).
    ReconnectError(TransportError),
    /// The reconnection attempts are exhausted (`reconnect_failed`).
    ReconnectFailed,
    /// A reconnection attempt succeeded (`reconnect`), with its number.
    Reconnect(u32),
    /// The connection upgraded from polling to WebSocket.
    Upgrade(TransportKind),
}

/// The reconnection settings, with the official client's defaults.
#[derive(Debug, Clone)]
pub(crate) struct Reconnection {
    pub(crate) enabled: bool,
    pub(crate) attempts: Option<u32>,
    pub(crate) delay: Duration,
    pub(crate) delay_max: Duration,
    pub(crate) randomization: f64,
    pub(crate) jitter_after_cap: bool,
    pub(crate) seed: Option<u64>,
}

/// Sends `Shutdown` when the last user handle is dropped.
struct Guard {
    cmd: mpsc::UnboundedSender<Cmd>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.cmd.send(Cmd::Shutdown);
    }
}

pub(crate) struct ManagerInner {
    engine: Arc<EngineConfig>,
    reconnection: Reconnection,
    timeout: Option<Duration>,
    cmd: mpsc::UnboundedSender<Cmd>,
    sockets: Mutex<HashMap<String, Arc<SocketInner>>>,
    events: broadcast::Sender<ManagerEvent>,
    guard: Weak<Guard>,
    /// The current session id and transport, when connected.
    current: Mutex<Option<(String, TransportKind)>>,
    parser: Parser,
    state: Option<Arc<StateMap>>,
    runtime: tokio::runtime::Handle,
}

/// One connection to a Socket.IO server, shared by the sockets of every namespace.
///
/// Cheap to clone. The connection runs on a task spawned on the tokio runtime that built the
/// manager; it ends when [`close`](Self::close) is called or every handle (managers and
/// sockets) is dropped.
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
/// use volley_client::{Manager, ManagerEvent};
///
/// let manager = Manager::builder(&url).build()?;
/// let mut events = manager.events();
/// // Two namespaces would share this one connection.
/// let socket = manager.socket("/").connect().await?;
/// assert!(matches!(events.recv().await?, ManagerEvent::Open(_)));
/// assert!(manager.engine_id().is_some());
/// let n: u32 = socket.emit_with_ack("count", &()).await?;
/// assert_eq!(n, 3);
/// manager.close();
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Manager {
    inner: Arc<ManagerInner>,
    _guard: Arc<Guard>,
}

impl fmt::Debug for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Manager")
            .field("url", &self.inner.engine.target)
            .finish_non_exhaustive()
    }
}

impl Manager {
    /// Starts configuring a manager for `url` (`http://`, `https://`, `ws://` or `wss://`;
    /// its query string is sent with every request).
    pub fn builder(url: &str) -> ManagerBuilder {
        ManagerBuilder::new(url)
    }

    /// The socket of namespace `nsp` (`"/"` for the main one), to configure and connect.
    pub fn socket(&self, nsp: &str) -> SocketBuilder {
        SocketBuilder::new(self.clone(), nsp)
    }

    /// A receiver of the manager's lifecycle events from now on.
    pub fn events(&self) -> broadcast::Receiver<ManagerEvent> {
        self.inner.events.subscribe()
    }

    /// The Engine.IO session id, while connected.
    pub fn engine_id(&self) -> Option<String> {
        lock(&self.inner.current).as_ref().map(|c| c.0.clone())
    }

    /// The transport in use, while connected.
    pub fn transport(&self) -> Option<TransportKind> {
        lock(&self.inner.current).as_ref().map(|c| c.1)
    }

    /// Disconnects every socket (reason [`DisconnectReason::ForcedClose`], `"forced close"`,
    /// as the official `manager.engine.close()`/`io.close()`), closes the connection and stops
    /// reconnecting. Sockets can be connected again afterwards.
    pub fn close(&self) {
        let _ = self.inner.cmd.send(Cmd::Close);
    }

    /// The application state handlers extract.
    pub(crate) fn state(&self) -> Option<&StateMap> {
        self.inner.state.as_deref()
    }

    pub(crate) fn register(&self, nsp: &str) -> Arc<SocketInner> {
        lock(&self.inner.sockets)
            .entry(nsp.to_owned())
            .or_insert_with(|| {
                Arc::new(SocketInner::new(
                    nsp.to_owned(),
                    self.inner.parser,
                    self.inner.cmd.clone(),
                    self.inner.runtime.clone(),
                ))
            })
            .clone()
    }
}
