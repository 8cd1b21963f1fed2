//! Codec tests on the 54 messages captured from Node (`../shared/research/
//! scaling-wire-samples.jsonl`): each is decoded into our message model, re-encoded by our
//! encoder, decoded again, and compared with the captured structure (by key, as JS map
//! order varies). Encodings (JSON vs MessagePack) must match too.

use std::path::PathBuf;

use base64::Engine as _;
use serde_json::Value as Json;
use volley_redis::message::{
    Envelope, Message, decode_classic, decode_classic_broadcast, decode_cluster,
    decode_cluster_data, encode_classic, encode_classic_broadcast, encode_cluster,
    encode_cluster_msgpack,
};
use volley_redis::value::{Value, from_json, from_msgpack};

fn samples_path() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let candidates = [
        here.join("../../../shared/research/scaling-wire-samples.jsonl"),
        here.join("tests/data/scaling-wire-samples.jsonl"),
    ];
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .unwrap_or_else(|| panic!("no golden file at any of {candidates:?}"))
}

fn samples() -> Vec<Json> {
    let text = std::fs::read_to_string(samples_path()).unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Our value as the captures write it: binary as `{"$bin": hex}`, numbers as JSON numbers.
fn to_capture(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Value::Str(s) => Json::String(s.clone()),
        Value::Bin(b) => {
            let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
            serde_json::json!({ "$bin": h })
        }
        Value::Array(a) => Json::Array(a.iter().map(to_capture).collect()),
        Value::Map(m) => Json::Object(m.iter().map(|(k, v)| (k.clone(), to_capture(v))).collect()),
    }
}

