//! Streams mode: connection state recovery across the cluster, as
//! `@socket.io/redis-streams-adapter` does it. A disconnected socket's session is kept in
//! Redis (`SET <prefix><pid> base64(msgpack {sid, pid, rooms, data}) PX <ttl>`); on
//! restore it is taken (`GET` + `DEL` in one `MULTI`), its offset must still be in the
//! stream, and the broadcasts it missed are read back from the stream after that offset.
//! With recovery on, this server's own broadcasts reach its local sockets with their offset
//! (the stream entry id) as last argument, once Redis gave it, in order.

use std::sync::Weak;

use tokio::sync::{mpsc, oneshot};
use volley_core::adapter::{AdapterError, BroadcastOptions, BroadcastPacket, Session};

use crate::adapter::RedisAdapter;
use crate::config::DEFAULT_MAX_DISCONNECTION_DURATION;
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
    fn session_key(&self, pid: &str) -> String {
        format!("{}{pid}", self.shared.config.streams.session_key_prefix)
    }

    /// Keeps `session` in Redis for the recovery duration (queued after the publishes
    /// made so far).
    pub(crate) fn persist(&self, session: &Session) -> Result<(), AdapterError> {
        let ttl = self
            .shared
            .config
            .streams
            .recovery
            .unwrap_or(DEFAULT_MAX_DISCONNECTION_DURATION);
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.session_key(&session.pid))
            .arg(encode_session(session))
            .arg("PX")
            .arg(ttl.as_millis() as u64);
        self.shared.link.send(cmd)
    }

    /// Takes session `pid` out of Redis and reads the broadcasts it missed after `offset`.
    /// `None` when the offset is malformed or gone from the stream, or the session is
    /// unknown or expired.
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
        let mut from = offset.to_owned();
        for _ in 0..MAX_PAGES {
            let Some(start) = next_entry_id(&from) else {
                break;
            };
            let page: redis::Value = link
                .query(
                    redis::cmd("XRANGE")
                        .arg(stream)
                        .arg(start)
                        .arg("+")
                        .arg("COUNT")
                        .arg(PAGE),
                )
                .await?;
            let page = entries(&page);
            for (id, fields) in &page {
                if let Some(p) = self.missed_packet(&session, id, fields) {
                    session.missed_packets.push(p);
                }
                from.clone_from(id);
            }
            if page.len() < PAGE {
                break;
            }
        }
        Ok(Some(session))
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

/// A local delivery waiting for its offset.
pub(crate) struct Ordered {
    /// The packet as the server encoded it (delivered as is when there is no offset).
    pub(crate) packet: BroadcastPacket,
    /// The broadcast as published (its packet's `[event, ...args]` gets the offset).
    pub(crate) message: Message,
    pub(crate) opts: BroadcastOptions,
    /// The stream entry id, once the XADD is done; `None` when it could not be queued.
    pub(crate) offset: Option<oneshot::Receiver<String>>,
}

/// Delivers this server's broadcasts to its local sockets in order, each with its offset
/// as last argument (as Node's `ClusterAdapter` does with recovery on). Without an offset
/// (Redis unreachable), the packet is delivered as it is, as in Node.
pub(crate) async fn deliver_in_order(
    adapter: Weak<RedisAdapter>,
    mut queue: mpsc::UnboundedReceiver<Ordered>,
) {
    while let Some(o) = queue.recv().await {
        let offset = match o.offset {
            Some(rx) => rx.await.ok(),
            None => None,
        };
        let Some(me) = adapter.upgrade() else {
            return;
        };
        let packet = match (offset, o.message) {
            (Some(id), Message::Broadcast { packet, .. }) => match packet.data {
                Value::Array(mut args) => {
                    args.push(Value::Str(id));
                    build_packet(
                        me.local.local_sockets().parser(),
                        &me.nsp,
                        &Value::Array(args),
                        None,
                    )
                }
                _ => o.packet,
            },
            _ => o.packet,
        };
        me.local.deliver(&packet, &o.opts);
    }
}
