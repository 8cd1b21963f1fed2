//! The adapter contract: where a namespace's rooms live and where its broadcasts and utility
//! operations go, so that a cluster adapter (`volley-redis`) can take them past one server.
//!
//! Each namespace of a server has one [`Adapter`], made by the [`AdapterFactory`] chosen in
//! the server's builder and stored as `Arc<dyn Adapter>`. [`LocalAdapter`] is the default
//! and the building block of cluster adapters, which apply every operation locally through it
//! and publish it to the other servers.
//!
//! An adapter reaches the namespace's sockets on this server only through [`LocalSockets`], a
//! narrow interface the server implements ([`NamespaceSockets`]): send an encoded packet to a
//! socket by id, register a broadcast acknowledgement, describe or disconnect a socket, run a
//! server-side event. Adapters therefore depend on this contract, not on the server.
//!
//! Connection state recovery ([`ConnectionStateRecovery`], off by default):
//! [`Adapter::persist_session`] and [`Adapter::restore_session`] store and restore a
//! disconnected socket's [`Session`] (id, private id, rooms, data, missed packets); their
//! default implementations say "not supported". [`LocalAdapter`] keeps sessions and packets
//! in memory, bounded by the window and by
//! [`ConnectionStateRecovery::max_buffered_packets`]. See [`Session`] for the whole contract.

use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

use crate::args::{Args, One, RawArgs};
use crate::handler::BoxFuture;
use crate::id::SocketId;
use crate::parser::{CodecError, Encoded, Parser};

mod collect;
mod local;
mod stats;

pub use collect::{AckCollector, AckResponse, AckStream};
pub use local::{LocalAdapter, RoomHook, local_adapter_factory};
pub use stats::AdapterStats;

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BroadcastPacket {
    encoded: Encoded,
}

impl BroadcastPacket {
    /// A packet encoded by the server's parser.
    pub fn new(encoded: Encoded) -> Self {
        Self { encoded }
    }

    /// The encoded packet: the frames every recipient gets.
    pub fn encoded(&self) -> &Encoded {
        &self.encoded
    }

    /// The Socket.IO packet text (`2["event",...]`, Engine.IO digit excluded).
    pub fn text(&self) -> Bytes {
        self.encoded.text().unwrap_or_default()
    }

    /// The binary attachments.
    pub fn attachments(&self) -> &[Bytes] {
        self.encoded.attachments()
    }

    /// A packet from its Socket.IO text and attachments (as a cluster adapter receives it).
    pub fn from_parts(text: &[u8], attachments: Vec<Bytes>) -> Self {
        Self::new(Encoded::from_text(text, attachments))
    }

    /// Whether connection state recovery stores this packet: an EVENT (or BINARY_EVENT)
    /// that asks for no acknowledgement.
    pub fn is_recoverable(&self) -> bool {
        self.encoded.is_event_without_ack()
    }

    /// The packet with `offset` appended as its last argument (`["event",1]` →
    /// `["event",1,"<offset>"]`), as Node's session-aware adapters send it; `None` when the
    /// packet is not [recoverable](Self::is_recoverable).
    pub fn with_offset(&self, offset: &str) -> Option<Self> {
        self.encoded.with_last_string(offset).map(Self::new)
    }
}

/// What `fetch_sockets` returns about one socket, wherever it is connected.
#[derive(Debug, Clone, PartialEq)]
pub struct SocketInfo {
    /// The socket id.
    pub id: SocketId,
    /// The handshake, in Node's JSON shape.
    pub handshake: Value,
    /// The rooms the socket is in.
    pub rooms: Vec<Room>,
    /// The socket's data.
    pub data: Value,
}

/// Why a cluster operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AdapterError {
    /// The adapter's configuration is not usable (e.g. a bad URL).
    Config(String),
    /// The cluster cannot be reached now (e.g. its broker is down); local delivery goes on.
    Unavailable(String),
    /// The queue of messages to the cluster is full; the message was dropped.
    QueueFull,
    /// Not every server answered a request in time.
    Timeout {
        /// How many answers were expected.
        expected: usize,
        /// How many came.
        received: usize,
    },
    /// This adapter does not support the operation (the message says which).
    Unsupported(String),
    /// Arguments or a message could not be encoded.
    Encode(String),
    /// The adapter or its namespace is gone.
    Closed,
}

