//! The adapter boundary: where rooms live and where broadcasts and the utility methods go,
//! so that a cluster adapter (Redis) can take them past one server.
//!
//! Each namespace has one adapter, made by the [`AdapterFactory`] chosen in the builder and
//! stored as `Arc<dyn Adapter>`: no user-facing type is generic over it. [`LocalAdapter`] is
//! the default and the building block of cluster adapters, which apply every operation
//! locally through it and publish it to the other servers.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

use crate::encode::{Encoded, RawArgs};
use crate::handler::BoxFuture;
use crate::namespace::NsInner;
use crate::socket::Socket;

/// A room name. Every socket is also in the room named by its id.
pub type Room = Arc<str>;

/// Flags of a broadcast.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BroadcastFlags {
    /// Only this server's sockets.
    pub local: bool,
    /// Drop the packet for sockets that cannot take it now.
    pub volatile: bool,
    /// The acknowledgement timeout of a broadcast with acknowledgements (cluster adapters
    /// send it along, as Node's `flags.timeout`).
    pub timeout: Option<Duration>,
}

/// Who a broadcast or a utility operation is for: sockets in any of `rooms` (all sockets
/// when empty) and in none of `except`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BroadcastOptions {
    /// Target rooms (union); empty means every socket of the namespace.
    pub rooms: Vec<Room>,
    /// Excluded rooms.
    pub except: Vec<Room>,
    /// Flags.
    pub flags: BroadcastFlags,
}

/// A packet to broadcast: encoded once, shared by every recipient.
#[derive(Debug, Clone)]
pub struct BroadcastPacket {
    pub(crate) encoded: Encoded,
}

impl BroadcastPacket {
    /// The Socket.IO packet text (`2["event",...]`, Engine.IO digit excluded).
    pub fn text(&self) -> Bytes {
        match &self.encoded.text {
            volley_engine::Frame::Text(t) => t.slice(1..),
            volley_engine::Frame::Binary(b) => b.clone(),
        }
    }

    /// The binary attachments.
    pub fn attachments(&self) -> &[Bytes] {
        &self.encoded.attachments
    }

    /// A packet from its Socket.IO text and attachments (as a cluster adapter receives it).
    pub fn from_parts(text: &[u8], attachments: Vec<Bytes>) -> Self {
        let mut t = Vec::with_capacity(text.len() + 1);
        t.push(b'4');
        t.extend_from_slice(text);
        Self {
            encoded: Encoded {
                text: volley_engine::Frame::Text(Bytes::from(t)),
                attachments,
            },
        }
    }
}

/// What `fetch_sockets` returns about one socket, wherever it is connected.
#[derive(Debug, Clone, PartialEq)]
pub struct SocketInfo {
    /// The socket id.
    pub id: String,
    /// The handshake, in Node's JSON shape.
    pub handshake: Value,
    /// The rooms the socket is in.
    pub rooms: Vec<Room>,
    /// The socket's data.
    pub data: Value,
}

/// Why a cluster operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterError(pub String);

impl fmt::Display for AdapterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "adapter error: {}", self.0)
    }
}

impl std::error::Error for AdapterError {}

/// Receives the results of a broadcast with acknowledgements, from every server.
pub trait AckSink: Send + Sync {
    /// One server sent the packet to `n` sockets.
    fn client_count(&self, n: usize);
    /// One socket answered.
    fn response(&self, socket_id: &str, args: RawArgs);
    /// Whether nobody waits for answers any more (completed or timed out); sockets then
    /// drop their registrations.
    fn is_closed(&self) -> bool;
}

/// Room lifecycle events, as Node's adapter emits them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomEvent {
    /// A room got its first member.
    Create(Room),
    /// A room lost its last member.
    Delete(Room),
    /// A socket joined a room.
    Join(Room, String),
    /// A socket left a room.
    Leave(Room, String),
}

/// The adapter of one namespace. Object-safe; async operations return boxed futures.
pub trait Adapter: Send + Sync + 'static {
    /// Adds a local socket to rooms.
    fn add_all(&self, id: &str, rooms: &[Room]);
    /// Removes a local socket from a room.
    fn del(&self, id: &str, room: &str);
    /// Removes a local socket from every room.
    fn del_all(&self, id: &str);
    /// The rooms of a local socket.
    fn socket_rooms(&self, id: &str) -> Vec<Room>;
    /// Sends a packet to the sockets `opts` selects.
    fn broadcast(&self, packet: &BroadcastPacket, opts: &BroadcastOptions);
    /// Sends a packet asking for acknowledgements (its ack id is already in the packet);
    /// reports counts and answers to `sink`.
    fn broadcast_with_ack(
        &self,
        packet: &BroadcastPacket,
        ack_id: u64,
        opts: &BroadcastOptions,
        sink: Arc<dyn AckSink>,
    );
    /// Ids of the sockets `opts` selects.
    fn sockets(&self, opts: &BroadcastOptions) -> BoxFuture<Result<Vec<String>, AdapterError>>;
    /// Details of the sockets `opts` selects.
    fn fetch_sockets(
        &self,
        opts: &BroadcastOptions,
    ) -> BoxFuture<Result<Vec<SocketInfo>, AdapterError>>;
    /// Makes the selected sockets join rooms.
    fn add_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]);
    /// Makes the selected sockets leave rooms.
    fn del_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]);
    /// Disconnects the selected sockets; with `close`, their whole connections.
    fn disconnect_sockets(&self, opts: &BroadcastOptions, close: bool);
    /// Every room with a member, on every server.
    fn all_rooms(&self) -> BoxFuture<Result<Vec<Room>, AdapterError>>;
    /// How many servers share this namespace (1 without a cluster).
    fn server_count(&self) -> BoxFuture<Result<usize, AdapterError>>;
    /// Sends an event to the other servers (`serverSideEmit`); their handlers' answers go
    /// to `sink` when one is given. Without a cluster there is nobody to send to.
    fn server_side_emit(
        &self,
        event: &str,
        args: &RawArgs,
        sink: Option<Arc<dyn AckSink>>,
    ) -> Result<(), AdapterError> {
        let _ = (event, args, sink);
        Ok(())
    }
}

