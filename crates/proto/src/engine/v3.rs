//! Engine.IO v3 long-polling payloads, as `socket.io-client` 2.x (`engine.io-client` 3.x)
//! speaks them ([v3 spec, "Payload"](https://github.com/socketio/engine.io-protocol/tree/v3#payload)).
//!
//! Packets are the v4 ones (same type digits); only the framing of several packets in one
//! long-polling body differs, and a binary message carries its type:
//!
//! - **Text payload**: each packet as `<length>:<packet>`, the length counted in UTF-16 code
//!   units (JavaScript string length), e.g. `6:4hello1:2`. A binary message is written as
//!   `b4` + base64 of its bytes (`10:b4AQIDBA==`).
//! - **Binary payload** (when the client supports binary, XHR2, and the payload holds a binary
//!   message; HTTP `Content-Type: application/octet-stream`): each packet as one marker byte
//!   (`0` text, `1` binary), the decimal digits of its length as byte values `0..=9`, `0xFF`,
//!   then the packet: for text the UTF-8 bytes of the packet (length in bytes), for binary the
//!   type byte `4` followed by the data (length includes the type byte).
//! - Over WebSocket a v3 binary frame starts with the type byte `4` too
//!   ([`binary_frame`], [`decode_binary_frame`]); text frames are as in v4.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::{BufMut, Bytes, BytesMut};

use super::packet::{Message, Packet, PacketType};
use super::payload::encode_base64;
use crate::error::{DecodeError, DecodeErrorKind};

/// The byte that ends the length digits of a record in a binary payload.
pub const BINARY_LENGTH_END: u8 = 0xff;

/// The most length digits a record of a binary payload may have (lengths fit in `usize`
/// comfortably and bodies are limited far below this anyway).
const MAX_LENGTH_DIGITS: usize = 15;

/// The length of `text` in UTF-16 code units, as JavaScript counts a string.
pub fn utf16_len(text: &str) -> usize {
    text.chars().map(char::len_utf16).sum()
}

/// Appends one text-form packet (`4hello`, `2`, `0{...}`) to a text payload as
/// `<length>:<packet>`. `packet` must be UTF-8; bytes that are not are counted as one unit
/// each (they cannot occur in what the engine builds).
pub fn push_text(packet: &[u8], out: &mut BytesMut) {
    let len = match std::str::from_utf8(packet) {
        Ok(s) => utf16_len(s),
        Err(_) => packet.len(),
    };
    out.reserve(packet.len() + 8);
    out.put_slice(len.to_string().as_bytes());
    out.put_u8(b':');
    out.put_slice(packet);
}

/// Appends a binary message to a text payload as `<length>:b4<base64>`.
pub fn push_binary_as_text(data: &[u8], out: &mut BytesMut) {
    let len = 2 + data.len().div_ceil(3) * 4;
    out.put_slice(len.to_string().as_bytes());
    out.put_slice(b":b4");
    encode_base64(data, out);
}

/// Appends the length digits of a binary payload record: each decimal digit as its value,
/// then `0xFF`.
fn push_binary_length(len: usize, out: &mut BytesMut) {
    for d in len.to_string().bytes() {
        out.put_u8(d - b'0');
    }
    out.put_u8(BINARY_LENGTH_END);
}

/// Appends one text-form packet to a binary payload: `0`, length digits, `0xFF`, the UTF-8
/// bytes of the packet.
pub fn push_text_binary(packet: &[u8], out: &mut BytesMut) {
    out.put_u8(0);
    push_binary_length(packet.len(), out);
    out.put_slice(packet);
}

/// Appends a binary message to a binary payload: `1`, length digits (the data plus its type
/// byte), `0xFF`, `4`, the data.
pub fn push_binary_binary(data: &[u8], out: &mut BytesMut) {
    out.put_u8(1);
    push_binary_length(data.len() + 1, out);
    out.put_u8(PacketType::Message.digit() - b'0');
    out.put_slice(data);
}

