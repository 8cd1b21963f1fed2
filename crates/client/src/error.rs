//! Errors, one type per operation, and the disconnect reasons of the official client.

use std::fmt;

use serde_json::Value;

/// Why an Engine.IO connection could not be opened or was lost.
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// Why an emit did not go out (and was not buffered either).
#[derive(Debug)]
#[non_exhaustive]
pub enum EmitError {
    /// The data could not be serialized to JSON.
    Serialize(serde_json::Error),
    /// The event name is reserved by Socket.IO (`connect`, `disconnect`, ...).
    ReservedEvent(String),
    /// The socket is not connected and its send buffer is full.
    BufferFull,
    /// The manager was closed or dropped.
    Closed,
}

impl fmt::Display for EmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Serialize(e) => write!(f, "cannot serialize the event data: {e}"),
            Self::ReservedEvent(name) => write!(f, "\"{name}\" is a reserved event name"),
            Self::BufferFull => {
                f.write_str("the socket is disconnected and its send buffer is full")
            }
            Self::Closed => f.write_str("the manager is closed"),
        }
    }
}

impl std::error::Error for EmitError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Serialize(e) => Some(e),
            _ => None,
        }
    }
}

/// Why an acknowledgement did not arrive.
#[derive(Debug)]
#[non_exhaustive]
pub enum AckError {
    /// No answer within the timeout (`"operation has timed out"` in JavaScript).
    Timeout,
    /// The socket disconnected after the event was sent and before the answer came
    /// (`"socket has been disconnected"`). Events still in the send buffer keep waiting.
    Disconnected,
    /// The event was dropped from a full send buffer ([`Overflow::DropOldest`](crate::Overflow)).
    Dropped,
    /// The answer did not deserialize into the requested type.
    Decode(serde_json::Error),
    /// The event could not be emitted in the first place.
    Emit(EmitError),
}

impl fmt::Display for AckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout => f.write_str("operation has timed out"),
            Self::Disconnected => f.write_str("socket has been disconnected"),
            Self::Dropped => f.write_str("the event was dropped from a full send buffer"),
            Self::Decode(e) => write!(f, "cannot decode the acknowledgement: {e}"),
            Self::Emit(e) => write!(f, "cannot emit: {e}"),
        }
    }
}

impl std::error::Error for AckError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Decode(e) => Some(e),
            Self::Emit(e) => Some(e),
            _ => None,
        }
    }
}

impl From<EmitError> for AckError {
    fn from(e: EmitError) -> Self {
        Self::Emit(e)
    }
}

/// A failed namespace connection: the `connect_error` event of the official client.
///
/// Either the server refused the namespace (`CONNECT_ERROR`: [`is_from_server`] is true,
/// [`message`] and [`data`] are what its middleware sent; the socket will not retry), or the
/// Engine.IO connection could not be opened (the manager retries per its reconnection
/// settings).
///
/// [`is_from_server`]: Self::is_from_server
/// [`message`]: Self::message
/// [`data`]: Self::data
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectError {
    message: String,
    data: Option<Value>,
    from_server: bool,
}

impl ConnectError {
    pub(crate) fn server(message: String, data: Option<Value>) -> Self {
        Self {
            message,
            data,
            from_server: true,
        }
    }

    pub(crate) fn local(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            data: None,
            from_server: false,
        }
    }

    /// The message (`err.message` in JavaScript).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The details the server sent with its refusal (`err.data`), if any.
    pub fn data(&self) -> Option<&Value> {
        self.data.as_ref()
    }

    /// Whether the server refused the namespace (as opposed to a connection failure).
    pub fn is_from_server(&self) -> bool {
        self.from_server
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConnectError {}

/// Why a socket left its namespace, with the official client's reason strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The server disconnected the socket; it does not reconnect by itself.
    IoServerDisconnect,
    /// The application disconnected the socket or closed the manager.
    IoClientDisconnect,
    /// No ping came from the server within `pingInterval + pingTimeout`.
    PingTimeout,
    /// The connection was closed (the server closed it, or the network).
    TransportClose,
    /// The connection failed.
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
            Self::PingTimeout => "ping timeout",
            Self::TransportClose => "transport close",
            Self::TransportError => "transport error",
            Self::ParseError => "parse error",
        }
    }

    /// Whether the manager reconnects after this (every reason but the two explicit ones).
    pub fn will_reconnect(self) -> bool {
        !matches!(self, Self::IoServerDisconnect | Self::IoClientDisconnect)
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
