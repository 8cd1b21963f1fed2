//! Errors, one type per operation, and the disconnect reasons Node reports.

use std::fmt;

use serde_json::Value;

/// Why an emit did not go out.
#[derive(Debug)]
#[non_exhaustive]
pub enum EmitError {
    /// The data could not be serialized to JSON.
    Serialize(serde_json::Error),
    /// The event name is reserved by Socket.IO (`connect`, `disconnect`, ...).
    ReservedEvent(String),
    /// The socket is disconnected.
    Disconnected,
    /// The connection's outbound queue is full: the client does not read fast enough.
    QueueFull,
}

impl fmt::Display for EmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Serialize(e) => write!(f, "cannot serialize the event data: {e}"),
            Self::ReservedEvent(name) => write!(f, "\"{name}\" is a reserved event name"),
            Self::Disconnected => f.write_str("the socket is disconnected"),
            Self::QueueFull => f.write_str("the connection's outbound queue is full"),
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

impl From<volley_engine::SendError> for EmitError {
    fn from(e: volley_engine::SendError) -> Self {
        match e {
            volley_engine::SendError::Closed => Self::Disconnected,
            volley_engine::SendError::Full => Self::QueueFull,
            _ => Self::Disconnected,
        }
    }
}

/// Why an acknowledgement did not arrive.
#[derive(Debug)]
#[non_exhaustive]
pub enum AckError {
    /// No answer within the timeout.
    Timeout,
    /// The socket disconnected before answering.
    Disconnected,
    /// The answer did not deserialize into the requested type.
    Decode(serde_json::Error),
    /// The event could not be sent in the first place.
    Emit(EmitError),
}

impl fmt::Display for AckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout => f.write_str("operation has timed out"),
            Self::Disconnected => f.write_str("the socket disconnected before acknowledging"),
            Self::Decode(e) => write!(f, "cannot decode the acknowledgement: {e}"),
            Self::Emit(e) => write!(f, "cannot emit: {e}"),
        }
    }
}

impl std::error::Error for AckError {}

impl From<EmitError> for AckError {
    fn from(e: EmitError) -> Self {
        Self::Emit(e)
    }
}

/// A refusal sent to the client as `CONNECT_ERROR`; the official client surfaces it as a
/// `connect_error` event whose error has `message` and `data`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectError {
    message: String,
    data: Option<Value>,
}

impl ConnectError {
    /// A refusal with a message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            data: None,
        }
    }

    /// Adds details, readable by the client as `err.data`.
    pub fn with_data(mut self, data: impl serde::Serialize) -> Self {
        self.data = serde_json::to_value(data).ok();
        self
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The details, if any.
    pub fn data(&self) -> Option<&Value> {
        self.data.as_ref()
    }

    pub(crate) fn to_json(&self) -> Value {
        let mut obj = serde_json::Map::new();
        obj.insert("message".into(), Value::String(self.message.clone()));
        if let Some(d) = &self.data {
            obj.insert("data".into(), d.clone());
        }
        Value::Object(obj)
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConnectError {}

/// Why a socket left its namespace, with Node's reason strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The client disconnected the socket (`socket.disconnect()` on the client).
    ClientNamespaceDisconnect,
    /// The server disconnected the socket (`socket.disconnect()` on the server).
    ServerNamespaceDisconnect,
    /// The server is shutting down.
    ServerShuttingDown,
    /// The client did not answer pings in time.
    PingTimeout,
    /// The client closed its connection.
    TransportClose,
    /// The connection failed.
    TransportError,
    /// The client sent something that does not decode.
    ParseError,
    /// The server closed the whole connection.
    ForcedClose,
    /// The server closed the connection while this socket was still in it.
    ForcedServerClose,
}

impl DisconnectReason {
    /// Node's reason string, e.g. `"client namespace disconnect"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientNamespaceDisconnect => "client namespace disconnect",
            Self::ServerNamespaceDisconnect => "server namespace disconnect",
            Self::ServerShuttingDown => "server shutting down",
            Self::PingTimeout => "ping timeout",
            Self::TransportClose => "transport close",
            Self::TransportError => "transport error",
            Self::ParseError => "parse error",
            Self::ForcedClose => "forced close",
            Self::ForcedServerClose => "forced server close",
        }
    }

    pub(crate) fn from_engine(reason: volley_engine::CloseReason) -> Self {
        use volley_engine::CloseReason as C;
        match reason {
            C::TransportClose => Self::TransportClose,
            C::TransportError => Self::TransportError,
            C::PingTimeout => Self::PingTimeout,
            C::ParseError => Self::ParseError,
            C::ForcedClose => Self::ForcedServerClose,
            C::ServerShuttingDown => Self::ServerShuttingDown,
            _ => Self::TransportError,
        }
    }
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
