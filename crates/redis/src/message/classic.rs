//! The classic adapter's wire form (`createAdapter`, `@socket.io/redis-emitter`): the
//! broadcast envelope, an array, and request codes 0-9.

use super::{Envelope, KeyOrder, Message, Opts, Packet, decode_any, req_id, str_of, strings_of};
use crate::value::{Value, from_msgpack, to_json, to_msgpack};

/// Classic request codes.
pub mod classic_code {
    /// Legacy `allSockets()`.
    pub const SOCKETS: u64 = 0;
    /// `allRooms()`.
    pub const ALL_ROOMS: u64 = 1;
    /// `socketsJoin()`.
    pub const REMOTE_JOIN: u64 = 2;
    /// `socketsLeave()`.
    pub const REMOTE_LEAVE: u64 = 3;
    /// `disconnectSockets()`.
    pub const REMOTE_DISCONNECT: u64 = 4;
    /// `fetchSockets()`.
    pub const REMOTE_FETCH: u64 = 5;
    /// `serverSideEmit()`.
    pub const SERVER_SIDE_EMIT: u64 = 6;
    /// A broadcast with acknowledgements.
    pub const BROADCAST: u64 = 7;
    /// Response: client count.
    pub const BROADCAST_CLIENT_COUNT: u64 = 8;
    /// Response: one acknowledgement.
    pub const BROADCAST_ACK: u64 = 9;
}

/// Decodes a classic broadcast (`socket.io#nsp#[room#]`): the MessagePack array
/// `[uid, packet, opts]`.
pub fn decode_classic_broadcast(bytes: &[u8]) -> Result<Envelope, String> {
    let v = from_msgpack(bytes)?;
    let parts = v.as_array().ok_or("a classic broadcast is an array")?;
    if parts.len() < 2 {
        return Err("a classic broadcast has 3 elements".into());
    }
    Ok(Envelope {
        uid: parts[0].as_str().map(str::to_owned),
        nsp: None,
        message: Message::Broadcast {
            packet: Packet::from_value(parts.get(1))?,
            opts: Opts::from_value(parts.get(2)),
            request_id: None,
        },
    })
}

/// Encodes a classic broadcast without acknowledgements. `emitter_order` writes opts as
/// `@socket.io/redis-emitter` does (`{rooms, flags, except}`).
pub fn encode_classic_broadcast(
    uid: &str,
    packet: &Packet,
    opts: &Opts,
    emitter_order: bool,
) -> Vec<u8> {
    let order = if emitter_order {
        KeyOrder::Emitter
    } else {
        KeyOrder::Adapter
    };
    to_msgpack(&Value::Array(vec![
        Value::Str(uid.to_owned()),
        packet.to_value(),
        opts.to_value(order),
    ]))
}

