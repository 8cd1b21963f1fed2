//! What the HTTP side asks of a session's driver: the one message type between the tower
//! service and [`Incoming`](crate::Incoming), queued in the session's
//! [`Shared`](crate::socket::Shared) state.

use bytes::Bytes;
use tokio::sync::oneshot;
use tokio_tungstenite::WebSocketStream;

use crate::error::{CloseReason, EngineError};
use crate::ws_io::WsIo;

/// A WebSocket as the engine holds it: on the TCP socket, or over a hyper upgrade.
pub(crate) type WsStream = WebSocketStream<WsIo>;

/// How many commands may wait for one session's driver. A well-behaved client has at most a
/// GET, a POST and an upgrade in flight at once.
pub(crate) const COMMAND_QUEUE: usize = 8;

/// Where the driver answers a POST.
pub(crate) type PostReply = oneshot::Sender<Result<(), EngineError>>;

/// What HTTP handlers ask of a session's driver.
pub(crate) enum Command {
    /// A long-polling GET: answered with a payload when frames are queued.
    Poll(oneshot::Sender<Result<Bytes, EngineError>>),
    /// A long-polling POST body, already limited to `maxPayload`.
    /// (Boxed: keeps every command, and the session's queue of them, small.)
    /// The flag is set for an Engine.IO v3 binary payload (`application/octet-stream`).
    Post(Box<(Bytes, bool, PostReply)>),
    /// A WebSocket for this sid, to upgrade to.
    Upgrade(Box<WsStream>),
    /// The HTTP layer saw the session misbehave (overlapping POSTs, oversize body).
    Fail(CloseReason),
}
