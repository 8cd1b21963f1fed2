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
    /// For any other reason, the snapshot an adapter kept while it was connected is
    /// forgotten.
    fn persist_session(&self, reason: DisconnectReason) {
        let Some(session) = self.session() else {
            return;
        };
        if !reason.is_recoverable() {
            self.inner.ns.adapter.session_ended(self.id(), &session.pid);
            return;
        }
        if let Err(e) = self.inner.ns.adapter.persist_session(session) {
            tracing::debug!(error = %e, "session not persisted");
        }
    }

    /// The session as it would be persisted now, when recovery is on.
    pub(crate) fn session(&self) -> Option<Session> {
        let pid = self.pid()?;
        self.inner.ns.recovery?;
        Some(Session {
            id: self.id().clone(),
            pid: pid.to_owned(),
            rooms: self.rooms(),
            data: self.data_value(),
            missed_packets: Vec::new(),
        })
    }

    /// Connection state recovery: tells the adapter what the connected socket's session is
    /// now, so that one keeping sessions outside this process keeps it up to date.
    pub(crate) fn session_live(&self) {
        if !self.connected() {
            return;
        }
        if let Some(session) = self.session() {
            self.inner.ns.adapter.session_live(&session);
        }
    }
}
