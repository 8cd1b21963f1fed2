//! A Socket.IO v5 client for tokio, with the official JavaScript client's behaviour.
//!
//! - A [`Manager`] owns one Engine.IO v4 connection (HTTP long-polling, WebSocket, or polling
//!   upgraded to WebSocket; TLS with rustls; extra headers and query parameters) and
//!   multiplexes the [`Socket`]s of several namespaces over it.
//! - Reconnection follows socket.io-client 4.x exactly (1 s first delay, 5 s cap, 0.5
//!   jitter, unlimited attempts, 20 s per attempt, the first connection retried too, no
//!   reconnection after a manual or a server-side disconnect), with saturating arithmetic:
//!   see [`Backoff`]. Lifecycle events: [`Manager::events`], [`Socket::events`] and the
//!   `on_connect` / `on_disconnect` / `on_connect_error` callbacks. `auth` can be an async
//!   closure evaluated on every (re)connection.
//! - Events carry serde-typed arguments with binary anywhere ([`Data`], [`RawArgs`],
//!   [`Args`]; [`Bytes`], and a `Vec<u8>`/`&[u8]` argument, go as binary);
//!   [`Socket::emit_with_ack`] is a future with an optional timeout, typed by its output only;
//!   handlers answer the server's acknowledgements with an [`AckSender`]; catch-all handlers,
//!   [`Socket::once`], a [`Stream`](futures_util::Stream) of events
//!   ([`Socket::event_stream`]); `volatile`.
//! - Events that arrive before the namespace's CONNECT answer (python-socketio sends what its
//!   connection handler emits first) are kept, bounded like the send buffer, and delivered in
//!   order once it comes, just before the `connect` event, as socket.io-client's
//!   `receiveBuffer` does.
//! - Emits made while disconnected wait in a bounded send buffer and are flushed in order when
//!   the namespace reconnects; acknowledgements of events that went out on a lost connection
//!   fail with [`AckError::Disconnected`]; [`SocketBuilder::retries`] gives at-least-once
//!   delivery.
//! - A dead network is noticed within `pingInterval + pingTimeout`. Disconnect reasons are
//!   the official client's, per transport: see the table on [`DisconnectReason`].
//! - Tested against three servers: the official Node server, Volley, and python-socketio.
//! - Handlers never run under a lock, may emit and await acknowledgements; the library does
//!   not panic and creates no runtime of its own (except [`blocking`], which says so).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # // A Volley server on a free loopback port, for the example to talk to.
//! # let io = volley::SocketIo::builder().build();
//! # io.of("/").on_connection(|s: volley::Socket| async move {
//! #     s.on("count", |_: volley::Socket, ack: volley::AckSender| async move { let _ = ack.send(&3); });
//! #     s.on("chat", |s: volley::Socket, args: volley::RawArgs| async move { let _ = s.emit_args("chat", args); });
//! # });
//! # let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! # let url = format!("http://{}", listener.local_addr()?);
//! # tokio::spawn(volley::serve(listener, io.service()));
//! use std::time::Duration;
//! use volley_client::{AckSender, Data, Manager, Socket};
//!
//! let manager = Manager::builder(&url).build()?; // e.g. "http://localhost:3000"
//! let (tx, mut chat) = tokio::sync::mpsc::unbounded_channel();
//! let socket = manager
//!     .socket("/")
//!     .auth_with(|| async { Some(serde_json::json!({ "token": "fresh" })) })
//!     .on("chat", move |_: Socket, Data(text): Data<String>| {
//!         let _ = tx.send(text);
//!         async {}
//!     })
//!     .on("add", |_: Socket, Data((a, b)): Data<(i32, i32)>, ack: AckSender| async move {
//!         let _ = ack.send(&(a + b));
//!     })
//!     .connect()
//!     .await?;
//! socket.emit("chat", "hello")?;
//! assert_eq!(chat.recv().await.as_deref(), Some("hello")); // the server echoes it
//! let n: u32 = socket.timeout(Duration::from_secs(2)).emit_with_ack("count", &()).await?;
//! assert_eq!(n, 3);
//! manager.close();
//! # Ok(()) }
//! ```

pub mod backoff;
#[cfg(feature = "blocking")]
pub mod blocking;
mod engine;
mod error;
pub mod handler;
mod manager;
mod socket;

pub use backoff::Backoff;
pub use bytes::Bytes;
pub use engine::TransportKind;
pub use error::{
    AckError, BuildError, ConnectError, DisconnectReason, EmitError, TransportError,
    TransportErrorKind,
};
pub use handler::AckSender;
pub use manager::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_RECONNECTION_DELAY, DEFAULT_RECONNECTION_DELAY_MAX, Manager,
    ManagerBuilder, ManagerEvent,
};
pub use socket::{
    EventStream, Overflow, Socket, SocketBuilder, SocketEvent, TimeoutEmitter, VolatileEmitter,
};
pub use volley_core::{
    AckFuture, Args, ArgsDyn, CodecError, DEFAULT_ACK_TIMEOUT, Data, FromArgs, One, Parser,
    RawArgs, SocketHandle, SocketId, State,
};
