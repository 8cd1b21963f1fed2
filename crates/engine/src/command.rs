//! What the HTTP side asks of a session's driver: the one message type between the tower
//! service and [`Incoming`](crate::Incoming).

use bytes::Bytes;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;
use tokio_tungstenite::WebSocketStream;

use crate::error::{CloseReason, EngineError};

/// A WebSocket as the engine holds it: over a hyper upgrade.
pub(crate) type WsStream = WebSocketStream<TokioIo<Upgraded>>;

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
    /// (Boxed: the channel allocates a block of 32 commands per session up front, so the
    /// size of the largest variant is paid 32 times by every session.)
    /// The flag is set for an Engine.IO v3 binary payload (`application/octet-stream`).
    Post(Box<(Bytes, bool, PostReply)>),
    /// A WebSocket for this sid, to upgrade to.
    Upgrade(Box<WsStream>),
    /// The HTTP layer saw the session misbehave (overlapping POSTs, oversize body).
    Fail(CloseReason),
}
