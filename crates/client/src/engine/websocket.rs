//! The WebSocket transport (tokio-tungstenite over our TCP/TLS stream): one Engine.IO packet
//! per frame, binary messages as binary frames.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::ClientRequestBuilder;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage, Utf8Bytes};
use volley_proto::engine::{Message, OpenPacket, Packet};

use super::net::Stream;
use super::{EngineConfig, Pump, PumpCmd, PumpEvent, TransportKind, handshake, protocol_error};
use crate::error::{TransportError, TransportErrorKind};

pub(super) type WsStream = WebSocketStream<Stream>;

fn ws_error(e: impl std::fmt::Display) -> TransportError {
    TransportError::new(TransportErrorKind::WebSocket, format!("WebSocket: {e}"))
}

/// Opens a WebSocket to the server, for a new session (`sid` none) or an upgrade.
pub(super) async fn connect(
    cfg: &EngineConfig,
    sid: Option<&str>,
) -> Result<WsStream, TransportError> {
    let stream = super::net::connect(&cfg.target, &cfg.tls).await?;
    let uri: http::Uri = cfg.ws_uri(sid).parse().map_err(|e| {
        TransportError::new(
            TransportErrorKind::InvalidConfig,
            format!("WebSocket URI: {e}"),
        )
    })?;
    let mut req = ClientRequestBuilder::new(uri);
    for (k, v) in &cfg.headers {
        req = req.with_header(k.clone(), v.clone());
    }
    let mut config = WebSocketConfig::default();
    config.max_message_size = Some(64 << 20);
    let (ws, _) = tokio_tungstenite::client_async_with_config(req, stream, Some(config))
        .await
        .map_err(ws_error)?;
    Ok(ws)
}

/// Reads the next Engine.IO packet from a WebSocket (skipping control frames).
async fn read_packet(ws: &mut WsStream) -> Result<Packet, TransportError> {
    loop {
        match ws.next().await {
            Some(Ok(WsMessage::Text(t))) => {
                return Packet::decode_text(t.into()).map_err(|e| protocol_error(e.to_string()));
            }
            Some(Ok(WsMessage::Binary(b))) => return Ok(Packet::decode_binary(b)),
            Some(Ok(WsMessage::Close(_))) | None => {
                return Err(TransportError::new(
                    TransportErrorKind::Closed,
                    "the WebSocket was closed",
                ));
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(read_error(e)),
        }
    }
}

/// A failed WebSocket read or write. A connection that ends without a closing handshake (the server
/// was killed, the network reset) is a close, as the official client's `onclose` sees it
/// (`"transport close"`), not a transport error.
fn read_error(e: tungstenite::Error) -> TransportError {
    use tungstenite::error::ProtocolError;
    match e {
        tungstenite::Error::ConnectionClosed
        | tungstenite::Error::AlreadyClosed
        | tungstenite::Error::Io(_)
        | tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
            TransportError::new(
                TransportErrorKind::Closed,
                format!("the WebSocket was closed: {e}"),
            )
        }
        other => ws_error(other),
    }
}

/// A WebSocket-only session: the handshake is the first frame.
pub(super) async fn open(cfg: &EngineConfig) -> Result<(OpenPacket, Pump), TransportError> {
    let mut ws = connect(cfg, None).await?;
    let open = handshake(Some(read_packet(&mut ws).await?))?;
    Ok((open, spawn(ws, Vec::new())))
}

/// The upgrade probe: `2probe` out, `3probe` back.
pub(super) async fn probe(cfg: &EngineConfig, sid: &str) -> Result<WsStream, TransportError> {
    let mut ws = connect(cfg, Some(sid)).await?;
    ws.send(WsMessage::Text(Utf8Bytes::from_static("2probe")))
        .await
        .map_err(ws_error)?;
    match read_packet(&mut ws).await? {
        Packet::Pong(p) if &p[..] == b"probe" => Ok(ws),
        other => Err(protocol_error(format!(
            "unexpected answer to the upgrade probe: {:?}",
            other.packet_type()
        ))),
    }
}

fn frame(p: Packet) -> WsMessage {
    match p {
        Packet::Message(Message::Binary(b)) => WsMessage::Binary(b),
        other => {
            let text = other.to_text();
            // Text packets are built from UTF-8 text; `to_text` keeps them so.
            match Utf8Bytes::try_from(text.clone()) {
                Ok(t) => WsMessage::Text(t),
                Err(_) => WsMessage::Text(String::from_utf8_lossy(&text).into_owned().into()),
            }
        }
    }
}

/// Starts the pump of an open WebSocket; `initial` packets are reported first.
pub(super) fn spawn(ws: WsStream, initial: Vec<Packet>) -> Pump {
    Pump::spawn(TransportKind::WebSocket, move |cmd, ev, busy| {
        run(ws, initial, cmd, ev, busy)
    })
}

async fn run(
    mut ws: WsStream,
    initial: Vec<Packet>,
    mut cmd_rx: mpsc::UnboundedReceiver<PumpCmd>,
    ev_tx: mpsc::Sender<PumpEvent>,
    busy: Arc<AtomicBool>,
) {
    for p in initial {
        if ev_tx.send(PumpEvent::Packet(p)).await.is_err() {
            return;
        }
    }
    loop {
        tokio::select! {
            r = read_packet(&mut ws) => match r {
                Ok(p) => {
                    let close = p == Packet::Close;
                    if ev_tx.send(PumpEvent::Packet(p)).await.is_err() || close {
                        return;
                    }
                }
                Err(e) => {
                    let _ = ev_tx.send(PumpEvent::Error(e)).await;
                    return;
                }
            },
            cmd = cmd_rx.recv() => match cmd {
                Some(PumpCmd::Send(packets)) => {
                    busy.store(true, Ordering::Release);
                    let mut result = Ok(());
                    for p in packets {
                        result = ws.feed(frame(p)).await;
                        if result.is_err() {
                            break;
                        }
                    }
                    if result.is_ok() {
                        result = ws.flush().await;
                    }
                    busy.store(false, Ordering::Release);
                    if let Err(e) = result {
                        let _ = ev_tx.send(PumpEvent::Error(read_error(e))).await;
                        return;
                    }
                }
                Some(PumpCmd::Pause) => {}
                Some(PumpCmd::Close) | None => {
                    let _ = tokio::time::timeout(Duration::from_secs(1), async {
                        let _ = ws.send(frame(Packet::Close)).await;
                        let _ = ws.close(None).await;
                    })
                    .await;
                    return;
                }
            },
        }
    }
}
