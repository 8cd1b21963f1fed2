//! Helpers of the `reliability_*` tests: a server on a loopback port, raw Socket.IO clients
//! (the churn tool's, included from `tools/churn`), raw HTTP, RSS, and a panic detector.

#![allow(dead_code, unreachable_pub)] // each test binary uses a different subset

#[path = "../../../../tools/churn/src/churn.rs"]
pub mod churn;
#[path = "../../../../tools/churn/src/client.rs"]
pub mod client;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use volley::SocketIo;

/// Serves `io` with `volley::serve` on a loopback port.
pub async fn serve(io: &SocketIo) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(volley::serve(listener, io.service()));
    addr
}

/// This process's resident set size, in bytes.
pub fn rss() -> u64 {
    churn::rss_bytes(None).expect("VmRSS in /proc/self/status")
}

pub fn mib(b: u64) -> f64 {
    b as f64 / (1 << 20) as f64
}

static PANICS: AtomicUsize = AtomicUsize::new(0);

/// Counts panics anywhere in the process, spawned tasks included (tokio catches those, so
/// a server task that panics would otherwise go unnoticed).
pub fn count_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        default(info);
    }));
}

pub fn panics() -> usize {
    PANICS.load(Ordering::SeqCst)
}

/// An HTTP/1.1 response, read whole.
#[derive(Debug)]
pub struct HttpRes {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl HttpRes {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Reads one response from `stream`: the head, then a `Content-Length` body (or everything
/// until the peer closes). `None` if the connection ended before a status line.
pub async fn read_response(stream: &mut TcpStream) -> Option<HttpRes> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let len = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse::<usize>().ok())
            .flatten()
    });
    let mut body = buf[head_end..].to_vec();
    match len {
        Some(len) => {
            while body.len() < len {
                let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
                    .await
                    .ok()?
                    .ok()?;
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
            body.truncate(len);
        }
        None if status == 101 || status == 204 || status == 304 => {}
        None => {
            while let Ok(Ok(n)) =
                tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk)).await
            {
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
        }
    }
    Some(HttpRes { status, head, body })
}

/// Sends one request on a new connection and reads the answer.
pub async fn http(addr: SocketAddr, request: &[u8]) -> Option<HttpRes> {
    let mut stream = TcpStream::connect(addr).await.ok()?;
    stream.write_all(request).await.ok()?;
    read_response(&mut stream).await
}

/// A GET request.
pub fn get_req(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").into_bytes()
}

/// A POST request with a body.
pub fn post_req(path: &str, body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    req
}

/// Opens a long-polling Engine.IO session and returns its sid.
pub async fn polling_handshake(addr: SocketAddr) -> String {
    let res = http(addr, &get_req("/socket.io/?EIO=4&transport=polling"))
        .await
        .expect("a handshake answer");
    assert_eq!(res.status, 200, "{res:?}");
    let text = res.text();
    text.split("\"sid\":\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a sid in the open packet")
        .to_owned()
}

/// A small xorshift generator: reproducible garbage without a dependency.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}