/// Appends one packet to a payload being built, in the text or the binary framing.
pub fn push(packet: &Packet, binary: bool, out: &mut BytesMut) {
    match (packet, binary) {
        (Packet::Message(Message::Binary(data)), false) => push_binary_as_text(data, out),
        (Packet::Message(Message::Binary(data)), true) => push_binary_binary(data, out),
        (p, false) => push_text(&p.to_text(), out),
        (p, true) => push_text_binary(&p.to_text(), out),
    }
}

/// Encodes packets into one v3 long-polling body. With `supports_binary` and at least one
/// binary message the binary framing is used (as Node does), otherwise the text framing.
/// Returns the body and whether it is binary (`application/octet-stream`).
pub fn encode<'a>(
    packets: impl IntoIterator<Item = &'a Packet> + Clone,
    supports_binary: bool,
) -> (Bytes, bool) {
    let binary = supports_binary
        && packets
            .clone()
            .into_iter()
            .any(|p| matches!(p, Packet::Message(Message::Binary(_))));
    let mut out = BytesMut::new();
    for p in packets {
        push(p, binary, &mut out);
    }
    (out.freeze(), binary)
}

/// The v3 WebSocket binary frame of a binary message: the type byte `4`, then the data.
pub fn binary_frame(data: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(data.len() + 1);
    out.put_u8(PacketType::Message.digit() - b'0');
    out.put_slice(data);
    out.freeze()
}

/// Decodes a v3 WebSocket binary frame (or binary payload record): a type byte, then the data.
/// Only a message (`4`) carries binary data.
pub fn decode_binary_frame(frame: Bytes) -> Result<Packet, DecodeError> {
    match frame.first() {
        None => Err(DecodeError::new(DecodeErrorKind::Empty, 0)),
        Some(4) => Ok(Packet::Message(Message::Binary(frame.slice(1..)))),
        Some(_) => Err(DecodeError::new(DecodeErrorKind::UnknownPacketType, 0)),
    }
}

/// Decodes one v3 packet in text form (a payload record or a WebSocket text frame): a
/// packet as in v4, or a binary message as `b4` + base64. `at` is added to error offsets.
pub fn decode_text_record(record: Bytes, at: usize) -> Result<Packet, DecodeError> {
    if record.first() == Some(&b'b') {
        if record.get(1) != Some(&b'4') {
            return Err(DecodeError::new(DecodeErrorKind::UnknownPacketType, at + 1));
        }
        return match STANDARD.decode(&record[2..]) {
            Ok(data) => Ok(Packet::Message(Message::Binary(Bytes::from(data)))),
            Err(_) => Err(DecodeError::new(DecodeErrorKind::InvalidBase64, at + 2)),
        };
    }
    Packet::decode_text(record).map_err(|e| DecodeError::new(e.kind(), at + e.offset()))
}

/// Iterates over the packets of a v3 text payload (`<length>:<packet>...`).
///
/// Each item is one packet, or the error of the first bad record; after an error the iterator
/// ends. The body must be UTF-8 as a whole. Empty records (`0:`) are skipped, as Node does.
#[derive(Debug)]
pub struct TextPayloadDecoder {
    body: Bytes,
    pos: usize,
    done: bool,
}

/// Decodes a v3 text long-polling body; see [`TextPayloadDecoder`].
pub fn decode_text(body: Bytes) -> TextPayloadDecoder {
    TextPayloadDecoder {
        body,
        pos: 0,
        done: false,
    }
}

impl TextPayloadDecoder {
    fn fail(&mut self, kind: DecodeErrorKind, at: usize) -> Option<Result<Packet, DecodeError>> {
        self.done = true;
        Some(Err(DecodeError::new(kind, at)))
    }
}

