//! The parser seam: how Socket.IO packets become frames and back, chosen once when a server or
//! client is built.
//!
//! [`Parser::Json`] is the official default parser (`socket.io-parser`): a text frame with a
//! JSON array, binary data replaced by placeholders and sent as attachment frames after it.
//! Every encoder and decoder both sides use goes through [`Parser`], and what they exchange
//! with user code is format-neutral: [`RawArgs`] keeps each argument in the format it arrived
//! in, tagged with its parser; [`Encoded`] is a list of frames, text or binary. Another format
//! (MessagePack: one binary frame per packet) is one more variant here, and one more method
//! in [`ArgsDyn`]; handlers and `Data<T>` do not change.
//!
//! [`Parser::MsgPack`] is `socket.io-msgpack-parser` (3.x): each packet is one msgpack map in
//! one binary frame, binary data inline as msgpack `bin`.

mod msgpack;
mod scratch;
mod writer;

pub use writer::{JsonWriter, MsgPackWriter};

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use serde::de::DeserializeOwned;
use serde_json::Value;
use volley_proto::socket::{
    DecodeLimits, EventArgs, Packet, PacketRef, PacketType, Reassembler, encode_header,
    from_slice_with_binary, write_json_str,
};
use volley_proto::{DecodeError, DecodeErrorKind};

use crate::args::{ArgsDyn, RawArgs};

/// The wire format of Socket.IO packets (the `parser` option of the official libraries).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Parser {
    /// `socket.io-parser`: JSON text packets, binary as placeholders plus attachment frames.
    #[default]
    Json,
    /// `socket.io-msgpack-parser`: each packet is one MessagePack map (`type`, `data`, `nsp`,
    /// `id`) in one binary frame; binary data is inline (msgpack `bin`), integers and floats
    /// stay apart. Both sides of a connection must use it.
    MsgPack,
}

/// Why arguments could not be encoded or decoded.
#[derive(Debug)]
pub struct CodecError(Repr);

#[derive(Debug)]
enum Repr {
    Json(serde_json::Error),
    Message(String),
}

impl CodecError {
    /// An error with a message.
    pub fn custom(message: impl fmt::Display) -> Self {
        Self(Repr::Message(message.to_string()))
    }
}

impl From<serde_json::Error> for CodecError {
    fn from(e: serde_json::Error) -> Self {
        Self(Repr::Json(e))
    }
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Json(e) => e.fmt(f),
            Repr::Message(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for CodecError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.0 {
            Repr::Json(e) => Some(e),
            Repr::Message(_) => None,
        }
    }
}

/// One frame of an [`Encoded`] packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncodedFrame {
    /// An Engine.IO message packet in text form: `4` then the Socket.IO packet text.
    Text(Bytes),
    /// A binary message (an attachment, or a whole packet in a binary format).
    Binary(Bytes),
}

/// An encoded Socket.IO packet: the frames to send, in order. Cheap to clone (a broadcast is
/// encoded once and every recipient shares the same buffers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// `4` + the packet text (empty for a binary-format packet).
    text: Bytes,
    attachments: Vec<Bytes>,
    /// The whole packet, for binary formats (MessagePack).
    binary: Option<BinaryPacket>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct BinaryPacket {
    frame: Bytes,
    kind: PacketType,
    has_id: bool,
}

impl Encoded {
    /// A MessagePack-format packet (one `socket.io-msgpack-parser` map), checked.
    pub fn from_msgpack(frame: Bytes) -> Result<Self, DecodeError> {
        let f = msgpack::fields(&frame)?;
        Ok(Self::msgpack(frame, f.kind, f.id.is_some()))
    }

    fn msgpack(frame: Bytes, kind: PacketType, has_id: bool) -> Self {
        Self {
            text: Bytes::new(),
            attachments: Vec::new(),
            binary: Some(BinaryPacket {
                frame,
                kind,
                has_id,
            }),
        }
    }

    /// The format the packet is encoded in.
    pub fn parser(&self) -> Parser {
        if self.binary.is_some() {
            Parser::MsgPack
        } else {
            Parser::Json
        }
    }

    /// The whole packet, for the MessagePack format.
    pub fn msgpack_frame(&self) -> Option<&Bytes> {
        self.binary.as_ref().map(|b| &b.frame)
    }

