//! [`ManagerBuilder`]: the manager's options, with the official client's defaults, and
//! `build`, which spawns the driver task.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};
use volley_core::{Parser, StateMap};

use super::driver::{Driver, decoder};
use super::{Guard, Manager, ManagerInner, Reconnection};
use crate::backoff::{Backoff, Rng};
use crate::engine::net::{Target, Tls};
use crate::engine::{EngineConfig, TransportKind};
use crate::error::BuildError;

/// How long one connection attempt may take (the official client's `timeout`).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// The first reconnection delay (`reconnectionDelay`).
pub const DEFAULT_RECONNECTION_DELAY: Duration = Duration::from_secs(1);
/// The longest reconnection delay (`reconnectionDelayMax`).
pub const DEFAULT_RECONNECTION_DELAY_MAX: Duration = Duration::from_secs(5);

/// Configures a [`Manager`]. Defaults are the official client's.
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
/// use volley_client::{Manager, TransportKind};
///
/// let manager = Manager::builder(&url)
///     .transports(&[TransportKind::WebSocket]) // no long-polling
///     .query("room", "lobby")
///     .header("x-trace", "1")
///     .reconnection_delay(Duration::from_millis(500))
///     .reconnection_attempts(Some(10))
///     .build()?;
/// let socket = manager.socket("/").connect().await?;
/// assert_eq!(manager.transport(), Some(TransportKind::WebSocket));
/// let n: u32 = socket.emit_with_ack("count", &()).await?;
/// assert_eq!(n, 3);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build`"]
pub struct ManagerBuilder {
    url: String,
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    transports: Vec<TransportKind>,
    upgrade: bool,
    reconnection: Reconnection,
    timeout: Option<Duration>,
    tls: Tls,
    parser: Parser,
    state: Option<Arc<StateMap>>,
}

