//! Micro-benchmarks of the wire formats on Volley's hot path (`cargo bench -p volley-bench`).
//!
//! The inputs are the frames the shared load generator sends: a 32-byte string argument
//! with a nanosecond timestamp in it, as `42["echo","<t>|xxx…"]`.
//!
//! - `engine_packet`: an Engine.IO text frame decoded and encoded (what every WebSocket
//!   frame costs before Socket.IO sees it).
//! - `socket_packet`: the Socket.IO event packet decoded (validate, split the arguments)
//!   and encoded, plus the `Data<Value>` step a typed handler adds (parse the argument,
//!   serialize it back).
//! - `reassembly`: a binary event with 2 attachments put back together.
//! - `payload`: a long-polling body of 16 packets decoded and encoded.
//!
//! Fan-out to many sockets is measured end to end with the shared load generator
//! (`bcast-*` scenarios, see BENCHMARKS.md), not here.

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use volley_proto::engine::{self, Message, payload};
use volley_proto::socket::{
    DecodeLimits, Packet, PacketData, PacketType, Reassembler, from_slice_with_binary,
    to_writer_with_binary,
};

/// The Socket.IO packet the load generator's echo sends (without the Engine.IO `4`).
const EVENT: &[u8] = br#"2["echo","1764064512345678901|xxxxxxxxxxxx"]"#;
/// The same with an ack id, as the `ack` scenario sends it.
const EVENT_ACK: &[u8] = br#"217["ack","1764064512345678901|xxxxxxxxxxxx"]"#;
/// The Engine.IO frame carrying [`EVENT`].
const FRAME: &[u8] = br#"42["echo","1764064512345678901|xxxxxxxxxxxx"]"#;
/// A binary event with two attachments.
const BINARY_EVENT: &[u8] =
    br#"52-["bin",{"_placeholder":true,"num":0},{"a":[1,2],"b":{"_placeholder":true,"num":1}}]"#;

fn engine_packet(c: &mut Criterion) {
    let mut g = c.benchmark_group("engine_packet");
    g.throughput(Throughput::Elements(1));
    let frame = Bytes::from_static(FRAME);
    g.bench_function("decode_text", |b| {
        b.iter(|| engine::Packet::decode_text(black_box(frame.clone())).unwrap())
    });
    let packet = engine::Packet::decode_text(frame.clone()).unwrap();
    g.bench_function("encode_text", |b| {
        b.iter(|| {
            let mut out = BytesMut::with_capacity(64);
            black_box(&packet).encode_text(&mut out);
            out.freeze()
        })
    });
    g.finish();
}

fn socket_packet(c: &mut Criterion) {
    let mut g = c.benchmark_group("socket_packet");
    g.throughput(Throughput::Elements(1));
    let limits = DecodeLimits::default();
    let event = Bytes::from_static(EVENT);
    let event_ack = Bytes::from_static(EVENT_ACK);
    g.bench_function("decode_event", |b| {
        b.iter(|| Packet::decode(black_box(event.clone()), &limits).unwrap())
    });
    g.bench_function("decode_event_with_ack_id", |b| {
        b.iter(|| Packet::decode(black_box(event_ack.clone()), &limits).unwrap())
    });
    let (packet, _) = Packet::decode(event.clone(), &limits).unwrap();
    g.bench_function("encode_event", |b| {
        b.iter(|| {
            let mut out = BytesMut::with_capacity(64);
            black_box(&packet).encode(&mut out);
            out.freeze()
        })
    });
    let ack = Packet {
        kind: PacketType::Ack,
        namespace: "/".into(),
        id: Some(17),
        data: PacketData::Ack {
            args: vec![Bytes::from_static(br#""1764064512345678901|xxxxxxxxxxxx""#)],
        },
        attachments: Vec::new(),
    };
    g.bench_function("encode_ack", |b| {
        b.iter(|| {
            let mut out = BytesMut::with_capacity(64);
            black_box(&ack).encode(&mut out);
            out.freeze()
        })
    });

    // What `Data<serde_json::Value>` adds to a handler: parse the argument, then serialize
    // it again for the emit.
    let PacketData::Event { args, .. } = &packet.data else {
        unreachable!("an event packet")
    };
    let arg = args[0].clone();
    g.bench_function("arg_to_value", |b| {
        b.iter(|| from_slice_with_binary::<serde_json::Value>(black_box(&arg), &[]).unwrap())
    });
    let value: serde_json::Value = from_slice_with_binary(&arg, &[]).unwrap();
    g.bench_function("value_to_json", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(64);
            let mut att = Vec::new();
            to_writer_with_binary(&mut out, black_box(&value), &mut att).unwrap();
            out
        })
    });
    g.finish();
}

fn reassembly(c: &mut Criterion) {
    let mut g = c.benchmark_group("reassembly");
    g.throughput(Throughput::Elements(1));
    let text = Bytes::from_static(BINARY_EVENT);
    let a0 = Bytes::from(vec![1u8; 64]);
    let a1 = Bytes::from(vec![2u8; 1024]);
    g.bench_function("binary_event_2_attachments", |b| {
        let mut r = Reassembler::new(DecodeLimits::default());
        b.iter(|| {
            assert!(r.push_text(black_box(text.clone())).unwrap().is_none());
            assert!(r.push_binary(black_box(a0.clone())).unwrap().is_none());
            r.push_binary(black_box(a1.clone())).unwrap().unwrap()
        })
    });
    g.finish();
}

fn polling_payload(c: &mut Criterion) {
    let mut g = c.benchmark_group("payload");
    g.throughput(Throughput::Elements(16));
    let packets: Vec<engine::Packet> = (0..16)
        .map(|i| {
            let text = format!(r#"2["echo","17640645123456789{i:02}|xxxxxxxxxxxx"]"#);
            engine::Packet::Message(Message::Text(Bytes::from(text)))
        })
        .collect();
    let body = payload::encode(&packets);
    g.bench_function("decode_16", |b| {
        b.iter(|| {
            payload::decode(black_box(body.clone()))
                .map(Result::unwrap)
                .count()
        })
    });
    g.bench_function("encode_16", |b| {
        b.iter(|| payload::encode(black_box(&packets)))
    });
    // The same body with every other packet a 48-byte binary message (`b` + base64).
    let mixed: Vec<engine::Packet> = packets
        .iter()
        .enumerate()
        .map(|(i, p)| {
            if i % 2 == 1 {
                engine::Packet::Message(Message::Binary(Bytes::from(vec![i as u8; 48])))
            } else {
                p.clone()
            }
        })
        .collect();
    let mixed_body = payload::encode(&mixed);
    g.bench_function("decode_16_half_binary", |b| {
        b.iter_batched(
            || mixed_body.clone(),
            |body| payload::decode(body).map(Result::unwrap).count(),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("encode_16_half_binary", |b| {
        b.iter(|| payload::encode(black_box(&mixed)))
    });
    g.finish();
}

// The macro defines an undocumented public function.
#[allow(missing_docs)]
mod group {
    use super::*;
    criterion_group!(
        benches,
        engine_packet,
        socket_packet,
        reassembly,
        polling_payload
    );
}
criterion_main!(group::benches);
