//! Errors, one type per operation, and the disconnect reasons Node reports. The emit and
//! acknowledgement errors and the namespace refusal are shared with the client
//! (`volley-core`).

use std::fmt;

pub use volley_core::{AckError, ConnectError, EmitError};

/// The emit error of a frame the connection's queue refused.
pub(crate) fn send_error(e: volley_engine::SendError) -> EmitError {
    match e {
        volley_engine::SendError::Full => EmitError::QueueFull,
        _ => EmitError::Disconnected,
    }
}

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

    /// Whether connection state recovery keeps the socket's session after a disconnection
    /// for this reason (Node's `RECOVERABLE_DISCONNECT_REASONS`): the connection was lost or
    /// closed, not the socket disconnected on purpose by either side.
    pub fn is_recoverable(self) -> bool {
        matches!(
            self,
            Self::TransportError
                | Self::TransportClose
                | Self::ForcedClose
                | Self::PingTimeout
                | Self::ServerShuttingDown
                | Self::ForcedServerClose
        )
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