impl fmt::Display for AdapterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(m) | Self::Unavailable(m) | Self::Unsupported(m) | Self::Encode(m) => {
                f.write_str(m)
            }
            Self::QueueFull => f.write_str("the publish queue is full"),
            Self::Timeout { expected, received } => write!(
                f,
                "timeout reached: only {received} responses received out of {expected}"
            ),
            Self::Closed => f.write_str("the adapter is gone"),
        }
    }
}

impl std::error::Error for AdapterError {}

impl From<CodecError> for AdapterError {
    fn from(e: CodecError) -> Self {
        Self::Encode(e.to_string())
    }
}

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
    Join(Room, SocketId),
    /// A socket left a room.
    Leave(Room, SocketId),
}

/// Connection state recovery settings (Node's `connectionStateRecovery` option), given to
/// adapters through [`LocalSockets::recovery`].
///
/// ```
/// use std::time::Duration;
/// use volley_core::adapter::ConnectionStateRecovery;
///
/// let cfg = ConnectionStateRecovery::default()
///     .max_disconnection_duration(Duration::from_secs(30))
///     .skip_middlewares(false);
/// assert_eq!(cfg.max_buffered_packets, 10_000);
/// assert!(!cfg.skip_middlewares);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionStateRecovery {
    /// How long a disconnected socket's session is kept (default 2 minutes, as Node).
    pub max_disconnection_duration: std::time::Duration,
    /// Whether a recovered socket skips the middlewares (default `true`, as Node).
    pub skip_middlewares: bool,
    /// Most packets kept for replay per namespace (default 10 000; Node has no cap). Older
    /// packets are dropped first; a client whose last packet was dropped cannot be
    /// recovered and gets a fresh session.
    pub max_buffered_packets: usize,
}

impl Default for ConnectionStateRecovery {
    fn default() -> Self {
        Self {
            max_disconnection_duration: std::time::Duration::from_secs(120),
            skip_middlewares: true,
            max_buffered_packets: 10_000,
        }
    }
}

impl ConnectionStateRecovery {
    /// Sets how long a disconnected socket's session is kept.
    pub fn max_disconnection_duration(mut self, d: std::time::Duration) -> Self {
        self.max_disconnection_duration = d;
        self
    }

    /// Sets whether a recovered socket skips the middlewares.
    pub fn skip_middlewares(mut self, skip: bool) -> Self {
        self.skip_middlewares = skip;
        self
    }

    /// Sets the most packets kept for replay per namespace (at least 1).
    pub fn max_buffered_packets(mut self, n: usize) -> Self {
        self.max_buffered_packets = n.max(1);
        self
    }
}

/// What connection state recovery keeps of a disconnected socket, to restore it when its
/// client reconnects in time.
///
/// The contract between the server and an adapter (stable; `volley-redis` implements it too):
///
/// - The server gives every socket a `pid` (144 random bits, base64url) when recovery is on,
///   sends it in the CONNECT reply (`{"sid":…,"pid":…}`), and never logs it above debug.
/// - [`Adapter::broadcast`] stores every EVENT packet that asks for no acknowledgement and
///   is not volatile, and appends its offset (a string, unique per namespace) as the last
///   argument of the packet every recipient gets: `["event",…,"<offset>"]`, as Node's
///   adapters do. A socket's own emits go through `broadcast` to its own room, so they are
///   stored too. [`BroadcastPacket::with_offset`] does the appending.
/// - When a socket disconnects for a recoverable reason (transport close or error, ping
///   timeout, forced close, server shutting down), the server calls
///   [`Adapter::persist_session`] with `missed_packets` empty, before the socket leaves its
///   rooms. For any other reason it calls [`Adapter::session_ended`]; while the socket is
///   connected it calls [`Adapter::session_live`] (on connect and when its data changes).
/// - On a CONNECT whose auth has string `pid` and `offset`, the server calls
///   [`Adapter::restore_session`]. `Ok(Some(session))` means: the session existed, was not
///   expired, the offset is still known, and it is now removed (a pid restores at most
///   once); `missed_packets` are the stored packets after `offset` that the session's rooms
///   select (rooms and except of each broadcast), oldest first, offsets included. The
///   adapter must also make sure no packet broadcast after it computed `missed_packets` is
///   lost or delivered twice: the adapter joins the socket to its rooms and asks the
///   namespace to hold its packets ([`LocalSockets::hold`]) at the exact point of its
///   delivery order that `missed_packets` end at ([`LocalAdapter`]: under its lock;
///   `volley-redis`: in its stream reader's order), and the server releases them after the
///   replay. `Ok(None)` or `Err(_)`: the client gets a fresh session; an adapter that fails
///   after holding undoes it ([`LocalSockets::unhold`], leave the rooms).
/// - One offset per packet: an adapter that builds on [`LocalAdapter`] and has offsets of its
///   own (`volley-redis`'s stream entry ids) gives it [`LocalSockets`] without recovery
///   ([`LocalSockets::with_recovery`]`(None)`), so that [`LocalAdapter`] keeps no packets and
///   appends nothing.
#[derive(Clone, PartialEq)]
pub struct Session {
    /// The socket id, given back to the restored socket.
    pub id: SocketId,
    /// The private session id the client presents to restore it (never broadcast).
    pub pid: String,
    /// The rooms it was in.
    pub rooms: Vec<Room>,
    /// Its data.
    pub data: Value,
    /// Packets broadcast to it since it left, oldest first.
    pub missed_packets: Vec<BroadcastPacket>,
}

