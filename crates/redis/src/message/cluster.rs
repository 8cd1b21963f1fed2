//! The cluster adapter's wire form (`createShardedAdapter`, the `ClusterAdapter` model):
//! `{type, data, uid, nsp}` with message types 1-13.

use super::{Envelope, KeyOrder, Message, Opts, Packet, decode_any, req_id, str_of, strings_of};
use crate::value::{Value, to_json, to_msgpack};

/// Cluster message types.
pub mod cluster_type {
    /// Heartbeat adapters only.
    pub const INITIAL_HEARTBEAT: u64 = 1;
    /// Heartbeat adapters only.
    pub const HEARTBEAT: u64 = 2;
    /// A broadcast (with a request id: with acknowledgements).
    pub const BROADCAST: u64 = 3;
    /// `socketsJoin`.
    pub const SOCKETS_JOIN: u64 = 4;
    /// `socketsLeave`.
    pub const SOCKETS_LEAVE: u64 = 5;
    /// `disconnectSockets`.
    pub const DISCONNECT_SOCKETS: u64 = 6;
    /// `fetchSockets`.
    pub const FETCH_SOCKETS: u64 = 7;
    /// Its answer.
    pub const FETCH_SOCKETS_RESPONSE: u64 = 8;
    /// `serverSideEmit`.
    pub const SERVER_SIDE_EMIT: u64 = 9;
    /// Its answer.
    pub const SERVER_SIDE_EMIT_RESPONSE: u64 = 10;
    /// Client count of a broadcast with acknowledgements.
    pub const BROADCAST_CLIENT_COUNT: u64 = 11;
    /// One acknowledgement of a broadcast.
    pub const BROADCAST_ACK: u64 = 12;
    /// Heartbeat adapters only.
    pub const ADAPTER_CLOSE: u64 = 13;
}

/// Decodes a cluster message `{type, data, uid, nsp}` (JSON or MessagePack by the `0x7b`
/// rule).
pub fn decode_cluster(bytes: &[u8]) -> Result<Envelope, String> {
    let v = decode_any(bytes)?;
    decode_cluster_value(&v)
}

/// Decodes a cluster message from its value.
pub fn decode_cluster_value(v: &Value) -> Result<Envelope, String> {
    let code = v
        .get("type")
        .and_then(Value::as_u64)
        .ok_or("a cluster message has a numeric type")?;
    let empty = Value::Map(Vec::new());
    let d = v.get("data").unwrap_or(&empty);
    let message = decode_cluster_data(code, d)?;
    Ok(Envelope {
        uid: v.get("uid").and_then(Value::as_str).map(str::to_owned),
        nsp: v.get("nsp").and_then(Value::as_str).map(str::to_owned),
        message,
    })
}

/// Decodes the `data` of a cluster message of type `code`.
pub fn decode_cluster_data(code: u64, d: &Value) -> Result<Message, String> {
    use cluster_type as t;
    let rid = || req_id(d, "requestId");
    Ok(match code {
        t::INITIAL_HEARTBEAT | t::HEARTBEAT | t::ADAPTER_CLOSE => Message::Heartbeat { code },
        t::BROADCAST => Message::Broadcast {
            packet: Packet::from_value(d.get("packet"))?,
            opts: Opts::from_value(d.get("opts")),
            request_id: str_of(d, "requestId"),
        },
        t::SOCKETS_JOIN => Message::SocketsJoin {
            opts: Opts::from_value(d.get("opts")),
            rooms: strings_of(d, "rooms"),
        },
        t::SOCKETS_LEAVE => Message::SocketsLeave {
            opts: Opts::from_value(d.get("opts")),
            rooms: strings_of(d, "rooms"),
        },
        t::DISCONNECT_SOCKETS => Message::DisconnectSockets {
            opts: Opts::from_value(d.get("opts")),
            close: d.get("close").and_then(Value::as_bool).unwrap_or(false),
        },
        t::FETCH_SOCKETS => Message::FetchSockets {
            opts: Opts::from_value(d.get("opts")),
            request_id: rid()?,
        },
        t::FETCH_SOCKETS_RESPONSE => Message::FetchSocketsResponse {
            request_id: rid()?,
            sockets: d
                .get("sockets")
                .and_then(Value::as_array)
                .map(<[Value]>::to_vec)
                .unwrap_or_default(),
        },
        t::SERVER_SIDE_EMIT => Message::ServerSideEmit {
            packet: d
                .get("packet")
                .and_then(Value::as_array)
                .map(<[Value]>::to_vec)
                .unwrap_or_default(),
            request_id: str_of(d, "requestId"),
        },
        t::SERVER_SIDE_EMIT_RESPONSE => Message::ServerSideEmitResponse {
            request_id: rid()?,
            packet: d.get("packet").cloned().unwrap_or(Value::Null),
        },
        t::BROADCAST_CLIENT_COUNT => Message::BroadcastClientCount {
            request_id: rid()?,
            client_count: d.get("clientCount").and_then(Value::as_u64).unwrap_or(0),
        },
        t::BROADCAST_ACK => Message::BroadcastAck {
            request_id: rid()?,
            packet: d.get("packet").cloned().unwrap_or(Value::Null),
        },
        other => return Err(format!("unknown cluster message type {other}")),
    })
}

