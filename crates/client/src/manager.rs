//! The manager: one Engine.IO connection, its reconnection loop, and the namespace sockets
//! multiplexed over it.
//!
//! One driver task per manager owns the session, the reassembler and the backoff. Sockets
//! talk to it through one ordered command channel; it touches socket state only in short
//! critical sections and never runs user code while holding a lock.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{broadcast, mpsc};
use volley_core::parser::Decoder;
use volley_core::{Encoded, EncodedFrame, Parser, StateMap};
use volley_proto::engine::{Message, Packet as EnginePacket};
use volley_proto::socket::{DecodeLimits, Packet, PacketData, PacketType};

use crate::backoff::{Backoff, Rng};
use crate::engine::net::{Target, Tls};
use crate::engine::{EngineConfig, Session, SessionEvent, TransportKind};
use crate::error::{
    BuildError, ConnectError, DisconnectReason, TransportError, TransportErrorKind,
};
use crate::handler::{AckSender, run_now_or_spawn};
use crate::socket::{
    Auth, Buffered, Socket, SocketBuilder, SocketEvent, SocketInner, Status, lock, read,
};
use crate::{RawArgs, SocketId};

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
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use volley_client::{Data, Manager, Socket};
///
/// let manager = Manager::builder("http://localhost:3000").build()?;
/// let socket = manager
///     .socket("/chat")
///     .auth(serde_json::json!({ "token": "abc" }))
///     .on("message", |_: Socket, Data(text): Data<String>| async move {
///         println!("{text}");
///     })
///     .connect()
///     .await?;
/// socket.emit("message", "hello")?;
/// let answer: String = socket.timeout(std::time::Duration::from_secs(5)).emit_with_ack("ping", &()).await?;
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

    /// Disconnects every socket ("io client disconnect"), closes the connection and stops
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

/// How long one connection attempt may take (the official client's `timeout`).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// The first reconnection delay (`reconnectionDelay`).
pub const DEFAULT_RECONNECTION_DELAY: Duration = Duration::from_secs(1);
/// The longest reconnection delay (`reconnectionDelayMax`).
pub const DEFAULT_RECONNECTION_DELAY_MAX: Duration = Duration::from_secs(5);

