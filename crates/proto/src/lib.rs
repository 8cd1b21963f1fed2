//! Wire formats of Volley: Engine.IO v4 and Socket.IO v5, as pure functions over bytes.
//!
//! This crate does no IO and knows no runtime. The server (`volley-engine`, `volley`) and the
//! client (`volley-client`) share it, and the fuzz targets drive its decoders directly.
//!
//! Layout:
//! - [`engine`]: Engine.IO v4 packets, the handshake payload and the HTTP long-polling payload
//!   ([spec](https://github.com/socketio/engine.io-protocol/tree/main/v4)); [`engine::v3`]
//!   has Engine.IO v3's long-polling framing and binary frames.
//! - [`socket`]: Socket.IO v5 packets, binary attachments and their reassembly
//!   ([spec](https://github.com/socketio/socket.io-protocol/tree/main/v5)).
//! - [`DecodeError`]: what was wrong with an input, and where.

pub mod engine;
mod error;
pub mod socket;
mod transport;

pub use error::{DecodeError, DecodeErrorKind};
pub use transport::{TransportKind, UnknownTransport};
