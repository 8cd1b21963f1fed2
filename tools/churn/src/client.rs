//! A raw Socket.IO v5 client over an Engine.IO v4 WebSocket: frames are written and read by
//! hand, so the server is exercised exactly as a client on the wire would, with nothing
//! hidden by a client library.
//!
//! Self-contained (tokio, tokio-tungstenite, futures-util and std only), so that tests can
//! include the file as a module.

use std::io;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// A WebSocket over plain TCP.
pub type Ws = WebSocketStream<TcpStream>;

/// Where a Socket.IO server is: `host:port` and the engine path (`/socket.io/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `host:port`.
    pub addr: String,
    /// The engine path, with leading and trailing slashes.
    pub path: String,
}

impl Target {
    /// Reads `http://host:port[/path/]` or `ws://...` (the path defaults to `/socket.io/`).
    pub fn parse(url: &str) -> Result<Self, String> {
        let rest = ["http://", "ws://"]
            .iter()
            .find_map(|scheme| url.strip_prefix(scheme))
            .ok_or_else(|| format!("{url}: only http:// and ws:// URLs are supported"))?;
        let (addr, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if addr.is_empty() {
            return Err(format!("{url}: no host"));
        }
        let mut path = if path.is_empty() || path == "/" {
            "/socket.io/".to_owned()
        } else {
            path.to_owned()
        };
        if !path.ends_with('/') {
            path.push('/');
        }
        let addr = if addr.contains(':') {
            addr.to_owned()
        } else {
            format!("{addr}:80")
        };
        Ok(Self { addr, path })
    }

    /// A target on a local address, at `/socket.io/`.
    pub fn local(addr: std::net::SocketAddr) -> Self {
        Self {
            addr: addr.to_string(),
            path: "/socket.io/".into(),
        }
    }

    /// The WebSocket URL of a new Engine.IO session.
    pub fn ws_url(&self) -> String {
        format!("ws://{}{}?EIO=4&transport=websocket", self.addr, self.path)
    }
}

/// How a client connects.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// The namespace to join (`/` by default).
    pub namespace: String,
    /// The CONNECT payload (`auth`), as JSON.
    pub auth: Option<String>,
    /// `SO_RCVBUF` of the client's socket, to make a client that stops reading fill up fast.
    pub recv_buffer: Option<u32>,
    /// How long any one step may take.
    pub timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            namespace: "/".into(),
            auth: None,
            recv_buffer: None,
            timeout: Duration::from_secs(10),
        }
    }
}

fn err(msg: impl Into<String>) -> io::Error {
    io::Error::other(msg.into())
}

async fn within<T>(
    d: Duration,
    what: &str,
    f: impl std::future::Future<Output = io::Result<T>>,
) -> io::Result<T> {
    tokio::time::timeout(d, f)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, format!("{what}: timed out")))?
}

/// Opens a TCP connection and the WebSocket of a new Engine.IO session; reads nothing yet.
pub async fn open_ws(target: &Target, recv_buffer: Option<u32>) -> io::Result<Ws> {
    // A literal address needs no lookup (which would run on tokio's blocking pool: threads
    // and allocator arenas coming and going, noise in a memory measurement).
    let addr = match target.addr.parse::<std::net::SocketAddr>() {
        Ok(a) => a,
        Err(_) => tokio::net::lookup_host(&target.addr)
            .await?
            .next()
            .ok_or_else(|| err(format!("{}: no address", target.addr)))?,
    };
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size)?;
    }
    let stream = socket.connect(addr).await?;
    stream.set_nodelay(true)?;
    // Small buffers: the churn runs thousands of these, possibly in the process it measures.
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let (ws, _) =
        tokio_tungstenite::client_async_with_config(target.ws_url(), stream, Some(config))
            .await
            .map_err(|e| err(format!("websocket handshake: {e}")))?;
    Ok(ws)
}

/// A Socket.IO client connected to one namespace.
#[derive(Debug)]
pub struct Client {
    ws: Ws,
    prefix: String,
    timeout: Duration,
    /// The Socket.IO socket id the server gave.
    pub sid: String,
}

