//! Unit tests of the parser seam: both formats' encoders and decoders.

use super::*;
use crate::args::ArgsWriter;
use crate::args::One;
use serde::Serialize;

fn text(e: &Encoded) -> String {
    String::from_utf8(e.text().unwrap().to_vec()).unwrap()
}

const P: Parser = Parser::Json;

#[test]
fn events() {
    let e = P.event("/", "hello", &One(&"world"), None).unwrap();
    assert_eq!(text(&e), r#"2["hello","world"]"#);
    assert_eq!(
        e.first_frame(),
        EncodedFrame::Text(Bytes::from_static(br#"42["hello","world"]"#))
    );
    let e = P
        .event(
            "/chat",
            "m",
            &(1, "2", serde_json::json!({"3":[true]})),
            Some(12),
        )
        .unwrap();
    assert_eq!(text(&e), r#"2/chat,12["m",1,"2",{"3":[true]}]"#);
    let e = P.event("/", "empty", &(), None).unwrap();
    assert_eq!(text(&e), r#"2["empty"]"#);
    let e = P
        .event(
            "/",
            "v",
            &vec![serde_json::json!(1.5), serde_json::json!("x")],
            None,
        )
        .unwrap();
    assert_eq!(text(&e), r#"2["v",1.5,"x"]"#);
}

#[test]
fn binary_event() {
    let e = P
        .event(
            "/",
            "b",
            &(Bytes::from_static(&[1, 2]), Bytes::from_static(&[3])),
            None,
        )
        .unwrap();
    assert_eq!(
        text(&e),
        r#"52-["b",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#
    );
    assert_eq!(e.frame_count(), 3);
    assert_eq!(e.kind(), Some(PacketType::BinaryEvent));
    let body = P.event_body("b", &(Bytes::from_static(&[1]),)).unwrap();
    let e = P.event_packet("/", &body, Some(0));
    assert_eq!(text(&e), r#"51-0["b",{"_placeholder":true,"num":0}]"#);
    assert_eq!(e.attachments(), [Bytes::from_static(&[1])]);
}

#[test]
fn acks_and_control() {
    let a = P.ack("/custom", 456, &(1, "2")).unwrap();
    assert_eq!(text(&a), r#"3/custom,456[1,"2"]"#);
    assert_eq!(a.kind(), Some(PacketType::Ack));
    let sid = serde_json::json!({ "sid": "abc" });
    assert_eq!(text(&P.connect("/", Some(&sid))), r#"0{"sid":"abc"}"#);
    assert_eq!(text(&P.connect("/", None)), "0");
    assert_eq!(
        text(&P.connect("/admin", Some(&serde_json::json!({"token": "t"})))),
        r#"0/admin,{"token":"t"}"#
    );
    assert_eq!(text(&P.disconnect("/x")), "1/x,");
    let err = serde_json::json!({"message": "Invalid namespace"});
    assert_eq!(
        text(&P.connect_error("/random", &err)),
        r#"4/random,{"message":"Invalid namespace"}"#
    );
}

#[test]
fn raw_args_forwarding() {
    let raw = RawArgs::new(
        vec![
            Bytes::from_static(b"1"),
            Bytes::from_static(br#"{"_placeholder":true,"num":0}"#),
        ],
        vec![Bytes::from_static(&[7])],
    );
    let e = P.event("/", "fwd", &raw, None).unwrap();
    assert_eq!(text(&e), r#"51-["fwd",1,{"_placeholder":true,"num":0}]"#);
    // Raw binary cannot join other binary arguments: placeholders would collide.
    struct Mixed(RawArgs);
    impl crate::Args for Mixed {
        fn write_to<W: ArgsWriter>(&self, w: &mut W) -> Result<(), CodecError> {
            w.arg(&Bytes::from_static(&[1]))?;
            w.raw(&self.0)
        }
        fn is_empty(&self) -> bool {
            false
        }
    }
    assert!(P.event("/", "x", &Mixed(raw), None).is_err());
}

#[test]
fn decoder_tags_arguments() {
    let mut d = P.decoder(DecodeLimits::default());
    let p = d.text(Bytes::from_static(br#"2["a",1]"#)).unwrap().unwrap();
    let volley_proto::socket::PacketData::Event { name, args } = p.data else {
        panic!("event expected")
    };
    assert_eq!(name, "a");
    let raw = d.raw_args(args, p.attachments);
    assert_eq!(raw.parser(), Parser::Json);
    assert_eq!(raw.parse::<u8>().unwrap(), 1);
}

/// Bytes `socket.io-msgpack-parser` 3.0.2 encodes for the same packets
/// (`e2e/interop/scripts/msgpack-golden.mjs`).
mod golden {
    pub(super) const EVENT: &str = "83a47479706502a46461746192a568656c6c6fa5776f726c64a36e7370a12f";
    pub(super) const NUMBERS: &str = "84a47479706502a46461746198a16e01cb3ff8000000000000fdcd012cce00011170cf0000010000000000c0a36e7370a72f637573746f6da269640c";
    pub(super) const UNICODE: &str =
        "83a47479706502a46461746192a175af68c3a96c6c6f20e29c9320f09f8e89a36e7370a12f";
    pub(super) const BINARY: &str =
        "83a47479706502a46461746193a162c40301020381a17891c40104a36e7370a12f";
    pub(super) const ACK: &str =
        "84a47479706503a4646174619201a132a36e7370a72f637573746f6da26964cd01c8";
    pub(super) const CONNECT: &str = "83a47479706500a46461746181a3736964a3616263a36e7370a12f";
    pub(super) const CONNECT_UNDEFINED: &str =
        "83a47479706500a464617461d40000a36e7370a62f61646d696e";
    pub(super) const CONNECT_ERROR: &str = "83a47479706504a46461746181a76d657373616765b1496e76616c6964206e616d657370616365a36e7370a72f72616e646f6d";
    pub(super) const DISCONNECT: &str = "82a47479706501a36e7370a22f78";
}

fn hex(e: &Encoded) -> String {
    let EncodedFrame::Binary(b) = e.first_frame() else {
        panic!("binary frame expected")
    };
    assert_eq!(e.frame_count(), 1);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Bytes {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect::<Vec<_>>()
        .into()
}

const M: Parser = Parser::MsgPack;

#[derive(Serialize, serde::Deserialize, Debug, PartialEq)]
struct Nested {
    x: Vec<Bytes>,
}

#[test]
fn msgpack_matches_the_npm_parser() {
    use serde_json::json;
    assert_eq!(
        hex(&M.event("/", "hello", &One(&"world"), None).unwrap()),
        golden::EVENT
    );
    let numbers = (1, 1.5, -3, 300, 70000, 1u64 << 40, None::<u8>);
    assert_eq!(
        hex(&M.event("/custom", "n", &numbers, Some(12)).unwrap()),
        golden::NUMBERS
    );
    assert_eq!(
        hex(&M.event("/", "u", &One(&"héllo ✓ 🎉"), None).unwrap()),
        golden::UNICODE
    );
    let nested = Nested {
        x: vec![Bytes::from_static(&[4])],
    };
    let bin = (Bytes::from_static(&[1, 2, 3]), &nested);
    assert_eq!(hex(&M.event("/", "b", &bin, None).unwrap()), golden::BINARY);
    assert_eq!(hex(&M.ack("/custom", 456, &(1, "2")).unwrap()), golden::ACK);
    assert_eq!(
        hex(&M.connect("/", Some(&json!({"sid": "abc"})))),
        golden::CONNECT
    );
    let err = json!({"message": "Invalid namespace"});
    assert_eq!(
        hex(&M.connect_error("/random", &err)),
        golden::CONNECT_ERROR
    );
    assert_eq!(hex(&M.disconnect("/x")), golden::DISCONNECT);
    // No payload: the key is left out (notepack.io 3 leaves `undefined` out too).
    assert_eq!(
        hex(&M.connect("/admin", None)),
        "82a47479706500a36e7370a62f61646d696e"
    );
    // An event body encoded once, put in packets with and without an id.
    let body = M.event_body("hello", &One(&"world")).unwrap();
    assert_eq!(hex(&M.event_packet("/", &body, None)), golden::EVENT);
}

fn decode(hex: &str) -> Packet {
    M.decoder(DecodeLimits::default())
        .binary(unhex(hex))
        .unwrap()
        .unwrap()
}

fn event_args(p: Packet) -> (String, RawArgs) {
    let volley_proto::socket::PacketData::Event { name, args } = p.data else {
        panic!("event expected")
    };
    (name, RawArgs::with_parser(M, args, p.attachments))
}

#[test]
fn msgpack_decodes_the_npm_parser() {
    use volley_proto::socket::PacketData;
    let p = decode(golden::NUMBERS);
    assert_eq!(
        (p.kind, p.namespace.as_str(), p.id),
        (PacketType::Event, "/custom", Some(12))
    );
    let (name, raw) = event_args(p);
    assert_eq!(name, "n");
    assert_eq!(raw.parser(), Parser::MsgPack);
    let v: Vec<Value> = raw.parse().unwrap();
    assert_eq!(
        v,
        serde_json::json!([1, 1.5, -3, 300, 70000, 1u64 << 40, null])
            .as_array()
            .unwrap()
            .clone()
    );
    // 1 stays an integer, 1.5 a float.
    assert!(v[0].is_u64() && v[1].is_f64());
    let (a, b, c): (u8, f64, i32) = raw
        .parse::<(u8, f64, i32, u32, u32, u64, Option<u8>)>()
        .map(|t| (t.0, t.1, t.2))
        .unwrap();
    assert_eq!((a, b, c), (1, 1.5, -3));
    let (_, raw) = event_args(decode(golden::UNICODE));
    assert_eq!(raw.parse::<String>().unwrap(), "héllo ✓ 🎉");
    let (_, raw) = event_args(decode(golden::BINARY));
    let (b, n): (Bytes, Nested) = raw.parse().unwrap();
    assert_eq!(b, Bytes::from_static(&[1, 2, 3]));
    assert_eq!(
        n,
        Nested {
            x: vec![Bytes::from_static(&[4])]
        }
    );
    let p = decode(golden::ACK);
    assert_eq!((p.kind, p.id), (PacketType::Ack, Some(456)));
    let p = decode(golden::CONNECT);
    assert_eq!(
        p.data,
        PacketData::Json(Bytes::from_static(br#"{"sid":"abc"}"#))
    );
    let p = decode(golden::CONNECT_UNDEFINED);
    assert_eq!((p.namespace.as_str(), p.data), ("/admin", PacketData::None));
    let p = decode(golden::CONNECT_ERROR);
    assert_eq!(
        p.data,
        PacketData::Json(Bytes::from_static(br#"{"message":"Invalid namespace"}"#))
    );
    let p = decode(golden::DISCONNECT);
    assert_eq!(
        (p.kind, p.namespace.as_str()),
        (PacketType::Disconnect, "/x")
    );
    // The official client adds `options` and puts `nsp` last; unknown keys are skipped.
    let mut client = vec![0x84];
    for (k, v) in [
        ("type", &[0x02][..]),
        ("data", &[0x91, 0xa1, b'e'][..]),
        (
            "options",
            &[
                0x81, 0xa8, b'c', b'o', b'm', b'p', b'r', b'e', b's', b's', 0xc3,
            ][..],
        ),
        ("nsp", &[0xa1, b'/'][..]),
    ] {
        msgpack::write_str(&mut client, k);
        client.extend_from_slice(v);
    }
    let mut d = M.decoder(DecodeLimits::default());
    let (name, raw) = event_args(d.binary(client.into()).unwrap().unwrap());
    assert_eq!((name.as_str(), raw.len()), ("e", 0));
}

#[test]
fn msgpack_rejects_malformed_packets() {
    let mut d = M.decoder(DecodeLimits::default());
    for bad in [
        "",                                               // empty
        "c0",                                             // not a map
        "82a474797065a16e02a36e7370a12f", // a key that is not a string... (nsp kept)
        "82a47479706505a36e7370a12f",     // type 5 does not exist in this format
        "81a47479706502",                 // no namespace
        "83a47479706502a46461746190a36e7370a12f", // an event without a name
        "83a47479706502a46461746191a36e7370a12f", // truncated
        "83a47479706503a4646174619101a36e7370a12f", // an ack without id
        "82a47479706501a36e7370a12fc0",   // trailing bytes
        "83a47479706502a464617461dd7fffffffa36e7370a12f", // huge declared array
    ] {
        assert!(d.binary(unhex(bad)).is_err(), "{bad}");
    }
    assert!(d.text(Bytes::from_static(b"2[\"a\"]")).is_err());
    // Too deep.
    let mut deep = vec![0x83];
    msgpack::write_str(&mut deep, "type");
    deep.push(0x02);
    msgpack::write_str(&mut deep, "data");
    deep.extend([0x92, 0xa1, b'e']);
    deep.extend(std::iter::repeat_n(0x91, 200));
    deep.push(0xc0);
    msgpack::write_str(&mut deep, "nsp");
    msgpack::write_str(&mut deep, "/");
    assert!(d.binary(deep.into()).is_err());
}

#[test]
fn msgpack_raw_args_and_recovery_offsets() {
    // Received msgpack arguments are forwarded as they are, or carried into JSON.
    let (_, raw) = event_args(decode(golden::BINARY));
    assert_eq!(hex(&M.event("/", "b", &raw, None).unwrap()), golden::BINARY);
    let e = P.event("/", "b", &raw, None).unwrap();
    assert_eq!(
        text(&e),
        r#"52-["b",{"_placeholder":true,"num":0},{"x":[{"_placeholder":true,"num":1}]}]"#
    );
    // And JSON arguments into msgpack.
    let json = RawArgs::from_args(P, &(1, 1.5, Bytes::from_static(&[9]))).unwrap();
    let e = M.event("/", "j", &json, None).unwrap();
    let (_, raw) = event_args(decode(&hex(&e)));
    let (a, b, c): (Value, Value, Bytes) = raw.parse().unwrap();
    assert!(a.is_u64() && b.is_f64());
    assert_eq!(c, Bytes::from_static(&[9]));
    let raw = RawArgs::from_args(M, &("x", 2)).unwrap();
    assert_eq!(raw.parser(), Parser::MsgPack);
    assert_eq!(raw.get::<u8>(1).unwrap().unwrap(), 2);
    assert_eq!(
        RawArgs::with_parser(M, vec![], vec![])
            .parse::<Option<u8>>()
            .unwrap(),
        None
    );
    // Connection state recovery appends the offset to the data array.
    let e = M.event("/", "hello", &One(&"world"), None).unwrap();
    assert!(e.is_event_without_ack());
    assert_eq!(e.kind(), Some(PacketType::Event));
    let with = e.with_last_string("off").unwrap();
    let (_, raw) = event_args(decode(&hex(&with)));
    assert_eq!(
        raw.parse::<(String, String)>().unwrap(),
        ("world".into(), "off".into())
    );
    assert!(
        M.event("/", "a", &(), Some(1))
            .unwrap()
            .with_last_string("o")
            .is_none()
    );
    assert_eq!(
        Encoded::from_msgpack(unhex(golden::ACK)).unwrap().kind(),
        Some(PacketType::Ack)
    );
    assert!(e.text().is_none());
    assert_eq!(e.parser(), Parser::MsgPack);
}

/// What `fuzz/fuzz_targets/msgpack_packet.rs` checks, on every truncation and many
/// single-byte mutations of the golden packets: no panic, and what decodes re-encodes to
/// the same packet.
fn decode_reencode(data: &[u8]) {
    use volley_proto::socket::PacketData;
    let Ok(Some(packet)) = M
        .decoder(DecodeLimits::default())
        .binary(Bytes::copy_from_slice(data))
    else {
        return;
    };
    let again = match &packet.data {
        PacketData::Event { name, args } => {
            let raw = RawArgs::with_parser(M, args.clone(), Vec::new());
            let _ = raw.parse::<Vec<Value>>();
            let _ = P.event(&packet.namespace, name, &raw, packet.id);
            M.event(&packet.namespace, name, &raw, packet.id).unwrap()
        }
        PacketData::Ack { args } => {
            let raw = RawArgs::with_parser(M, args.clone(), Vec::new());
            M.ack(&packet.namespace, packet.id.unwrap(), &raw).unwrap()
        }
        PacketData::Json(json) => {
            let v: Value = serde_json::from_slice(json).unwrap();
            match packet.kind {
                PacketType::Connect => M.connect(&packet.namespace, Some(&v)),
                _ => M.connect_error(&packet.namespace, &v),
            }
        }
        PacketData::None => match packet.kind {
            PacketType::Connect => M.connect(&packet.namespace, None),
            _ => M.disconnect(&packet.namespace),
        },
    };
    let frame = again.msgpack_frame().unwrap().clone();
    let mut decoded = M
        .decoder(DecodeLimits::default())
        .binary(frame)
        .unwrap()
        .unwrap();
    let mut packet = packet;
    if !matches!(packet.kind, PacketType::Event | PacketType::Ack) {
        packet.id = None;
        decoded.id = None;
    }
    assert_eq!(decoded, packet, "{data:02x?}");
}

#[test]
fn msgpack_mutations_never_panic() {
    for g in [
        golden::EVENT,
        golden::NUMBERS,
        golden::UNICODE,
        golden::BINARY,
        golden::ACK,
        golden::CONNECT,
        golden::CONNECT_UNDEFINED,
        golden::CONNECT_ERROR,
        golden::DISCONNECT,
    ] {
        let g = unhex(g);
        decode_reencode(&g);
        for n in 0..g.len() {
            decode_reencode(&g[..n]);
        }
        for i in 0..g.len() {
            for b in [
                0x00,
                0x01,
                0x05,
                0x7f,
                0x80,
                0x8f,
                0x90,
                0x9f,
                0xa0,
                0xbf,
                0xc0,
                0xc1,
                0xc4,
                0xc7,
                0xca,
                0xcb,
                0xcf,
                0xd3,
                0xd4,
                0xd8,
                0xd9,
                0xdb,
                0xdc,
                0xdd,
                0xde,
                0xdf,
                0xe0,
                0xff,
                g[i] ^ 1,
                g[i] ^ 0x80,
            ] {
                let mut m = g.to_vec();
                m[i] = b;
                decode_reencode(&m);
            }
        }
    }
}

/// A cluster peer's packet text goes out in WebSocket text frames: bytes that are not UTF-8
/// are replaced (U+FFFD) rather than sent as they are, which would make clients drop the
/// connection; valid text is kept byte for byte.
#[test]
fn from_text_keeps_frames_utf8() {
    let ok = Encoded::from_text("2[\"m\",\"é😀\"]".as_bytes(), Vec::new());
    assert_eq!(text(&ok), "2[\"m\",\"é😀\"]");
    let bad = Encoded::from_text(b"2[\"m\",\"a\xffb\xc3\"]", Vec::new());
    assert_eq!(text(&bad), "2[\"m\",\"a\u{fffd}b\u{fffd}\"]");
    let EncodedFrame::Text(frame) = bad.first_frame() else {
        panic!("a JSON packet is a text frame");
    };
    assert!(std::str::from_utf8(&frame).is_ok());
}
