//! Listening other than with a permanent handler: [`Socket::once`] and
//! [`Socket::event_stream`].

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::task::{Context, Poll};

use futures_util::Stream;
use tokio::sync::mpsc;
use volley_core::handler::erase;

use super::{Socket, write};
use crate::RawArgs;
use crate::handler::{ErasedHandler, EventHandler};

/// What an [`ErasedHandler`] points to.
type HandlerFn =
    dyn Fn(Socket, RawArgs, crate::AckSender) -> volley_core::handler::BoxFuture<()> + Send + Sync;

impl Socket {
    /// Registers a handler of an event that runs once, for the next occurrence only, then
    /// removes itself (unless another handler replaced it meanwhile); see [`on`](Self::on).
    pub fn once<H, M>(&self, event: impl Into<String>, handler: H) -> &Self
    where
        H: EventHandler<Socket, M>,
        M: 'static,
    {
        let event = event.into();
        let inner = erase(handler);
        let fired = Arc::new(AtomicBool::new(false));
        // The registered closure recognizes itself in the map by a weak pointer to itself.
        let me: Arc<OnceLock<Weak<HandlerFn>>> = Arc::default();
        let me2 = me.clone();
        let name = event.clone();
        let wrapper: ErasedHandler = Arc::new(move |socket: Socket, args, ack| {
            if fired.swap(true, Ordering::AcqRel) {
                return Box::pin(std::future::ready(()));
            }
            {
                let mut h = write(&socket.inner.handlers);
                let ours = match (h.events.get(&name), me2.get()) {
                    (Some(current), Some(me)) => Weak::ptr_eq(&Arc::downgrade(current), me),
                    _ => false,
                };
                if ours {
                    h.events.remove(&name);
                }
            }
            inner(socket, args, ack)
        });
        let _ = me.set(Arc::downgrade(&wrapper));
        write(&self.inner.handlers).events.insert(event, wrapper);
        self
    }

    /// A stream of every event the socket receives from now on, as (name, arguments), next to
    /// the handlers (which still run). Unbounded: read it, or drop it to stop listening.
    ///
    /// ```no_run
    /// # async fn f(socket: volley_client::Socket) {
    /// use futures_util::StreamExt;
    /// let mut events = socket.event_stream();
    /// while let Some((name, args)) = events.next().await {
    ///     println!("{name}: {:?}", args.get::<serde_json::Value>(0));
    /// }
    /// # }
    /// ```
    pub fn event_stream(&self) -> EventStream {
        let (tx, rx) = mpsc::unbounded_channel();
        write(&self.inner.handlers).streams.push(tx);
        EventStream { rx }
    }
}

/// The events a socket receives, from [`Socket::event_stream`]: each event's name and
/// arguments. It ends when the socket is gone (every handle and its manager dropped).
#[derive(Debug)]
pub struct EventStream {
    rx: mpsc::UnboundedReceiver<(String, RawArgs)>,
}

impl EventStream {
    /// The next event, or `None` once the socket is gone.
    pub async fn recv(&mut self) -> Option<(String, RawArgs)> {
        self.rx.recv().await
    }
}

impl Stream for EventStream {
    type Item = (String, RawArgs);

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}
