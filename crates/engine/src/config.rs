//! Engine configuration: the options Node's `engine.io` users know, with Node's defaults.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;

use crate::ratelimit::HandshakeRateLimit;
use crate::request::RequestInfo;

/// A boxed future, as returned by user hooks.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An async hook deciding whether a handshake may proceed; `Err(message)` refuses it with
/// HTTP 403 and Engine.IO error code 4 (`Forbidden`), carrying `message`.
pub type AllowRequest =
    Arc<dyn for<'a> Fn(&'a RequestInfo) -> BoxFuture<'a, Result<(), String>> + Send + Sync>;

pub use volley_proto::TransportKind;

/// Which origins may make cross-origin requests.
#[derive(Debug, Clone)]
pub enum AllowOrigin {
    /// `Access-Control-Allow-Origin: *` (not allowed together with credentials by browsers;
    /// with credentials the request's origin is mirrored instead).
    Any,
    /// The request's `Origin` is echoed back whatever it is.
    Mirror,
    /// Only these origins (exact match, e.g. `https://example.com`).
    List(Vec<HeaderValue>),
}

/// CORS settings, as Node's `cors` option. When unset (the default) no CORS header is sent,
/// exactly as Node does.
#[derive(Debug, Clone)]
pub struct Cors {
    /// Which origins are allowed.
    pub origin: AllowOrigin,
    /// Whether `Access-Control-Allow-Credentials: true` is sent.
    pub credentials: bool,
    /// Methods announced in preflight answers.
    pub methods: HeaderValue,
    /// Headers allowed in preflight answers; `None` mirrors `Access-Control-Request-Headers`.
    pub allowed_headers: Option<HeaderValue>,
}

impl Cors {
    /// CORS for any origin, without credentials.
    pub fn any() -> Self {
        Self::new(AllowOrigin::Any)
    }

    /// CORS for the given origins.
    pub fn new(origin: AllowOrigin) -> Self {
        Self {
            origin,
            credentials: false,
            methods: HeaderValue::from_static(DEFAULT_CORS_METHODS),
            allowed_headers: None,
        }
    }

    /// Sends `Access-Control-Allow-Credentials: true`.
    pub fn credentials(mut self, yes: bool) -> Self {
        self.credentials = yes;
        self
    }
}

/// The optional session cookie (Node's `cookie` option), set on the handshake response.
#[derive(Debug, Clone)]
pub struct Cookie {
    /// Cookie name, `io` by default.
    pub name: String,
    /// `Path` attribute, `/` by default.
    pub path: String,
    /// Whether `HttpOnly` is set (default true).
    pub http_only: bool,
    /// `SameSite` attribute (default `Lax`).
    pub same_site: String,
}

impl Default for Cookie {
    fn default() -> Self {
        Self {
            name: "io".into(),
            path: "/".into(),
            http_only: true,
            same_site: "Lax".into(),
        }
    }
}

/// The default of [`EngineConfigBuilder::max_buffered_bytes`]: 16 MiB.
///
/// Big enough for bursts of messages of the size Node accepts by default (16 times
/// `maxHttpBufferSize`), for any single message a client built on tungstenite accepts by
/// default (its `max_frame_size` is 16 MiB too), and for a few seconds of a broadcast storm
/// of small messages (each frame also counts its queue slot, see
/// [`EngineConfigBuilder::max_buffered_bytes`]); small enough that a client that stopped
/// reading costs at most this much (plus the kernel's socket buffers) before it is cut off.
pub const DEFAULT_MAX_BUFFERED_BYTES: usize = 16 << 20;

/// The default of [`EngineConfigBuilder::slow_consumer_timeout`]: 5 s.
///
/// Long enough for a client on a slow or briefly stalled link (a second or two without
/// reading) to catch up, well below the 45 s (`pingInterval` + `pingTimeout`) after which the
/// heartbeat would give up on it.
pub const DEFAULT_SLOW_CONSUMER_TIMEOUT: Duration = Duration::from_secs(5);

/// The default of [`EngineConfigBuilder::path`]: `/engine.io/`, as Node.
pub const DEFAULT_PATH: &str = "/engine.io/";

/// The default of [`EngineConfigBuilder::ping_interval`]: 25 s, as Node's `pingInterval`.
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_millis(25_000);

/// The default of [`EngineConfigBuilder::ping_timeout`]: 20 s, as Node's `pingTimeout`.
pub const DEFAULT_PING_TIMEOUT: Duration = Duration::from_millis(20_000);

