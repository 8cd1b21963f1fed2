//! Socket.IO packets: the header grammar, the data shapes, and their text encoding.
//!
//! ```text
//! <type>[<attachments>-][<namespace>,][<ack id>][<JSON data>]
//! ```

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::value::RawValue;

use std::borrow::Cow;

use super::json_str::write_json_str;
use super::split;
use super::view::{EventArgs, EventName, PacketDataRef, PacketRef};
use crate::error::{DecodeError, DecodeErrorKind};

/// The seven Socket.IO v5 packet types, with their wire digit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PacketType {
    /// `0`: a client asks to join a namespace (optional auth object), or the server accepts
    /// (`{"sid":...}`).
    Connect = 0,
    /// `1`: one side leaves a namespace.
    Disconnect = 1,
    /// `2`: an event, `["name", args...]`, optionally with an ack id.
    Event = 2,
    /// `3`: the answer to an event that carried an ack id.
    Ack = 3,
    /// `4`: the server refuses a namespace connection.
    ConnectError = 4,
    /// `5`: an event whose arguments contain binary attachments.
    BinaryEvent = 5,
    /// `6`: an ack whose arguments contain binary attachments.
    BinaryAck = 6,
}

impl PacketType {
    /// The type for an ASCII wire digit (`b'0'..=b'6'`), if it is one.
    ///
    /// Like [`engine::PacketType::from_digit`](crate::engine::PacketType::from_digit), this
    /// takes the character as it appears on the wire, not its numeric value.
    pub fn from_digit(digit: u8) -> Option<Self> {
        Some(match digit {
            b'0' => Self::Connect,
            b'1' => Self::Disconnect,
            b'2' => Self::Event,
            b'3' => Self::Ack,
            b'4' => Self::ConnectError,
            b'5' => Self::BinaryEvent,
            b'6' => Self::BinaryAck,
            _ => return None,
        })
    }

    /// The ASCII wire digit of this type (`b'0'..=b'6'`).
    pub fn digit(self) -> u8 {
        b'0' + self as u8
    }

    /// Whether packets of this type carry binary attachments (`BinaryEvent`, `BinaryAck`).
    pub fn is_binary(self) -> bool {
        matches!(self, Self::BinaryEvent | Self::BinaryAck)
    }
}

/// The data of a [`Packet`], already split along the shape its type requires.
///
/// JSON is kept as raw text (slices of the decoded message, so no copy is made); parse it with
/// [`from_slice_with_binary`](super::from_slice_with_binary) into the type you want.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PacketData {
    /// No data: a `CONNECT` without payload, or a `DISCONNECT`.
    None,
    /// The `CONNECT` payload (a JSON object) or the `CONNECT_ERROR` payload (an object, or a
    /// string from old servers), as raw JSON text.
    Json(Bytes),
    /// `EVENT` / `BINARY_EVENT` data.
    Event {
        /// The event name, unescaped.
        name: String,
        /// Every array element after the name, each as raw JSON text.
        args: Vec<Bytes>,
    },
    /// `ACK` / `BINARY_ACK` data.
    Ack {
        /// Every array element, each as raw JSON text.
        args: Vec<Bytes>,
    },
}

/// One decoded Socket.IO packet: header and data.
///
/// For `BinaryEvent` / `BinaryAck`, [`attachments`](Self::attachments) holds the binary
/// attachments once they have all arrived (see [`Reassembler`](super::Reassembler)); the JSON
/// data refers to them with `{"_placeholder":true,"num":N}` objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// The packet type.
    pub kind: PacketType,
    /// The namespace; `"/"` when absent on the wire.
    pub namespace: String,
    /// The acknowledgement id.
    pub id: Option<u64>,
    /// The data, split according to the type.
    pub data: PacketData,
    /// The binary attachments of a binary packet, in order.
    pub attachments: Vec<Bytes>,
}

/// Limits applied while decoding untrusted packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// The most binary attachments one packet may declare (default 10, as socket.io-parser).
    pub max_attachments: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            max_attachments: 10,
        }
    }
}

pub(super) fn err(kind: DecodeErrorKind, offset: usize) -> DecodeError {
    DecodeError::new(kind, offset)
}

/// Maps a serde_json error on the data starting at byte `start` to an `InvalidData` error at
/// the best offset we can tell.
pub(super) fn json_err(e: &serde_json::Error, start: usize) -> DecodeError {
    let offset = if e.line() == 1 {
        start + e.column().saturating_sub(1)
    } else {
        start
    };
    err(DecodeErrorKind::InvalidData, offset)
}

