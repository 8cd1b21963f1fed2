//! Handler shapes, shared by the server and the client.
//!
//! An event handler is an async closure taking the socket first, then up to three
//! *extractors*, in any order: the event's arguments as [`Data<T>`] (deserialized) or
//! [`RawArgs`] (as sent), an [`AckSender`] to answer the peer's acknowledgement callback, and
//! [`State<T>`] (application state given to the builder):
//!
//! ```
//! use volley_core::{Data, RawArgs, State};
//!
//! #[derive(Clone)]
//! struct Db(&'static str);
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // On the server (`volley`):
//! use volley::{AckSender, Socket, SocketIo};
//! let io = SocketIo::builder().state(Db("main")).build();
//! io.of("/").on_connection(|socket: Socket| async move {
//!     socket
//!         .on("add", |_: Socket, Data((a, b)): Data<(i64, i64)>, ack: AckSender| async move {
//!             let _ = ack.send(&(a + b));
//!         })
//!         .on("db", |_: Socket, State(db): State<Db>, ack: AckSender| async move {
//!             let _ = ack.send(db.0);
//!         });
//! });
//! # let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! # let url = format!("http://{}", listener.local_addr()?);
//! # tokio::spawn(volley::serve(listener, io.service()));
//!
//! // On the client (`volley-client`): the same shapes, with the client's socket.
//! let client = volley_client::Manager::builder(&url).build()?.socket("/")
//!     .on("log", |_: volley_client::Socket, args: RawArgs| async move {
//!         println!("{} arguments", args.len());
//!     })
//!     .connect()
//!     .await?;
//! let sum: i64 = client.emit_args_with_ack("add", (1, 2)).await?;
//! assert_eq!(sum, 3);
//! let db: String = client.emit_args_with_ack("db", ()).await?;
//! assert_eq!(db, "main");
//! # Ok(())
//! # }
//! ```
//!
//! Handlers run where the packet is read up to their first `.await` that waits, then on a
//! task of their own ([`run_now_or_spawn`]). When arguments do not fit `Data<T>`, or a
//! `State<T>` was not given, the handler is not run (logged at debug level).

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ack::AckFuture;
use crate::args::{Args, ArgsDyn, Data, FromArgs, One, RawArgs, check_event_name};
use crate::error::{AckError, EmitError};
use crate::state::{State, StateMap};

mod slot;

pub use slot::{FutureSlot, run_slotted};

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// The reply to an event sent with an acknowledgement request, as received.
pub type AckReply = BoxFuture<Result<RawArgs, AckError>>;

/// What the shared handler and acknowledgement code needs from a socket type (the server's
/// and the client's `Socket` implement it).
pub trait SocketHandle: Clone + fmt::Debug + Send + Sync + 'static {
    /// Sends the acknowledgement `id` with `args`.
    fn send_ack(&self, id: u64, args: &dyn ArgsDyn) -> Result<(), EmitError>;

    /// Sends an event asking for an acknowledgement; the reply, waiting at most `timeout`
    /// (the socket's default when `None`). The event name is already checked.
    fn request_ack(&self, event: &str, args: &dyn ArgsDyn, timeout: Option<Duration>) -> AckReply;

    /// Emits an event asking for an acknowledgement and decodes the reply into `T`.
    fn emit_with_ack_dyn<T: FromArgs>(
        &self,
        event: &str,
        args: &dyn ArgsDyn,
        timeout: Option<Duration>,
    ) -> AckFuture<T> {
        if let Err(e) = check_event_name(event) {
            return AckFuture::ready(Err(e.into()));
        }
        AckFuture::from_reply(self.request_ack(event, args, timeout))
    }

    /// The application state handlers may extract with [`State<T>`].
    fn state(&self) -> Option<&StateMap> {
        None
    }
}

/// Answers an event the peer sent with an acknowledgement callback. Answering is optional
/// and happens at most once (`send` takes `self`). When the peer asked for no
/// acknowledgement, sending is a no-op.
#[derive(Debug)]
pub struct AckSender<S> {
    socket: S,
    id: Option<u64>,
}

impl<S: SocketHandle> AckSender<S> {
    /// The acknowledgement `id` of `socket` (`None`: none was asked for).
    pub fn new(socket: S, id: Option<u64>) -> Self {
        Self { socket, id }
    }

    /// Whether the peer asked for an acknowledgement.
    pub fn is_requested(&self) -> bool {
        self.id.is_some()
    }