impl Iterator for TextPayloadDecoder {
    type Item = Result<Packet, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            if self.pos == 0 {
                if self.body.is_empty() {
                    return self.fail(DecodeErrorKind::Empty, 0);
                }
                if let Err(e) = std::str::from_utf8(&self.body) {
                    return self.fail(DecodeErrorKind::InvalidUtf8, e.valid_up_to());
                }
            }
            if self.pos >= self.body.len() {
                self.done = true;
                return None;
            }
            let start = self.pos;
            let Some(colon) = memchr::memchr(b':', &self.body[start..]).map(|i| start + i) else {
                return self.fail(DecodeErrorKind::Truncated, start);
            };
            let digits = &self.body[start..colon];
            if digits.is_empty() || digits.len() > MAX_LENGTH_DIGITS {
                return self.fail(DecodeErrorKind::InvalidNumber, start);
            }
            let mut units = 0usize;
            for &d in digits {
                if !d.is_ascii_digit() {
                    return self.fail(DecodeErrorKind::InvalidNumber, start);
                }
                units = units * 10 + usize::from(d - b'0');
            }
            // Walk `units` UTF-16 code units from after the colon. The body is UTF-8, so
            // slicing at char boundaries of its str view is safe.
            let rest_start = colon + 1;
            let Ok(rest) = std::str::from_utf8(&self.body[rest_start..]) else {
                return self.fail(DecodeErrorKind::InvalidUtf8, rest_start);
            };
            let mut counted = 0usize;
            let mut end = rest_start;
            for (i, c) in rest.char_indices() {
                if counted >= units {
                    break;
                }
                counted += c.len_utf16();
                end = rest_start + i + c.len_utf8();
            }
            if counted != units {
                // Fewer units than announced, or the count ends inside a surrogate pair.
                return self.fail(DecodeErrorKind::Truncated, rest_start);
            }
            self.pos = end;
            if units == 0 {
                continue;
            }
            let record = self.body.slice(rest_start..end);
            return match decode_text_record(record, rest_start) {
                Ok(p) => Some(Ok(p)),
                Err(e) => self.fail(e.kind(), e.offset()),
            };
        }
    }
}

/// Iterates over the packets of a v3 binary payload (marker, length digits, `0xFF`, packet).
///
/// Each item is one packet, or the error of the first bad record; after an error the iterator
/// ends.
#[derive(Debug)]
pub struct BinaryPayloadDecoder {
    body: Bytes,
    pos: usize,
    done: bool,
}

/// Decodes a v3 binary long-polling body; see [`BinaryPayloadDecoder`].
pub fn decode_binary(body: Bytes) -> BinaryPayloadDecoder {
    BinaryPayloadDecoder {
        body,
        pos: 0,
        done: false,
    }
}

impl BinaryPayloadDecoder {
    fn fail(&mut self, kind: DecodeErrorKind, at: usize) -> Option<Result<Packet, DecodeError>> {
        self.done = true;
        Some(Err(DecodeError::new(kind, at)))
    }
}

