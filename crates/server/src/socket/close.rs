//! How a socket leaves: the disconnect sequence, and the session kept for recovery.

use std::sync::atomic::Ordering;

use super::{Socket, lock};
use crate::adapter::Session;
use crate::error::DisconnectReason;
use crate::handler::run_now_or_spawn;

impl Socket {
    /// Runs the disconnect sequence once: `disconnecting` handlers, leave the namespace,
    /// fail pending acks, `disconnect` handlers.
    pub(crate) fn close(&self, reason: DisconnectReason) {
        if self.inner.disconnected.swap(true, Ordering::AcqRel) {
            return;
        }
        let was_connected = self.inner.connected.load(Ordering::Acquire);
        if was_connected {
            for h in std::mem::take(&mut *lock(&self.inner.on_disconnecting)) {
                run_now_or_spawn(h(self.clone(), reason));
            }
            self.persist_session(reason);
        }
        self.inner.ns.adapter.del_all(self.id());
        self.inner.ns.remove_socket(self);
        self.inner.conn.remove_socket(self);
        // Dropping the senders fails every pending `emit_with_ack` with `Disconnected`.
        lock(&self.inner.acks).pending.clear();
        if was_connected {
            let observers = &self.inner.ns.observers;
            observers.each(|o| o.socket_disconnected(self, reason));
            for h in std::mem::take(&mut *lock(&self.inner.on_disconnect)) {
                run_now_or_spawn(h(self.clone(), reason));
            }
        }
    }

    /// Connection state recovery: keeps the session of a socket that lost its connection
    /// (not one the client or the server disconnected on purpose), as Node's `_onclose`.
    fn persist_session(&self, reason: DisconnectReason) {
        let Some(pid) = self.pid() else {
            return;
        };
        if self.inner.ns.recovery.is_none() || !reason.is_recoverable() {
            return;
        }
        let session = Session {
            id: self.id().clone(),
            pid: pid.to_owned(),
            rooms: self.rooms(),
            data: self.data_value(),
            missed_packets: Vec::new(),
        };
        if let Err(e) = self.inner.ns.adapter.persist_session(session) {
            tracing::debug!(error = %e, "session not persisted");
        }
    }
}