/// The private session id is a secret: `Debug` does not show it.
impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("pid", &"<redacted>")
            .field("rooms", &self.rooms)
            .field("data", &self.data)
            .field("missed_packets", &self.missed_packets.len())
            .finish()
    }
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

    /// Connection state recovery: keeps the session of a socket that just disconnected,
    /// and from now on the packets broadcast to its rooms, until it is restored or expires.
    /// The default: not supported.
    fn persist_session(&self, session: Session) -> Result<(), AdapterError> {
        let _ = session;
        Err(AdapterError::Unsupported(
            "connection state recovery".into(),
        ))
    }

    /// Connection state recovery: socket `session.id` is connected here (it has just
    /// connected or been restored, or its data changed); `session` is what would be
    /// persisted now (`missed_packets` empty). An adapter that keeps sessions outside this
    /// process (`volley-redis`'s streams mode) keeps a snapshot of it while the socket is
    /// connected, so that its client can be restored on another server if this one dies.
    /// Room changes are not reported here: they go through the adapter already
    /// ([`add_all`](Self::add_all), [`del`](Self::del), the bulk operations). The default
    /// does nothing.
    fn session_live(&self, session: &Session) {
        let _ = session;
    }

    /// Connection state recovery: socket `id`, whose private session id is `pid`, left for
    /// a reason that is not recoverable (the client or the server disconnected it on
    /// purpose): forget any snapshot [`session_live`](Self::session_live) kept. The default
    /// does nothing.
    fn session_ended(&self, id: &str, pid: &str) {
        let _ = (id, pid);
    }

    /// Connection state recovery: the session `pid` with the packets broadcast after the
    /// one with `offset`, if it is still kept (it is removed), as [`Session`] describes.
    /// The default: not supported.
    fn restore_session(
        &self,
        pid: &str,
        offset: &str,
    ) -> BoxFuture<Result<Option<Session>, AdapterError>> {
        let _ = (pid, offset);
        Box::pin(std::future::ready(Err(unsupported_recovery())))
    }

    /// Rooms and link state, for monitoring; read at scrape time, so it must be cheap and
    /// never wait. The default: nothing known.
    fn stats(&self) -> AdapterStats {
        AdapterStats::default()
    }
}

fn unsupported_recovery() -> AdapterError {
    AdapterError::Unsupported("connection state recovery is not supported by this adapter".into())
}

/// Makes the adapter of each namespace.
pub type AdapterFactory = Arc<dyn Fn(LocalSockets) -> Arc<dyn Adapter> + Send + Sync>;

/// What a server offers adapters about one namespace's sockets on this server: the narrow
/// interface behind [`LocalSockets`]. Sockets are named by id.
pub trait NamespaceSockets: Send + Sync {
    /// Sends an encoded packet to a connected local socket; whether it was queued (`false`
    /// too for a volatile packet the socket cannot take now).
    fn send(&self, id: &str, packet: &BroadcastPacket, volatile: bool) -> bool;

    /// Sends a packet to several local sockets and keeps in `ids` those it was queued for.
    /// The default calls [`send`](Self::send) for each; a namespace overrides it to find
    /// every recipient in one pass (a broadcast's hot path).
    fn send_all(&self, ids: &mut Vec<Room>, packet: &BroadcastPacket, volatile: bool) {
        ids.retain(|id| self.send(id, packet, volatile));
    }

    /// Sends a packet to the local sockets named by `ids` (the caller names each socket
    /// once) and returns how many it was queued for, without keeping their ids. The default
    /// calls [`send`](Self::send) for each; a namespace overrides it to find every
    /// recipient under one lock (a room broadcast's hot path).
    fn send_each(
        &self,
        ids: &mut dyn Iterator<Item = &str>,
        packet: &BroadcastPacket,
        volatile: bool,
    ) -> usize {
        ids.filter(|id| self.send(id, packet, volatile)).count()
    }

