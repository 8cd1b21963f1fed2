//! MessagePack Socket.IO packets (`socket.io-msgpack-parser`): the decoder never panics, its
//! arguments always decode as one value each (or fail cleanly), and a decoded packet encodes
//! again (arguments forwarded as they are) to a packet that decodes to the same thing.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use volley_core::{Parser, RawArgs};
use volley_proto::socket::{DecodeLimits, PacketData, PacketType};

const P: Parser = Parser::MsgPack;

fuzz_target!(|data: &[u8]| {
    let frame = Bytes::copy_from_slice(data);
    let Ok(Some(packet)) = P.decoder(DecodeLimits::default()).binary(frame) else {
        return;
    };
    assert!(packet.attachments.is_empty());
    let again = match &packet.data {
        PacketData::Event { name, args } => {
            let raw = RawArgs::with_parser(P, args.clone(), Vec::new());
            for i in 0..raw.len() {
                // Binary has no JSON form: an error, never a panic.
                let _ = raw.get::<serde_json::Value>(i);
            }
            let _ = raw.parse::<Vec<serde_json::Value>>();
            // Carried into the JSON format: may fail (e.g. non-string map keys), never panics.
            let _ = Parser::Json.event(&packet.namespace, name, &raw, packet.id);
            P.event(&packet.namespace, name, &raw, packet.id).expect("re-encode")
        }
        PacketData::Ack { args } => {
            let raw = RawArgs::with_parser(P, args.clone(), Vec::new());
            let id = packet.id.expect("an ack has an id");
            P.ack(&packet.namespace, id, &raw).expect("re-encode")
        }
        PacketData::Json(json) => {
            let v: serde_json::Value = serde_json::from_slice(json).expect("payload is JSON");
            match packet.kind {
                PacketType::Connect => P.connect(&packet.namespace, Some(&v)),
                _ => P.connect_error(&packet.namespace, &v),
            }
        }
        PacketData::None => match packet.kind {
            PacketType::Connect => P.connect(&packet.namespace, None),
            _ => P.disconnect(&packet.namespace),
        },
    };
    let frame = again.msgpack_frame().expect("a msgpack frame").clone();
    let mut decoded = P
        .decoder(DecodeLimits::default())
        .binary(frame.clone())
        .unwrap_or_else(|e| panic!("{data:02x?} re-encoded as {frame:02x?}: {e}"))
        .expect("a whole packet");
    let mut packet = packet;
    // Only events and acks keep their id.
    if !matches!(packet.kind, PacketType::Event | PacketType::Ack) {
        packet.id = None;
        decoded.id = None;
    }
    assert_eq!(decoded, packet, "{data:02x?} re-encoded as {frame:02x?}");
});
