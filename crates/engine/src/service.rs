//! The tower service: classifies each request (handshake, poll, post, upgrade) and answers
//! it as Node's `engine.io` does.

use std::convert::Infallible;
use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body::{Body, Frame as BodyFrame, SizeHint};
use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tower_layer::Layer;
use tower_service::Service;

use crate::config::{AllowOrigin, TransportKind};
use crate::connection::Command;
use crate::engine::Engine;
use crate::error::{CloseReason, EngineError};
use crate::request::RequestInfo;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Room in a WebSocket's write buffer beyond the largest frame a session may queue: frame
/// headers, a pong and a close frame.
const WS_WRITE_HEADROOM: usize = 64 * 1024;

/// Serves the engine's path; other requests go to `S`.
#[derive(Debug, Clone)]
pub struct EngineService<S> {
    engine: Engine,
    inner: S,
}

impl<S> EngineService<S> {
    pub(crate) fn new(engine: Engine, inner: S) -> Self {
        Self { engine, inner }
    }

    /// The engine behind this service.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

/// A [`Layer`] that puts the engine in front of another service.
#[derive(Debug, Clone)]
pub struct EngineLayer {
    engine: Engine,
}

impl EngineLayer {
    pub(crate) fn new(engine: Engine) -> Self {
        Self { engine }
    }
}

impl<S> Layer<S> for EngineLayer {
    type Service = EngineService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        EngineService::new(self.engine.clone(), inner)
    }
}

/// The fallback of [`Engine::service`]: 404 for every request outside the engine's path.
#[derive(Debug, Clone, Copy, Default)]
pub struct NotFound;

impl<B> Service<Request<B>> for NotFound {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<B>) -> Self::Future {
        let mut res = Response::new(Full::new(Bytes::new()));
        *res.status_mut() = StatusCode::NOT_FOUND;
        std::future::ready(Ok(res))
    }
}

