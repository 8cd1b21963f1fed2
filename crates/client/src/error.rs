//! Errors, one type per operation, and the disconnect reasons of the official client. The
//! emit and acknowledgement errors and the namespace refusal are shared with the server
//! (`volley-core`).

use std::fmt;

/// Why an Engine.IO connection could not be opened or was lost.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransportError {
    kind: TransportErrorKind,
    message: String,
}

/// The kinds of [`TransportError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// The URL or an option is not usable.
    InvalidConfig,
    /// A network error: connection refused or reset, DNS, TLS.
    Io,
    /// The server answered an HTTP request with an error status.
    Http,
    /// The WebSocket handshake or connection failed.
    WebSocket,
    /// The server sent something that is not Engine.IO v4.
    Protocol,
    /// The connection did not open within the connect timeout.
    Timeout,
    /// The peer closed the connection.
    Closed,
}

impl TransportError {
    pub(crate) fn new(kind: TransportErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// What kind of failure it was.
    pub fn kind(&self) -> TransportErrorKind {
        self.kind
    }

    /// A description, e.g. the HTTP status and body the server answered.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TransportError {}

impl From<std::io::Error> for TransportError {
    fn from(e: std::io::Error) -> Self {
        Self::new(TransportErrorKind::Io, e.to_string())
    }
}

pub use volley_core::{AckError, ConnectError, EmitError};

/// Why a socket left its namespace, with the official client's reason strings.
///
/// Each reason is the one socket.io-client 4.8 gives in the same situation
/// ([`as_str`](Self::as_str) is its string):
///
/// | Rust | JavaScript | when |
/// |---|---|---|
/// | [`IoServerDisconnect`](Self::IoServerDisconnect) | `io server disconnect` | the server disconnected the socket (`socket.disconnect()` on the server); no reconnection |
/// | [`IoClientDisconnect`](Self::IoClientDisconnect) | `io client disconnect` | [`Socket::disconnect`](crate::Socket::disconnect) |
/// | [`ForcedClose`](Self::ForcedClose) | `forced close` | [`Manager::close`](crate::Manager::close), or every handle dropped; also the manager's `close` event when its last socket disconnected |
/// | [`PingTimeout`](Self::PingTimeout) | `ping timeout` | no ping within `pingInterval + pingTimeout` |
/// | [`TransportClose`](Self::TransportClose) | `transport close` | the WebSocket closed (the server was killed or closed it), WebSocket-only or after an upgrade from polling; or the server sent a close packet |
/// | [`TransportError`](Self::TransportError) | `transport error` | long-polling only: an HTTP request failed (the server was killed: refused or reset) |
/// | [`ParseError`](Self::ParseError) | `parse error` | the server sent something that does not decode |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The server disconnected the socket; it does not reconnect by itself.
    IoServerDisconnect,
    /// The application disconnected the socket.
    IoClientDisconnect,
    /// The application closed the manager (or dropped every handle).
    ForcedClose,
    /// No ping came from the server within `pingInterval + pingTimeout`.
    PingTimeout,
    /// The connection was closed (the WebSocket closed, or the server sent a close packet).
    TransportClose,
    /// The connection failed (an HTTP long-polling request failed).
    TransportError,
    /// The server sent something that does not decode.
    ParseError,
}

impl DisconnectReason {
    /// The official client's reason string, e.g. `"io server disconnect"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::IoServerDisconnect => "io server disconnect",
            Self::IoClientDisconnect => "io client disconnect",
            Self::ForcedClose => "forced close",
            Self::PingTimeout => "ping timeout",
            Self::TransportClose => "transport close",
            Self::TransportError => "transport error",
            Self::ParseError => "parse error",
        }
    }

    /// Whether the manager reconnects after this (every reason but the three explicit ones).
    pub fn will_reconnect(self) -> bool {
        !matches!(
            self,
            Self::IoServerDisconnect | Self::IoClientDisconnect | Self::ForcedClose
        )
    }
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why [`ManagerBuilder::build`](crate::ManagerBuilder::build) or a blocking call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// The URL does not parse or has an unsupported scheme.
    InvalidUrl(String),
    /// A header name or value is not valid HTTP.
    InvalidHeader(String),
    /// There is no tokio runtime to spawn the connection on (async API), or there is one where
    /// the blocking API must not block.
    Runtime(String),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidUrl(m) => write!(f, "invalid URL: {m}"),
            Self::InvalidHeader(m) => write!(f, "invalid header: {m}"),
            Self::Runtime(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for BuildError {}
