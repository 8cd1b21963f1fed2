//! Emitting: plain, volatile and acknowledged emits, and answering the server's
//! acknowledgements (the [`SocketHandle`] side of the shared handler shapes).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::oneshot;
use volley_core::args::check_event_name;
use volley_core::{AckReply, StateMap};

use super::byte_seq::as_byte_seq;
use super::retry::Queued;
use super::{Socket, lock, read};
use crate::error::{AckError, EmitError};
use crate::handler::SocketHandle;
use crate::manager::Cmd;
use crate::{AckFuture, Args, ArgsDyn, FromArgs, One};

impl Socket {
    /// Emits an event with one argument (buffered while disconnected).
    ///
    /// A byte sequence (`Vec<u8>`, `&[u8]`, `[u8; N]`, non-empty) is sent as binary, like
    /// [`Bytes`]; inside other values (a struct field, a tuple of
    /// [`emit_args`](Self::emit_args)) use [`Bytes`] or `serde_bytes`, which serde marks as
    /// bytes, since a `Vec<u8>` there serializes as an array of numbers.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), EmitError> {
        match as_byte_seq(data) {
            Some(b) => self.emit_dyn(event, &One(&Bytes::from(b)), false),
            None => self.emit_dyn(event, &One(data), false),
        }
    }

    /// Emits an event with several arguments (a tuple), none (`()`) or [`RawArgs`](crate::RawArgs).
    pub fn emit_args(&self, event: &str, args: impl Args) -> Result<(), EmitError> {
        self.emit_dyn(event, &args, false)
    }

    /// Emits that are dropped instead of buffered when the socket cannot send them at once.
    pub fn volatile(&self) -> VolatileEmitter<'_> {
        VolatileEmitter { socket: self }
    }

    pub(super) fn emit_dyn(
        &self,
        event: &str,
        args: &dyn ArgsDyn,
        volatile: bool,
    ) -> Result<(), EmitError> {
        check_event_name(event)?;
        let body = self.inner.parser.event_body(event, args)?;
        if !volatile && read(&self.inner.opts).retries > 0 {
            let queued = Queued { body, reply: None };
            let _ = self.inner.retry_queue().send(queued);
            return Ok(());
        }
        let packet = self.inner.parser.event_packet(&self.inner.nsp, &body, None);
        self.inner.push(packet, None, None, volatile)
    }

    /// Sets the timeout of the next acknowledged emit.
    pub fn timeout(&self, timeout: Duration) -> TimeoutEmitter<'_> {
        TimeoutEmitter {
            socket: self,
            timeout,
        }
    }

    /// One argument, byte sequences as binary, with an optional timeout.
    fn ack_one<T: FromArgs>(
        &self,
        event: &str,
        data: &(impl Serialize + ?Sized),
        timeout: Option<Duration>,
    ) -> AckFuture<T> {
        match as_byte_seq(data) {
            Some(b) => self.emit_with_ack_dyn(event, &One(&Bytes::from(b)), timeout),
            None => self.emit_with_ack_dyn(event, &One(data), timeout),
        }
    }

    /// Emits an event with one argument and waits for the server's acknowledgement, at most
    /// the socket's [`ack_timeout`](crate::SocketBuilder::ack_timeout) if it has one (see
    /// [`timeout`](Self::timeout) for a per-emit one).
    ///
    /// The event is sent (or buffered) at once; the returned future only waits. The reply is
    /// deserialized into `T` following [`Data`](crate::Data)'s rule, or kept as [`RawArgs`](crate::RawArgs);
    /// `T` is the only type parameter, so `let n: u32 = socket.emit_with_ack("ev", &x).await?`
    /// or `socket.emit_with_ack::<u32>("ev", &x)`. A byte sequence is sent as binary, as with
    /// [`emit`](Self::emit).
    pub fn emit_with_ack<T: FromArgs>(
        &self,
        event: &str,
        data: &(impl Serialize + ?Sized),
    ) -> AckFuture<T> {
        self.ack_one(event, data, None)
    }

    /// Like [`emit_with_ack`](Self::emit_with_ack) with several arguments.
    pub fn emit_args_with_ack<T: FromArgs>(&self, event: &str, args: impl Args) -> AckFuture<T> {
        self.emit_with_ack_dyn(event, &args, None)
    }
}

