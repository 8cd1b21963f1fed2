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
use volley_proto::socket::EventName;

use super::Socket;
use crate::RawArgs;
use crate::handler::{ErasedHandler, EventHandler};
use crate::short_name::ShortName;

/// Handlers by event name. The names are the server's own, so a fast hasher will do.
type EventMap = HashMap<String, ErasedHandler, foldhash::fast::RandomState>;

/// A socket's handler table (see the module docs).
///
/// `repr(C)`: the generation, read for every event, first (see [`Socket`]'s fields).
#[derive(Default)]
#[repr(C)]
pub(super) struct Events {
    /// Moves, with the table locked, after every change of it.
    generation: AtomicU64,
    map: RwLock<Arc<EventMap>>,
}

impl Events {
    fn change(&self, f: impl FnOnce(&mut EventMap)) {
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        f(Arc::make_mut(&mut map));
        self.generation.fetch_add(1, Ordering::Release);
    }
}

/// How many handlers the connection's copy keeps in a flat table of its own; a socket with
/// more, or with a name longer than [`ShortName::MAX`], is looked up in the shared hash table.
/// Eight entries are four cache lines, what a hash table lookup costs when cold; the busiest
/// event is in the first entry.
const FLAT: usize = 8;

/// The connection task's copy of one socket's handler table (see the module docs).
///
/// A socket's few handlers are kept in the copy itself, each under its name packed in 16
/// bytes, so that finding one touches only the copy: a hash table behind an `Arc` costs three
/// or four more cache lines per event (the `Arc`, its control bytes, the bucket, the key's
/// heap bytes), all cold when many connections take turns. `repr(C)`: the first entry right
/// after the generation; in the connection's copy of the socket (`SocketCopy`) they fill its
/// first 64 bytes with the namespace's name and the socket.
#[derive(Default)]
#[repr(C)]
pub(crate) struct EventsCopy {
    /// The generation of the table copied. [`Events`] starts at 0 with no handlers, and any
    /// change moves it, so the empty default copy is the table as of generation 0.
    generation: u64,
    /// Filled from the front, or empty when `map` is used instead. An event found in another
    /// slot than the first one moves there, so that a socket's busiest event comes first.
    flat: [FlatEntry; FLAT],
    /// The table when it does not fit in `flat`.
    map: Option<Arc<EventMap>>,
}

#[repr(C)]
struct FlatEntry {
    /// [`ShortName::NONE`] in an empty slot.
    name: ShortName,
    handler: Option<ErasedHandler>,
}

impl Default for FlatEntry {
    fn default() -> Self {
        Self {
            name: ShortName::NONE,
            handler: None,
        }
    }
}

impl EventsCopy {
    /// Where the first flat entry ends: a layout test checks that it ends in the first 64
    /// bytes of a `SocketCopy`.
    #[cfg(test)]
    pub(crate) const FIRST_ENTRY_END: usize =
        std::mem::offset_of!(Self, flat) + std::mem::size_of::<FlatEntry>();

    /// The handler of the event `name` in the current table. The generation is read before
    /// the table: a table taken after a change is at least as new as the generation read, so
    /// a later change always shows.
    #[inline]
    fn get(&mut self, events: &Events, name: &[u8]) -> Option<&ErasedHandler> {
        let generation = events.generation.load(Ordering::Acquire);
        if generation != self.generation {
            self.refresh(events, generation);
        }
        if let Some(key) = ShortName::new(name)
            && let Some(i) = self.find_flat(key)
        {
            if i > 0 {
                self.flat.swap(0, i);
            }
            return self.flat[0].handler.as_ref();
        }
        // The names are `String`s: bytes that are not UTF-8 name no handler.
        self.map.as_ref()?.get(std::str::from_utf8(name).ok()?)
    }

    /// The slot of `key` in `flat`. The scan stops at the first empty slot (checked after the
    /// name, so that a hit in the first slot costs one comparison): an unknown name, or a
    /// table kept in `map` (whose `flat` is empty), reads no more of `flat` than it must.
    #[inline]
    fn find_flat(&self, key: ShortName) -> Option<usize> {
        for (i, e) in self.flat.iter().enumerate() {
            if e.name == key {
                return Some(i);
            }
            if e.name == ShortName::NONE {
                return None;
            }
        }
        None
    }

    #[cold]
    #[inline(never)]
    fn refresh(&mut self, events: &Events, generation: u64) {
        let map = events.map.read().unwrap_or_else(|p| p.into_inner()).clone();
        *self = Self {
            generation,
            ..Self::default()
        };
        let short: Option<Vec<_>> = map
            .iter()
            .map(|(name, h)| Some((ShortName::new(name.as_bytes())?, h)))
            .collect();
        match short {
            Some(short) if short.len() <= FLAT => {
                for (slot, (name, h)) in self.flat.iter_mut().zip(short) {
                    *slot = FlatEntry {
                        name,
                        handler: Some(h.clone()),
                    };
                }
            }
            _ => self.map = Some(map),
        }
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
        name: &EventName<'_>,
        mut args: RawArgs,
        ack_id: Option<u64>,
    ) {
        if !self.run_hooks(name, &mut args) {
            return;
        }
        // The handler runs while the copy holds the table: one that changes the table (`on`,
        // `off`) changes a table of its own, the next event sees it.
        match copy.get(&self.inner.events, name.as_bytes()) {
            Some(h) => {
                // The event's name and ids only: never its arguments.
                let span = tracing::debug_span!(
                    "volley.event",
                    ns = self.namespace(),
                    socket = self.id().as_str(),
                    event = name.as_str(),
                    ack = ack_id.is_some(),
                );
                // No subscriber wants it: no wrapper, and the handler's future goes in the
                // thread's reusable slot.
                let span = (!span.is_disabled()).then_some(span);
                run_slotted(h, self.clone(), args, ack_id, span);
            }
            None => tracing::trace!(
                socket = self.id().as_str(),
                event = name.as_str(),
                "no handler"
            ),
        }
    }
}
