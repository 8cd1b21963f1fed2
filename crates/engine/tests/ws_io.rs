//! The engine's WebSocket on the connections it can be given: a frame that came in the same
//! write as the upgrade request (read by hyper along with it), and a connection of an IO type
//! that is not a `TcpStream`, which stays behind hyper's upgrade.

mod common;

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use common::{Harness, TcpWs, serve_tcp, ws_next, ws_open_packet, ws_tcp};
use futures_util::SinkExt as _;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::Role;
use volley_engine::{Engine, Message};

const WS_HANDSHAKE: &str = "EIO=4&transport=websocket";

/// A masked text frame, as a client writes it.
fn client_text_frame(text: &str) -> Vec<u8> {
    assert!(text.len() < 126);
    let mask = [0x12, 0x34, 0x56, 0x78];
    let mut frame = vec![0x81, 0x80 | text.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(text.bytes().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
    frame
}

#[tokio::test]
async fn frames_sent_with_the_upgrade_request_are_read_first() {
    let mut h = Harness::default_config();
    let addr = serve_tcp(&h.engine).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET /engine.io/?{WS_HANDSHAKE} HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\n\
         Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    // One write: hyper's first read takes the frames along with the request, and hands
    // them over with the upgraded connection.
    let mut bytes = request.into_bytes();
    bytes.extend(client_text_frame("4early"));
    bytes.extend(client_text_frame("4second"));
    stream.write_all(&bytes).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(stream.read_u8().await.unwrap());
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{head:?}");
    let mut ws = WebSocketStream::from_raw_socket(stream, Role::Client, None).await;
    let sid = ws_open_packet(&mut ws).await["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    h.next_open().await;
    for text in ["early", "second"] {
        assert_eq!(
            h.next_message().await,
            (sid.clone(), Message::Text(Bytes::from(text)))
        );
        assert_eq!(
            ws_next(&mut ws).await,
            Some(WsMessage::text(format!("4{text}")))
        );
    }
    // And the socket itself after them.
    ws.send(WsMessage::text("4later")).await.unwrap();
    assert_eq!(ws_next(&mut ws).await, Some(WsMessage::text("4later")));
}

/// A user's own IO type around the socket (a stand-in for TLS and the like).
struct Wrapper(TcpStream);

impl AsyncRead for Wrapper {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Wrapper {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// Serves `engine` through hyper on a loopback port, every connection wrapped in [`Wrapper`].
async fn serve_wrapped(engine: &Engine) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = engine.service();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let service = TowerToHyperService::new(service.clone());
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(Wrapper(stream)), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_websocket_on_another_io_type_echoes() {
    let mut h = Harness::default_config();
    let addr = serve_wrapped(&h.engine).await;
    let mut ws: TcpWs = ws_tcp(addr, WS_HANDSHAKE).await;
    let sid = ws_open_packet(&mut ws).await["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let socket = h.next_open().await;
    for i in 0..20 {
        ws.send(WsMessage::text(format!("4m{i}"))).await.unwrap();
    }
    for i in 0..20 {
        assert_eq!(
            h.next_message().await,
            (sid.clone(), Message::Text(Bytes::from(format!("m{i}"))))
        );
        assert_eq!(
            ws_next(&mut ws).await,
            Some(WsMessage::text(format!("4m{i}")))
        );
    }
    socket.send_text("from server").unwrap();
    assert_eq!(
        ws_next(&mut ws).await,
        Some(WsMessage::text("4from server"))
    );
}
