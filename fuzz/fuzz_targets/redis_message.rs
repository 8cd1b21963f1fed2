//! Redis adapter messages from other servers (untrusted: anything on the channels):
//! every decoder of `volley_redis::message` (streams entries and sessions included) never
//! panics, and a decoded MessagePack or JSON value survives encoding and decoding again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use volley_redis::message::{
    decode_any, decode_classic, decode_classic_broadcast, decode_cluster, decode_session,
    decode_stream_entry,
};
use volley_redis::value::{from_json, from_msgpack, to_json, to_msgpack};

fuzz_target!(|data: &[u8]| {
    let _ = decode_classic_broadcast(data);
    let _ = decode_classic(data);
    let _ = decode_cluster(data);
    // Streams: a session value, and an entry whose fields are the input's NUL-separated parts.
    let _ = decode_session(data);
    let parts: Vec<&[u8]> = data.split(|b| *b == 0).collect();
    let fields: Vec<(&[u8], &[u8])> = parts.chunks_exact(2).map(|kv| (kv[0], kv[1])).collect();
    let _ = decode_stream_entry(&fields);
    if let Ok(v) = decode_any(data) {
        let _ = format!("{v:?}");
    }
    if let Ok(v) = from_msgpack(data) {
        let again = from_msgpack(&to_msgpack(&v)).expect("re-decoding encoded msgpack");
        assert_eq!(to_msgpack(&again), to_msgpack(&v));
    }
    if let Ok(v) = from_json(data) {
        let _ = from_json(&to_json(&v)).expect("re-decoding encoded JSON");
    }
});
