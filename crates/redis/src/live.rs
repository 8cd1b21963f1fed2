//! Streams mode with recovery: the sessions of *connected* sockets, kept in Redis so that a
//! client whose server died (SIGKILL, power loss) recovers on any other server.
//!
//! Node's adapter writes a session only when its socket disconnects; Volley also keeps a
//! snapshot while the socket is connected, at the same key and in the same encoding
//! (`sio:session:<pid>`, base64 of the MessagePack `{sid, pid, rooms, data}`), plus a
//! `lease` key naming this connection of the socket (Node ignores it). It is written when
//! the socket connects and when its rooms or data change (coalesced: one write per socket
//! per [`COALESCE`] at most), and written again with the recovery window as TTL every
//! quarter window, so that it outlives a dead server by three quarters of the window to the
//! whole window, never more.
//!
//! A connection's first write is a plain `SET` (its pid is new, or a restore just took the
//! key); every later one is conditional (a Lua script): it replaces the key only when it
//! still holds this connection's last snapshot, or nothing (Redis lost it). A restore takes
//! the key (`GET` + `DEL`), and the restored socket writes its own snapshot with a new
//! lease, so a late write of the old connection (its server had not noticed the client
//! left) cannot overwrite the new one. A manual or server-side disconnect deletes the snapshot, only if
//! it is still this connection's.
//!
//! Cost: one write when a socket connects, one per change burst, and one per quarter window
//! (batched: [`REFRESH_BATCH`] sockets per `EVAL`).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::sync::Notify;
use volley_core::adapter::{Adapter as _, Session};

use crate::adapter::RedisAdapter;
use crate::message::encode_session_leased;

/// Sets `KEYS[1]` to `ARGV[2]` (TTL `ARGV[3]` ms) if it holds `ARGV[1]` or nothing.
const REPLACE: &str = "local c = redis.call('GET', KEYS[1]) \
if c == false or c == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1 end \
return 0";

/// Deletes `KEYS[1]` if it holds `ARGV[1]`.
const DELETE: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
return redis.call('DEL', KEYS[1]) end return 0";

/// For each `KEYS[i]`: sets it again to `ARGV[i + 1]` with TTL `ARGV[1]` ms if it holds
/// that value or nothing.
const REFRESH: &str = "for i, k in ipairs(KEYS) do local v = ARGV[i + 1] \
local c = redis.call('GET', k) \
if c == false or c == v then redis.call('SET', k, v, 'PX', ARGV[1]) end end \
return #KEYS";

/// Changes closer together than this are written once.
pub(crate) const COALESCE: Duration = Duration::from_millis(100);
/// Snapshots refreshed per `EVAL`.
pub(crate) const REFRESH_BATCH: usize = 200;

/// The snapshots of one namespace's connected sockets.
#[derive(Default)]
pub(crate) struct Live {
    state: Mutex<State>,
    wake: Notify,
    leases: AtomicU64,
}

#[derive(Default)]
struct State {
    sockets: HashMap<String, Entry>,
    /// Sockets whose snapshot may be out of date.
    dirty: HashSet<String>,
}

struct Entry {
    pid: String,
    data: serde_json::Value,
    lease: String,
    /// The last snapshot queued for Redis.
    written: Option<String>,
}

impl Live {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn mark(&self, id: &str) {
        let mut st = self.lock();
        if st.sockets.contains_key(id) {
            st.dirty.insert(id.to_owned());
            drop(st);
            self.wake.notify_one();
        }
    }

    fn mark_all(&self) {
        let mut st = self.lock();
        let ids: Vec<String> = st.sockets.keys().cloned().collect();
        st.dirty.extend(ids);
        drop(st);
        self.wake.notify_one();
    }

    /// Forgets socket `id`'s connection; its last snapshot, if any was written.
    fn take(&self, id: &str) -> Option<(String, Option<String>)> {
        let mut st = self.lock();
        st.dirty.remove(id);
        st.sockets.remove(id).map(|e| (e.pid, e.written))
    }
}

/// Writes snapshot `new` at `key`: unconditionally for the first one of a connection (the
/// key was free, or a restore took it), else if the key holds `old` or nothing.
fn replace(key: &str, old: Option<&str>, new: &str, ttl: u64) -> redis::Cmd {
    let Some(old) = old else {
        let mut cmd = redis::cmd("SET");
        cmd.arg(key).arg(new).arg("PX").arg(ttl);
        return cmd;
    };
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(REPLACE).arg(1).arg(key).arg(old).arg(new).arg(ttl);
    cmd
}

impl RedisAdapter {
    fn ttl_ms(&self) -> u64 {
        self.recovery
            .map(|r| r.max_disconnection_duration.as_millis() as u64)
            .unwrap_or_default()
    }

