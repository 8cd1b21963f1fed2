//! Helpers shared by the engine's integration tests: an echo engine that reports what its
//! handler sees, in-memory requests through the tower service, and WebSocket clients.

#![allow(dead_code, unreachable_pub)] // each test binary uses a different subset

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode, header};
use http_body::{Body, Frame as BodyFrame};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::DuplexStream;
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tower::ServiceExt as _;
use volley_engine::{CloseReason, Engine, EngineConfig, EngineSocket, Frame, Message};

/// What the echo handler saw.
#[derive(Debug)]
pub enum Event {
    /// A session started; the handle lets a test send on it.
    Open(EngineSocket),
    /// A message from the client of session `sid`.
    Message(String, Message),
    /// The session `sid` ended with this reason.
    Closed(String, CloseReason),
}

/// An engine whose handler echoes every message and reports everything on `events`.
pub struct Harness {
    pub engine: Engine,
    pub events: mpsc::UnboundedReceiver<Event>,
}

impl Harness {
    pub fn new(config: EngineConfig) -> Self {
        let (tx, events) = mpsc::unbounded_channel();
        let engine = Engine::new(config, move |socket, mut incoming| {
            let tx = tx.clone();
            async move {
                let sid = socket.sid().to_owned();
                let _ = tx.send(Event::Open(socket.clone()));
                let reason = loop {
                    match incoming.recv().await {
                        Ok(msg) => {
                            let _ = tx.send(Event::Message(sid.clone(), msg.clone()));
                            // A failed echo (session closing) is not the test's business: the
                            // loop goes on until `recv` reports why the session ended.
                            let _ = match msg {
                                Message::Text(t) => {
                                    socket.send(Frame::Text([b"4".as_slice(), &t].concat().into()))
                                }
                                Message::Binary(b) => socket.send_binary(b),
                            };
                        }
                        Err(reason) => break reason,
                    }
                };
                let _ = tx.send(Event::Closed(sid, reason));
            }
        });
        Self { engine, events }
    }

    /// The echo engine with Node's defaults.
    pub fn default_config() -> Self {
        Self::new(EngineConfig::default())
    }

    /// The next event, failing the test if none comes within 60 s (only a guard against a
    /// hang: every event a test waits for is due before, on the paused clock too).
    pub async fn next_event(&mut self) -> Event {
        tokio::time::timeout(Duration::from_secs(60), self.events.recv())
            .await
            .expect("no handler event within 60 s")
            .expect("the handler channel closed")
    }

    /// The handle of the next session opened.
    pub async fn next_open(&mut self) -> EngineSocket {
        match self.next_event().await {
            Event::Open(s) => s,
            other => panic!("expected a session to open, got {other:?}"),
        }
    }

    /// The next message, with the sid of its session.
    pub async fn next_message(&mut self) -> (String, Message) {
        match self.next_event().await {
            Event::Message(sid, m) => (sid, m),
            other => panic!("expected a message, got {other:?}"),
        }
    }

    /// The next close, with the sid of its session.
    pub async fn next_close(&mut self) -> (String, CloseReason) {
        match self.next_event().await {
            Event::Closed(sid, r) => (sid, r),
            other => panic!("expected a session to close, got {other:?}"),
        }
    }

    /// Asserts that the handler has reported nothing more so far.
    pub fn assert_no_event(&mut self) {
        if let Ok(e) = self.events.try_recv() {
            panic!("unexpected handler event: {e:?}");
        }
    }

    /// Opens a polling session and returns its sid (and consumes the handler's open event).
    pub async fn handshake(&mut self) -> String {
        self.handshake_socket().await.sid().to_owned()
    }

    /// Opens a polling session and returns the handler's handle to it.
    pub async fn handshake_socket(&mut self) -> EngineSocket {
        let res = get(&self.engine, "/engine.io/?EIO=4&transport=polling").await;
        assert_eq!(res.status, StatusCode::OK, "handshake failed: {res:?}");
        let sid = open_packet(&res.body)["sid"]
            .as_str()
            .expect("sid is a string")
            .to_owned();
        let socket = self.next_open().await;
        assert_eq!(socket.sid(), sid);
        socket
    }
}

/// An HTTP response, read whole.
#[derive(Debug)]
pub struct Res {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Res {
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("a UTF-8 body")
    }

    pub fn header(&self, name: impl header::AsHeaderName) -> Option<&str> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("ASCII header"))
    }

    /// Asserts a Node-style error: this status, `application/json`, and exactly
    /// `{"code":code,"message":message}`.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: u64, message: &str) {
        assert_eq!(self.status.as_u16(), status, "status of {self:?}");
        assert_eq!(self.header(header::CONTENT_TYPE), Some("application/json"));
        let json: serde_json::Value =
            serde_json::from_slice(&self.body).expect("a JSON error body");
        assert_eq!(
            json,
            serde_json::json!({ "code": code, "message": message }),
            "body of {self:?}"
        );
        // Node writes the two keys in this order.
        assert_eq!(
            self.text(),
            format!(r#"{{"code":{code},"message":"{message}"}}"#)
        );
    }
}