    /// Sends a packet to every socket connected to the namespace here except those named
    /// by `except` (ids, possibly unknown here or repeated), walking the namespace's own
    /// sockets once; returns how many it was queued for. `None` (the default) when the
    /// namespace cannot, or not now: the adapter then names every recipient itself
    /// ([`send_each`](Self::send_each)). The adapter calls it for a broadcast to every
    /// socket: a socket is in its own room from the moment it is connected until it
    /// disconnects, so "every socket the adapter knows" and "every connected socket" are
    /// the same set; a namespace that may hold sockets the adapter knows but it does not
    /// list yet (sockets being restored) answers `None`.
    fn send_to_all_except(
        &self,
        except: &mut dyn Iterator<Item = &str>,
        packet: &BroadcastPacket,
        volatile: bool,
    ) -> Option<usize> {
        let _ = (except, packet, volatile);
        None
    }

    /// Like [`send`](Self::send) for a packet asking for acknowledgement `ack_id`: the
    /// socket's answer goes to `sink`.
    fn send_with_ack(
        &self,
        id: &str,
        packet: &BroadcastPacket,
        ack_id: u64,
        volatile: bool,
        sink: &Arc<dyn AckSink>,
    ) -> bool;

    /// Describes a local socket, given its rooms.
    fn info(&self, id: &str, rooms: Vec<Room>) -> Option<SocketInfo>;

    /// Whether a socket is connected here.
    fn contains(&self, id: &str) -> bool;

    /// Disconnects a local socket; with `close`, its whole connection.
    fn disconnect(&self, id: &str, close: bool);

    /// A fresh acknowledgement id of the namespace.
    fn next_ack_id(&self) -> u64;

    /// Runs the handler of an event another server sent with `server_side_emit`.
    fn server_event(&self, event: &str, args: RawArgs, ack: Option<ServerAck>);

    /// Runs a room event through the namespace's room event handlers.
    fn room_event(&self, event: RoomEvent);

    /// The parser the server encodes packets with.
    fn parser(&self) -> Parser {
        Parser::Json
    }

    /// Connection state recovery: from now on, keep the packets sent to socket `id` (which
    /// is being restored and not connected yet) instead of dropping them; the server sends
    /// them once the socket is connected. The default does nothing.
    fn hold(&self, id: &str) {
        let _ = id;
    }

    /// Connection state recovery: stops holding packets for socket `id` and drops those
    /// kept, when a restore an adapter began fails before the server got the session. The
    /// default does nothing.
    fn unhold(&self, id: &str) {
        let _ = id;
    }
}

/// Access to a namespace's local sockets, for adapters. Cheap to clone; it does not keep
/// the namespace alive (operations on a dropped namespace do nothing).
#[derive(Clone)]
pub struct LocalSockets {
    ns: Weak<dyn NamespaceSockets>,
    /// Known before the namespace exists: factories run while it is being built.
    name: Arc<str>,
    recovery: Option<ConnectionStateRecovery>,
}

impl fmt::Debug for LocalSockets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalSockets")
            .field("namespace", &self.name)
            .finish_non_exhaustive()
    }
}

impl LocalSockets {
    /// The local sockets of namespace `name`, reached through `ns`.
    pub fn new(name: Arc<str>, ns: Weak<dyn NamespaceSockets>) -> Self {
        Self {
            ns,
            name,
            recovery: None,
        }
    }

    /// The same, for a server with connection state recovery on.
    pub fn with_recovery(mut self, recovery: Option<ConnectionStateRecovery>) -> Self {
        self.recovery = recovery;
        self
    }

    /// The server's connection state recovery settings, when it is on (known while the
    /// adapter factory runs).
    pub fn recovery(&self) -> Option<&ConnectionStateRecovery> {
        self.recovery.as_ref()
    }

    /// Asks the namespace to hold the packets for socket `id`, being restored (see
    /// [`NamespaceSockets::hold`]).
    pub fn hold(&self, id: &str) {
        self.with(|ns| ns.hold(id));
    }

    /// Stops holding the packets for socket `id` (see [`NamespaceSockets::unhold`]).
    pub fn unhold(&self, id: &str) {
        self.with(|ns| ns.unhold(id));
    }

    /// The namespace name (also while the adapter factory runs, before the namespace
    /// itself can be reached).
    pub fn namespace(&self) -> String {
        self.name.to_string()
    }