impl Packet {
    /// Decodes a text packet (the text of one Engine.IO message, without its `4`).
    ///
    /// Returns the packet and the number of binary attachments it declares (0 for non-binary
    /// types); a binary packet comes back with empty
    /// [`attachments`](Self::attachments), to be filled by the caller or a
    /// [`Reassembler`](super::Reassembler).
    ///
    /// Everything is validated: the type digit, the attachment count (at most
    /// `limits.max_attachments`), the namespace (it starts with `/` and ends at `,` or at the end
    /// of the text, as the official client sends `40/custom`), the ack id (an `ACK` needs one;
    /// `CONNECT`, `DISCONNECT` and `CONNECT_ERROR` take none), and the JSON data, which must
    /// be exactly one JSON value of the right shape: a `CONNECT` has an object or nothing, a
    /// `DISCONNECT` nothing, an `EVENT` a non-empty array starting with a string, an `ACK` an
    /// array, a `CONNECT_ERROR` an object or a string. The data must start right after the
    /// header; only JSON whitespace may follow it.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use volley_proto::socket::{DecodeLimits, Packet, PacketData, PacketType};
    ///
    /// let text = Bytes::from_static(br#"2/admin,12["hello",{"a":1},"x"]"#);
    /// let (packet, attachments) = Packet::decode(text, &DecodeLimits::default())?;
    /// assert_eq!(attachments, 0);
    /// assert_eq!(packet.kind, PacketType::Event);
    /// assert_eq!(packet.namespace, "/admin");
    /// assert_eq!(packet.id, Some(12));
    /// let PacketData::Event { name, args } = &packet.data else { unreachable!() };
    /// assert_eq!(name, "hello");
    /// assert_eq!(args, &[Bytes::from_static(br#"{"a":1}"#), Bytes::from_static(br#""x""#)]);
    ///
    /// assert!(Packet::decode(Bytes::from_static(b"2{}"), &DecodeLimits::default()).is_err());
    /// # Ok::<(), volley_proto::DecodeError>(())
    /// ```
    pub fn decode(text: Bytes, limits: &DecodeLimits) -> Result<(Packet, usize), DecodeError> {
        PacketRef::decode(&text, limits).map(|(packet, n)| (packet.into_owned(), n))
    }

    /// The packet as a [`PacketRef`] borrowing its namespace and event name (the argument
    /// list is cloned: its `Bytes` share the packet's buffers).
    pub fn view(&self) -> PacketRef<'_> {
        PacketRef {
            kind: self.kind,
            namespace: &self.namespace,
            id: self.id,
            data: match &self.data {
                PacketData::None => PacketDataRef::None,
                PacketData::Json(json) => PacketDataRef::Json(json.clone()),
                PacketData::Event { name, args } => PacketDataRef::Event {
                    name: EventName::from(name.as_str()),
                    args: args.iter().cloned().collect(),
                },
                PacketData::Ack { args } => PacketDataRef::Ack {
                    args: args.iter().cloned().collect(),
                },
            },
        }
    }

    /// Encodes the whole packet, header and data, into `out`.
    ///
    /// A binary type declares `self.attachments.len()` attachments; the attachments themselves
    /// are sent by the caller as separate binary messages. The data is written as it is, even if
    /// it does not fit the type.
    ///
    /// ```
    /// use bytes::{Bytes, BytesMut};
    /// use volley_proto::socket::{Packet, PacketData, PacketType};
    ///
    /// let packet = Packet {
    ///     kind: PacketType::Ack,
    ///     namespace: "/admin".into(),
    ///     id: Some(13),
    ///     data: PacketData::Ack { args: vec![Bytes::from_static(br#""bar""#)] },
    ///     attachments: Vec::new(),
    /// };
    /// let mut out = BytesMut::new();
    /// packet.encode(&mut out);
    /// assert_eq!(&out[..], br#"3/admin,13["bar"]"#);
    /// ```
    pub fn encode(&self, out: &mut BytesMut) {
        encode_header(
            out,
            self.kind,
            self.attachments.len(),
            &self.namespace,
            self.id,
        );
        match &self.data {
            PacketData::None => {}
            PacketData::Json(json) => out.put_slice(json),
            PacketData::Event { name, args } => {
                out.reserve(name.len() + 4 + args.iter().map(|a| a.len() + 1).sum::<usize>());
                out.put_u8(b'[');
                write_json_str(out, name);
                for arg in args {
                    out.put_u8(b',');
                    out.put_slice(arg);
                }
                out.put_u8(b']');
            }
            PacketData::Ack { args } => {
                out.reserve(2 + args.iter().map(|a| a.len() + 1).sum::<usize>());
                out.put_u8(b'[');
                for (i, arg) in args.iter().enumerate() {
                    if i > 0 {
                        out.put_u8(b',');
                    }
                    out.put_slice(arg);
                }
                out.put_u8(b']');
            }
        }
    }
}

