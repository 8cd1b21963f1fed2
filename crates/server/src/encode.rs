//! Turning emits into Engine.IO frames, once per packet: a broadcast shares the result.

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;
use volley_engine::Frame;
use volley_proto::socket::{PacketType, encode_header, to_writer_with_binary};

/// The arguments of an event or an acknowledgement.
///
/// Implemented for tuples of serializable values (each element is one argument, up to eight),
/// for `()` (no argument), for `Vec<serde_json::Value>` and for [`RawArgs`]. To send one
/// argument use `emit`; this trait is for the explicit several-arguments form (`emit_args`).
/// Byte buffers (`bytes::Bytes`, `serde_bytes`) anywhere inside become binary attachments.
pub trait Args {
    /// Writes the arguments as comma-separated JSON values, collecting binary attachments.
    fn write(
        &self,
        out: &mut Vec<u8>,
        attachments: &mut Vec<Bytes>,
    ) -> Result<(), serde_json::Error>;

    /// Whether there is no argument at all.
    fn is_empty(&self) -> bool;
}

/// One argument; what `emit(event, &data)` sends.
pub(crate) struct One<'a, T: ?Sized>(pub(crate) &'a T);

impl<T: Serialize + ?Sized> Args for One<'_, T> {
    fn write(&self, out: &mut Vec<u8>, att: &mut Vec<Bytes>) -> Result<(), serde_json::Error> {
        to_writer_with_binary(out, self.0, att)
    }

    fn is_empty(&self) -> bool {
        false
    }
}

impl Args for () {
    fn write(&self, _: &mut Vec<u8>, _: &mut Vec<Bytes>) -> Result<(), serde_json::Error> {
        Ok(())
    }

    fn is_empty(&self) -> bool {
        true
    }
}

macro_rules! tuple_args {
    ($($name:ident . $idx:tt),+) => {
        impl<$($name: Serialize),+> Args for ($($name,)+) {
            fn write(&self, out: &mut Vec<u8>, att: &mut Vec<Bytes>) -> Result<(), serde_json::Error> {
                let mut first = true;
                $(
                    if !std::mem::take(&mut first) {
                        out.push(b',');
                    }
                    to_writer_with_binary(out, &self.$idx, att)?;
                )+
                let _ = first;
                Ok(())
            }

            fn is_empty(&self) -> bool {
                false
            }
        }
    };
}

tuple_args!(A.0);
tuple_args!(A.0, B.1);
tuple_args!(A.0, B.1, C.2);
tuple_args!(A.0, B.1, C.2, D.3);
tuple_args!(A.0, B.1, C.2, D.3, E.4);
tuple_args!(A.0, B.1, C.2, D.3, E.4, F.5);
tuple_args!(A.0, B.1, C.2, D.3, E.4, F.5, G.6);
tuple_args!(A.0, B.1, C.2, D.3, E.4, F.5, G.6, H.7);

impl Args for Vec<serde_json::Value> {
    fn write(&self, out: &mut Vec<u8>, _: &mut Vec<Bytes>) -> Result<(), serde_json::Error> {
        for (i, v) in self.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            serde_json::to_writer(&mut *out, v)?;
        }
        Ok(())
    }

    fn is_empty(&self) -> bool {
        self.is_empty()
    }
}

/// Arguments exactly as a client sent them: raw JSON text per argument plus the binary
/// attachments their placeholders refer to. Re-emitting them forwards everything, binary
/// included, without parsing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawArgs {
    pub(crate) args: Vec<Bytes>,
    pub(crate) attachments: Vec<Bytes>,
}

impl RawArgs {
    /// Raw arguments from JSON texts and attachments.
    pub fn new(args: Vec<Bytes>, attachments: Vec<Bytes>) -> Self {
        Self { args, attachments }
    }

    /// Each argument as raw JSON text.
    pub fn args(&self) -> &[Bytes] {
        &self.args
    }

    /// The binary attachments.
    pub fn attachments(&self) -> &[Bytes] {
        &self.attachments
    }

    /// How many arguments there are.
    pub fn len(&self) -> usize {
        self.args.len()
    }

    /// Whether there is no argument.
    pub fn is_empty(&self) -> bool {
        self.args.is_empty()
    }

    /// Deserializes argument `i` (binary placeholders become bytes).
    pub fn get<T: serde::de::DeserializeOwned>(
        &self,
        i: usize,
    ) -> Option<Result<T, serde_json::Error>> {
        self.args
            .get(i)
            .map(|a| volley_proto::socket::from_slice_with_binary(a, &self.attachments))
    }
}

impl Args for RawArgs {
    fn write(&self, out: &mut Vec<u8>, att: &mut Vec<Bytes>) -> Result<(), serde_json::Error> {
        if !att.is_empty() && !self.attachments.is_empty() {
            // Placeholders number attachments from 0 within one packet; raw arguments can
            // only be forwarded as the packet's only binary data.
            return Err(serde::ser::Error::custom(
                "raw arguments with binary cannot be mixed with other binary arguments",
            ));
        }
        for (i, a) in self.args.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(a);
        }
        att.extend(self.attachments.iter().cloned());
        Ok(())
    }

    fn is_empty(&self) -> bool {
        self.args.is_empty()
    }
}

/// Arguments as raw JSON texts, e.g. to hand them to another server.
pub(crate) fn to_raw_args(args: &dyn ArgsDyn) -> Result<RawArgs, serde_json::Error> {
    let mut json = Vec::with_capacity(64);
    let mut attachments = Vec::new();
    json.push(b'[');
    args.write_dyn(&mut json, &mut attachments)?;
    json.push(b']');
    let parts: Vec<&serde_json::value::RawValue> = serde_json::from_slice(&json)?;
    let args = parts
        .into_iter()
        .map(|p| Bytes::copy_from_slice(p.get().as_bytes()))
        .collect();
    Ok(RawArgs { args, attachments })
}