    fn with<R>(&self, f: impl FnOnce(&dyn NamespaceSockets) -> R) -> Option<R> {
        self.ns.upgrade().map(|ns| f(&*ns))
    }

    /// Sends a packet to a connected local socket; whether it was queued.
    pub fn send(&self, id: &str, packet: &BroadcastPacket, volatile: bool) -> bool {
        self.with(|ns| ns.send(id, packet, volatile))
            .unwrap_or(false)
    }

    /// Sends a packet to several connected local sockets; keeps in `ids` those it was
    /// queued for (none when the namespace is gone).
    pub fn send_all(&self, ids: &mut Vec<Room>, packet: &BroadcastPacket, volatile: bool) {
        if self.with(|ns| ns.send_all(ids, packet, volatile)).is_none() {
            ids.clear();
        }
    }

    /// Sends a packet to the connected local sockets named by `ids`; how many it was queued
    /// for (see [`NamespaceSockets::send_each`]).
    pub fn send_each(
        &self,
        ids: &mut dyn Iterator<Item = &str>,
        packet: &BroadcastPacket,
        volatile: bool,
    ) -> usize {
        self.with(|ns| ns.send_each(ids, packet, volatile))
            .unwrap_or(0)
    }

    /// Sends a packet to every connected local socket except those named by `except`; how
    /// many it was queued for, or `None` if the namespace cannot do it in one pass (see
    /// [`NamespaceSockets::send_to_all_except`]). A namespace that is gone: `Some(0)`.
    pub fn send_to_all_except(
        &self,
        except: &mut dyn Iterator<Item = &str>,
        packet: &BroadcastPacket,
        volatile: bool,
    ) -> Option<usize> {
        self.with(|ns| ns.send_to_all_except(except, packet, volatile))
            .unwrap_or(Some(0))
    }

    /// Sends a packet asking for acknowledgement `ack_id`, whose answer goes to `sink`.
    pub fn send_with_ack(
        &self,
        id: &str,
        packet: &BroadcastPacket,
        ack_id: u64,
        volatile: bool,
        sink: &Arc<dyn AckSink>,
    ) -> bool {
        self.with(|ns| ns.send_with_ack(id, packet, ack_id, volatile, sink))
            .unwrap_or(false)
    }

    /// Describes a local socket, given its rooms.
    pub fn info(&self, id: &str, rooms: Vec<Room>) -> Option<SocketInfo> {
        self.with(|ns| ns.info(id, rooms)).flatten()
    }

    /// Whether a socket is connected here.
    pub fn contains(&self, id: &str) -> bool {
        self.with(|ns| ns.contains(id)).unwrap_or(false)
    }

    /// Disconnects a local socket; with `close`, its whole connection.
    pub fn disconnect(&self, id: &str, close: bool) {
        self.with(|ns| ns.disconnect(id, close));
    }

    /// Runs the handler of an event another server sent with `server_side_emit`.
    pub fn server_event(&self, event: &str, args: RawArgs, ack: Option<ServerAck>) {
        self.with(|ns| ns.server_event(event, args, ack));
    }

    /// A fresh acknowledgement id of the namespace, for a packet an adapter builds itself
    /// (a broadcast with acknowledgements another server asked for).
    pub fn next_ack_id(&self) -> Option<u64> {
        self.with(|ns| ns.next_ack_id())
    }

    /// Runs a room event through the namespace's room event handlers.
    pub fn room_event(&self, event: RoomEvent) {
        self.with(|ns| ns.room_event(event));
    }

    /// The parser the server encodes packets with.
    pub fn parser(&self) -> Parser {
        self.with(|ns| ns.parser()).unwrap_or_default()
    }
}

/// Answers another server's `server_side_emit` with acknowledgement; at most once.
pub struct ServerAck {
    reply: Box<dyn FnOnce(RawArgs) + Send>,
}

impl fmt::Debug for ServerAck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerAck")
    }
}

impl ServerAck {
    /// Wraps the adapter's way of sending the answer back.
    pub fn new(reply: impl FnOnce(RawArgs) + Send + 'static) -> Self {
        Self {
            reply: Box::new(reply),
        }
    }

    /// Answers with one argument.
    pub fn send<T: serde::Serialize + ?Sized>(self, data: &T) -> Result<(), CodecError> {
        self.send_args(One(data))
    }

    /// Answers with several arguments.
    pub fn send_args(self, args: impl Args) -> Result<(), CodecError> {
        let raw = RawArgs::from_args(Parser::Json, &args)?;
        (self.reply)(raw);
        Ok(())
    }
}