/// The cluster type code and `data` of a message; `None` for the classic-only ones.
pub fn cluster_data(message: &Message) -> Option<(u64, Option<Value>)> {
    use cluster_type as t;
    let rid = |r: &str| ("requestId".to_owned(), Value::Str(r.to_owned()));
    let opts = |o: &Opts| {
        let mut o = o.clone();
        o.flags.get_or_insert_with(|| Value::Map(Vec::new()));
        ("opts".to_owned(), o.to_value(KeyOrder::Adapter))
    };
    Some(match message {
        Message::Heartbeat { code } => (*code, None),
        Message::Broadcast {
            packet,
            opts: o,
            request_id,
        } => {
            let mut m = vec![("packet".to_owned(), packet.to_value())];
            if let Some(r) = request_id {
                m.push(rid(r));
            }
            m.push(opts(o));
            (t::BROADCAST, Some(Value::Map(m)))
        }
        Message::SocketsJoin { opts: o, rooms } | Message::SocketsLeave { opts: o, rooms } => {
            let code = if matches!(message, Message::SocketsJoin { .. }) {
                t::SOCKETS_JOIN
            } else {
                t::SOCKETS_LEAVE
            };
            let m = vec![opts(o), ("rooms".into(), Value::strings(rooms))];
            (code, Some(Value::Map(m)))
        }
        Message::DisconnectSockets { opts: o, close } => (
            t::DISCONNECT_SOCKETS,
            Some(Value::Map(vec![
                opts(o),
                ("close".into(), Value::Bool(*close)),
            ])),
        ),
        Message::FetchSockets {
            opts: o,
            request_id,
        } => (
            t::FETCH_SOCKETS,
            Some(Value::Map(vec![opts(o), rid(request_id)])),
        ),
        Message::FetchSocketsResponse {
            request_id,
            sockets,
        } => (
            t::FETCH_SOCKETS_RESPONSE,
            Some(Value::Map(vec![
                rid(request_id),
                ("sockets".into(), Value::Array(sockets.clone())),
            ])),
        ),
        Message::ServerSideEmit { packet, request_id } => {
            let mut m = Vec::new();
            if let Some(r) = request_id {
                m.push(rid(r));
            }
            m.push(("packet".into(), Value::Array(packet.clone())));
            (t::SERVER_SIDE_EMIT, Some(Value::Map(m)))
        }
        Message::ServerSideEmitResponse { request_id, packet } => (
            t::SERVER_SIDE_EMIT_RESPONSE,
            Some(Value::Map(vec![
                rid(request_id),
                ("packet".into(), packet.clone()),
            ])),
        ),
        Message::BroadcastClientCount {
            request_id,
            client_count,
        } => (
            t::BROADCAST_CLIENT_COUNT,
            Some(Value::Map(vec![
                rid(request_id),
                ("clientCount".into(), Value::Int(*client_count as i64)),
            ])),
        ),
        Message::BroadcastAck { request_id, packet } => (
            t::BROADCAST_ACK,
            Some(Value::Map(vec![
                rid(request_id),
                ("packet".into(), packet.clone()),
            ])),
        ),
        _ => return None,
    })
}

/// Encodes a cluster message: JSON, or MessagePack when the type may carry binary
/// (broadcast, broadcast ack, fetchSockets response, serverSideEmit and its response)
/// and does. `None` for the classic-only messages.
pub fn encode_cluster(uid: &str, nsp: &str, message: &Message) -> Option<Vec<u8>> {
    encode_cluster_as(uid, nsp, message, false)
}

/// Encodes a cluster message always as MessagePack (what the Redis Streams adapter's
/// pub/sub path sends).
pub fn encode_cluster_msgpack(uid: &str, nsp: &str, message: &Message) -> Option<Vec<u8>> {
    encode_cluster_as(uid, nsp, message, true)
}

/// Whether messages of type `code` may carry binary (broadcast, broadcast ack, fetchSockets
/// response, serverSideEmit and its response), and are then MessagePack.
pub(crate) fn binary_capable(code: u64) -> bool {
    use cluster_type as t;
    matches!(
        code,
        t::BROADCAST
            | t::BROADCAST_ACK
            | t::FETCH_SOCKETS_RESPONSE
            | t::SERVER_SIDE_EMIT
            | t::SERVER_SIDE_EMIT_RESPONSE
    )
}

fn encode_cluster_as(
    uid: &str,
    nsp: &str,
    message: &Message,
    always_msgpack: bool,
) -> Option<Vec<u8>> {
    let (code, data) = cluster_data(message)?;
    let msgpack =
        always_msgpack || binary_capable(code) && data.as_ref().is_some_and(Value::has_binary);
    let mut m = vec![("type".to_owned(), Value::Int(code as i64))];
    if let Some(d) = data {
        m.push(("data".into(), d));
    }
    m.push(("uid".into(), Value::Str(uid.to_owned())));
    m.push(("nsp".into(), Value::Str(nsp.to_owned())));
    let v = Value::Map(m);
    Some(if msgpack { to_msgpack(&v) } else { to_json(&v) })
}
