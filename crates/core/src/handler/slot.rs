//! A handler's future built in a reusable allocation: one box per thread rather than one per
//! event.

use std::cell::Cell;
use std::task::Poll;

use tokio_util::sync::ReusableBoxFuture;
use tracing::Instrument as _;

use super::{SlottedHandler, poll_once, run_now_or_spawn};
use crate::args::RawArgs;

/// Where a [`SlottedHandler`] builds its future: a box reused as long as the next future
/// has the same size and alignment as the last (the same handler, typically), so a handler
/// that finishes without waiting costs no allocation.
pub struct FutureSlot(pub(super) ReusableBoxFuture<'static, ()>);

impl std::fmt::Debug for FutureSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FutureSlot")
    }
}

impl FutureSlot {
    /// An empty slot (a zero-sized future, so no allocation).
    fn empty() -> Self {
        Self(ReusableBoxFuture::new(std::future::pending()))
    }

    /// Moves the future out, leaving the slot empty.
    fn take(&mut self) -> ReusableBoxFuture<'static, ()> {
        std::mem::replace(&mut self.0, ReusableBoxFuture::new(std::future::pending()))
    }

    /// Polls the future once here; one that waits moves to a task of its own, as in
    /// [`run_now_or_spawn`].
    fn run(&mut self) {
        match poll_once(self.0.get_pin()) {
            // The finished future stays in the slot until the next one replaces it: an async
            // handler dropped everything it held when it returned.
            Some(Poll::Ready(())) => {}
            Some(Poll::Pending) => {
                tokio::spawn(self.take());
            }
            // A panicked future is not polled again.
            None => *self = Self::empty(),
        }
    }
}

thread_local! {
    /// This thread's slot, between two handlers. A handler that runs another one from its
    /// synchronous part finds none and gets a fresh one.
    static SLOT: Cell<Option<FutureSlot>> = const { Cell::new(None) };
}

/// Runs a handler for one event as [`run_now_or_spawn`] does (up to its first pending point
/// here, then on a task of its own), with its future built in this thread's [`FutureSlot`]
/// rather than in a new box. `span`, when given, is entered each time the handler is polled
/// (the handler's future is then boxed, as before).
pub fn run_slotted<S>(
    handler: &SlottedHandler<S>,
    socket: S,
    args: RawArgs,
    ack_id: Option<u64>,
    span: Option<tracing::Span>,
) {
    SLOT.with(|cell| {
        let mut slot = cell.take().unwrap_or_else(FutureSlot::empty);
        if handler(socket, args, ack_id, &mut slot) {
            match span {
                None => slot.run(),
                Some(span) => run_now_or_spawn(Box::pin(slot.take().instrument(span))),
            }
        }
        // A handler that ran another one from its synchronous part left that one's slot
        // here; it goes, this one stays.
        cell.set(Some(slot));
    });
}
