//! The session registry: sid → what the HTTP side needs to reach a session.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::config::TransportKind;
use crate::metrics::{Counters, EngineMetrics};
use crate::socket::Shared;

/// One session as the HTTP handlers see it.
#[derive(Clone)]
pub(crate) struct Entry {
    pub(crate) shared: Arc<Shared>,
}

/// sid → session. The only place sessions are inserted and removed.
#[derive(Default)]
pub(crate) struct Registry {
    map: Mutex<HashMap<Arc<str>, Entry>>,
}

impl Registry {
    pub(crate) fn lock(&self) -> MutexGuard<'_, HashMap<Arc<str>, Entry>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn get(&self, sid: &str) -> Option<Entry> {
        self.lock().get(sid).cloned()
    }

    /// Forgets an ended session and moves its traffic into the engine's totals, under the
    /// registry's lock (see [`Counters::retired`]). Called once per session, by its driver.
    pub(crate) fn retire(&self, shared: &Shared, counters: &Counters) {
        let mut map = self.lock();
        // `Engine::close` may have drained the map already; the session is counted anyway.
        if map
            .get(&shared.sid)
            .is_some_and(|e| std::ptr::eq(&*e.shared, shared))
        {
            map.remove(&shared.sid);
        }
        counters.retired.add(&shared.traffic);
        counters.closed.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// Fills in what the open sessions hold: how many there are, on which transport, their
    /// backlogs and traffic. One lock, a few atomic loads per session. The traffic and closes of ended sessions are read under the same lock, so every
    /// session is counted exactly once.
    pub(crate) fn add_sessions_to(&self, m: &mut EngineMetrics, counters: &Counters) {
        let map = self.lock();
        m.sessions_open = map.len();
        counters.retired.add_to(m);
        m.sessions_closed_total = counters.closed.load(Ordering::Relaxed);
        for entry in map.values() {
            entry.shared.traffic.add_to(m);
            if entry.shared.transport() == TransportKind::WebSocket {
                m.websocket_sessions += 1;
            } else {
                m.polling_sessions += 1;
            }
            let bytes = entry.shared.pending_bytes();
            m.queued_frames += entry.shared.pending_frames();
            m.queued_bytes += bytes;
            m.max_session_queued_bytes = m.max_session_queued_bytes.max(bytes);
        }
    }
}