impl ManagerBuilder {
    pub(super) fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            path: "/socket.io/".to_owned(),
            query: Vec::new(),
            headers: Vec::new(),
            transports: vec![TransportKind::Polling, TransportKind::WebSocket],
            upgrade: true,
            reconnection: Reconnection {
                enabled: true,
                attempts: None,
                delay: DEFAULT_RECONNECTION_DELAY,
                delay_max: DEFAULT_RECONNECTION_DELAY_MAX,
                randomization: 0.5,
                jitter_after_cap: false,
                seed: None,
            },
            timeout: Some(DEFAULT_CONNECT_TIMEOUT),
            tls: Tls::default_roots(),
            parser: Parser::default(),
            state: None,
        }
    }

    /// The server's path (default `/socket.io/`).
    pub fn path(mut self, path: &str) -> Self {
        let mut p = path.trim_matches('/').to_owned();
        p.insert(0, '/');
        if p.len() > 1 {
            p.push('/');
        }
        self.path = p;
        self
    }

    /// Adds a query parameter to every request.
    pub fn query(mut self, key: &str, value: &str) -> Self {
        self.query.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Adds a header to every HTTP request and to the WebSocket handshake.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The transports, in order of preference; the first opens the connection (default
    /// polling, then WebSocket).
    pub fn transports(mut self, transports: &[TransportKind]) -> Self {
        self.transports = transports.to_vec();
        self
    }

    /// Whether to upgrade from polling to WebSocket when the server offers it (default true).
    pub fn upgrade(mut self, yes: bool) -> Self {
        self.upgrade = yes;
        self
    }

    /// Whether to reconnect automatically (default true).
    pub fn reconnection(self, yes: bool) -> Self {
        self.with_reconnection(|r| r.enabled = yes)
    }

    /// How many reconnection attempts before `reconnect_failed` (default unlimited).
    pub fn reconnection_attempts(self, attempts: Option<u32>) -> Self {
        self.with_reconnection(|r| r.attempts = attempts)
    }

    /// The first reconnection delay (default 1 s; at least 1 ms).
    pub fn reconnection_delay(self, delay: Duration) -> Self {
        self.with_reconnection(|r| r.delay = delay)
    }

    /// The longest reconnection delay (default 5 s).
    pub fn reconnection_delay_max(self, delay: Duration) -> Self {
        self.with_reconnection(|r| r.delay_max = delay)
    }

    /// The jitter factor (default 0.5; values outside `(0, 1]` disable jitter).
    pub fn randomization_factor(self, factor: f64) -> Self {
        self.with_reconnection(|r| r.randomization = factor)
    }

    /// Keeps jitter once delays reach the maximum (off by default, as in JavaScript); see
    /// [`Backoff::jitter_after_cap`].
    pub fn jitter_after_cap(self, yes: bool) -> Self {
        self.with_reconnection(|r| r.jitter_after_cap = yes)
    }

    /// Seeds the jitter's random generator (for reproducible tests).
    pub fn reconnection_seed(self, seed: u64) -> Self {
        self.with_reconnection(|r| r.seed = Some(seed))
    }

    /// Changes one reconnection setting.
    fn with_reconnection(mut self, set: impl FnOnce(&mut Reconnection)) -> Self {
        set(&mut self.reconnection);
        self
    }

    /// The wire format of Socket.IO packets (default [`Parser::Json`], the official default
    /// parser); the server must use the same.
    pub fn parser(mut self, parser: Parser) -> Self {
        self.parser = parser;
        self
    }

    /// Application state that handlers receive with a [`State<T>`](crate::State) argument
    /// (one value per type; a later one of the same type replaces it).
    pub fn state<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        StateMap::insert_into(&mut self.state, value);
        self
    }

    /// How long one connection attempt may take (default 20 s; `None`: no limit).
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// The rustls configuration for `https://` and `wss://` (default: the Mozilla root
    /// certificates of `webpki-roots`).
    #[cfg(feature = "tls")]
    pub fn tls_config(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls.config = Some(config);
        self
    }

    /// Builds the manager and spawns its connection task on the current tokio runtime. It
    /// connects when its first socket does.
    pub fn build(self) -> Result<Manager, BuildError> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| {
            BuildError::Runtime(
                "Manager::build must be called within a tokio runtime (or use volley_client::blocking)"
                    .into(),
            )
        })?;
        let url = url::Url::parse(&self.url).map_err(|e| BuildError::InvalidUrl(e.to_string()))?;
        let secure = match url.scheme() {
            "http" | "ws" => false,
            "https" | "wss" => true,
            s => return Err(BuildError::InvalidUrl(format!("unsupported scheme {s:?}"))),
        };
        let host = url
            .host_str()
            .ok_or_else(|| BuildError::InvalidUrl("no host".into()))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = url
            .port_or_known_default()
            .unwrap_or(if secure { 443 } else { 80 });
        for (k, v) in &self.headers {
            http::HeaderName::from_bytes(k.as_bytes())
                .map_err(|e| BuildError::InvalidHeader(format!("{k}: {e}")))?;
            http::HeaderValue::from_str(v)
                .map_err(|e| BuildError::InvalidHeader(format!("{k}: {e}")))?;
        }
        let mut query: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        query.extend(self.query);
        let engine = Arc::new(EngineConfig {
            target: Target { host, port, secure },
            path: self.path,
            query,
            headers: self.headers,
            transports: self.transports,
            upgrade: self.upgrade,
            tls: self.tls,
            probe_timeout: Duration::from_secs(10),
        });
        let (cmd, rx) = mpsc::unbounded_channel();
        let guard = Arc::new(Guard { cmd: cmd.clone() });
        let inner = Arc::new(ManagerInner {
            engine,
            reconnection: self.reconnection.clone(),
            timeout: self.timeout,
            cmd,
            sockets: Mutex::default(),
            events: broadcast::Sender::new(64),
            guard: Arc::downgrade(&guard),
            current: Mutex::new(None),
            runtime: handle.clone(),
            parser: self.parser,
            state: self.state.clone(),
        });
        let r = &self.reconnection;
        let rng = r.seed.map(Rng::seeded).unwrap_or_else(Rng::from_entropy);
        let backoff = Backoff::new(r.delay, r.delay_max, r.randomization, rng)
            .jitter_after_cap(r.jitter_after_cap);
        let driver = Driver {
            inner: inner.clone(),
            rx,
            deferred: VecDeque::new(),
            backoff,
            generation: 0,
            decoder: decoder(self.parser),
            unsent: Vec::new(),
        };
        handle.spawn(driver.run());
        Ok(Manager {
            inner,
            _guard: guard,
        })
    }
}
