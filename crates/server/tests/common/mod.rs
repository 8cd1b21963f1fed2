//! A test harness for Volley's public API: an in-process server on a loopback port, and raw
//! WebSocket clients that speak Engine.IO v4 / Socket.IO v5 frame by frame.
//!
//! The client is written by hand from the protocol, so every test sees exactly what goes on
//! the wire. Every wait is bounded: a missing packet fails the test within [`WAIT`].

#![allow(dead_code, unreachable_pub, missing_docs)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use volley::{Namespace, Socket, SocketIo};
use volley_proto::socket::{DecodeLimits, Packet, PacketData, PacketType, Reassembler};

/// The longest any single expected packet or server-side signal may take: a bound on a
/// hang, never reached unless something is broken, however busy the machine.
pub const WAIT: Duration = Duration::from_secs(30);

/// An acknowledgement timeout that a test must never reach: longer than [`WAIT`], so that a
/// stream or a future that waits for it instead of ending fails the test.
pub const NEVER: Duration = Duration::from_secs(3600);

/// A Volley server serving on 127.0.0.1 on a free port; stopped when dropped.
pub struct TestServer {
    pub io: SocketIo,
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    /// A new raw client, connected at the Engine.IO level (no namespace joined yet).
    pub async fn client(&self) -> Client {
        Client::connect(self.addr).await
    }

    /// A new raw client that joined namespace `nsp`.
    pub async fn client_in(&self, nsp: &str) -> Client {
        let mut c = self.client().await;
        c.join(nsp).await;
        c
    }
}

/// A new client joined to `nsp`, with its server-side socket taken from `socks` (see
/// [`capture_sockets`]); checks both are the same socket.
pub async fn join_captured(
    srv: &TestServer,
    nsp: &str,
    socks: &mut mpsc::UnboundedReceiver<Socket>,
) -> (Client, Socket) {
    let mut c = srv.client().await;
    let sid = c.join(nsp).await;
    let s = recv(socks).await;
    assert_eq!(s.id(), sid, "the captured socket is the one that joined");
    assert_eq!(s.namespace(), nsp);
    (c, s)
}

/// Serves `io` on a fresh loopback port.
pub async fn start(io: SocketIo) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let service = io.service();
    let task = tokio::spawn(async move {
        let _ = volley::serve(listener, service).await;
    });
    TestServer { io, addr, task }
}

/// A server with default settings.
pub async fn start_default() -> TestServer {
    start(SocketIo::builder().build()).await
}

/// Makes `ns` hand every connected socket to the returned receiver (after the connection
/// handler ran, so the test can act on the server side of each client).
pub fn capture_sockets(ns: &Namespace) -> mpsc::UnboundedReceiver<Socket> {
    let (tx, rx) = mpsc::unbounded_channel();
    ns.on_connection(move |s: Socket| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(s);
        }
    });
    rx
}

/// The next value of a channel, within [`WAIT`].
pub async fn recv<T>(rx: &mut mpsc::UnboundedReceiver<T>) -> T {
    match tokio::time::timeout(WAIT, rx.recv()).await {
        Ok(Some(v)) => v,
        Ok(None) => panic!("channel closed while waiting"),
        Err(_) => panic!("nothing arrived on the channel within {WAIT:?}"),
    }
}

/// Asserts nothing arrives on a channel within `d` (use only where no barrier can be had).
pub async fn assert_silent<T: std::fmt::Debug>(rx: &mut mpsc::UnboundedReceiver<T>, d: Duration) {
    if let Ok(Some(v)) = tokio::time::timeout(d, rx.recv()).await {
        panic!("expected nothing on the channel, got {v:?}");
    }
}

/// A shared, ordered log for recording what handlers saw.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    pub fn push(&self, s: impl Into<String>) {
        self.0.lock().unwrap().push(s.into());
    }

    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }

    pub fn get(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// An incoming EVENT, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub nsp: String,
    pub name: String,
    pub args: Vec<Value>,
    pub ack_id: Option<u64>,
}

/// Something the reader task saw.
#[derive(Debug)]
enum Inbound {
    Packet(Packet),
    /// The Engine.IO session ended (close packet, close frame or end of stream).
    Closed,
    /// The server sent something this client cannot decode.
    Bad(String),
}

/// One step of reading.
enum Read {
    Packet(Packet),
    Closed,
    Timeout,
}

/// One raw Engine.IO v4 connection over WebSocket, speaking Socket.IO v5 by hand.
pub struct Client {
    /// The Engine.IO open packet's payload.
    pub open: Value,
    out: mpsc::UnboundedSender<WsMessage>,
    inbox: mpsc::UnboundedReceiver<Inbound>,
    /// Packets read but not yet consumed by a test, in arrival order.
    pending: VecDeque<Packet>,
    closed: bool,
    next_ack: u64,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
}