    /// Acknowledges with one argument.
    pub fn send<T: Serialize + ?Sized>(self, data: &T) -> Result<(), EmitError> {
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

/// What an extractor reads from: one incoming event.
#[derive(Debug)]
pub struct EventContext<'a, S> {
    socket: &'a S,
    args: RawArgs,
    /// The acknowledgement the peer asked for, until an [`AckSender`] takes it.
    ack_id: Option<u64>,
    /// Whether an extractor after the current one reads the arguments too (then they are
    /// cloned rather than moved out).
    args_read_later: bool,
}

/// A handler argument taken from the incoming event (after the socket): [`Data<T>`],
/// [`RawArgs`], [`AckSender`], [`State<T>`].
pub trait FromEvent<S>: Sized + Send + 'static {
    /// Whether it reads the event's arguments.
    const READS_ARGS: bool = false;

    /// Extracts the value; `None` skips the handler.
    fn from_event(cx: &mut EventContext<'_, S>) -> Option<Self>;
}

impl<S, T: DeserializeOwned + Send + 'static> FromEvent<S> for Data<T> {
    const READS_ARGS: bool = true;

    fn from_event(cx: &mut EventContext<'_, S>) -> Option<Self> {
        match cx.args.parse() {
            Ok(v) => Some(Data(v)),
            Err(_) => {
                // Not the error's text: a deserializer quotes the client's data in it.
                tracing::debug!(
                    expected = std::any::type_name::<T>(),
                    "event arguments do not fit the handler"
                );
                None
            }
        }
    }
}

impl<S> FromEvent<S> for RawArgs {
    const READS_ARGS: bool = true;

    fn from_event(cx: &mut EventContext<'_, S>) -> Option<Self> {
        if cx.args_read_later {
            Some(cx.args.clone())
        } else {
            Some(std::mem::take(&mut cx.args))
        }
    }
}

impl<S: SocketHandle> FromEvent<S> for AckSender<S> {
    fn from_event(cx: &mut EventContext<'_, S>) -> Option<Self> {
        // Built here rather than before the handler runs: a handler that does not take one
        // costs no socket clone.
        Some(AckSender::new(cx.socket.clone(), cx.ack_id.take()))
    }
}

impl<S: SocketHandle, T: Clone + Send + Sync + 'static> FromEvent<S> for State<T> {
    fn from_event(cx: &mut EventContext<'_, S>) -> Option<Self> {
        let state = cx.socket.state().and_then(StateMap::get::<T>);
        if state.is_none() {
            tracing::debug!(
                state = std::any::type_name::<T>(),
                "a handler asks for state that was not given"
            );
        }
        state.map(State)
    }
}

/// Something that can handle an event: the closures of the [module docs](self). `M` only
/// tells the shapes apart.
pub trait EventHandler<S, M>: Send + Sync + 'static {
    /// The future of one run of the handler.
    type Future: Future<Output = ()> + Send + 'static;

    /// Runs the extractors and builds the handler's future for one event (`ack_id`: the
    /// acknowledgement the peer asked for); `None` when an extractor refused the event (the
    /// handler does not run).
    fn make(&self, socket: S, args: RawArgs, ack_id: Option<u64>) -> Option<Self::Future>;

    /// Runs the handler.
    fn call(&self, socket: S, args: RawArgs, ack: AckSender<S>) -> BoxFuture<()> {
        match self.make(socket, args, ack.id) {
            Some(fut) => Box::pin(fut),
            None => Box::pin(std::future::ready(())),
        }
    }
}

macro_rules! event_handler {
    ($($e:ident $v:ident),*) => {
        impl<S, F, Fut, $($e),*> EventHandler<S, ($($e,)*)> for F
        where
            S: SocketHandle,
            F: Fn(S, $($e),*) -> Fut + Send + Sync + 'static,
            Fut: Future<Output = ()> + Send + 'static,
            $($e: FromEvent<S>,)*
        {
            type Future = Fut;

            #[allow(unused_mut, unused_variables)]
            fn make(&self, socket: S, args: RawArgs, ack_id: Option<u64>) -> Option<Fut> {
                let mut cx = EventContext {
                    socket: &socket,
                    args,
                    ack_id,
                    args_read_later: false,
                };
                // How many extractors read the arguments: all but the last get a copy.
                let mut readers = 0usize $(+ usize::from($e::READS_ARGS))*;
                $(
                    readers -= usize::from($e::READS_ARGS);
                    cx.args_read_later = readers > 0;
                    let $v = $e::from_event(&mut cx)?;
                )*
                drop(cx);
                Some(self(socket, $($v),*))
            }
        }
    };
}

event_handler!();
event_handler!(A a);
event_handler!(A a, B b);
event_handler!(A a, B b, C c);

/// The erased form of an event handler, stored per event name.
pub type ErasedHandler<S> = Arc<dyn Fn(S, RawArgs, AckSender<S>) -> BoxFuture<()> + Send + Sync>;

/// Erases a handler's shape.
pub fn erase<S, M, H: EventHandler<S, M>>(h: H) -> ErasedHandler<S> {
    Arc::new(move |s, a, ack| h.call(s, a, ack))
}

