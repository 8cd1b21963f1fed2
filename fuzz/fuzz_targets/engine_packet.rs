//! Engine.IO packets: `Packet::decode_text` and `Packet::decode_binary` never panic, and a
//! decoded packet survives encoding and decoding again.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use volley_proto::engine::{Message, Packet};

fuzz_target!(|data: &[u8]| {
    let input = Bytes::copy_from_slice(data);
    if let Ok(packet) = Packet::decode_text(input.clone()) {
        assert!(std::str::from_utf8(data).is_ok());
        let again = Packet::decode_text(packet.to_text()).expect("re-decoding an encoded packet");
        assert_eq!(again, packet);
    }
    let packet = Packet::decode_binary(input.clone());
    assert_eq!(packet, Packet::Message(Message::Binary(input)));
});
