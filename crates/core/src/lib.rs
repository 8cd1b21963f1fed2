//! What Volley's Socket.IO server (`volley`) and client (`volley-client`) share, defined once.
//!
//! - Arguments: [`Args`] (what `emit` takes), [`RawArgs`] (as received), [`Data<T>`] and
//!   [`FromArgs`] (typed), the [reserved event names](RESERVED_EVENTS).
//! - The [`parser`] seam: every packet is encoded and decoded through a [`Parser`] chosen
//!   when the server or client is built (JSON, the official default, for now).
//! - Acknowledgements: [`AckSender`], [`AckFuture`], [`TimeoutEmitter`],
//!   [`DEFAULT_ACK_TIMEOUT`].
//! - The [`handler`] shapes and [`run_now_or_spawn`], generic over the socket type
//!   ([`SocketHandle`]); application [`State`].
//! - The [`adapter`] contract between a server's namespaces and a cluster adapter.
//!
//! Users depend on `volley` or `volley-client`, which re-export what they need from here.

pub mod ack;
pub mod adapter;
pub mod args;
mod error;
pub mod handler;
mod id;
pub mod parser;
mod state;

pub use ack::{AckFuture, DEFAULT_ACK_TIMEOUT, TimeoutEmitter};
pub use args::{Args, ArgsDyn, ArgsWriter, Data, FromArgs, One, RESERVED_EVENTS, RawArgs};
pub use error::{AckError, ConnectError, EmitError};
pub use handler::{
    AckReply, AckSender, BoxFuture, EventHandler, FromEvent, SocketHandle, run_now_or_spawn,
};
pub use id::SocketId;
pub use parser::{CodecError, Encoded, EncodedFrame, Parser};
pub use state::{State, StateMap};