/// Makes the adapter of each namespace.
pub type AdapterFactory = Arc<dyn Fn(LocalSockets) -> Arc<dyn Adapter> + Send + Sync>;

/// Access to a namespace's local sockets, for adapters.
#[derive(Clone)]
pub struct LocalSockets {
    pub(crate) ns: Weak<NsInner>,
    /// Known before the namespace exists: factories run while it is being built.
    pub(crate) name: Arc<str>,
}

impl fmt::Debug for LocalSockets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalSockets").finish()
    }
}

impl LocalSockets {
    /// The namespace name (also while the adapter factory runs, before the namespace
    /// itself can be reached).
    pub fn namespace(&self) -> String {
        self.name.to_string()
    }

    /// A local socket by id.
    pub fn get(&self, id: &str) -> Option<Socket> {
        let ns = self.ns.upgrade()?;
        let sockets = ns.sockets.read().unwrap_or_else(|p| p.into_inner());
        sockets.get(id).cloned()
    }

    /// Runs the handler of an event another server sent with `server_side_emit`.
    pub fn server_event(
        &self,
        event: &str,
        args: RawArgs,
        ack: Option<crate::namespace::ServerAck>,
    ) {
        if let Some(ns) = self.ns.upgrade() {
            ns.server_event(event, args, ack);
        }
    }

    /// A fresh acknowledgement id of the namespace, for a packet an adapter builds itself
    /// (a broadcast with acknowledgements another server asked for).
    pub fn next_ack_id(&self) -> Option<u64> {
        self.ns.upgrade().map(|ns| ns.next_ack_id())
    }

    /// Runs a room event through the namespace's room event handlers.
    pub fn room_event(&self, event: RoomEvent) {
        if let Some(ns) = self.ns.upgrade() {
            ns.room_event(event);
        }
    }
}

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

    /// Calls `f` for each local socket `opts` selects (ignoring `flags`).
    pub fn apply(&self, opts: &BroadcastOptions, mut f: impl FnMut(&Socket)) {
        for id in self.select(opts) {
            if let Some(s) = self.sockets.get(&id) {
                f(&s);
            }
        }
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

    /// Delivers a packet to local sockets; returns the sockets it was sent to.
    pub fn deliver(&self, packet: &BroadcastPacket, opts: &BroadcastOptions) -> Vec<Socket> {
        let mut sent = Vec::new();
        self.apply(opts, |s| {
            if opts.flags.volatile && !s.inner.conn.engine.is_writable() {
                return;
            }
            if s.connected() && s.send_encoded(&packet.encoded).is_ok() {
                sent.push(s.clone());
            }
        });
        sent
    }

    /// Local part of `fetch_sockets`.
    pub fn fetch_local(&self, opts: &BroadcastOptions) -> Vec<SocketInfo> {
        let mut out = Vec::new();
        self.apply(opts, |s| {
            out.push(SocketInfo {
                id: s.id().to_owned(),
                handshake: serde_json::to_value(s.handshake()).unwrap_or(Value::Null),
                rooms: self.socket_rooms(s.id()),
                data: s.data_value(),
            })
        });
        out
    }

    /// Local rooms that have members.
    pub fn local_rooms(&self) -> Vec<Room> {
        self.read().rooms.keys().cloned().collect()
    }

    /// Local part of `disconnect_sockets`.
    pub fn disconnect_local(&self, opts: &BroadcastOptions, close: bool) {
        let mut targets = Vec::new();
        self.apply(opts, |s| targets.push(s.clone()));
        for s in targets {
            if close {
                s.disconnect_all();
            } else {
                s.disconnect();
            }
        }
    }

    /// Local part of `broadcast_with_ack`: sends and registers the ack id on each socket.
    pub fn broadcast_with_ack_local(
        &self,
        packet: &BroadcastPacket,
        ack_id: u64,
        opts: &BroadcastOptions,
        sink: &Arc<dyn AckSink>,
    ) -> usize {
        let mut n = 0;
        self.apply(opts, |s| {
            if opts.flags.volatile && !s.inner.conn.engine.is_writable() {
                return;
            }
            if !s.connected() {
                return;
            }
            s.register_broadcast_ack(ack_id, sink.clone());
            if s.send_encoded(&packet.encoded).is_ok() {
                n += 1;
            } else {
                s.forget_ack(ack_id);
            }
        });
        n
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
                    events.push(RoomEvent::Join(room.clone(), id.to_string()));
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
                    events.push(RoomEvent::Leave(Arc::from(room), id.to_owned()));
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
                        events.push(RoomEvent::Leave(room.clone(), id.to_owned()));
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
