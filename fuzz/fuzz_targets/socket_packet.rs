//! Socket.IO packets: `Packet::decode` never panics, and a decoded packet encodes to text
//! that decodes to the same packet and attachment count. Each argument decodes with
//! `from_slice_with_binary` (whose plain strings skip serde_json) as with serde_json.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use volley_proto::socket::{DecodeLimits, Packet, PacketData, from_slice_with_binary};

fn same_as_serde_json<T>(arg: &[u8])
where
    T: serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let ours = from_slice_with_binary::<T>(arg, &[]).map_err(|e| e.to_string());
    let theirs = serde_json::from_slice::<T>(arg).map_err(|e| e.to_string());
    assert_eq!(ours, theirs, "{arg:?}");
}

fuzz_target!(|data: &[u8]| {
    let limits = DecodeLimits::default();
    let Ok((mut packet, count)) = Packet::decode(Bytes::copy_from_slice(data), &limits) else {
        return;
    };
    let text = std::str::from_utf8(data).expect("a decoded packet is UTF-8");
    assert!(count <= limits.max_attachments);
    assert!(packet.namespace.starts_with('/'), "{text:?}");
    if let PacketData::Event { args, .. } | PacketData::Ack { args } = &packet.data {
        for arg in args {
            serde_json::from_slice::<&serde_json::value::RawValue>(arg).expect("raw arg is JSON");
            same_as_serde_json::<serde_json::Value>(arg);
            same_as_serde_json::<String>(arg);
        }
    }
    packet.attachments = vec![Bytes::new(); count];
    let mut out = BytesMut::new();
    packet.encode(&mut out);
    let encoded = out.freeze();
    let (mut again, again_count) = Packet::decode(encoded.clone(), &limits)
        .unwrap_or_else(|e| panic!("{text:?} re-encoded as {encoded:?}: {e}"));
    assert_eq!(again_count, count);
    again.attachments = vec![Bytes::new(); again_count];
    assert_eq!(again, packet, "{text:?} re-encoded as {encoded:?}");
});
