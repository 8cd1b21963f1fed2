//! The narrow interface adapters reach a namespace's local sockets through.

use std::sync::Arc;

use serde_json::Value;
use volley_core::Parser;

use super::NsInner;
use crate::adapter::{
    AckSink, BroadcastPacket, NamespaceSockets, Room, RoomEvent, ServerAck, SocketInfo,
};
use crate::socket::SocketInner;
use crate::{RawArgs, SocketId};

/// What adapters see of a namespace: its sockets on this server, by id.
impl NamespaceSockets for NsInner {
    fn send(&self, id: &str, packet: &BroadcastPacket, volatile: bool) -> bool {
        if self.recovery.is_some() {
            let mut held = self.held();
            if let Some(q) = held.get_mut(id) {
                if volatile {
                    self.stats.volatile_dropped();
                } else {
                    q.push(packet.clone());
                }
                return !volatile;
            }
            drop(held);
        }
        self.get(id)
            .is_some_and(|s| s.send_broadcast(packet.encoded(), volatile))
    }

    fn send_all(&self, ids: &mut Vec<Room>, packet: &BroadcastPacket, volatile: bool) {
        if self.recovery.is_some() {
            // Held sockets (being restored) take the one-by-one path.
            ids.retain(|id| self.send(id, packet, volatile));
            return;
        }
        // One read lock and no socket handle cloned per recipient. Queuing a frame never
        // takes this lock (a full queue closes the session from its own task).
        let sockets = self.sockets.read().unwrap_or_else(|p| p.into_inner());
        let encoded = packet.encoded();
        ids.retain(|id| {
            sockets
                .get(&**id)
                .is_some_and(|s| s.send_broadcast(encoded, volatile))
        });
    }

    fn send_each(
        &self,
        ids: &mut dyn Iterator<Item = &str>,
        packet: &BroadcastPacket,
        volatile: bool,
    ) -> usize {
        if self.recovery.is_some() {
            // Held sockets (being restored) take the one-by-one path.
            return ids.filter(|id| self.send(id, packet, volatile)).count();
        }
        let sockets = self.sockets.read().unwrap_or_else(|p| p.into_inner());
        let encoded = packet.encoded();
        ids.filter(|id| {
            sockets
                .get(*id)
                .is_some_and(|s| s.send_broadcast(encoded, volatile))
        })
        .count()
    }

    fn send_to_all_except(
        &self,
        except: &mut dyn Iterator<Item = &str>,
        packet: &BroadcastPacket,
        volatile: bool,
    ) -> Option<usize> {
        if self.recovery.is_some() {
            // A socket being restored is in its rooms but not in the map yet.
            return None;
        }
        let sockets = self.sockets.read().unwrap_or_else(|p| p.into_inner());
        // Excluded sockets by address: the walk then never reads a recipient's id.
        let mut skip: Vec<*const SocketInner> = except
            .filter_map(|id| sockets.get(id))
            .map(|s| Arc::as_ptr(&s.inner))
            .collect();
        skip.sort_unstable();
        skip.dedup();
        let encoded = packet.encoded();
        Some(
            sockets
                .values()
                .filter(|s| skip.is_empty() || skip.binary_search(&Arc::as_ptr(&s.inner)).is_err())
                .filter(|s| s.send_broadcast(encoded, volatile))
                .count(),
        )
    }

    fn hold(&self, id: &str) {
        if self.recovery.is_some() {
            self.held().entry(SocketId::from(id)).or_default();
        }
    }

    fn unhold(&self, id: &str) {
        NsInner::unhold(self, id);
    }

    fn send_with_ack(
        &self,
        id: &str,
        packet: &BroadcastPacket,
        ack_id: u64,
        volatile: bool,
        sink: &Arc<dyn AckSink>,
    ) -> bool {
        let Some(s) = self.get(id) else {
            return false;
        };
        if !s.connected() {
            return false;
        }
        if volatile && !s.is_writable() {
            self.stats.volatile_dropped();
            return false;
        }
        s.register_broadcast_ack(ack_id, sink.clone());
        let sent = s.send_encoded(packet.encoded()).is_ok();
        if !sent {
            s.forget_ack(ack_id);
        }
        sent
    }

    fn info(&self, id: &str, rooms: Vec<Room>) -> Option<SocketInfo> {
        let s = self.get(id)?;
        Some(SocketInfo {
            id: s.id().clone(),
            handshake: serde_json::to_value(s.handshake()).unwrap_or(Value::Null),
            rooms,
            data: s.data_value(),
        })
    }

    fn contains(&self, id: &str) -> bool {
        self.get(id).is_some()
    }

    fn disconnect(&self, id: &str, close: bool) {
        if let Some(s) = self.get(id) {
            if close {
                s.disconnect_all();
            } else {
                s.disconnect();
            }
        }
    }

    fn next_ack_id(&self) -> u64 {
        NsInner::next_ack_id(self)
    }

    fn server_event(&self, event: &str, args: RawArgs, ack: Option<ServerAck>) {
        NsInner::server_event(self, event, args, ack);
    }

    fn room_event(&self, event: RoomEvent) {
        NsInner::room_event(self, event);
    }

    fn parser(&self) -> Parser {
        self.parser
    }
}