    /// A JSON-format packet from its Socket.IO text (`2["event",...]`) and attachments, as a
    /// cluster adapter receives it from another server.
    ///
    /// The text goes to clients in WebSocket text frames, which must be UTF-8: bytes that are
    /// not (only a faulty peer sends them) are replaced by U+FFFD, as `TextDecoder` would, so
    /// the packet still reaches its clients instead of making them drop the connection.
    pub fn from_text(text: &[u8], attachments: Vec<Bytes>) -> Self {
        let text = String::from_utf8_lossy(text);
        let text = text.as_bytes();
        let mut t = BytesMut::with_capacity(text.len() + 1);
        t.put_u8(b'4');
        t.put_slice(text);
        Self {
            text: t.freeze(),
            attachments,
            binary: None,
        }
    }

    /// The first frame (the whole packet when there are no attachments).
    pub fn first_frame(&self) -> EncodedFrame {
        match &self.binary {
            Some(b) => EncodedFrame::Binary(b.frame.clone()),
            None => EncodedFrame::Text(self.text.clone()),
        }
    }

    /// Every frame, in order.
    pub fn frames(&self) -> impl Iterator<Item = EncodedFrame> + '_ {
        std::iter::once(self.first_frame())
            .chain(self.attachments.iter().cloned().map(EncodedFrame::Binary))
    }

    /// The packet taken apart: its first frame and its attachments. Unlike
    /// [`frames`](Self::frames), no buffer is shared, so sending a packet to one socket costs
    /// no reference counting (a `Bytes` made from a `Vec` allocates a shared header and
    /// updates counts atomically from its first clone on).
    pub fn into_parts(self) -> (EncodedFrame, Vec<Bytes>) {
        let first = match self.binary {
            Some(b) => EncodedFrame::Binary(b.frame),
            None => EncodedFrame::Text(self.text),
        };
        (first, self.attachments)
    }

    /// How many frames there are.
    pub fn frame_count(&self) -> usize {
        1 + self.attachments.len()
    }

    /// The Socket.IO packet text (without the Engine.IO `4`), for text formats.
    pub fn text(&self) -> Option<Bytes> {
        match self.binary {
            Some(_) => None,
            None => Some(self.text.slice(1..)),
        }
    }

    /// The binary attachments that follow the text.
    pub fn attachments(&self) -> &[Bytes] {
        &self.attachments
    }

    /// The packet type.
    pub fn kind(&self) -> Option<PacketType> {
        match &self.binary {
            Some(b) => Some(b.kind),
            None => PacketType::from_digit(*self.text.get(1)?),
        }
    }

    /// Where the data array starts, for an EVENT or BINARY_EVENT without an ack id.
    fn event_data_start(&self) -> Option<usize> {
        let t = &self.text[..];
        let mut i = 2;
        match self.kind()? {
            PacketType::Event => {}
            PacketType::BinaryEvent => {
                while t.get(i)?.is_ascii_digit() {
                    i += 1;
                }
                (t.get(i)? == &b'-').then_some(())?;
                i += 1;
            }
            _ => return None,
        }
        if t.get(i) == Some(&b'/') {
            i += t[i..].iter().position(|&c| c == b',')? + 1;
        }
        // An ack id would be digits here.
        (t.get(i)? == &b'[').then_some(i)
    }

    /// Whether this is an EVENT (or BINARY_EVENT) packet that asks for no acknowledgement.
    pub fn is_event_without_ack(&self) -> bool {
        match &self.binary {
            Some(b) => b.kind == PacketType::Event && !b.has_id,
            None => self.event_data_start().is_some(),
        }
    }

    /// The same EVENT packet with one more string argument at the end (connection state
    /// recovery's offset); `None` for any other packet.
    pub fn with_last_string(&self, s: &str) -> Option<Encoded> {
        if let Some(b) = &self.binary {
            if !self.is_event_without_ack() {
                return None;
            }
            let frame = msgpack::append_string(&b.frame, s)?;
            return Some(Self::msgpack(frame, b.kind, b.has_id));
        }
        self.event_data_start()?;
        let t = &self.text[..];
        let end = t.iter().rposition(|&c| c == b']')?;
        let quoted = serde_json::to_string(s).ok()?;
        let mut out = BytesMut::with_capacity(t.len() + quoted.len() + 1);
        out.put_slice(&t[..end]);
        out.put_u8(b',');
        out.put_slice(quoted.as_bytes());
        out.put_slice(&t[end..]);
        Some(Self {
            text: out.freeze(),
            attachments: self.attachments.clone(),
            binary: None,
        })
    }
}