/// Writes a packet header into `out`: the type digit (binary types followed by
/// `<attachments>-`), then the namespace and a `,` unless it is `"/"` (or empty), then the ack
/// id. The JSON data, if any, is for the caller to write right after.
///
/// ```
/// use bytes::{BufMut, BytesMut};
/// use volley_proto::socket::{encode_header, PacketType};
///
/// let mut out = BytesMut::new();
/// encode_header(&mut out, PacketType::BinaryAck, 1, "/", Some(15));
/// out.put_slice(br#"["bar",{"_placeholder":true,"num":0}]"#);
/// assert_eq!(&out[..], br#"61-15["bar",{"_placeholder":true,"num":0}]"#);
///
/// out.clear();
/// encode_header(&mut out, PacketType::Disconnect, 0, "/admin", None);
/// assert_eq!(&out[..], b"1/admin,");
/// ```
#[inline]
pub fn encode_header(
    out: &mut impl BufMut,
    kind: PacketType,
    attachments: usize,
    namespace: &str,
    id: Option<u64>,
) {
    out.put_u8(kind.digit());
    if kind.is_binary() {
        out.put_slice(itoa::Buffer::new().format(attachments).as_bytes());
        out.put_u8(b'-');
    }
    if namespace != "/" && !namespace.is_empty() {
        out.put_slice(namespace.as_bytes());
        out.put_u8(b',');
    }
    if let Some(id) = id {
        out.put_slice(itoa::Buffer::new().format(id).as_bytes());
    }
}

/// Splits the JSON array that `text` holds from byte `pos` on into its elements, each as a
/// slice of `text`, checking that it is one JSON array in UTF-8 and nothing more. With `named`,
/// the first element is the event name instead (`None` if it is missing or not a string).
///
/// The array is scanned by hand ([`split::array_elements`], which checks UTF-8 too);
/// serde_json reads it again only when the scan says no, to tell why.
pub(super) fn split_array(
    text: &Bytes,
    pos: usize,
    named: bool,
) -> Result<(Option<EventName<'_>>, EventArgs), DecodeError> {
    let json = &text[pos..];
    let (mut name, mut args, mut first) = (None, EventArgs::new(), named);
    let scanned = split::array_elements(json, |start, end, escaped| {
        let (start, end) = (pos + start, pos + end);
        if std::mem::take(&mut first) {
            // UTF-8, as the scan found: a plain name stays bytes, not checked again for a
            // `&str` that a receiver routing by bytes does not need.
            name = match (text[start], escaped) {
                // A string without escapes: its content is the text between the quotes.
                (b'"', false) => Some(EventName::checked(&text[start + 1..end - 1])),
                _ => event_name(std::str::from_utf8(&text[start..end]).unwrap_or_default())
                    .map(|n| EventName::from(n.into_owned())),
            };
        } else {
            if args.len() == args.inline_size() {
                // Past the inline element, room for a few straight away (a `push` that
                // spills takes the longer road of growing).
                args.reserve(4);
            }
            args.push(text.slice(start..end));
        }
    });
    if scanned {
        return Ok((name, args));
    }
    let json = std::str::from_utf8(json)
        .map_err(|e| err(DecodeErrorKind::InvalidUtf8, pos + e.valid_up_to()))?;
    use serde::Deserializer as _;
    let mut de = serde_json::Deserializer::from_str(json);
    let split = (&mut de)
        .deserialize_seq(Elements { text, named })
        .and_then(|split| de.end().map(|()| split))
        .map_err(|e| json_err(&e, pos))?;
    Ok((split.0.map(EventName::from), EventArgs::from_vec(split.1)))
}

/// Takes a JSON array apart without collecting its elements first.
struct Elements<'t> {
    text: &'t Bytes,
    named: bool,
}

impl<'de> serde::de::Visitor<'de> for Elements<'_> {
    type Value = (Option<String>, Vec<Bytes>);

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON array")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let name = match self.named {
            true => seq
                .next_element::<&RawValue>()?
                .and_then(|raw| event_name(raw.get()))
                .map(Cow::into_owned),
            false => None,
        };
        let mut args = Vec::new();
        while let Some(raw) = seq.next_element::<&RawValue>()? {
            args.push(self.text.slice_ref(raw.get().as_bytes()));
        }
        Ok((name, args))
    }
}

