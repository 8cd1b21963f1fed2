use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{DecodeError, DecodeErrorKind};

/// The seven Engine.IO v4 packet types, with their wire digit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PacketType {
    /// `0`: sent by the server when a session opens, with the handshake JSON.
    Open = 0,
    /// `1`: the transport can be closed.
    Close = 1,
    /// `2`: heartbeat request (server to client), or `2probe` during an upgrade (client to server).
    Ping = 2,
    /// `3`: heartbeat answer, or `3probe` during an upgrade.
    Pong = 3,
    /// `4`: application data.
    Message = 4,
    /// `5`: the client completes the upgrade to WebSocket.
    Upgrade = 5,
    /// `6`: answers a pending long-polling request during an upgrade.
    Noop = 6,
}

impl PacketType {
    /// The type for a wire digit (`b'0'..=b'6'`), if it is one.
    pub fn from_digit(digit: u8) -> Option<Self> {
        Some(match digit {
            b'0' => Self::Open,
            b'1' => Self::Close,
            b'2' => Self::Ping,
            b'3' => Self::Pong,
            b'4' => Self::Message,
            b'5' => Self::Upgrade,
            b'6' => Self::Noop,
            _ => return None,
        })
    }

    /// The wire digit of this type.
    pub fn digit(self) -> u8 {
        b'0' + self as u8
    }
}

/// An application message carried by an Engine.IO `message` packet.
///
/// Text is kept as UTF-8 bytes (validated when decoded) so it can be shared without copying.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Message {
    /// A text message; the bytes are valid UTF-8.
    Text(Bytes),
    /// A binary message.
    Binary(Bytes),
}

impl Message {
    /// A text message from a string.
    pub fn text(text: impl Into<String>) -> Self {
        Self::Text(Bytes::from(text.into()))
    }

    /// The message bytes, text or binary.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Text(b) | Self::Binary(b) => b,
        }
    }

    /// The length of the message in bytes.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// Whether the message is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One Engine.IO v4 packet, exactly as the spec lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// `0` + handshake JSON (see [`OpenPacket`](super::OpenPacket)); the bytes are the JSON text.
    Open(Bytes),
    /// `1`.
    Close,
    /// `2` with an optional payload (`probe` during an upgrade); UTF-8.
    Ping(Bytes),
    /// `3` with an optional payload (`probe` during an upgrade); UTF-8.
    Pong(Bytes),
    /// `4` + text, or a binary message.
    Message(Message),
    /// `5`.
    Upgrade,
    /// `6`.
    Noop,
}

impl Packet {
    /// The packet's type.
    pub fn packet_type(&self) -> PacketType {
        match self {
            Self::Open(_) => PacketType::Open,
            Self::Close => PacketType::Close,
            Self::Ping(_) => PacketType::Ping,
            Self::Pong(_) => PacketType::Pong,
            Self::Message(_) => PacketType::Message,
            Self::Upgrade => PacketType::Upgrade,
            Self::Noop => PacketType::Noop,
        }
    }

    /// Decodes a packet from a WebSocket text frame (or one long-polling record that is not
    /// binary): a type digit, then the payload.
    ///
    /// `text` must be the whole frame. It is checked to be UTF-8 here, so a caller may hand
    /// over raw bytes.
    pub fn decode_text(text: Bytes) -> Result<Self, DecodeError> {
        if std::str::from_utf8(&text).is_err() {
            return Err(DecodeError::new(DecodeErrorKind::InvalidUtf8, 0));
        }
        Self::decode_utf8(text)
    }

    /// Like [`decode_text`](Self::decode_text) for text already validated as UTF-8 (a
    /// WebSocket text frame, which the WebSocket library checked), without checking it again.
    ///
    /// Nothing unsafe follows from bytes that are not UTF-8: they would come out as a
    /// [`Message::Text`] that is not, which the Socket.IO decoder refuses.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use volley_proto::engine::{Message, Packet};
    ///
    /// let packet = Packet::decode_utf8(Bytes::from_static(b"4hello"))?;
    /// assert_eq!(packet, Packet::Message(Message::Text(Bytes::from_static(b"hello"))));
    /// # Ok::<(), volley_proto::DecodeError>(())
    /// ```
    pub fn decode_utf8(text: Bytes) -> Result<Self, DecodeError> {
        let Some(&digit) = text.first() else {
            return Err(DecodeError::new(DecodeErrorKind::Empty, 0));
        };
        let ty = PacketType::from_digit(digit)
            .ok_or(DecodeError::new(DecodeErrorKind::UnknownPacketType, 0))?;
        let rest = text.slice(1..);
        Ok(match ty {
            PacketType::Open => Self::Open(rest),
            PacketType::Close => Self::Close,
            PacketType::Ping => Self::Ping(rest),
            PacketType::Pong => Self::Pong(rest),
            PacketType::Message => Self::Message(Message::Text(rest)),
            PacketType::Upgrade => Self::Upgrade,
            PacketType::Noop => Self::Noop,
        })
    }

