//! The errors of emitting and acknowledging, and the namespace refusal, shared by the server
//! and the client.

use std::fmt;

use serde_json::Value;

use crate::parser::CodecError;

/// Why an emit did not go out.
#[derive(Debug)]
#[non_exhaustive]
pub enum EmitError {
    /// The data could not be serialized.
    Serialize(CodecError),
    /// The event name is reserved by Socket.IO (`connect`, `disconnect`, ...).
    ReservedEvent(String),
    /// The socket is disconnected (server side).
    Disconnected,
    /// The connection's outbound queue is full: the peer does not read fast enough (server
    /// side).
    QueueFull,
    /// The socket is not connected and its send buffer is full (client side).
    BufferFull,
    /// The manager was closed or dropped (client side).
    Closed,
}

impl fmt::Display for EmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Serialize(e) => write!(f, "cannot serialize the event data: {e}"),
            Self::ReservedEvent(name) => write!(f, "\"{name}\" is a reserved event name"),
            Self::Disconnected => f.write_str("the socket is disconnected"),
            Self::QueueFull => f.write_str("the connection's outbound queue is full"),
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

impl From<CodecError> for EmitError {
    fn from(e: CodecError) -> Self {
        Self::Serialize(e)
    }
}

/// Why an acknowledgement did not arrive.
#[derive(Debug)]
#[non_exhaustive]
pub enum AckError {
    /// No answer within the timeout (`"operation has timed out"` in JavaScript).
    Timeout,
    /// The socket disconnected after the event was sent and before the answer came
    /// (JavaScript's `"socket has been disconnected"`).
    Disconnected,
    /// The event was dropped from a full send buffer (client side, with
    /// `Overflow::DropOldest`).
    Dropped,
    /// The answer did not deserialize into the requested type.
    Decode(CodecError),
    /// The event could not be emitted in the first place.
    Emit(EmitError),
}

impl fmt::Display for AckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout => f.write_str("operation has timed out"),
            Self::Disconnected => f.write_str("the socket disconnected before acknowledging"),
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

/// A failed namespace connection, as the official libraries' `connect_error`.
///
/// On a server, middleware returns one to refuse a socket: it goes to the client as
/// `CONNECT_ERROR` with [`message`](Self::message) and [`data`](Self::data). On a client it
/// is either that refusal ([`is_from_server`](Self::is_from_server)) or a connection that
/// could not be opened ([`connection_failed`](Self::connection_failed)).
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectError {
    message: String,
    data: Option<Value>,
    from_server: bool,
}

impl ConnectError {
    /// A refusal with a message (made by a server's middleware, or received from one).
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            data: None,
            from_server: true,
        }
    }

    /// A connection that could not be opened or was given up (client side): no refusal.
    pub fn connection_failed(message: impl Into<String>) -> Self {
        Self {
            from_server: false,
            ..Self::new(message)
        }
    }

    /// Adds details, readable by the client as `err.data`.
    pub fn with_data(mut self, data: impl serde::Serialize) -> Self {
        self.data = serde_json::to_value(data).ok();
        self
    }

    /// The message (`err.message` in JavaScript).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The details, if any (`err.data`).
    pub fn data(&self) -> Option<&Value> {
        self.data.as_ref()
    }

    /// Whether this is a server's refusal (as opposed to a connection failure).
    pub fn is_from_server(&self) -> bool {
        self.from_server
    }

    /// The `CONNECT_ERROR` payload: `{"message": ..., "data": ...}`.
    pub fn to_json(&self) -> Value {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_error_payload() {
        let e = ConnectError::new("no").with_data(serde_json::json!({"retry": false}));
        assert_eq!(
            e.to_json(),
            serde_json::json!({"message": "no", "data": {"retry": false}})
        );
        assert!(e.is_from_server());
        assert!(!ConnectError::connection_failed("x").is_from_server());
        assert_eq!(
            ConnectError::new("m").to_json(),
            serde_json::json!({"message": "m"})
        );
    }

    #[test]
    fn messages() {
        assert_eq!(AckError::Timeout.to_string(), "operation has timed out");
        let e: AckError = EmitError::ReservedEvent("connect".into()).into();
        assert_eq!(
            e.to_string(),
            "cannot emit: \"connect\" is a reserved event name"
        );
    }
}