/// The event name from the first array element (its JSON text): a JSON string, unescaped.
fn event_name(text: &str) -> Option<Cow<'_, str>> {
    if !text.starts_with('"') {
        return None;
    }
    if !text.contains('\\') {
        // A valid JSON string without escapes: its content is the text between the quotes.
        return Some(Cow::Borrowed(&text[1..text.len() - 1]));
    }
    serde_json::from_str::<String>(text).ok().map(Cow::Owned)
}

/// The error for data that does not start where and how the type requires, named after what
/// the bytes most likely were meant to be.
pub(super) fn misplaced_data(
    json: &[u8],
    pos: usize,
    has_namespace: bool,
    id_possible: bool,
) -> DecodeError {
    // `2admin,["x"]`: a namespace without its leading slash.
    if !has_namespace {
        if let Some(comma) = memchr::memchr(b',', json) {
            if !json[..comma]
                .iter()
                .any(|c| matches!(c, b'[' | b'{' | b'"'))
            {
                return err(DecodeErrorKind::InvalidNamespace, pos);
            }
        }
    }
    // `2abc["x"]`: a malformed ack id.
    if id_possible && json.first().is_some_and(u8::is_ascii_alphanumeric) {
        return err(DecodeErrorKind::InvalidNumber, pos);
    }
    err(DecodeErrorKind::InvalidData, pos)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode(s: &str) -> Result<(Packet, usize), DecodeError> {
        Packet::decode(
            Bytes::copy_from_slice(s.as_bytes()),
            &DecodeLimits::default(),
        )
    }

    fn kind_of(s: &str) -> DecodeErrorKind {
        match decode(s) {
            Ok(p) => panic!("{s:?} decoded to {p:?}"),
            Err(e) => e.kind(),
        }
    }

    fn encode(p: &Packet) -> String {
        let mut out = BytesMut::new();
        p.encode(&mut out);
        String::from_utf8(out.to_vec()).unwrap()
    }

    fn raw(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn packet(kind: PacketType, ns: &str, id: Option<u64>, data: PacketData) -> Packet {
        Packet {
            kind,
            namespace: ns.into(),
            id,
            data,
            attachments: Vec::new(),
        }
    }

    fn event(name: &str, args: &[&str]) -> PacketData {
        PacketData::Event {
            name: name.into(),
            args: args.iter().map(|a| raw(a)).collect(),
        }
    }

    fn ack(args: &[&str]) -> PacketData {
        PacketData::Ack {
            args: args.iter().map(|a| raw(a)).collect(),
        }
    }

    /// Decodes `text`, checks it against `expected` and the attachment count, and checks that
    /// it encodes back to exactly `text` (with `count` attachments filled in).
    fn check(text: &str, expected: Packet, count: usize) {
        let (p, n) = decode(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        assert_eq!(p, expected, "{text:?}");
        assert_eq!(n, count, "{text:?}");
        let mut full = p;
        full.attachments = vec![Bytes::new(); n];
        assert_eq!(encode(&full), text);
    }

    // Every example of the spec's "Packet encoding" section and its sample session.
    #[test]
    fn spec_examples() {
        use PacketType::*;
        check("0", packet(Connect, "/", None, PacketData::None), 0);
        check(
            r#"0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}"#,
            packet(
                Connect,
                "/admin",
                None,
                PacketData::Json(raw(r#"{"sid":"oSO0OpakMV_3jnilAAAA"}"#)),
            ),
            0,
        );
        check(
            r#"0{"token":"123"}"#,
            packet(
                Connect,
                "/",
                None,
                PacketData::Json(raw(r#"{"token":"123"}"#)),
            ),
            0,
        );
        check(
            "0/admin,",
            packet(Connect, "/admin", None, PacketData::None),
            0,
        );
        check(
            r#"4{"message":"Not authorized"}"#,
            packet(
                ConnectError,
                "/",
                None,
                PacketData::Json(raw(r#"{"message":"Not authorized"}"#)),
            ),
            0,
        );
        check(
            r#"2["foo"]"#,
            packet(Event, "/", None, event("foo", &[])),
            0,
        );
        check(
            r#"2/admin,["bar"]"#,
            packet(Event, "/admin", None, event("bar", &[])),
            0,
        );
        check(
            r#"51-["baz",{"_placeholder":true,"num":0}]"#,
            packet(
                BinaryEvent,
                "/",
                None,
                event("baz", &[r#"{"_placeholder":true,"num":0}"#]),
            ),
            1,
        );
        check(
            r#"52-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
            packet(
                BinaryEvent,
                "/admin",
                None,
                event(
                    "baz",
                    &[
                        r#"{"_placeholder":true,"num":0}"#,
                        r#"{"_placeholder":true,"num":1}"#,
                    ],
                ),
            ),
            2,
        );
        check(
            r#"212["foo"]"#,
            packet(Event, "/", Some(12), event("foo", &[])),
            0,
        );
        check(r#"312[]"#, packet(Ack, "/", Some(12), ack(&[])), 0);
        check(
            r#"3/admin,13["bar"]"#,
            packet(Ack, "/admin", Some(13), ack(&[r#""bar""#])),
            0,
        );
        check(
            r#"61-15["bar",{"_placeholder":true,"num":0}]"#,
            packet(
                BinaryAck,
                "/",
                Some(15),
                ack(&[r#""bar""#, r#"{"_placeholder":true,"num":0}"#]),
            ),
            1,
        );
        check("1", packet(Disconnect, "/", None, PacketData::None), 0);
        check(
            "1/admin,",
            packet(Disconnect, "/admin", None, PacketData::None),
            0,
        );
        // Sample session.
        check(
            r#"0{"sid":"wZX3oN0bSVIhsaknAAAI"}"#,
            packet(
                Connect,
                "/",
                None,
                PacketData::Json(raw(r#"{"sid":"wZX3oN0bSVIhsaknAAAI"}"#)),
            ),
            0,
        );
        check(
            r#"2["hey","Jude"]"#,
            packet(Event, "/", None, event("hey", &[r#""Jude""#])),
            0,
        );
        check(
            r#"2/admin,1["tellme"]"#,
            packet(Event, "/admin", Some(1), event("tellme", &[])),
            0,
        );
        check(
            r#"61-/admin,1[{"_placeholder":true,"num":0}]"#,
            packet(
                BinaryAck,
                "/admin",
                Some(1),
                ack(&[r#"{"_placeholder":true,"num":0}"#]),
            ),
            1,
        );
    }

    // The frames of the conformance suite (SUITES.md section 3), without the Engine.IO `4`.
    #[test]
    fn suite_frames() {
        use PacketType::*;
        check(
            r#"2["message-back",1,"2",{"3":[true]}]"#,
            packet(
                Event,
                "/",
                None,
                event("message-back", &["1", r#""2""#, r#"{"3":[true]}"#]),
            ),
            0,
        );
        check(
            r#"52-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
            packet(
                BinaryEvent,
                "/",
                None,
                event(
                    "message-back",
                    &[
                        r#"{"_placeholder":true,"num":0}"#,
                        r#"{"_placeholder":true,"num":1}"#,
                    ],
                ),
            ),
            2,
        );
        check(
            r#"3456[1,"2",{"3":[false]}]"#,
            packet(
                Ack,
                "/",
                Some(456),
                ack(&["1", r#""2""#, r#"{"3":[false]}"#]),
            ),
            0,
        );
        check(
            r#"62-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
            packet(
                BinaryAck,
                "/",
                Some(789),
                ack(&[
                    r#"{"_placeholder":true,"num":0}"#,
                    r#"{"_placeholder":true,"num":1}"#,
                ]),
            ),
            2,
        );
        check(
            r#"4/random,{"message":"Invalid namespace"}"#,
            packet(
                ConnectError,
                "/random",
                None,
                PacketData::Json(raw(r#"{"message":"Invalid namespace"}"#)),
            ),
            0,
        );
        check(
            r#"2["auth",{}]"#,
            packet(Event, "/", None, event("auth", &["{}"])),
            0,
        );
        check(
            r#"2/custom,["auth",{"token":"abc"}]"#,
            packet(
                Event,
                "/custom",
                None,
                event("auth", &[r#"{"token":"abc"}"#]),
            ),
            0,
        );
        // The client omits the trailing comma; the server always writes it.
        let (p, _) = decode("0/custom").unwrap();
        assert_eq!(p, packet(Connect, "/custom", None, PacketData::None));
        assert_eq!(encode(&p), "0/custom,");
        let (p, _) = decode("1/custom").unwrap();
        assert_eq!(p, packet(Disconnect, "/custom", None, PacketData::None));
        assert_eq!(encode(&p), "1/custom,");
        let (p, _) = decode("0/random").unwrap();
        assert_eq!(p.namespace, "/random");
        // What the suite sends to get the connection closed.
        assert_eq!(kind_of("abc"), DecodeErrorKind::UnknownPacketType);
        assert_eq!(kind_of("2{}"), DecodeErrorKind::InvalidData);
        assert_eq!(
            kind_of(r#"2abc["message"]"#),
            DecodeErrorKind::InvalidNumber
        );
    }

    #[test]
    fn other_valid_forms() {
        use PacketType::*;
        // CONNECT_ERROR with a plain string, as old servers send.
        check(
            r#"4"Not authorized""#,
            packet(
                ConnectError,
                "/",
                None,
                PacketData::Json(raw(r#""Not authorized""#)),
            ),
            0,
        );
        // A binary packet may declare zero attachments.
        check(
            r#"50-["x"]"#,
            packet(BinaryEvent, "/", None, event("x", &[])),
            0,
        );
        // Whitespace inside and after the JSON is JSON.
        let (p, _) = decode("2[ \"a\" , 1 ,\n{ \"b\" : 2 } ] \n").unwrap();
        assert_eq!(p.data, event("a", &["1", r#"{ "b" : 2 }"#]));
        // An explicit "/" namespace, leading zeros: accepted, normalised on encoding.
        let (p, _) = decode(r#"2/,007["a"]"#).unwrap();
        assert_eq!(p, packet(Event, "/", Some(7), event("a", &[])));
        assert_eq!(encode(&p), r#"27["a"]"#);
        let (_, n) = decode(r#"5010-["a"]"#).unwrap();
        assert_eq!(n, 10);
        // The largest id.
        let (p, _) = decode(r#"218446744073709551615["a"]"#).unwrap();
        assert_eq!(p.id, Some(u64::MAX));
        // Namespaces with odd characters.
        check(
            r#"2/ä ö/x?y=1,["a"]"#,
            packet(Event, "/ä ö/x?y=1", None, event("a", &[])),
            0,
        );
    }

    #[test]
    fn unicode() {
        use PacketType::*;
        check(
            "2[\"😀\",\"\u{2028}\u{2029}\",\"é\"]",
            packet(
                Event,
                "/",
                None,
                event("😀", &["\"\u{2028}\u{2029}\"", "\"é\""]),
            ),
            0,
        );
        check(
            "2[\"a\u{2028}b\"]",
            packet(Event, "/", None, event("a\u{2028}b", &[])),
            0,
        );
        check(
            r#"2["say \"hi\"\\ \n\t\u0001"]"#,
            packet(Event, "/", None, event("say \"hi\"\\ \n\t\u{1}", &[])),
            0,
        );
        check(
            "2/😀,[\"x\"]",
            packet(Event, "/😀", None, event("x", &[])),
            0,
        );
        // Escapes that JSON.stringify would not write are unescaped, then written plainly.
        let (p, _) = decode(r#"2["\u00e9\ud83d\ude00\/"]"#).unwrap();
        assert_eq!(p.data, event("é😀/", &[]));
        assert_eq!(encode(&p), "2[\"é😀/\"]");
        // A lone surrogate cannot be a Rust string.
        assert_eq!(kind_of(r#"2["\ud800"]"#), DecodeErrorKind::InvalidData);
        // ... but is kept as is in raw arguments.
        let (p, _) = decode(r#"2["a","\ud800"]"#).unwrap();
        assert_eq!(p.data, event("a", &[r#""\ud800""#]));
        // Invalid UTF-8.
        let e = Packet::decode(Bytes::from_static(b"2[\"\xff\"]"), &DecodeLimits::default())
            .unwrap_err();
        assert_eq!((e.kind(), e.offset()), (DecodeErrorKind::InvalidUtf8, 3));
    }

    #[test]
    fn bad_input() {
        use DecodeErrorKind::*;
        let cases: &[(&str, DecodeErrorKind)] = &[
            ("", Empty),
            // Unknown type.
            ("7", UnknownPacketType),
            ("9[\"a\"]", UnknownPacketType),
            ("a", UnknownPacketType),
            ("/admin,0", UnknownPacketType),
            // Bad JSON.
            ("2[", InvalidData),
            ("2[\"a\",]", InvalidData),
            ("2[\"a\" 1]", InvalidData),
            ("2[\"a\",tru]", InvalidData),
            ("2[\"a\",\"\t\"]", InvalidData),
            ("0{", InvalidData),
            ("0{'a':1}", InvalidData),
            ("2['a']", InvalidData),
            // Wrong shape.
            ("2", InvalidData),
            ("2/admin,", InvalidData),
            ("2/admin", InvalidData),
            ("212", InvalidData),
            ("2{}", InvalidData),
            ("2[]", InvalidData),
            ("2[1]", InvalidData),
            ("2[null,\"a\"]", InvalidData),
            ("2[[\"a\"]]", InvalidData),
            ("2\"a\"", InvalidData),
            ("2 [\"a\"]", InvalidData),
            ("3", InvalidNumber),
            ("312", InvalidData),
            ("312{}", InvalidData),
            ("312\"a\"", InvalidData),
            ("0[]", InvalidData),
            ("0\"a\"", InvalidData),
            ("0 {}", InvalidData),
            ("0null", InvalidData),
            ("1{}", InvalidData),
            ("1/admin,{}", InvalidData),
            ("1[]", InvalidData),
            ("4", InvalidData),
            ("4/admin,", InvalidData),
            ("4[]", InvalidData),
            ("41", InvalidNumber),
            ("4null", InvalidData),
            ("5-[\"a\"]", InvalidNumber),
            ("51[\"a\"]", InvalidNumber),
            ("5", InvalidNumber),
            ("51", InvalidNumber),
            ("51-", InvalidData),
            ("51-{}", InvalidData),
            ("61-[]", InvalidNumber),
            ("61-1{}", InvalidData),
            // Bad ack id.
            ("2abc[\"a\"]", InvalidNumber),
            ("2-1[\"a\"]", InvalidData),
            ("218446744073709551616[\"a\"]", InvalidNumber),
            ("2/admin,99999999999999999999999[\"a\"]", InvalidNumber),
            ("3[]", InvalidNumber),
            ("3/admin,[]", InvalidNumber),
            ("3abc[]", InvalidNumber),
            ("012{}", InvalidNumber),
            ("112", InvalidNumber),
            ("1/admin,1", InvalidNumber),
            // Too many attachments.
            ("511-[\"a\"]", TooManyAttachments),
            ("6100-1[]", TooManyAttachments),
            (
                "599999999999999999999999999999999999999-[\"a\"]",
                TooManyAttachments,
            ),
            // Namespace without its leading slash.
            ("2admin,[\"a\"]", InvalidNamespace),
            ("0admin,", InvalidNamespace),
            ("1admin,", InvalidNamespace),
            ("51-admin,[\"a\"]", InvalidNamespace),
            // Trailing garbage.
            ("2[\"a\"]x", InvalidData),
            ("2[\"a\"][]", InvalidData),
            ("2[\"a\"],", InvalidData),
            ("0{}{}", InvalidData),
            ("0{} x", InvalidData),
            ("4\"a\"\"b\"", InvalidData),
            ("312[]1", InvalidData),
            ("1x", InvalidData),
            ("1 ", InvalidData),
        ];
        for &(text, kind) in cases {
            assert_eq!(kind_of(text), kind, "{text:?}");
        }
    }

    #[test]
    fn error_offsets() {
        let at = |s: &str| decode(s).unwrap_err().offset();
        assert_eq!(at("7"), 0);
        assert_eq!(at("5-[]"), 1);
        assert_eq!(at("2/admin,12x"), 10);
        assert_eq!(at("2/admin,[\"a\",x]"), 13);
    }

    #[test]
    fn limits_apply() {
        let limits = DecodeLimits { max_attachments: 2 };
        let dec = |s: &'static str| Packet::decode(Bytes::from_static(s.as_bytes()), &limits);
        assert_eq!(dec("52-[\"a\"]").unwrap().1, 2);
        assert_eq!(
            dec("53-[\"a\"]").unwrap_err().kind(),
            DecodeErrorKind::TooManyAttachments
        );
        assert_eq!(DecodeLimits::default().max_attachments, 10);
    }

    #[test]
    fn args_share_the_input() {
        let text = Bytes::from(String::from(r#"2["a",{"b":[1,2]},3]"#));
        let (p, _) = Packet::decode(text.clone(), &DecodeLimits::default()).unwrap();
        let PacketData::Event { args, .. } = p.data else {
            panic!()
        };
        let base = text.as_ptr() as usize;
        assert_eq!(args[0].as_ptr() as usize - base, 6);
        assert_eq!(args[1].as_ptr() as usize - base, 18);
    }

    #[test]
    fn header_forms() {
        let header = |kind, n, ns: &str, id| {
            let mut out = BytesMut::new();
            encode_header(&mut out, kind, n, ns, id);
            String::from_utf8(out.to_vec()).unwrap()
        };
        assert_eq!(header(PacketType::Event, 3, "/", None), "2");
        assert_eq!(header(PacketType::Event, 0, "", Some(1)), "21");
        assert_eq!(header(PacketType::BinaryEvent, 3, "/a", Some(1)), "53-/a,1");
        assert_eq!(header(PacketType::BinaryAck, 0, "/", Some(0)), "60-0");
        assert_eq!(header(PacketType::Connect, 0, "/a", None), "0/a,");
        for d in 0..=6u8 {
            let kind = PacketType::from_digit(b'0' + d).unwrap();
            assert_eq!(kind as u8, d);
            assert_eq!(kind.digit(), b'0' + d);
        }
        assert_eq!(PacketType::from_digit(b'7'), None);
        assert_eq!(PacketType::from_digit(0), None);
    }

    #[test]
    fn event_names_escape_like_json_stringify() {
        for name in [
            "",
            "a\"b",
            "\\",
            "\u{0}\u{1f}\u{7f}",
            "\u{8}\u{c}\n\r\t",
            "é😀\u{2028}",
        ] {
            let mut out = BytesMut::new();
            write_json_str(&mut out, name);
            assert_eq!(&out[..], serde_json::to_string(name).unwrap().as_bytes());
        }
    }

    /// Arbitrary JSON values, as compact text.
    pub(crate) fn json_value() -> impl Strategy<Value = serde_json::Value> {
        use serde_json::Value;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            any::<String>().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(any::<String>(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn json_args() -> impl Strategy<Value = Vec<Bytes>> {
        prop::collection::vec(
            json_value().prop_map(|v| Bytes::from(serde_json::to_vec(&v).unwrap())),
            0..5,
        )
    }

    fn namespace() -> impl Strategy<Value = String> {
        prop_oneof![Just("/".to_owned()), "/[^,]{0,12}", "/[a-z]{1,8}"]
    }

    fn json_object() -> impl Strategy<Value = Bytes> {
        prop::collection::btree_map(any::<String>(), json_value(), 0..4).prop_map(|m| {
            let v: serde_json::Map<String, serde_json::Value> = m.into_iter().collect();
            Bytes::from(serde_json::to_vec(&v).unwrap())
        })
    }

    /// Arbitrary valid packets, attachments included.
    pub(crate) fn valid_packet() -> impl Strategy<Value = Packet> {
        let attachments = prop::collection::vec(
            prop::collection::vec(any::<u8>(), 0..16).prop_map(Bytes::from),
            0..4,
        );
        (
            0..7u8,
            namespace(),
            any::<u64>(),
            any::<bool>(),
            any::<String>(),
            json_args(),
            json_object(),
            attachments,
        )
            .prop_map(|(k, namespace, id, has_id, name, args, object, att)| {
                let kind = PacketType::from_digit(b'0' + k).unwrap();
                let id = has_id.then_some(id);
                let (id, data, attachments) = match kind {
                    PacketType::Connect if has_id => (None, PacketData::None, vec![]),
                    PacketType::Connect => (None, PacketData::Json(object), vec![]),
                    PacketType::Disconnect => (None, PacketData::None, vec![]),
                    PacketType::ConnectError if has_id => (
                        None,
                        PacketData::Json(Bytes::from(serde_json::to_vec(&name).unwrap())),
                        vec![],
                    ),
                    PacketType::ConnectError => (None, PacketData::Json(object), vec![]),
                    PacketType::Event => (id, PacketData::Event { name, args }, vec![]),
                    PacketType::BinaryEvent => (id, PacketData::Event { name, args }, att),
                    PacketType::Ack => (Some(id.unwrap_or(0)), PacketData::Ack { args }, vec![]),
                    PacketType::BinaryAck => (Some(id.unwrap_or(7)), PacketData::Ack { args }, att),
                };
                Packet {
                    kind,
                    namespace,
                    id,
                    data,
                    attachments,
                }
            })
    }

    proptest! {
        #[test]
        fn encode_then_decode_is_identity(p in valid_packet()) {
            let mut out = BytesMut::new();
            p.encode(&mut out);
            let text = out.freeze();
            let (mut decoded, n) = Packet::decode(text.clone(), &DecodeLimits::default())
                .map_err(|e| TestCaseError::fail(format!("{e} in {:?}", String::from_utf8_lossy(&text))))?;
            prop_assert_eq!(n, p.attachments.len());
            decoded.attachments = p.attachments.clone();
            prop_assert_eq!(&decoded, &p);
            // Re-encoding gives the same text.
            let mut again = BytesMut::new();
            decoded.encode(&mut again);
            prop_assert_eq!(&again[..], &text[..]);
        }

        #[test]
        fn decode_never_panics(s in any::<String>()) {
            let _ = decode(&s);
        }

        #[test]
        fn decode_of_packet_like_text_reencodes_stably(
            digit in 0..7u8,
            body in r#"[0-9]{0,3}-?(/[a-z,]{0,4})?[0-9]{0,3}(\[("a"|1|\{\}|,|\]){0,6})?"#,
        ) {
            let text = format!("{digit}{body}");
            if let Ok((p, _)) = decode(&text) {
                let mut out = BytesMut::new();
                let mut full = p.clone();
                full.attachments = Vec::new();
                full.encode(&mut out);
                let (again, _) = Packet::decode(out.freeze(), &DecodeLimits::default()).unwrap();
                prop_assert_eq!(again, p);
            }
        }
    }
}
