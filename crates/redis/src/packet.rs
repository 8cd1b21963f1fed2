//! Between Volley's encoded packets and the adapters' `[event, ...args]` values with inline
//! binary.
//!
//! What crosses Redis is always the decoded data (Node's `{type, data, nsp}` packet), whatever
//! parser the servers use toward their own clients: a packet a namespace encoded with
//! [`Parser::MsgPack`] is read back into values here, and a packet from another server is
//! encoded with the receiving namespace's parser before local delivery.

use bytes::{Bytes, BytesMut};
use volley_core::adapter::BroadcastPacket;
use volley_core::{Encoded, Parser, RawArgs};
use volley_proto::socket::{PacketType, encode_header};

use crate::value::{Value, from_msgpack, from_socketio_json, to_msgpack, write_json};

/// The `[event, ...args]` array of an encoded event packet, binary attachments inline.
pub fn packet_data(packet: &BroadcastPacket) -> Result<Value, String> {
    if let Some(frame) = packet.encoded().msgpack_frame() {
        return match from_msgpack(frame)?.get("data") {
            Some(data @ Value::Array(_)) => Ok(data.clone()),
            _ => Err("not an event packet".into()),
        };
    }
    let text = packet.text();
    let json = skip_header(&text).ok_or("not an event packet")?;
    from_socketio_json(json, packet.attachments())
}

/// The JSON part of a Socket.IO packet text: after `<type>[<n>-][<nsp>,][<id>]`.
fn skip_header(text: &[u8]) -> Option<&[u8]> {
    let mut i = 1;
    let kind = PacketType::from_digit(*text.first()?)?;
    if kind.is_binary() {
        while text.get(i)?.is_ascii_digit() {
            i += 1;
        }
        if text.get(i)? != &b'-' {
            return None;
        }
        i += 1;
    }
    if text.get(i) == Some(&b'/') {
        while text.get(i)? != &b',' {
            i += 1;
        }
        i += 1;
    }
    while text.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    Some(&text[i..])
}

/// An event packet for namespace `nsp` from `[event, ...args]`, in `parser`'s format (JSON:
/// binary becomes attachments, the packet a BINARY_EVENT), with an ack id when asked.
pub fn build_packet(
    parser: Parser,
    nsp: &str,
    data: &Value,
    ack_id: Option<u64>,
) -> BroadcastPacket {
    if parser == Parser::MsgPack {
        // The map socket.io-msgpack-parser sends: type, data, nsp, id.
        let mut map = vec![
            ("type".to_owned(), Value::Int(2)),
            ("data".to_owned(), data.clone()),
            ("nsp".to_owned(), Value::Str(nsp.to_owned())),
        ];
        if let Some(id) = ack_id {
            map.push(("id".to_owned(), Value::Int(id as i64)));
        }
        match Encoded::from_msgpack(Bytes::from(to_msgpack(&Value::Map(map)))) {
            Ok(e) => return BroadcastPacket::new(e),
            // Only a `data` that is not an array gets here; the JSON form says the same.
            Err(e) => tracing::debug!(error = %e, "redis adapter: cannot build a msgpack packet"),
        }
    }
    let mut json = Vec::with_capacity(64);
    let mut attachments = Vec::new();
    write_json(data, &mut json, &mut Some(&mut attachments));
    let kind = if attachments.is_empty() {
        PacketType::Event
    } else {
        PacketType::BinaryEvent
    };
    let mut out = BytesMut::with_capacity(json.len() + nsp.len() + 24);
    encode_header(&mut out, kind, attachments.len(), nsp, ack_id);
    out.extend_from_slice(&json);
    BroadcastPacket::from_parts(&out, attachments)
}

/// Arguments as values, binary inline.
pub fn args_to_values(args: &RawArgs) -> Vec<Value> {
    args.args()
        .iter()
        .map(|a| match args.parser() {
            Parser::MsgPack => from_msgpack(a).unwrap_or(Value::Null),
            _ => from_socketio_json(a, args.attachments()).unwrap_or(Value::Null),
        })
        .collect()
}

/// Values as arguments (binary becomes attachments).
pub fn values_to_args(values: &[Value]) -> RawArgs {
    let mut attachments: Vec<Bytes> = Vec::new();
    let args = values
        .iter()
        .map(|v| {
            let mut json = Vec::with_capacity(32);
            write_json(v, &mut json, &mut Some(&mut attachments));
            Bytes::from(json)
        })
        .collect();
    RawArgs::new(args, attachments)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_skipped() {
        assert_eq!(skip_header(br#"2["a"]"#), Some(&br#"["a"]"#[..]));
        assert_eq!(skip_header(br#"2/chat,12["a"]"#), Some(&br#"["a"]"#[..]));
        assert_eq!(
            skip_header(br#"51-/x,["a",{"_placeholder":true,"num":0}]"#),
            Some(&br#"["a",{"_placeholder":true,"num":0}]"#[..])
        );
        assert_eq!(skip_header(br#"57["a"]"#), None);
    }

    #[test]
    fn packets_round_trip() {
        let data = Value::Array(vec![
            Value::Str("bin".into()),
            Value::Bin(Bytes::from_static(&[1, 2, 3])),
            Value::Int(4),
        ]);
        let p = build_packet(Parser::Json, "/chat", &data, Some(7));
        assert_eq!(
            &p.text()[..],
            br#"51-/chat,7["bin",{"_placeholder":true,"num":0},4]"#
        );
        assert_eq!(packet_data(&p).unwrap(), data);
        let args = values_to_args(&data.as_array().unwrap()[1..]);
        assert_eq!(
            args_to_values(&args),
            data.as_array().unwrap()[1..].to_vec()
        );
    }

    #[test]
    fn msgpack_packets_carry_the_decoded_data() {
        let data = Value::Array(vec![
            Value::Str("m".into()),
            Value::Int(1),
            Value::Float(1.5),
            Value::Str("héllo".into()),
            Value::Null,
            Value::Map(vec![(
                "x".into(),
                Value::Array(vec![Value::Bin(Bytes::from_static(&[4]))]),
            )]),
        ]);
        // Received from another server, delivered to a msgpack namespace.
        let p = build_packet(Parser::MsgPack, "/custom", &data, Some(3));
        assert_eq!(p.encoded().parser(), Parser::MsgPack);
        assert!(p.text().is_empty());
        assert_eq!(packet_data(&p).unwrap(), data);
        // Encoded by a msgpack namespace, published as values.
        let args = (1, 1.5, "héllo", None::<u8>, Bytes::from_static(&[4]));
        let e = Parser::MsgPack.event("/", "m", &args, None).unwrap();
        let v = packet_data(&BroadcastPacket::new(e)).unwrap();
        let json = Parser::Json.event("/", "m", &args, None).unwrap();
        assert_eq!(v, packet_data(&BroadcastPacket::new(json)).unwrap());
        let raw = RawArgs::from_args(Parser::MsgPack, &args).unwrap();
        let json = RawArgs::from_args(Parser::Json, &args).unwrap();
        assert_eq!(args_to_values(&raw), args_to_values(&json));
    }
}
