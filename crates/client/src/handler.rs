//! Handler shapes: what [`Socket::on`](crate::Socket::on) and the lifecycle callbacks accept.
//!
//! An event handler is an async closure taking the [`Socket`] first, then up to three
//! extractors in any order: the event's arguments as [`Data<T>`](crate::Data) (deserialized)
//! or [`RawArgs`] (as sent), an [`AckSender`] to answer a server's `emitWithAck`, and
//! [`State<T>`](crate::State) (application state given to
//! [`ManagerBuilder::state`](crate::ManagerBuilder::state)):
//!
//! ```no_run
//! # use volley_client::{Socket, Data, AckSender};
//! # fn f(socket: Socket) {
//! socket
//!     .on("echo", |socket: Socket, Data(text): Data<String>| async move {
//!         let _ = socket.emit("echo", &text);
//!     })
//!     .on("add", |_: Socket, Data((a, b)): Data<(i64, i64)>, ack: AckSender| async move {
//!         let _ = ack.send(&(a + b));
//!     });
//! # }
//! ```
//!
//! Handlers run on the connection's task up to their first `.await` that waits, then on a
//! task of their own: no lock is held while they run, so a handler may emit and await
//! acknowledgements freely. A panicking handler is contained. The shapes are defined once in
//! `volley-core`, for the client and the server.

use std::sync::Arc;

pub use volley_core::handler::{
    BoxFuture, EventContext, EventHandler, FromEvent, SocketHandle, run_now_or_spawn,
};

use crate::RawArgs;
use crate::error::{ConnectError, DisconnectReason};
use crate::socket::Socket;

/// Answers an event the server sent with an acknowledgement callback. Answering is optional
/// and happens at most once (`send` takes `self`). When the server asked for no
/// acknowledgement, sending is a no-op.
pub type AckSender = volley_core::AckSender<Socket>;

/// The erased form stored per event name.
pub(crate) type ErasedHandler = volley_core::handler::ErasedHandler<Socket>;

/// A catch-all handler: `async fn(Socket, event name, RawArgs)`.
pub(crate) type AnyHandler = Arc<dyn Fn(Socket, String, RawArgs) -> BoxFuture<()> + Send + Sync>;
/// `connect`: `async fn(Socket)`.
pub(crate) type ConnectHandler = Arc<dyn Fn(Socket) -> BoxFuture<()> + Send + Sync>;
/// `disconnect`: `async fn(Socket, DisconnectReason)`.
pub(crate) type DisconnectHandler =
    Arc<dyn Fn(Socket, DisconnectReason) -> BoxFuture<()> + Send + Sync>;
/// `connect_error`: `async fn(Socket, ConnectError)`.
pub(crate) type ConnectErrorHandler =
    Arc<dyn Fn(Socket, ConnectError) -> BoxFuture<()> + Send + Sync>;
