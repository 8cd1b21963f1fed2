//! Handler shapes: what [`Socket::on`](crate::Socket::on) and the lifecycle callbacks accept.
//!
//! An event handler is an async closure taking the [`Socket`] and the event's arguments, as
//! [`Data<T>`] (deserialized) or [`RawArgs`] (as sent), and optionally an [`AckSender`] to
//! answer a server's `emitWithAck`:
//!
//! ```no_run
//! # use volley_client::{Socket, Data, AckSender};
//! # fn f(socket: Socket) {
//! socket.on("echo", |socket: Socket, Data(text): Data<String>| async move {
//!     let _ = socket.emit("echo", &text);
//! });
//! socket.on("add", |_: Socket, Data((a, b)): Data<(i64, i64)>, ack: AckSender| async move {
//!     let _ = ack.send(&(a + b));
//! });
//! # }
//! ```
//!
//! Handlers run on the connection's task up to their first `.await` that waits, then on a
//! task of their own: no lock is held while they run, so a handler may emit and await
//! acknowledgements freely. A panicking handler is contained.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use serde::de::DeserializeOwned;

use crate::Data;
use crate::args::{Args, One, RawArgs};
use crate::error::{ConnectError, DisconnectReason, EmitError};
use crate::socket::Socket;

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Answers an event the server sent with an acknowledgement callback. Answering is optional
/// and happens at most once (`send` takes `self`). When the server asked for no
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

    /// Whether the server asked for an acknowledgement.
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

fn decoded<T: DeserializeOwned>(socket: &Socket, args: &RawArgs) -> Option<T> {
    match args.parse() {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::debug!(namespace = socket.namespace(), error = %e, "event arguments do not fit the handler");
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

/// The erased form stored per event name.
pub(crate) type ErasedHandler =
    Arc<dyn Fn(Socket, RawArgs, AckSender) -> BoxFuture<()> + Send + Sync>;

pub(crate) fn erase<H: EventHandler<M>, M>(h: H) -> ErasedHandler {
    Arc::new(move |s, a, ack| h.call(s, a, ack))
}

/// A catch-all handler: `async fn(Socket, event name, RawArgs)`.
pub(crate) type AnyHandler = Arc<dyn Fn(Socket, String, RawArgs) -> BoxFuture<()> + Send + Sync>;
/// `connect`: `async fn(Socket)`.
pub(crate) type ConnectHandler = Arc<dyn Fn(Socket) -> BoxFuture<()> + Send + Sync>;
/// `disconnect`: `async fn(Socket, DisconnectReason)`.
pub(crate) type DisconnectHandler =
    Arc<dyn Fn(Socket, DisconnectReason) -> BoxFuture<()> + Send + Sync>;
/// `connect_error`: `async fn(Socket, ConnectError)`.
pub(crate) type ConnectErrorHandler =
    Arc<dyn Fn(Socket, ConnectError) -> BoxFuture<()> + Send + Sync>;

/// Runs a future up to its first pending point right here, and on a new task from there.
///
/// Handlers that do not wait (the common case: emit and return) cost no task and no wake-up,
/// and the synchronous part of every handler runs in the order the packets arrived. A
/// panicking handler is contained: it is logged and the connection goes on.
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
