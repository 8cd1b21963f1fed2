//! [`LocalAdapter`]: the in-memory rooms index of one namespace on one server.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, RwLock};

use super::{
    AckSink, Adapter, AdapterError, AdapterFactory, BroadcastOptions, BroadcastPacket,
    LocalSockets, Room, RoomEvent, SocketInfo,
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

/// The in-memory adapter: a rooms ↔ sockets index for one namespace on one server.
pub struct LocalAdapter {
    sockets: LocalSockets,
    index: RwLock<Index>,
    hook: Option<RoomHook>,
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
        Self {
            sockets,
            index: RwLock::new(Index::default()),
            hook: None,
        }
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
    pub fn deliver(&self, packet: &BroadcastPacket, opts: &BroadcastOptions) -> Vec<Room> {
        let volatile = opts.flags.volatile;
        let mut ids = self.select(opts);
        ids.retain(|id| self.sockets.send(id, packet, volatile));
        ids
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

impl Adapter for LocalAdapter {
    fn add_all(&self, id: &str, rooms: &[Room]) {
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
        self.deliver(packet, opts);
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
}

/// The default factory: a [`LocalAdapter`] per namespace.
pub fn local_adapter_factory() -> AdapterFactory {
    Arc::new(|sockets| Arc::new(LocalAdapter::new(sockets)) as Arc<dyn Adapter>)
}

#[cfg(test)]
mod tests {
    use std::sync::{Mutex, Weak};

    use serde_json::Value;

    use super::*;
    use crate::RawArgs;
    use crate::adapter::{NamespaceSockets, ServerAck, Session};

    #[derive(Default)]
    struct Fake {
        sent: Mutex<Vec<String>>,
        events: Mutex<Vec<RoomEvent>>,
    }

    impl NamespaceSockets for Fake {
        fn send(&self, id: &str, _: &BroadcastPacket, volatile: bool) -> bool {
            if volatile && id == "slow" {
                return false;
            }
            self.sent.lock().unwrap().push(id.to_owned());
            true
        }
        fn send_with_ack(
            &self,
            id: &str,
            p: &BroadcastPacket,
            _: u64,
            v: bool,
            _: &Arc<dyn AckSink>,
        ) -> bool {
            self.send(id, p, v)
        }
        fn info(&self, id: &str, rooms: Vec<Room>) -> Option<SocketInfo> {
            Some(SocketInfo {
                id: id.into(),
                handshake: Value::Null,
                rooms,
                data: Value::Null,
            })
        }
        fn contains(&self, _: &str) -> bool {
            true
        }
        fn disconnect(&self, _: &str, _: bool) {}
        fn next_ack_id(&self) -> u64 {
            0
        }
        fn server_event(&self, _: &str, _: RawArgs, _: Option<ServerAck>) {}
        fn room_event(&self, event: RoomEvent) {
            self.events.lock().unwrap().push(event);
        }
    }

    fn r(s: &str) -> Room {
        Arc::from(s)
    }

    #[test]
    fn rooms_and_selection() {
        let fake = Arc::new(Fake::default());
        let weak: Weak<dyn NamespaceSockets> =
            Arc::downgrade(&(fake.clone() as Arc<dyn NamespaceSockets>));
        let local = LocalAdapter::new(LocalSockets::new(r("/"), weak));
        local.add_all("a", &[r("a"), r("x")]);
        local.add_all("b", &[r("b"), r("x")]);
        local.add_all("slow", &[r("slow"), r("x")]);
        assert_eq!(
            fake.events.lock().unwrap()[..2],
            [
                RoomEvent::Create(r("a")),
                RoomEvent::Join(r("a"), "a".into())
            ]
        );
        let opts = |rooms: &[&str], except: &[&str]| BroadcastOptions {
            rooms: rooms.iter().map(|s| r(s)).collect(),
            except: except.iter().map(|s| r(s)).collect(),
            ..Default::default()
        };
        let mut ids = local.select(&opts(&["x"], &["b"]));
        ids.sort();
        assert_eq!(ids, [r("a"), r("slow")]);
        let packet = BroadcastPacket::from_parts(b"2[\"e\"]", Vec::new());
        let mut volatile = opts(&["x"], &[]);
        volatile.flags.volatile = true;
        let mut sent = local.deliver(&packet, &volatile);
        sent.sort();
        assert_eq!(sent, [r("a"), r("b")]);
        assert_eq!(local.fetch_local(&opts(&["b"], &[]))[0].rooms.len(), 2);
        local.del_all("a");
        assert!(local.socket_rooms("a").is_empty());
        local.del("b", "x");
        local.del("slow", "x");
        assert!(
            fake.events
                .lock()
                .unwrap()
                .contains(&RoomEvent::Delete(r("x")))
        );
        assert!(matches!(
            local.persist_session(Session {
                id: "a".into(),
                pid: String::new(),
                rooms: vec![],
                data: Value::Null,
                missed_packets: vec![],
            }),
            Err(AdapterError::Unsupported(_))
        ));
    }
}
