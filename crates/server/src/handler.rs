//! Handler shapes: what `on_connection`, `on` and middleware accept.
//!
//! An event handler is an async closure taking the [`Socket`] and the event's arguments, as
//! [`Data<T>`] (deserialized) or [`RawArgs`] (as sent), and optionally an [`AckSender`]:
//!
//! ```no_run
//! # use volley::{Socket, Data, AckSender};
//! # fn f(socket: Socket) {
//! socket.on("echo", |socket: Socket, Data(text): Data<String>| async move {
//!     let _ = socket.emit("echo", &text);
//! });
//! socket.on("add", |_: Socket, Data((a, b)): Data<(i64, i64)>, ack: AckSender| async move {
//!     let _ = ack.send(&(a + b));
//! });
//! # }
//! ```

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::encode::{Args, One, RawArgs};
use crate::error::{ConnectError, EmitError};
use crate::socket::Socket;

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Event arguments deserialized into `T`.
///
/// With one argument `T` is read from it; with several, from the array of all of them (so
/// `Data<(String, u32)>` takes two); with none, from `null`. Binary attachments deserialize
/// into `bytes::Bytes` wherever the client put them.
#[derive(Debug, Clone, PartialEq)]
pub struct Data<T>(pub T);

/// Answers an event the client sent with an acknowledgement callback. Answering is optional
/// and happens at most once (`send` takes `self`). When the client asked for no
/// acknowledgement, sending is a no-op.
#[derive(Debug)]
pub struct AckSender {
    socket: Socket,
    id: Option<u64>,
}

impl AckSender {
    pub(crate) fn new(socket: Socket, id: Option<u64>) -> Self {
        Self { socket, id }
    }

    /// Whether the client asked for an acknowledgement.
    pub fn is_requested(&self) -> bool {
        self.id.is_some()
    }

    /// Acknowledges with one argument.
    pub fn send<T: serde::Serialize + ?Sized>(self, data: &T) -> Result<(), EmitError> {
        self.send_args(One(data))
    }

    /// Acknowledges with several arguments (a tuple, `()`, or [`RawArgs`]).
    pub fn send_args(self, args: impl Args) -> Result<(), EmitError> {
        match self.id {
            Some(id) => self.socket.send_ack(id, &args),
            None => Ok(()),
        }
    }
}

/// Deserializes event arguments into `T` following [`Data`]'s rule.
pub(crate) fn args_into<T: DeserializeOwned>(args: &RawArgs) -> Result<T, serde_json::Error> {
    match args.args.len() {
        0 => volley_proto::socket::from_slice_with_binary(b"null", &args.attachments),
        1 => volley_proto::socket::from_slice_with_binary(&args.args[0], &args.attachments),
        _ => {
            let len = args.args.iter().map(|a| a.len() + 1).sum::<usize>() + 1;
            let mut json = Vec::with_capacity(len);
            json.push(b'[');
            for (i, a) in args.args.iter().enumerate() {
                if i > 0 {
                    json.push(b',');
                }
                json.extend_from_slice(a);
            }
            json.push(b']');
            volley_proto::socket::from_slice_with_binary(&json, &args.attachments)
        }
    }
}

/// Types that acknowledgement arguments convert into: any deserializable `T` (following
/// [`Data`]'s rule) or [`RawArgs`] (as sent).
pub trait FromArgs: Sized + Send + 'static {
    /// Converts the arguments.
    fn from_args(args: RawArgs) -> Result<Self, serde_json::Error>;
}

impl<T: DeserializeOwned + Send + 'static> FromArgs for T {
    fn from_args(args: RawArgs) -> Result<Self, serde_json::Error> {
        args_into(&args)
    }
}

impl FromArgs for RawArgs {
    fn from_args(args: RawArgs) -> Result<Self, serde_json::Error> {
        Ok(args)
    }
}

/// Something that can handle an event; implemented for the closure shapes shown in the
/// [module docs](self). `M` only tells the shapes apart.
pub trait EventHandler<M>: Send + Sync + 'static {
    /// Runs the handler.
    fn call(&self, socket: Socket, args: RawArgs, ack: AckSender) -> BoxFuture<()>;
}

#[doc(hidden)]
#[derive(Debug)]
pub struct WithData<T>(std::marker::PhantomData<T>);
#[doc(hidden)]
#[derive(Debug)]
pub struct WithDataAck<T>(std::marker::PhantomData<T>);
#[doc(hidden)]
#[derive(Debug)]
pub struct WithRaw;
#[doc(hidden)]
#[derive(Debug)]
pub struct WithRawAck;
#[doc(hidden)]
#[derive(Debug)]
pub struct WithSocket;
#[doc(hidden)]
#[derive(Debug)]
pub struct WithSocketAck;