impl Drop for Client {
    fn drop(&mut self) {
        self.reader.abort();
        self.writer.abort();
    }
}

fn data_prefix(nsp: &str) -> String {
    if nsp == "/" {
        String::new()
    } else {
        format!("{nsp},")
    }
}

/// The JSON array of an EVENT: the name, then the arguments (`args` must be an array).
fn event_array(name: &str, args: Value) -> String {
    let Value::Array(args) = args else {
        panic!("event arguments must be a JSON array, got {args}");
    };
    let mut all = vec![Value::String(name.to_owned())];
    all.extend(args);
    Value::Array(all).to_string()
}

/// Parses every raw JSON argument of a packet.
fn parse_args(args: &[Bytes]) -> Vec<Value> {
    args.iter()
        .map(|a| serde_json::from_slice(a).expect("argument is JSON"))
        .collect()
}

/// A short description of a packet, for failure messages.
pub fn describe(p: &Packet) -> String {
    match &p.data {
        PacketData::Event { name, args } => format!(
            "{:?} nsp={} id={:?} {name} {:?}",
            p.kind,
            p.namespace,
            p.id,
            parse_args(args)
        ),
        PacketData::Ack { args } => format!(
            "{:?} nsp={} id={:?} {:?}",
            p.kind,
            p.namespace,
            p.id,
            parse_args(args)
        ),
        PacketData::Json(j) => format!(
            "{:?} nsp={} {}",
            p.kind,
            p.namespace,
            String::from_utf8_lossy(j)
        ),
        PacketData::None => format!("{:?} nsp={}", p.kind, p.namespace),
    }
}

/// The event a packet carries, if it is an EVENT.
pub fn as_event(p: &Packet) -> Option<Event> {
    match (&p.kind, &p.data) {
        (PacketType::Event | PacketType::BinaryEvent, PacketData::Event { name, args }) => {
            Some(Event {
                nsp: p.namespace.clone(),
                name: name.clone(),
                args: parse_args(args),
                ack_id: p.id,
            })
        }
        _ => None,
    }
}

impl Client {
    /// Connects to `/socket.io/` with the WebSocket transport and reads the open packet.
    pub async fn connect(addr: SocketAddr) -> Self {
        Self::connect_with(addr, "", &[]).await
    }