/// Configures a [`Manager`]. Defaults are the official client's.
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
    fn new(url: &str) -> Self {
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
    pub fn reconnection(mut self, yes: bool) -> Self {
        self.reconnection.enabled = yes;
        self
    }

    /// How many reconnection attempts before `reconnect_failed` (default unlimited).
    pub fn reconnection_attempts(mut self, attempts: Option<u32>) -> Self {
        self.reconnection.attempts = attempts;
        self
    }

    /// The first reconnection delay (default 1 s; at least 1 ms).
    pub fn reconnection_delay(mut self, delay: Duration) -> Self {
        self.reconnection.delay = delay;
        self
    }

    /// The longest reconnection delay (default 5 s).
    pub fn reconnection_delay_max(mut self, delay: Duration) -> Self {
        self.reconnection.delay_max = delay;
        self
    }

    /// The jitter factor (default 0.5; values outside `(0, 1]` disable jitter).
    pub fn randomization_factor(mut self, factor: f64) -> Self {
        self.reconnection.randomization = factor;
        self
    }

    /// Keeps jitter once delays reach the maximum (off by default, as in JavaScript); see
    /// [`Backoff::jitter_after_cap`].
    pub fn jitter_after_cap(mut self, yes: bool) -> Self {
        self.reconnection.jitter_after_cap = yes;
        self
    }

    /// Seeds the jitter's random generator (for reproducible tests).
    pub fn reconnection_seed(mut self, seed: u64) -> Self {
        self.reconnection.seed = Some(seed);
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

enum Phase {
    Idle,
    Opening(u32),
    Waiting,
    Open(Box<Session>),
    Done,
}

struct Driver {
    inner: Arc<ManagerInner>,
    rx: mpsc::UnboundedReceiver<Cmd>,
    /// Commands taken out of the channel while draining it at a disconnect.
    deferred: VecDeque<Cmd>,
    backoff: Backoff,
    /// Counts sessions, so that a CONNECT prepared for an old one is not sent on a new one.
    generation: u64,
    decoder: Decoder,
    /// Events taken from the channel but not written when the session ended.
    unsent: Vec<(String, Buffered)>,
}

/// The most binary attachments one packet from the server may have. The server is the peer
/// the application chose; the official client sets no limit at all.
const MAX_ATTACHMENTS: usize = 1024;

fn decoder(parser: Parser) -> Decoder {
    parser.decoder(DecodeLimits {
        max_attachments: MAX_ATTACHMENTS,
    })
}

/// The Engine.IO packets of a Socket.IO packet: its text, then its attachments.
fn frames(packet: Encoded) -> Vec<EnginePacket> {
    packet
        .frames()
        .map(|f| match f {
            // The engine writes the message type itself.
            EncodedFrame::Text(t) => EnginePacket::Message(Message::Text(t.slice(1..))),
            EncodedFrame::Binary(b) => EnginePacket::Message(Message::Binary(b)),
        })
        .collect()
}

/// Whether a packet is an acknowledgement (meaningless on another connection).
fn is_ack(packet: &Encoded) -> bool {
    matches!(packet.kind(), Some(PacketType::Ack | PacketType::BinaryAck))
}

impl Driver {
    fn emit(&self, ev: ManagerEvent) {
        let _ = self.inner.events.send(ev);
    }

    fn sockets(&self) -> Vec<Arc<SocketInner>> {
        lock(&self.inner.sockets).values().cloned().collect()
    }

    fn socket(&self, nsp: &str) -> Option<Arc<SocketInner>> {
        lock(&self.inner.sockets).get(nsp).cloned()
    }

    fn any_active(&self) -> bool {
        self.sockets().iter().any(|s| lock(&s.state).active)
    }

    /// A user handle on a socket, for handlers; none once every user handle is gone.
    fn handle(&self, socket: &Arc<SocketInner>) -> Option<Socket> {
        let guard = self.inner.guard.upgrade()?;
        Some(Socket {
            inner: socket.clone(),
            manager: Manager {
                inner: self.inner.clone(),
                _guard: guard,
            },
        })
    }

    async fn next_cmd(&mut self) -> Cmd {
        if let Some(cmd) = self.deferred.pop_front() {
            return cmd;
        }
        self.rx.recv().await.unwrap_or(Cmd::Shutdown)
    }

    async fn run(mut self) {
        let mut phase = Phase::Idle;
        loop {
            phase = match phase {
                Phase::Idle => self.idle().await,
                Phase::Opening(attempt) => self.opening(attempt).await,
                Phase::Waiting => self.waiting().await,
                Phase::Open(session) => self.open(*session).await,
                Phase::Done => break,
            };
        }
        self.shutdown();
    }

    /// Fails everything still waiting: the manager is gone.
    fn shutdown(&mut self) {
        *lock(&self.inner.current) = None;
        self.rx.close();
        for s in self.sockets() {
            let acks = {
                let mut st = lock(&s.state);
                st.active = false;
                st.connected = false;
                st.buffer.clear();
                std::mem::take(&mut st.acks)
            };
            s.status
                .send_replace(Status::Failed(ConnectError::connection_failed(
                    "the manager is closed",
                )));
            for (_, tx) in acks {
                let _ = tx.send(Err(crate::AckError::Disconnected));
            }
        }
    }

    /// Handles a command while there is no session. Returns the next phase if it changes.
    fn offline(&mut self, cmd: Cmd, idle: bool) -> Option<Phase> {
        match cmd {
            Cmd::Send {
                nsp,
                packet,
                ack,
                volatile,
            } => {
                // Emitted while connected, but the connection is gone: back to the buffer.
                if let Some(s) = self.socket(&nsp).filter(|_| !volatile) {
                    lock(&s.state).buffer.push_back(Buffered { packet, ack });
                }
                None
            }
            Cmd::Activate(_) if idle => Some(Phase::Opening(0)),
            Cmd::Activate(_) | Cmd::ConnectPacket { .. } => None,
            Cmd::Deactivate { nsp, was_connected } => {
                if was_connected && let Some(s) = self.socket(&nsp) {
                    self.fire_disconnect(&s, DisconnectReason::IoClientDisconnect);
                }
                if !idle && !self.any_active() {
                    self.backoff.reset();
                    return Some(Phase::Idle);
                }
                None
            }
            Cmd::Close => {
                self.deactivate_all();
                self.backoff.reset();
                (!idle).then_some(Phase::Idle)
            }
            Cmd::Shutdown => Some(Phase::Done),
        }
    }

    fn deactivate_all(&mut self) {
        for s in self.sockets() {
            let (was, acks) = {
                let mut st = lock(&s.state);
                let was = st.connected;
                st.active = false;
                st.connected = false;
                (was, st.take_sent_acks())
            };
            s.status.send_replace(Status::Idle);
            for tx in acks {
                let _ = tx.send(Err(crate::AckError::Disconnected));
            }
            if was {
                self.fire_disconnect(&s, DisconnectReason::IoClientDisconnect);
            }
        }
    }

    async fn idle(&mut self) -> Phase {
        self.backoff.reset();
        loop {
            let cmd = self.next_cmd().await;
            if let Some(phase) = self.offline(cmd, true) {
                return phase;
            }
        }
    }

    async fn opening(&mut self, attempt: u32) -> Phase {
        if attempt > 0 {
            self.emit(ManagerEvent::ReconnectAttempt(attempt));
        }
        let cfg = self.inner.engine.clone();
        let timeout = self.inner.timeout;
        let open = async move {
            match timeout {
                Some(d) => tokio::time::timeout(d, Session::open(cfg))
                    .await
                    .unwrap_or_else(|_| {
                        Err(TransportError::new(TransportErrorKind::Timeout, "timeout"))
                    }),
                None => Session::open(cfg).await,
            }
        };
        tokio::pin!(open);
        loop {
            tokio::select! {
                r = &mut open => {
                    return match r {
                        Ok(session) => {
                            if attempt > 0 {
                                self.emit(ManagerEvent::Reconnect(attempt));
                            }
                            self.backoff.reset();
                            Phase::Open(Box::new(session))
                        }
                        Err(e) => self.open_failed(attempt, e),
                    };
                }
                cmd = self.next_cmd() => {
                    if let Some(phase) = self.offline(cmd, false) {
                        return phase;
                    }
                }
            }
        }
    }

    fn open_failed(&mut self, attempt: u32, e: TransportError) -> Phase {
        tracing::debug!(attempt, error = %e, "connection failed");
        self.emit(ManagerEvent::Error(e.clone()));
        let err = ConnectError::connection_failed(e.message().to_owned());
        for s in self.sockets() {
            let waiting = {
                let st = lock(&s.state);
                st.active && !st.connected
            };
            if waiting {
                self.fire_connect_error(&s, err.clone(), !self.inner.reconnection.enabled);
            }
        }
        if attempt > 0 {
            self.emit(ManagerEvent::ReconnectError(e));
        }
        if self.inner.reconnection.enabled {
            Phase::Waiting
        } else {
            Phase::Idle
        }
    }

    async fn waiting(&mut self) -> Phase {
        if let Some(max) = self.inner.reconnection.attempts
            && self.backoff.attempts() >= max
        {
            self.backoff.reset();
            self.emit(ManagerEvent::ReconnectFailed);
            let err = ConnectError::connection_failed("reconnection failed");
            for s in self.sockets() {
                if lock(&s.state).active {
                    s.status.send_replace(Status::Failed(err.clone()));
                }
            }
            return Phase::Idle;
        }
        let delay = self.backoff.duration();
        let attempt = self.backoff.attempts();
        tracing::debug!(attempt, ?delay, "reconnecting after a delay");
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => return Phase::Opening(attempt),
                cmd = self.next_cmd() => {
                    if let Some(phase) = self.offline(cmd, false) {
                        return phase;
                    }
                }
            }
        }
    }

    fn send_connect(&self, session: &mut Session, socket: &Arc<SocketInner>) {
        let auth = read(&socket.opts).auth.clone();
        match auth {
            Auth::None => session.send(frames(socket.parser.connect(&socket.nsp, None))),
            Auth::Static(v) => session.send(frames(socket.parser.connect(&socket.nsp, Some(&v)))),
            Auth::Dynamic(f) => {
                let cmd = self.inner.cmd.clone();
                let nsp = socket.nsp.clone();
                let generation = self.generation;
                let parser = socket.parser;
                tokio::spawn(async move {
                    let auth = f().await;
                    let packet = parser.connect(&nsp, auth.as_ref());
                    let _ = cmd.send(Cmd::ConnectPacket {
                        nsp,
                        generation,
                        packet,
                    });
                });
            }
        }
    }

    async fn open(&mut self, mut session: Session) -> Phase {
        self.generation += 1;
        self.decoder = decoder(self.inner.parser);
        let transport = session.transport();
        *lock(&self.inner.current) = Some((session.handshake().sid.clone(), transport));
        self.emit(ManagerEvent::Open(transport));
        for s in self.sockets() {
            if lock(&s.state).active {
                self.send_connect(&mut session, &s);
            }
        }
        let (reason, by_client) = loop {
            tokio::select! {
                ev = session.next() => match ev {
                    SessionEvent::Message(m) => {
                        if let Some(end) = self.on_message(&mut session, m) {
                            break end;
                        }
                    }
                    SessionEvent::Upgraded => {
                        let kind = session.transport();
                        if let Some(c) = lock(&self.inner.current).as_mut() {
                            c.1 = kind;
                        }
                        self.emit(ManagerEvent::Upgrade(kind));
                    }
                    SessionEvent::Closed(reason, err) => {
                        tracing::debug!(%reason, error = ?err, "connection lost");
                        break (reason, false);
                    }
                },
                cmd = self.next_cmd() => match cmd {
                    Cmd::Send { nsp, packet, ack, volatile } => {
                        if session.heartbeat_expired() {
                            // The connection is dead though no timer said so yet (the machine
                            // slept): keep the event for the next connection.
                            if !volatile && !is_ack(&packet) {
                                self.unsent.push((nsp, Buffered { packet, ack }));
                            }
                            break (DisconnectReason::PingTimeout, false);
                        }
                        if !volatile || session.is_writable() {
                            session.send(frames(packet));
                        }
                    }
                    Cmd::Activate(nsp) => {
                        if let Some(s) = self.socket(&nsp) {
                            let st = lock(&s.state);
                            let wanted = st.active && !st.connected;
                            drop(st);
                            if wanted {
                                self.send_connect(&mut session, &s);
                            }
                        }
                    }
                    Cmd::Deactivate { nsp, was_connected } => {
                        if was_connected {
                            session.send(frames(self.inner.parser.disconnect(&nsp)));
                            if let Some(s) = self.socket(&nsp) {
                                self.fire_disconnect(&s, DisconnectReason::IoClientDisconnect);
                            }
                        }
                        if !self.any_active() {
                            break (DisconnectReason::IoClientDisconnect, true);
                        }
                    }
                    Cmd::ConnectPacket { nsp, generation, packet } => {
                        let wanted = generation == self.generation
                            && self.socket(&nsp).is_some_and(|s| {
                                let st = lock(&s.state);
                                st.active && !st.connected
                            });
                        if wanted {
                            session.send(frames(packet));
                        }
                    }
                    Cmd::Close => {
                        self.close_sockets(&mut session);
                        break (DisconnectReason::IoClientDisconnect, true);
                    }
                    Cmd::Shutdown => {
                        self.close_sockets(&mut session);
                        *lock(&self.inner.current) = None;
                        session.close().await;
                        return Phase::Done;
                    }
                },
            }
        };
        *lock(&self.inner.current) = None;
        if by_client {
            session.close().await;
        } else {
            drop(session);
        }
        self.connection_lost(reason);
        self.emit(ManagerEvent::Close(reason));
        if by_client || !self.any_active() {
            Phase::Idle
        } else if self.inner.reconnection.enabled {
            Phase::Waiting
        } else {
            for s in self.sockets() {
                if lock(&s.state).active {
                    s.status
                        .send_replace(Status::Failed(ConnectError::connection_failed(format!(
                            "disconnected ({reason}) and reconnection is disabled"
                        ))));
                }
            }
            Phase::Idle
        }
    }

    /// `Manager::close`: every connected socket leaves its namespace.
    fn close_sockets(&mut self, session: &mut Session) {
        for s in self.sockets() {
            if lock(&s.state).connected {
                session.send(frames(self.inner.parser.disconnect(&s.nsp)));
            }
        }
        self.deactivate_all();
    }

    /// The connection is gone: sockets are disconnected, events emitted on the old connection
    /// but not yet written go back to the front of their send buffers, unless they wait for an
    /// acknowledgement, and acknowledgements of events emitted while connected fail, after the
    /// disconnect event (as in socket.io-client, whose engine drops its write buffer at close):
    /// whether the driver had written such an event yet must not decide the outcome.
    fn connection_lost(&mut self, reason: DisconnectReason) {
        let sockets = self.sockets();
        let mut was_connected = Vec::new();
        for s in &sockets {
            let mut st = lock(&s.state);
            if st.connected {
                was_connected.push(s.clone());
            }
            st.connected = false;
        }
        // No emit can reach the channel any more: take what is in it.
        let mut requeue: HashMap<String, Vec<Buffered>> = HashMap::new();
        // Emitted once the heartbeat had expired: buffered with their acks, as socket.io-client
        // buffers an emit made after `_hasPingExpired()`.
        for (nsp, b) in self.unsent.drain(..) {
            requeue.entry(nsp).or_default().push(b);
        }
        while let Ok(cmd) = self.rx.try_recv() {
            match cmd {
                Cmd::Send {
                    nsp,
                    packet,
                    ack,
                    volatile,
                } => {
                    if !volatile && !is_ack(&packet) && ack.is_none() {
                        requeue
                            .entry(nsp)
                            .or_default()
                            .push(Buffered { packet, ack });
                    }
                }
                other => self.deferred.push_back(other),
            }
        }
        let mut failed = Vec::new();
        for s in &sockets {
            let active = {
                let mut st = lock(&s.state);
                if let Some(list) = requeue.remove(&s.nsp) {
                    for b in list.into_iter().rev() {
                        st.buffer.push_front(b);
                    }
                }
                failed.extend(st.take_sent_acks());
                st.active
            };
            if active && self.inner.reconnection.enabled {
                s.status.send_replace(Status::Connecting);
            }
        }
        for s in &was_connected {
            self.fire_disconnect(s, reason);
        }
        for tx in failed {
            let _ = tx.send(Err(crate::AckError::Disconnected));
        }
    }

    /// Handles one Engine.IO message; returns how the session ends if it must.
    fn on_message(
        &mut self,
        session: &mut Session,
        m: Message,
    ) -> Option<(DisconnectReason, bool)> {
        let r = match m {
            Message::Text(t) => self.decoder.text(t),
            Message::Binary(b) => self.decoder.binary(b),
        };
        match r {
            Ok(Some(packet)) => self.route(session, packet),
            Ok(None) => None,
            Err(e) => {
                tracing::debug!(error = %e, "undecodable packet from the server");
                Some((DisconnectReason::ParseError, false))
            }
        }
    }

    fn route(&mut self, session: &mut Session, p: Packet) -> Option<(DisconnectReason, bool)> {
        let Some(socket) = self.socket(&p.namespace) else {
            tracing::debug!(namespace = %p.namespace, "packet for a namespace without socket");
            return None;
        };
        match p.kind {
            PacketType::Connect => {
                let sid = match &p.data {
                    PacketData::Json(json) => serde_json::from_slice::<Value>(json)
                        .ok()
                        .and_then(|v| v.get("sid").and_then(Value::as_str).map(SocketId::from)),
                    _ => None,
                };
                {
                    let mut st = lock(&socket.state);
                    if !st.active {
                        // Disconnected by the application meanwhile: leave again.
                        session.send(frames(self.inner.parser.disconnect(&socket.nsp)));
                        return None;
                    }
                    if st.connected {
                        return None;
                    }
                    st.connected = true;
                    st.sid = sid;
                    // Flushed here, under the lock: later emits go through the channel, after.
                    for b in std::mem::take(&mut st.buffer) {
                        session.send(frames(b.packet));
                    }
                }
                socket.status.send_replace(Status::Connected);
                self.fire_connect(&socket);
                None
            }
            PacketType::ConnectError => {
                let (message, data) = match &p.data {
                    PacketData::Json(json) => match serde_json::from_slice::<Value>(json) {
                        Ok(Value::String(s)) => (s, None),
                        Ok(Value::Object(mut o)) => {
                            let message = match o.remove("message") {
                                Some(Value::String(s)) => s,
                                _ => String::new(),
                            };
                            (message, o.remove("data"))
                        }
                        _ => (String::new(), None),
                    },
                    _ => (String::new(), None),
                };
                {
                    let mut st = lock(&socket.state);
                    st.active = false;
                    st.connected = false;
                }
                let err = match data {
                    Some(d) => ConnectError::new(message).with_data(d),
                    None => ConnectError::new(message),
                };
                self.fire_connect_error(&socket, err, true);
                (!self.any_active()).then_some((DisconnectReason::IoClientDisconnect, true))
            }
            PacketType::Disconnect => {
                let (was, acks) = {
                    let mut st = lock(&socket.state);
                    let was = st.connected;
                    st.active = false;
                    st.connected = false;
                    (was, st.take_sent_acks())
                };
                socket.status.send_replace(Status::Idle);
                for tx in acks {
                    let _ = tx.send(Err(crate::AckError::Disconnected));
                }
                if was {
                    self.fire_disconnect(&socket, DisconnectReason::IoServerDisconnect);
                }
                (!self.any_active()).then_some((DisconnectReason::IoClientDisconnect, true))
            }
            PacketType::Event | PacketType::BinaryEvent => {
                if !lock(&socket.state).connected {
                    return None;
                }
                let PacketData::Event { name, args } = p.data else {
                    return None;
                };
                let args = self.decoder.raw_args(args, p.attachments);
                self.dispatch(&socket, name, args, p.id);
                None
            }
            PacketType::Ack | PacketType::BinaryAck => {
                let PacketData::Ack { args } = p.data else {
                    return None;
                };
                let tx = p.id.and_then(|id| lock(&socket.state).acks.remove(&id));
                if let Some(tx) = tx {
                    let _ = tx.send(Ok(self.decoder.raw_args(args, p.attachments)));
                }
                None
            }
        }
    }

    fn dispatch(&self, socket: &Arc<SocketInner>, name: String, args: RawArgs, id: Option<u64>) {
        let Some(handle) = self.handle(socket) else {
            return;
        };
        let (handler, any) = {
            let h = read(&socket.handlers);
            (h.events.get(&name).cloned(), h.any.clone())
        };
        for a in any {
            run_now_or_spawn(a(handle.clone(), name.clone(), args.clone()));
        }
        match handler {
            Some(h) => run_now_or_spawn(h(handle.clone(), args, AckSender::new(handle, id))),
            None => tracing::trace!(event = %name, "no handler for event"),
        }
    }

    fn fire_connect(&self, socket: &Arc<SocketInner>) {
        let _ = socket.events.send(SocketEvent::Connect);
        let Some(handle) = self.handle(socket) else {
            return;
        };
        let handlers = read(&socket.handlers).connect.clone();
        for h in handlers {
            run_now_or_spawn(h(handle.clone()));
        }
    }

    fn fire_disconnect(&self, socket: &Arc<SocketInner>, reason: DisconnectReason) {
        let _ = socket.events.send(SocketEvent::Disconnect(reason));
        let Some(handle) = self.handle(socket) else {
            return;
        };
        let handlers = read(&socket.handlers).disconnect.clone();
        for h in handlers {
            run_now_or_spawn(h(handle.clone(), reason));
        }
    }

    fn fire_connect_error(&self, socket: &Arc<SocketInner>, err: ConnectError, terminal: bool) {
        if terminal {
            socket.status.send_replace(Status::Failed(err.clone()));
        }
        let _ = socket.events.send(SocketEvent::ConnectError(err.clone()));
        let Some(handle) = self.handle(socket) else {
            return;
        };
        let handlers = read(&socket.handlers).connect_error.clone();
        for h in handlers {
            run_now_or_spawn(h(handle.clone(), err.clone()));
        }
    }
}
