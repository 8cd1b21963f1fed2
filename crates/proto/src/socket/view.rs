//! A decoded packet that borrows from the text it was decoded from: what a server needs to
//! route an event (namespace, event name) without copying them into `String`s.

use std::borrow::Cow;

use bytes::Bytes;
use serde_json::value::RawValue;

use super::packet::{err, json_err, misplaced_data, split_array};
use super::{DecodeLimits, Packet, PacketData, PacketType};
use crate::error::{DecodeError, DecodeErrorKind};

/// A decoded Socket.IO packet whose namespace and event name borrow from the frame it was
/// decoded from (the arguments are slices of it, as in [`Packet`]).
///
/// [`PacketRef::decode`] validates exactly as [`Packet::decode`] does, which is
/// `PacketRef::decode` followed by [`into_owned`](Self::into_owned); a receiver that only
/// looks at the packet saves the two `String`s. It has no attachments: a binary packet is
/// completed by a [`Reassembler`](super::Reassembler) as a [`Packet`], and
/// [`Packet::view`] gives its `PacketRef`.
///
/// ```
/// use bytes::Bytes;
/// use volley_proto::socket::{DecodeLimits, PacketDataRef, PacketRef, PacketType};
///
/// let text = Bytes::from_static(br#"2["hello",{"a":1}]"#);
/// let (packet, attachments) = PacketRef::decode(&text, &DecodeLimits::default())?;
/// assert_eq!((packet.kind, packet.namespace, packet.id, attachments), (PacketType::Event, "/", None, 0));
/// let PacketDataRef::Event { name, args } = &packet.data else { unreachable!() };
/// assert_eq!(name, "hello");
/// assert_eq!(args[..], [Bytes::from_static(br#"{"a":1}"#)]);
/// # Ok::<(), volley_proto::DecodeError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketRef<'a> {
    /// The packet type.
    pub kind: PacketType,
    /// The namespace; `"/"` when absent on the wire.
    pub namespace: &'a str,
    /// The acknowledgement id.
    pub id: Option<u64>,
    /// The data, split according to the type.
    pub data: PacketDataRef<'a>,
}

/// An event name as decoded: UTF-8, borrowed from the frame unless it had escapes. A receiver
/// routes by its [`bytes`](Self::as_bytes); [`as_str`](Self::as_str) checks UTF-8 again, so
/// decoding does not, for a `&str` that the lookup does not need.
#[derive(Clone, PartialEq, Eq)]
pub struct EventName<'a>(Cow<'a, [u8]>);

impl<'a> EventName<'a> {
    /// Bytes that the array scanner found to be UTF-8.
    pub(super) fn checked(bytes: &'a [u8]) -> Self {
        Self(Cow::Borrowed(bytes))
    }

    /// The name's bytes (UTF-8).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        // UTF-8 by construction: never the default.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The name as a `String`.
    pub fn into_string(self) -> String {
        match self.0 {
            Cow::Borrowed(b) => String::from_utf8_lossy(b).into_owned(),
            // UTF-8 by construction: never lossy.
            Cow::Owned(b) => String::from_utf8(b)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        }
    }
}

impl<'a> From<&'a str> for EventName<'a> {
    fn from(name: &'a str) -> Self {
        Self(Cow::Borrowed(name.as_bytes()))
    }
}

impl From<String> for EventName<'_> {
    fn from(name: String) -> Self {
        Self(Cow::Owned(name.into_bytes()))
    }
}

impl PartialEq<str> for EventName<'_> {
    fn eq(&self, other: &str) -> bool {
        *self.0 == *other.as_bytes()
    }
}

impl PartialEq<&str> for EventName<'_> {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == *other.as_bytes()
    }
}

impl std::fmt::Debug for EventName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::fmt::Display for EventName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The data of a [`PacketRef`]: [`PacketData`] with a borrowed event name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PacketDataRef<'a> {
    /// No data: a `CONNECT` without payload, or a `DISCONNECT`.
    None,
    /// The `CONNECT` or `CONNECT_ERROR` payload, as raw JSON text.
    Json(Bytes),
    /// `EVENT` / `BINARY_EVENT` data.
    Event {
        /// The event name, unescaped (borrowed unless it had escapes).
        name: EventName<'a>,
        /// Every array element after the name, each as raw JSON text.
        args: EventArgs,
    },
    /// `ACK` / `BINARY_ACK` data.
    Ack {
        /// Every array element, each as raw JSON text.
        args: EventArgs,
    },
}

/// The arguments of a [`PacketDataRef`] event or ack: one is held inline (most events have one),
/// more in a heap vector, so decoding a one-argument event allocates nothing for the list.
pub type EventArgs = smallvec::SmallVec<[Bytes; 1]>;

