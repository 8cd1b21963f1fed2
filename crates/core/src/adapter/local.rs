//! [`LocalAdapter`]: the in-memory rooms index of one namespace on one server.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use tokio::time::Instant;

use super::{
    AckSink, Adapter, AdapterError, AdapterFactory, AdapterStats, BroadcastOptions,
    BroadcastPacket, ConnectionStateRecovery, LocalSockets, Room, RoomEvent, Session, SocketInfo,
};
use crate::handler::BoxFuture;
use crate::id::SocketId;

#[derive(Default)]
struct Index {
    rooms: HashMap<Room, HashSet<Room>>,
    sids: HashMap<Room, HashSet<Room>>,
}

/// Observes the room events of a [`LocalAdapter`] before the namespace's handlers do; a
/// cluster adapter uses it to follow rooms (e.g. per-room subscriptions). It runs after the
/// index was updated, so it may query the adapter.
pub type RoomHook = Arc<dyn Fn(&LocalAdapter, &RoomEvent) + Send + Sync>;

/// A packet kept for connection state recovery.
struct StoredPacket {
    seq: u64,
    packet: BroadcastPacket,
    rooms: Vec<Room>,
    except: Vec<Room>,
    at: Instant,
}

/// The in-memory session store of connection state recovery (Node's `SessionAwareAdapter`):
/// the sessions of disconnected sockets by pid, and the recoverable packets of the
/// namespace, oldest first, bounded by the window and by `max_buffered_packets`.
struct Recovery {
    cfg: ConnectionStateRecovery,
    packets: VecDeque<StoredPacket>,
    next_seq: u64,
    sessions: HashMap<String, (Session, Instant)>,
    /// Persist order, to expire sessions without scanning them all.
    order: VecDeque<(String, Instant)>,
}

