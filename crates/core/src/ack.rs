//! Waiting for acknowledgements: [`AckFuture`], per-emit timeouts ([`TimeoutEmitter`]) and the
//! default timeout.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::oneshot;

use crate::args::{Args, FromArgs, One, RawArgs};
use crate::error::AckError;
use crate::handler::{AckReply, BoxFuture, SocketHandle};

/// How long `emit_with_ack` waits when nothing else was chosen: 5 seconds.
pub const DEFAULT_ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// The acknowledgement of an emit: resolves with the peer's reply, or an [`AckError`].
#[must_use = "the acknowledgement is only received when this future is awaited"]
pub struct AckFuture<T> {
    inner: Inner<T>,
}

enum Inner<T> {
    Boxed(BoxFuture<Result<T, AckError>>),
    /// The reply of a socket's `request_ack`, decoded when it comes: one allocation per
    /// acknowledged emit instead of two.
    Reply(AckReply, fn(RawArgs) -> Result<T, AckError>),
}

impl<T> fmt::Debug for AckFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AckFuture")
    }
}

impl<T: Send + 'static> AckFuture<T> {
    /// Wraps the future that waits for the reply.
    pub fn new(f: impl Future<Output = Result<T, AckError>> + Send + 'static) -> Self {
        Self {
            inner: Inner::Boxed(Box::pin(f)),
        }
    }

    /// Waits for `reply` and decodes it into `T` (the [`Data`](crate::Data) rule).
    pub fn from_reply(reply: AckReply) -> Self
    where
        T: FromArgs,
    {
        Self {
            inner: Inner::Reply(reply, |args| T::from_args(args).map_err(AckError::Decode)),
        }
    }

    /// An acknowledgement that already failed (or succeeded).
    pub fn ready(r: Result<T, AckError>) -> Self {
        Self::new(std::future::ready(r))
    }
}

impl<T> Future for AckFuture<T> {
    type Output = Result<T, AckError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.inner {
            Inner::Boxed(f) => f.as_mut().poll(cx),
            Inner::Reply(reply, decode) => reply.as_mut().poll(cx).map(|r| r.and_then(*decode)),
        }
    }
}

/// Waits for a reply on `rx`, at most `timeout` when there is one: a dropped sender is
/// [`AckError::Disconnected`], the end of the timeout [`AckError::Timeout`].
pub async fn await_reply<R>(
    rx: oneshot::Receiver<R>,
    timeout: Option<Duration>,
) -> Result<R, AckError> {
    let reply = match timeout {
        Some(t) => tokio::time::timeout(t, rx)
            .await
            .map_err(|_| AckError::Timeout)?,
        None => rx.await,
    };
    reply.map_err(|_| AckError::Disconnected)
}

/// `socket.timeout(d)`: the next acknowledged emit waits at most `d`.
#[derive(Debug)]
pub struct TimeoutEmitter<'a, S> {
    socket: &'a S,
    timeout: Duration,
}

impl<'a, S: SocketHandle> TimeoutEmitter<'a, S> {
    /// Acknowledged emits of `socket` waiting at most `timeout`.
    pub fn new(socket: &'a S, timeout: Duration) -> Self {
        Self { socket, timeout }
    }

    /// Emits with one argument and waits for the acknowledgement.
    pub fn emit_with_ack<T, D>(self, event: &str, data: &D) -> AckFuture<T>
    where
        T: FromArgs,
        D: Serialize + ?Sized,
    {
        self.socket
            .emit_with_ack_dyn(event, &One(data), Some(self.timeout))
    }

    /// Emits with several arguments and waits for the acknowledgement.
    pub fn emit_args_with_ack<T: FromArgs>(self, event: &str, args: impl Args) -> AckFuture<T> {
        self.socket
            .emit_with_ack_dyn(event, &args, Some(self.timeout))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn replies_and_timeouts() {
        let (tx, rx) = oneshot::channel();
        tx.send(1).unwrap();
        assert_eq!(await_reply(rx, Some(DEFAULT_ACK_TIMEOUT)).await.unwrap(), 1);
        let (tx, rx) = oneshot::channel::<u8>();
        drop(tx);
        assert!(matches!(
            await_reply(rx, None).await,
            Err(AckError::Disconnected)
        ));
        let (_tx, rx) = oneshot::channel::<u8>();
        let r = await_reply(rx, Some(Duration::from_secs(1))).await;
        assert!(matches!(r, Err(AckError::Timeout)));
        let f: AckFuture<u8> = AckFuture::ready(Err(AckError::Timeout));
        assert!(f.await.is_err());
    }
}