/// Sends one request through the engine's tower service, in memory.
pub async fn call<B>(engine: &Engine, req: Request<B>) -> Res
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let res = engine
        .service()
        .oneshot(req)
        .await
        .unwrap_or_else(|e: Infallible| match e {});
    let (parts, body) = res.into_parts();
    let body = body
        .collect()
        .await
        .unwrap_or_else(|e: Infallible| match e {})
        .to_bytes();
    Res {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

pub fn request(method: Method, uri: &str, body: impl Into<Bytes>) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(uri)
        .body(Full::new(body.into()))
        .expect("a valid request")
}

pub async fn get(engine: &Engine, uri: &str) -> Res {
    call(engine, request(Method::GET, uri, Bytes::new())).await
}

pub async fn post(engine: &Engine, uri: &str, body: impl Into<Bytes>) -> Res {
    call(engine, request(Method::POST, uri, body)).await
}

/// The long-polling URI of a session.
pub fn poll_uri(sid: &str) -> String {
    format!("/engine.io/?EIO=4&transport=polling&sid={sid}")
}

/// Parses an open packet `0{...}`.
pub fn open_packet(body: &[u8]) -> serde_json::Value {
    assert_eq!(body.first(), Some(&b'0'), "not an open packet: {body:?}");
    serde_json::from_slice(&body[1..]).expect("open packet JSON")
}

/// A request body fed chunk by chunk through a channel, to keep a POST in flight.
pub struct ChannelBody {
    rx: mpsc::Receiver<Bytes>,
}

impl ChannelBody {
    pub fn new() -> (mpsc::Sender<Bytes>, Self) {
        let (tx, rx) = mpsc::channel(4);
        (tx, Self { rx })
    }
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<BodyFrame<Bytes>, Infallible>>> {
        self.rx
            .poll_recv(cx)
            .map(|chunk| chunk.map(|c| Ok(BodyFrame::data(c))))
    }
}

/// For tests on tokio's paused clock: returns once every task of the runtime waits (the paused
/// clock only moves when nothing can run), so the session drivers have done all they can for
/// now. Not a wait for some real time: the same every run, however loaded the machine.
pub async fn settle() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

/// A WebSocket client connected to `engine` through an in-memory pipe (no socket, so the
/// paused test clock only moves when everything waits on a timer).
pub async fn ws_in_memory(engine: &Engine, query: &str) -> WebSocketStream<DuplexStream> {
    let (client, server) = tokio::io::duplex(1 << 16);
    let service = TowerToHyperService::new(engine.service());
    tokio::spawn(async move {
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(server), service)
            .with_upgrades()
            .await;
    });
    let url = format!("ws://localhost/engine.io/?{query}");
    let (ws, res) = tokio_tungstenite::client_async(url, client)
        .await
        .expect("in-memory WebSocket handshake");
    assert_eq!(res.status(), StatusCode::SWITCHING_PROTOCOLS);
    ws
}

/// A WebSocket client over real TCP.
pub type TcpWs = WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Serves `engine` with [`volley_engine::serve`] on a loopback port and returns its address.
pub async fn serve_tcp(engine: &Engine) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("local address");
    let service = engine.service();
    tokio::spawn(volley_engine::serve(listener, service));
    addr
}

/// Opens a WebSocket to the engine at `addr` with this query string.
pub async fn ws_tcp(addr: std::net::SocketAddr, query: &str) -> TcpWs {
    let url = format!("ws://{addr}/engine.io/?{query}");
    let (ws, res) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(url),
    )
    .await
    .expect("WebSocket handshake within 10 s")
    .expect("WebSocket handshake");
    assert_eq!(res.status(), StatusCode::SWITCHING_PROTOCOLS);
    ws
}

/// The next WebSocket message, failing the test if none comes within 10 s (a guard against
/// a hang only). `None` when the stream ended or failed.
pub async fn ws_next<S>(
    ws: &mut WebSocketStream<S>,
) -> Option<tokio_tungstenite::tungstenite::Message>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use futures_util::StreamExt as _;
    tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("no WebSocket frame within 10 s")
        .and_then(Result::ok)
}

/// Reads until the server closes `ws`; returns the close frame's code, if one came.
pub async fn ws_closed<S>(ws: &mut WebSocketStream<S>) -> Option<u16>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio_tungstenite::tungstenite::Message as M;
    loop {
        match ws_next(ws).await {
            Some(M::Close(frame)) => return frame.map(|f| u16::from(f.code)),
            None => return None,
            Some(M::Ping(_) | M::Pong(_)) => {}
            Some(other) => panic!("expected the socket to close, got {other:?}"),
        }
    }
}

/// Reads the open packet of a WebSocket session and returns it.
pub async fn ws_open_packet<S>(ws: &mut WebSocketStream<S>) -> serde_json::Value
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    match ws_next(ws).await {
        Some(tokio_tungstenite::tungstenite::Message::Text(t)) => open_packet(t.as_bytes()),
        other => panic!("expected the open packet, got {other:?}"),
    }
}

/// A WebSocket upgrade request for the in-memory service (no connection behind it, so only
/// refusals can be tested with it).
pub fn ws_request(uri: &str) -> Request<Full<Bytes>> {
    Request::builder()
        .uri(uri)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_VERSION, "13")
        .header(header::SEC_WEBSOCKET_KEY, "dGhlIHNhbXBsZSBub25jZQ==")
        .body(Full::new(Bytes::new()))
        .expect("a valid request")
}