/// The erased form of an event handler that builds its future in a reusable [`FutureSlot`]
/// instead of a new box per event (see [`run_slotted`]); `false` when an extractor refused
/// the event.
pub type SlottedHandler<S> =
    Arc<dyn Fn(S, RawArgs, Option<u64>, &mut FutureSlot) -> bool + Send + Sync>;

/// Erases a handler's shape, for [`run_slotted`].
pub fn erase_slotted<S, M, H: EventHandler<S, M>>(h: H) -> SlottedHandler<S> {
    Arc::new(move |s, a, ack_id, slot| match h.make(s, a, ack_id) {
        Some(fut) => {
            slot.0.set(fut);
            true
        }
        None => false,
    })
}

/// Runs a future up to its first pending point right here, and on a new task from there.
///
/// Handlers that do not wait (the common case: emit and return) cost no task and no wake-up,
/// and the synchronous part of every handler runs in the order the packets arrived, as in
/// Node. A panicking handler is contained: it is logged and the connection goes on.
pub fn run_now_or_spawn(mut fut: BoxFuture<()>) {
    if poll_once(fut.as_mut()) == Some(Poll::Pending) {
        tokio::spawn(fut);
    }
}

/// Polls a handler's future once, with a waker that does nothing; `None` when it panicked
/// (logged: the connection goes on). A future left pending must move to a new task, which
/// polls it again at once and registers its own waker, so no wake-up is lost.
#[inline]
fn poll_once(fut: Pin<&mut (dyn Future<Output = ()> + Send + '_)>) -> Option<Poll<()>> {
    let mut cx = Context::from_waker(Waker::noop());
    match std::panic::catch_unwind(AssertUnwindSafe(|| fut.poll(&mut cx))) {
        Ok(poll) => Some(poll),
        Err(_) => {
            tracing::error!("a handler panicked; the connection goes on");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use bytes::Bytes;

    use super::*;

    /// A socket that records what is sent.
    #[derive(Clone, Debug, Default)]
    struct Fake {
        sent: Arc<Mutex<Vec<String>>>,
        state: Option<Arc<StateMap>>,
    }

    impl SocketHandle for Fake {
        fn send_ack(&self, id: u64, args: &dyn ArgsDyn) -> Result<(), EmitError> {
            let raw = RawArgs::from_args(crate::Parser::Json, args)?;
            let text: Vec<_> = raw
                .args()
                .iter()
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            self.sent
                .lock()
                .unwrap()
                .push(format!("{id}:{}", text.join(",")));
            Ok(())
        }

        fn request_ack(&self, _: &str, _: &dyn ArgsDyn, _: Option<Duration>) -> AckReply {
            Box::pin(std::future::ready(Err(AckError::Timeout)))
        }

        fn state(&self) -> Option<&StateMap> {
            self.state.as_deref()
        }
    }

    fn on<M, H: EventHandler<Fake, M>>(h: H) -> ErasedHandler<Fake> {
        erase(h)
    }

    fn run(h: &ErasedHandler<Fake>, s: &Fake, args: &[&'static str], id: Option<u64>) {
        let args = args
            .iter()
            .map(|a| Bytes::from_static(a.as_bytes()))
            .collect();
        run_now_or_spawn(h(
            s.clone(),
            RawArgs::new(args, vec![]),
            AckSender::new(s.clone(), id),
        ));
    }

    fn sent(s: &Fake) -> Vec<String> {
        std::mem::take(&mut s.sent.lock().unwrap())
    }

    #[test]
    fn shapes() {
        let s = Fake::default();
        let h = on(
            |s: Fake, Data((a, b)): Data<(i64, i64)>, ack: AckSender<Fake>| async move {
                let _ = ack.send(&(a + b));
                drop(s);
            },
        );
        run(&h, &s, &["1", "2"], Some(7));
        assert_eq!(sent(&s), ["7:3"]);
        // Arguments that do not fit: the handler does not run.
        run(&h, &s, &["\"x\""], Some(8));
        assert!(sent(&s).is_empty());
        // No acknowledgement asked: sending is a no-op.
        run(&h, &s, &["1", "1"], None);
        assert!(sent(&s).is_empty());

        let h = on(|_: Fake, raw: RawArgs, ack: AckSender<Fake>| async move {
            let _ = ack.send_args(raw);
        });
        run(&h, &s, &["1", "{\"a\":2}"], Some(1));
        assert_eq!(sent(&s), ["1:1,{\"a\":2}"]);

        let h = on(|_: Fake, ack: AckSender<Fake>| async move {
            assert!(ack.is_requested());
            let _ = ack.send_args(());
        });
        run(&h, &s, &[], Some(2));
        assert_eq!(sent(&s), ["2:"]);

        // Both forms of the arguments at once, in either order.
        let h = on(
            |_: Fake, raw: RawArgs, Data(x): Data<u8>, ack: AckSender<Fake>| async move {
                let _ = ack.send(&(raw.len(), x));
            },
        );
        run(&h, &s, &["4"], Some(5));
        assert_eq!(sent(&s), ["5:[1,4]"]);
        let h = on(
            |_: Fake, Data(x): Data<u8>, raw: RawArgs, ack: AckSender<Fake>| async move {
                let _ = ack.send(&(raw.len(), x));
            },
        );
        run(&h, &s, &["6"], Some(6));
        assert_eq!(sent(&s), ["6:[1,6]"]);

        // Any order, and the socket alone.
        let h = on(
            |_: Fake, ack: AckSender<Fake>, Data(x): Data<u8>| async move {
                let _ = ack.send(&x);
            },
        );
        run(&h, &s, &["9"], Some(3));
        assert_eq!(sent(&s), ["3:9"]);
        let h = on(|s: Fake| async move {
            let _ = s.send_ack(4, &());
        });
        run(&h, &s, &["ignored"], None);
        assert_eq!(sent(&s), ["4:"]);
    }

    #[test]
    fn state() {
        let mut map = StateMap::default();
        map.insert(Arc::new(String::from("db")));
        let s = Fake {
            state: Some(Arc::new(map)),
            ..Fake::default()
        };
        let h = on(
            |_: Fake, State(db): State<Arc<String>>, ack: AckSender<Fake>| async move {
                let _ = ack.send(db.as_str());
            },
        );
        run(&h, &s, &[], Some(1));
        assert_eq!(sent(&s), ["1:\"db\""]);
        // Missing state: the handler does not run.
        let h = on(
            |_: Fake, State(_): State<u32>, ack: AckSender<Fake>| async move {
                let _ = ack.send(&1);
            },
        );
        run(&h, &s, &[], Some(2));
        assert!(sent(&s).is_empty());
    }

    fn raw(args: &[&'static str]) -> RawArgs {
        let args = args
            .iter()
            .map(|a| Bytes::from_static(a.as_bytes()))
            .collect();
        RawArgs::new(args, vec![])
    }

    #[tokio::test]
    async fn slotted_handlers_reuse_the_slot_wait_on_a_task_and_survive_panics() {
        let s = Fake::default();
        let (go, wait_for_go) = tokio::sync::oneshot::channel::<()>();
        let wait_for_go = Arc::new(Mutex::new(Some(wait_for_go)));
        let (done, mut finished) = tokio::sync::mpsc::unbounded_channel();
        let waits = erase_slotted(move |_: Fake, ack: AckSender<Fake>| {
            let rx = wait_for_go.lock().unwrap().take();
            let done = done.clone();
            async move {
                if let Some(rx) = rx {
                    let _ = rx.await;
                }
                let _ = ack.send("late");
                let _ = done.send(());
            }
        });
        let add = erase_slotted(
            |_: Fake, Data((a, b)): Data<(i64, i64)>, ack: AckSender<Fake>| async move {
                let _ = ack.send(&(a + b));
            },
        );
        let boom = erase_slotted(|_: Fake| async move { panic!("boom") });
        // Two senders: only the first answers the acknowledgement the peer asked for.
        let two = erase_slotted(
            |_: Fake, a: AckSender<Fake>, b: AckSender<Fake>| async move {
                assert!(a.is_requested() && !b.is_requested());
                let _ = a.send(&1);
            },
        );
        // Waits: moves to a task, its future out of the slot.
        run_slotted(&waits, s.clone(), raw(&[]), Some(1), None);
        run_slotted(&add, s.clone(), raw(&["1", "2"]), Some(2), None);
        run_slotted(&boom, s.clone(), raw(&[]), None, None);
        run_slotted(&add, s.clone(), raw(&["3", "4"]), Some(3), None);
        // Refused by its extractor: not run.
        run_slotted(&add, s.clone(), raw(&["\"x\""]), Some(4), None);
        run_slotted(&two, s.clone(), raw(&[]), Some(5), None);
        // With a span (none is enabled here, but the boxed path runs the same).
        run_slotted(
            &add,
            s.clone(),
            raw(&["5", "6"]),
            Some(6),
            Some(tracing::Span::none()),
        );
        assert_eq!(sent(&s), ["2:3", "3:7", "5:1", "6:11"]);
        go.send(()).unwrap();
        finished.recv().await.unwrap();
        assert_eq!(sent(&s), ["1:\"late\""]);
    }

    #[test]
    fn panics_are_contained() {
        let s = Fake::default();
        let h = on(|_: Fake| async move { panic!("boom") });
        run(&h, &s, &[], None);
    }
}
