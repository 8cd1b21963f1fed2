//! Event arguments: what `emit` takes ([`Args`]) and what handlers and acknowledgements get
//! ([`Data`], [`RawArgs`], [`FromArgs`]); and the encoding of outgoing packets.

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;
use serde::de::DeserializeOwned;
use volley_proto::socket::{
    PacketType, encode_header, from_slice_with_binary, to_writer_with_binary,
};

/// The arguments of an event or an acknowledgement.
///
/// Implemented for tuples of serializable values (each element is one argument, up to eight),
/// for `()` (no argument), for `Vec<serde_json::Value>` and for [`RawArgs`]. To send a single
/// argument use `emit(event, &data)`; this trait is for the several-arguments form
/// (`emit_args`). Byte buffers (`bytes::Bytes`, `serde_bytes`) anywhere inside become binary
/// attachments.
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

/// Arguments exactly as the server sent them: raw JSON text per argument plus the binary
/// attachments their placeholders refer to. Re-emitting them forwards everything, binary
/// included, without parsing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawArgs {
    args: Vec<Bytes>,
    attachments: Vec<Bytes>,
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
    pub fn get<T: DeserializeOwned>(&self, i: usize) -> Option<Result<T, serde_json::Error>> {
        self.args
            .get(i)
            .map(|a| from_slice_with_binary(a, &self.attachments))
    }

    /// Deserializes all the arguments following [`Data`]'s rule.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        match self.args.len() {
            0 => from_slice_with_binary(b"null", &self.attachments),
            1 => from_slice_with_binary(&self.args[0], &self.attachments),
            _ => {
                let len = self.args.iter().map(|a| a.len() + 1).sum::<usize>() + 1;
                let mut json = Vec::with_capacity(len);
                json.push(b'[');
                for (i, a) in self.args.iter().enumerate() {
                    if i > 0 {
                        json.push(b',');
                    }
                    json.extend_from_slice(a);
                }
                json.push(b']');
                from_slice_with_binary(&json, &self.attachments)
            }
        }
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

/// Event arguments deserialized into `T`.
///
/// With one argument `T` is read from it; with several, from the array of all of them (so
/// `Data<(String, u32)>` takes two); with none, from `null`. Binary attachments deserialize
/// into `bytes::Bytes` wherever the server put them.
#[derive(Debug, Clone, PartialEq)]
pub struct Data<T>(pub T);

/// Types that acknowledgement arguments convert into: any deserializable `T` (following
/// [`Data`]'s rule) or [`RawArgs`] (as sent).
pub trait FromArgs: Sized + Send + 'static {
    /// Converts the arguments.
    fn from_args(args: RawArgs) -> Result<Self, serde_json::Error>;
}

impl<T: DeserializeOwned + Send + 'static> FromArgs for T {
    fn from_args(args: RawArgs) -> Result<Self, serde_json::Error> {
        args.parse()
    }
}

impl FromArgs for RawArgs {
    fn from_args(args: RawArgs) -> Result<Self, serde_json::Error> {
        Ok(args)
    }
}

/// An encoded Socket.IO packet: its text (without the Engine.IO `4`) and the binary
/// attachments that follow it.
#[derive(Debug, Clone)]
pub(crate) struct Encoded {
    pub(crate) text: Bytes,
    pub(crate) attachments: Vec<Bytes>,
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
    encode_header(&mut out, kind, attachments.len(), nsp, id);
    out.put_slice(json);
    Encoded {
        text: out.freeze(),
        attachments,
    }
}

/// The JSON array of an event's data, `["event", args...]`, with its attachments.
pub(crate) fn event_body(
    event: &str,
    args: &dyn ArgsDyn,
) -> Result<(Vec<u8>, Vec<Bytes>), serde_json::Error> {
    let mut json = Vec::with_capacity(64);
    let mut attachments = Vec::new();
    json.push(b'[');
    serde_json::to_writer(&mut json, event)?;
    if !args.is_empty_dyn() {
        json.push(b',');
        args.write_dyn(&mut json, &mut attachments)?;
    }
    json.push(b']');
    Ok((json, attachments))
}

/// `EVENT` / `BINARY_EVENT` from an already encoded body.
pub(crate) fn event_packet(
    nsp: &str,
    body: &[u8],
    attachments: Vec<Bytes>,
    id: Option<u64>,
) -> Encoded {
    packet(
        PacketType::Event,
        PacketType::BinaryEvent,
        nsp,
        id,
        body,
        attachments,
    )
}

/// `ACK` / `BINARY_ACK`: `[args...]`.
pub(crate) fn ack(nsp: &str, id: u64, args: &dyn ArgsDyn) -> Result<Encoded, serde_json::Error> {
    let mut json = Vec::with_capacity(64);
    let mut attachments = Vec::new();
    json.push(b'[');
    args.write_dyn(&mut json, &mut attachments)?;
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

/// `CONNECT`, with the auth object if any.
pub(crate) fn connect(nsp: &str, auth: Option<&serde_json::Value>) -> Encoded {
    let json = auth.map(|a| a.to_string()).unwrap_or_default();
    packet(
        PacketType::Connect,
        PacketType::Connect,
        nsp,
        None,
        json.as_bytes(),
        Vec::new(),
    )
}

/// `DISCONNECT`.
pub(crate) fn disconnect(nsp: &str) -> Encoded {
    packet(
        PacketType::Disconnect,
        PacketType::Disconnect,
        nsp,
        None,
        b"",
        Vec::new(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(e: &Encoded) -> &str {
        std::str::from_utf8(&e.text).unwrap()
    }

    #[test]
    fn encodes_like_the_official_client() {
        let (body, att) = event_body("hello", &One(&"world")).unwrap();
        assert_eq!(
            text(&event_packet("/", &body, att, None)),
            r#"2["hello","world"]"#
        );
        let (body, att) = event_body("m", &(1, "2")).unwrap();
        assert_eq!(
            text(&event_packet("/chat", &body, att, Some(12))),
            r#"2/chat,12["m",1,"2"]"#
        );
        let (body, att) = event_body("b", &(Bytes::from_static(&[1]),)).unwrap();
        let e = event_packet("/", &body, att, Some(0));
        assert_eq!(text(&e), r#"51-0["b",{"_placeholder":true,"num":0}]"#);
        assert_eq!(e.attachments, [Bytes::from_static(&[1])]);
        assert_eq!(text(&ack("/x", 3, &("a",)).unwrap()), r#"3/x,3["a"]"#);
        assert_eq!(text(&connect("/", None)), "0");
        assert_eq!(
            text(&connect("/admin", Some(&serde_json::json!({"token": "t"})))),
            r#"0/admin,{"token":"t"}"#
        );
        assert_eq!(text(&disconnect("/admin")), "1/admin,");
    }

    #[test]
    fn data_rule() {
        let raw = RawArgs::new(
            vec![Bytes::from_static(b"1"), Bytes::from_static(b"\"a\"")],
            vec![],
        );
        let (n, s): (u32, String) = raw.parse().unwrap();
        assert_eq!((n, s.as_str()), (1, "a"));
        let one = RawArgs::new(vec![Bytes::from_static(b"5")], vec![]);
        assert_eq!(one.parse::<u32>().unwrap(), 5);
        assert_eq!(RawArgs::default().parse::<Option<u32>>().unwrap(), None);
    }
}
