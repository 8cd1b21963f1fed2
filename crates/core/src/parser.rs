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

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use volley_proto::socket::{
    DecodeLimits, Packet, PacketType, Reassembler, encode_header, from_slice_with_binary,
    to_writer_with_binary,
};
use volley_proto::{DecodeError, DecodeErrorKind};

use crate::args::{ArgsDyn, ArgsWriter, RawArgs};

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

/// Writes arguments as comma-separated JSON values, collecting binary attachments.
#[derive(Debug)]
pub struct JsonWriter<'a> {
    out: &'a mut Vec<u8>,
    attachments: &'a mut Vec<Bytes>,
    first: bool,
    /// Where each argument starts and ends in `out`, when asked.
    bounds: Option<Vec<(usize, usize)>>,
}

impl<'a> JsonWriter<'a> {
    fn new(out: &'a mut Vec<u8>, attachments: &'a mut Vec<Bytes>, first: bool) -> Self {
        Self {
            out,
            attachments,
            first,
            bounds: None,
        }
    }

    fn separate(&mut self) -> usize {
        if !std::mem::take(&mut self.first) {
            self.out.push(b',');
        }
        self.out.len()
    }

    fn record(&mut self, start: usize) {
        let end = self.out.len();
        if let Some(b) = &mut self.bounds {
            b.push((start, end));
        }
    }
}

impl ArgsWriter for JsonWriter<'_> {
    fn arg<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), CodecError> {
        let start = self.separate();
        to_writer_with_binary(self.out, value, self.attachments)?;
        self.record(start);
        Ok(())
    }

    fn raw(&mut self, args: &RawArgs) -> Result<(), CodecError> {
        if args.parser() == Parser::MsgPack {
            // Another format: carried over value by value, binary becoming attachments.
            for a in args.args() {
                let v: msgpack::Tree = msgpack::decode(a)?;
                self.arg(&v)?;
            }
            return Ok(());
        }
        if !self.attachments.is_empty() && !args.attachments().is_empty() {
            // Placeholders number attachments from 0 within one packet; raw arguments can
            // only be forwarded as the packet's only binary data.
            return Err(CodecError::custom(
                "raw arguments with binary cannot be mixed with other binary arguments",
            ));
        }
        for a in args.args() {
            let start = self.separate();
            self.out.extend_from_slice(a);
            self.record(start);
        }
        self.attachments.extend(args.attachments().iter().cloned());
        Ok(())
    }
}

/// Writes arguments as MessagePack values, one after the other (the array header is written
/// by the packet, once their number is known).
#[derive(Debug)]
pub struct MsgPackWriter<'a> {
    out: &'a mut Vec<u8>,
    count: usize,
    /// Where each argument starts and ends in `out`, when asked.
    bounds: Option<Vec<(usize, usize)>>,
}

impl<'a> MsgPackWriter<'a> {
    fn new(out: &'a mut Vec<u8>) -> Self {
        Self {
            out,
            count: 0,
            bounds: None,
        }
    }

    fn record(&mut self, start: usize) {
        self.count += 1;
        let end = self.out.len();
        if let Some(b) = &mut self.bounds {
            b.push((start, end));
        }
    }
}

