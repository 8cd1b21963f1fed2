//! Handler shapes: what `on_connection`, `on` and middleware accept.
//!
//! An event handler is an async closure taking the [`Socket`] first, then up to three
//! extractors in any order: the event's arguments as [`Data<T>`](crate::Data) (deserialized)
//! or [`RawArgs`](crate::RawArgs) (as sent), an [`AckSender`], and
//! [`State<T>`](crate::State) (application state given to
//! [`SocketIoBuilder::state`](crate::SocketIoBuilder::state)):
//!
//! ```
//! use volley::{AckSender, Data, RawArgs, Socket, SocketIo, State};
//!
//! /// Application state: cloned for each handler that asks for it.
//! #[derive(Clone)]
//! struct Motd(&'static str);
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let io = SocketIo::builder().state(Motd("be nice")).build();
//! io.of("/").on_connection(|socket: Socket| async move {
//!     socket
//!         .on("echo", |socket: Socket, Data(text): Data<String>| async move {
//!             let _ = socket.emit("echo", &text);
//!         })
//!         .on("add", |_: Socket, Data((a, b)): Data<(i64, i64)>, ack: AckSender| async move {
//!             let _ = ack.send(&(a + b));
//!         })
//!         .on("count", |_: Socket, args: RawArgs, ack: AckSender| async move {
//!             let _ = ack.send(&args.len()); // however many arguments, of any type
//!         })
//!         .on("motd", |_: Socket, ack: AckSender, State(motd): State<Motd>| async move {
//!             let _ = ack.send(motd.0);
//!         });
//! });
//! # let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! # let url = format!("http://{}", listener.local_addr()?);
//! # tokio::spawn(volley::serve(listener, io.service()));
//! # let client = volley_client::Manager::builder(&url).build()?.socket("/").connect().await?;
//! // From a connected client (volley-client here):
//! let sum: i64 = client.emit_args_with_ack("add", (1, 2)).await?;
//! assert_eq!(sum, 3);
//! let n: usize = client.emit_args_with_ack("count", ("a", [1, 2], None::<u8>)).await?;
//! assert_eq!(n, 3);
//! let motd: String = client.emit_args_with_ack("motd", ()).await?;
//! assert_eq!(motd, "be nice");
//! # Ok(())
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
///
/// ```
/// use volley::{AckSender, Data, Socket, SocketIo};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let io = SocketIo::builder().build();
/// io.of("/").on_connection(|socket: Socket| async move {
///     socket.on("add", |_: Socket, Data((a, b)): Data<(i64, i64)>, ack: AckSender| async move {
///         let _ = ack.send(&(a + b)); // the client's callback gets one argument
///     });
///     socket.on("divide", |_: Socket, Data((a, b)): Data<(i64, i64)>, ack: AckSender| async move {
///         let _ = match a.checked_div(b) {
///             Some(q) => ack.send_args((q, a % b)), // several arguments
///             None => ack.send_args(((),)),         // one `null`
///         };
///     });
/// });
/// # let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// # let url = format!("http://{}", listener.local_addr()?);
/// # tokio::spawn(volley::serve(listener, io.service()));
/// # let client = volley_client::Manager::builder(&url).build()?.socket("/").connect().await?;
/// // socket.emitWithAck("add", 2, 3) in JavaScript:
/// let sum: i64 = client.emit_args_with_ack("add", (2, 3)).await?;
/// assert_eq!(sum, 5);
/// let (q, r): (i64, i64) = client.emit_args_with_ack("divide", (7, 2)).await?;
/// assert_eq!((q, r), (3, 1));
/// let none: Option<i64> = client.emit_args_with_ack("divide", (7, 0)).await?;
/// assert_eq!(none, None);
/// # Ok(())
/// # }
/// ```
pub type AckSender = volley_core::AckSender<Socket>;

/// The erased form stored per event name: builds its future in a reusable slot.
pub(crate) type ErasedHandler = volley_core::handler::SlottedHandler<Socket>;

/// A namespace connection handler: `async fn(Socket)`.
pub(crate) type ConnectHandler = Arc<dyn Fn(Socket) -> BoxFuture<()> + Send + Sync>;

/// A connection middleware: `async fn(Socket) -> Result<(), ConnectError>`.
pub(crate) type Middleware =
    Arc<dyn Fn(Socket) -> BoxFuture<Result<(), ConnectError>> + Send + Sync>;

/// A disconnect handler: `async fn(Socket, DisconnectReason)`.
pub(crate) type DisconnectHandler =
    Box<dyn FnOnce(Socket, DisconnectReason) -> BoxFuture<()> + Send + Sync>;
