//! The Engine.IO v4 client: opening a session over polling or WebSocket, the upgrade from
//! polling to WebSocket, and the heartbeat watchdog.
//!
//! Each transport runs in a small task of its own (a "pump") that owns the IO and talks to the
//! [`Session`] through channels; the session is driven by whoever awaits [`Session::next`]
//! (the manager's driver task). Dropping a session aborts its pumps.

pub(crate) mod net;
mod polling;
mod websocket;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use volley_proto::engine::{Message, OpenPacket, Packet};

use crate::error::{DisconnectReason, TransportError, TransportErrorKind};
use net::{Target, Tls};

pub use volley_proto::TransportKind;

/// Everything needed to open sessions to one server.
#[derive(Debug, Clone)]
pub(crate) struct EngineConfig {
    pub(crate) target: Target,
    /// The path, with a trailing slash (`/socket.io/`).
    pub(crate) path: String,
    /// Query parameters sent with every request, before `EIO`, `transport` and `sid`.
    pub(crate) query: Vec<(String, String)>,
    /// Extra headers sent with every HTTP request and the WebSocket handshake.
    pub(crate) headers: Vec<(String, String)>,
    /// Transports to use, the first for the handshake.
    pub(crate) transports: Vec<TransportKind>,
    /// Whether to upgrade from polling to WebSocket.
    pub(crate) upgrade: bool,
    pub(crate) tls: Tls,
    /// How long the upgrade probe may take before the client stays on polling.
    pub(crate) probe_timeout: Duration,
}

impl EngineConfig {
    fn query_string(&self, transport: TransportKind, sid: Option<&str>) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.query {
            if !matches!(k.as_str(), "EIO" | "transport" | "sid") {
                q.append_pair(k, v);
            }
        }
        q.append_pair("EIO", "4");
        q.append_pair("transport", transport.as_str());
        if let Some(sid) = sid {
            q.append_pair("sid", sid);
        }
        q.finish()
    }

    /// The origin-form target of an HTTP request (`/socket.io/?EIO=4&...`).
    pub(crate) fn path_and_query(&self, transport: TransportKind, sid: Option<&str>) -> String {
        format!("{}?{}", self.path, self.query_string(transport, sid))
    }

    /// The WebSocket URI.
    pub(crate) fn ws_uri(&self, sid: Option<&str>) -> String {
        let scheme = if self.target.secure { "wss" } else { "ws" };
        format!(
            "{scheme}://{}{}",
            self.target.authority(),
            self.path_and_query(TransportKind::WebSocket, sid)
        )
    }
}

/// What a pump is told to do.
#[derive(Debug)]
pub(crate) enum PumpCmd {
    /// Write these packets, in order.
    Send(Vec<Packet>),
    /// Stop receiving and sending once what is in flight is done, then report `Paused`
    /// (polling, during an upgrade).
    Pause,
    /// Send a close packet and stop.
    Close,
}

/// What a pump reports.
#[derive(Debug)]
pub(crate) enum PumpEvent {
    Packet(Packet),
    Paused,
    Error(TransportError),
}

/// Aborts a task when dropped.
#[derive(Debug)]
pub(crate) struct AbortOnDrop(pub(crate) JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A running transport.
#[derive(Debug)]
pub(crate) struct Pump {
    kind: TransportKind,
    tx: mpsc::UnboundedSender<PumpCmd>,
    rx: mpsc::Receiver<PumpEvent>,
    /// Whether a write is in flight (polling: a POST; WebSocket: a send not yet flushed).
    busy: Arc<AtomicBool>,
    _task: AbortOnDrop,
}

/// How many received packets a pump may get ahead of the session.
const PUMP_QUEUE: usize = 256;

impl Pump {
    fn spawn<F, Fut>(kind: TransportKind, f: F) -> Self
    where
        F: FnOnce(
            mpsc::UnboundedReceiver<PumpCmd>,
            mpsc::Sender<PumpEvent>,
            Arc<AtomicBool>,
        ) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (tx, cmd_rx) = mpsc::unbounded_channel();
        let (ev_tx, rx) = mpsc::channel(PUMP_QUEUE);
        let busy = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(f(cmd_rx, ev_tx, busy.clone()));
        Self {
            kind,
            tx,
            rx,
            busy,
            _task: AbortOnDrop(task),
        }
    }
}

