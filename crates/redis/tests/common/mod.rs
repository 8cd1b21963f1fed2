//! What the integration tests share: a redis-server of their own on a free loopback port,
//! raw WebSocket clients, and hang bounds.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message as Ws;

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) fn ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    let mut buf = [0u8; 16];
    s.write_all(b"PING\r\n").is_ok()
        && s.read(&mut buf)
            .is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
}

pub(crate) struct Redis(std::process::Child);

impl Redis {
    pub(crate) fn start(port: u16) -> Self {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start redis-server: {e}"));
        // A readiness probe: redis-server has no other signal than its log. The bound is only
        // reached when redis-server is broken.
        let deadline = Instant::now() + WAIT;
        while !ping(port) {
            assert!(
                Instant::now() < deadline,
                "redis-server does not answer on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self(child)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The longest any expected thing may take: a bound on a hang, never reached unless
/// something is broken, however busy the machine.
pub(crate) const WAIT: Duration = Duration::from_secs(30);

/// Polls `f` until it holds, failing after [`WAIT`]: only for a state that no signal reports
/// (the adapter has no "link lost" notification).
pub(crate) async fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !f() {
        assert!(Instant::now() < deadline, "{what}: not within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub(crate) type Client =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub(crate) async fn next_text(ws: &mut Client) -> String {
    // One bound for the whole wait: pings (answered here) must not extend it.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("a message within WAIT")
            .expect("open")
            .expect("no error");
        if let Ws::Text(t) = msg {
            let t = t.to_string();
            if t == "2" {
                ws.send(Ws::text("3")).await.unwrap();
                continue;
            }
            return t;
        }
    }
}

/// Opens a raw Socket.IO client (WebSocket only) on namespace "/" of the server at `addr`.
pub(crate) async fn connect_client(addr: std::net::SocketAddr) -> Client {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!(
        "ws://{addr}/socket.io/?EIO=4&transport=websocket"
    ))
    .await
    .unwrap();
    assert!(next_text(&mut ws).await.starts_with("0{"));
    ws.send(Ws::text("40")).await.unwrap();
    assert!(next_text(&mut ws).await.starts_with("40{"));
    ws
}

/// What `/`'s adapter reports in the server's metrics.
pub(crate) fn adapter_stats(io: &volley::SocketIo) -> volley::adapter::AdapterStats {
    let m = io.server_metrics();
    m.namespaces
        .iter()
        .find(|n| n.name == "/")
        .expect("namespace /")
        .adapter
}
