//! The messages nodes exchange, and their two wire forms: the classic adapter's
//! (`createAdapter`: request codes 0-9) and the cluster adapter's (`createShardedAdapter`:
//! message types 1-13). Decoding is by key, never by position (except the classic
//! broadcast envelope, an array), and lenient: a missing `uid` or `packet.nsp`, unknown
//! flags, rooms sent as numbers are all accepted.

use crate::value::{Value, from_json, from_msgpack, to_json, to_msgpack};

/// Who a message is for: `rooms` (all when empty), minus `except`, plus flags.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Opts {
    /// Target rooms (union).
    pub rooms: Vec<String>,
    /// Excluded rooms.
    pub except: Vec<String>,
    /// The flags as sent (`volatile`, `compress`, `timeout`, ...); `None` when absent
    /// (classic requests other than broadcasts carry none).
    pub flags: Option<Value>,
}

impl Opts {
    /// Whether `flags.volatile` is set.
    pub fn volatile(&self) -> bool {
        self.flag("volatile").and_then(Value::as_bool) == Some(true)
    }

    /// `flags.timeout` in milliseconds.
    pub fn timeout_ms(&self) -> Option<u64> {
        self.flag("timeout").and_then(Value::as_u64)
    }

    fn flag(&self, key: &str) -> Option<&Value> {
        self.flags.as_ref().and_then(|f| f.get(key))
    }

    fn to_value(&self, order: KeyOrder) -> Value {
        let mut m = vec![
            ("rooms".to_owned(), Value::strings(&self.rooms)),
            ("except".to_owned(), Value::strings(&self.except)),
        ];
        if let Some(f) = &self.flags {
            match order {
                KeyOrder::Adapter => m.push(("flags".into(), f.clone())),
                // `@socket.io/redis-emitter` writes {rooms, flags, except}.
                KeyOrder::Emitter => m.insert(1, ("flags".into(), f.clone())),
            }
        }
        Value::Map(m)
    }

    fn from_value(v: Option<&Value>) -> Self {
        let Some(v) = v else {
            return Self::default();
        };
        let rooms = |k: &str| {
            v.get(k)
                .and_then(Value::as_array)
                .map(|a| a.iter().map(Value::js_string).collect())
                .unwrap_or_default()
        };
        Self {
            rooms: rooms("rooms"),
            except: rooms("except"),
            flags: v.get("flags").cloned(),
        }
    }
}

#[derive(Clone, Copy)]
enum KeyOrder {
    Adapter,
    Emitter,
}

/// A Socket.IO event packet as the adapters carry it: `{type: 2, data: [event, ...args],
/// nsp}` (binary inline; `type` stays 2).
#[derive(Debug, Clone, PartialEq)]
pub struct Packet {
    /// The packet type (2: EVENT).
    pub kind: u64,
    /// `[event, ...args]`.
    pub data: Value,
    /// The namespace; the classic adapter sends it, the cluster adapter does not.
    pub nsp: Option<String>,
}

impl Packet {
    fn to_value(&self) -> Value {
        let mut m = vec![
            ("type".to_owned(), Value::Int(self.kind as i64)),
            ("data".to_owned(), self.data.clone()),
        ];
        if let Some(nsp) = &self.nsp {
            m.push(("nsp".into(), Value::Str(nsp.clone())));
        }
        Value::Map(m)
    }

    fn from_value(v: Option<&Value>) -> Result<Self, String> {
        let v = v.ok_or("no packet")?;
        Ok(Self {
            kind: v.get("type").and_then(Value::as_u64).unwrap_or(2),
            data: v.get("data").cloned().unwrap_or(Value::Array(Vec::new())),
            nsp: v.get("nsp").and_then(Value::as_str).map(str::to_owned),
        })
    }
}

