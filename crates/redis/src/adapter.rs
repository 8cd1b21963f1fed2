//! [`RedisAdapter`]: the adapter of one namespace, and its side of the adapter contract.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::mpsc;

use volley_core::adapter::{
    AckSink, Adapter, AdapterError, AdapterStats, BroadcastOptions, BroadcastPacket,
    ConnectionStateRecovery, LocalAdapter, LocalSockets, Room, RoomEvent, Session, SocketInfo,
};
use volley_core::{BoxFuture, RawArgs};

use crate::cluster::Shared;
use crate::config::{Mode, SubscriptionMode};
use crate::convert::{request_opts, strings_of, value_to_info, wire_opts};
use crate::live::{self, Live};
use crate::message::{Message, Packet};
use crate::packet::{args_to_values, packet_data};
use crate::request::Pending;
use crate::session::{Appended, deliver_unappended};
use crate::value::Value;

/// The adapter of one namespace: a [`LocalAdapter`] for this server's sockets, plus Redis
/// for the others.
pub struct RedisAdapter {
    pub(crate) local: LocalAdapter,
    pub(crate) nsp: String,
    pub(crate) shared: Arc<Shared>,
    pub(crate) pending: Mutex<HashMap<String, Pending>>,
    /// Streams mode: the server's connection state recovery settings, when it is on (in
    /// the other modes recovery is not supported, as with Node's adapters).
    pub(crate) recovery: Option<ConnectionStateRecovery>,
    /// Streams mode with recovery: this server's broadcasts until Redis took them.
    pub(crate) appended: Option<mpsc::UnboundedSender<Appended>>,
    /// Streams mode with recovery: the snapshots of the connected sockets' sessions.
    pub(crate) live: Option<Arc<Live>>,
}

impl fmt::Debug for RedisAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisAdapter")
            .field("nsp", &self.nsp)
            .field("uid", &self.shared.uid)
            .finish()
    }
}

impl RedisAdapter {
    pub(crate) fn create(shared: &Arc<Shared>, sockets: LocalSockets) -> Arc<dyn Adapter> {
        let nsp = sockets.namespace();
        let recovery = sockets.recovery().copied().filter(|_| shared.streams());
        // Offsets are the stream's entry ids (or none): the local part keeps no packets.
        let sockets = sockets.with_recovery(None);
        // Handles of dynamic namespaces (a pattern, or a predicate's label) are no real
        // namespace: they stay local, as Node's parent namespaces do.
        if !nsp.starts_with('/') || nsp.contains('*') {
            return Arc::new(LocalAdapter::new(sockets));
        }
        let local = match shared.config.mode {
            Mode::Sharded(
                mode @ (SubscriptionMode::Dynamic | SubscriptionMode::DynamicPrivate),
            ) => {
                let weak = Arc::downgrade(shared);
                let nsp = nsp.clone();
                LocalAdapter::with_room_hook(
                    sockets,
                    Arc::new(move |local: &LocalAdapter, e: &RoomEvent| {
                        let Some(shared) = weak.upgrade() else {
                            return;
                        };
                        match e {
                            RoomEvent::Create(room) if !room.is_empty() => {
                                // A room named after a local socket is that socket's own.
                                let private = !local.socket_rooms(room).is_empty();
                                if !private || mode == SubscriptionMode::DynamicPrivate {
                                    let ch = shared.room_channel(&nsp, room);
                                    shared.link.update_subs(|s| {
                                        s.shard.insert(ch);
                                    });
                                }
                            }
                            RoomEvent::Delete(room) => {
                                let ch = shared.room_channel(&nsp, room);
                                if ch != shared.main_channel(&nsp)
                                    && ch != shared.own_response_channel(&nsp)
                                {
                                    shared.link.update_subs(|s| {
                                        s.shard.remove(&ch);
                                    });
                                }
                            }
                            _ => {}
                        }
                    }),
                )
            }
            _ => LocalAdapter::new(sockets),
        };
        let (appended, appended_rx) = if recovery.is_some() {
            let (tx, rx) = mpsc::unbounded_channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let adapter = Arc::new(Self {
            local,
            nsp: nsp.clone(),
            shared: shared.clone(),
            pending: Mutex::new(HashMap::new()),
            recovery,
            appended,
            live: recovery.map(|_| Arc::new(Live::default())),
        });
        if let Some(rx) = appended_rx {
            tokio::spawn(deliver_unappended(Arc::downgrade(&adapter), rx));
        }
        if let (Some(live), Some(r)) = (&adapter.live, recovery) {
            let every = (r.max_disconnection_duration / 4).max(live::COALESCE);
            tokio::spawn(live::run(Arc::downgrade(&adapter), live.clone(), every));
        }
        shared
            .namespaces
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(nsp.clone(), Arc::downgrade(&adapter));
        shared.subscribe_namespace(&nsp);
        adapter
    }

    /// The local part.
    pub fn local(&self) -> &LocalAdapter {
        &self.local
    }

    /// The local rooms, and the state of the link to Redis this adapter shares with the
    /// server's other namespaces (what [`Adapter::stats`] returns).
    pub fn link_stats(&self) -> AdapterStats {
        let link = &self.shared.link;
        let c = &link.counters;
        let mut stats = AdapterStats::local(self.local.room_count());
        stats.link_up = Some(link.is_up());
        stats.incoming_backlog = link.incoming_backlog() as u64;
        stats.dropped_incoming_total = c.dropped_incoming.load(Ordering::Relaxed);
        stats.dropped_outgoing_total = c.dropped_outgoing.load(Ordering::Relaxed);
        stats.reconnects_total = c.reconnects.load(Ordering::Relaxed);
        stats
    }
}

/// The adapter trait needs `&self`; the cluster operations need an `Arc` to outlive the
/// call. Namespaces hold the adapter in an `Arc`, and the registry keeps a `Weak` to it.
impl RedisAdapter {
    pub(crate) fn arc(&self) -> Option<Arc<Self>> {
        self.shared
            .namespaces
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&self.nsp)
            .and_then(Weak::upgrade)
            .filter(|a| std::ptr::eq(Arc::as_ptr(a), self))
    }

