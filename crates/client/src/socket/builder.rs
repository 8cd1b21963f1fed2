//! [`SocketBuilder`]: a namespace socket's options and handlers, registered before it
//! connects.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::state::{Auth, SocketOptions};
use super::{Overflow, Socket, write};
use crate::RawArgs;
use crate::error::{ConnectError, DisconnectReason};
use crate::handler::EventHandler;
use crate::manager::Manager;

/// The options a [`SocketBuilder`] sets (`None`: keep the socket's).
#[derive(Default)]
struct OptionsPatch {
    auth: Option<Auth>,
    ack_timeout: Option<Option<Duration>>,
    retries: Option<u32>,
    buffer: Option<(usize, Overflow)>,
}

impl OptionsPatch {
    fn apply(self, opts: &mut SocketOptions) {
        if let Some(auth) = self.auth {
            opts.auth = auth;
        }
        if let Some(t) = self.ack_timeout {
            opts.ack_timeout = t;
        }
        if let Some(r) = self.retries {
            opts.retries = r;
        }
        if let Some((capacity, overflow)) = self.buffer {
            opts.buffer_capacity = capacity;
            opts.overflow = overflow;
        }
    }
}

/// A deferred registration of a [`SocketBuilder`].
type Setup = Box<dyn FnOnce(&Socket) + Send>;

/// Configures a namespace socket; from [`Manager::socket`].
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
/// use volley_client::{AckSender, Data, Manager, Overflow, Socket};
///
/// let manager = Manager::builder(&url).build()?;
/// let socket = manager
///     .socket("/")
///     .auth(serde_json::json!({ "token": "abc" }))
///     .ack_timeout(Duration::from_secs(10))
///     .send_buffer(100, Overflow::DropOldest)
///     .on("greet", |_: Socket, Data(name): Data<String>, ack: AckSender| async move {
///         let _ = ack.send(&format!("hello {name}"));
///     })
///     .on_disconnect(|_: Socket, reason| async move { println!("left: {reason}") })
///     .connect()
///     .await?;
/// let n: u32 = socket.emit_with_ack("count", &()).await?;
/// assert_eq!(n, 3);
/// # Ok(()) }
/// ```
#[must_use = "a socket builder does nothing until `connect` or `build`"]
pub struct SocketBuilder {
    manager: Manager,
    nsp: String,
    /// The options this builder sets; the others keep the socket's current values.
    opts: OptionsPatch,
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
            opts: OptionsPatch::default(),
            setup: Vec::new(),
        }
    }

    /// A fixed `auth` object sent with every CONNECT.
    pub fn auth(mut self, auth: impl Serialize) -> Self {
        self.opts.auth = Some(match serde_json::to_value(auth) {
            Ok(Value::Null) | Err(_) => Auth::None,
            Ok(v) => Auth::Static(v),
        });
        self
    }

    /// An `auth` object computed again for every CONNECT, reconnections included (e.g. to
    /// fetch a fresh token). `None` sends no auth.
    pub fn auth_with<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Option<Value>> + Send + 'static,
    {
        self.opts.auth = Some(Auth::Dynamic(Arc::new(move || Box::pin(f()))));
        self
    }

    /// The default timeout of [`Socket::emit_with_ack`] (none by default, as in JavaScript:
    /// the acknowledgement is awaited until it comes or the socket disconnects).
    pub fn ack_timeout(mut self, timeout: Duration) -> Self {
        self.opts.ack_timeout = Some(Some(timeout));
        self
    }

    /// At-least-once delivery: every emit waits for the server's acknowledgement (within
    /// [`ack_timeout`](Self::ack_timeout)) and is sent again, up to `retries` more times,
    /// across reconnections. Events go out one at a time, in order. The server must
    /// acknowledge every event, and may see duplicates.
    pub fn retries(mut self, retries: u32) -> Self {
        self.opts.retries = Some(retries);
        self
    }

    /// The send buffer of a disconnected socket: at most `capacity` emits (1024 by default;
    /// 0 disables buffering), and what to do when it is full.
    pub fn send_buffer(mut self, capacity: usize, overflow: Overflow) -> Self {
        self.opts.buffer = Some((capacity, overflow));
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

    /// The socket, configured but not connecting yet ([`Socket::connect`] starts it).
    ///
    /// A manager has one socket per namespace. Building a namespace that already has one
    /// returns that socket, merged: the options set on this builder replace the socket's,
    /// the options it does not set keep their current values (they are not reset to the
    /// defaults), and its handlers are added to the socket's (an event handler replaces the
    /// one of the same event, as [`Socket::on`] does). A connected socket stays connected;
    /// a new `auth` is used from the next CONNECT on.
    pub fn build(self) -> Socket {
        let inner = self.manager.register(&self.nsp);
        self.opts.apply(&mut write(&inner.opts));
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
