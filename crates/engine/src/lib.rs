//! The Engine.IO v4 server of Volley.
//!
//! Engine.IO is the transport layer under Socket.IO: sessions over HTTP long-polling and
//! WebSocket, the upgrade from one to the other, heartbeats and payload limits
//! ([protocol](https://github.com/socketio/engine.io-protocol/tree/main/v4)). This crate knows
//! nothing of Socket.IO; `volley` builds on it.
//!
//! - [`Engine`] accepts sessions and hands each to your handler as an [`EngineSocket`] (to
//!   send, cheap to clone) and an [`Incoming`] (to receive; awaiting it drives the session).
//! - [`EngineService`] / [`EngineLayer`] make it a tower service for hyper, axum or anything
//!   tower-based; [`serve`] is a small HTTP/1 loop for standalone use.
//! - [`EngineConfig`] holds Node's options with Node's defaults.
//!
//! With `EngineConfigBuilder::allow_eio3` (Node's `allowEIO3`, off by default) Engine.IO v3
//! clients are accepted too: the same sessions and messages, with v3's long-polling framing,
//! type-prefixed binary WebSocket frames and the heartbeat the other way round (the client
//! pings, the server answers). [`EngineSocket::protocol`] tells which one a session speaks.

mod command;
mod config;
mod cors;
mod engine;
mod error;
mod metrics;
mod random;
mod ratelimit;
mod registry;
mod request;
mod routes;
mod serve;
mod service;
mod session;
mod socket;
mod state;
mod ws_handshake;
mod ws_io;

pub use config::{
    AllowOrigin, AllowRequest, BoxFuture, Cookie, Cors, DEFAULT_CORS_METHODS,
    DEFAULT_MAX_BUFFERED_BYTES, DEFAULT_MAX_BUFFERED_PACKETS, DEFAULT_MAX_PAYLOAD, DEFAULT_PATH,
    DEFAULT_PING_INTERVAL, DEFAULT_PING_TIMEOUT, DEFAULT_SLOW_CONSUMER_TIMEOUT,
    DEFAULT_UPGRADE_TIMEOUT, DEFAULT_WS_READ_BUFFER, EngineConfig, EngineConfigBuilder,
    TransportKind,
};
pub use engine::Engine;
pub use error::{CloseReason, EngineError, SendError};
pub use metrics::EngineMetrics;
pub use random::fill_random;
pub use ratelimit::{DEFAULT_RATE_LIMIT_MAX_ADDRESSES, HandshakeRateLimit};
pub use request::{ProtocolVersion, RequestInfo};
pub use serve::serve;
pub use service::{EngineLayer, EngineService, NotFound, ResponseBody};
pub use session::Incoming;
pub use socket::{EngineSocket, FRAME_SLOT_BYTES, Frame};
pub use volley_proto::engine::Message;