    pub(crate) fn publish_or_log(&self, message: &Message) {
        if let Err(e) = self.shared.publish_request(&self.nsp, message) {
            tracing::debug!(error = %e, "redis adapter: not published");
        }
    }
}

impl Adapter for RedisAdapter {
    fn stats(&self) -> AdapterStats {
        self.link_stats()
    }

    fn add_all(&self, id: &str, rooms: &[Room]) {
        self.local.add_all(id, rooms);
        self.live_rooms_changed(id);
    }

    fn del(&self, id: &str, room: &str) {
        self.local.del(id, room);
        self.live_rooms_changed(id);
    }

    fn del_all(&self, id: &str) {
        self.local.del_all(id);
        self.live_rooms_changed(id);
    }

    fn socket_rooms(&self, id: &str) -> Vec<Room> {
        self.local.socket_rooms(id)
    }

    fn broadcast(&self, packet: &BroadcastPacket, opts: &BroadcastOptions) {
        if !opts.flags.local {
            match packet_data(packet) {
                Ok(data) => {
                    let wire = Packet {
                        kind: 2,
                        data,
                        nsp: self.shared.classic().then(|| self.nsp.clone()),
                    };
                    let msg = Message::Broadcast {
                        packet: wire,
                        opts: wire_opts(opts),
                        request_id: None,
                    };
                    if let (Some(queue), false) = (&self.appended, opts.flags.volatile) {
                        // Recovery: delivered here when the stream reader reads it back,
                        // with its entry id, in stream order.
                        let offset = self.shared.append_broadcast(&self.nsp, &msg);
                        if let Err(e) = &offset {
                            tracing::debug!(error = %e, "redis adapter: not appended");
                        }
                        let _ = queue.send(Appended {
                            packet: packet.clone(),
                            opts: opts.clone(),
                            offset: offset.ok(),
                        });
                        return;
                    }
                    self.publish_or_log(&msg);
                }
                Err(e) => tracing::debug!(error = %e, "redis adapter: cannot read packet"),
            }
        }
        self.local.fan_out(packet, opts);
    }

    fn broadcast_with_ack(
        &self,
        packet: &BroadcastPacket,
        ack_id: u64,
        opts: &BroadcastOptions,
        sink: Arc<dyn AckSink>,
    ) {
        if !opts.flags.local {
            if let (Some(me), Ok(data)) = (self.arc(), packet_data(packet)) {
                let request_id = self.shared.next_request_id();
                let ttl = opts
                    .flags
                    .timeout
                    .unwrap_or(self.shared.config.requests_timeout);
                me.register_acks(&request_id, sink.clone(), ttl);
                let packet = Packet {
                    kind: 2,
                    data,
                    nsp: self.shared.classic().then(|| self.nsp.clone()),
                };
                let msg = Message::Broadcast {
                    packet,
                    opts: wire_opts(opts),
                    request_id: Some(request_id),
                };
                self.publish_or_log(&msg);
            }
        }
        let n = self
            .local
            .broadcast_with_ack_local(packet, ack_id, opts, &sink);
        sink.client_count(n);
    }

    fn sockets(&self, opts: &BroadcastOptions) -> BoxFuture<Result<Vec<String>, AdapterError>> {
        let fetch = self.fetch_sockets(opts);
        Box::pin(async move { Ok(fetch.await?.into_iter().map(|s| s.id.into()).collect()) })
    }

    fn fetch_sockets(
        &self,
        opts: &BroadcastOptions,
    ) -> BoxFuture<Result<Vec<SocketInfo>, AdapterError>> {
        let mut list = self.local.fetch_local(opts);
        if opts.flags.local {
            return Box::pin(std::future::ready(Ok(list)));
        }
        let Some(me) = self.arc() else {
            return Box::pin(std::future::ready(Ok(list)));
        };
        let opts = request_opts(opts, self.shared.classic());
        Box::pin(async move {
            let request_id = me.shared.next_request_id();
            let msg = Message::FetchSockets {
                opts,
                request_id: request_id.clone(),
            };
            for reply in me.request(request_id, msg).await? {
                if let Message::FetchSocketsResponse { sockets, .. } = reply {
                    list.extend(sockets.iter().filter_map(value_to_info));
                }
            }
            Ok(list)
        })
    }