/// What [`Session::next`] reports.
#[derive(Debug)]
pub(crate) enum SessionEvent {
    /// An application message (a Socket.IO packet or attachment).
    Message(Message),
    /// The transport is now WebSocket.
    Upgraded,
    /// The session is over.
    Closed(DisconnectReason, Option<TransportError>),
}

type ProbeFuture =
    Pin<Box<dyn Future<Output = Result<websocket::WsStream, TransportError>> + Send>>;

/// An open Engine.IO session.
pub(crate) struct Session {
    open: OpenPacket,
    pump: Pump,
    /// When the session is dead unless a ping arrives: `pingInterval + pingTimeout` after the
    /// last ping (or the handshake).
    deadline: Instant,
    /// The same deadline on the wall clock: the monotonic clock stops while the machine
    /// sleeps, so a suspended laptop would otherwise write into a dead connection.
    wall_deadline: SystemTime,
    probe: Option<ProbeFuture>,
    /// The probed WebSocket, waiting for polling to pause.
    upgraded: Option<websocket::WsStream>,
    /// Packets held back while polling pauses for the upgrade.
    held: Option<Vec<Packet>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("sid", &self.open.sid)
            .field("transport", &self.pump.kind)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Opens a session with the first configured transport; starts the upgrade probe when
    /// allowed.
    pub(crate) async fn open(cfg: Arc<EngineConfig>) -> Result<Self, TransportError> {
        let first = cfg.transports.first().copied().ok_or_else(|| {
            TransportError::new(TransportErrorKind::InvalidConfig, "no transport configured")
        })?;
        let (open, pump) = match first {
            TransportKind::Polling => polling::open(cfg.clone()).await?,
            TransportKind::WebSocket => websocket::open(&cfg).await?,
            other => {
                return Err(TransportError::new(
                    TransportErrorKind::InvalidConfig,
                    format!("transport {other} is not supported by this client"),
                ));
            }
        };
        let probe: Option<ProbeFuture> = if first == TransportKind::Polling
            && cfg.upgrade
            && cfg.transports.contains(&TransportKind::WebSocket)
            && open.upgrades.iter().any(|u| u == "websocket")
        {
            let cfg = cfg.clone();
            let sid = open.sid.clone();
            Some(Box::pin(async move {
                let timeout = cfg.probe_timeout;
                match tokio::time::timeout(timeout, websocket::probe(&cfg, &sid)).await {
                    Ok(r) => r,
                    Err(_) => Err(TransportError::new(
                        TransportErrorKind::Timeout,
                        "upgrade probe timed out",
                    )),
                }
            }))
        } else {
            None
        };
        let deadline = Instant::now() + heartbeat_window(&open);
        let wall_deadline = SystemTime::now() + heartbeat_window(&open);
        Ok(Self {
            open,
            pump,
            deadline,
            wall_deadline,
            probe,
            upgraded: None,
            held: None,
        })
    }

    /// The server's handshake.
    pub(crate) fn handshake(&self) -> &OpenPacket {
        &self.open
    }

    /// The current transport.
    pub(crate) fn transport(&self) -> TransportKind {
        self.pump.kind
    }

    /// Whether a packet written now would go out at once (what `volatile` needs).
    pub(crate) fn is_writable(&self) -> bool {
        self.held.is_none() && !self.pump.busy.load(Ordering::Acquire)
    }

    /// Whether the heartbeat deadline has passed on the wall clock (checked before writing,
    /// as the official client does: timers may not have fired after a suspend).
    pub(crate) fn heartbeat_expired(&self) -> bool {
        SystemTime::now() > self.wall_deadline
    }

    /// Queues packets for sending, in order.
    pub(crate) fn send(&mut self, packets: Vec<Packet>) {
        if packets.is_empty() {
            return;
        }
        match &mut self.held {
            Some(held) => held.extend(packets),
            None => {
                let _ = self.pump.tx.send(PumpCmd::Send(packets));
            }
        }
    }