/// Structural equality: maps by key, numbers by value.
fn same(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => x.as_f64() == y.as_f64(),
        (Json::Array(x), Json::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (Json::Object(x), Json::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

#[track_caller]
fn assert_same(got: &Value, want: &Json, what: &str) {
    let got = to_capture(got);
    assert!(same(&got, want), "{what}\n got: {got}\nwant: {want}");
}

fn decode_bytes(bytes: &[u8]) -> Value {
    if bytes.first() == Some(&b'{') {
        from_json(bytes).unwrap()
    } else {
        from_msgpack(bytes).unwrap()
    }
}

fn encoding_of(bytes: &[u8]) -> &'static str {
    if bytes.first() == Some(&b'{') {
        "json"
    } else {
        "msgpack"
    }
}

/// Decodes a row's payload into our model, re-encodes it; returns the re-encoded bytes.
fn round_trip(row: &Json, bytes: &[u8]) -> Vec<u8> {
    let variant = row["variant"].as_str().unwrap();
    let key = row["key"].as_str().unwrap();
    let is_classic_protocol =
        variant.starts_with("classic") || row["cmd"] == "PUBLISH" && variant.starts_with("sharded");
    if is_classic_protocol {
        if key.starts_with("socket.io#") {
            let env = decode_classic_broadcast(bytes).unwrap();
            let Message::Broadcast { packet, opts, .. } = &env.message else {
                panic!("not a broadcast: {env:?}")
            };
            let emitter = env.uid.as_deref() == Some("emitter");
            encode_classic_broadcast(env.uid.as_deref().unwrap(), packet, opts, emitter)
        } else {
            let env = decode_classic(bytes).unwrap();
            encode_classic(env.uid.as_deref(), &env.message)
                .unwrap_or_else(|| panic!("cannot re-encode {env:?}"))
        }
    } else {
        let env: Envelope = decode_cluster(bytes).unwrap();
        let encode = if variant == "streams" {
            encode_cluster_msgpack
        } else {
            encode_cluster
        };
        encode(
            env.uid.as_deref().unwrap(),
            env.nsp.as_deref().unwrap(),
            &env.message,
        )
        .unwrap()
    }
}

#[test]
fn every_golden_message_decodes_and_re_encodes_to_the_same_structure() {
    let rows = samples();
    assert_eq!(rows.len(), 54, "the capture file has 54 messages");
    let mut checked = 0;
    for (i, row) in rows.iter().enumerate() {
        let what = format!(
            "row {} ({} {} {})",
            i + 1,
            row["variant"],
            row["cmd"],
            row["key"]
        );
        if let Some(h) = row["payload_hex"].as_str() {
            let bytes = hex(h);
            assert_eq!(encoding_of(&bytes), row["encoding"], "{what}: encoding");
            // Plain decoding gives the captured structure (timestamps as ISO strings).
            assert_same(&decode_bytes(&bytes), &row["decoded"], &what);
            // Through our model and back: same structure, same encoding.
            let again = round_trip(row, &bytes);
            assert_eq!(encoding_of(&again), row["encoding"], "{what}: re-encoding");
            assert_same(
                &decode_bytes(&again),
                &row["decoded"],
                &format!("{what} re-encoded"),
            );
        } else if row["cmd"] == "XADD" {
            // Streams adapter: `data` is JSON or base64 MessagePack of the cluster `data`.
            let args: Vec<&str> = row["args"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap())
                .collect();
            let field = |k: &str| args[args.iter().position(|a| *a == k).unwrap() + 1];
            let code: u64 = field("type").parse().unwrap();
            let data = field("data");
            let value = if data.starts_with('{') {
                from_json(data.as_bytes()).unwrap()
            } else {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(data)
                    .unwrap();
                from_msgpack(&raw).unwrap()
            };
            let message = decode_cluster_data(code, &value).unwrap();
            let (code2, data2) = volley_redis::message::cluster_data(&message).unwrap();
            assert_eq!(code, code2, "{what}");
            assert_eq!(to_capture(&data2.unwrap()), to_capture(&value), "{what}");
        } else if row["cmd"] == "SET" {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(row["value_base64"].as_str().unwrap())
                .unwrap();
            assert_same(&from_msgpack(&raw).unwrap(), &row["decoded"], &what);
        } else {
            panic!("{what}: unknown row");
        }
        checked += 1;
    }
    assert_eq!(checked, 54);
}

#[test]
fn classic_dates_cross_as_iso_strings() {
    let rows = samples();
    let row = rows
        .iter()
        .find(|r| {
            r["payload_hex"]
                .as_str()
                .is_some_and(|h| h.contains("d6ff"))
        })
        .expect("a captured date");
    let env = decode_classic_broadcast(&hex(row["payload_hex"].as_str().unwrap())).unwrap();
    let Message::Broadcast { packet, opts, .. } = env.message else {
        panic!()
    };
    assert_eq!(
        packet.data,
        Value::Array(vec![
            Value::Str("multi".into()),
            Value::Str("1970-01-01T00:00:00.000Z".into())
        ])
    );
    assert!(opts.volatile());
    assert_eq!(opts.rooms, ["room1", "room2"]);
    assert_eq!(opts.except, ["room3"]);
}

#[test]
fn emitter_requests_without_uid_are_understood() {
    let rows = samples();
    let row = rows
        .iter()
        .find(|r| r["decoded"] == serde_json::json!({"type":2,"opts":{"rooms":["room1"],"except":[]},"rooms":["e1"]}))
        .unwrap();
    let env = decode_classic(&hex(row["payload_hex"].as_str().unwrap())).unwrap();
    assert_eq!(env.uid, None);
    assert!(matches!(env.message, Message::SocketsJoin { ref rooms, .. } if rooms == &["e1"]));
}

#[test]
fn our_encoder_writes_the_captured_bytes_where_key_order_is_fixed() {
    // Classic broadcast and classic requests, and the streams adapter's pub/sub messages, are
    // written in Node's key order: the bytes themselves match.
    for row in samples() {
        let Some(h) = row["payload_hex"].as_str() else {
            continue;
        };
        let variant = row["variant"].as_str().unwrap();
        if !variant.starts_with("classic")
            && !variant.starts_with("sharded")
            && variant != "streams"
        {
            continue;
        }
        if row["note"]
            .as_str()
            .is_some_and(|n| n.contains("fetchSockets"))
        {
            continue; // handshake header order is the sender's
        }
        if h.contains("d6ff00000000") {
            continue; // a Date: we read it as the ISO string the client sees
        }
        let bytes = hex(h);
        let again = round_trip(&row, &bytes);
        assert_eq!(
            again,
            bytes,
            "{} {} {}: bytes differ\n got: {}\nwant: {}",
            row["variant"],
            row["cmd"],
            row["key"],
            String::from_utf8_lossy(&again),
            String::from_utf8_lossy(&bytes)
        );
    }
}

#[test]
fn streams_entries_are_written_byte_for_byte_as_node_writes_them() {
    use volley_redis::message::{decode_stream_entry, encode_stream_entry};
    let mut seen = 0;
    for row in samples().iter().filter(|r| r["cmd"] == "XADD") {
        let args: Vec<&str> = row["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        // MAXLEN ~ 10000 * <field> <value> ...
        assert_eq!(&args[..4], ["MAXLEN", "~", "10000", "*"]);
        let fields: Vec<(&str, &str)> = args[4..].chunks(2).map(|c| (c[0], c[1])).collect();
        let env = decode_stream_entry(&fields).unwrap();
        let again = encode_stream_entry(
            env.uid.as_deref().unwrap(),
            env.nsp.as_deref().unwrap(),
            &env.message,
            false,
        )
        .unwrap();
        let again: Vec<(&str, String)> = again
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8(v).unwrap()))
            .collect();
        let want: Vec<(&str, String)> = fields.iter().map(|(k, v)| (*k, v.to_string())).collect();
        assert_eq!(again, want);
        seen += 1;
    }
    assert!(seen >= 3);
}

#[test]
fn streams_sessions_are_written_byte_for_byte_as_node_writes_them() {
    use volley_redis::message::{decode_session, encode_session, encode_session_leased};
    let mut seen = 0;
    for row in samples().iter().filter(|r| r["cmd"] == "SET") {
        let value = row["value_base64"].as_str().unwrap();
        let session = decode_session(value.as_bytes()).unwrap();
        assert_eq!(
            row["key"].as_str().unwrap(),
            format!("sio:session:{}", session.pid)
        );
        assert_eq!(&*session.id, row["decoded"]["sid"].as_str().unwrap());
        assert_eq!(session.rooms.len(), 3);
        assert_eq!(session.data, serde_json::json!({}));
        assert_eq!(encode_session(&session), value);
        assert_eq!(row["args"], serde_json::json!(["PX", "60000"]));
        // A live snapshot is Node's map with one more key, which Node's decoder ignores.
        let leased = encode_session_leased(&session, Some("uid-7"));
        assert_eq!(decode_session(leased.as_bytes()).unwrap(), session);
        let (node, ours) = (b64(value), b64(&leased));
        assert_eq!((node[0], ours[0]), (0x84, 0x85), "fixmaps of 4 and 5 keys");
        assert_eq!(ours[1..node.len()], node[1..]);
        assert_eq!(ours[node.len()..], *b"\xa5lease\xa5uid-7");
        seen += 1;
    }
    assert!(seen >= 1);
}

fn b64(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

/// `tests/data/streams-node-capture.json`: what Node's `@socket.io/redis-streams-adapter`
/// 0.3.1 wrote to Redis (`e2e/interop/scripts/capture-streams.mjs`).
fn streams_capture() -> Json {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/streams-node-capture.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn node_streams_capture_decodes_and_re_encodes_byte_for_byte() {
    use volley_redis::message::{
        decode_session, decode_stream_entry, encode_session, encode_stream_entry,
    };
    let capture = streams_capture();
    let entries = capture["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 12);
    let mut kinds = Vec::new();
    for e in entries {
        let fields: Vec<(String, String)> = e["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|kv| {
                (
                    kv[0].as_str().unwrap().to_owned(),
                    kv[1].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let env = decode_stream_entry(&fields).unwrap();
        kinds.push(fields[2].1.clone());
        let again: Vec<(String, String)> = encode_stream_entry(
            env.uid.as_deref().unwrap(),
            env.nsp.as_deref().unwrap(),
            &env.message,
            false,
        )
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), String::from_utf8(v).unwrap()))
        .collect();
        assert_eq!(again, fields, "entry {}", e["id"]);
    }
    assert_eq!(
        kinds,
        ["3", "3", "3", "3", "3", "4", "5", "6", "3", "3", "3", "3"]
    );

    let value = capture["session"]["value"].as_str().unwrap();
    let session = decode_session(value.as_bytes()).unwrap();
    assert_eq!(&*session.id, capture["client"]["id"].as_str().unwrap());
    assert_eq!(session.pid, capture["client"]["pid"].as_str().unwrap());
    assert_eq!(
        session.data,
        serde_json::json!({"user": {"name": "ana", "n": 7}})
    );
    let mut rooms: Vec<String> = session.rooms.iter().map(|r| r.to_string()).collect();
    rooms.sort();
    assert_eq!(Json::from(rooms), capture["client"]["rooms"]);
    assert_eq!(encode_session(&session), value);
    assert_eq!(
        capture["session"]["key"].as_str().unwrap(),
        format!("sio:session:{}", session.pid)
    );
    assert_eq!(capture["session"]["pttl"], 60000);
}
