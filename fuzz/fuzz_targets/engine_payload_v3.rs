//! Engine.IO v3 long-polling payloads (text and binary framing): the decoders never panic,
//! stop after the first error, report offsets inside the input, and a fully decoded payload
//! survives encoding and decoding again in both framings.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use volley_proto::engine::{Packet, v3};

fn collect(
    items: impl Iterator<Item = Result<Packet, volley_proto::DecodeError>>,
    len: usize,
) -> Option<Vec<Packet>> {
    let mut packets = Vec::new();
    let mut failed = false;
    for item in items {
        assert!(!failed, "an item after an error");
        match item {
            Ok(p) => packets.push(p),
            Err(e) => {
                assert!(e.offset() <= len);
                failed = true;
            }
        }
    }
    (!failed).then_some(packets)
}

fn round_trips(packets: &[Packet]) {
    for binary in [false, true] {
        let mut out = bytes::BytesMut::new();
        for p in packets {
            v3::push(p, binary, &mut out);
        }
        let body = out.freeze();
        let again: Vec<Packet> = if binary {
            v3::decode_binary(body).collect::<Result<_, _>>()
        } else {
            v3::decode_text(body).collect::<Result<_, _>>()
        }
        .expect("re-decoding an encoded payload");
        assert_eq!(again, packets);
    }
}

fuzz_target!(|data: &[u8]| {
    let body = Bytes::copy_from_slice(data);
    if let Some(p) = collect(v3::decode_text(body.clone()), data.len()) {
        if !p.is_empty() {
            round_trips(&p);
        }
    }
    if let Some(p) = collect(v3::decode_binary(body), data.len()) {
        if !p.is_empty() {
            round_trips(&p);
        }
    }
});