    /// Sends a close packet and waits (briefly) for the transport to let it out.
    ///
    /// During an upgrade, polling is pausing and packets are held back for the WebSocket: as
    /// engine.io-client does, the upgrade is finished first, so those packets (often the
    /// namespace's DISCONNECT) go out before the close packet instead of being lost.
    pub(crate) async fn close(mut self) {
        let finish = async {
            if self.held.is_some() {
                while let Some(ev) = self.pump.rx.recv().await {
                    if matches!(ev, PumpEvent::Paused) {
                        self.finish_upgrade();
                        break;
                    }
                }
            }
            let _ = self.pump.tx.send(PumpCmd::Close);
            while self.pump.rx.recv().await.is_some() {}
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), finish).await;
    }

    /// Polling has paused: switch to the probed WebSocket and send `5` with the packets held
    /// back meanwhile. Returns whether it switched.
    fn finish_upgrade(&mut self) -> bool {
        let Some(ws) = self.upgraded.take() else {
            return false;
        };
        let mut packets = vec![Packet::Upgrade];
        packets.extend(self.held.take().unwrap_or_default());
        self.pump = websocket::spawn(ws, Vec::new());
        self.send(packets);
        true
    }

    /// The next event of the session. Cancel-safe.
    pub(crate) async fn next(&mut self) -> SessionEvent {
        loop {
            let deadline = self.deadline;
            let rx = &mut self.pump.rx;
            let probe = &mut self.probe;
            tokio::select! {
                ev = rx.recv() => match ev {
                    Some(PumpEvent::Packet(p)) => match p {
                        Packet::Ping(_) => {
                            self.deadline = Instant::now() + heartbeat_window(&self.open);
                            self.wall_deadline = SystemTime::now() + heartbeat_window(&self.open);
                            self.send(vec![Packet::Pong(Bytes::new())]);
                        }
                        Packet::Message(m) => return SessionEvent::Message(m),
                        Packet::Close => return SessionEvent::Closed(DisconnectReason::TransportClose, None),
                        Packet::Open(_) | Packet::Pong(_) | Packet::Upgrade | Packet::Noop => {}
                    },
                    Some(PumpEvent::Paused) => {
                        if self.finish_upgrade() {
                            return SessionEvent::Upgraded;
                        }
                    }
                    Some(PumpEvent::Error(e)) => {
                        let reason = match e.kind() {
                            TransportErrorKind::Protocol => DisconnectReason::ParseError,
                            TransportErrorKind::Closed => DisconnectReason::TransportClose,
                            _ => DisconnectReason::TransportError,
                        };
                        return SessionEvent::Closed(reason, Some(e));
                    }
                    None => return SessionEvent::Closed(DisconnectReason::TransportClose, None),
                },
                _ = tokio::time::sleep_until(deadline) => {
                    return SessionEvent::Closed(DisconnectReason::PingTimeout, None);
                }
                r = async { probe.as_mut().expect("guarded").await }, if probe.is_some() => {
                    self.probe = None;
                    match r {
                        Ok(ws) => {
                            tracing::debug!(sid = %self.open.sid, "upgrade probe answered; pausing polling");
                            self.upgraded = Some(ws);
                            self.held = Some(Vec::new());
                            let _ = self.pump.tx.send(PumpCmd::Pause);
                        }
                        Err(e) => {
                            tracing::debug!(sid = %self.open.sid, error = %e, "upgrade failed; staying on polling");
                        }
                    }
                }
            }
        }
    }
}

/// `pingInterval + pingTimeout`, at most a day: a server's absurd values must not overflow a
/// deadline.
fn heartbeat_window(open: &OpenPacket) -> Duration {
    const DAY_MS: u64 = 24 * 60 * 60 * 1000;
    Duration::from_millis(
        open.ping_interval
            .saturating_add(open.ping_timeout)
            .min(DAY_MS),
    )
}