/// An encoded packet: the text frame and the binary attachment frames that follow it.
#[derive(Debug, Clone)]
pub(crate) struct Encoded {
    pub(crate) text: Frame,
    pub(crate) attachments: Vec<Bytes>,
}

impl Encoded {
    pub(crate) fn frames(&self) -> impl Iterator<Item = Frame> + '_ {
        std::iter::once(self.text.clone())
            .chain(self.attachments.iter().cloned().map(Frame::Binary))
    }
}

fn frame(
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
        text: Frame::Text(out.freeze()),
        attachments,
    }
}

/// `EVENT` / `BINARY_EVENT`: `["event", args...]`.
pub(crate) fn event(
    nsp: &str,
    event: &str,
    args: &dyn ArgsDyn,
    id: Option<u64>,
) -> Result<Encoded, serde_json::Error> {
    let mut json = Vec::with_capacity(64);
    let mut attachments = Vec::new();
    json.push(b'[');
    serde_json::to_writer(&mut json, event)?;
    if !args.is_empty_dyn() {
        json.push(b',');
        args.write_dyn(&mut json, &mut attachments)?;
    }
    json.push(b']');
    Ok(frame(
        PacketType::Event,
        PacketType::BinaryEvent,
        nsp,
        id,
        &json,
        attachments,
    ))
}

/// `ACK` / `BINARY_ACK`: `[args...]`.
pub(crate) fn ack(nsp: &str, id: u64, args: &dyn ArgsDyn) -> Result<Encoded, serde_json::Error> {
    let mut json = Vec::with_capacity(64);
    let mut attachments = Vec::new();
    json.push(b'[');
    args.write_dyn(&mut json, &mut attachments)?;
    json.push(b']');
    Ok(frame(
        PacketType::Ack,
        PacketType::BinaryAck,
        nsp,
        Some(id),
        &json,
        attachments,
    ))
}

/// `CONNECT` answer: `{"sid":"..."}`.
pub(crate) fn connect(nsp: &str, sid: &str) -> Frame {
    let json = serde_json::json!({ "sid": sid }).to_string();
    frame(
        PacketType::Connect,
        PacketType::Connect,
        nsp,
        None,
        json.as_bytes(),
        Vec::new(),
    )
    .text
}

/// `CONNECT_ERROR` with a JSON payload.
pub(crate) fn connect_error(nsp: &str, payload: &serde_json::Value) -> Frame {
    let json = payload.to_string();
    frame(
        PacketType::ConnectError,
        PacketType::ConnectError,
        nsp,
        None,
        json.as_bytes(),
        Vec::new(),
    )
    .text
}

/// `DISCONNECT`.
pub(crate) fn disconnect(nsp: &str) -> Frame {
    frame(
        PacketType::Disconnect,
        PacketType::Disconnect,
        nsp,
        None,
        b"",
        Vec::new(),
    )
    .text
}

/// Object-safe view of [`Args`], so encoding is not generic over every argument type.
pub(crate) trait ArgsDyn {
    fn write_dyn(&self, out: &mut Vec<u8>, att: &mut Vec<Bytes>) -> Result<(), serde_json::Error>;
    fn is_empty_dyn(&self) -> bool;
}

impl<T: Args + ?Sized> ArgsDyn for T {
    fn write_dyn(&self, out: &mut Vec<u8>, att: &mut Vec<Bytes>) -> Result<(), serde_json::Error> {
        self.write(out, att)
    }

    fn is_empty_dyn(&self) -> bool {
        self.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(e: &Encoded) -> String {
        match &e.text {
            Frame::Text(t) => String::from_utf8(t.to_vec()).unwrap(),
            Frame::Binary(_) => panic!("text expected"),
        }
    }

    #[test]
    fn events() {
        let e = event("/", "hello", &One(&"world"), None).unwrap();
        assert_eq!(text(&e), r#"42["hello","world"]"#);
        let e = event(
            "/chat",
            "m",
            &(1, "2", serde_json::json!({"3":[true]})),
            Some(12),
        )
        .unwrap();
        assert_eq!(text(&e), r#"42/chat,12["m",1,"2",{"3":[true]}]"#);
        let e = event("/", "empty", &(), None).unwrap();
        assert_eq!(text(&e), r#"42["empty"]"#);
    }

    #[test]
    fn binary_event() {
        let e = event(
            "/",
            "b",
            &(Bytes::from_static(&[1, 2]), Bytes::from_static(&[3])),
            None,
        )
        .unwrap();
        assert_eq!(
            text(&e),
            r#"452-["b",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#
        );
        assert_eq!(e.attachments.len(), 2);
    }

    #[test]
    fn acks_and_control() {
        let a = ack("/custom", 456, &(1, "2")).unwrap();
        assert_eq!(text(&a), r#"43/custom,456[1,"2"]"#);
        assert_eq!(
            connect("/", "abc"),
            Frame::Text(Bytes::from_static(br#"40{"sid":"abc"}"#))
        );
        assert_eq!(disconnect("/x"), Frame::Text(Bytes::from_static(b"41/x,")));
        let err = serde_json::json!({"message": "Invalid namespace"});
        assert_eq!(
            connect_error("/random", &err),
            Frame::Text(Bytes::from_static(
                br#"44/random,{"message":"Invalid namespace"}"#
            ))
        );
    }
}
