//! Volley: Socket.IO for Rust.
//!
//! A Socket.IO v5 server that the official `socket.io-client` 4.x talks to exactly as it
//! talks to the Node server: namespaces, events, acknowledgements both ways, binary anywhere
//! in a payload, and connection middleware. It is a tower service, so it mounts in axum,
//! hyper or anything tower-based, next to a REST API.
//!
//! ```
//! use volley::{AckSender, ConnectError, Data, Socket, SocketIo};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let io = SocketIo::builder().build();
//! io.of("/chat")
//!     .middleware(|socket: Socket| async move {
//!         match socket.handshake().auth().get("token") {
//!             Some(_) => Ok(()),
//!             None => Err(ConnectError::new("no token").with_data(serde_json::json!({"retry": false}))),
//!         }
//!     })
//!     .on_connection(|socket: Socket| async move {
//!         socket.on("message", |socket: Socket, Data(text): Data<String>, ack: AckSender| async move {
//!             let _ = socket.broadcast().emit("message", &text); // to every other socket
//!             let _ = ack.send("received");
//!         });
//!     });
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! # let url = format!("http://{}", listener.local_addr()?);
//! tokio::spawn(volley::serve(listener, io.service()));
//!
//! // Any Socket.IO client now connects; here volley-client, from Rust.
//! let manager = volley_client::Manager::builder(&url).build()?;
//! let chat = manager.socket("/chat").auth(serde_json::json!({"token": "t"})).connect().await?;
//! let reply: String = chat.emit_with_ack("message", "hi").await?;
//! assert_eq!(reply, "received");
//! # Ok(())
//! # }
//! ```
//!
//! In a real application `io.layer()` goes on an axum `Router` (`examples/quickstart`);
//! [`serve`] is a small standalone server, as above.
//!
//! Concepts:
//! - [`SocketIo`]: the server handle, made by a [`SocketIoBuilder`] (settings, CORS,
//!   application [`State`]); [`SocketIo::of`] gives a [`Namespace`], with its middleware
//!   and connection handler.
//! - [`Socket`]: one client in one namespace; [`Socket::on`] registers event handlers
//!   (see [`handler`] for the shapes: [`Data<T>`](Data), [`RawArgs`], [`AckSender`],
//!   [`State<T>`](State)), [`Socket::emit`] sends, [`Socket::join`] enters rooms.
//! - Acknowledgements: handlers may take an [`AckSender`]; [`Socket::emit_with_ack`] returns
//!   an [`AckFuture`].
//! - Broadcasts: `to`, `except`, `volatile`, `timeout` on a [`SocketIo`], [`Namespace`] or
//!   [`Socket`] give a [`BroadcastOperator`]; with a cluster adapter (`volley-redis`) they
//!   reach every server.
//! - Monitoring: [`SocketIo::metrics`] (connections) and [`SocketIo::server_metrics`]
//!   (namespaces, rooms, acknowledgements, refusals); with the feature `prometheus`,
//!   `SocketIo::prometheus_service()` serves them at `/metrics`. `tracing` spans
//!   (`volley.connection`, `volley.socket`, `volley.event`) carry the socket id and namespace,
//!   never a payload, the recovery pid or the session id.

pub mod adapter;
mod broadcast;
mod builder;
mod connection;
mod error;
pub mod handler;
mod handshake;
mod namespace;
pub mod observe;
#[cfg(feature = "prometheus")]
pub mod prometheus;
mod server;
mod service;
mod short_name;
mod socket;
mod stats;

pub use adapter::{AckResponse, AckStream, ConnectionStateRecovery, ServerAck};
pub use broadcast::{BroadcastOperator, IntoRooms, RemoteSocket};
pub use builder::{
    DEFAULT_ATTACHMENTS_TIMEOUT, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_ATTACHMENTS,
    DEFAULT_MAX_PAYLOAD, SocketIoBuilder,
};
pub use error::{AckError, ConnectError, DisconnectReason, EmitError};
pub use handler::AckSender;
pub use handshake::Handshake;
pub use namespace::Namespace;
pub use observe::Observer;
pub use server::SocketIo;
pub use service::{SocketIoLayer, SocketIoService};
pub use socket::{PacketError, Socket};
pub use stats::{ACK_LATENCY_BUCKETS, AckLatency, NamespaceMetrics, ServerMetrics};
pub use volley_core::{
    AckFuture, Args, ArgsDyn, CodecError, DEFAULT_ACK_TIMEOUT, Data, FromArgs, One, Parser,
    RawArgs, SocketHandle, SocketId, State,
};

/// `socket.timeout(d)`: the next acknowledged emit waits at most `d`.
pub type TimeoutEmitter<'a> = volley_core::TimeoutEmitter<'a, Socket>;
pub use volley_engine::{
    AllowOrigin, Cookie, Cors, EngineMetrics, HandshakeRateLimit, TransportKind, serve,
};