fn protocol_error(message: impl Into<String>) -> TransportError {
    TransportError::new(TransportErrorKind::Protocol, message)
}

/// Reads the handshake from the first packet of a session.
fn handshake(first: Option<Packet>) -> Result<OpenPacket, TransportError> {
    match first {
        Some(Packet::Open(json)) => {
            OpenPacket::decode(&json).map_err(|e| protocol_error(format!("bad handshake: {e}")))
        }
        Some(other) => Err(protocol_error(format!(
            "expected an open packet, got {:?}",
            other.packet_type()
        ))),
        None => Err(protocol_error("the server sent no handshake")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt as _;
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::oneshot;
    use tokio_tungstenite::WebSocketStream;
    use tokio_tungstenite::tungstenite::protocol::Role;

    /// What the stand-in polling pump was asked to do.
    #[derive(Debug, PartialEq)]
    enum PollingSaw {
        Send(Vec<Packet>),
        Close,
    }

    /// A polling pump that pauses only when the test releases it (its GET still in flight),
    /// and reports what it was asked to write.
    fn pausing_polling_pump(
        release: oneshot::Receiver<()>,
        saw: mpsc::UnboundedSender<PollingSaw>,
    ) -> Pump {
        Pump::spawn(
            TransportKind::Polling,
            move |mut cmd, ev, _busy| async move {
                let mut release = Some(release);
                while let Some(c) = cmd.recv().await {
                    match c {
                        PumpCmd::Pause => {
                            if let Some(r) = release.take() {
                                let _ = r.await;
                            }
                            let _ = ev.send(PumpEvent::Paused).await;
                        }
                        PumpCmd::Send(p) => {
                            let _ = saw.send(PollingSaw::Send(p));
                        }
                        PumpCmd::Close => {
                            let _ = saw.send(PollingSaw::Close);
                            return;
                        }
                    }
                }
            },
        )
    }

    /// A connected WebSocket pair over loopback: (the client's probed socket, the server end).
    async fn ws_pair() -> (websocket::WsStream, WebSocketStream<TcpStream>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, server) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let client = WebSocketStream::from_raw_socket(
            net::Stream::Plain(client.unwrap()),
            Role::Client,
            None,
        )
        .await;
        let server = WebSocketStream::from_raw_socket(server.unwrap().0, Role::Server, None).await;
        (client, server)
    }

    async fn next_text(server: &mut WebSocketStream<TcpStream>) -> String {
        match server.next().await {
            Some(Ok(m)) => m.into_text().unwrap().to_string(),
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    /// Closing while polling pauses for an upgrade: the packets held back for the WebSocket
    /// go out on it, after `5` and before the close packet (they used to be dropped).
    #[tokio::test]
    async fn close_during_upgrade_sends_the_held_packets() {
        let (release_tx, release_rx) = oneshot::channel();
        let (saw_tx, mut saw_rx) = mpsc::unbounded_channel();
        let (probed, mut server) = ws_pair().await;
        let open = OpenPacket {
            sid: "s".into(),
            upgrades: vec!["websocket".into()],
            ping_interval: 25_000,
            ping_timeout: 20_000,
            max_payload: 1_000_000,
        };
        let mut session = Session {
            deadline: Instant::now() + heartbeat_window(&open),
            wall_deadline: SystemTime::now() + heartbeat_window(&open),
            open,
            pump: pausing_polling_pump(release_rx, saw_tx),
            probe: None,
            upgraded: Some(probed),
            held: Some(Vec::new()),
        };
        // What `next` does once the probe is answered.
        session.pump.tx.send(PumpCmd::Pause).unwrap();
        session.send(vec![Packet::Message(Message::Text(Bytes::from_static(
            b"41",
        )))]);

        let closing = tokio::spawn(session.close());
        release_tx.send(()).unwrap();

        assert_eq!(next_text(&mut server).await, "5");
        assert_eq!(next_text(&mut server).await, "441");
        assert_eq!(next_text(&mut server).await, "1");
        closing.await.unwrap();
        assert_eq!(
            saw_rx.recv().await,
            None,
            "nothing may go through the paused polling transport"
        );
    }
}
