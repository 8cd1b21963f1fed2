//! What the adapter does with the other servers' requests and broadcasts.

use std::sync::Arc;
use std::time::Instant;

use volley_core::RawArgs;
use volley_core::adapter::{AckSink, Adapter, BroadcastOptions, Room, ServerAck};

use crate::adapter::RedisAdapter;
use crate::cluster::Shared;
use crate::convert::{info_to_value, local_opts, rooms_of, strings_of};
use crate::message::{Envelope, Message};
use crate::packet::{args_to_values, build_packet, values_to_args};
use crate::value::Value;

/// Reports a remote broadcast-with-ack's local results back to the requester.
pub(crate) struct RemoteAckSink {
    shared: Arc<Shared>,
    nsp: String,
    requester: Option<String>,
    request_id: String,
    deadline: Instant,
}

impl AckSink for RemoteAckSink {
    fn client_count(&self, n: usize) {
        let msg = Message::BroadcastClientCount {
            request_id: self.request_id.clone(),
            client_count: n as u64,
        };
        self.shared
            .publish_response(&self.nsp, self.requester.as_deref(), &msg);
    }

    fn response(&self, _socket_id: &str, args: RawArgs) {
        let packet = args_to_values(&args)
            .into_iter()
            .next()
            .unwrap_or(Value::Null);
        let msg = Message::BroadcastAck {
            request_id: self.request_id.clone(),
            packet,
        };
        self.shared
            .publish_response(&self.nsp, self.requester.as_deref(), &msg);
    }

    fn is_closed(&self) -> bool {
        Instant::now() >= self.deadline
    }
}

impl RedisAdapter {
    /// A message of another server. `offset` is the id of the stream entry it came in
    /// (streams mode).
    pub(crate) fn on_message(
        self: &Arc<Self>,
        env: Envelope,
        on_response_channel: bool,
        offset: Option<&str>,
    ) {
        let own = env.uid.as_deref() == Some(self.shared.uid.as_str());
        // With recovery, this server's own broadcasts are delivered here too, from the
        // stream: in stream order, with their entry id.
        let own_recoverable = self.recovery.is_some()
            && offset.is_some()
            && matches!(
                &env.message,
                Message::Broadcast { request_id: None, opts, .. } if !opts.volatile()
            );
        if own && !own_recoverable {
            return;
        }
        if env.nsp.as_deref().is_some_and(|n| n != self.nsp) {
            return;
        }
        let msg = env.message;
        if msg.is_response() {
            // Sharded: only what arrived on our own response channel is for us.
            if self.shared.classic() || on_response_channel {
                self.on_response(msg);
            }
            return;
        }
        let requester = env.uid;
        match msg {
            Message::Broadcast {
                packet,
                opts,
                request_id,
            } => {
                // Classic packets carry their namespace ("/" when absent).
                if self.shared.classic() && packet.nsp.as_deref().unwrap_or("/") != self.nsp {
                    return;
                }
                let local_opts = local_opts(&opts);
                match request_id {
                    None => {
                        let mut data = packet.data;
                        // Connection state recovery: the entry id is the client's offset.
                        if let (Some(offset), Some(_), Value::Array(args)) =
                            (offset, self.recovery, &mut data)
                        {
                            if packet.kind == 2 && !local_opts.flags.volatile {
                                args.push(Value::Str(offset.to_owned()));
                            }
                        }
                        let parser = self.local.local_sockets().parser();
                        let p = build_packet(parser, &self.nsp, &data, None);
                        self.local.fan_out(&p, &local_opts);
                    }
                    Some(request_id) => {
                        let Some(id) = self.local.local_sockets().next_ack_id() else {
                            return;
                        };
                        let parser = self.local.local_sockets().parser();
                        let p = build_packet(parser, &self.nsp, &packet.data, Some(id));
                        let ttl = local_opts
                            .flags
                            .timeout
                            .unwrap_or(self.shared.config.requests_timeout);
                        let sink: Arc<dyn AckSink> = Arc::new(RemoteAckSink {
                            shared: self.shared.clone(),
                            nsp: self.nsp.clone(),
                            requester,
                            request_id,
                            deadline: Instant::now() + ttl,
                        });
                        let n = self
                            .local
                            .broadcast_with_ack_local(&p, id, &local_opts, &sink);
                        sink.client_count(n);
                    }
                }
            }
            Message::SocketsJoin { opts, rooms } => {
                self.local
                    .add_sockets(&local_opts(&opts), &rooms_of(&rooms));
                self.live_all_rooms_changed();
            }
            Message::SocketsLeave { opts, rooms } => {
                self.local
                    .del_sockets(&local_opts(&opts), &rooms_of(&rooms));
                self.live_all_rooms_changed();
            }
            Message::DisconnectSockets { opts, close } => {
                self.local.disconnect_local(&local_opts(&opts), close);
            }
            Message::FetchSockets { opts, request_id } => {
                let sockets = self
                    .local
                    .fetch_local(&local_opts(&opts))
                    .iter()
                    .map(info_to_value)
                    .collect();
                let reply = Message::FetchSocketsResponse {
                    request_id,
                    sockets,
                };
                self.shared
                    .publish_response(&self.nsp, requester.as_deref(), &reply);
            }
            Message::ServerSideEmit { packet, request_id } => {
                let Some(event) = packet.first().and_then(Value::as_str) else {
                    return;
                };
                let args = values_to_args(&packet[1..]);
                let ack = request_id.map(|request_id| {
                    let shared = self.shared.clone();
                    let nsp = self.nsp.clone();
                    ServerAck::new(move |reply: RawArgs| {
                        let packet = args_to_values(&reply)
                            .into_iter()
                            .next()
                            .unwrap_or(Value::Null);
                        let msg = Message::ServerSideEmitResponse { request_id, packet };
                        shared.publish_response(&nsp, requester.as_deref(), &msg);
                    })
                });
                self.local.local_sockets().server_event(event, args, ack);
            }
            Message::AllRooms { request_id } => {
                let reply = Message::AllRoomsResponse {
                    request_id,
                    rooms: strings_of(&self.local.local_rooms()),
                };
                self.shared
                    .publish_response(&self.nsp, requester.as_deref(), &reply);
            }
            Message::Sockets { request_id, rooms } => {
                let opts = BroadcastOptions {
                    rooms: rooms_of(&rooms),
                    ..Default::default()
                };
                let reply = Message::SocketsResponse {
                    request_id,
                    sockets: strings_of(&self.local.select(&opts)),
                };
                self.shared
                    .publish_response(&self.nsp, requester.as_deref(), &reply);
            }
            Message::LegacyRemote {
                code,
                request_id,
                sid,
                room,
                close,
            } => {
                let sockets = self.local.local_sockets();
                if !sockets.contains(&sid) {
                    return;
                }
                use crate::message::classic_code as c;
                match (code, room) {
                    (c::REMOTE_JOIN, Some(room)) => self.local.add_all(&sid, &[Room::from(room)]),
                    (c::REMOTE_LEAVE, Some(room)) => self.local.del(&sid, &room),
                    (c::REMOTE_DISCONNECT, _) => sockets.disconnect(&sid, close),
                    _ => return,
                }
                let reply = Message::LegacyAck { request_id };
                self.shared
                    .publish_response(&self.nsp, requester.as_deref(), &reply);
            }
            _ => {}
        }
    }
}
