//! The engine handle: opens sessions, runs the connection handler, closes everything.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use base64::Engine as _;

use crate::command::WsStream;
use crate::config::{EngineConfig, TransportKind};
use crate::error::{CloseReason, EngineError};
use crate::metrics::EngineMetrics;
use crate::ratelimit::RateLimiter;
use crate::registry::{Entry, Registry};
use crate::request::RequestInfo;
use crate::session::Incoming;
use crate::socket::{EngineSocket, Frame, Limits, Shared};
use crate::state::EngineState;

/// Starts the connection handler of a session in a task of its own. The handler's future is
/// spawned as its own type, so it lives in the task's cell: one allocation per session, not a
/// boxed future plus a cell around it.
type Handler = Arc<dyn Fn(EngineSocket, Incoming) + Send + Sync>;

/// How often [`Engine::close`] looks whether the sessions are gone.
const CLOSE_POLL: Duration = Duration::from_millis(10);

/// How long [`Engine::close`] waits, after the grace period, for the handlers of the sessions
/// it ended to see the end of [`Incoming::recv`].
const CLOSE_DRIVERS_WAIT: Duration = Duration::from_secs(1);

/// An Engine.IO v4 server: accepts sessions over long-polling and WebSocket and hands each
/// one to the connection handler as an [`EngineSocket`] (to send) and an [`Incoming`] (to
/// receive, which also drives the session).
///
/// `Engine` is a cheap handle; clone it freely. Serve it with [`Engine::service`] (a tower
/// service answering 404 outside the engine's path) or [`Engine::layer`] (in front of another
/// service, e.g. an axum `Router`).
///
/// ```no_run
/// use volley_engine::{Engine, EngineConfig};
///
/// # async fn run() -> std::io::Result<()> {
/// let engine = Engine::new(EngineConfig::default(), |socket, mut incoming| async move {
///     // Echo every message back.
///     while let Ok(msg) = incoming.recv().await {
///         let _ = match msg {
///             volley_proto::engine::Message::Text(t) => {
///                 socket.send_text(std::str::from_utf8(&t).unwrap_or_default())
///             }
///             volley_proto::engine::Message::Binary(b) => socket.send_binary(b),
///         };
///     }
/// });
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// volley_engine::serve(listener, engine.service()).await
/// # }
/// ```
#[derive(Clone)]
pub struct Engine {
    pub(crate) shared: Arc<EngineState>,
    handler: Handler,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.shared.config)
            .field("sessions", &self.shared.registry.len())
            .finish()
    }
}