/// Decodes a message of a classic request or response channel. Responses without a
/// `type` are told apart by their fields (`sockets`, `rooms`, only `requestId`).
pub fn decode_classic(bytes: &[u8]) -> Result<Envelope, String> {
    let v = decode_any(bytes)?;
    if !matches!(v, Value::Map(_)) {
        return Err("a classic request is an object".into());
    }
    let uid = v.get("uid").and_then(Value::as_str).map(str::to_owned);
    let code = v.get("type").and_then(Value::as_u64);
    let rid = || req_id(&v, "requestId");
    use classic_code as c;
    let message = match code {
        Some(c::SOCKETS) => Message::Sockets {
            request_id: rid()?,
            rooms: strings_of(&v, "rooms"),
        },
        Some(c::ALL_ROOMS) => Message::AllRooms { request_id: rid()? },
        Some(code @ (c::REMOTE_JOIN | c::REMOTE_LEAVE | c::REMOTE_DISCONNECT))
            if v.get("opts").is_none() =>
        {
            Message::LegacyRemote {
                code,
                request_id: rid()?,
                sid: req_id(&v, "sid")?,
                room: str_of(&v, "room"),
                close: v.get("close").and_then(Value::as_bool).unwrap_or(false),
            }
        }
        Some(c::REMOTE_JOIN) => Message::SocketsJoin {
            opts: Opts::from_value(v.get("opts")),
            rooms: strings_of(&v, "rooms"),
        },
        Some(c::REMOTE_LEAVE) => Message::SocketsLeave {
            opts: Opts::from_value(v.get("opts")),
            rooms: strings_of(&v, "rooms"),
        },
        Some(c::REMOTE_DISCONNECT) => Message::DisconnectSockets {
            opts: Opts::from_value(v.get("opts")),
            close: v.get("close").and_then(Value::as_bool).unwrap_or(false),
        },
        Some(c::REMOTE_FETCH) => Message::FetchSockets {
            opts: Opts::from_value(v.get("opts")),
            request_id: rid()?,
        },
        // A serverSideEmit request has `data` as an array and a `uid`; its response has a
        // single `data` value and no `uid`.
        Some(c::SERVER_SIDE_EMIT) if uid.is_none() && v.get("requestId").is_some() => {
            Message::ServerSideEmitResponse {
                request_id: rid()?,
                packet: v.get("data").cloned().unwrap_or(Value::Null),
            }
        }
        Some(c::SERVER_SIDE_EMIT) => Message::ServerSideEmit {
            packet: v
                .get("data")
                .and_then(Value::as_array)
                .map(<[Value]>::to_vec)
                .unwrap_or_default(),
            request_id: str_of(&v, "requestId"),
        },
        Some(c::BROADCAST) => Message::Broadcast {
            packet: Packet::from_value(v.get("packet"))?,
            opts: Opts::from_value(v.get("opts")),
            request_id: Some(rid()?),
        },
        Some(c::BROADCAST_CLIENT_COUNT) => Message::BroadcastClientCount {
            request_id: rid()?,
            client_count: v.get("clientCount").and_then(Value::as_u64).unwrap_or(0),
        },
        Some(c::BROADCAST_ACK) => Message::BroadcastAck {
            request_id: rid()?,
            packet: v.get("packet").cloned().unwrap_or(Value::Null),
        },
        Some(other) => return Err(format!("unknown classic request type {other}")),
        None => {
            let request_id = rid()?;
            if let Some(list) = v.get("sockets").and_then(Value::as_array) {
                if !list.is_empty() && list.iter().all(|s| matches!(s, Value::Str(_))) {
                    Message::SocketsResponse {
                        request_id,
                        sockets: list.iter().map(Value::js_string).collect(),
                    }
                } else {
                    Message::FetchSocketsResponse {
                        request_id,
                        sockets: list.to_vec(),
                    }
                }
            } else if v.get("rooms").is_some() {
                Message::AllRoomsResponse {
                    request_id,
                    rooms: strings_of(&v, "rooms"),
                }
            } else {
                Message::LegacyAck { request_id }
            }
        }
    };
    Ok(Envelope {
        uid,
        nsp: None,
        message,
    })
}

