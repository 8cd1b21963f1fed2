//! The cluster's settings and counters.

use std::time::Duration;

/// Which of Node's Redis adapters to be compatible with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// `createAdapter`: PUBLISH/PSUBSCRIBE/SUBSCRIBE, MessagePack broadcasts, JSON requests.
    /// Also what `@socket.io/redis-emitter` speaks.
    #[default]
    Classic,
    /// `createShardedAdapter` (Redis >= 7): SPUBLISH/SSUBSCRIBE, the cluster message model.
    Sharded(SubscriptionMode),
    /// `@socket.io/redis-streams-adapter` 0.3: durable operations through one Redis stream
    /// (XADD / XREAD), requests and responses over pub/sub; see [`StreamsConfig`].
    Streams,
}

/// The sharded adapter's `subscriptionMode`. Set it to the Node nodes' mode: the publisher's
/// mode decides the channel of a single-room broadcast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SubscriptionMode {
    /// Only the namespace's main channel.
    Static,
    /// Plus one channel per public room (Node's default).
    #[default]
    Dynamic,
    /// Plus one channel per room, socket-id rooms included.
    DynamicPrivate,
}

/// Settings; the defaults are Node's.
#[derive(Debug, Clone)]
pub struct RedisAdapterConfig {
    /// Channel prefix (`key` / `channelPrefix`), default `socket.io`.
    pub key: String,
    /// Classic, sharded or streams.
    pub mode: Mode,
    /// Connect to a **Redis Cluster** (`cluster-enabled yes`) rather than to one server:
    /// the url given to [`RedisCluster::connect`](crate::RedisCluster::connect) is then a
    /// comma-separated list of seed nodes (`redis://10.0.0.1:7000,redis://10.0.0.2:7000`;
    /// one reachable seed is enough, the others are found with `CLUSTER SLOTS`). Commands
    /// are routed by hash slot, and the link follows resharding and failovers. Classic and
    /// sharded modes only. Before each SSUBSCRIBE the link sends `PEXPIRE <channel> 0 GT`,
    /// which never changes anything but finds the slot's master (a Redis user restricted by
    /// ACLs needs that command on the channel names). Default false.
    pub cluster: bool,
    /// The streams adapter's settings (used with [`Mode::Streams`] only).
    pub streams: StreamsConfig,
    /// How long `fetch_sockets`, `all_rooms` and `server_side_emit` acks wait for the other
    /// servers (`requestsTimeout`), default 5 s.
    pub requests_timeout: Duration,
    /// Classic: answer on the requester's own response channel instead of the shared one
    /// (`publishOnSpecificResponseChannel`), default false. Both are always listened to.
    pub publish_on_specific_response_channel: bool,
    /// Capacity of the queue between the subscriber connection and message processing;
    /// when full, incoming messages are dropped and counted. Default 8192.
    pub incoming_capacity: usize,
    /// Capacity of the publish queue; when full, publishes fail and are counted.
    /// Default 8192.
    pub outgoing_capacity: usize,
    /// Interval of the subscriber connection's PING (finds half-open connections).
    /// Default 2 s.
    pub ping_interval: Duration,
    /// Timeout of connecting and of one command. Default 2 s.
    pub command_timeout: Duration,
    /// The longest wait between two reconnection attempts. Default 2 s.
    pub max_backoff: Duration,
}

impl RedisAdapterConfig {
    /// The defaults of `@socket.io/redis-streams-adapter` ([`Mode::Streams`]).
    pub fn streams() -> Self {
        Self {
            mode: Mode::Streams,
            ..Self::default()
        }
    }
}

/// The settings of [`Mode::Streams`]; the defaults are Node's. The pub/sub channel prefix is
/// [`RedisAdapterConfig::key`] (Node's `channelPrefix`).
///
/// Connection state recovery has no setting here: as Node's adapter reads
/// `connectionStateRecovery` from its server, each namespace's adapter takes the server's
/// (`SocketIoBuilder::connection_state_recovery`, given through `LocalSockets::recovery`).
#[derive(Debug, Clone)]
pub struct StreamsConfig {
    /// The stream (`streamName`), default `socket.io`. Node's `streamCount` is 1 (one
    /// stream for every namespace), the only layout supported here.
    pub stream_name: String,
    /// The approximate length the stream is trimmed to (`XADD MAXLEN ~`, `maxLen`), default
    /// 10 000. It bounds how long a server may be away and still catch up, and how far
    /// back a session can be recovered.
    pub max_len: usize,
    /// Entries read at most per `XREAD` (`readCount`), default 100.
    pub read_count: usize,
    /// How long one `XREAD` blocks (`blockTimeInMs`), default 5 s.
    pub block_time: Duration,
    /// Prefix of the keys sessions are kept under (`sessionKeyPrefix`), default
    /// `sio:session:`.
    pub session_key_prefix: String,
    /// SPUBLISH/SSUBSCRIBE instead of PUBLISH/SUBSCRIBE for requests and responses
    /// (`useShardedPubSub`), default false.
    pub sharded_pubsub: bool,
    /// Always write stream entries' `data` as JSON, never as base64 MessagePack
    /// (`onlyPlaintext`), default false.
    pub only_plaintext: bool,
}

impl Default for StreamsConfig {
    fn default() -> Self {
        Self {
            stream_name: "socket.io".into(),
            max_len: 10_000,
            read_count: 100,
            block_time: Duration::from_secs(5),
            session_key_prefix: "sio:session:".into(),
            sharded_pubsub: false,
            only_plaintext: false,
        }
    }
}

/// How long a cluster request waits for the other servers' answers (Node's
/// `requestsTimeout`).
pub const DEFAULT_REQUESTS_TIMEOUT: Duration = Duration::from_secs(5);

impl Default for RedisAdapterConfig {
    fn default() -> Self {
        Self {
            key: "socket.io".into(),
            mode: Mode::Classic,
            cluster: false,
            streams: StreamsConfig::default(),
            requests_timeout: DEFAULT_REQUESTS_TIMEOUT,
            publish_on_specific_response_channel: false,
            incoming_capacity: 8192,
            outgoing_capacity: 8192,
            ping_interval: Duration::from_secs(2),
            command_timeout: Duration::from_secs(2),
            max_backoff: Duration::from_secs(2),
        }
    }
}

/// A snapshot of the adapter's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Whether the link to Redis is up and subscribed.
    pub connected: bool,
    /// Incoming messages dropped because processing could not keep up.
    pub dropped_incoming: u64,
    /// Publishes that did not reach Redis (down, queue full, or failed).
    pub dropped_outgoing: u64,
    /// Messages that could not be decoded.
    pub decode_errors: u64,
    /// Reconnections after a loss.
    pub reconnects: u64,
    /// Cluster requests that timed out.
    pub request_timeouts: u64,
}
