//! Engine errors and their one mapping to HTTP responses as Node sends them.

use std::fmt;

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::Full;

/// Why the engine refused an HTTP request.
///
/// Each variant has the Engine.IO error code and message Node's `engine.io` answers with, as
/// `{"code":N,"message":"..."}` (see [`EngineError::into_response`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EngineError {
    /// Code 0: the `transport` parameter is missing, unknown or not enabled.
    UnknownTransport,
    /// Code 1: no session has that `sid`.
    UnknownSid,
    /// Code 2: a handshake (no `sid`) that is not a GET.
    BadHandshakeMethod,
    /// Code 3: the request is malformed or does not fit the session's state.
    BadRequest,
    /// Code 4: the `allow_request` hook refused the handshake, with its message.
    Forbidden(String),
    /// Code 5: `EIO` is missing or is not `4`.
    UnsupportedProtocolVersion,
    /// A POST body larger than `maxPayload` (HTTP 413 with an empty body, as Node; the
    /// session stays open).
    PayloadTooLarge,
    /// A long-polling GET or POST while another one of the same session is in flight (HTTP
    /// 400 with an empty body, as Node; the session is closed).
    Overlap,
    /// The server refuses new sessions (connection limit reached or shutting down; HTTP 503).
    Unavailable,
    /// The client's address made more handshakes than the handshake rate limit allows
    /// (HTTP 429 with `Retry-After`; code 4, as a refusal by Node's `allowRequest`).
    TooManyRequests {
        /// Seconds until the address may try again, sent as `Retry-After`.
        retry_after_secs: u64,
    },
}

impl EngineError {
    /// The Engine.IO error code sent in the JSON body.
    pub fn code(&self) -> u8 {
        match self {
            Self::UnknownTransport => 0,
            Self::UnknownSid => 1,
            Self::BadHandshakeMethod => 2,
            Self::BadRequest | Self::PayloadTooLarge | Self::Overlap | Self::Unavailable => 3,
            Self::Forbidden(_) | Self::TooManyRequests { .. } => 4,
            Self::UnsupportedProtocolVersion => 5,
        }
    }

    /// The message sent in the JSON body.
    pub fn message(&self) -> &str {
        match self {
            Self::UnknownTransport => "Transport unknown",
            Self::UnknownSid => "Session ID unknown",
            Self::BadHandshakeMethod => "Bad handshake method",
            Self::BadRequest | Self::Overlap => "Bad request",
            Self::Forbidden(m) if !m.is_empty() => m,
            Self::Forbidden(_) => "Forbidden",
            Self::UnsupportedProtocolVersion => "Unsupported protocol version",
            Self::PayloadTooLarge => "Payload too large",
            Self::Unavailable => "Server unavailable",
            Self::TooManyRequests { .. } => "Too many requests",
        }
    }

    /// The HTTP status: 403 for `Forbidden`, 413 for a too large body, 503 when unavailable,
    /// 429 when rate limited, 400 otherwise.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The HTTP response Node sends for this error: the JSON body, except for
    /// `PayloadTooLarge` and `Overlap`, which Node's transport answers with no body.
    pub fn into_response(self) -> Response<Full<Bytes>> {
        if matches!(self, Self::PayloadTooLarge | Self::Overlap) {
            let mut res = Response::new(Full::new(Bytes::new()));
            *res.status_mut() = self.status();
            return res;
        }
        let body = serde_json::json!({ "code": self.code(), "message": self.message() });
        let mut res = Response::new(Full::new(Bytes::from(body.to_string())));
        *res.status_mut() = self.status();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        );
        self.add_retry_after(&mut res);
        res
    }

    /// Adds `Retry-After` to the answer of a rate-limited handshake.
    pub(crate) fn add_retry_after<B>(&self, res: &mut Response<B>) {
        if let Self::TooManyRequests { retry_after_secs } = self {
            res.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from(*retry_after_secs),
            );
        }
    }
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "engine.io error {}: {}", self.code(), self.message())
    }
}

impl std::error::Error for EngineError {}

/// Why a session ended, as the reason strings Node's `engine.io` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// The client closed the transport (close packet, or the WebSocket closed cleanly).
    TransportClose,
    /// The transport failed (IO error, overlapping requests, oversize message).
    TransportError,
    /// No pong within `pingTimeout`.
    PingTimeout,
    /// The client sent something that does not decode.
    ParseError,
    /// The server closed the session.
    ForcedClose,
    /// The engine is shutting down.
    ServerShuttingDown,
}

impl CloseReason {
    /// Node's reason string (`"transport close"`, `"ping timeout"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TransportClose => "transport close",
            Self::TransportError => "transport error",
            Self::PingTimeout => "ping timeout",
            Self::ParseError => "parse error",
            Self::ForcedClose => "forced close",
            Self::ServerShuttingDown => "server shutting down",
        }
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a message could not be queued on a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// The session is closed.
    Closed,
    /// The session's outbound queue is full (the client does not read fast enough).
    Full,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Closed => "the session is closed",
            Self::Full => "the session's outbound queue is full",
        })
    }
}

impl std::error::Error for SendError {}
