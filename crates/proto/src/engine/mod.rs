//! Engine.IO v4 wire format.
//!
//! An Engine.IO packet is one type digit followed by an optional payload
//! ([spec, "Packet encoding"](https://github.com/socketio/engine.io-protocol/tree/main/v4#packet-encoding)).
//! Over WebSocket each packet is one frame: text frames carry the digit, binary frames carry a raw
//! binary message with no digit. Over HTTP long-polling several packets travel in one body,
//! separated by the record separator `\x1e`, binary messages as `b` + base64 ([`payload`]).
//!
//! Engine.IO v3 (`socket.io-client` 2.x) uses the same packets with another long-polling
//! framing and type-prefixed binary frames ([`v3`]).

mod open;
mod packet;
pub mod payload;
pub mod v3;

pub use open::OpenPacket;
pub use packet::{Message, Packet, PacketType};