/// One message between nodes, in the cluster adapter's model (classic requests map onto
/// it; the classic-only ones have their own variants).
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// `io.emit` and friends; with a request id, a broadcast with acknowledgements.
    Broadcast {
        /// The packet.
        packet: Packet,
        /// Who it is for.
        opts: Opts,
        /// Set for a broadcast with acknowledgements.
        request_id: Option<String>,
    },
    /// `socketsJoin`.
    SocketsJoin {
        /// Which sockets.
        opts: Opts,
        /// Rooms to join.
        rooms: Vec<String>,
    },
    /// `socketsLeave`.
    SocketsLeave {
        /// Which sockets.
        opts: Opts,
        /// Rooms to leave.
        rooms: Vec<String>,
    },
    /// `disconnectSockets`.
    DisconnectSockets {
        /// Which sockets.
        opts: Opts,
        /// Close the whole connection.
        close: bool,
    },
    /// `fetchSockets`.
    FetchSockets {
        /// Which sockets.
        opts: Opts,
        /// The request id.
        request_id: String,
    },
    /// The answer to `fetchSockets`: `[{id, handshake, rooms, data}]`.
    FetchSocketsResponse {
        /// The request id.
        request_id: String,
        /// The sockets.
        sockets: Vec<Value>,
    },
    /// `serverSideEmit`; with a request id, the sender waits for acknowledgements.
    ServerSideEmit {
        /// `[event, ...args]`.
        packet: Vec<Value>,
        /// Set when the sender waits for acknowledgements.
        request_id: Option<String>,
    },
    /// One server's acknowledgement of a `serverSideEmit`.
    ServerSideEmitResponse {
        /// The request id.
        request_id: String,
        /// The first argument of the acknowledgement.
        packet: Value,
    },
    /// How many clients one server sent a broadcast with acknowledgements to.
    BroadcastClientCount {
        /// The request id.
        request_id: String,
        /// The count (also sent when 0).
        client_count: u64,
    },
    /// One client's acknowledgement of a broadcast.
    BroadcastAck {
        /// The request id.
        request_id: String,
        /// The first argument of the acknowledgement.
        packet: Value,
    },
    /// Classic `allRooms()`.
    AllRooms {
        /// The request id.
        request_id: String,
    },
    /// The answer to `allRooms()`.
    AllRoomsResponse {
        /// The request id.
        request_id: String,
        /// Every local room.
        rooms: Vec<String>,
    },
    /// Classic legacy `allSockets()` (adapter 7.x and older).
    Sockets {
        /// The request id.
        request_id: String,
        /// The rooms.
        rooms: Vec<String>,
    },
    /// The answer to the legacy `allSockets()`.
    SocketsResponse {
        /// The request id.
        request_id: String,
        /// Socket ids.
        sockets: Vec<String>,
    },
    /// Classic legacy per-socket join (2), leave (3) or disconnect (4), answered with
    /// [`Message::LegacyAck`] by the node that has the socket.
    LegacyRemote {
        /// 2, 3 or 4.
        code: u64,
        /// The request id.
        request_id: String,
        /// The socket id.
        sid: String,
        /// The room (join, leave).
        room: Option<String>,
        /// Close the connection (disconnect).
        close: bool,
    },
    /// The answer to a legacy per-socket request: `{requestId}`.
    LegacyAck {
        /// The request id.
        request_id: String,
    },
    /// Heartbeats and the close notice of the heartbeat cluster adapters (1, 2, 13).
    Heartbeat {
        /// 1, 2 or 13.
        code: u64,
    },
}

impl Message {
    /// The request id, if the message has one.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Self::Broadcast { request_id, .. } | Self::ServerSideEmit { request_id, .. } => {
                request_id.as_deref()
            }
            Self::FetchSockets { request_id, .. }
            | Self::FetchSocketsResponse { request_id, .. }
            | Self::ServerSideEmitResponse { request_id, .. }
            | Self::BroadcastClientCount { request_id, .. }
            | Self::BroadcastAck { request_id, .. }
            | Self::AllRooms { request_id }
            | Self::AllRoomsResponse { request_id, .. }
            | Self::Sockets { request_id, .. }
            | Self::SocketsResponse { request_id, .. }
            | Self::LegacyRemote { request_id, .. }
            | Self::LegacyAck { request_id } => Some(request_id),
            _ => None,
        }
    }

    /// Whether this answers a request (it goes to the requester, not to everyone).
    pub fn is_response(&self) -> bool {
        matches!(
            self,
            Self::FetchSocketsResponse { .. }
                | Self::ServerSideEmitResponse { .. }
                | Self::BroadcastClientCount { .. }
                | Self::BroadcastAck { .. }
                | Self::AllRoomsResponse { .. }
                | Self::SocketsResponse { .. }
                | Self::LegacyAck { .. }
        )
    }
}

/// A message with its sender: `uid` is the sending node (`"emitter"` for the emitters,
/// absent in some emitter and classic messages) and `nsp` the namespace (cluster form only).
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// The sending node.
    pub uid: Option<String>,
    /// The namespace (cluster form).
    pub nsp: Option<String>,
    /// The message.
    pub message: Message,
}

/// Decodes a request or response body by the `0x7b` rule: `{` first means JSON, anything
/// else MessagePack.
pub fn decode_any(bytes: &[u8]) -> Result<Value, String> {
    if bytes.first() == Some(&b'{') {
        from_json(bytes)
    } else {
        from_msgpack(bytes)
    }
}

fn str_of(v: &Value, k: &str) -> Option<String> {
    v.get(k).map(Value::js_string)
}

fn req_id(v: &Value, k: &str) -> Result<String, String> {
    str_of(v, k).ok_or_else(|| format!("no {k}"))
}

fn strings_of(v: &Value, k: &str) -> Vec<String> {
    v.get(k)
        .and_then(Value::as_array)
        .map(|a| a.iter().map(Value::js_string).collect())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// Classic (`createAdapter`, `@socket.io/redis-emitter`)
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// Cluster (`createShardedAdapter`, the ClusterAdapter model)
// ---------------------------------------------------------------------------------------

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

fn encode_cluster_as(
    uid: &str,
    nsp: &str,
    message: &Message,
    always_msgpack: bool,
) -> Option<Vec<u8>> {
    use cluster_type as t;
    let (code, data) = cluster_data(message)?;
    let binary_capable = matches!(
        code,
        t::BROADCAST
            | t::BROADCAST_ACK
            | t::FETCH_SOCKETS_RESPONSE
            | t::SERVER_SIDE_EMIT
            | t::SERVER_SIDE_EMIT_RESPONSE
    );
    let msgpack = always_msgpack || binary_capable && data.as_ref().is_some_and(Value::has_binary);
    let mut m = vec![("type".to_owned(), Value::Int(code as i64))];
    if let Some(d) = data {
        m.push(("data".into(), d));
    }
    m.push(("uid".into(), Value::Str(uid.to_owned())));
    m.push(("nsp".into(), Value::Str(nsp.to_owned())));
    let v = Value::Map(m);
    Some(if msgpack { to_msgpack(&v) } else { to_json(&v) })
}
