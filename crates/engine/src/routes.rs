//! Answers one request under the engine's path as Node's `engine.io` does: classifies it by
//! its query (handshake, long-polling GET or POST, WebSocket upgrade) and hands it to the
//! session's driver, or answers the error.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use tokio::sync::oneshot;

use crate::command::Command;
use crate::config::TransportKind;
use crate::cors::{add_cors_headers, preflight_response};
use crate::engine::Engine;
use crate::error::{CloseReason, EngineError};
use crate::registry::Entry;
use crate::request::{ProtocolVersion, RequestInfo};
use crate::socket::Frame;
use crate::ws_handshake::{upgrade_refusal, websocket_handshake};

/// The error type of request bodies the engine accepts.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub(crate) async fn handle<B>(engine: Engine, req: Request<B>) -> Response<Full<Bytes>>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let (mut parts, body) = req.into_parts();
    let origin = parts.headers.get(header::ORIGIN).cloned();
    let preflight = parts.method == Method::OPTIONS && engine.config().cors.is_some();
    let upgrade = parts.headers.contains_key(header::UPGRADE);
    let mut res = if preflight {
        preflight_response(&engine, &parts)
    } else {
        match route(&engine, &mut parts, body).await {
            Ok(res) => res,
            Err(e) if upgrade => upgrade_refusal(e),
            Err(e) => e.into_response(),
        }
    };
    add_cors_headers(&engine, origin.as_ref(), &mut res);
    res
}

async fn route<B>(
    engine: &Engine,
    req: &mut http::request::Parts,
    body: B,
) -> Result<Response<Full<Bytes>>, EngineError>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let remote = remote_addr(&req.extensions);
    let info = RequestInfo::parse(
        req.method.clone(),
        req.uri.clone(),
        req.headers.clone(),
        remote,
    )?;
    let transport = info.transport_kind();
    if !engine.config().allows(transport) {
        if info.sid.is_none() {
            engine.count_refused(&EngineError::UnknownTransport);
        }
        return Err(EngineError::UnknownTransport);
    }
    let upgrade = transport == TransportKind::WebSocket && info.is_websocket_upgrade();
    match info.sid.clone() {
        None => {
            let refused = handshake(engine, req, info, upgrade).await;
            if let Err(e) = &refused {
                engine.count_refused(e);
            }
            refused
        }
        Some(sid) => {
            let entry = engine
                .shared
                .registry
                .get(&sid)
                .ok_or(EngineError::UnknownSid)?;
            if upgrade {
                return websocket_handshake(engine, req, info, Some(entry.shared));
            }
            if transport == TransportKind::WebSocket
                || entry.shared.transport() != TransportKind::Polling
            {
                // Node: "unexpected transport without upgrade".
                return Err(EngineError::BadRequest);
            }
            match req.method {
                Method::GET => poll(entry).await,
                Method::POST => post(engine, entry, &req.headers, body).await,
                // Node's polling transport answers any other method with a bare 500.
                _ => {
                    let mut res = Response::new(Full::new(Bytes::new()));
                    *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                    Ok(res)
                }
            }
        }
    }
}

/// A request without a sid: checks what Node checks, in its order, then opens a session.
async fn handshake(
    engine: &Engine,
    req: &mut http::request::Parts,
    info: RequestInfo,
    upgrade: bool,
) -> Result<Response<Full<Bytes>>, EngineError> {
    if info.method != Method::GET {
        return Err(EngineError::BadHandshakeMethod);
    }
    if info.transport_kind() == TransportKind::WebSocket && !upgrade {
        return Err(EngineError::BadRequest);
    }
    engine.accepts_sessions()?;
    engine.check_rate(&info)?;
    if let Some(allow) = &engine.config().allow_request {
        allow(&info).await.map_err(EngineError::Forbidden)?;
    }
    // After `allow_request`, as Node checks the protocol only in its handshake.
    // Node reads anything but `EIO=4` as v3.
    if info.protocol() == ProtocolVersion::V3 && !engine.config().allows_eio3() {
        return Err(EngineError::UnsupportedProtocolVersion);
    }
    if upgrade {
        websocket_handshake(engine, req, info, None)
    } else {
        polling_handshake(engine, info)
    }
}

