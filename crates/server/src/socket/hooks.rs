//! A socket's hooks: catch-all handlers, outgoing observers, packet middleware and their
//! error handlers (Node's `onAny`, `onAnyOutgoing`, `use`, `error`).

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use volley_proto::socket::EventName;

use super::Socket;
use crate::handler::{BoxFuture, run_now_or_spawn};
use crate::{ArgsDyn, RawArgs};

pub(super) type AnyHandler = Arc<dyn Fn(Socket, String, RawArgs) -> BoxFuture<()> + Send + Sync>;
type OutgoingObserver = Arc<dyn Fn(&Socket, &str, &RawArgs) + Send + Sync>;
type PacketMiddleware =
    Arc<dyn Fn(&Socket, &str, &mut RawArgs) -> Result<(), PacketError> + Send + Sync>;
type ErrorHandler = Arc<dyn Fn(&Socket, &PacketError) + Send + Sync>;

/// Why a packet middleware refused an incoming event; handed to the socket's
/// [`on_error`](Socket::on_error) handlers (as Node emits `error` on the socket).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketError(pub String);

impl fmt::Display for PacketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PacketError {}

#[derive(Default)]
pub(super) struct Hooks {
    pub(super) any: Vec<AnyHandler>,
    pub(super) any_outgoing: Vec<OutgoingObserver>,
    pub(super) packet_middleware: Vec<PacketMiddleware>,
    pub(super) on_error: Vec<ErrorHandler>,
}

impl Socket {
    pub(super) fn add_hook(&self, f: impl FnOnce(&mut Hooks)) {
        f(&mut self.inner.hooks.write().unwrap_or_else(|p| p.into_inner()));
        self.inner.has_hooks.store(true, Ordering::Release);
    }

    /// Registers a catch-all handler, run for every incoming event (before the event's own
    /// handler) with the event name and its arguments, as Node's `socket.onAny`.
    pub fn on_any<F, Fut>(&self, handler: F)
    where
        F: Fn(Socket, String, RawArgs) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let h: AnyHandler = Arc::new(move |s, e, a| Box::pin(handler(s, e, a)));
        self.add_hook(|hooks| hooks.any.push(h));
    }

    /// Registers an observer of every event this socket emits (not broadcasts), as Node's
    /// `socket.onAnyOutgoing`. It runs synchronously before the packet is queued.
    pub fn on_any_outgoing<F>(&self, observer: F)
    where
        F: Fn(&Socket, &str, &RawArgs) + Send + Sync + 'static,
    {
        self.add_hook(|hooks| hooks.any_outgoing.push(Arc::new(observer)));
    }

    /// Adds a packet middleware, run in order for every incoming event before any handler,
    /// as Node's `socket.use`. It may change the arguments; an `Err` drops the event and goes
    /// to the [`on_error`](Self::on_error) handlers.
    pub fn use_packet<F>(&self, middleware: F)
    where
        F: Fn(&Socket, &str, &mut RawArgs) -> Result<(), PacketError> + Send + Sync + 'static,
    {
        self.add_hook(|hooks| hooks.packet_middleware.push(Arc::new(middleware)));
    }

    /// Registers a handler for errors of packet middleware.
    pub fn on_error<F>(&self, handler: F)
    where
        F: Fn(&Socket, &PacketError) + Send + Sync + 'static,
    {
        self.add_hook(|hooks| hooks.on_error.push(Arc::new(handler)));
    }

    /// Shows an outgoing event to the `on_any_outgoing` observers, if there are any. The
    /// check for hooks is inlined into the caller: most sockets have none.
    #[inline]
    pub(super) fn observe_outgoing(&self, event: &str, args: &dyn ArgsDyn) {
        if self.inner.has_hooks.load(Ordering::Acquire) {
            self.observe_outgoing_slow(event, args);
        }
    }

    #[cold]
    #[inline(never)]
    fn observe_outgoing_slow(&self, event: &str, args: &dyn ArgsDyn) {
        let observers = self
            .inner
            .hooks
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .any_outgoing
            .clone();
        if observers.is_empty() {
            return;
        }
        if let Ok(raw) = RawArgs::from_args(self.inner.ns.parser, args) {
            for o in observers {
                o(self, event, &raw);
            }
        }
    }

    /// Runs the packet middleware and the catch-all handlers of an incoming event; `false`
    /// when a middleware refused it. The check for hooks is inlined into the caller.
    #[inline]
    pub(super) fn run_hooks(&self, name: &EventName<'_>, args: &mut RawArgs) -> bool {
        !self.inner.has_hooks.load(Ordering::Acquire) || self.run_hooks_slow(name.as_str(), args)
    }

    #[cold]
    #[inline(never)]
    fn run_hooks_slow(&self, name: &str, args: &mut RawArgs) -> bool {
        let (middleware, any, on_error) = {
            let hooks = self.inner.hooks.read().unwrap_or_else(|p| p.into_inner());
            (
                hooks.packet_middleware.clone(),
                hooks.any.clone(),
                hooks.on_error.clone(),
            )
        };
        for m in middleware {
            if let Err(e) = m(self, name, args) {
                for h in &on_error {
                    h(self, &e);
                }
                return false;
            }
        }
        for h in any {
            run_now_or_spawn(h(self.clone(), name.to_owned(), args.clone()));
        }
        true
    }
}