pin_project_lite::pin_project! {
    /// The response body of [`EngineService`]: the engine's own, or the inner service's.
    #[project = ResponseBodyProj]
    #[derive(Debug)]
    #[allow(missing_docs)] // the macro takes no doc comments on variant fields

    pub enum ResponseBody<B> {
        /// A body written by the engine.
        Engine { #[pin] body: Full<Bytes> },
        /// The inner service's body.
        Inner { #[pin] body: B },
    }
}

impl<B> ResponseBody<B> {
    fn engine(body: Full<Bytes>) -> Self {
        Self::Engine { body }
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<BodyFrame<Bytes>, Self::Error>>> {
        match self.project() {
            ResponseBodyProj::Engine { body } => match body.poll_frame(cx) {
                Poll::Ready(Some(Ok(f))) => Poll::Ready(Some(Ok(f))),
                Poll::Ready(Some(Err(e))) => match e {},
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
            ResponseBodyProj::Inner { body } => body.poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Engine { body } => body.is_end_stream(),
            Self::Inner { body } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Engine { body } => body.size_hint(),
            Self::Inner { body } => body.size_hint(),
        }
    }
}

impl<S, B, ResB> Service<Request<B>> for EngineService<S>
where
    S: Service<Request<B>, Response = Response<ResB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
    ResB: Body<Data = Bytes>,
{
    type Response = Response<ResponseBody<ResB>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        // The inner service is driven to readiness in `call`, on a clone, only when a
        // request is for it.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        if !is_engine_path(req.uri().path(), self.engine.config().path()) {
            let clone = self.inner.clone();
            let mut inner = std::mem::replace(&mut self.inner, clone);
            return Box::pin(async move {
                poll_fn(|cx| inner.poll_ready(cx)).await?;
                let res = inner.call(req).await?;
                Ok(res.map(|body| ResponseBody::Inner { body }))
            });
        }
        let engine = self.engine.clone();
        Box::pin(async move {
            let res = handle(engine, req).await;
            Ok(res.map(ResponseBody::engine))
        })
    }
}

fn is_engine_path(path: &str, engine_path: &str) -> bool {
    path.starts_with(engine_path) || path == engine_path.trim_end_matches('/')
}

async fn handle<B>(engine: Engine, req: Request<B>) -> Response<Full<Bytes>>
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
        return Err(EngineError::UnknownTransport);
    }
    let upgrade = transport == TransportKind::WebSocket && info.is_websocket_upgrade();
    match info.sid.clone() {
        None => {
            if info.method != Method::GET {
                return Err(EngineError::BadHandshakeMethod);
            }
            if transport == TransportKind::WebSocket && !upgrade {
                return Err(EngineError::BadRequest);
            }
            engine.accepts_sessions()?;
            engine.check_rate(&info)?;
            if let Some(allow) = &engine.config().allow_request {
                allow(&info).await.map_err(EngineError::Forbidden)?;
            }
            // After `allow_request`, as Node checks the protocol only in its handshake.
            if info.eio.as_deref() != Some("4") {
                return Err(EngineError::UnsupportedProtocolVersion);
            }
            if upgrade {
                websocket_handshake(engine, req, info, None)
            } else {
                polling_handshake(engine, info)
            }
        }
        Some(sid) => {
            let entry = engine
                .shared
                .registry
                .get(&sid)
                .ok_or(EngineError::UnknownSid)?;
            if upgrade {
                return websocket_handshake(engine, req, info, Some(entry.commands));
            }
            if transport == TransportKind::WebSocket
                || entry.shared.transport() != TransportKind::Polling
            {
                // Node: "unexpected transport without upgrade".
                return Err(EngineError::BadRequest);
            }
            match req.method {
                Method::GET => poll(entry).await,
                Method::POST => post(engine, entry, body).await,
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

fn polling_handshake(
    engine: &Engine,
    info: RequestInfo,
) -> Result<Response<Full<Bytes>>, EngineError> {
    let (sid, open) = engine.open_session(info, None)?;
    let crate::socket::Frame::Text(body) = open else {
        return Err(EngineError::BadRequest);
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

async fn poll(entry: crate::engine::Entry) -> Result<Response<Full<Bytes>>, EngineError> {
    let (tx, rx) = oneshot::channel();
    entry
        .commands
        .send(Command::Poll(tx))
        .await
        .map_err(|_| EngineError::UnknownSid)?;
    let body = rx.await.map_err(|_| EngineError::UnknownSid)??;
    Ok(text_response(body))
}

/// Clears the session's "POST in flight" mark when the request ends, however it ends.
struct PostGuard<'a>(&'a std::sync::atomic::AtomicBool);

impl Drop for PostGuard<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

async fn post<B>(
    engine: &Engine,
    entry: crate::engine::Entry,
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
            .commands
            .send(Command::Fail(CloseReason::TransportError))
            .await;
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
            .commands
            .try_send(Command::Fail(CloseReason::TransportError));
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
                .commands
                .send(Command::Fail(CloseReason::TransportClose))
                .await;
            return Err(EngineError::BadRequest);
        }
    };
    // Node reads a body as UTF-8 text, with U+FFFD for each invalid sequence.
    let body = match std::str::from_utf8(&body) {
        Ok(_) => body,
        Err(_) => Bytes::from(String::from_utf8_lossy(&body).into_owned()),
    };
    let (tx, rx) = oneshot::channel();
    entry
        .commands
        .send(Command::Post(Box::new((body, tx))))
        .await
        .map_err(|_| EngineError::UnknownSid)?;
    rx.await.map_err(|_| EngineError::UnknownSid)??;
    let mut res = Response::new(Full::new(Bytes::from_static(b"ok")));
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    Ok(res)
}

/// Bytes of frames tungstenite gathers before writing even without a flush.
const WS_WRITE_BATCH: usize = 16 * 1024;

fn websocket_handshake(
    engine: &Engine,
    req: &mut http::request::Parts,
    info: RequestInfo,
    existing: Option<tokio::sync::mpsc::Sender<Command>>,
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
        let ws =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(ws_config))
                .await;
        let ws = Box::new(ws);
        match existing {
            Some(commands) => {
                if let Err(tokio::sync::mpsc::error::SendError(Command::Upgrade(ws))) =
                    commands.send(Command::Upgrade(ws)).await
                {
                    drop(ws);
                }
            }
            None => {
                if let Err(e) = engine.open_session(info, Some(ws)) {
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
fn upgrade_refusal(e: EngineError) -> Response<Full<Bytes>> {
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

fn preflight_response(engine: &Engine, req: &http::request::Parts) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::new()));
    *res.status_mut() = StatusCode::NO_CONTENT;
    if let Some(cors) = &engine.config().cors {
        let h = res.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, cors.methods.clone());
        let allowed = cors.allowed_headers.clone().or_else(|| {
            req.headers
                .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
                .cloned()
        });
        if let Some(allowed) = allowed {
            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, allowed);
        }
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    }
    res
}

fn add_cors_headers(
    engine: &Engine,
    origin: Option<&HeaderValue>,
    res: &mut Response<Full<Bytes>>,
) {
    let Some(cors) = &engine.config().cors else {
        return;
    };
    let allow = match (&cors.origin, origin) {
        (AllowOrigin::Any, Some(o)) if cors.credentials => Some(o.clone()),
        (AllowOrigin::Any, _) => Some(HeaderValue::from_static("*")),
        (AllowOrigin::Mirror, Some(o)) => Some(o.clone()),
        (AllowOrigin::List(list), Some(o)) if list.contains(o) => Some(o.clone()),
        _ => None,
    };
    let h = res.headers_mut();
    if let Some(allow) = allow {
        if allow != "*" {
            h.append(header::VARY, HeaderValue::from_static("Origin"));
        }
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
        if cors.credentials {
            h.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
    }
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
