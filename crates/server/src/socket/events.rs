//! A socket's event handlers: registered by `on`, looked up for every incoming event.
//!
//! The table is copied on write: `on` and `off` replace it (in place when nobody else holds
//! it) and move a generation counter, and the connection's task keeps the current table in
//! an [`EventsCopy`], which it reads without the lock nor a reference count update as long
//! as the generation has not moved. An event costs one atomic load instead of a read lock,
//! an unlock and a handler's `Arc` clone and drop.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use volley_core::handler::{erase_slotted, run_slotted};

use super::Socket;
use crate::RawArgs;
use crate::handler::{ErasedHandler, EventHandler};

/// Handlers by event name. The names are the server's own, so a fast hasher will do.
type EventMap = HashMap<String, ErasedHandler, foldhash::fast::RandomState>;

/// A socket's handler table (see the module docs).
#[derive(Default)]
pub(super) struct Events {
    map: RwLock<Arc<EventMap>>,
    /// Moves, with the table locked, after every change of it.
    generation: AtomicU64,
}

impl Events {
    fn change(&self, f: impl FnOnce(&mut EventMap)) {
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        f(Arc::make_mut(&mut map));
        self.generation.fetch_add(1, Ordering::Release);
    }
}

/// The connection task's copy of one socket's handler table (see the module docs).
#[derive(Default)]
pub(crate) struct EventsCopy {
    generation: u64,
    map: Option<Arc<EventMap>>,
}

impl EventsCopy {
    /// The current table. The generation is read before the table: a table taken after a
    /// change is at least as new as the generation read, so a later change always shows.
    #[inline]
    fn current(&mut self, events: &Events) -> &EventMap {
        let generation = events.generation.load(Ordering::Acquire);
        if self.map.is_none() || generation != self.generation {
            let map = events.map.read().unwrap_or_else(|p| p.into_inner()).clone();
            self.map = Some(map);
            self.generation = generation;
        }
        self.map.get_or_insert_default()
    }
}

impl Socket {
    /// Registers the handler of an event; a later registration for the same name replaces it.
    /// See [`handler`](crate::handler) for the shapes. Chainable.
    pub fn on<H, M>(&self, event: impl Into<String>, handler: H) -> &Self
    where
        H: EventHandler<Socket, M>,
    {
        let handler = erase_slotted(handler);
        self.inner.events.change(|map| {
            map.insert(event.into(), handler);
        });
        self
    }

    /// Removes the handler of an event.
    pub fn off(&self, event: &str) {
        self.inner.events.change(|map| {
            map.remove(event);
        });
    }

    /// Delivers an incoming event to its handler, found in the connection's `copy` of the
    /// table.
    pub(crate) fn dispatch_event(
        &self,
        copy: &mut EventsCopy,
        name: &str,
        mut args: RawArgs,
        ack_id: Option<u64>,
    ) {
        if !self.run_hooks(name, &mut args) {
            return;
        }
        // The handler runs while the copy holds the table: one that changes the table (`on`,
        // `off`) changes a table of its own, the next event sees it.
        match copy.current(&self.inner.events).get(name) {
            Some(h) => {
                // The event's name and ids only: never its arguments.
                let span = tracing::debug_span!(
                    "volley.event",
                    ns = self.namespace(),
                    socket = self.id().as_str(),
                    event = name,
                    ack = ack_id.is_some(),
                );
                // No subscriber wants it: no wrapper, and the handler's future goes in the
                // thread's reusable slot.
                let span = (!span.is_disabled()).then_some(span);
                run_slotted(h, self.clone(), args, ack_id, span);
            }
            None => tracing::trace!(socket = self.id().as_str(), event = name, "no handler"),
        }
    }
}