    /// Same, with extra query parameters (`a=1&b=2`) and request headers.
    pub async fn connect_with(addr: SocketAddr, query: &str, headers: &[(&str, &str)]) -> Self {
        let mut url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
        if !query.is_empty() {
            url.push('&');
            url.push_str(query);
        }
        let mut request = url.into_client_request().expect("request");
        for (k, v) in headers {
            let name: tokio_tungstenite::tungstenite::http::HeaderName =
                k.parse().expect("header name");
            request
                .headers_mut()
                .insert(name, HeaderValue::from_str(v).expect("header value"));
        }
        let (ws, _) = tokio::time::timeout(
            WAIT,
            tokio_tungstenite::connect_async_with_config(request, None, true),
        )
        .await
        .expect("websocket handshake within WAIT")
        .expect("websocket handshake");
        let (mut sink, mut stream) = ws.split();

        // The open packet comes first.
        let open = match tokio::time::timeout(WAIT, stream.next()).await {
            Ok(Some(Ok(WsMessage::Text(t)))) => {
                let t = t.as_str();
                assert!(t.starts_with('0'), "expected an open packet, got {t:?}");
                serde_json::from_str::<Value>(&t[1..]).expect("open payload is JSON")
            }
            other => panic!("expected an open packet, got {other:?}"),
        };

        let (out_tx, mut out_rx) = mpsc::unbounded_channel::<WsMessage>();
        let writer = tokio::spawn(async move {
            while let Some(m) = out_rx.recv().await {
                let is_close = matches!(m, WsMessage::Close(_));
                if sink.send(m).await.is_err() || is_close {
                    break;
                }
            }
        });

        let (in_tx, inbox) = mpsc::unbounded_channel();
        let pong = out_tx.clone();
        let reader = tokio::spawn(async move {
            let mut reassembler = Reassembler::new(DecodeLimits::default());
            while let Some(msg) = stream.next().await {
                let decoded = match msg {
                    Ok(WsMessage::Text(t)) => {
                        let b = Bytes::copy_from_slice(t.as_bytes());
                        match b.first() {
                            // Ping: answer at once, as a client must.
                            Some(b'2') => {
                                let _ = pong.send(WsMessage::text("3"));
                                continue;
                            }
                            Some(b'4') => reassembler.push_text(b.slice(1..)),
                            Some(b'1') => break,
                            // Noop and anything else: nothing for a test.
                            _ => continue,
                        }
                    }
                    Ok(WsMessage::Binary(b)) => reassembler.push_binary(b),
                    Ok(WsMessage::Close(_)) | Err(_) => break,
                    Ok(_) => continue,
                };
                match decoded {
                    Ok(Some(p)) => {
                        if in_tx.send(Inbound::Packet(p)).is_err() {
                            return;
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        let _ = in_tx.send(Inbound::Bad(e.to_string()));
                        return;
                    }
                }
            }
            let _ = in_tx.send(Inbound::Closed);
        });

        Self {
            open,
            out: out_tx,
            inbox,
            pending: VecDeque::new(),
            closed: false,
            next_ack: 1,
            reader,
            writer,
        }
    }

    /// Sends an Engine.IO message carrying a Socket.IO packet: `4` + `sio`.
    pub fn send_raw(&self, sio: &str) {
        self.out
            .send(WsMessage::text(format!("4{sio}")))
            .expect("writer task is running");
    }

    /// Reads one more inbound item within `d`.
    async fn read_within(&mut self, d: Duration) -> Read {
        if self.closed {
            return Read::Closed;
        }
        match tokio::time::timeout(d, self.inbox.recv()).await {
            Ok(Some(Inbound::Packet(p))) => Read::Packet(p),
            Ok(Some(Inbound::Bad(e))) => panic!("the server sent an undecodable packet: {e}"),
            Ok(Some(Inbound::Closed)) | Ok(None) => {
                self.closed = true;
                Read::Closed
            }
            Err(_) => Read::Timeout,
        }
    }

    /// The first packet (from `pending`, then the wire) satisfying `pred`; the others are kept
    /// in order. Panics after [`WAIT`] or if the connection closes first.
    async fn take_matching(&mut self, what: &str, pred: impl Fn(&Packet) -> bool) -> Packet {
        if let Some(i) = self.pending.iter().position(&pred) {
            return self.pending.remove(i).expect("index is valid");
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.read_within(left).await {
                Read::Packet(p) if pred(&p) => return p,
                Read::Packet(p) => self.pending.push_back(p),
                Read::Closed => panic!(
                    "connection closed while waiting for {what}; unread: {:?}",
                    self.pending.iter().map(describe).collect::<Vec<_>>()
                ),
                Read::Timeout => panic!(
                    "no {what} within {WAIT:?}; unread: {:?}",
                    self.pending.iter().map(describe).collect::<Vec<_>>()
                ),
            }
        }
    }

    /// The next packet of namespace `nsp`, whatever it is.
    pub async fn next_packet(&mut self, nsp: &str) -> Packet {
        self.take_matching(&format!("packet in {nsp}"), |p| p.namespace == nsp)
            .await
    }

    /// Joins `nsp` without auth (`40` / `40/nsp,`) and returns the socket id; panics on
    /// refusal.
    pub async fn join(&mut self, nsp: &str) -> String {
        match self.try_join(nsp, None).await {
            Ok(sid) => sid,
            Err(e) => panic!("joining {nsp} was refused: {e}"),
        }
    }

    /// Joins `nsp` with an optional auth payload: the socket id, or the CONNECT_ERROR payload.
    pub async fn try_join(&mut self, nsp: &str, auth: Option<Value>) -> Result<String, Value> {
        let prefix = if nsp == "/" {
            String::new()
        } else {
            nsp.to_owned()
        };
        match auth {
            Some(a) => {
                let sep = if nsp == "/" { "" } else { "," };
                self.send_raw(&format!("0{prefix}{sep}{a}"))
            }
            None => self.send_raw(&format!("0{prefix}")),
        }
        let p = self
            .take_matching(&format!("CONNECT answer for {nsp}"), |p| {
                p.namespace == nsp
                    && matches!(p.kind, PacketType::Connect | PacketType::ConnectError)
            })
            .await;
        let PacketData::Json(json) = &p.data else {
            panic!("CONNECT answer without payload: {}", describe(&p));
        };
        let v: Value = serde_json::from_slice(json).expect("JSON payload");
        match p.kind {
            PacketType::Connect => Ok(v["sid"]
                .as_str()
                .unwrap_or_else(|| panic!("CONNECT without sid: {v}"))
                .to_owned()),
            _ => Err(v),
        }
    }

    /// Emits `42[name, ...args]` in `nsp` (`args` is a JSON array).
    pub fn emit(&self, nsp: &str, name: &str, args: Value) {
        self.send_raw(&format!("2{}{}", data_prefix(nsp), event_array(name, args)));
    }

    /// Emits with an ack id and waits for the server's `43<id>[...]`; returns its arguments.
    pub async fn emit_with_ack(&mut self, nsp: &str, name: &str, args: Value) -> Vec<Value> {
        let id = self.next_ack;
        self.next_ack += 1;
        self.send_raw(&format!(
            "2{}{id}{}",
            data_prefix(nsp),
            event_array(name, args)
        ));
        let p = self
            .take_matching(&format!("ack {id} in {nsp}"), |p| {
                p.namespace == nsp
                    && matches!(p.kind, PacketType::Ack | PacketType::BinaryAck)
                    && p.id == Some(id)
            })
            .await;
        match &p.data {
            PacketData::Ack { args } => parse_args(args),
            _ => panic!("not an ack: {}", describe(&p)),
        }
    }

    /// Answers the server's event `id` with `43<id>[...]` (`args` is a JSON array).
    pub fn ack(&self, nsp: &str, id: u64, args: Value) {
        assert!(args.is_array(), "ack arguments must be a JSON array");
        self.send_raw(&format!("3{}{id}{args}", data_prefix(nsp)));
    }

    /// Leaves `nsp` (`41` / `41/nsp,`).
    pub fn leave_ns(&self, nsp: &str) {
        self.send_raw(&format!("1{}", data_prefix(nsp)));
    }

    /// The next event named `name` in `nsp`, within [`WAIT`]; other packets are kept for later.
    pub async fn next_event(&mut self, nsp: &str, name: &str) -> Event {
        let p = self
            .take_matching(&format!("event {name:?} in {nsp}"), |p| {
                p.namespace == nsp && as_event(p).is_some_and(|e| e.name == name)
            })
            .await;
        as_event(&p).expect("matched an event")
    }

    /// Asserts that the very next packet of `nsp` is the event `name`, and returns it. With a
    /// barrier event sent after something that must not arrive, this proves it did not
    /// (packets of one connection arrive in order).
    pub async fn expect_next_event(&mut self, nsp: &str, name: &str) -> Event {
        let p = self.next_packet(nsp).await;
        match as_event(&p) {
            Some(e) if e.name == name => e,
            _ => panic!(
                "expected event {name:?} next in {nsp}, got {}",
                describe(&p)
            ),
        }
    }

    /// Asserts that the next packet of `nsp` is a DISCONNECT (`41`).
    pub async fn expect_disconnect(&mut self, nsp: &str) {
        let p = self.next_packet(nsp).await;
        assert_eq!(
            p.kind,
            PacketType::Disconnect,
            "expected DISCONNECT in {nsp}, got {}",
            describe(&p)
        );
    }

    /// Asserts that no packet of `nsp` arrives within `d`. Prefer a barrier with
    /// [`expect_next_event`](Self::expect_next_event) where the server can send one.
    pub async fn expect_no_event_within(&mut self, nsp: &str, d: Duration) {
        if let Some(p) = self.pending.iter().find(|p| p.namespace == nsp) {
            panic!("expected nothing in {nsp}, got {}", describe(p));
        }
        let deadline = tokio::time::Instant::now() + d;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return;
            }
            match self.read_within(left).await {
                Read::Packet(p) if p.namespace == nsp => {
                    panic!("expected nothing in {nsp}, got {}", describe(&p))
                }
                Read::Packet(p) => self.pending.push_back(p),
                Read::Closed | Read::Timeout => return,
            }
        }
    }

    /// Waits (at most [`WAIT`]) for the server to end the Engine.IO session; the packets
    /// read on the way are kept.
    pub async fn expect_closed(&mut self) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.read_within(left).await {
                Read::Closed => return,
                Read::Packet(p) => self.pending.push_back(p),
                Read::Timeout => panic!("the connection is still open after {WAIT:?}"),
            }
        }
    }

    /// Whether the connection is known to be closed (without waiting).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Closes the WebSocket cleanly (a close frame), as a browser closing its tab.
    pub fn close(&self) {
        let _ = self.out.send(WsMessage::Close(None));
    }

    /// Drops the TCP connection without any closing handshake.
    pub fn drop_tcp(self) {
        // Dropping the client aborts both tasks, which drops both halves of the stream
        // and so the socket.
        drop(self);
    }
}

/// A JSON array of one argument, for the common case.
pub fn one(v: impl serde::Serialize) -> Value {
    json!([v])
}