impl<'a> PacketRef<'a> {
    /// Decodes a text packet (the text of one Engine.IO message, without its `4`), with the
    /// checks of [`Packet::decode`]; returns the packet and the number of binary attachments
    /// it declares.
    pub fn decode(text: &'a Bytes, limits: &DecodeLimits) -> Result<(Self, usize), DecodeError> {
        // UTF-8 is checked as the text is read, not in a pass of its own; a refused text that
        // is not UTF-8 is refused for that, as if it had been checked first.
        Self::decode_read(text, limits).map_err(|e| match std::str::from_utf8(text) {
            Err(u) => err(DecodeErrorKind::InvalidUtf8, u.valid_up_to()),
            Ok(_) => e,
        })
    }

    /// [`decode`](Self::decode), checking UTF-8 where it reads: the namespace, the JSON data
    /// (strings by the array scanner, which allows no other byte above 0x7f; other JSON in one
    /// go), the header being ASCII digits and punctuation. A refusal may come before an invalid
    /// UTF-8 sequence is seen; `decode` tells which refusal it is.
    fn decode_read(text: &'a Bytes, limits: &DecodeLimits) -> Result<(Self, usize), DecodeError> {
        let b: &'a [u8] = text;
        let Some(&digit) = b.first() else {
            return Err(err(DecodeErrorKind::Empty, 0));
        };
        let kind =
            PacketType::from_digit(digit).ok_or(err(DecodeErrorKind::UnknownPacketType, 0))?;
        let mut pos = 1;

        // <attachments>-
        let mut attachments = 0;
        if kind.is_binary() {
            let start = pos;
            let mut n: usize = 0;
            while let Some(d) = b.get(pos).filter(|c| c.is_ascii_digit()) {
                n = n.saturating_mul(10).saturating_add(usize::from(d - b'0'));
                pos += 1;
            }
            if pos == start {
                return Err(err(DecodeErrorKind::InvalidNumber, start));
            }
            if b.get(pos) != Some(&b'-') {
                return Err(err(DecodeErrorKind::InvalidNumber, pos));
            }
            if n > limits.max_attachments {
                return Err(err(DecodeErrorKind::TooManyAttachments, start));
            }
            pos += 1;
            attachments = n;
        }

        // <namespace>, (the comma may be missing at the very end: `40/custom`)
        let has_namespace = b.get(pos) == Some(&b'/');
        let namespace = if has_namespace {
            let start = pos;
            let end = memchr::memchr(b',', &b[pos..]).map_or(b.len(), |i| pos + i);
            pos = (end + 1).min(b.len());
            std::str::from_utf8(&b[start..end])
                .map_err(|e| err(DecodeErrorKind::InvalidUtf8, start + e.valid_up_to()))?
        } else {
            "/"
        };

        // <ack id>
        let id_start = pos;
        while b.get(pos).is_some_and(u8::is_ascii_digit) {
            pos += 1;
        }
        let id = if pos > id_start {
            // ASCII digits: UTF-8.
            let digits = std::str::from_utf8(&b[id_start..pos]).unwrap_or_default();
            Some(
                digits
                    .parse::<u64>()
                    .map_err(|_| err(DecodeErrorKind::InvalidNumber, id_start))?,
            )
        } else {
            None
        };
        let takes_id = matches!(
            kind,
            PacketType::Event | PacketType::Ack | PacketType::BinaryEvent | PacketType::BinaryAck
        );
        if id.is_some() && !takes_id {
            return Err(err(DecodeErrorKind::InvalidNumber, id_start));
        }

        // <JSON data>
        let json = &b[pos..];
        let first = json.first().copied();
        let starts_right = match (kind, first) {
            (_, None) => true,
            (PacketType::Connect, Some(c)) => c == b'{',
            (PacketType::ConnectError, Some(c)) => c == b'{' || c == b'"',
            (PacketType::Disconnect, Some(_)) => false,
            (_, Some(c)) => c == b'[',
        };
        if !starts_right {
            return Err(misplaced_data(
                json,
                pos,
                has_namespace,
                takes_id && id.is_none(),
            ));
        }
        let data = match kind {
            PacketType::Connect if json.is_empty() => PacketDataRef::None,
            PacketType::Disconnect => PacketDataRef::None,
            PacketType::Connect | PacketType::ConnectError => {
                if json.is_empty() {
                    return Err(err(DecodeErrorKind::InvalidData, pos));
                }
                let json = std::str::from_utf8(json)
                    .map_err(|e| err(DecodeErrorKind::InvalidUtf8, pos + e.valid_up_to()))?;
                let raw: &RawValue = serde_json::from_str(json).map_err(|e| json_err(&e, pos))?;
                PacketDataRef::Json(text.slice_ref(raw.get().as_bytes()))
            }
            PacketType::Event | PacketType::BinaryEvent => {
                if json.is_empty() {
                    return Err(err(DecodeErrorKind::InvalidData, pos));
                }
                let (name, args) = split_array(text, pos, true)?;
                let name = name.ok_or(err(DecodeErrorKind::InvalidData, pos))?;
                PacketDataRef::Event { name, args }
            }
            PacketType::Ack | PacketType::BinaryAck => {
                if id.is_none() {
                    return Err(err(DecodeErrorKind::InvalidNumber, pos));
                }
                if json.is_empty() {
                    return Err(err(DecodeErrorKind::InvalidData, pos));
                }
                let (_, args) = split_array(text, pos, false)?;
                PacketDataRef::Ack { args }
            }
        };
        Ok((
            PacketRef {
                kind,
                namespace,
                id,
                data,
            },
            attachments,
        ))
    }

