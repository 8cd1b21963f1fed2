//! Event arguments: what `emit` takes ([`Args`]) and what handlers and acknowledgements get
//! ([`RawArgs`], [`Data`], [`FromArgs`]).
//!
//! Nothing here is tied to one wire format: [`Args`] writes through an [`ArgsWriter`] the
//! [`Parser`] provides, and [`RawArgs`] keeps each argument encoded in the format it arrived
//! in, tagged with that format, until a handler asks for a type.

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use volley_proto::socket::EventArgs;

use crate::parser::{CodecError, JsonWriter, MsgPackWriter, Parser};

/// Receives the arguments of an event or acknowledgement, one at a time, and encodes them in
/// its parser's format.
pub trait ArgsWriter {
    /// Writes one argument. Byte buffers (`bytes::Bytes`, `serde_bytes`) anywhere inside are
    /// binary.
    fn arg<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), CodecError>;

    /// Writes arguments as they were received (forwarding, binary included).
    fn raw(&mut self, args: &RawArgs) -> Result<(), CodecError>;
}

/// The arguments of an event or an acknowledgement.
///
/// Implemented for tuples of serializable values (each element is one argument, up to eight),
/// for `()` (no argument), for `Vec<serde_json::Value>` and for [`RawArgs`]. To send a single
/// argument use `emit(event, &data)`; this trait is for the several-arguments form
/// (`emit_args`). Byte buffers (`bytes::Bytes`, `serde_bytes`) anywhere inside are sent as
/// binary.
pub trait Args {
    /// Writes each argument, in order.
    fn write_to<W: ArgsWriter>(&self, w: &mut W) -> Result<(), CodecError>;

    /// Whether there is no argument at all.
    fn is_empty(&self) -> bool;
}

/// One argument; what `emit(event, &data)` sends.
#[derive(Debug)]
pub struct One<'a, T: ?Sized>(pub &'a T);

impl<T: Serialize + ?Sized> Args for One<'_, T> {
    fn write_to<W: ArgsWriter>(&self, w: &mut W) -> Result<(), CodecError> {
        w.arg(self.0)
    }

    fn is_empty(&self) -> bool {
        false
    }
}

impl Args for () {
    fn write_to<W: ArgsWriter>(&self, _: &mut W) -> Result<(), CodecError> {
        Ok(())
    }

    fn is_empty(&self) -> bool {
        true
    }
}