impl Iterator for BinaryPayloadDecoder {
    type Item = Result<Packet, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if self.pos == 0 && self.body.is_empty() {
            return self.fail(DecodeErrorKind::Empty, 0);
        }
        if self.pos >= self.body.len() {
            self.done = true;
            return None;
        }
        let start = self.pos;
        let is_text = match self.body[start] {
            0 => true,
            1 => false,
            _ => return self.fail(DecodeErrorKind::UnknownPacketType, start),
        };
        let mut len = 0usize;
        let mut i = start + 1;
        loop {
            match self.body.get(i) {
                None => return self.fail(DecodeErrorKind::Truncated, i),
                Some(&BINARY_LENGTH_END) => break,
                Some(&d) if d <= 9 && i - start <= MAX_LENGTH_DIGITS => {
                    len = len * 10 + usize::from(d);
                }
                Some(_) => return self.fail(DecodeErrorKind::InvalidNumber, i),
            }
            i += 1;
        }
        if i == start + 1 {
            return self.fail(DecodeErrorKind::InvalidNumber, i);
        }
        let data_start = i + 1;
        let Some(end) = data_start
            .checked_add(len)
            .filter(|&e| e <= self.body.len())
        else {
            return self.fail(DecodeErrorKind::Truncated, data_start);
        };
        self.pos = end;
        let record = self.body.slice(data_start..end);
        let decoded = if is_text {
            decode_text_record(record, data_start)
        } else {
            decode_binary_frame(record).map_err(|e| DecodeError::new(e.kind(), data_start))
        };
        match decoded {
            Ok(p) => Some(Ok(p)),
            Err(e) => self.fail(e.kind(), e.offset()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn text(s: &str) -> Result<Vec<Packet>, DecodeError> {
        decode_text(Bytes::copy_from_slice(s.as_bytes())).collect()
    }

    fn binary(b: &[u8]) -> Result<Vec<Packet>, DecodeError> {
        decode_binary(Bytes::copy_from_slice(b)).collect()
    }

    fn msg(s: &str) -> Packet {
        Packet::Message(Message::text(s))
    }

    fn bin(b: &'static [u8]) -> Packet {
        Packet::Message(Message::Binary(Bytes::from_static(b)))
    }

    // The v3 spec's examples, and what engine.io-client 3.5 sends.
    #[test]
    fn text_payload_examples() {
        assert_eq!(
            text("6:4hello1:2").unwrap(),
            vec![msg("hello"), Packet::Ping(Bytes::new())]
        );
        assert_eq!(text("1:2").unwrap(), vec![Packet::Ping(Bytes::new())]);
        assert_eq!(text("0:").unwrap(), vec![]);
        assert_eq!(text("10:b4AQIDBA==").unwrap(), vec![bin(&[1, 2, 3, 4])]);
        // Socket.IO v4 CONNECT with a query, as socket.io-client 2.x sends it.
        assert_eq!(
            text("14:40/custom?x=y,").unwrap(),
            vec![msg("0/custom?x=y,")]
        );
        let (body, is_binary) = encode(&[msg("hello"), Packet::Ping(Bytes::new())], false);
        assert_eq!((&body[..], is_binary), (&b"6:4hello1:2"[..], false));
        let (body, _) = encode(&[bin(&[1, 2, 3, 4])], false);
        assert_eq!(&body[..], b"10:b4AQIDBA==");
    }

    // Lengths are UTF-16 code units: "é" is one unit (two bytes), "😀" two units (four bytes).
    #[test]
    fn text_lengths_are_utf16_units() {
        let (body, _) = encode(&[msg("é😀")], false);
        assert_eq!(&body[..], "4:4é😀".as_bytes());
        assert_eq!(
            text("4:4é😀1:3").unwrap(),
            vec![msg("é😀"), Packet::Pong(Bytes::new())]
        );
        // A count that ends inside the surrogate pair is refused.
        assert_eq!(
            text("3:4é😀").unwrap_err().kind(),
            DecodeErrorKind::Truncated
        );
    }

    #[test]
    fn bad_text_payloads() {
        let kind = |s: &str| text(s).unwrap_err().kind();
        assert_eq!(kind(""), DecodeErrorKind::Empty);
        assert_eq!(kind("4hello"), DecodeErrorKind::Truncated);
        assert_eq!(kind("x:4"), DecodeErrorKind::InvalidNumber);
        assert_eq!(kind(":4"), DecodeErrorKind::InvalidNumber);
        assert_eq!(kind("9:4hello"), DecodeErrorKind::Truncated);
        assert_eq!(kind("1:9"), DecodeErrorKind::UnknownPacketType);
        assert_eq!(kind("3:b4!"), DecodeErrorKind::InvalidBase64);
        assert_eq!(kind("2:b2"), DecodeErrorKind::UnknownPacketType);
        assert_eq!(
            kind("99999999999999999999:4"),
            DecodeErrorKind::InvalidNumber
        );
        assert!(
            decode_text(Bytes::from_static(&[b'1', b':', 0xff]))
                .next()
                .unwrap()
                .is_err()
        );
        let mut d = decode_text(Bytes::from_static(b"1:21:x1:3"));
        assert!(d.next().unwrap().is_ok());
        assert!(d.next().unwrap().is_err());
        assert!(d.next().is_none());
    }

    // Bytes as engine.io 6.6's parser-v3 `encodePayloadAsBinary` writes them.
    #[test]
    fn binary_payload_bytes() {
        let packets = [msg("hello"), bin(&[1, 2, 3])];
        let (body, is_binary) = encode(&packets, true);
        assert!(is_binary);
        let expected: &[u8] = &[
            0, 6, 0xff, b'4', b'h', b'e', b'l', b'l', b'o', // text "4hello", 6 bytes
            1, 4, 0xff, 4, 1, 2, 3, // binary: type 4 + 3 bytes
        ];
        assert_eq!(&body[..], expected);
        assert_eq!(binary(expected).unwrap(), packets);
        // Text records are UTF-8 with their length in bytes; lengths may have several digits.
        let long = "x".repeat(12);
        let (body, _) = encode(&[msg(&long), bin(&[9])], true);
        assert_eq!(&body[..4], &[0, 1, 3, 0xff]);
        assert_eq!(binary(&body).unwrap(), vec![msg(&long), bin(&[9])]);
        let mut body = BytesMut::new();
        push(&msg("é"), true, &mut body);
        assert_eq!(&body[..], &[0, 3, 0xff, b'4', 0xc3, 0xa9]);
        // Without a binary message, or without client support, the text framing is used.
        assert!(!encode(&[msg("a")], true).1);
        assert!(!encode(&[bin(&[1])], false).1);
    }

    #[test]
    fn bad_binary_payloads() {
        let kind = |b: &[u8]| binary(b).unwrap_err().kind();
        assert_eq!(kind(&[]), DecodeErrorKind::Empty);
        assert_eq!(kind(&[2, 1, 0xff, 4]), DecodeErrorKind::UnknownPacketType);
        assert_eq!(kind(&[0, 1]), DecodeErrorKind::Truncated);
        assert_eq!(kind(&[0, 0xff, b'4']), DecodeErrorKind::InvalidNumber);
        assert_eq!(kind(&[0, 10, 0xff, b'4']), DecodeErrorKind::InvalidNumber);
        assert_eq!(kind(&[0, 5, 0xff, b'4']), DecodeErrorKind::Truncated);
        assert_eq!(
            kind(&[1, 2, 0xff, 2, 1]),
            DecodeErrorKind::UnknownPacketType
        );
        assert_eq!(
            kind(&[0, 2, 0xff, b'4', 0xc3]),
            DecodeErrorKind::InvalidUtf8
        );
        assert_eq!(
            kind(&[0, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 0xff]),
            DecodeErrorKind::InvalidNumber
        );
    }

    #[test]
    fn websocket_binary_frames_carry_the_type() {
        assert_eq!(&binary_frame(&[1, 2])[..], &[4, 1, 2]);
        assert_eq!(
            decode_binary_frame(Bytes::from_static(&[4, 1, 2])).unwrap(),
            bin(&[1, 2])
        );
        assert!(decode_binary_frame(Bytes::new()).is_err());
        assert!(decode_binary_frame(Bytes::from_static(&[0, 1])).is_err());
    }

    fn packet_strategy() -> impl Strategy<Value = Packet> {
        prop_oneof![
            ".*".prop_map(|s: String| Packet::Message(Message::text(s))),
            proptest::collection::vec(any::<u8>(), 0..40)
                .prop_map(|b| Packet::Message(Message::Binary(Bytes::from(b)))),
            Just(Packet::Ping(Bytes::new())),
            Just(Packet::Pong(Bytes::from_static(b"probe"))),
            Just(Packet::Close),
            Just(Packet::Noop),
            Just(Packet::Upgrade),
        ]
    }

    proptest! {
        // Every list of packets survives both framings.
        #[test]
        fn payloads_round_trip(packets in proptest::collection::vec(packet_strategy(), 1..8)) {
            for binary in [false, true] {
                let mut out = BytesMut::new();
                for p in &packets {
                    push(p, binary, &mut out);
                }
                let again: Vec<Packet> = if binary {
                    decode_binary(out.freeze()).collect::<Result<_, _>>().unwrap()
                } else {
                    decode_text(out.freeze()).collect::<Result<_, _>>().unwrap()
                };
                prop_assert_eq!(&again, &packets);
            }
        }

        // Arbitrary bytes never panic, and errors point inside the input.
        #[test]
        fn arbitrary_bytes_are_errors_not_panics(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let body = Bytes::from(data.clone());
            for item in decode_text(body.clone()).chain(decode_binary(body)) {
                if let Err(e) = item {
                    prop_assert!(e.offset() <= data.len());
                }
            }
        }
    }

    #[test]
    fn utf16_length() {
        assert_eq!(utf16_len("a€😀"), 4);
    }
}