fn decoded<T: DeserializeOwned>(socket: &Socket, args: &RawArgs) -> Option<T> {
    match args_into(args) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::debug!(socket = socket.id(), error = %e, "event arguments do not fit the handler");
            None
        }
    }
}

impl<F, Fut, T> EventHandler<WithData<T>> for F
where
    F: Fn(Socket, Data<T>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
    T: DeserializeOwned + Send + 'static,
{
    fn call(&self, socket: Socket, args: RawArgs, _: AckSender) -> BoxFuture<()> {
        match decoded(&socket, &args) {
            Some(v) => Box::pin(self(socket, Data(v))),
            None => Box::pin(std::future::ready(())),
        }
    }
}

impl<F, Fut, T> EventHandler<WithDataAck<T>> for F
where
    F: Fn(Socket, Data<T>, AckSender) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
    T: DeserializeOwned + Send + 'static,
{
    fn call(&self, socket: Socket, args: RawArgs, ack: AckSender) -> BoxFuture<()> {
        match decoded(&socket, &args) {
            Some(v) => Box::pin(self(socket, Data(v), ack)),
            None => Box::pin(std::future::ready(())),
        }
    }
}

impl<F, Fut> EventHandler<WithRaw> for F
where
    F: Fn(Socket, RawArgs) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    fn call(&self, socket: Socket, args: RawArgs, _: AckSender) -> BoxFuture<()> {
        Box::pin(self(socket, args))
    }
}

impl<F, Fut> EventHandler<WithRawAck> for F
where
    F: Fn(Socket, RawArgs, AckSender) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    fn call(&self, socket: Socket, args: RawArgs, ack: AckSender) -> BoxFuture<()> {
        Box::pin(self(socket, args, ack))
    }
}

impl<F, Fut> EventHandler<WithSocket> for F
where
    F: Fn(Socket) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    fn call(&self, socket: Socket, _: RawArgs, _: AckSender) -> BoxFuture<()> {
        Box::pin(self(socket))
    }
}

impl<F, Fut> EventHandler<WithSocketAck> for F
where
    F: Fn(Socket, AckSender) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    fn call(&self, socket: Socket, _: RawArgs, ack: AckSender) -> BoxFuture<()> {
        Box::pin(self(socket, ack))
    }
}

/// The erased form stored per event name.
pub(crate) type ErasedHandler =
    std::sync::Arc<dyn Fn(Socket, RawArgs, AckSender) -> BoxFuture<()> + Send + Sync>;

pub(crate) fn erase<H: EventHandler<M>, M>(h: H) -> ErasedHandler {
    std::sync::Arc::new(move |s, a, ack| h.call(s, a, ack))
}

/// A namespace connection handler: `async fn(Socket)`.
pub(crate) type ConnectHandler = std::sync::Arc<dyn Fn(Socket) -> BoxFuture<()> + Send + Sync>;

/// A connection middleware: `async fn(Socket) -> Result<(), ConnectError>`.
pub(crate) type Middleware =
    std::sync::Arc<dyn Fn(Socket) -> BoxFuture<Result<(), ConnectError>> + Send + Sync>;

/// A disconnect handler: `async fn(Socket, DisconnectReason)`.
pub(crate) type DisconnectHandler =
    Box<dyn FnOnce(Socket, crate::DisconnectReason) -> BoxFuture<()> + Send + Sync>;

/// Runs a future up to its first pending point right here, and on a new task from there.
///
/// Handlers that do not wait (the common case: emit and return) cost no task and no wake-up,
/// and the synchronous part of every handler runs in the order the packets arrived, as in
/// Node. A panicking handler is contained: it is logged and the connection goes on.
pub(crate) fn run_now_or_spawn(mut fut: BoxFuture<()>) {
    let mut cx = Context::from_waker(Waker::noop());
    match std::panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(&mut cx))) {
        Ok(Poll::Ready(())) => {}
        Ok(Poll::Pending) => {
            // The first poll registered a no-op waker; the new task polls again at once and
            // registers its own, so no wake-up is lost.
            tokio::spawn(fut);
        }
        Err(_) => tracing::error!("a handler panicked; the connection goes on"),
    }
}

/// Raw arguments from a decoded packet.
pub(crate) fn raw_args(args: Vec<Bytes>, attachments: Vec<Bytes>) -> RawArgs {
    RawArgs { args, attachments }
}
