//! A Redis adapter for Volley that speaks the bytes of Node's `@socket.io/redis-adapter`
//! (8.x) and `@socket.io/redis-streams-adapter` (0.3), so Rust and Node servers can share
//! one cluster, and `@socket.io/redis-emitter` reaches Volley's clients.
//!
//! ```
//! use std::time::Duration;
//!
//! use volley::SocketIo;
//! use volley_redis::{RedisAdapterConfig, RedisCluster};
//!
//! # struct Redis(std::process::Child, std::path::PathBuf);
//! # impl Drop for Redis {
//! #     fn drop(&mut self) { let _ = self.0.kill(); let _ = self.0.wait(); let _ = std::fs::remove_file(&self.1); }
//! # }
//! # fn start_redis() -> Result<(Redis, String), Box<dyn std::error::Error>> {
//! #     use std::io::{Read, Write};
//! #     let path = std::env::temp_dir().join(format!("volley-redis-doc-{}-{}.sock", std::process::id(), std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos()));
//! #     let _ = std::fs::remove_file(&path);
//! #     let child = std::process::Command::new("redis-server")
//! #         .args(["--port", "0", "--save", "", "--appendonly", "no", "--unixsocket"])
//! #         .arg(&path)
//! #         .stdout(std::process::Stdio::null())
//! #         .spawn()?;
//! #     let redis = Redis(child, path.clone());
//! #     let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
//! #     loop { // wait for PONG
//! #         if let Ok(mut s) = std::os::unix::net::UnixStream::connect(&path) {
//! #             let mut buf = [0u8; 7];
//! #             if s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n" { break; }
//! #         }
//! #         if std::time::Instant::now() > deadline { return Err("redis-server did not start".into()); }
//! #         std::thread::sleep(std::time::Duration::from_millis(20));
//! #     }
//! #     Ok((redis, format!("redis+unix://{}", path.display())))
//! # }
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let (_redis, url) = start_redis()?;
//! // Two servers (in one process here, one per machine in real life) share one Redis.
//! // `url` is e.g. "redis://127.0.0.1:6379".
//! let mut servers = Vec::new();
//! for _ in 0..2 {
//!     let cluster = RedisCluster::connect(&url, RedisAdapterConfig::default()).await?;
//!     let io = SocketIo::builder().adapter(cluster.factory()).build();
//!     io.of("/chat");
//!     cluster.ready(Duration::from_secs(5)).await?; // subscriptions confirmed
//!     servers.push((cluster, io));
//! }
//! let (_, io) = &servers[0];
//! assert_eq!(io.of("/chat").server_count().await?, 2);
//! // Reaches the clients of both servers.
//! io.of("/chat").emit("hello", "every client of every server")?;
//! # for (cluster, _) in &servers { cluster.close(); }
//! # Ok(()) }
//! ```
//!
//! For Node's sharded adapter (`createShardedAdapter`, Redis >= 7), set
//! `mode: Mode::Sharded(SubscriptionMode::Dynamic)` (or the `subscriptionMode` the Node
//! nodes use).
//!
//! For Node's Redis Streams adapter, use [`RedisAdapterConfig::streams()`] ([`Mode::Streams`],
//! settings in [`StreamsConfig`]); see "Streams mode" below.
//!
//! # How it works
//!
//! ## Connections and tasks
//! One [`RedisCluster`] per server holds two connections, shared by the adapters of all
//! namespaces:
//! - the **subscriber** (RESP3, so SUBSCRIBE, PSUBSCRIBE and SSUBSCRIBE share it). Exactly
//!   one connection per server subscribes, which is what Node counts servers with
//!   (`PUBSUB NUMSUB` / `SHARDNUMSUB`);
//! - the **publisher**, for PUBLISH/SPUBLISH (queued, sent in order, pipelined in batches)
//!   and `PUBSUB` queries.
//!
//! A supervisor task owns the subscriber; a processing task decodes and applies what it
//! receives, in order. Each namespace gets a [`RedisAdapter`]: a [`LocalAdapter`] for this
//! server's sockets plus the cluster messages. Every operation is applied locally first or
//! alongside, so local delivery never waits for Redis.
//!
//! ## Channels (key prefix `socket.io`, namespace `N`)
//! | mode | channel | carries |
//! |---|---|---|
//! | classic | `socket.io#N#` (PSUBSCRIBE `socket.io#N#*`) | broadcasts to all or several rooms |
//! | classic | `socket.io#N#room#` | broadcasts to exactly one room |
//! | classic | `socket.io-request#N#` (SUBSCRIBE) | requests (join, leave, disconnect, fetch, serverSideEmit, broadcast with acks, allRooms) |
//! | classic | `socket.io-response#N#` and `socket.io-response#N#<uid>#` | responses (both are listened to) |
//! | sharded | `socket.io#N#` (SSUBSCRIBE) | every request and broadcast |
//! | sharded | `socket.io#N#<uid>#` | responses to this server |
//! | sharded, dynamic modes | `socket.io#N#room#` | single-room broadcasts; subscribed while the room exists here (public rooms; socket-id rooms too in `dynamic-private`) |
//!
//! A single-room broadcast goes to the room channel in classic mode, and in the dynamic
//! sharded modes when the room does not look like a socket id (20 characters) or the mode is
//! `dynamic-private`. Socket ids are 20 characters, as Node's, so that rule holds for
//! Volley's sockets too.
//!
//! ## Encodings
//! - Classic broadcast: MessagePack array `[uid, {type: 2, data: [event, ...args], nsp},
//!   {rooms, except, flags}]`. Classic requests and responses: JSON, except the broadcast
//!   with acknowledgements (type 7) and each acknowledgement (type 9), which are MessagePack
//!   maps.
//! - Sharded: the cluster adapter's `{type, data, uid, nsp}`, JSON unless the message may
//!   carry binary (broadcast, broadcast ack, fetchSockets response, serverSideEmit and its
//!   answer) and does; then MessagePack.
//! - Receivers tell JSON from MessagePack by the first byte (`{` means JSON), decode maps by
//!   key, accept a missing or `"emitter"` uid, unknown flags, and rooms sent as numbers.
//! - MessagePack is notepack.io's: smallest integer formats, float64 for other numbers,
//!   `bin` for binary (binary arguments travel inline and become Socket.IO attachments on
//!   the receiving side), a timestamp (ext -1, a JavaScript `Date`) is read as the ISO
//!   string the client would see, and notepack 2.x's legacy forms (ext 0 binary, fixext1
//!   undefined) are read too.
//! - Where Node would `JSON.stringify` (classic serverSideEmit arguments, fetchSockets
//!   data), binary becomes `{"type":"Buffer","data":[...]}`, as in Node.
//!
//! ## Compatibility
//! - With `createAdapter` 8.x (classic), including `publishOnSpecificResponseChannel` peers,
//!   and with `@socket.io/redis-emitter` 5.x (broadcasts, socketsJoin/Leave,
//!   disconnectSockets, serverSideEmit). The emitter cannot reach sharded clusters (it uses
//!   PUBLISH); that is a limitation of the emitter.
//! - With `createShardedAdapter` 8.2+/8.3 in `static`, `dynamic` and `dynamic-private`.
//! - The legacy requests of adapter 7.x and older are answered: `allSockets` (type 0) and
//!   the per-socket join, leave and disconnect (2, 3, 4 with `sid`).
//! - `all_rooms` exists in classic mode only, as in Node.
//! - Servers are counted as Node counts them: subscribers of the request channel (classic)
//!   or of the main shard channel (sharded). A request waits for `count - 1` answers.
//! - Unlike Node's classic adapter, `sockets_join`, `sockets_leave` and
//!   `disconnect_sockets` are applied locally at once (Node applies them when its own
//!   message comes back from Redis); our own messages are ignored by uid.
//!
//! ## Failure behaviour
//! - **Redis down**: local delivery goes on (broadcasts, rooms, acks of local clients).
//!   Publishes fail at once and are dropped (pub/sub is at-most-once, as with Node's
//!   adapter); `fetch_sockets`, `all_rooms`, `server_count` and `server_side_emit` fail at
//!   once with `redis unavailable (...)`; a broadcast with acknowledgements collects the
//!   local answers and ends at its timeout.
//! - **Redis back**: the supervisor reconnects (backoff 50 ms doubling up to
//!   `max_backoff`), subscribes the whole desired set again (one SSUBSCRIBE per shard
//!   channel), and only then reports connected; server counts are asked of Redis on each
//!   request, so they are right again as soon as every server has resubscribed. Messages
//!   published during the outage are lost.
//! - **Half-open connections** (a proxy that dropped the TCP session) are found by a PING
//!   on the subscriber every `ping_interval`.
//! - **A slow server**: the subscriber never waits for processing. Messages go through a
//!   bounded queue (`incoming_capacity`); when it is full, the newest message is dropped and
//!   counted in [`Stats::dropped_incoming`] (a warning is logged at powers of two), so Redis
//!   never disconnects us for the pub/sub output buffer and the server is never blocked. A
//!   dropped request or response makes the requester time out, as a lost message would.
//!   The publish queue (`outgoing_capacity`) is bounded too: when full, publishes fail and
//!   are counted in [`Stats::dropped_outgoing`].
//! - Requests time out after `requests_timeout` (5 s) with
//!   `timeout reached: only X responses received out of Y`, as in Node.
//!
//!
//! ## Streams mode (`@socket.io/redis-streams-adapter` 0.3.1)
//! - **Durable operations** (broadcasts without acknowledgements, socketsJoin/Leave,
//!   disconnectSockets) are appended to one stream, `XADD socket.io MAXLEN ~ 10000 * uid
//!   <uid> nsp <nsp> type <decimal> data <data>`, where `data` is the cluster message's
//!   `data` as JSON, or base64 MessagePack when the type may carry binary and does.
//! - **Requests and responses** (broadcasts with acknowledgements, fetchSockets,
//!   serverSideEmit, and every answer) go over pub/sub as MessagePack cluster messages:
//!   `socket.io#N#` and `socket.io#N#<uid>#` (SUBSCRIBE, or SSUBSCRIBE with
//!   `sharded_pubsub`). Servers are counted with `PUBSUB NUMSUB socket.io#N#`.
//! - **Reading**: a third connection loops `XREAD COUNT 100 BLOCK 5000 STREAMS socket.io
//!   <last id>`, starting after the newest entry at first connection and then always from
//!   the last entry read: a lost connection or a Redis restart loses nothing still in the
//!   stream (Node re-reads from `$`). It waits for room in the processing queue rather than
//!   dropping: memory stays bounded, the backlog stays in Redis.
//! - **Connection state recovery** follows the server's option
//!   (`SocketIoBuilder::connection_state_recovery`, read through `LocalSockets::recovery`):
//!   every broadcast without acknowledgement and not volatile reaches local sockets from the
//!   stream, this server's own too, in stream order, with its entry id as last argument (the
//!   only offset). `persist_session` keeps `SET sio:session:<pid> base64(msgpack {sid, pid,
//!   rooms, data}) PX <maxDisconnectionDuration>`; `restore_session(pid, offset)` takes it
//!   (`MULTI GET DEL EXEC`), checks the offset is still in the stream, has the processing
//!   task join the socket to its rooms and hold its packets once it delivered that offset (at
//!   position P), and reads the broadcasts after the offset up to P (`XRANGE`) that reach the
//!   session's rooms: each packet is replayed or delivered after the CONNECT reply, once.
//! - **Live snapshots** (beyond Node): while a socket is connected its session is kept at
//!   the same key and in the same encoding, plus a `lease` key (Node ignores it), written
//!   when the socket connects and when its rooms or data change (at most one write per
//!   100 ms per socket), and written again every quarter of the window with the window as
//!   TTL. So a client whose server was killed (SIGKILL, power loss) while it was connected
//!   recovers on any server, Volley or Node, with what it missed after its last offset.
//!   Writes are conditional (`EVAL`: only if the key still holds this connection's last
//!   snapshot, or nothing), a manual or server-side disconnect deletes the snapshot, and a
//!   restore of a pid whose socket is still connected takes the session over: the old
//!   socket is disconnected (here, and on the other servers with `disconnectSockets` to its
//!   own room), never two live sockets of one id. Cost per connected socket: one `SET` at
//!   connect, one `EVAL` per change burst, and 4 refreshes per window in batches of 200
//!   sockets per `EVAL` (with the default 2 min window: 2 refreshes a minute, each a `GET`
//!   and a `SET` inside the script).
//! - The classic and sharded modes do not support recovery, as Node's adapters: the server
//!   still sends a pid, but no offsets, and every reconnection is a fresh session.
//! - Not supported: Node's `streamCount` > 1 (one stream per namespace hash), and
//!   `all_rooms` (Node's streams adapter has none either).
//!
//! [`LocalAdapter`]: volley_core::adapter::LocalAdapter

mod adapter;
mod channels;
mod cluster;
mod config;
mod convert;
mod link;
mod live;
pub mod message;
pub mod packet;
mod reader;
mod remote;
mod request;
mod session;
pub mod value;

pub use adapter::RedisAdapter;
pub use cluster::RedisCluster;
pub use config::{
    DEFAULT_REQUESTS_TIMEOUT, Mode, RedisAdapterConfig, Stats, StreamsConfig, SubscriptionMode,
};