macro_rules! tuple_args {
    ($($name:ident . $idx:tt),+) => {
        impl<$($name: Serialize),+> Args for ($($name,)+) {
            fn write_to<W: ArgsWriter>(&self, w: &mut W) -> Result<(), CodecError> {
                $( w.arg(&self.$idx)?; )+
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
    fn write_to<W: ArgsWriter>(&self, w: &mut W) -> Result<(), CodecError> {
        self.iter().try_for_each(|v| w.arg(v))
    }

    fn is_empty(&self) -> bool {
        Vec::is_empty(self)
    }
}

impl Args for RawArgs {
    fn write_to<W: ArgsWriter>(&self, w: &mut W) -> Result<(), CodecError> {
        w.raw(self)
    }

    fn is_empty(&self) -> bool {
        self.args.is_empty()
    }
}

/// Object-safe view of [`Args`], so that encoding is not generic over every argument type.
///
/// Implemented for every [`Args`]; it has one method per wire format the [`Parser`] knows.
pub trait ArgsDyn {
    /// Writes the arguments in the JSON format.
    fn write_json(&self, w: &mut JsonWriter<'_>) -> Result<(), CodecError>;
    /// Writes the arguments in the MessagePack format.
    fn write_msgpack(&self, w: &mut MsgPackWriter<'_>) -> Result<(), CodecError>;
    /// Whether there is no argument at all.
    fn is_empty_dyn(&self) -> bool;
}

impl<T: Args + ?Sized> ArgsDyn for T {
    fn write_json(&self, w: &mut JsonWriter<'_>) -> Result<(), CodecError> {
        self.write_to(w)
    }

    fn write_msgpack(&self, w: &mut MsgPackWriter<'_>) -> Result<(), CodecError> {
        self.write_to(w)
    }

    fn is_empty_dyn(&self) -> bool {
        self.is_empty()
    }
}

/// Arguments exactly as the peer sent them: each argument still encoded in the wire format
/// it came in (a JSON text per argument with [`Parser::Json`]), plus the binary attachments
/// the JSON refers to. Re-emitting them forwards everything, binary included, without
/// parsing; [`get`](Self::get) and [`parse`](Self::parse) decode on demand.
///
/// ```
/// use volley::{AckSender, RawArgs, Socket, SocketIo};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let io = SocketIo::builder().build();
/// io.of("/").on_connection(|socket: Socket| async move {
///     // Whatever came, forwarded as it is to every other socket (binary included).
///     socket.on("relay", |socket: Socket, args: RawArgs| async move {
///         let _ = socket.broadcast().emit_args("relay", args);
///     });
///     // Or read one argument at a time: the first says what the others are.
///     socket.on("cmd", |_: Socket, args: RawArgs, ack: AckSender| async move {
///         let reply = match args.get::<String>(0) {
///             Some(Ok(cmd)) if cmd == "sum" => (1..args.len())
///                 .filter_map(|i| args.get::<i64>(i)?.ok())
///                 .sum::<i64>(),
///             _ => -1,
///         };
///         let _ = ack.send(&reply);
///     });
/// });
/// # let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// # let url = format!("http://{}", listener.local_addr()?);
/// # tokio::spawn(volley::serve(listener, io.service()));
/// # let client = volley_client::Manager::builder(&url).build()?.socket("/").connect().await?;
/// // From a connected client (volley-client here):
/// let total: i64 = client.emit_args_with_ack("cmd", ("sum", 1, 2, 3)).await?;
/// assert_eq!(total, 6);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawArgs {
    parser: Parser,
    /// One argument inline: most events have one, and it costs no allocation.
    args: EventArgs,
    attachments: Vec<Bytes>,
}

impl Default for RawArgs {
    fn default() -> Self {
        Self::from_event_args(Parser::Json, EventArgs::new(), Vec::new())
    }
}

impl RawArgs {
    /// Raw arguments from JSON texts and the attachments their placeholders refer to.
    pub fn new(args: Vec<Bytes>, attachments: Vec<Bytes>) -> Self {
        Self::with_parser(Parser::Json, args, attachments)
    }

    /// Raw arguments encoded by `parser`'s format.
    pub fn with_parser(parser: Parser, args: Vec<Bytes>, attachments: Vec<Bytes>) -> Self {
        Self::from_event_args(parser, EventArgs::from_vec(args), attachments)
    }

    /// Raw arguments as a decoded packet holds them.
    pub(crate) fn from_event_args(
        parser: Parser,
        args: EventArgs,
        attachments: Vec<Bytes>,
    ) -> Self {
        Self {
            parser,
            args,
            attachments,
        }
    }

    /// Arguments serialized now, as if they had been received (e.g. to hand them to another
    /// server, or to show them to an observer).
    pub fn from_args(parser: Parser, args: &dyn ArgsDyn) -> Result<Self, CodecError> {
        parser.to_raw_args(args)
    }

    /// The format the arguments are encoded in.
    pub fn parser(&self) -> Parser {
        self.parser
    }

    /// Each argument, encoded in [`parser`](Self::parser)'s format (JSON text for
    /// [`Parser::Json`]).
    pub fn args(&self) -> &[Bytes] {
        &self.args
    }

    /// The binary attachments (always empty for formats with native binary).
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

    /// Deserializes argument `i` (binary becomes bytes).
    pub fn get<T: DeserializeOwned>(&self, i: usize) -> Option<Result<T, CodecError>> {
        let arg = self.args.get(i)?;
        Some(self.parser.decode_arg(arg, &self.attachments))
    }

    /// Deserializes all the arguments following [`Data`]'s rule.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, CodecError> {
        self.parser.decode_args(&self.args, &self.attachments)
    }
}

/// Event arguments deserialized into `T`.
///
/// With one argument `T` is read from it; with several, from the array of all of them (so
/// `Data<(String, u32)>` takes two); with none, from `null`. Binary data deserializes into
/// `bytes::Bytes` wherever the peer put it. When the arguments do not fit `T`, the handler
/// is not run (logged at debug level): take [`RawArgs`] to see whatever came.
///
/// ```
/// use serde::Deserialize;
/// use volley::{AckSender, Data, Socket, SocketIo};
///
/// #[derive(Deserialize)]
/// struct Move {
///     x: i32,
///     y: i32,
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let io = SocketIo::builder().build();
/// io.of("/").on_connection(|socket: Socket| async move {
///     socket
///         // One argument, an object: `socket.emit("move", { x: 1, y: 2 })`.
///         .on("move", |_: Socket, Data(m): Data<Move>, ack: AckSender| async move {
///             let _ = ack.send(&(m.x + m.y));
///         })
///         // Two arguments: `socket.emit("rename", "old", "new")`.
///         .on("rename", |_: Socket, Data((from, to)): Data<(String, String)>, ack: AckSender| async move {
///             let _ = ack.send(&format!("{from} -> {to}"));
///         })
///         // Binary: `socket.emit("upload", new Uint8Array([1, 2, 3]))`.
///         .on("upload", |_: Socket, Data(file): Data<bytes::Bytes>, ack: AckSender| async move {
///             let _ = ack.send(&file.len());
///         });
/// });
/// # let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// # let url = format!("http://{}", listener.local_addr()?);
/// # tokio::spawn(volley::serve(listener, io.service()));
/// # let client = volley_client::Manager::builder(&url).build()?.socket("/").connect().await?;
/// # let sum: i32 = client.emit_with_ack("move", &serde_json::json!({ "x": 1, "y": 2 })).await?;
/// # assert_eq!(sum, 3);
/// # let renamed: String = client.emit_args_with_ack("rename", ("old", "new")).await?;
/// # assert_eq!(renamed, "old -> new");
/// # let len: usize = client.emit_with_ack("upload", &bytes::Bytes::from_static(&[1, 2, 3])).await?;
/// # assert_eq!(len, 3);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Data<T>(pub T);

/// Types that arguments convert into: any deserializable `T` (following [`Data`]'s rule) or
/// [`RawArgs`] (as sent). Acknowledgement replies use it.
pub trait FromArgs: Sized + Send + 'static {
    /// Converts the arguments.
    fn from_args(args: RawArgs) -> Result<Self, CodecError>;
}

impl<T: DeserializeOwned + Send + 'static> FromArgs for T {
    fn from_args(args: RawArgs) -> Result<Self, CodecError> {
        args.parse()
    }
}

impl FromArgs for RawArgs {
    fn from_args(args: RawArgs) -> Result<Self, CodecError> {
        Ok(args)
    }
}

/// Event names Socket.IO reserves; emitting them is refused, as the official libraries do.
pub const RESERVED_EVENTS: &[&str] = &[
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// Refuses the [reserved](RESERVED_EVENTS) event names.
pub fn check_event_name(event: &str) -> Result<(), crate::EmitError> {
    if RESERVED_EVENTS.contains(&event) {
        return Err(crate::EmitError::ReservedEvent(event.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_rule() {
        let raw = RawArgs::new(
            vec![Bytes::from_static(b"1"), Bytes::from_static(b"\"a\"")],
            vec![],
        );
        let (n, s): (u32, String) = raw.parse().unwrap();
        assert_eq!((n, s.as_str()), (1, "a"));
        assert_eq!(raw.get::<String>(1).unwrap().unwrap(), "a");
        assert!(raw.get::<u32>(1).unwrap().is_err());
        assert!(raw.get::<u32>(2).is_none());
        let one = RawArgs::new(vec![Bytes::from_static(b"5")], vec![]);
        assert_eq!(one.parse::<u32>().unwrap(), 5);
        assert_eq!(RawArgs::default().parse::<Option<u32>>().unwrap(), None);
        assert!(RawArgs::default().parse::<u32>().is_err());
    }

    #[test]
    fn binary_arguments() {
        let raw = RawArgs::new(
            vec![Bytes::from_static(br#"{"_placeholder":true,"num":0}"#)],
            vec![Bytes::from_static(&[1, 2])],
        );
        assert_eq!(raw.parse::<Bytes>().unwrap(), Bytes::from_static(&[1, 2]));
    }

    #[test]
    fn reserved_names() {
        assert!(check_event_name("disconnecting").is_err());
        assert!(check_event_name("message").is_ok());
    }

    #[test]
    fn raw_from_args() {
        let raw = RawArgs::from_args(Parser::Json, &(1, "b", Bytes::from_static(&[9]))).unwrap();
        assert_eq!(raw.len(), 3);
        assert_eq!(raw.args()[1], Bytes::from_static(b"\"b\""));
        assert_eq!(raw.attachments(), [Bytes::from_static(&[9])]);
        assert_eq!(
            raw.get::<Bytes>(2).unwrap().unwrap(),
            Bytes::from_static(&[9])
        );
    }
}
