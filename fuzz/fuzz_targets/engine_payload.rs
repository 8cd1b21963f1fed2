//! Engine.IO long-polling payloads: `payload::decode` never panics, stops after the first
//! error, and a fully decoded payload survives encoding and decoding again.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use volley_proto::engine::payload;

fuzz_target!(|data: &[u8]| {
    let mut packets = Vec::new();
    let mut failed = false;
    for item in payload::decode(Bytes::copy_from_slice(data)) {
        assert!(!failed, "an item after an error");
        match item {
            Ok(p) => packets.push(p),
            Err(e) => {
                assert!(e.offset() <= data.len());
                failed = true;
            }
        }
    }
    if !failed {
        assert!(std::str::from_utf8(data).is_ok());
        let body = payload::encode(&packets);
        let again: Vec<_> = payload::decode(body)
            .collect::<Result<_, _>>()
            .expect("re-decoding an encoded payload");
        assert_eq!(again, packets);
    }
});