fn polling_handshake(
    engine: &Engine,
    info: RequestInfo,
) -> Result<Response<Full<Bytes>>, EngineError> {
    let v3 = info.protocol() == ProtocolVersion::V3;
    let (sid, open) = engine.open_session(info, None)?;
    let Frame::Text(body) = open else {
        return Err(EngineError::BadRequest);
    };
    let body = if v3 {
        let mut out = bytes::BytesMut::new();
        volley_proto::engine::v3::push_text(&body, &mut out);
        out.freeze()
    } else {
        body
    };
    let mut res = text_response(body);
    if let Some(cookie) = &engine.config().cookie {
        let mut value = format!("{}={}; Path={}", cookie.name, sid, cookie.path);
        if cookie.http_only {
            value.push_str("; HttpOnly");
        }
        if !cookie.same_site.is_empty() {
            value.push_str("; SameSite=");
            value.push_str(&cookie.same_site);
        }
        if let Ok(v) = HeaderValue::from_str(&value) {
            res.headers_mut().insert(header::SET_COOKIE, v);
        }
    }
    Ok(res)
}

fn text_response(body: Bytes) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(body));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=UTF-8"),
    );
    res
}

async fn poll(entry: Entry) -> Result<Response<Full<Bytes>>, EngineError> {
    let (tx, rx) = oneshot::channel();
    entry
        .shared
        .send_command(Command::Poll(tx))
        .map_err(command_refused)?;
    let body = rx.await.map_err(|_| EngineError::UnknownSid)??;
    // An Engine.IO v3 binary payload starts with a marker byte 0 or 1; every text payload
    // (v3 or v4) starts with a printable character.
    if entry.shared.v3 && matches!(body.first(), Some(0 | 1)) {
        let mut res = Response::new(Full::new(body));
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        return Ok(res);
    }
    Ok(text_response(body))
}

/// The error for a request the session's driver did not take: the session is over (what
/// Node answers for an unknown sid), or the client has more requests in flight than a
/// well-behaved one ever has.
fn command_refused(cmd: Command) -> EngineError {
    drop(cmd);
    EngineError::UnknownSid
}

/// Clears the session's "POST in flight" mark when the request ends, however it ends.
struct PostGuard<'a>(&'a AtomicBool);

impl Drop for PostGuard<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

async fn post<B>(
    engine: &Engine,
    entry: Entry,
    req_headers: &http::HeaderMap,
    body: B,
) -> Result<Response<Full<Bytes>>, EngineError>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    if entry.shared.post_in_flight.swap(true, Ordering::AcqRel) {
        // Two POSTs at once break packet ordering: Node refuses and closes the session.
        let _ = entry
            .shared
            .send_command(Command::Fail(CloseReason::TransportError));
        return Err(EngineError::Overlap);
    }
    let _guard = PostGuard(&entry.shared.post_in_flight);
    let config = engine.config();
    let limit = config.max_payload;
    // While a POST is in flight the client cannot send another one, so no pong either: a
    // body that takes longer than pingInterval + pingTimeout belongs to a session that is
    // over anyway. Bounding the read keeps a trickled body from pinning the session's state.
    let read = Limited::new(body, limit).collect();
    let bound = config.ping_interval.saturating_add(config.ping_timeout);
    let Ok(read) = tokio::time::timeout(bound, read).await else {
        let _ = entry
            .shared
            .send_command(Command::Fail(CloseReason::TransportError));
        return Err(EngineError::BadRequest);
    };
    let body = match read {
        Ok(collected) => collected.to_bytes(),
        // Node drops a body over the limit and keeps the session.
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return Err(EngineError::PayloadTooLarge);
        }
        Err(_) => {
            let _ = entry
                .shared
                .send_command(Command::Fail(CloseReason::TransportClose));
            return Err(EngineError::BadRequest);
        }
    };
    // An Engine.IO v3 client that supports binary posts binary payloads as such.
    let binary = entry.shared.v3
        && req_headers
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes() == b"application/octet-stream");
    // Node reads a text body as UTF-8 text, with U+FFFD for each invalid sequence.
    let body = match std::str::from_utf8(&body) {
        _ if binary => body,
        Ok(_) => body,
        Err(_) => Bytes::from(String::from_utf8_lossy(&body).into_owned()),
    };
    let (tx, rx) = oneshot::channel();
    entry
        .shared
        .send_command(Command::Post(Box::new((body, binary, tx))))
        .map_err(command_refused)?;
    rx.await.map_err(|_| EngineError::UnknownSid)??;
    let mut res = Response::new(Full::new(Bytes::from_static(b"ok")));
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    Ok(res)
}

/// The peer address: a `SocketAddr` in the request extensions (what `serve` puts there), or,
/// with the `axum` feature, axum's `ConnectInfo<SocketAddr>`
/// (`into_make_service_with_connect_info::<SocketAddr>()`).
fn remote_addr(ext: &http::Extensions) -> Option<SocketAddr> {
    if let Some(addr) = ext.get::<SocketAddr>() {
        return Some(*addr);
    }
    #[cfg(feature = "axum")]
    if let Some(info) = ext.get::<axum::extract::ConnectInfo<SocketAddr>>() {
        return Some(info.0);
    }
    None
}