/// Encodes a classic request or response: JSON, except a broadcast with acknowledgements
/// and a broadcast acknowledgement, which are MessagePack maps. `uid` goes into requests
/// (never into responses). Returns `None` for a broadcast without acknowledgements (see
/// [`encode_classic_broadcast`]) and for heartbeats, which classic does not have.
pub fn encode_classic(uid: Option<&str>, message: &Message) -> Option<Vec<u8>> {
    use classic_code as c;
    let mut m: Vec<(String, Value)> = Vec::new();
    let put = |m: &mut Vec<(String, Value)>, k: &str, v: Value| m.push((k.to_owned(), v));
    let with_uid = |m: &mut Vec<(String, Value)>| {
        if let Some(u) = uid {
            m.push(("uid".into(), Value::Str(u.to_owned())));
        }
    };
    let mut msgpack = false;
    match message {
        Message::Broadcast {
            request_id: None, ..
        }
        | Message::Heartbeat { .. } => return None,
        Message::Broadcast {
            packet,
            opts,
            request_id: Some(rid),
        } => {
            with_uid(&mut m);
            put(&mut m, "requestId", Value::Str(rid.clone()));
            put(&mut m, "type", Value::Int(c::BROADCAST as i64));
            put(&mut m, "packet", packet.to_value());
            put(&mut m, "opts", opts.to_value(KeyOrder::Adapter));
            msgpack = true;
        }
        Message::Sockets { request_id, rooms } => {
            with_uid(&mut m);
            put(&mut m, "requestId", Value::Str(request_id.clone()));
            put(&mut m, "type", Value::Int(c::SOCKETS as i64));
            put(&mut m, "rooms", Value::strings(rooms));
        }
        Message::AllRooms { request_id } => {
            with_uid(&mut m);
            put(&mut m, "requestId", Value::Str(request_id.clone()));
            put(&mut m, "type", Value::Int(c::ALL_ROOMS as i64));
        }
        Message::SocketsJoin { opts, rooms } | Message::SocketsLeave { opts, rooms } => {
            let code = if matches!(message, Message::SocketsJoin { .. }) {
                c::REMOTE_JOIN
            } else {
                c::REMOTE_LEAVE
            };
            with_uid(&mut m);
            put(&mut m, "type", Value::Int(code as i64));
            put(&mut m, "opts", opts.to_value(KeyOrder::Adapter));
            put(&mut m, "rooms", Value::strings(rooms));
        }
        Message::DisconnectSockets { opts, close } => {
            with_uid(&mut m);
            put(&mut m, "type", Value::Int(c::REMOTE_DISCONNECT as i64));
            put(&mut m, "opts", opts.to_value(KeyOrder::Adapter));
            put(&mut m, "close", Value::Bool(*close));
        }
        Message::FetchSockets { opts, request_id } => {
            with_uid(&mut m);
            put(&mut m, "requestId", Value::Str(request_id.clone()));
            put(&mut m, "type", Value::Int(c::REMOTE_FETCH as i64));
            put(&mut m, "opts", opts.to_value(KeyOrder::Adapter));
        }
        Message::ServerSideEmit { packet, request_id } => {
            with_uid(&mut m);
            if let Some(rid) = request_id {
                put(&mut m, "requestId", Value::Str(rid.clone()));
            }
            put(&mut m, "type", Value::Int(c::SERVER_SIDE_EMIT as i64));
            put(&mut m, "data", Value::Array(packet.clone()));
        }
        Message::LegacyRemote {
            code,
            request_id,
            sid,
            room,
            close,
        } => {
            with_uid(&mut m);
            put(&mut m, "requestId", Value::Str(request_id.clone()));
            put(&mut m, "type", Value::Int(*code as i64));
            put(&mut m, "sid", Value::Str(sid.clone()));
            if let Some(r) = room {
                put(&mut m, "room", Value::Str(r.clone()));
            }
            if *code == c::REMOTE_DISCONNECT {
                put(&mut m, "close", Value::Bool(*close));
            }
        }
        Message::FetchSocketsResponse {
            request_id,
            sockets,
        } => {
            put(&mut m, "requestId", Value::Str(request_id.clone()));
            put(&mut m, "sockets", Value::Array(sockets.clone()));
        }
        Message::SocketsResponse {
            request_id,
            sockets,
        } => {
            put(&mut m, "requestId", Value::Str(request_id.clone()));
            put(&mut m, "sockets", Value::strings(sockets));
        }
        Message::AllRoomsResponse { request_id, rooms } => {
            put(&mut m, "requestId", Value::Str(request_id.clone()));
            put(&mut m, "rooms", Value::strings(rooms));
        }
        Message::LegacyAck { request_id } => {
            put(&mut m, "requestId", Value::Str(request_id.clone()));
        }
        Message::ServerSideEmitResponse { request_id, packet } => {
            put(&mut m, "type", Value::Int(c::SERVER_SIDE_EMIT as i64));
            put(&mut m, "requestId", Value::Str(request_id.clone()));
            put(&mut m, "data", packet.clone());
        }
        Message::BroadcastClientCount {
            request_id,
            client_count,
        } => {
            put(&mut m, "type", Value::Int(c::BROADCAST_CLIENT_COUNT as i64));
            put(&mut m, "requestId", Value::Str(request_id.clone()));
            put(&mut m, "clientCount", Value::Int(*client_count as i64));
        }
        Message::BroadcastAck { request_id, packet } => {
            put(&mut m, "type", Value::Int(c::BROADCAST_ACK as i64));
            put(&mut m, "requestId", Value::Str(request_id.clone()));
            put(&mut m, "packet", packet.clone());
            msgpack = true;
        }
    }
    let v = Value::Map(m);
    Some(if msgpack { to_msgpack(&v) } else { to_json(&v) })
}