/// An event's data (`["event", args...]`) encoded once, to be put in packets with different
/// acknowledgement ids (a client's retries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventBody {
    /// The JSON array text, or the msgpack array.
    data: Bytes,
    attachments: Vec<Bytes>,
}

/// Takes packets apart as they arrive, frame by frame, in one [`Parser`]'s format.
#[derive(Debug)]
pub struct Decoder {
    parser: Parser,
    /// For the JSON format (attachments follow their packet).
    reassembler: Option<Reassembler>,
}

impl Decoder {
    /// The format it decodes.
    pub fn parser(&self) -> Parser {
        self.parser
    }

    /// A text frame (Engine.IO `4` removed); a packet when one is complete.
    pub fn text(&mut self, text: Bytes) -> Result<Option<Packet>, DecodeError> {
        Ok(self.text_ref(&text)?.map(PacketRef::into_owned))
    }

    /// [`text`](Self::text) for a receiver that only looks at the packet: it borrows its
    /// namespace and event name from `text`.
    #[inline]
    pub fn text_ref<'t>(&mut self, text: &'t Bytes) -> Result<Option<PacketRef<'t>>, DecodeError> {
        match &mut self.reassembler {
            Some(r) => r.push_text_ref(text),
            // Every MessagePack packet is a binary frame.
            None => Err(DecodeError::new(DecodeErrorKind::InvalidData, 0)),
        }
    }

    /// A binary frame; a packet when one is complete.
    pub fn binary(&mut self, data: Bytes) -> Result<Option<Packet>, DecodeError> {
        match &mut self.reassembler {
            Some(r) => r.push_binary(data),
            None => msgpack::decode_packet(&data).map(Some),
        }
    }

    /// Bytes held for a packet still waiting for frames.
    pub fn buffered_bytes(&self) -> usize {
        self.reassembler
            .as_ref()
            .map_or(0, Reassembler::buffered_bytes)
    }

    /// Arguments of a decoded packet, tagged with this decoder's format.
    pub fn raw_args(&self, args: impl Into<EventArgs>, attachments: Vec<Bytes>) -> RawArgs {
        RawArgs::from_event_args(self.parser, args.into(), attachments)
    }
}

fn packet(
    kind: PacketType,
    binary: PacketType,
    nsp: &str,
    id: Option<u64>,
    json: &[u8],
    attachments: Vec<Bytes>,
) -> Encoded {
    let kind = if attachments.is_empty() { kind } else { binary };
    let mut out = BytesMut::with_capacity(json.len() + nsp.len() + 24);
    out.put_u8(b'4');
    encode_header(&mut out, kind, attachments.len(), nsp, id);
    out.put_slice(json);
    Encoded {
        text: out.freeze(),
        attachments,
        binary: None,
    }
}

/// A JSON `EVENT` written in one buffer: `4`, the header, then the data array. A packet
/// whose arguments turn out to hold binary data gets its `BINARY_EVENT` header afterwards.
fn json_event(
    nsp: &str,
    event: &str,
    args: &dyn ArgsDyn,
    id: Option<u64>,
) -> Result<Encoded, CodecError> {
    let mut out = scratch::take();
    out.push(b'4');
    encode_header(&mut out, PacketType::Event, 0, nsp, id);
    let body = out.len();
    out.push(b'[');
    write_json_str(&mut out, event);
    let mut attachments = Vec::new();
    if !args.is_empty_dyn() {
        args.write_json(&mut JsonWriter::new(&mut out, &mut attachments, false))?;
    }
    out.push(b']');
    if !attachments.is_empty() {
        return Ok(packet(
            PacketType::Event,
            PacketType::BinaryEvent,
            nsp,
            id,
            &out[body..],
            attachments,
        ));
    }
    let text = scratch::freeze(out);
    Ok(Encoded {
        text,
        attachments,
        binary: None,
    })
}

