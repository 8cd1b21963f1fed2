//! What the clients say on the wire: Engine.IO v4 / Socket.IO v5 over a raw WebSocket, the
//! broadcast payload, and the clock every process shares.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

pub(crate) type Ws = WebSocketStream<TcpStream>;
pub(crate) type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Nanoseconds since the Unix epoch: the one clock the generator's processes share on one
/// host (`Instant` cannot be compared across processes).
pub(crate) fn epoch_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// TCP connect from the loopback source address `127.0.0.<src>` with a kernel-chosen port,
/// so that ~95,000 connections do not exhaust one address's ephemeral ports. SO_LINGER 0:
/// the socket closes with a RST and leaves no TIME_WAIT entry to slow down the next run.
pub(crate) async fn tcp_connect(port: u16, src: u8) -> std::io::Result<TcpStream> {
    let sock = TcpSocket::new_v4()?;
    sock.bind(SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, src)),
        0,
    ))?;
    let tcp = sock
        .connect(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port))
        .await?;
    tcp.set_nodelay(true)?;
    tcp.set_zero_linger()?;
    Ok(tcp)
}

/// The next text frame; binary frames and WebSocket pings are skipped.
async fn next_text(ws: &mut Ws) -> Res<String> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => return Ok(t.as_str().to_owned()),
            Some(Ok(Message::Close(_))) | None => return Err("connection closed".into()),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.into()),
        }
    }
}

/// TCP connect, WebSocket upgrade, Engine.IO open, Socket.IO CONNECT to `/`, within
/// `timeout`.
pub(crate) async fn connect_sio(port: u16, src: u8, timeout: Duration) -> Res<Ws> {
    let attempt = async {
        let tcp = tcp_connect(port, src).await?;
        let url = format!("ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket");
        let cfg = WebSocketConfig::default().read_buffer_size(4096);
        let (mut ws, _) = tokio_tungstenite::client_async_with_config(url, tcp, Some(cfg)).await?;
        let open = next_text(&mut ws).await?;
        if !open.starts_with("0{") {
            return Err(format!("expected the Engine.IO open packet, got {open:.60}").into());
        }
        ws.send(Message::text("40")).await?;
        loop {
            let m = next_text(&mut ws).await?;
            if m.starts_with("40") {
                return Ok(ws);
            } else if m == "2" {
                ws.send(Message::text("3")).await?;
            } else if m.starts_with("44") {
                return Err(format!("CONNECT_ERROR {m:.80}").into());
            }
        }
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| format!("no Socket.IO connection within {timeout:?}"))?
}

/// The frame the sender emits: `42["broadcast","<seq>|<t>|<padding>"]`, `t` in epoch ns.
pub(crate) fn broadcast_frame(seq: u64, t: u64, padding: &str) -> Message {
    Message::text(format!("42[\"broadcast\",\"{seq}|{t}|{padding}\"]"))
}

/// The sequence number of a received `broadcast` event, or `None` for any other frame.
pub(crate) fn broadcast_seq(frame: &str) -> Option<u64> {
    let rest = frame.strip_prefix("42[\"broadcast\",\"")?;
    let end = rest.find('|')?;
    rest[..end].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_the_sequence_it_wrote() {
        let m = broadcast_frame(42, 7, "xx");
        assert_eq!(broadcast_seq(m.to_text().unwrap()), Some(42));
        assert_eq!(broadcast_seq("42[\"echo\",\"1|2|x\"]"), None);
        assert_eq!(broadcast_seq("42[\"broadcast\",\"a|2|x\"]"), None);
        assert_eq!(broadcast_seq("2"), None);
    }
}