/// The default of [`EngineConfigBuilder::upgrade_timeout`]: 10 s, as Node's `upgradeTimeout`.
pub const DEFAULT_UPGRADE_TIMEOUT: Duration = Duration::from_millis(10_000);

/// The default of [`EngineConfigBuilder::max_payload`]: 1,000,000 bytes, as Node's
/// `maxHttpBufferSize`.
pub const DEFAULT_MAX_PAYLOAD: usize = 1_000_000;

/// The default of [`EngineConfigBuilder::max_buffered_packets`]: no bound of its own.
///
/// The count of frames is bounded anyway by [`DEFAULT_MAX_BUFFERED_BYTES`], which charges
/// every frame for its queue slot: 16 MiB hold at most about 400,000 frames.
pub const DEFAULT_MAX_BUFFERED_PACKETS: usize = usize::MAX;

/// The methods a CORS preflight answer announces by default ([`Cors::methods`]), as the
/// `cors` package Node's servers use.
pub const DEFAULT_CORS_METHODS: &str = "GET,HEAD,PUT,PATCH,POST,DELETE";

/// The default of [`EngineConfigBuilder::ws_read_buffer`]: 1 KiB.
///
/// Every open WebSocket keeps this buffer for its whole life, and tungstenite zero-fills its
/// free part before each read: 1 KiB holds a batch of pipelined small messages, and costs a
/// quarter of the 4 KiB engineioxide uses (3 KiB less per idle connection).
pub const DEFAULT_WS_READ_BUFFER: usize = 1024;

/// Everything an [`Engine`](crate::Engine) can be configured with.
///
/// Build it with [`EngineConfig::builder`]; every default is Node's.
#[derive(Clone)]
pub struct EngineConfig {
    pub(crate) path: String,
    pub(crate) ping_interval: Duration,
    pub(crate) ping_timeout: Duration,
    pub(crate) upgrade_timeout: Duration,
    pub(crate) max_payload: usize,
    pub(crate) polling: bool,
    pub(crate) websocket: bool,
    pub(crate) allow_upgrades: bool,
    pub(crate) allow_eio3: bool,
    pub(crate) cors: Option<Cors>,
    pub(crate) cookie: Option<Cookie>,
    pub(crate) allow_request: Option<AllowRequest>,
    pub(crate) max_buffered_packets: usize,
    pub(crate) max_buffered_bytes: usize,
    pub(crate) slow_consumer_timeout: Duration,
    pub(crate) max_connections: usize,
    pub(crate) handshake_rate_limit: Option<HandshakeRateLimit>,
    pub(crate) ws_read_buffer: usize,
}

impl fmt::Debug for EngineConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineConfig")
            .field("path", &self.path)
            .field("ping_interval", &self.ping_interval)
            .field("ping_timeout", &self.ping_timeout)
            .field("upgrade_timeout", &self.upgrade_timeout)
            .field("max_payload", &self.max_payload)
            .field("polling", &self.polling)
            .field("websocket", &self.websocket)
            .field("allow_upgrades", &self.allow_upgrades)
            .field("allow_eio3", &self.allow_eio3)
            .field("cors", &self.cors)
            .field("cookie", &self.cookie)
            .field("allow_request", &self.allow_request.is_some())
            .field("max_buffered_packets", &self.max_buffered_packets)
            .field("max_buffered_bytes", &self.max_buffered_bytes)
            .field("slow_consumer_timeout", &self.slow_consumer_timeout)
            .field("max_connections", &self.max_connections)
            .field("handshake_rate_limit", &self.handshake_rate_limit)
            .finish()
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            path: DEFAULT_PATH.into(),
            ping_interval: DEFAULT_PING_INTERVAL,
            ping_timeout: DEFAULT_PING_TIMEOUT,
            upgrade_timeout: DEFAULT_UPGRADE_TIMEOUT,
            max_payload: DEFAULT_MAX_PAYLOAD,
            polling: true,
            websocket: true,
            allow_upgrades: true,
            allow_eio3: false,
            cors: None,
            cookie: None,
            allow_request: None,
            max_buffered_packets: DEFAULT_MAX_BUFFERED_PACKETS,
            max_buffered_bytes: DEFAULT_MAX_BUFFERED_BYTES,
            slow_consumer_timeout: DEFAULT_SLOW_CONSUMER_TIMEOUT,
            max_connections: usize::MAX,
            handshake_rate_limit: None,
            ws_read_buffer: DEFAULT_WS_READ_BUFFER,
        }
    }
}