    fn add_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]) {
        self.local.add_sockets(opts, rooms);
        self.live_all_rooms_changed();
        if !opts.flags.local {
            self.publish_or_log(&Message::SocketsJoin {
                opts: request_opts(opts, self.shared.classic()),
                rooms: strings_of(rooms),
            });
        }
    }

    fn del_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]) {
        self.local.del_sockets(opts, rooms);
        self.live_all_rooms_changed();
        if !opts.flags.local {
            self.publish_or_log(&Message::SocketsLeave {
                opts: request_opts(opts, self.shared.classic()),
                rooms: strings_of(rooms),
            });
        }
    }

    fn disconnect_sockets(&self, opts: &BroadcastOptions, close: bool) {
        if !opts.flags.local {
            self.publish_or_log(&Message::DisconnectSockets {
                opts: request_opts(opts, self.shared.classic()),
                close,
            });
        }
        self.local.disconnect_local(opts, close);
    }

    fn all_rooms(&self) -> BoxFuture<Result<Vec<Room>, AdapterError>> {
        let local = self.local.local_rooms();
        if !self.shared.classic() {
            // As Node's sharded adapter, which has no allRooms().
            return Box::pin(std::future::ready(Err(AdapterError::Unsupported(
                "allRooms() is not supported by the sharded and streams adapters".into(),
            ))));
        }
        let Some(me) = self.arc() else {
            return Box::pin(std::future::ready(Ok(local)));
        };
        Box::pin(async move {
            let request_id = me.shared.next_request_id();
            let msg = Message::AllRooms {
                request_id: request_id.clone(),
            };
            let mut set: std::collections::BTreeSet<Room> = local.into_iter().collect();
            for reply in me.request(request_id, msg).await? {
                if let Message::AllRoomsResponse { rooms, .. } = reply {
                    set.extend(rooms.iter().map(|r| Room::from(r.as_str())));
                }
            }
            Ok(set.into_iter().collect())
        })
    }

    fn server_count(&self) -> BoxFuture<Result<usize, AdapterError>> {
        let Some(me) = self.arc() else {
            return Box::pin(std::future::ready(Ok(1)));
        };
        Box::pin(async move { me.server_count_now().await })
    }

    fn server_side_emit(
        &self,
        event: &str,
        args: &RawArgs,
        sink: Option<Arc<dyn AckSink>>,
    ) -> Result<(), AdapterError> {
        let link = &self.shared.link;
        if !link.is_healthy() {
            return Err(link.unavailable());
        }
        let mut packet = vec![Value::Str(event.to_owned())];
        packet.extend(args_to_values(args));
        let request_id = match sink {
            Some(sink) => {
                let me = self.arc().ok_or(AdapterError::Closed)?;
                let rid = self.shared.next_request_id();
                me.register_acks(&rid, sink, self.shared.config.requests_timeout);
                Some(rid)
            }
            None => None,
        };
        self.shared
            .publish_request(&self.nsp, &Message::ServerSideEmit { packet, request_id })
    }

    /// Streams mode: keeps the session in Redis (`sio:session:<pid>`) for the recovery
    /// duration, so any server of the cluster can restore it. The classic and sharded
    /// modes do not support recovery (as Node's adapters, whose `persistSession` does
    /// nothing): every reconnection is a fresh session.
    fn persist_session(&self, session: Session) -> Result<(), AdapterError> {
        if !self.shared.streams() {
            return Err(AdapterError::Unsupported(
                "connection state recovery needs the streams mode".into(),
            ));
        }
        self.persist(&session)
    }

    /// Streams mode with recovery: keeps a snapshot of a connected socket's session in
    /// Redis, so that it can be restored on another server if this one dies (see the
    /// `live` module).
    fn session_live(&self, session: &Session) {
        self.live_update(session);
    }

    /// Streams mode with recovery: deletes the connected socket's snapshot.
    fn session_ended(&self, id: &str, _pid: &str) {
        self.live_end(id);
    }

    /// Streams mode: takes the session out of Redis, with the broadcasts it missed after
    /// `offset` (read from the stream, each with its entry id as last argument).
    fn restore_session(
        &self,
        pid: &str,
        offset: &str,
    ) -> BoxFuture<Result<Option<Session>, AdapterError>> {
        if !self.shared.streams() || self.recovery.is_none() {
            return Box::pin(std::future::ready(Err(AdapterError::Unsupported(
                "connection state recovery needs the streams mode and the server's recovery on"
                    .into(),
            ))));
        }
        let Some(me) = self.arc() else {
            return Box::pin(std::future::ready(Err(AdapterError::Closed)));
        };
        let (pid, offset) = (pid.to_owned(), offset.to_owned());
        Box::pin(async move { me.restore(&pid, &offset).await })
    }
}