impl Client {
    /// Connects: Engine.IO open packet, Socket.IO CONNECT, and the server's answer.
    pub async fn connect(target: &Target, opts: &ConnectOptions) -> io::Result<Self> {
        let ws = within(opts.timeout, "connect", open_ws(target, opts.recv_buffer)).await?;
        let prefix = if opts.namespace == "/" || opts.namespace.is_empty() {
            String::new()
        } else {
            format!("{},", opts.namespace)
        };
        let mut client = Self {
            ws,
            prefix,
            timeout: opts.timeout,
            sid: String::new(),
        };
        match client.next_engine_text().await? {
            Some(open) if open.starts_with('0') => {}
            other => return Err(err(format!("expected the open packet, got {other:?}"))),
        }
        let connect = format!("40{}{}", client.prefix, opts.auth.as_deref().unwrap_or(""));
        client.send_raw(connect).await?;
        let answer = client
            .next_packet()
            .await?
            .ok_or_else(|| err("closed before the CONNECT answer"))?;
        let body = answer
            .strip_prefix('0')
            .and_then(|a| a.strip_prefix(client.prefix.as_str()))
            .ok_or_else(|| err(format!("CONNECT refused: {answer}")))?;
        // {"sid":"..."}
        client.sid = body
            .split("\"sid\":\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap_or_default()
            .to_owned();
        Ok(client)
    }

    /// Sends an Engine.IO text frame as is (`4...` for a message).
    pub async fn send_raw(&mut self, frame: String) -> io::Result<()> {
        let timeout = self.timeout;
        within(timeout, "send", async {
            self.ws
                .send(Message::text(frame))
                .await
                .map_err(|e| err(format!("send: {e}")))
        })
        .await
    }

    /// Emits `event` with one JSON argument.
    pub async fn emit(&mut self, event: &str, arg_json: &str) -> io::Result<()> {
        let frame = format!("42{}[\"{event}\",{arg_json}]", self.prefix);
        self.send_raw(frame).await
    }

    /// Emits `event` with one JSON argument, asking for an acknowledgement with `id`, and
    /// waits for it; returns the acknowledgement's arguments array. Other packets that come
    /// meanwhile are skipped.
    pub async fn emit_with_ack(
        &mut self,
        id: u64,
        event: &str,
        arg_json: &str,
    ) -> io::Result<String> {
        let frame = format!("42{}{id}[\"{event}\",{arg_json}]", self.prefix);
        self.send_raw(frame).await?;
        let want = format!("3{}{id}", self.prefix);
        loop {
            let packet = self
                .next_packet()
                .await?
                .ok_or_else(|| err("closed before the acknowledgement"))?;
            if let Some(args) = packet.strip_prefix(want.as_str())
                && args.starts_with('[')
            {
                return Ok(args.to_owned());
            }
        }
    }

    /// The next Socket.IO packet (the text after the Engine.IO `4`), answering pings on the
    /// way; `None` once the server closed the session.
    pub async fn next_packet(&mut self) -> io::Result<Option<String>> {
        loop {
            match self.next_engine_text().await? {
                None => return Ok(None),
                Some(t) if t.starts_with('4') => return Ok(Some(t[1..].to_owned())),
                Some(t) if t == "1" => return Ok(None),
                Some(_) => {}
            }
        }
    }

    /// The next Engine.IO text packet, answering pings; `None` at the end of the stream.
    async fn next_engine_text(&mut self) -> io::Result<Option<String>> {
        loop {
            let msg = within(self.timeout, "read", async { Ok(self.ws.next().await) }).await?;
            match msg {
                None => return Ok(None),
                Some(Err(e)) => return Err(err(format!("read: {e}"))),
                Some(Ok(Message::Text(t))) => {
                    if t.as_str() == "2" {
                        self.send_raw("3".into()).await?;
                        continue;
                    }
                    return Ok(Some(t.as_str().to_owned()));
                }
                Some(Ok(Message::Close(_))) => return Ok(None),
                Some(Ok(_)) => {}
            }
        }
    }

    /// Leaves the namespace (DISCONNECT), closes the WebSocket and waits for the server to
    /// finish the close (bounded by the timeout).
    pub async fn disconnect(mut self) -> io::Result<()> {
        let leave = format!("41{}", self.prefix);
        self.send_raw(leave).await?;
        let timeout = self.timeout;
        within(timeout, "close", async {
            let _ = self.ws.close(None).await;
            while let Some(Ok(_)) = self.ws.next().await {}
            Ok(())
        })
        .await
    }

    /// The underlying WebSocket, e.g. to stop reading it.
    pub fn into_ws(self) -> Ws {
        self.ws
    }
}
