//! Between Volley's encoded packets and the adapters' `[event, ...args]` values with inline
//! binary.

use bytes::{Bytes, BytesMut};
use volley_core::RawArgs;
use volley_core::adapter::BroadcastPacket;
use volley_proto::socket::{PacketType, encode_header};

use crate::value::{Value, from_socketio_json, write_json};

/// The `[event, ...args]` array of an encoded event packet, binary attachments inline.
pub fn packet_data(packet: &BroadcastPacket) -> Result<Value, String> {
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

/// An event packet for namespace `nsp` from `[event, ...args]` (binary becomes
/// attachments, the packet a BINARY_EVENT), with an ack id when asked.
pub fn build_packet(nsp: &str, data: &Value, ack_id: Option<u64>) -> BroadcastPacket {
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
        .map(|a| from_socketio_json(a, args.attachments()).unwrap_or(Value::Null))
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
        let p = build_packet("/chat", &data, Some(7));
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
}
