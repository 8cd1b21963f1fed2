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

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use volley_proto::DecodeError;
use volley_proto::socket::{
    DecodeLimits, Packet, PacketType, Reassembler, encode_header, from_slice_with_binary,
    to_writer_with_binary,
};

use crate::args::{ArgsDyn, ArgsWriter, RawArgs};

/// The wire format of Socket.IO packets (the `parser` option of the official libraries).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Parser {
    /// `socket.io-parser`: JSON text packets, binary as placeholders plus attachment frames.
    #[default]
    Json,
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
        match args.parser() {
            Parser::Json => {}
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
    /// `4` + the packet text.
    text: Bytes,
    attachments: Vec<Bytes>,
}

impl Encoded {
    /// A JSON-format packet from its Socket.IO text (`2["event",...]`) and attachments, as a
    /// cluster adapter receives it from another server.
    pub fn from_text(text: &[u8], attachments: Vec<Bytes>) -> Self {
        let mut t = BytesMut::with_capacity(text.len() + 1);
        t.put_u8(b'4');
        t.put_slice(text);
        Self {
            text: t.freeze(),
            attachments,
        }
    }

    /// The first frame (the whole packet when there are no attachments).
    pub fn first_frame(&self) -> EncodedFrame {
        EncodedFrame::Text(self.text.clone())
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
        Some(self.text.slice(1..))
    }

    /// The binary attachments that follow the text.
    pub fn attachments(&self) -> &[Bytes] {
        &self.attachments
    }

    /// The packet type.
    pub fn kind(&self) -> Option<PacketType> {
        PacketType::from_digit(*self.text.get(1)?)
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
        self.event_data_start().is_some()
    }

    /// The same EVENT packet with one more string argument at the end (connection state
    /// recovery's offset); `None` for any other packet.
    pub fn with_last_string(&self, s: &str) -> Option<Encoded> {
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
        })
    }
}

/// An event's data (`["event", args...]`) encoded once, to be put in packets with different
/// acknowledgement ids (a client's retries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventBody {
    json: Bytes,
    attachments: Vec<Bytes>,
}

/// Takes packets apart as they arrive, frame by frame, in one [`Parser`]'s format.
#[derive(Debug)]
pub struct Decoder {
    parser: Parser,
    reassembler: Reassembler,
}

impl Decoder {
    /// The format it decodes.
    pub fn parser(&self) -> Parser {
        self.parser
    }

    /// A text frame (Engine.IO `4` removed); a packet when one is complete.
    pub fn text(&mut self, text: Bytes) -> Result<Option<Packet>, DecodeError> {
        self.reassembler.push_text(text)
    }

    /// A binary frame; a packet when one is complete.
    pub fn binary(&mut self, data: Bytes) -> Result<Option<Packet>, DecodeError> {
        self.reassembler.push_binary(data)
    }

    /// Bytes held for a packet still waiting for frames.
    pub fn buffered_bytes(&self) -> usize {
        self.reassembler.buffered_bytes()
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
    }
}

impl Parser {
    /// A decoder of incoming packets.
    pub fn decoder(self, limits: DecodeLimits) -> Decoder {
        Decoder {
            parser: self,
            reassembler: Reassembler::new(limits),
        }
    }

    /// Encodes an event's data once: `["event", args...]`.
    pub fn event_body(self, event: &str, args: &dyn ArgsDyn) -> Result<EventBody, CodecError> {
        let mut json = Vec::with_capacity(64);
        let mut attachments = Vec::new();
        json.push(b'[');
        serde_json::to_writer(&mut json, event)?;
        if !args.is_empty_dyn() {
            args.write_json(&mut JsonWriter::new(&mut json, &mut attachments, false))?;
        }
        json.push(b']');
        Ok(EventBody {
            json: Bytes::from(json),
            attachments,
        })
    }

    /// `EVENT` (or `BINARY_EVENT`) from an encoded body.
    pub fn event_packet(self, nsp: &str, body: &EventBody, id: Option<u64>) -> Encoded {
        packet(
            PacketType::Event,
            PacketType::BinaryEvent,
            nsp,
            id,
            &body.json,
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
            [] => self.decode_arg(b"null", attachments),
            [one] => self.decode_arg(one, attachments),
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
}
