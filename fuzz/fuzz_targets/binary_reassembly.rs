//! Binary reassembly and placeholders.
//!
//! The input is read as a sequence of messages: one control byte (low bit: 0 text, 1 binary),
//! one length byte, then that many bytes. They drive a `Reassembler`; every complete packet's
//! arguments go through `from_slice_with_binary` into `serde_json::Value` and a typed target,
//! and typed values go back through `to_writer_with_binary`.
#![no_main]

use std::collections::BTreeMap;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use serde::{Deserialize, Serialize};
use volley_proto::socket::{
    DecodeLimits, Packet, PacketData, Reassembler, from_slice_with_binary, to_writer_with_binary,
};

/// A typed target with bytes at several depths and in several shapes.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
enum Typed {
    Bytes(Bytes),
    Struct {
        data: Option<Bytes>,
        list: Vec<Typed>,
    },
    List(Vec<Typed>),
    Map(BTreeMap<String, Typed>),
    Text(String),
    Number(f64),
    Bool(bool),
    Null(()),
}

/// Whether `t` holds an object that could be read as a placeholder: such user data is
/// ambiguous on the wire (as in every Socket.IO implementation), so it cannot round-trip.
fn looks_like_placeholder(t: &Typed) -> bool {
    match t {
        Typed::Map(m) => m.contains_key("_placeholder") || m.values().any(looks_like_placeholder),
        Typed::List(l) | Typed::Struct { list: l, .. } => l.iter().any(looks_like_placeholder),
        _ => false,
    }
}

fn check_args(packet: &Packet) {
    let args = match &packet.data {
        PacketData::Event { args, .. } | PacketData::Ack { args } => args,
        _ => return,
    };
    for arg in args {
        let _ = from_slice_with_binary::<serde_json::Value>(arg, &packet.attachments);
        let _ = from_slice_with_binary::<Vec<u8>>(arg, &packet.attachments);
        let _ = from_slice_with_binary::<Bytes>(arg, &packet.attachments);
        let typed = from_slice_with_binary::<Typed>(arg, &packet.attachments);
        if let Some(typed) = typed.as_ref().ok().filter(|t| !looks_like_placeholder(t)) {
            let mut json = Vec::new();
            let mut attachments = Vec::new();
            to_writer_with_binary(&mut json, &typed, &mut attachments).expect("serializing");
            let back: Typed = from_slice_with_binary(&json, &attachments).expect("round trip");
            // NaN is the only value not equal to itself; it cannot come from JSON.
            assert_eq!(&back, typed);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut r = Reassembler::new(DecodeLimits::default());
    let mut rest = data;
    let mut buffered = 0usize;
    while let [control, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (chunk, after) = tail.split_at(n);
        rest = after;
        let chunk = Bytes::copy_from_slice(chunk);
        let result = if control & 1 == 0 {
            r.push_text(chunk)
        } else {
            let waiting = r.is_waiting();
            let len = chunk.len();
            let result = r.push_binary(chunk);
            assert_eq!(result.is_ok(), waiting);
            if matches!(result, Ok(None)) {
                buffered += len;
            }
            result
        };
        match result {
            Ok(Some(packet)) => {
                buffered = 0;
                assert!(!r.is_waiting());
                check_args(&packet);
            }
            Ok(None) => assert!(r.is_waiting()),
            Err(_) => {
                if !r.is_waiting() {
                    buffered = 0;
                }
            }
        }
        if !r.is_waiting() {
            buffered = 0;
        }
        assert_eq!(r.buffered_bytes(), buffered);
    }
    // The rest of the input as JSON with two attachments.
    let attachments = [Bytes::from_static(&[1, 2, 3]), Bytes::new()];
    let _ = from_slice_with_binary::<serde_json::Value>(rest, &attachments);
    let _ = from_slice_with_binary::<Typed>(rest, &attachments);
});
