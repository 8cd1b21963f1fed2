//! The session registry: sid → what the HTTP side needs to reach a session.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::mpsc;

use crate::command::Command;
use crate::metrics::EngineMetrics;
use crate::socket::Shared;

/// One session as the HTTP handlers see it.
#[derive(Clone)]
pub(crate) struct Entry {
    pub(crate) commands: mpsc::Sender<Command>,
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

    pub(crate) fn remove(&self, sid: &str) {
        self.lock().remove(sid);
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// Fills in what the open sessions hold: how many there are and their backlogs. One lock,
    /// a few atomic loads per session.
    pub(crate) fn add_sessions_to(&self, m: &mut EngineMetrics) {
        let map = self.lock();
        m.sessions_open = map.len();
        for entry in map.values() {
            let bytes = entry.shared.pending_bytes();
            m.queued_frames += entry.shared.pending_frames();
            m.queued_bytes += bytes;
            m.max_session_queued_bytes = m.max_session_queued_bytes.max(bytes);
        }
    }
}