impl EngineConfig {
    /// A builder starting from Node's defaults.
    pub fn builder() -> EngineConfigBuilder {
        EngineConfigBuilder {
            config: Self::default(),
        }
    }

    /// The path the engine answers on, always with a trailing slash.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Interval between two pings.
    pub fn ping_interval(&self) -> Duration {
        self.ping_interval
    }

    /// Time a peer has to answer a ping.
    pub fn ping_timeout(&self) -> Duration {
        self.ping_timeout
    }

    /// Largest accepted payload, in bytes.
    pub fn max_payload(&self) -> usize {
        self.max_payload
    }

    /// How long an upgrade to WebSocket may take.
    pub fn upgrade_timeout(&self) -> Duration {
        self.upgrade_timeout
    }

    /// Most frames waiting to be written on one session.
    pub fn max_buffered_packets(&self) -> usize {
        self.max_buffered_packets
    }

    /// Most bytes waiting to be written on one session (payloads plus one queue slot per
    /// frame).
    pub fn max_buffered_bytes(&self) -> usize {
        self.max_buffered_bytes
    }

    /// Longest time a session's backlog may go without draining before the session is cut.
    pub fn slow_consumer_timeout(&self) -> Duration {
        self.slow_consumer_timeout
    }

    /// Most sessions open at once.
    pub fn max_connections(&self) -> usize {
        self.max_connections
    }

    /// The handshake rate limit per client address, if any.
    pub fn handshake_rate_limit(&self) -> Option<HandshakeRateLimit> {
        self.handshake_rate_limit
    }

    /// Whether Engine.IO v3 clients are accepted.
    pub fn allows_eio3(&self) -> bool {
        self.allow_eio3
    }

    pub(crate) fn allows(&self, t: TransportKind) -> bool {
        match t {
            TransportKind::Polling => self.polling,
            TransportKind::WebSocket => self.websocket,
            _ => false,
        }
    }
}

/// Builds an [`EngineConfig`].
#[derive(Debug)]
pub struct EngineConfigBuilder {
    config: EngineConfig,
}