fn msgpack_packet(kind: PacketType, nsp: &str, id: Option<u64>, data: Option<&[u8]>) -> Encoded {
    let frame = msgpack::packet(kind as u8, data, nsp, id);
    Encoded::msgpack(frame, kind, id.is_some())
}

/// `[args...]` (with `head` first when given) as a msgpack array.
fn msgpack_array(head: Option<&str>, args: &dyn ArgsDyn) -> Result<Vec<u8>, CodecError> {
    let mut body = Vec::with_capacity(64);
    let mut w = MsgPackWriter::new(&mut body);
    args.write_msgpack(&mut w)?;
    let n = w.count + usize::from(head.is_some());
    let mut out = Vec::with_capacity(body.len() + 8 + head.map_or(0, str::len));
    msgpack::write_array_len(&mut out, n);
    if let Some(h) = head {
        msgpack::write_str(&mut out, h);
    }
    out.extend_from_slice(&body);
    Ok(out)
}

/// A JSON value as msgpack (it cannot fail: every JSON value has a msgpack form).
fn msgpack_json(v: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(32);
    let _ = msgpack::write_value(&mut out, v);
    out
}

impl Parser {
    /// A decoder of incoming packets.
    pub fn decoder(self, limits: DecodeLimits) -> Decoder {
        Decoder {
            parser: self,
            reassembler: match self {
                Self::Json => Some(Reassembler::new(limits)),
                Self::MsgPack => None,
            },
        }
    }

    /// Encodes an event's data once: `["event", args...]`.
    pub fn event_body(self, event: &str, args: &dyn ArgsDyn) -> Result<EventBody, CodecError> {
        if self == Self::MsgPack {
            return Ok(EventBody {
                data: Bytes::from(msgpack_array(Some(event), args)?),
                attachments: Vec::new(),
            });
        }
        let mut json = Vec::with_capacity(64);
        let mut attachments = Vec::new();
        json.push(b'[');
        serde_json::to_writer(&mut json, event)?;
        if !args.is_empty_dyn() {
            args.write_json(&mut JsonWriter::new(&mut json, &mut attachments, false))?;
        }
        json.push(b']');
        Ok(EventBody {
            data: Bytes::from(json),
            attachments,
        })
    }

    /// `EVENT` (or `BINARY_EVENT`) from an encoded body.
    pub fn event_packet(self, nsp: &str, body: &EventBody, id: Option<u64>) -> Encoded {
        if self == Self::MsgPack {
            return msgpack_packet(PacketType::Event, nsp, id, Some(&body.data));
        }
        packet(
            PacketType::Event,
            PacketType::BinaryEvent,
            nsp,
            id,
            &body.data,
            body.attachments.clone(),
        )
    }

    /// `EVENT` (or `BINARY_EVENT`).
    pub fn event(
        self,
        nsp: &str,
        event: &str,
        args: &dyn ArgsDyn,
        id: Option<u64>,
    ) -> Result<Encoded, CodecError> {
        if self == Self::Json {
            return json_event(nsp, event, args, id);
        }
        let body = self.event_body(event, args)?;
        Ok(self.event_packet(nsp, &body, id))
    }

    /// `ACK` (or `BINARY_ACK`): `[args...]`.
    pub fn ack(self, nsp: &str, id: u64, args: &dyn ArgsDyn) -> Result<Encoded, CodecError> {
        if self == Self::MsgPack {
            let data = msgpack_array(None, args)?;
            return Ok(msgpack_packet(PacketType::Ack, nsp, Some(id), Some(&data)));
        }
        let mut out = scratch::take();
        out.push(b'4');
        encode_header(&mut out, PacketType::Ack, 0, nsp, Some(id));
        let body = out.len();
        out.push(b'[');
        let mut attachments = Vec::new();
        args.write_json(&mut JsonWriter::new(&mut out, &mut attachments, true))?;
        out.push(b']');
        if !attachments.is_empty() {
            return Ok(packet(
                PacketType::Ack,
                PacketType::BinaryAck,
                nsp,
                Some(id),
                &out[body..],
                attachments,
            ));
        }
        let text = scratch::freeze(out);
        Ok(Encoded {
            text,
            attachments,
            binary: None,
        })
    }

