//! The Engine.IO transports, named as on the wire.

use std::fmt;
use std::str::FromStr;

/// An Engine.IO transport. The server and the client share this one type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportKind {
    /// HTTP long-polling: a parked `GET` receives, a `POST` sends.
    Polling,
    /// One WebSocket connection.
    WebSocket,
}

impl TransportKind {
    /// The name on the wire (the `transport` query parameter, the `upgrades` list).
    ///
    /// ```
    /// use volley_proto::TransportKind;
    /// assert_eq!(TransportKind::WebSocket.as_str(), "websocket");
    /// assert_eq!("polling".parse::<TransportKind>(), Ok(TransportKind::Polling));
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Polling => "polling",
            Self::WebSocket => "websocket",
        }
    }
}

/// Compares with the wire name (`"polling"`, `"websocket"`).
impl PartialEq<&str> for TransportKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A transport name that is neither `polling` nor `websocket`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownTransport;

impl fmt::Display for UnknownTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown transport (expected \"polling\" or \"websocket\")")
    }
}

impl std::error::Error for UnknownTransport {}

impl FromStr for TransportKind {
    type Err = UnknownTransport;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "polling" => Ok(Self::Polling),
            "websocket" => Ok(Self::WebSocket),
            _ => Err(UnknownTransport),
        }
    }
}