impl EngineConfigBuilder {
    /// The path to answer on (default `/engine.io/`). A trailing slash is added if missing.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        let mut p: String = path.into();
        if !p.starts_with('/') {
            p.insert(0, '/');
        }
        if !p.ends_with('/') {
            p.push('/');
        }
        self.config.path = p;
        self
    }

    /// Interval between two pings (default 25 s). The first ping goes out one interval after
    /// the handshake.
    pub fn ping_interval(mut self, d: Duration) -> Self {
        self.config.ping_interval = d;
        self
    }

    /// How long to wait for a pong before closing the session (default 20 s).
    pub fn ping_timeout(mut self, d: Duration) -> Self {
        self.config.ping_timeout = d;
        self
    }

    /// How long an upgrade to WebSocket may take once its probe has started (default 10 s).
    pub fn upgrade_timeout(mut self, d: Duration) -> Self {
        self.config.upgrade_timeout = d;
        self
    }

    /// The largest POST body or WebSocket message accepted, in bytes (default 1,000,000, as
    /// Node's `maxHttpBufferSize`). Advertised in the handshake.
    pub fn max_payload(mut self, bytes: usize) -> Self {
        self.config.max_payload = bytes;
        self
    }

    /// The read buffer of each WebSocket, in bytes (default [`DEFAULT_WS_READ_BUFFER`], at
    /// least 64). It is kept for as long as the connection is open, and it is also the most
    /// one read from the socket takes: a server whose clients send large messages reads them
    /// in fewer system calls with a larger one, at that much more memory per connection.
    pub fn ws_read_buffer(mut self, bytes: usize) -> Self {
        self.config.ws_read_buffer = bytes.max(64);
        self
    }

    /// Which transports are accepted (default both).
    pub fn transports(mut self, transports: &[TransportKind]) -> Self {
        self.config.polling = transports.contains(&TransportKind::Polling);
        self.config.websocket = transports.contains(&TransportKind::WebSocket);
        self
    }

    /// Whether polling sessions may upgrade to WebSocket (default true).
    pub fn allow_upgrades(mut self, yes: bool) -> Self {
        self.config.allow_upgrades = yes;
        self
    }

    /// Also accepts Engine.IO v3 clients (`EIO=3`, `socket.io-client` 2.x), as Node's
    /// `allowEIO3` (default false: their handshake gets HTTP 400, code 5 "Unsupported
    /// protocol version").
    pub fn allow_eio3(mut self, yes: bool) -> Self {
        self.config.allow_eio3 = yes;
        self
    }

    /// Answers CORS preflights and adds CORS headers (default: none, as Node).
    pub fn cors(mut self, cors: Cors) -> Self {
        self.config.cors = Some(cors);
        self
    }

    /// Sets the session cookie on handshakes (default: no cookie, as Node).
    pub fn cookie(mut self, cookie: Cookie) -> Self {
        self.config.cookie = Some(cookie);
        self
    }

    /// An async hook that can refuse a handshake (HTTP 403, code 4).
    pub fn allow_request<F>(mut self, f: F) -> Self
    where
        F: for<'a> Fn(&'a RequestInfo) -> BoxFuture<'a, Result<(), String>> + Send + Sync + 'static,
    {
        self.config.allow_request = Some(Arc::new(f));
        self
    }

    /// How many frames may wait to be written on one session (default: no bound of its own,
    /// the byte bound [`max_buffered_bytes`](Self::max_buffered_bytes) bounds the count too):
    /// queued by [`EngineSocket::send`](crate::EngineSocket::send) and not yet handed to the
    /// WebSocket or answered to a long-polling GET. The send that would go past it fails with
    /// [`SendError::Full`](crate::SendError::Full) and closes the session as a transport
    /// error: the client does not read fast enough.
    pub fn max_buffered_packets(mut self, n: usize) -> Self {
        self.config.max_buffered_packets = n.max(1);
        self
    }

    /// The memory cap of one session's outbound backlog, in bytes (default
    /// [`DEFAULT_MAX_BUFFERED_BYTES`], 16 MiB). Every frame waiting to be written counts its
    /// payload plus [`FRAME_SLOT_BYTES`](crate::FRAME_SLOT_BYTES) for its place in the queue,
    /// so that a storm of tiny messages is bounded in memory as well as a few big ones. The
    /// send that would go past it fails with [`SendError::Full`](crate::SendError::Full) and
    /// closes the session at once as a transport error, its backlog dropped (counted in
    /// [`EngineMetrics::slow_consumer_closes_total`](crate::EngineMetrics)). A single frame
    /// larger than the cap is refused with [`SendError::Full`](crate::SendError::Full) and the
    /// session stays open. Also bounds the write buffer of each WebSocket.
    pub fn max_buffered_bytes(mut self, bytes: usize) -> Self {
        self.config.max_buffered_bytes = bytes.max(1);
        self
    }

    /// How long a session's outbound backlog may go without draining (default
    /// [`DEFAULT_SLOW_CONSUMER_TIMEOUT`], 5 s): once frames wait to be written, the transport
    /// must take every one of them (the WebSocket accepts them, or a long-polling GET carries
    /// them away) within this time, or the session is closed at once as a transport error,
    /// its backlog dropped, and counted in
    /// [`EngineMetrics::slow_consumer_closes_total`](crate::EngineMetrics). A client that
    /// stalls for less than this and then reads gets everything; one that never reads is cut
    /// after this time, or sooner if its backlog reaches
    /// [`max_buffered_bytes`](Self::max_buffered_bytes). Only a backlog that never empties
    /// counts: a client reading steadily behind a busy stream is not cut as long as it
    /// catches up now and then. `Duration::MAX` turns the timeout off (the memory cap and
    /// the heartbeat still apply).
    pub fn slow_consumer_timeout(mut self, d: Duration) -> Self {
        self.config.slow_consumer_timeout = d;
        self
    }

    /// How many sessions may be open at once; handshakes beyond it get HTTP 503
    /// (default unlimited).
    pub fn max_connections(mut self, n: usize) -> Self {
        self.config.max_connections = n;
        self
    }

    /// Limits how often one client address may open sessions (default: no limit, as Node).
    /// Handshakes over the limit get HTTP 429 with a `Retry-After` header and
    /// `{"code":4,"message":"Too many requests"}`.
    pub fn handshake_rate_limit(mut self, limit: HandshakeRateLimit) -> Self {
        self.config.handshake_rate_limit = Some(limit);
        self
    }

    /// Finishes the configuration.
    pub fn build(self) -> EngineConfig {
        self.config
    }
}