    /// `CONNECT`, with its payload if any (the client's `auth`, the server's `{"sid":...}`).
    pub fn connect(self, nsp: &str, data: Option<&Value>) -> Encoded {
        if self == Self::MsgPack {
            let data = data.map(msgpack_json);
            return msgpack_packet(PacketType::Connect, nsp, None, data.as_deref());
        }
        let json = data.map(Value::to_string).unwrap_or_default();
        packet(
            PacketType::Connect,
            PacketType::Connect,
            nsp,
            None,
            json.as_bytes(),
            Vec::new(),
        )
    }

    /// `CONNECT_ERROR` with its payload (`{"message":...,"data":...}`).
    pub fn connect_error(self, nsp: &str, payload: &Value) -> Encoded {
        if self == Self::MsgPack {
            let data = msgpack_json(payload);
            return msgpack_packet(PacketType::ConnectError, nsp, None, Some(&data));
        }
        packet(
            PacketType::ConnectError,
            PacketType::ConnectError,
            nsp,
            None,
            payload.to_string().as_bytes(),
            Vec::new(),
        )
    }

    /// `DISCONNECT`.
    pub fn disconnect(self, nsp: &str) -> Encoded {
        if self == Self::MsgPack {
            return msgpack_packet(PacketType::Disconnect, nsp, None, None);
        }
        packet(
            PacketType::Disconnect,
            PacketType::Disconnect,
            nsp,
            None,
            b"",
            Vec::new(),
        )
    }

    /// Arguments serialized now, as if received.
    pub(crate) fn to_raw_args(self, args: &dyn ArgsDyn) -> Result<RawArgs, CodecError> {
        if self == Self::MsgPack {
            let mut out = Vec::with_capacity(64);
            let mut w = MsgPackWriter::new(&mut out);
            w.bounds = Some(Vec::new());
            args.write_msgpack(&mut w)?;
            let bounds = w.bounds.take().unwrap_or_default();
            let out = Bytes::from(out);
            let args: EventArgs = bounds.into_iter().map(|(s, e)| out.slice(s..e)).collect();
            return Ok(RawArgs::from_event_args(self, args, Vec::new()));
        }
        let mut json = Vec::with_capacity(64);
        let mut attachments = Vec::new();
        let mut w = JsonWriter::new(&mut json, &mut attachments, true);
        w.bounds = Some(Vec::new());
        args.write_json(&mut w)?;
        let bounds = w.bounds.take().unwrap_or_default();
        let json = Bytes::from(json);
        let args: EventArgs = bounds.into_iter().map(|(s, e)| json.slice(s..e)).collect();
        Ok(RawArgs::from_event_args(self, args, attachments))
    }

    /// Decodes one argument.
    pub(crate) fn decode_arg<T: DeserializeOwned>(
        self,
        arg: &[u8],
        attachments: &[Bytes],
    ) -> Result<T, CodecError> {
        match self {
            Self::Json => Ok(from_slice_with_binary(arg, attachments)?),
            Self::MsgPack => msgpack::decode(arg),
        }
    }

    /// Decodes all the arguments following `Data`'s rule: none is `null`, one is itself,
    /// several are an array.
    pub(crate) fn decode_args<T: DeserializeOwned>(
        self,
        args: &[Bytes],
        attachments: &[Bytes],
    ) -> Result<T, CodecError> {
        match args {
            [] if self == Self::MsgPack => self.decode_arg(&[0xc0], attachments),
            [] => self.decode_arg(b"null", attachments),
            [one] => self.decode_arg(one, attachments),
            _ if self == Self::MsgPack => {
                let len = args.iter().map(Bytes::len).sum::<usize>() + 5;
                let mut all = Vec::with_capacity(len);
                msgpack::write_array_len(&mut all, args.len());
                args.iter().for_each(|a| all.extend_from_slice(a));
                self.decode_arg(&all, attachments)
            }
            _ => {
                let len = args.iter().map(|a| a.len() + 1).sum::<usize>() + 1;
                let mut json = Vec::with_capacity(len);
                json.push(b'[');
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        json.push(b',');
                    }
                    json.extend_from_slice(a);
                }
                json.push(b']');
                self.decode_arg(&json, attachments)
            }
        }
    }
}

#[cfg(test)]
mod tests;