impl Recovery {
    fn new(cfg: ConnectionStateRecovery) -> Self {
        Self {
            cfg,
            packets: VecDeque::new(),
            next_seq: 1,
            sessions: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    fn expired(&self, at: Instant, now: Instant) -> bool {
        // Node: `disconnectedAt + maxDisconnectionDuration < now`.
        at + self.cfg.max_disconnection_duration < now
    }

    fn prune(&mut self, now: Instant) {
        while self
            .packets
            .front()
            .is_some_and(|p| self.expired(p.at, now))
        {
            self.packets.pop_front();
        }
        while self.packets.len() > self.cfg.max_buffered_packets {
            self.packets.pop_front();
        }
        while let Some((pid, at)) = self.order.front() {
            if !self.expired(*at, now) {
                break;
            }
            if self.sessions.get(pid).is_some_and(|(_, t)| t == at) {
                self.sessions.remove(pid);
            }
            self.order.pop_front();
        }
    }
}

/// Offsets are the packet's sequence number in the alphabet of Node's `yeast` ids.
const OFFSET_ALPHABET: &[u8; 64] =
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_";

fn encode_offset(mut n: u64) -> String {
    let mut out = Vec::new();
    loop {
        out.push(OFFSET_ALPHABET[(n % 64) as usize]);
        n /= 64;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

fn decode_offset(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 11 {
        return None;
    }
    s.bytes().try_fold(0u64, |n, c| {
        let d = OFFSET_ALPHABET.iter().position(|&a| a == c)? as u64;
        n.checked_mul(64)?.checked_add(d)
    })
}

/// Node's `shouldIncludePacket`: the session is in one of the target rooms (or the packet
/// was for everybody) and in none of the excluded ones.
fn should_include(session_rooms: &[Room], p: &StoredPacket) -> bool {
    let included = p.rooms.is_empty() || session_rooms.iter().any(|r| p.rooms.contains(r));
    let excluded = session_rooms.iter().any(|r| p.except.contains(r));
    included && !excluded
}

/// The in-memory adapter: a rooms ↔ sockets index for one namespace on one server.
///
/// With connection state recovery on ([`LocalSockets::recovery`]), it is also the session
/// store of one server, as Node's in-memory `SessionAwareAdapter`: sessions of disconnected
/// sockets are kept for `max_disconnection_duration`, recoverable packets for as long and
/// at most `max_buffered_packets` of them per namespace (oldest dropped first). A client
/// whose last seen packet is no longer kept gets a fresh session. Recoverable broadcasts are
/// numbered and delivered under one lock, so every socket sees offsets in order.
pub struct LocalAdapter {
    sockets: LocalSockets,
    index: RwLock<Index>,
    hook: Option<RoomHook>,
    recovery: Option<Mutex<Recovery>>,
}

impl fmt::Debug for LocalAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let index = self.read();
        f.debug_struct("LocalAdapter")
            .field("rooms", &index.rooms.len())
            .field("sockets", &index.sids.len())
            .finish()
    }
}

impl LocalAdapter {
    /// A local adapter for a namespace.
    pub fn new(sockets: LocalSockets) -> Self {
        let recovery = sockets
            .recovery()
            .map(|cfg| Mutex::new(Recovery::new(*cfg)));
        Self {
            sockets,
            index: RwLock::new(Index::default()),
            hook: None,
            recovery,
        }
    }

    fn recovery(&self) -> Option<MutexGuard<'_, Recovery>> {
        self.recovery
            .as_ref()
            .map(|m| m.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// How many packets are kept for connection state recovery, and how many sessions.
    pub fn recovery_stats(&self) -> (usize, usize) {
        self.recovery()
            .map(|r| (r.packets.len(), r.sessions.len()))
            .unwrap_or_default()
    }

    /// Rooms with a member, leaving out each socket's own room (named by its id).
    pub fn room_count(&self) -> usize {
        let index = self.read();
        index
            .rooms
            .keys()
            .filter(|room| !index.sids.contains_key(*room))
            .count()
    }

    /// A local adapter whose room events also go to `hook`.
    pub fn with_room_hook(sockets: LocalSockets, hook: RoomHook) -> Self {
        Self {
            hook: Some(hook),
            ..Self::new(sockets)
        }
    }

    fn emit_room_events(&self, events: Vec<RoomEvent>) {
        for e in events {
            if let Some(h) = &self.hook {
                h(self, &e);
            }
            self.sockets.room_event(e);
        }
    }

    /// The namespace's local sockets.
    pub fn local_sockets(&self) -> &LocalSockets {
        &self.sockets
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Ids of the local sockets `opts` selects.
    pub fn select(&self, opts: &BroadcastOptions) -> Vec<Room> {
        let index = self.read();
        let excluded = |id: &Room| {
            opts.except.iter().any(|r| {
                index
                    .rooms
                    .get(r)
                    .is_some_and(|members| members.contains(id))
            })
        };
        if opts.rooms.is_empty() {
            return index
                .sids
                .keys()
                .filter(|id| !excluded(id))
                .cloned()
                .collect();
        }
        if opts.rooms.len() == 1 {
            return index
                .rooms
                .get(&opts.rooms[0])
                .map(|m| m.iter().filter(|id| !excluded(id)).cloned().collect())
                .unwrap_or_default();
        }
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for r in &opts.rooms {
            if let Some(members) = index.rooms.get(r) {
                for id in members {
                    if !excluded(id) && seen.insert(id.clone()) {
                        out.push(id.clone());
                    }
                }
            }
        }
        out
    }

    /// Delivers a packet to local sockets; returns the ids of the sockets it was sent to.
    /// [`fan_out`](Self::fan_out) does the same without listing them.
    pub fn deliver(&self, packet: &BroadcastPacket, opts: &BroadcastOptions) -> Vec<Room> {
        let volatile = opts.flags.volatile;
        let mut ids = self.select(opts);
        self.sockets.send_all(&mut ids, packet, volatile);
        ids
    }

    /// Delivers a packet to the local sockets `opts` selects and returns how many it was
    /// queued for: a broadcast's hot path. It walks the recipients once, under the index's
    /// read lock, without collecting or cloning their ids; a broadcast to every socket walks
    /// the namespace's own sockets ([`LocalSockets::send_to_all_except`]) and looks none of
    /// them up. Joins and leaves wait for it.
    pub fn fan_out(&self, packet: &BroadcastPacket, opts: &BroadcastOptions) -> usize {
        let volatile = opts.flags.volatile;
        let index = self.read();
        let except: Vec<&HashSet<Room>> = opts
            .except
            .iter()
            .filter_map(|r| index.rooms.get(r))
            .collect();
        let kept = |id: &&str| !except.iter().any(|members| members.contains(*id));
        match &opts.rooms[..] {
            [] => {
                let mut excluded = except.iter().flat_map(|m| m.iter().map(|id| &**id));
                if let Some(n) = self
                    .sockets
                    .send_to_all_except(&mut excluded, packet, volatile)
                {
                    return n;
                }
                let mut ids = index.sids.keys().map(|id| &**id).filter(kept);
                self.sockets.send_each(&mut ids, packet, volatile)
            }
            [room] => {
                let Some(members) = index.rooms.get(room) else {
                    return 0;
                };
                let mut ids = members.iter().map(|id| &**id).filter(kept);
                self.sockets.send_each(&mut ids, packet, volatile)
            }
            rooms => {
                let mut seen = HashSet::new();
                let mut ids = rooms
                    .iter()
                    .filter_map(|r| index.rooms.get(r))
                    .flatten()
                    .map(|id| &**id)
                    .filter(|id| kept(id) && seen.insert(*id));
                self.sockets.send_each(&mut ids, packet, volatile)
            }
        }
    }

    /// Local part of `fetch_sockets`.
    pub fn fetch_local(&self, opts: &BroadcastOptions) -> Vec<SocketInfo> {
        self.select(opts)
            .into_iter()
            .filter_map(|id| {
                let rooms = self.socket_rooms(&id);
                self.sockets.info(&id, rooms)
            })
            .collect()
    }

    /// Local rooms that have members.
    pub fn local_rooms(&self) -> Vec<Room> {
        self.read().rooms.keys().cloned().collect()
    }

    /// Local part of `disconnect_sockets`.
    pub fn disconnect_local(&self, opts: &BroadcastOptions, close: bool) {
        for id in self.select(opts) {
            self.sockets.disconnect(&id, close);
        }
    }

    /// Local part of `broadcast_with_ack`: sends and registers the ack id on each socket;
    /// returns how many sockets it was sent to.
    pub fn broadcast_with_ack_local(
        &self,
        packet: &BroadcastPacket,
        ack_id: u64,
        opts: &BroadcastOptions,
        sink: &Arc<dyn AckSink>,
    ) -> usize {
        let volatile = opts.flags.volatile;
        self.select(opts)
            .iter()
            .filter(|id| {
                self.sockets
                    .send_with_ack(id, packet, ack_id, volatile, sink)
            })
            .count()
    }
}

impl LocalAdapter {
    fn add_all_quiet(&self, id: &str, rooms: &[Room]) -> Vec<RoomEvent> {
        let mut events = Vec::new();
        {
            let mut index = self.write();
            let id: Room = Arc::from(id);
            for room in rooms {
                let members = index.rooms.entry(room.clone()).or_default();
                if members.is_empty() {
                    events.push(RoomEvent::Create(room.clone()));
                }
                if members.insert(id.clone()) {
                    events.push(RoomEvent::Join(room.clone(), SocketId::from(id.clone())));
                }
                index
                    .sids
                    .entry(id.clone())
                    .or_default()
                    .insert(room.clone());
            }
        }
        events
    }
}

impl Adapter for LocalAdapter {
    fn add_all(&self, id: &str, rooms: &[Room]) {
        let events = self.add_all_quiet(id, rooms);
        self.emit_room_events(events);
    }

    fn del(&self, id: &str, room: &str) {
        let mut events = Vec::new();
        {
            let mut index = self.write();
            if let Some(rooms) = index.sids.get_mut(id) {
                rooms.remove(room);
            }
            if let Some(members) = index.rooms.get_mut(room) {
                if members.remove(id) {
                    events.push(RoomEvent::Leave(Arc::from(room), SocketId::from(id)));
                }
                if members.is_empty() {
                    index.rooms.remove(room);
                    events.push(RoomEvent::Delete(Arc::from(room)));
                }
            }
        }
        self.emit_room_events(events);
    }

    fn del_all(&self, id: &str) {
        let mut events = Vec::new();
        {
            let mut index = self.write();
            let Some(rooms) = index.sids.remove(id) else {
                return;
            };
            for room in rooms {
                if let Some(members) = index.rooms.get_mut(&room) {
                    if members.remove(id) {
                        events.push(RoomEvent::Leave(room.clone(), SocketId::from(id)));
                    }
                    if members.is_empty() {
                        index.rooms.remove(&room);
                        events.push(RoomEvent::Delete(room));
                    }
                }
            }
        }
        self.emit_room_events(events);
    }

    fn socket_rooms(&self, id: &str) -> Vec<Room> {
        self.read()
            .sids
            .get(id)
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn broadcast(&self, packet: &BroadcastPacket, opts: &BroadcastOptions) {
        if !opts.flags.volatile
            && let Some(mut rec) = self.recovery()
            && let Some(stored) = packet.with_offset(&encode_offset(rec.next_seq))
        {
            let now = Instant::now();
            let seq = rec.next_seq;
            rec.next_seq += 1;
            rec.packets.push_back(StoredPacket {
                seq,
                packet: stored.clone(),
                rooms: opts.rooms.clone(),
                except: opts.except.clone(),
                at: now,
            });
            rec.prune(now);
            // Delivered under the lock: offsets reach every socket in order, and a restore
            // (same lock) sees each packet either in the missed ones or held for the socket.
            self.fan_out(&stored, opts);
            return;
        }
        self.fan_out(packet, opts);
    }

    fn persist_session(&self, session: Session) -> Result<(), AdapterError> {
        let Some(mut rec) = self.recovery() else {
            return Err(AdapterError::Unsupported(
                "connection state recovery is off".into(),
            ));
        };
        let now = Instant::now();
        rec.prune(now);
        rec.order.push_back((session.pid.clone(), now));
        rec.sessions.insert(session.pid.clone(), (session, now));
        Ok(())
    }

    fn restore_session(
        &self,
        pid: &str,
        offset: &str,
    ) -> BoxFuture<Result<Option<Session>, AdapterError>> {
        let restored = self.restore_now(pid, offset);
        Box::pin(std::future::ready(restored))
    }

    fn broadcast_with_ack(
        &self,
        packet: &BroadcastPacket,
        ack_id: u64,
        opts: &BroadcastOptions,
        sink: Arc<dyn AckSink>,
    ) {
        let n = self.broadcast_with_ack_local(packet, ack_id, opts, &sink);
        sink.client_count(n);
    }

    fn sockets(&self, opts: &BroadcastOptions) -> BoxFuture<Result<Vec<String>, AdapterError>> {
        let ids = self.select(opts).iter().map(|r| r.to_string()).collect();
        Box::pin(std::future::ready(Ok(ids)))
    }

    fn fetch_sockets(
        &self,
        opts: &BroadcastOptions,
    ) -> BoxFuture<Result<Vec<SocketInfo>, AdapterError>> {
        let list = self.fetch_local(opts);
        Box::pin(std::future::ready(Ok(list)))
    }

    fn add_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]) {
        for id in self.select(opts) {
            self.add_all(&id, rooms);
        }
    }

    fn del_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]) {
        for id in self.select(opts) {
            for r in rooms {
                self.del(&id, r);
            }
        }
    }

    fn disconnect_sockets(&self, opts: &BroadcastOptions, close: bool) {
        self.disconnect_local(opts, close);
    }

    fn all_rooms(&self) -> BoxFuture<Result<Vec<Room>, AdapterError>> {
        Box::pin(std::future::ready(Ok(self.local_rooms())))
    }

    fn server_count(&self) -> BoxFuture<Result<usize, AdapterError>> {
        Box::pin(std::future::ready(Ok(1)))
    }

    fn stats(&self) -> AdapterStats {
        AdapterStats::local(self.room_count())
    }
}

impl LocalAdapter {
    fn restore_now(&self, pid: &str, offset: &str) -> Result<Option<Session>, AdapterError> {
        let Some(mut rec) = self.recovery() else {
            return Err(AdapterError::Unsupported(
                "connection state recovery is off".into(),
            ));
        };
        rec.prune(Instant::now());
        // A pid restores at most once, whatever happens next.
        let Some((mut session, _)) = rec.sessions.remove(pid) else {
            return Ok(None);
        };
        let Some(seq) = decode_offset(offset) else {
            return Ok(None);
        };
        let Some(first) = rec.packets.front().map(|p| p.seq) else {
            return Ok(None);
        };
        let Some(index) = seq
            .checked_sub(first)
            .and_then(|i| usize::try_from(i).ok())
            .filter(|&i| rec.packets.get(i).is_some_and(|p| p.seq == seq))
        else {
            // Unknown, or too old: no longer kept.
            return Ok(None);
        };
        if self.sockets.contains(&session.id) {
            return Ok(None);
        }
        session.missed_packets = rec
            .packets
            .iter()
            .skip(index + 1)
            .filter(|p| should_include(&session.rooms, p))
            .map(|p| p.packet.clone())
            .collect();
        // Still under the lock: packets broadcast from now on reach the socket's rooms and
        // wait for it in the namespace until the server has connected it.
        self.sockets.hold(&session.id);
        let events = self.add_all_quiet(&session.id, &session.rooms);
        drop(rec);
        self.emit_room_events(events);
        Ok(Some(session))
    }
}

/// The default factory: a [`LocalAdapter`] per namespace.
pub fn local_adapter_factory() -> AdapterFactory {
    Arc::new(|sockets| Arc::new(LocalAdapter::new(sockets)) as Arc<dyn Adapter>)
}

#[cfg(test)]
mod tests;
