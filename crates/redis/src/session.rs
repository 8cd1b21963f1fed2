//! Streams mode: connection state recovery across the cluster, as
//! `@socket.io/redis-streams-adapter` does it. A disconnected socket's session is kept in
//! Redis (`SET <prefix><pid> base64(msgpack {sid, pid, rooms, data}) PX <ttl>`); on
//! restore it is taken (`GET` + `DEL` in one `MULTI`), its offset must still be in the
//! stream, and the broadcasts it missed are read back from the stream after that offset.
//!
//! With recovery on, every broadcast reaches this server's local sockets from the stream
//! reader, in stream order, with its entry id as last argument (this server's own too: one
//! offset per packet, the one any server can restore from). A restore joins the socket to
//! its rooms, and holds what is sent to it, at an exact position of that order (a barrier
//! the processing task runs once it delivered the client's offset), then reads the missed
//! broadcasts up to that position: each one is replayed or delivered after, exactly once.

use std::sync::Weak;

use tokio::sync::{mpsc, oneshot};
use volley_core::adapter::{
    Adapter, AdapterError, BroadcastOptions, BroadcastPacket, Room, Session,
};

use crate::adapter::RedisAdapter;
use crate::convert::request_opts;
use crate::link::Incoming;
use crate::message::{
    Message, decode_session, decode_stream_entry, encode_session, next_entry_id, parse_entry_id,
    reaches,
};
use crate::packet::build_packet;
use crate::reader::entries;
use crate::value::Value;

/// How many XRANGE pages a restore reads at most (Node: 100 calls).
const MAX_PAGES: usize = 100;
/// Entries per XRANGE page.
const PAGE: usize = 1000;

impl RedisAdapter {
    pub(crate) fn session_key(&self, pid: &str) -> String {
        format!("{}{pid}", self.shared.config.streams.session_key_prefix)
    }

    /// Keeps `session` in Redis for the recovery duration (queued after the publishes
    /// made so far).
    pub(crate) fn persist(&self, session: &Session) -> Result<(), AdapterError> {
        if self.recovery.is_none() {
            return Err(AdapterError::Unsupported(
                "connection state recovery is off".into(),
            ));
        }
        let cmd = self.persist_cmd(session, &encode_session(session));
        self.shared.link.send(cmd)
    }

    /// Takes session `pid` out of Redis, joins the socket to its rooms at a position of the
    /// stream order at or after `offset`, and reads the broadcasts it missed up to that
    /// position. `None` when the offset is malformed or gone from the stream, or the session
    /// is unknown or expired.
    ///
    /// The pid is a bearer secret: whoever presents it takes the session over. If its socket
    /// is still connected (its server kept a live snapshot and has not noticed the client
    /// left, or another client presents a copied pid), that socket is disconnected here and
    /// on the other servers (`disconnectSockets` to its own room, which Node servers obey
    /// too), without being persisted, so one id never has two live sockets.
    pub(crate) async fn restore(
        &self,
        pid: &str,
        offset: &str,
    ) -> Result<Option<Session>, AdapterError> {
        if parse_entry_id(offset).is_none() {
            return Ok(None);
        }
        let link = &self.shared.link;
        let stream = &self.shared.config.streams.stream_name;
        let key = self.session_key(pid);
        let mut take = redis::pipe();
        take.atomic().get(&key).del(&key).ignore();
        let (raw,): (Option<Vec<u8>>,) = link.query_pipe(&take).await?;
        let found: redis::Value = link
            .query(redis::cmd("XRANGE").arg(stream).arg(offset).arg(offset))
            .await?;
        let (Some(raw), false) = (raw, entries(&found).is_empty()) else {
            return Ok(None);
        };
        let mut session = decode_session(&raw).map_err(AdapterError::Encode)?;
        self.take_over(session.id.as_str());
        let Some(until) = self.barrier(&session, offset).await? else {
            return Ok(None);
        };
        match self.missed_between(&session, offset, &until).await {
            Ok(missed) => {
                session.missed_packets = missed;
                Ok(Some(session))
            }
            Err(e) => {
                self.undo_rejoin(&session.id);
                Err(e)
            }
        }
    }

    /// Disconnects the sockets of id `sid` connected here and on the other servers, as the
    /// session is being restored for another connection.
    fn take_over(&self, sid: &str) {
        let sockets = self.local.local_sockets();
        if sockets.contains(sid) {
            tracing::debug!(sid, "session taken over: disconnecting its old socket");
            self.live_forget(sid);
            sockets.disconnect(sid, false);
        }
        let opts = BroadcastOptions {
            rooms: vec![Room::from(sid)],
            ..BroadcastOptions::default()
        };
        self.publish_or_log(&Message::DisconnectSockets {
            opts: request_opts(&opts, false),
            close: false,
        });
    }

    /// Asks the processing task to join the socket to its rooms (holding its packets) once
    /// it delivered `offset`; the position it did it at. `None` when the socket is connected
    /// here after all.
    async fn barrier(
        &self,
        session: &Session,
        offset: &str,
    ) -> Result<Option<String>, AdapterError> {
        let queue = self.shared.barriers.as_ref().ok_or(AdapterError::Closed)?;
        let (reply, rx) = oneshot::channel();
        let barrier = Barrier {
            nsp: self.nsp.clone(),
            sid: session.id.as_str().to_owned(),
            rooms: session.rooms.clone(),
            offset: offset.to_owned(),
            reply,
        };
        let wait = self.shared.config.requests_timeout;
        let sent = tokio::time::timeout(wait, queue.send(Incoming::Barrier(barrier))).await;
        if !matches!(sent, Ok(Ok(()))) {
            return Err(AdapterError::Unavailable(
                "the stream reader is not running".into(),
            ));
        }
        match tokio::time::timeout(wait, rx).await {
            Ok(Ok(position)) => Ok(position),
            // Dropped before it ran: nothing to undo. Timed out: `rx` is dropped, so the
            // processing task undoes the join if it runs the barrier later.
            Ok(Err(_)) => Err(AdapterError::Closed),
            Err(_) => Err(AdapterError::Unavailable(format!(
                "the stream reader did not reach offset {offset} within {wait:?}"
            ))),
        }
    }