/// `socket.timeout(d)`: the next acknowledged emit waits at most `d` (then fails with
/// [`AckError::Timeout`]).
#[derive(Debug)]
#[must_use = "a timeout applies to the emit made with it"]
pub struct TimeoutEmitter<'a> {
    socket: &'a Socket,
    timeout: Duration,
}

impl TimeoutEmitter<'_> {
    /// [`Socket::emit_with_ack`], waiting at most the timeout.
    pub fn emit_with_ack<T: FromArgs>(
        self,
        event: &str,
        data: &(impl Serialize + ?Sized),
    ) -> AckFuture<T> {
        self.socket.ack_one(event, data, Some(self.timeout))
    }

    /// [`Socket::emit_args_with_ack`], waiting at most the timeout.
    pub fn emit_args_with_ack<T: FromArgs>(self, event: &str, args: impl Args) -> AckFuture<T> {
        self.socket
            .emit_with_ack_dyn(event, &args, Some(self.timeout))
    }
}

/// `socket.volatile()`: emits dropped when the socket is disconnected or the transport busy.
#[derive(Debug)]
pub struct VolatileEmitter<'a> {
    socket: &'a Socket,
}

impl VolatileEmitter<'_> {
    /// Emits with one argument, or drops it.
    pub fn emit<T: Serialize + ?Sized>(self, event: &str, data: &T) -> Result<(), EmitError> {
        match as_byte_seq(data) {
            Some(b) => self.socket.emit_dyn(event, &One(&Bytes::from(b)), true),
            None => self.socket.emit_dyn(event, &One(data), true),
        }
    }

    /// Emits with several arguments, or drops them.
    pub fn emit_args(self, event: &str, args: impl Args) -> Result<(), EmitError> {
        self.socket.emit_dyn(event, &args, true)
    }
}

impl SocketHandle for Socket {
    fn request_ack(&self, event: &str, args: &dyn ArgsDyn, timeout: Option<Duration>) -> AckReply {
        let timeout = timeout.or(read(&self.inner.opts).ack_timeout);
        let fail = |e: EmitError| -> AckReply { Box::pin(std::future::ready(Err(e.into()))) };
        let body = match self.inner.parser.event_body(event, args) {
            Ok(b) => b,
            Err(e) => return fail(e.into()),
        };
        let (tx, rx) = oneshot::channel();
        if read(&self.inner.opts).retries > 0 {
            let queued = Queued {
                body,
                reply: Some(tx),
            };
            let _ = self.inner.retry_queue().send(queued);
            return Box::pin(async move { rx.await.unwrap_or(Err(AckError::Disconnected)) });
        }
        let id = self.inner.next_id();
        let packet = self
            .inner
            .parser
            .event_packet(&self.inner.nsp, &body, Some(id));
        if let Err(e) = self.inner.push(packet, Some(id), Some(tx), false) {
            return fail(e);
        }
        let socket = Arc::downgrade(&self.inner);
        Box::pin(async move {
            let reply = volley_core::ack::await_reply(rx, timeout).await;
            if let (Err(AckError::Timeout), Some(s)) = (&reply, socket.upgrade()) {
                s.forget_ack(id);
            }
            reply?
        })
    }

    fn send_ack(&self, id: u64, args: &dyn ArgsDyn) -> Result<(), EmitError> {
        let packet = self.inner.parser.ack(&self.inner.nsp, id, args)?;
        let st = lock(&self.inner.state);
        if !st.connected {
            // The id belongs to the connection that asked; a new one would not know it.
            return Err(EmitError::Closed);
        }
        let cmd = Cmd::Send {
            nsp: self.inner.nsp.clone(),
            packet,
            ack: None,
            volatile: false,
        };
        self.inner.cmd.send(cmd).map_err(|_| EmitError::Closed)
    }

    fn state(&self) -> Option<&StateMap> {
        self.manager.state()
    }
}
