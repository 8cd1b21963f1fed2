//! The engine: configuration, the session registry and the connection handler.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use tokio::sync::mpsc;

use crate::config::{BoxFuture, EngineConfig, TransportKind};
use crate::connection::{Command, Incoming, WsStream};
use crate::error::{CloseReason, EngineError};
use crate::request::RequestInfo;
use crate::service::{EngineLayer, EngineService, NotFound};
use crate::socket::{EngineSocket, Frame, Shared};

type Handler = Arc<dyn Fn(EngineSocket, Incoming) -> BoxFuture<'static, ()> + Send + Sync>;

/// One session as the HTTP handlers see it.
#[derive(Clone)]
pub(crate) struct Entry {
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) shared: Arc<Shared>,
}

/// sid → session. The only place sessions are inserted and removed.
#[derive(Default)]
pub(crate) struct Registry {
    map: Mutex<HashMap<Arc<str>, Entry>>,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, Entry>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn get(&self, sid: &str) -> Option<Entry> {
        self.lock().get(sid).cloned()
    }

    pub(crate) fn remove(&self, sid: &str) {
        self.lock().remove(sid);
    }

    fn len(&self) -> usize {
        self.lock().len()
    }
}

pub(crate) struct EngineShared {
    pub(crate) config: EngineConfig,
    pub(crate) registry: Registry,
    handler: Handler,
    shutting_down: AtomicBool,
}

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
    pub(crate) shared: Arc<EngineShared>,
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
        let handler: Handler = Arc::new(move |s, i| Box::pin(handler(s, i)));
        Self {
            shared: Arc::new(EngineShared {
                config,
                registry: Registry::default(),
                handler,
                shutting_down: AtomicBool::new(false),
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.shared.config
    }

    /// A tower service answering the engine's path and 404 elsewhere.
    pub fn service(&self) -> EngineService<NotFound> {
        EngineService::new(self.clone(), NotFound)
    }

    /// A tower layer answering the engine's path and passing other requests to the inner
    /// service.
    pub fn layer(&self) -> EngineLayer {
        EngineLayer::new(self.clone())
    }

    /// How many sessions are open.
    pub fn session_count(&self) -> usize {
        self.shared.registry.len()
    }

    /// Closes every session with [`CloseReason::ServerShuttingDown`] and refuses new ones;
    /// waits until they are gone, at most `grace`.
    pub async fn close(&self, grace: Duration) {
        self.shared.shutting_down.store(true, Ordering::Release);
        let sessions: Vec<Entry> = self.shared.registry.lock().values().cloned().collect();
        for entry in &sessions {
            entry.shared.request_close(CloseReason::ServerShuttingDown);
        }
        let deadline = tokio::time::Instant::now() + grace;
        while self.shared.registry.len() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Sessions whose handler stopped driving them are dropped from the registry anyway.
        for entry in sessions {
            self.shared.registry.remove(&entry.shared.sid);
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

    /// Registers a new session and starts its handler. `ws` is set for a session that starts
    /// on WebSocket, which then gets the open packet as its first frame.
    pub(crate) fn open_session(
        &self,
        request: RequestInfo,
        ws: Option<Box<WsStream>>,
    ) -> Result<(Arc<str>, Frame), EngineError> {
        let transport = if ws.is_some() {
            TransportKind::Websocket
        } else {
            TransportKind::Polling
        };
        let config = &self.shared.config;
        let (tx, rx) = mpsc::channel(8);
        let (sid, shared) = {
            let mut map = self.shared.registry.lock();
            if map.len() >= config.max_connections {
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
                request,
                transport,
                config.max_buffered_packets,
            ));
            map.insert(
                sid.clone(),
                Entry {
                    commands: tx,
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
        let incoming = Incoming::new(shared.clone(), self.shared.clone(), rx, ws, first);
        let socket = EngineSocket { shared };
        tokio::spawn((self.shared.handler)(socket, incoming));
        Ok((sid, open))
    }
}

/// 128 random bits from the OS CSPRNG, base64url without padding (22 characters).
///
/// Should the OS generator ever fail, the handshake is refused rather than given a weak id.
fn new_sid() -> Result<Arc<str>, EngineError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|_| EngineError::Unavailable)?;
    Ok(Arc::from(
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
    ))
}