    /// The broadcasts after `offset` up to `until` (both entry ids) that reach the session.
    async fn missed_between(
        &self,
        session: &Session,
        offset: &str,
        until: &str,
    ) -> Result<Vec<BroadcastPacket>, AdapterError> {
        let link = &self.shared.link;
        let stream = &self.shared.config.streams.stream_name;
        let mut missed = Vec::new();
        let mut from = offset.to_owned();
        for _ in 0..MAX_PAGES {
            let Some(start) = next_entry_id(&from) else {
                break;
            };
            if parse_entry_id(&start) > parse_entry_id(until) {
                break;
            }
            let page: redis::Value = link
                .query(
                    redis::cmd("XRANGE")
                        .arg(stream)
                        .arg(&start)
                        .arg(until)
                        .arg("COUNT")
                        .arg(PAGE),
                )
                .await?;
            let page = entries(&page);
            for (id, fields) in &page {
                if let Some(p) = self.missed_packet(session, id, fields) {
                    missed.push(p);
                }
                from.clone_from(id);
            }
            if page.len() < PAGE {
                break;
            }
        }
        Ok(missed)
    }

    /// Runs a restore's barrier in the processing task, at stream position `at`: joins the
    /// socket to its rooms and holds its packets, unless the restore gave up or the socket
    /// is connected here.
    pub(crate) fn run_barrier(&self, b: Barrier, at: &str) {
        if b.is_abandoned() {
            return;
        }
        let sockets = self.local.local_sockets();
        if sockets.contains(&b.sid) {
            let _ = b.reply.send(None);
            return;
        }
        sockets.hold(&b.sid);
        self.local.add_all(&b.sid, &b.rooms);
        if b.reply.send(Some(at.to_owned())).is_err() {
            self.undo_rejoin(&b.sid);
        }
    }

    fn undo_rejoin(&self, sid: &str) {
        self.local.del_all(sid);
        self.local.local_sockets().unhold(sid);
    }

    /// The packet of a stream entry, with its id as last argument, if it is a broadcast of
    /// this namespace that reaches the session's rooms.
    fn missed_packet(
        &self,
        session: &Session,
        id: &str,
        fields: &[(bytes::Bytes, bytes::Bytes)],
    ) -> Option<BroadcastPacket> {
        let field = |name: &[u8]| fields.iter().find(|(k, _)| &k[..] == name);
        let nsp_ok = field(b"nsp").is_some_and(|(_, v)| v[..] == *self.nsp.as_bytes());
        let type_ok = field(b"type").is_some_and(|(_, v)| &v[..] == b"3");
        if !nsp_ok || !type_ok {
            return None;
        }
        let env = decode_stream_entry(fields).ok()?;
        let Message::Broadcast { packet, opts, .. } = env.message else {
            return None;
        };
        if !reaches(&session.rooms, &opts) {
            return None;
        }
        let mut data = packet.data;
        if let Value::Array(args) = &mut data {
            args.push(Value::Str(id.to_owned()));
        }
        Some(build_packet(
            self.local.local_sockets().parser(),
            &self.nsp,
            &data,
            None,
        ))
    }
}

/// A restore waiting for the processing task to reach its offset.
#[derive(Debug)]
pub(crate) struct Barrier {
    pub(crate) nsp: String,
    pub(crate) sid: String,
    pub(crate) rooms: Vec<Room>,
    /// The client's offset: the barrier runs once the entry is delivered here.
    pub(crate) offset: String,
    /// The position it ran at; `None` when the socket is connected here.
    pub(crate) reply: oneshot::Sender<Option<String>>,
}

impl Barrier {
    /// Whether the restore gave up waiting.
    pub(crate) fn is_abandoned(&self) -> bool {
        self.reply.is_closed()
    }
}

/// A broadcast of this server appended to the stream, until Redis answered.
pub(crate) struct Appended {
    /// The packet as the server encoded it.
    pub(crate) packet: BroadcastPacket,
    pub(crate) opts: BroadcastOptions,
    /// The stream entry id, once the XADD is done; `None` when it could not be queued.
    pub(crate) offset: Option<oneshot::Receiver<String>>,
}

/// With recovery on, this server's broadcasts reach its local sockets when the stream
/// reader reads them back (with their entry id, in stream order). One that did not make it
/// into the stream (Redis unreachable) is delivered here as it is, without an offset, as
/// Node does.
pub(crate) async fn deliver_unappended(
    adapter: Weak<RedisAdapter>,
    mut queue: mpsc::UnboundedReceiver<Appended>,
) {
    while let Some(a) = queue.recv().await {
        let appended = match a.offset {
            Some(rx) => rx.await.is_ok(),
            None => false,
        };
        if appended {
            continue;
        }
        let Some(me) = adapter.upgrade() else {
            return;
        };
        me.local.fan_out(&a.packet, &a.opts);
    }
}
