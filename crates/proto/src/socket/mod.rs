//! Socket.IO v5 wire format.
//!
//! A Socket.IO packet travels as the text of one Engine.IO message
//! ([spec, "Packet encoding"](https://github.com/socketio/socket.io-protocol/tree/main#packet-encoding)):
//!
//! ```text
//! <type>[<attachments>-][<namespace>,][<ack id>][<JSON data>]
//! ```
//!
//! Binary data is taken out of the JSON, replaced by `{"_placeholder":true,"num":N}`, and sent
//! as `N` binary Engine.IO messages right after the text.
//!
//! - [`Packet::decode`] validates and splits a text packet ([`PacketRef::decode`]: the same,
//!   borrowing the namespace and event name); [`Packet::encode`] and [`encode_header`] write
//!   one.
//! - [`Reassembler`] joins a binary packet with its attachments.
//! - [`to_writer_with_binary`] and [`from_slice_with_binary`] convert between Rust values and
//!   JSON with placeholders, for any serde type with [`Bytes`](bytes::Bytes) (or other byte
//!   buffers) inside.

mod binary_de;
mod binary_ser;
mod json_str;
mod packet;
mod plain;
mod reassembler;
mod split;
mod view;

pub use binary_de::from_slice_with_binary;
pub use binary_ser::to_writer_with_binary;
pub use json_str::write_json_str;
pub use packet::{DecodeLimits, Packet, PacketData, PacketType, encode_header};
pub use reassembler::Reassembler;
pub use view::{EventArgs, EventName, PacketDataRef, PacketRef};
