//! Handler shapes: what `on_connection`, `on` and middleware accept.
//!
//! An event handler is an async closure taking the [`Socket`] first, then up to three
//! extractors in any order: the event's arguments as [`Data<T>`](crate::Data) (deserialized)
//! or [`RawArgs`](crate::RawArgs) (as sent), an [`AckSender`], and
//! [`State<T>`](crate::State) (application state given to
//! [`SocketIoBuilder::state`](crate::SocketIoBuilder::state)):
//!
//! ```no_run
//! # use volley::{Socket, Data, AckSender, State};
//! # #[derive(Clone)] struct Db;
//! # fn f(socket: Socket) {
//! socket
//!     .on("echo", |socket: Socket, Data(text): Data<String>| async move {
//!         let _ = socket.emit("echo", &text);
//!     })
//!     .on("add", |_: Socket, Data((a, b)): Data<(i64, i64)>, ack: AckSender| async move {
//!         let _ = ack.send(&(a + b));
//!     })
//!     .on("db", |_: Socket, State(db): State<Db>| async move { drop(db) });
//! # }
//! ```
//!
//! The shapes are defined once in `volley-core`, for the server and the client.

use std::sync::Arc;

pub use volley_core::handler::{
    BoxFuture, EventContext, EventHandler, FromEvent, SocketHandle, run_now_or_spawn,
};

use crate::error::{ConnectError, DisconnectReason};
use crate::socket::Socket;

/// Answers an event the client sent with an acknowledgement callback. Answering is optional
/// and happens at most once (`send` takes `self`). When the client asked for no
/// acknowledgement, sending is a no-op.
pub type AckSender = volley_core::AckSender<Socket>;

/// The erased form stored per event name.
pub(crate) type ErasedHandler = volley_core::handler::ErasedHandler<Socket>;

/// A namespace connection handler: `async fn(Socket)`.
pub(crate) type ConnectHandler = Arc<dyn Fn(Socket) -> BoxFuture<()> + Send + Sync>;

/// A connection middleware: `async fn(Socket) -> Result<(), ConnectError>`.
pub(crate) type Middleware =
    Arc<dyn Fn(Socket) -> BoxFuture<Result<(), ConnectError>> + Send + Sync>;

/// A disconnect handler: `async fn(Socket, DisconnectReason)`.
pub(crate) type DisconnectHandler =
    Box<dyn FnOnce(Socket, DisconnectReason) -> BoxFuture<()> + Send + Sync>;
