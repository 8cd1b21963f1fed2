//! `SocketIoBuilder`: the server's settings.

use crate::adapter::ConnectionStateRecovery;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use volley_core::{DEFAULT_ACK_TIMEOUT, Parser, StateMap};
use volley_engine::{Cors, Engine, EngineConfig, TransportKind};

use crate::adapter::{AdapterFactory, local_adapter_factory};
use crate::server::{IoInner, SocketIo};

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
    pub(crate) parser: Parser,
    pub(crate) state: Option<Arc<StateMap>>,
    pub(crate) recovery: Option<ConnectionStateRecovery>,
}

/// A private session id for connection state recovery: 144 bits from the OS CSPRNG,
/// base64url (24 characters). A secret: never the socket id, never logged above debug.
/// `None` when the OS has no randomness to give (the socket then cannot be recovered).
pub(crate) fn random_pid() -> Option<Arc<str>> {
    let mut bytes = [0u8; 18];
    volley_engine::fill_random(&mut bytes).ok()?;
    Some(Arc::from(
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
    ))
}

/// A public socket id: 120 random bits, base64url (20 characters), like Node's.
pub(crate) fn random_id() -> Arc<str> {
    let mut bytes = [0u8; 15];
    if volley_engine::fill_random(&mut bytes).is_err() {
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

/// Builds a [`SocketIo`]; [`SocketIo::builder`] starts with Node's defaults.
///
/// ```
/// use std::time::Duration;
/// use volley::{AllowOrigin, Cors, SocketIo};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let cors = Cors::new(AllowOrigin::List(vec!["https://example.com".parse()?]));
/// let io = SocketIo::builder()
///     .cors(cors) // pages from https://example.com may connect
///     .ping_interval(Duration::from_secs(10))
///     .ack_timeout(Duration::from_secs(2))
///     .build();
/// # let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// # let url = format!("http://{}", listener.local_addr()?);
/// # tokio::spawn(volley::serve(listener, io.service()));
/// # use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// # let mut tcp = tokio::net::TcpStream::connect(url.trim_start_matches("http://")).await?;
/// # tcp.write_all(b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\
/// #     Origin: https://example.com\r\nConnection: close\r\n\r\n").await?;
/// # let mut answer = String::new();
/// # tcp.read_to_string(&mut answer).await?;
/// # assert!(answer.to_ascii_lowercase().contains("access-control-allow-origin: https://example.com"));
/// # Ok(())
/// # }
/// ```
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

/// How long a connection may stay without joining a namespace (Node's `connectTimeout`).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(45);
/// Most binary attachments in one packet (Node's parser).
pub const DEFAULT_MAX_ATTACHMENTS: usize = 10;
/// How long a binary packet may wait for its attachments.
pub const DEFAULT_ATTACHMENTS_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest message or POST body in bytes (Node's `maxHttpBufferSize`).
pub const DEFAULT_MAX_PAYLOAD: usize = 1_000_000;

impl Default for SocketIoBuilder {
    fn default() -> Self {
        Self {
            adapter: local_adapter_factory(),
            engine: EngineConfig::builder().path("/socket.io/"),
            config: Config {
                connect_timeout: DEFAULT_CONNECT_TIMEOUT,
                ack_timeout: DEFAULT_ACK_TIMEOUT,
                max_attachments: DEFAULT_MAX_ATTACHMENTS,
                attachments_timeout: DEFAULT_ATTACHMENTS_TIMEOUT,
                max_payload: DEFAULT_MAX_PAYLOAD,
                max_namespaces_per_connection: usize::MAX,
                cleanup_empty_child_namespaces: true,
                parser: Parser::default(),
                state: None,
                recovery: None,
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

    /// How many packets may wait to be written to one client (default: no bound of its own;
    /// [`max_buffered_bytes`](Self::max_buffered_bytes) bounds the count too). An emit that
    /// would go past it fails with [`EmitError::QueueFull`](crate::EmitError::QueueFull) and
    /// closes that client's connection (reason "transport error"): it does not read fast
    /// enough. A binary packet counts for 1 + its attachments.
    pub fn max_buffered_packets(mut self, n: usize) -> Self {
        self.engine = self.engine.max_buffered_packets(n);
        self
    }

    /// The memory cap of what waits to be written to one client (default 16 MiB): every
    /// packet counts its bytes plus
    /// [`FRAME_SLOT_BYTES`](volley_engine::FRAME_SLOT_BYTES) for its place in the queue. An
    /// emit that would go past it fails with
    /// [`EmitError::QueueFull`](crate::EmitError::QueueFull) and closes that client's
    /// connection (reason "transport error"), counted as a slow consumer. A single packet
    /// larger than this is refused with [`EmitError::QueueFull`](crate::EmitError::QueueFull)
    /// and the connection stays open.
    pub fn max_buffered_bytes(mut self, bytes: usize) -> Self {
        self.engine = self.engine.max_buffered_bytes(bytes);
        self
    }

    /// How long what waits to be written to one client may go without draining (default
    /// 5 s): a client that stalls for less and then reads gets everything; one whose backlog
    /// has not drained in this time is disconnected (reason "transport error"), counted as a
    /// slow consumer. `Duration::MAX` turns it off. See
    /// [`EngineConfigBuilder::slow_consumer_timeout`](volley_engine::EngineConfigBuilder::slow_consumer_timeout).
    pub fn slow_consumer_timeout(mut self, d: Duration) -> Self {
        self.engine = self.engine.slow_consumer_timeout(d);
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

    /// Connection state recovery (Node's `connectionStateRecovery`; off by default): a
    /// client that loses its connection and comes back within
    /// `max_disconnection_duration` gets its socket back (same id, rooms and data,
    /// [`Socket::recovered`](crate::Socket::recovered) true) and the packets it missed.
    ///
    /// With it on, the CONNECT reply carries a private session id (`pid`) and every event
    /// the server sends without acknowledgement and not volatile carries its offset as its
    /// last argument, as Node does. The sessions and packets live in the namespace's
    /// adapter ([`LocalAdapter`](crate::adapter::LocalAdapter) keeps them in memory,
    /// bounded by the window and by
    /// [`ConnectionStateRecovery::max_buffered_packets`](crate::adapter::ConnectionStateRecovery::max_buffered_packets)).
    pub fn connection_state_recovery(mut self, cfg: ConnectionStateRecovery) -> Self {
        self.config.recovery = Some(cfg);
        self
    }

    /// Default timeout of `emit_with_ack` (default 5 s).
    pub fn ack_timeout(mut self, d: Duration) -> Self {
        self.config.ack_timeout = d;
        self
    }

    /// The wire format of Socket.IO packets (default [`Parser::Json`], the official
    /// default parser); clients must use the same.
    pub fn parser(mut self, parser: Parser) -> Self {
        self.config.parser = parser;
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

    /// Application state that handlers receive with a [`State<T>`](crate::State) argument
    /// (one value per type; a later one of the same type replaces it). Handlers asking for a
    /// type that was not given are not run.
    ///
    /// Each handler gets a clone, so give a handle: an `Arc`, a connection pool, a channel.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use volley::{AckSender, Socket, SocketIo, State};
    ///
    /// #[derive(Clone, Default)]
    /// struct Visits(Arc<AtomicU64>);
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let visits = Visits::default();
    /// let io = SocketIo::builder().state(visits.clone()).build();
    /// io.of("/").on_connection(|socket: Socket| async move {
    ///     socket.on("visit", |_: Socket, State(visits): State<Visits>, ack: AckSender| async move {
    ///         let _ = ack.send(&(visits.0.fetch_add(1, Ordering::Relaxed) + 1));
    ///     });
    /// });
    /// # let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// # let url = format!("http://{}", listener.local_addr()?);
    /// # tokio::spawn(volley::serve(listener, io.service()));
    /// # let client = volley_client::Manager::builder(&url).build()?.socket("/").connect().await?;
    /// // From a connected client (volley-client here):
    /// let n: u64 = client.emit_args_with_ack("visit", ()).await?;
    /// assert_eq!(n, 1);
    /// assert_eq!(visits.0.load(Ordering::Relaxed), 1); // the same counter
    /// # Ok(())
    /// # }
    /// ```
    pub fn state<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        StateMap::insert_into(&mut self.config.state, value);
        self
    }

    /// Also accepts `socket.io-client` 2.x (Engine.IO v3, Socket.IO protocol v4), as Node's
    /// `allowEIO3` (default false: such clients get HTTP 400, code 5 "Unsupported protocol
    /// version").
    ///
    /// Those clients are connected to `/` at once, send their namespace query in the
    /// CONNECT (`40/nsp?x=y,`, which becomes the handshake's auth object), get `40` without
    /// a payload, and a middleware refusal as a plain value (`44/nsp,"message"`). As in
    /// Node, their socket id is derived from the Engine.IO session id (`sid`, or
    /// `/nsp#sid`): it can be used to send requests on the client's long-polling session,
    /// so do not show it to other clients.
    pub fn allow_eio3(mut self, yes: bool) -> Self {
        self.engine = self.engine.allow_eio3(yes);
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
        let inner = Arc::new(IoInner::new(self.config, self.adapter));
        let weak = Arc::downgrade(&inner);
        let engine = Engine::new(self.engine.build(), move |socket, incoming| {
            let io = weak.upgrade();
            async move {
                if let Some(io) = io {
                    // No session id here: it is a secret (it authenticates polling requests).
                    let span = tracing::info_span!(
                        "volley.connection",
                        transport = socket.transport().as_str(),
                        protocol = ?socket.protocol(),
                    );
                    tracing::Instrument::instrument(
                        crate::connection::run(io, socket, incoming),
                        span,
                    )
                    .await;
                }
            }
        });
        let _ = inner.engine.set(engine);
        let io = SocketIo { inner };
        io.of("/");
        io
    }
}