    /// The same packet with its own `String`s, and no attachments yet.
    pub fn into_owned(self) -> Packet {
        Packet {
            kind: self.kind,
            namespace: self.namespace.to_owned(),
            id: self.id,
            data: match self.data {
                PacketDataRef::None => PacketData::None,
                PacketDataRef::Json(json) => PacketData::Json(json),
                PacketDataRef::Event { name, args } => PacketData::Event {
                    name: name.into_string(),
                    args: args.into_vec(),
                },
                PacketDataRef::Ack { args } => PacketData::Ack {
                    args: args.into_vec(),
                },
            },
            attachments: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::socket::packet::tests::valid_packet;
    use bytes::BytesMut;
    use proptest::prelude::*;

    #[test]
    fn borrows_the_namespace_and_a_plain_event_name() {
        let text = Bytes::from_static(br#"2/chat,7["hello",1]"#);
        let (p, _) = PacketRef::decode(&text, &DecodeLimits::default()).unwrap();
        assert_eq!((p.namespace, p.id), ("/chat", Some(7)));
        let PacketDataRef::Event { name, args } = p.data else {
            panic!("not an event")
        };
        assert!(matches!(name.0, Cow::Borrowed(b"hello")));
        assert_eq!((name.as_bytes(), name.as_str()), (&b"hello"[..], "hello"));
        assert_eq!(args[..], [Bytes::from_static(b"1")]);
    }

    #[test]
    fn unescapes_an_event_name_with_escapes() {
        let text = Bytes::from_static(br#"2["a\"b\u00e9"]"#);
        let (p, _) = PacketRef::decode(&text, &DecodeLimits::default()).unwrap();
        let PacketDataRef::Event { name, .. } = p.data else {
            panic!("not an event")
        };
        assert!(matches!(name.0, Cow::Owned(ref n) if n == "a\"bé".as_bytes()));
        assert_eq!(name, "a\"bé");
        assert_eq!(name.into_string(), "a\"bé");
    }

    proptest! {
        /// Bytes that are not UTF-8 anywhere in a packet (namespace, event name, arguments,
        /// strings or not) are refused as such, at the first bad byte, whatever else is wrong;
        /// a packet decoded is UTF-8.
        #[test]
        fn invalid_utf8_anywhere_is_refused_as_such(
            packet in valid_packet(),
            at: prop::sample::Index,
            junk in proptest::collection::vec(any::<u8>(), 1..4),
        ) {
            let mut out = BytesMut::new();
            packet.encode(&mut out);
            let mut bytes = out.to_vec();
            let at = at.index(bytes.len() + 1);
            bytes.splice(at..at, junk);
            let text = Bytes::from(bytes);
            let decoded = PacketRef::decode(&text, &DecodeLimits { max_attachments: 16 });
            match std::str::from_utf8(&text) {
                Err(u) => {
                    let e = decoded.unwrap_err();
                    prop_assert_eq!((e.kind(), e.offset()), (DecodeErrorKind::InvalidUtf8, u.valid_up_to()));
                }
                Ok(_) => {
                    let owned = Packet::decode(text.clone(), &DecodeLimits { max_attachments: 16 });
                    prop_assert_eq!(decoded.map(|(p, n)| (p.into_owned(), n)), owned);
                }
            }
        }

        /// The owned packet's view is what decoding borrowed: both decoders agree.
        #[test]
        fn view_of_the_owned_packet_is_the_borrowed_one(packet in valid_packet()) {
            let mut out = BytesMut::new();
            packet.encode(&mut out);
            let text = out.freeze();
            let (owned, n) = Packet::decode(text.clone(), &DecodeLimits { max_attachments: 16 })
                .unwrap();
            let (borrowed, m) = PacketRef::decode(&text, &DecodeLimits { max_attachments: 16 })
                .unwrap();
            prop_assert_eq!(n, m);
            prop_assert_eq!(owned.view(), borrowed.clone());
            prop_assert_eq!(borrowed.into_owned(), owned);
        }
    }
}
