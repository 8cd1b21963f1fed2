//! The messages nodes exchange, and their wire forms: the classic adapter's
//! (`createAdapter`: request codes 0-9) and the cluster adapter's (`createShardedAdapter`:
//! message types 1-13). Decoding is by key, never by position (except the classic
//! broadcast envelope, an array), and lenient: a missing `uid` or `packet.nsp`, unknown
//! flags, rooms sent as numbers are all accepted. The Redis Streams adapter's entries and
//! sessions: [`encode_stream_entry`], [`encode_session`] and their decoders.

mod classic;
mod cluster;
mod stream;

pub use classic::{
    classic_code, decode_classic, decode_classic_broadcast, encode_classic,
    encode_classic_broadcast,
};
pub use cluster::{
    cluster_data, cluster_type, decode_cluster, decode_cluster_data, decode_cluster_value,
    encode_cluster, encode_cluster_msgpack,
};
pub use stream::{
    decode_session, decode_stream_entry, encode_session, encode_session_leased,
    encode_stream_entry, next_entry_id, parse_entry_id, reaches,
};

use crate::value::{Value, from_json, from_msgpack};

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
