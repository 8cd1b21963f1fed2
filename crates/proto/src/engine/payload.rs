//! The HTTP long-polling payload: packets joined by the record separator `\x1e`
//! ([spec, "HTTP long-polling"](https://github.com/socketio/engine.io-protocol/tree/main/v4#http-long-polling-1)).
//!
//! A binary message travels as `b` followed by its base64 encoding. The separator never
//! appears inside a record: text packets are UTF-8 text that the peers agree not to put
//! `\x1e` into, exactly as the official implementations do.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::{BufMut, Bytes, BytesMut};

use super::packet::{Message, Packet};
use crate::error::{DecodeError, DecodeErrorKind};

/// The record separator between packets of one payload.
pub const SEPARATOR: u8 = 0x1e;

/// Iterates over the packets of a long-polling body.
///
/// Each item is one record decoded, or the error of the first bad record; after an error the
/// iterator ends. The body is checked to be UTF-8 as a whole first, as Node reads it as text.
#[derive(Debug)]
pub struct PayloadDecoder {
    body: Bytes,
    pos: usize,
    failed: bool,
}

/// Decodes a long-polling body into its packets; see [`PayloadDecoder`].
pub fn decode(body: Bytes) -> PayloadDecoder {
    PayloadDecoder {
        body,
        pos: 0,
        failed: false,
    }
}

impl PayloadDecoder {
    fn fail(&mut self, kind: DecodeErrorKind, at: usize) -> Option<Result<Packet, DecodeError>> {
        self.failed = true;
        Some(Err(DecodeError::new(kind, at)))
    }
}

impl Iterator for PayloadDecoder {
    type Item = Result<Packet, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if self.pos == 0 {
            if self.body.is_empty() {
                return self.fail(DecodeErrorKind::Empty, 0);
            }
            if let Err(e) = std::str::from_utf8(&self.body) {
                return self.fail(DecodeErrorKind::InvalidUtf8, e.valid_up_to());
            }
        } else if self.pos > self.body.len() {
            return None;
        }
        let start = self.pos;
        let end = memchr::memchr(SEPARATOR, &self.body[start..])
            .map(|i| start + i)
            .unwrap_or(self.body.len());
        self.pos = end + 1;
        let record = self.body.slice(start..end);
        if record.first() == Some(&b'b') {
            return match STANDARD.decode(&record[1..]) {
                Ok(data) => Some(Ok(Packet::Message(Message::Binary(Bytes::from(data))))),
                Err(_) => self.fail(DecodeErrorKind::InvalidBase64, start + 1),
            };
        }
        match Packet::decode_utf8(record) {
            Ok(p) => Some(Ok(p)),
            Err(e) => self.fail(e.kind(), start + e.offset()),
        }
    }
}

/// Appends `data` as standard base64 (with padding) to `out`.
pub fn encode_base64(data: &[u8], out: &mut BytesMut) {
    let start = out.len();
    let n = base64::encoded_len(data.len(), true).unwrap_or(0);
    out.resize(start + n, 0);
    // The buffer was sized with `encoded_len`, so this cannot run out of space.
    let written = STANDARD
        .encode_slice(data, &mut out[start..])
        .unwrap_or_default();
    out.truncate(start + written);
}

/// Appends one packet to a payload being built in `out`, with a separator before it if `out`
/// already holds a packet.
pub fn push(packet: &Packet, out: &mut BytesMut) {
    if !out.is_empty() {
        out.put_u8(SEPARATOR);
    }
    packet.encode_text(out);
}

/// Encodes packets into one long-polling body.
pub fn encode<'a>(packets: impl IntoIterator<Item = &'a Packet>) -> Bytes {
    let mut out = BytesMut::new();
    for p in packets {
        push(p, &mut out);
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(s: &[u8]) -> Result<Vec<Packet>, DecodeError> {
        decode(Bytes::copy_from_slice(s)).collect()
    }

    // The spec's payload examples.
    #[test]
    fn spec_examples() {
        let p = decode_all(b"4hello\x1e2\x1e4world").unwrap();
        assert_eq!(
            p,
            vec![
                Packet::Message(Message::text("hello")),
                Packet::Ping(Bytes::new()),
                Packet::Message(Message::text("world")),
            ]
        );
        assert_eq!(encode(&p), &b"4hello\x1e2\x1e4world"[..]);

        let p = decode_all(b"4hello\x1ebAQIDBA==").unwrap();
        assert_eq!(
            p,
            vec![
                Packet::Message(Message::text("hello")),
                Packet::Message(Message::Binary(Bytes::from_static(&[1, 2, 3, 4]))),
            ]
        );
        assert_eq!(encode(&p), &b"4hello\x1ebAQIDBA=="[..]);
    }

    #[test]
    fn bad_payloads() {
        assert_eq!(decode_all(b"").unwrap_err().kind(), DecodeErrorKind::Empty);
        assert_eq!(
            decode_all(b"abc").unwrap_err().kind(),
            DecodeErrorKind::UnknownPacketType
        );
        let e = decode_all(b"4a\x1e").unwrap_err();
        assert_eq!((e.kind(), e.offset()), (DecodeErrorKind::Empty, 3));
        assert_eq!(
            decode_all(b"4a\x1eb!!").unwrap_err().kind(),
            DecodeErrorKind::InvalidBase64
        );
        assert_eq!(
            decode_all(&[b'4', 0xc3]).unwrap_err().kind(),
            DecodeErrorKind::InvalidUtf8
        );
    }

    #[test]
    fn decoder_stops_after_error() {
        let mut d = decode(Bytes::from_static(b"4a\x1e9\x1e4b"));
        assert!(d.next().unwrap().is_ok());
        assert!(d.next().unwrap().is_err());
        assert!(d.next().is_none());
    }
}