    /// A connected socket's session as it is now (the server calls this on connect and
    /// when its data changes); written to Redis soon.
    pub(crate) fn live_update(&self, session: &Session) {
        let Some(live) = &self.live else {
            return;
        };
        let mut st = live.lock();
        let id = session.id.as_str();
        match st.sockets.get_mut(id) {
            Some(e) if e.pid == session.pid => e.data = session.data.clone(),
            _ => {
                let n = live.leases.fetch_add(1, Ordering::Relaxed);
                let entry = Entry {
                    pid: session.pid.clone(),
                    data: session.data.clone(),
                    lease: format!("{}-{n}", self.shared.uid),
                    written: None,
                };
                st.sockets.insert(id.to_owned(), entry);
            }
        }
        st.dirty.insert(id.to_owned());
        drop(st);
        live.wake.notify_one();
    }

    /// Socket `id` joined or left rooms.
    pub(crate) fn live_rooms_changed(&self, id: &str) {
        if let Some(live) = &self.live {
            live.mark(id);
        }
    }

    /// Rooms changed for sockets chosen by a filter (`socketsJoin`, `socketsLeave`).
    pub(crate) fn live_all_rooms_changed(&self) {
        if let Some(live) = &self.live {
            live.mark_all();
        }
    }

    /// Socket `id` left for good: deletes its snapshot if it is still this connection's.
    pub(crate) fn live_end(&self, id: &str) {
        let Some((pid, Some(written))) = self.live.as_ref().and_then(|l| l.take(id)) else {
            return;
        };
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(DELETE)
            .arg(1)
            .arg(self.session_key(&pid))
            .arg(written);
        if let Err(e) = self.shared.link.send(cmd) {
            tracing::debug!(error = %e, "redis adapter: session snapshot not deleted");
        }
    }

    /// Socket `id` is being taken over by a restore: forgets its connection without
    /// writing anything (the restore took the snapshot).
    pub(crate) fn live_forget(&self, id: &str) {
        if let Some(live) = &self.live {
            live.take(id);
        }
    }

    /// The command that keeps a disconnected socket's session: it replaces the live
    /// snapshot only if it is still this connection's.
    pub(crate) fn persist_cmd(&self, session: &Session, value: &str) -> redis::Cmd {
        let key = self.session_key(&session.pid);
        let written = self.live.as_ref().and_then(|l| l.take(session.id.as_str()));
        let old = written.and_then(|(_, w)| w);
        replace(&key, old.as_deref(), value, self.ttl_ms())
    }

    /// Writes the snapshots that changed.
    fn live_flush(&self) {
        let Some(live) = &self.live else {
            return;
        };
        let ttl = self.ttl_ms();
        let mut st = live.lock();
        let dirty: Vec<String> = st.dirty.drain().collect();
        let mut retry = Vec::new();
        for id in dirty {
            let Some(entry) = st.sockets.get_mut(&id) else {
                continue;
            };
            let session = Session {
                id: id.as_str().into(),
                pid: entry.pid.clone(),
                rooms: self.local.socket_rooms(&id),
                data: entry.data.clone(),
                missed_packets: Vec::new(),
            };
            let value = encode_session_leased(&session, Some(&entry.lease));
            if entry.written.as_deref() == Some(value.as_str()) {
                continue;
            }
            let key = self.session_key(&entry.pid);
            match self
                .shared
                .link
                .send(replace(&key, entry.written.as_deref(), &value, ttl))
            {
                Ok(()) => entry.written = Some(value),
                Err(_) => retry.push(id),
            }
        }
        // Redis unreachable: written again at the next refresh.
        st.dirty.extend(retry);
    }

    /// Writes every snapshot again with a fresh TTL (unless a restore took it).
    fn live_refresh(&self) {
        let Some(live) = &self.live else {
            return;
        };
        let ttl = self.ttl_ms();
        let st = live.lock();
        let written: Vec<(String, &str)> = st
            .sockets
            .values()
            .filter_map(|e| Some((self.session_key(&e.pid), e.written.as_deref()?)))
            .collect();
        for batch in written.chunks(REFRESH_BATCH) {
            let mut cmd = redis::cmd("EVAL");
            cmd.arg(REFRESH).arg(batch.len());
            for (key, _) in batch {
                cmd.arg(key);
            }
            cmd.arg(ttl);
            for (_, value) in batch {
                cmd.arg(*value);
            }
            if let Err(e) = self.shared.link.send(cmd) {
                tracing::debug!(error = %e, "redis adapter: session snapshots not refreshed");
                return;
            }
        }
    }
}

/// Writes the namespace's live snapshots: soon after they change, and every quarter of the
/// recovery window. Ends when the adapter is dropped.
pub(crate) async fn run(adapter: Weak<RedisAdapter>, wake: Arc<Live>, every: Duration) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let refresh = tokio::select! {
            () = wake.wake.notified() => false,
            _ = tick.tick() => true,
        };
        let Some(me) = adapter.upgrade() else {
            return;
        };
        me.live_flush();
        if refresh {
            me.live_refresh();
        }
        drop(me);
        tokio::time::sleep(COALESCE).await;
    }
}