impl Engine {
    /// Creates an engine that runs `handler` in a new task for every session.
    pub fn new<F, Fut>(config: EngineConfig, handler: F) -> Self
    where
        F: Fn(EngineSocket, Incoming) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |s, i| {
            tokio::spawn(handler(s, i));
        });
        let rate_limiter = config.handshake_rate_limit.map(RateLimiter::new);
        Self {
            shared: Arc::new(EngineState {
                config,
                registry: Registry::default(),
                shutting_down: AtomicBool::new(false),
                counters: Arc::default(),
                rate_limiter,
            }),
            handler,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.shared.config
    }

    /// How many sessions are open.
    pub fn session_count(&self) -> usize {
        self.shared.registry.len()
    }

    /// A snapshot of the engine's state: sessions, backlogs, and counters of refusals.
    /// Walks the open sessions, so it costs one registry lock and a few atomic loads per
    /// session.
    pub fn metrics(&self) -> EngineMetrics {
        let counters = &self.shared.counters;
        let mut m = EngineMetrics {
            sessions_allocated: counters.allocated.load(Ordering::Relaxed),
            sessions_opened_total: counters.opened.load(Ordering::Relaxed),
            slow_consumer_closes_total: counters.slow_consumer_closes.load(Ordering::Relaxed),
            handshakes_rate_limited_total: counters.rate_limited.load(Ordering::Relaxed),
            handshakes_refused_unavailable_total: counters
                .refused_unavailable
                .load(Ordering::Relaxed),
            handshakes_refused_forbidden_total: counters.refused_forbidden.load(Ordering::Relaxed),
            handshakes_refused_bad_request_total: counters
                .refused_bad_request
                .load(Ordering::Relaxed),
            rate_limited_addresses: self
                .shared
                .rate_limiter
                .as_ref()
                .map_or(0, RateLimiter::tracked),
            ..EngineMetrics::default()
        };
        self.shared.registry.add_sessions_to(&mut m, counters);
        m
    }

    /// Closes every session with [`CloseReason::ServerShuttingDown`] and refuses new ones.
    ///
    /// Each session gets its close packet after what was already queued; `close` waits until
    /// every session is gone, at most `grace`. Sessions still open then (a long-polling
    /// client that did not come back for its close packet, a WebSocket that does not drain)
    /// are ended without waiting more, and `close` returns once their handlers have seen the
    /// end of [`Incoming::recv`] (at most a second more, should a handler not poll its
    /// `Incoming`).
    pub async fn close(&self, grace: Duration) {
        self.shared.shutting_down.store(true, Ordering::Release);
        let sessions: Vec<Entry> = self.shared.registry.lock().values().cloned().collect();
        for entry in &sessions {
            entry.shared.request_close(CloseReason::ServerShuttingDown);
        }
        let now = tokio::time::Instant::now();
        // A grace period too long to add to the clock means "no limit".
        let deadline = now.checked_add(grace);
        while self.shared.registry.len() > 0
            && deadline.is_none_or(|d| tokio::time::Instant::now() < d)
        {
            tokio::time::sleep(CLOSE_POLL).await;
        }
        // The sessions still open end now: their drivers finish with the reason they were
        // closing for.
        drop(sessions);
        let remaining: Vec<Entry> = {
            let mut map = self.shared.registry.lock();
            map.drain().map(|(_, e)| e).collect()
        };
        for entry in &remaining {
            entry.shared.release();
        }
        drop(remaining);
        let deadline = tokio::time::Instant::now() + CLOSE_DRIVERS_WAIT;
        while self.shared.counters.drivers.load(Ordering::Acquire) > 0
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(CLOSE_POLL).await;
        }
    }

    pub(crate) fn accepts_sessions(&self) -> Result<(), EngineError> {
        if self.shared.shutting_down.load(Ordering::Acquire)
            || self.shared.registry.len() >= self.shared.config.max_connections
        {
            return Err(EngineError::Unavailable);
        }
        Ok(())
    }

    /// Counts a refused handshake by its reason (the rate limit counts its own refusals).
    pub(crate) fn count_refused(&self, e: &EngineError) {
        let c = &self.shared.counters;
        let counter = match e {
            EngineError::TooManyRequests { .. } => return,
            EngineError::Unavailable => &c.refused_unavailable,
            EngineError::Forbidden(_) => &c.refused_forbidden,
            _ => &c.refused_bad_request,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes a handshake token for the client's address, when a rate limit is set.
    pub(crate) fn check_rate(&self, info: &RequestInfo) -> Result<(), EngineError> {
        let (Some(limiter), Some(addr)) = (&self.shared.rate_limiter, info.remote_addr) else {
            return Ok(());
        };
        limiter.check(addr.ip()).map_err(|wait| {
            self.shared
                .counters
                .rate_limited
                .fetch_add(1, Ordering::Relaxed);
            tracing::debug!(remote = %addr, "handshake refused by the rate limit");
            EngineError::TooManyRequests {
                retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
            }
        })
    }

    /// Registers a new session and starts its handler. `ws` is set for a session that starts
    /// on WebSocket, which then gets the open packet as its first frame.
    pub(crate) fn open_session(
        &self,
        request: RequestInfo,
        ws: Option<Box<WsStream>>,
    ) -> Result<(Arc<str>, Frame), EngineError> {
        let transport = if ws.is_some() {
            TransportKind::WebSocket
        } else {
            TransportKind::Polling
        };
        let config = &self.shared.config;
        let (sid, shared) = {
            let mut map = self.shared.registry.lock();
            // Checked again here: a WebSocket handshake opens its session only once the
            // upgrade is done, and the engine may have started shutting down meanwhile.
            if map.len() >= config.max_connections
                || self.shared.shutting_down.load(Ordering::Acquire)
            {
                return Err(EngineError::Unavailable);
            }
            let sid = loop {
                let sid = new_sid()?;
                if !map.contains_key(&*sid) {
                    break sid;
                }
            };
            let shared = Arc::new(Shared::new(
                sid.clone(),
                &request,
                transport,
                Limits {
                    max_frames: config.max_buffered_packets,
                    max_bytes: config.max_buffered_bytes,
                },
                self.shared.counters.clone(),
            ));
            map.insert(
                sid.clone(),
                Entry {
                    shared: shared.clone(),
                },
            );
            (sid, shared)
        };
        let upgrades: Vec<String> =
            if transport == TransportKind::Polling && config.allow_upgrades && config.websocket {
                vec!["websocket".into()]
            } else {
                Vec::new()
            };
        let open = volley_proto::engine::OpenPacket {
            sid: sid.to_string(),
            upgrades,
            ping_interval: config.ping_interval.as_millis() as u64,
            ping_timeout: config.ping_timeout.as_millis() as u64,
            max_payload: config.max_payload as u64,
        };
        let mut buf = bytes::BytesMut::new();
        open.encode(&mut buf);
        let open = Frame::Text(buf.freeze());
        let first = ws.is_some().then(|| open.clone());
        self.shared.counters.opened.fetch_add(1, Ordering::Relaxed);
        let incoming = Incoming::new(shared.clone(), self.shared.clone(), ws, first);
        let socket = EngineSocket { shared };
        (self.handler)(socket, incoming);
        Ok((sid, open))
    }
}

/// 128 random bits from the OS CSPRNG (drawn in blocks, see
/// [`fill_random`](crate::fill_random)), base64url without padding (22 characters).
///
/// Should the OS generator ever fail, the handshake is refused rather than given a weak id.
fn new_sid() -> Result<Arc<str>, EngineError> {
    let mut bytes = [0u8; 16];
    crate::random::fill_random(&mut bytes).map_err(|_| EngineError::Unavailable)?;
    Ok(Arc::from(
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
    ))
}