    /// Decodes a WebSocket binary frame: always a binary message (Engine.IO v4 sends binary
    /// frames without a type digit).
    pub fn decode_binary(data: Bytes) -> Self {
        Self::Message(Message::Binary(data))
    }

    /// Encodes a packet into the text form (type digit + payload) used by WebSocket text
    /// frames and long-polling records.
    ///
    /// A binary message has no text form on WebSocket; here it is written as `b` + base64,
    /// its long-polling form. Use [`Message::Binary`]'s bytes directly for a WebSocket binary
    /// frame.
    pub fn encode_text(&self, out: &mut BytesMut) {
        match self {
            Self::Message(Message::Binary(data)) => {
                out.put_u8(b'b');
                super::payload::encode_base64(data, out);
            }
            Self::Open(p) | Self::Ping(p) | Self::Pong(p) | Self::Message(Message::Text(p)) => {
                out.reserve(1 + p.len());
                out.put_u8(self.packet_type().digit());
                out.put_slice(p);
            }
            Self::Close | Self::Upgrade | Self::Noop => out.put_u8(self.packet_type().digit()),
        }
    }

    /// The text form as new bytes; see [`encode_text`](Self::encode_text).
    pub fn to_text(&self) -> Bytes {
        let mut out = BytesMut::new();
        self.encode_text(&mut out);
        out.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Result<Packet, DecodeError> {
        Packet::decode_text(Bytes::copy_from_slice(s.as_bytes()))
    }

    // The examples of the spec's "Packet encoding" section.
    #[test]
    fn spec_examples_decode() {
        assert_eq!(
            text("4hello").unwrap(),
            Packet::Message(Message::text("hello"))
        );
        assert_eq!(
            text("2probe").unwrap(),
            Packet::Ping(Bytes::from_static(b"probe"))
        );
        assert_eq!(
            text("3probe").unwrap(),
            Packet::Pong(Bytes::from_static(b"probe"))
        );
        assert_eq!(text("2").unwrap(), Packet::Ping(Bytes::new()));
        assert_eq!(text("1").unwrap(), Packet::Close);
        assert_eq!(text("5").unwrap(), Packet::Upgrade);
        assert_eq!(text("6").unwrap(), Packet::Noop);
        assert_eq!(
            Packet::decode_binary(Bytes::from_static(&[1, 2, 3, 4])),
            Packet::Message(Message::Binary(Bytes::from_static(&[1, 2, 3, 4])))
        );
    }

    #[test]
    fn encode_round_trips() {
        for s in [
            "4hello",
            "2probe",
            "3",
            "1",
            "5",
            "6",
            "0{\"sid\":\"x\"}",
            "4€ \u{2028}",
        ] {
            assert_eq!(text(s).unwrap().to_text(), s.as_bytes());
        }
    }

    #[test]
    fn bad_input_is_an_error() {
        assert_eq!(text("").unwrap_err().kind(), DecodeErrorKind::Empty);
        assert_eq!(
            text("abc").unwrap_err().kind(),
            DecodeErrorKind::UnknownPacketType
        );
        assert_eq!(
            text("7").unwrap_err().kind(),
            DecodeErrorKind::UnknownPacketType
        );
        let bad = Packet::decode_text(Bytes::from_static(&[b'4', 0xff, 0xfe]));
        assert_eq!(bad.unwrap_err().kind(), DecodeErrorKind::InvalidUtf8);
    }

    #[test]
    fn binary_text_form_is_base64() {
        let p = Packet::Message(Message::Binary(Bytes::from_static(&[1, 2, 3, 4])));
        assert_eq!(p.to_text(), "bAQIDBA==".as_bytes());
    }
}
