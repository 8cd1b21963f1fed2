//! The WebSocket handshake: `101` at once, then a short task waits for hyper's upgrade and
//! hands the socket to the session (upgrade) or opens a WebSocket-only session.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::Full;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use crate::command::Command;
use crate::engine::Engine;
use crate::error::EngineError;
use crate::request::RequestInfo;
use crate::socket::Shared;
use crate::ws_io::WsIo;

/// Room in a WebSocket's write buffer beyond the largest frame a session may queue: frame
/// headers, a pong and a close frame.
const WS_WRITE_HEADROOM: usize = 64 * 1024;

/// Bytes of frames tungstenite gathers before writing even without a flush.
const WS_WRITE_BATCH: usize = 16 * 1024;

pub(crate) fn websocket_handshake(
    engine: &Engine,
    req: &mut http::request::Parts,
    info: RequestInfo,
    existing: Option<Arc<Shared>>,
) -> Result<Response<Full<Bytes>>, EngineError> {
    let key = req
        .headers
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or(EngineError::BadRequest)?;
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    // Present when the server runs with HTTP/1 upgrades enabled (hyper, axum).
    let on_upgrade = req
        .extensions
        .remove::<hyper::upgrade::OnUpgrade>()
        .ok_or(EngineError::BadRequest)?;
    let engine = engine.clone();
    let config = engine.config();
    // Frames are written one by one (`write_buffer_size(0)`), and the driver offers the next
    // one only once the socket took the previous one, so tungstenite's write buffer holds
    // at most one frame plus a control frame; `max_write_buffer_size` makes that a hard
    // bound too. The backlog itself is bounded by the session (`max_buffered_bytes`).
    let ws_config = WebSocketConfig::default()
        .read_buffer_size(config.ws_read_buffer)
        // Frames collect here until the driver flushes, which it does once the read side
        // would block: the replies to every frame of one read leave in one write. (With 0,
        // tungstenite writes each frame at once: one sendto per message under pipelining.)
        .write_buffer_size(WS_WRITE_BATCH)
        .max_write_buffer_size(config.max_buffered_bytes.saturating_add(WS_WRITE_HEADROOM))
        .max_message_size(Some(config.max_payload))
        .max_frame_size(Some(config.max_payload));
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(error = %e, "websocket upgrade failed");
                return;
            }
        };
        let io = WsIo::new(upgraded);
        let ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(ws_config)).await;
        let ws = Box::new(ws);
        match existing {
            Some(session) => {
                // Refused once the session is over: the WebSocket is dropped.
                let _ = session.send_command(Command::Upgrade(ws));
            }
            None => {
                if let Err(e) = engine.open_session(info, Some(ws)) {
                    // Full or shutting down since the checks before the 101.
                    engine.count_refused(&e);
                    tracing::debug!(error = %e, "websocket session refused");
                }
            }
        }
    });
    let mut res = Response::new(Full::new(Bytes::new()));
    *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = res.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    Ok(res)
}

/// A refused WebSocket upgrade, as Node's `abortUpgrade` writes it: 400 (503 when the server
/// takes no more sessions, 429 when rate limited), `text/html`, the bare message, and the
/// connection closed.
pub(crate) fn upgrade_refusal(e: EngineError) -> Response<Full<Bytes>> {
    let status = match e {
        EngineError::Unavailable | EngineError::TooManyRequests { .. } => e.status(),
        _ => StatusCode::BAD_REQUEST,
    };
    let mut res = Response::new(Full::new(Bytes::from(e.message().to_owned())));
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    e.add_retry_after(&mut res);
    res
}