impl ArgsWriter for MsgPackWriter<'_> {
    fn arg<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), CodecError> {
        let start = self.out.len();
        msgpack::write_value(self.out, value)?;
        self.record(start);
        Ok(())
    }

    fn raw(&mut self, args: &RawArgs) -> Result<(), CodecError> {
        for a in args.args() {
            let start = self.out.len();
            match args.parser() {
                Parser::MsgPack => self.out.extend_from_slice(a),
                Parser::Json => {
                    let v: msgpack::Tree = from_slice_with_binary(a, args.attachments())?;
                    msgpack::write_value(self.out, &v)?;
                }
            }
            self.record(start);
        }
        Ok(())
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
    pub fn from_text(text: &[u8], attachments: Vec<Bytes>) -> Self {
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
        match &mut self.reassembler {
            Some(r) => r.push_text(text),
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
    pub fn raw_args(&self, args: Vec<Bytes>, attachments: Vec<Bytes>) -> RawArgs {
        RawArgs::with_parser(self.parser, args, attachments)
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
        let body = self.event_body(event, args)?;
        Ok(self.event_packet(nsp, &body, id))
    }

    /// `ACK` (or `BINARY_ACK`): `[args...]`.
    pub fn ack(self, nsp: &str, id: u64, args: &dyn ArgsDyn) -> Result<Encoded, CodecError> {
        if self == Self::MsgPack {
            let data = msgpack_array(None, args)?;
            return Ok(msgpack_packet(PacketType::Ack, nsp, Some(id), Some(&data)));
        }
        let mut json = Vec::with_capacity(64);
        let mut attachments = Vec::new();
        json.push(b'[');
        args.write_json(&mut JsonWriter::new(&mut json, &mut attachments, true))?;
        json.push(b']');
        Ok(packet(
            PacketType::Ack,
            PacketType::BinaryAck,
            nsp,
            Some(id),
            &json,
            attachments,
        ))
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
            let args = bounds.into_iter().map(|(s, e)| out.slice(s..e)).collect();
            return Ok(RawArgs::with_parser(self, args, Vec::new()));
        }
        let mut json = Vec::with_capacity(64);
        let mut attachments = Vec::new();
        let mut w = JsonWriter::new(&mut json, &mut attachments, true);
        w.bounds = Some(Vec::new());
        args.write_json(&mut w)?;
        let bounds = w.bounds.take().unwrap_or_default();
        let json = Bytes::from(json);
        let args = bounds.into_iter().map(|(s, e)| json.slice(s..e)).collect();
        Ok(RawArgs::with_parser(self, args, attachments))
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
mod tests {
    use super::*;
    use crate::args::One;

    fn text(e: &Encoded) -> String {
        String::from_utf8(e.text().unwrap().to_vec()).unwrap()
    }

    const P: Parser = Parser::Json;

    #[test]
    fn events() {
        let e = P.event("/", "hello", &One(&"world"), None).unwrap();
        assert_eq!(text(&e), r#"2["hello","world"]"#);
        assert_eq!(
            e.first_frame(),
            EncodedFrame::Text(Bytes::from_static(br#"42["hello","world"]"#))
        );
        let e = P
            .event(
                "/chat",
                "m",
                &(1, "2", serde_json::json!({"3":[true]})),
                Some(12),
            )
            .unwrap();
        assert_eq!(text(&e), r#"2/chat,12["m",1,"2",{"3":[true]}]"#);
        let e = P.event("/", "empty", &(), None).unwrap();
        assert_eq!(text(&e), r#"2["empty"]"#);
        let e = P
            .event(
                "/",
                "v",
                &vec![serde_json::json!(1.5), serde_json::json!("x")],
                None,
            )
            .unwrap();
        assert_eq!(text(&e), r#"2["v",1.5,"x"]"#);
    }

    #[test]
    fn binary_event() {
        let e = P
            .event(
                "/",
                "b",
                &(Bytes::from_static(&[1, 2]), Bytes::from_static(&[3])),
                None,
            )
            .unwrap();
        assert_eq!(
            text(&e),
            r#"52-["b",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#
        );
        assert_eq!(e.frame_count(), 3);
        assert_eq!(e.kind(), Some(PacketType::BinaryEvent));
        let body = P.event_body("b", &(Bytes::from_static(&[1]),)).unwrap();
        let e = P.event_packet("/", &body, Some(0));
        assert_eq!(text(&e), r#"51-0["b",{"_placeholder":true,"num":0}]"#);
        assert_eq!(e.attachments(), [Bytes::from_static(&[1])]);
    }

    #[test]
    fn acks_and_control() {
        let a = P.ack("/custom", 456, &(1, "2")).unwrap();
        assert_eq!(text(&a), r#"3/custom,456[1,"2"]"#);
        assert_eq!(a.kind(), Some(PacketType::Ack));
        let sid = serde_json::json!({ "sid": "abc" });
        assert_eq!(text(&P.connect("/", Some(&sid))), r#"0{"sid":"abc"}"#);
        assert_eq!(text(&P.connect("/", None)), "0");
        assert_eq!(
            text(&P.connect("/admin", Some(&serde_json::json!({"token": "t"})))),
            r#"0/admin,{"token":"t"}"#
        );
        assert_eq!(text(&P.disconnect("/x")), "1/x,");
        let err = serde_json::json!({"message": "Invalid namespace"});
        assert_eq!(
            text(&P.connect_error("/random", &err)),
            r#"4/random,{"message":"Invalid namespace"}"#
        );
    }

    #[test]
    fn raw_args_forwarding() {
        let raw = RawArgs::new(
            vec![
                Bytes::from_static(b"1"),
                Bytes::from_static(br#"{"_placeholder":true,"num":0}"#),
            ],
            vec![Bytes::from_static(&[7])],
        );
        let e = P.event("/", "fwd", &raw, None).unwrap();
        assert_eq!(text(&e), r#"51-["fwd",1,{"_placeholder":true,"num":0}]"#);
        // Raw binary cannot join other binary arguments: placeholders would collide.
        struct Mixed(RawArgs);
        impl crate::Args for Mixed {
            fn write_to<W: ArgsWriter>(&self, w: &mut W) -> Result<(), CodecError> {
                w.arg(&Bytes::from_static(&[1]))?;
                w.raw(&self.0)
            }
            fn is_empty(&self) -> bool {
                false
            }
        }
        assert!(P.event("/", "x", &Mixed(raw), None).is_err());
    }

    #[test]
    fn decoder_tags_arguments() {
        let mut d = P.decoder(DecodeLimits::default());
        let p = d.text(Bytes::from_static(br#"2["a",1]"#)).unwrap().unwrap();
        let volley_proto::socket::PacketData::Event { name, args } = p.data else {
            panic!("event expected")
        };
        assert_eq!(name, "a");
        let raw = d.raw_args(args, p.attachments);
        assert_eq!(raw.parser(), Parser::Json);
        assert_eq!(raw.parse::<u8>().unwrap(), 1);
    }

    /// Bytes `socket.io-msgpack-parser` 3.0.2 encodes for the same packets
    /// (`e2e/interop/scripts/msgpack-golden.mjs`).
    mod golden {
        pub(super) const EVENT: &str =
            "83a47479706502a46461746192a568656c6c6fa5776f726c64a36e7370a12f";
        pub(super) const NUMBERS: &str = "84a47479706502a46461746198a16e01cb3ff8000000000000fdcd012cce00011170cf0000010000000000c0a36e7370a72f637573746f6da269640c";
        pub(super) const UNICODE: &str =
            "83a47479706502a46461746192a175af68c3a96c6c6f20e29c9320f09f8e89a36e7370a12f";
        pub(super) const BINARY: &str =
            "83a47479706502a46461746193a162c40301020381a17891c40104a36e7370a12f";
        pub(super) const ACK: &str =
            "84a47479706503a4646174619201a132a36e7370a72f637573746f6da26964cd01c8";
        pub(super) const CONNECT: &str = "83a47479706500a46461746181a3736964a3616263a36e7370a12f";
        pub(super) const CONNECT_UNDEFINED: &str =
            "83a47479706500a464617461d40000a36e7370a62f61646d696e";
        pub(super) const CONNECT_ERROR: &str = "83a47479706504a46461746181a76d657373616765b1496e76616c6964206e616d657370616365a36e7370a72f72616e646f6d";
        pub(super) const DISCONNECT: &str = "82a47479706501a36e7370a22f78";
    }

    fn hex(e: &Encoded) -> String {
        let EncodedFrame::Binary(b) = e.first_frame() else {
            panic!("binary frame expected")
        };
        assert_eq!(e.frame_count(), 1);
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    fn unhex(s: &str) -> Bytes {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect::<Vec<_>>()
            .into()
    }

    const M: Parser = Parser::MsgPack;

    #[derive(Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Nested {
        x: Vec<Bytes>,
    }

    #[test]
    fn msgpack_matches_the_npm_parser() {
        use serde_json::json;
        assert_eq!(
            hex(&M.event("/", "hello", &One(&"world"), None).unwrap()),
            golden::EVENT
        );
        let numbers = (1, 1.5, -3, 300, 70000, 1u64 << 40, None::<u8>);
        assert_eq!(
            hex(&M.event("/custom", "n", &numbers, Some(12)).unwrap()),
            golden::NUMBERS
        );
        assert_eq!(
            hex(&M.event("/", "u", &One(&"héllo ✓ 🎉"), None).unwrap()),
            golden::UNICODE
        );
        let nested = Nested {
            x: vec![Bytes::from_static(&[4])],
        };
        let bin = (Bytes::from_static(&[1, 2, 3]), &nested);
        assert_eq!(hex(&M.event("/", "b", &bin, None).unwrap()), golden::BINARY);
        assert_eq!(hex(&M.ack("/custom", 456, &(1, "2")).unwrap()), golden::ACK);
        assert_eq!(
            hex(&M.connect("/", Some(&json!({"sid": "abc"})))),
            golden::CONNECT
        );
        let err = json!({"message": "Invalid namespace"});
        assert_eq!(
            hex(&M.connect_error("/random", &err)),
            golden::CONNECT_ERROR
        );
        assert_eq!(hex(&M.disconnect("/x")), golden::DISCONNECT);
        // No payload: the key is left out (notepack.io 3 leaves `undefined` out too).
        assert_eq!(
            hex(&M.connect("/admin", None)),
            "82a47479706500a36e7370a62f61646d696e"
        );
        // An event body encoded once, put in packets with and without an id.
        let body = M.event_body("hello", &One(&"world")).unwrap();
        assert_eq!(hex(&M.event_packet("/", &body, None)), golden::EVENT);
    }

    fn decode(hex: &str) -> Packet {
        M.decoder(DecodeLimits::default())
            .binary(unhex(hex))
            .unwrap()
            .unwrap()
    }

    fn event_args(p: Packet) -> (String, RawArgs) {
        let volley_proto::socket::PacketData::Event { name, args } = p.data else {
            panic!("event expected")
        };
        (name, RawArgs::with_parser(M, args, p.attachments))
    }

    #[test]
    fn msgpack_decodes_the_npm_parser() {
        use volley_proto::socket::PacketData;
        let p = decode(golden::NUMBERS);
        assert_eq!(
            (p.kind, p.namespace.as_str(), p.id),
            (PacketType::Event, "/custom", Some(12))
        );
        let (name, raw) = event_args(p);
        assert_eq!(name, "n");
        assert_eq!(raw.parser(), Parser::MsgPack);
        let v: Vec<Value> = raw.parse().unwrap();
        assert_eq!(
            v,
            serde_json::json!([1, 1.5, -3, 300, 70000, 1u64 << 40, null])
                .as_array()
                .unwrap()
                .clone()
        );
        // 1 stays an integer, 1.5 a float.
        assert!(v[0].is_u64() && v[1].is_f64());
        let (a, b, c): (u8, f64, i32) = raw
            .parse::<(u8, f64, i32, u32, u32, u64, Option<u8>)>()
            .map(|t| (t.0, t.1, t.2))
            .unwrap();
        assert_eq!((a, b, c), (1, 1.5, -3));
        let (_, raw) = event_args(decode(golden::UNICODE));
        assert_eq!(raw.parse::<String>().unwrap(), "héllo ✓ 🎉");
        let (_, raw) = event_args(decode(golden::BINARY));
        let (b, n): (Bytes, Nested) = raw.parse().unwrap();
        assert_eq!(b, Bytes::from_static(&[1, 2, 3]));
        assert_eq!(
            n,
            Nested {
                x: vec![Bytes::from_static(&[4])]
            }
        );
        let p = decode(golden::ACK);
        assert_eq!((p.kind, p.id), (PacketType::Ack, Some(456)));
        let p = decode(golden::CONNECT);
        assert_eq!(
            p.data,
            PacketData::Json(Bytes::from_static(br#"{"sid":"abc"}"#))
        );
        let p = decode(golden::CONNECT_UNDEFINED);
        assert_eq!((p.namespace.as_str(), p.data), ("/admin", PacketData::None));
        let p = decode(golden::CONNECT_ERROR);
        assert_eq!(
            p.data,
            PacketData::Json(Bytes::from_static(br#"{"message":"Invalid namespace"}"#))
        );
        let p = decode(golden::DISCONNECT);
        assert_eq!(
            (p.kind, p.namespace.as_str()),
            (PacketType::Disconnect, "/x")
        );
        // The official client adds `options` and puts `nsp` last; unknown keys are skipped.
        let mut client = vec![0x84];
        for (k, v) in [
            ("type", &[0x02][..]),
            ("data", &[0x91, 0xa1, b'e'][..]),
            (
                "options",
                &[
                    0x81, 0xa8, b'c', b'o', b'm', b'p', b'r', b'e', b's', b's', 0xc3,
                ][..],
            ),
            ("nsp", &[0xa1, b'/'][..]),
        ] {
            msgpack::write_str(&mut client, k);
            client.extend_from_slice(v);
        }
        let mut d = M.decoder(DecodeLimits::default());
        let (name, raw) = event_args(d.binary(client.into()).unwrap().unwrap());
        assert_eq!((name.as_str(), raw.len()), ("e", 0));
    }

    #[test]
    fn msgpack_rejects_malformed_packets() {
        let mut d = M.decoder(DecodeLimits::default());
        for bad in [
            "",                                               // empty
            "c0",                                             // not a map
            "82a474797065a16e02a36e7370a12f", // a key that is not a string... (nsp kept)
            "82a47479706505a36e7370a12f",     // type 5 does not exist in this format
            "81a47479706502",                 // no namespace
            "83a47479706502a46461746190a36e7370a12f", // an event without a name
            "83a47479706502a46461746191a36e7370a12f", // truncated
            "83a47479706503a4646174619101a36e7370a12f", // an ack without id
            "82a47479706501a36e7370a12fc0",   // trailing bytes
            "83a47479706502a464617461dd7fffffffa36e7370a12f", // huge declared array
        ] {
            assert!(d.binary(unhex(bad)).is_err(), "{bad}");
        }
        assert!(d.text(Bytes::from_static(b"2[\"a\"]")).is_err());
        // Too deep.
        let mut deep = vec![0x83];
        msgpack::write_str(&mut deep, "type");
        deep.push(0x02);
        msgpack::write_str(&mut deep, "data");
        deep.extend([0x92, 0xa1, b'e']);
        deep.extend(std::iter::repeat_n(0x91, 200));
        deep.push(0xc0);
        msgpack::write_str(&mut deep, "nsp");
        msgpack::write_str(&mut deep, "/");
        assert!(d.binary(deep.into()).is_err());
    }

    #[test]
    fn msgpack_raw_args_and_recovery_offsets() {
        // Received msgpack arguments are forwarded as they are, or carried into JSON.
        let (_, raw) = event_args(decode(golden::BINARY));
        assert_eq!(hex(&M.event("/", "b", &raw, None).unwrap()), golden::BINARY);
        let e = P.event("/", "b", &raw, None).unwrap();
        assert_eq!(
            text(&e),
            r#"52-["b",{"_placeholder":true,"num":0},{"x":[{"_placeholder":true,"num":1}]}]"#
        );
        // And JSON arguments into msgpack.
        let json = RawArgs::from_args(P, &(1, 1.5, Bytes::from_static(&[9]))).unwrap();
        let e = M.event("/", "j", &json, None).unwrap();
        let (_, raw) = event_args(decode(&hex(&e)));
        let (a, b, c): (Value, Value, Bytes) = raw.parse().unwrap();
        assert!(a.is_u64() && b.is_f64());
        assert_eq!(c, Bytes::from_static(&[9]));
        let raw = RawArgs::from_args(M, &("x", 2)).unwrap();
        assert_eq!(raw.parser(), Parser::MsgPack);
        assert_eq!(raw.get::<u8>(1).unwrap().unwrap(), 2);
        assert_eq!(
            RawArgs::with_parser(M, vec![], vec![])
                .parse::<Option<u8>>()
                .unwrap(),
            None
        );
        // Connection state recovery appends the offset to the data array.
        let e = M.event("/", "hello", &One(&"world"), None).unwrap();
        assert!(e.is_event_without_ack());
        assert_eq!(e.kind(), Some(PacketType::Event));
        let with = e.with_last_string("off").unwrap();
        let (_, raw) = event_args(decode(&hex(&with)));
        assert_eq!(
            raw.parse::<(String, String)>().unwrap(),
            ("world".into(), "off".into())
        );
        assert!(
            M.event("/", "a", &(), Some(1))
                .unwrap()
                .with_last_string("o")
                .is_none()
        );
        assert_eq!(
            Encoded::from_msgpack(unhex(golden::ACK)).unwrap().kind(),
            Some(PacketType::Ack)
        );
        assert!(e.text().is_none());
        assert_eq!(e.parser(), Parser::MsgPack);
    }

    /// What `fuzz/fuzz_targets/msgpack_packet.rs` checks, on every truncation and many
    /// single-byte mutations of the golden packets: no panic, and what decodes re-encodes to
    /// the same packet.
    fn decode_reencode(data: &[u8]) {
        use volley_proto::socket::PacketData;
        let Ok(Some(packet)) = M
            .decoder(DecodeLimits::default())
            .binary(Bytes::copy_from_slice(data))
        else {
            return;
        };
        let again = match &packet.data {
            PacketData::Event { name, args } => {
                let raw = RawArgs::with_parser(M, args.clone(), Vec::new());
                let _ = raw.parse::<Vec<Value>>();
                let _ = P.event(&packet.namespace, name, &raw, packet.id);
                M.event(&packet.namespace, name, &raw, packet.id).unwrap()
            }
            PacketData::Ack { args } => {
                let raw = RawArgs::with_parser(M, args.clone(), Vec::new());
                M.ack(&packet.namespace, packet.id.unwrap(), &raw).unwrap()
            }
            PacketData::Json(json) => {
                let v: Value = serde_json::from_slice(json).unwrap();
                match packet.kind {
                    PacketType::Connect => M.connect(&packet.namespace, Some(&v)),
                    _ => M.connect_error(&packet.namespace, &v),
                }
            }
            PacketData::None => match packet.kind {
                PacketType::Connect => M.connect(&packet.namespace, None),
                _ => M.disconnect(&packet.namespace),
            },
        };
        let frame = again.msgpack_frame().unwrap().clone();
        let mut decoded = M
            .decoder(DecodeLimits::default())
            .binary(frame)
            .unwrap()
            .unwrap();
        let mut packet = packet;
        if !matches!(packet.kind, PacketType::Event | PacketType::Ack) {
            packet.id = None;
            decoded.id = None;
        }
        assert_eq!(decoded, packet, "{data:02x?}");
    }

    #[test]
    fn msgpack_mutations_never_panic() {
        for g in [
            golden::EVENT,
            golden::NUMBERS,
            golden::UNICODE,
            golden::BINARY,
            golden::ACK,
            golden::CONNECT,
            golden::CONNECT_UNDEFINED,
            golden::CONNECT_ERROR,
            golden::DISCONNECT,
        ] {
            let g = unhex(g);
            decode_reencode(&g);
            for n in 0..g.len() {
                decode_reencode(&g[..n]);
            }
            for i in 0..g.len() {
                for b in [
                    0x00,
                    0x01,
                    0x05,
                    0x7f,
                    0x80,
                    0x8f,
                    0x90,
                    0x9f,
                    0xa0,
                    0xbf,
                    0xc0,
                    0xc1,
                    0xc4,
                    0xc7,
                    0xca,
                    0xcb,
                    0xcf,
                    0xd3,
                    0xd4,
                    0xd8,
                    0xd9,
                    0xdb,
                    0xdc,
                    0xdd,
                    0xde,
                    0xdf,
                    0xe0,
                    0xff,
                    g[i] ^ 1,
                    g[i] ^ 0x80,
                ] {
                    let mut m = g.to_vec();
                    m[i] = b;
                    decode_reencode(&m);
                }
            }
        }
    }
}
