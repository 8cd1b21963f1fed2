//! The adapter: one [`RedisAdapter`] per namespace over one shared [`RedisCluster`] link.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use volley_core::adapter::{
    AckSink, Adapter, AdapterError, AdapterFactory, BroadcastFlags, BroadcastOptions,
    BroadcastPacket, LocalAdapter, LocalSockets, Room, RoomEvent, ServerAck, SocketInfo,
};
use volley_core::{BoxFuture, RawArgs};

use crate::link::{Incoming, Link, LinkConfig, PubCmd};
use crate::message::{
    Envelope, Message, Opts, Packet, decode_classic, decode_classic_broadcast, decode_cluster,
    encode_classic, encode_classic_broadcast, encode_cluster,
};
use crate::packet::{args_to_values, build_packet, packet_data, values_to_args};
use crate::value::Value;

/// Which of Node's two Redis adapters to be compatible with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// `createAdapter`: PUBLISH/PSUBSCRIBE/SUBSCRIBE, MessagePack broadcasts, JSON requests.
    /// Also what `@socket.io/redis-emitter` speaks.
    #[default]
    Classic,
    /// `createShardedAdapter` (Redis >= 7): SPUBLISH/SSUBSCRIBE, the cluster message model.
    Sharded(SubscriptionMode),
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
    /// Classic or sharded.
    pub mode: Mode,
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

/// How long a cluster request waits for the other servers' answers (Node's
/// `requestsTimeout`).
pub const DEFAULT_REQUESTS_TIMEOUT: Duration = Duration::from_secs(5);

impl Default for RedisAdapterConfig {
    fn default() -> Self {
        Self {
            key: "socket.io".into(),
            mode: Mode::Classic,
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

pub(crate) struct Shared {
    config: RedisAdapterConfig,
    uid: String,
    link: Arc<Link>,
    namespaces: RwLock<HashMap<String, Weak<RedisAdapter>>>,
}

/// A server's membership in a Redis-backed cluster: two connections to Redis, shared by the
/// adapters of all namespaces. Make it with [`RedisCluster::connect`], give
/// [`RedisCluster::factory`] to the builder's `.adapter(...)`.
#[derive(Clone)]
pub struct RedisCluster {
    shared: Arc<Shared>,
}

impl fmt::Debug for RedisCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCluster")
            .field("uid", &self.shared.uid)
            .field("mode", &self.shared.config.mode)
            .field("key", &self.shared.config.key)
            .finish()
    }
}

fn random_token(len: usize, alphabet: &[u8]) -> String {
    let mut bytes = vec![0u8; len];
    if getrandom::fill(&mut bytes).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (t >> ((i % 16) * 8)) as u8 ^ (i as u8).wrapping_mul(151);
        }
    }
    bytes
        .iter()
        .map(|b| alphabet[usize::from(*b) % alphabet.len()] as char)
        .collect()
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const HEX: &[u8] = b"0123456789abcdef";

impl RedisCluster {
    /// Connects to Redis at `url` (`redis://host:port[/db]`) and waits until both
    /// connections are up, at most `config.command_timeout` (plus one retry). After that,
    /// the link heals itself: it reconnects and resubscribes whenever Redis comes back.
    pub async fn connect(url: &str, config: RedisAdapterConfig) -> Result<Self, AdapterError> {
        use redis::IntoConnectionInfo;
        let info = url
            .into_connection_info()
            .map_err(|e| AdapterError::Config(format!("bad redis url: {e}")))?;
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(redis::ProtocolVersion::RESP3);
        let client = redis::Client::open(info.set_redis_settings(settings))
            .map_err(|e| AdapterError::Config(format!("redis: {e}")))?;
        let uid = match config.mode {
            Mode::Classic => random_token(6, ALNUM),
            Mode::Sharded(_) => random_token(16, HEX),
        };
        let (link, incoming) = Link::start(
            client,
            LinkConfig {
                incoming_capacity: config.incoming_capacity,
                outgoing_capacity: config.outgoing_capacity,
                ping_interval: config.ping_interval,
                command_timeout: config.command_timeout,
                max_backoff: config.max_backoff,
            },
        );
        let wait = config.command_timeout * 2 + Duration::from_millis(100);
        let shared = Arc::new(Shared {
            config,
            uid,
            link,
            namespaces: RwLock::new(HashMap::new()),
        });
        tokio::spawn(process(Arc::downgrade(&shared), incoming));
        if let Err(e) = shared.link.ready(wait).await {
            shared.link.close();
            return Err(e);
        }
        Ok(Self { shared })
    }

    /// The adapter factory for `SocketIo::builder().adapter(...)`: every namespace gets a
    /// [`RedisAdapter`] on this link.
    pub fn factory(&self) -> AdapterFactory {
        let shared = self.shared.clone();
        Arc::new(move |sockets: LocalSockets| RedisAdapter::create(&shared, sockets))
    }

    /// Waits until every namespace created so far is subscribed (and the link is up).
    /// Until then, other servers do not count this one and their messages may be missed.
    pub async fn ready(&self, timeout: Duration) -> Result<(), AdapterError> {
        self.shared.link.ready(timeout).await
    }

    /// This server's id on the wire (6 alphanumerics in classic mode, 16 hex digits in
    /// sharded mode, as Node's).
    pub fn uid(&self) -> &str {
        &self.shared.uid
    }

    /// Whether the link to Redis is up.
    pub fn is_connected(&self) -> bool {
        self.shared.link.is_healthy()
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        let c = &self.shared.link.counters;
        Stats {
            connected: self.is_connected(),
            dropped_incoming: c.dropped_incoming.load(Ordering::Relaxed),
            dropped_outgoing: c.dropped_outgoing.load(Ordering::Relaxed),
            decode_errors: c.decode_errors.load(Ordering::Relaxed),
            reconnects: c.reconnects.load(Ordering::Relaxed),
            request_timeouts: c.request_timeouts.load(Ordering::Relaxed),
        }
    }

    /// Leaves the cluster: unsubscribes, closes the connections, stops the tasks. The
    /// adapters then act as local ones whose cluster operations fail.
    pub fn close(&self) {
        self.shared.link.close();
    }
}

// ---------------------------------------------------------------------------------------
// Channels
// ---------------------------------------------------------------------------------------

impl Shared {
    fn classic(&self) -> bool {
        matches!(self.config.mode, Mode::Classic)
    }

    fn pub_cmd(&self) -> PubCmd {
        if self.classic() {
            PubCmd::Publish
        } else {
            PubCmd::SPublish
        }
    }

    /// `key#nsp#`: classic broadcasts (pattern `key#nsp#*`), the sharded main channel.
    fn main_channel(&self, nsp: &str) -> String {
        format!("{}#{nsp}#", self.config.key)
    }

    /// `key#nsp#room#`: classic single-room broadcasts, sharded room channels.
    fn room_channel(&self, nsp: &str, room: &str) -> String {
        format!("{}#{nsp}#{room}#", self.config.key)
    }

    fn request_channel(&self, nsp: &str) -> String {
        format!("{}-request#{nsp}#", self.config.key)
    }

    fn response_channel(&self, nsp: &str) -> String {
        format!("{}-response#{nsp}#", self.config.key)
    }

    fn own_response_channel(&self, nsp: &str) -> String {
        match self.config.mode {
            Mode::Classic => format!("{}-response#{nsp}#{}#", self.config.key, self.uid),
            Mode::Sharded(_) => format!("{}#{nsp}#{}#", self.config.key, self.uid),
        }
    }

    fn publish(&self, channel: String, payload: Vec<u8>) -> Result<(), AdapterError> {
        self.link.publish(self.pub_cmd(), channel, payload)
    }

    /// Publishes a request (anything but a response) of namespace `nsp`.
    fn publish_request(&self, nsp: &str, message: &Message) -> Result<(), AdapterError> {
        if self.classic() {
            let (channel, body) = match message {
                Message::Broadcast {
                    packet,
                    opts,
                    request_id: None,
                } => {
                    let channel = match opts.rooms.as_slice() {
                        [room] => self.room_channel(nsp, room),
                        _ => self.main_channel(nsp),
                    };
                    (
                        channel,
                        encode_classic_broadcast(&self.uid, packet, opts, false),
                    )
                }
                _ => {
                    let body = encode_classic(Some(&self.uid), message)
                        .ok_or_else(|| AdapterError::Encode("not a classic message".into()))?;
                    (self.request_channel(nsp), body)
                }
            };
            self.publish(channel, body)
        } else {
            let body = encode_cluster(&self.uid, nsp, message)
                .ok_or_else(|| AdapterError::Encode("not a cluster message".into()))?;
            let channel = match (self.config.mode, message) {
                (
                    Mode::Sharded(mode),
                    Message::Broadcast {
                        opts,
                        request_id: None,
                        ..
                    },
                ) if opts.rooms.len() == 1 => {
                    let room = &opts.rooms[0];
                    let by_room = match mode {
                        SubscriptionMode::Static => false,
                        // A 20-character room looks like a socket id: Node's dynamic mode
                        // does not subscribe those.
                        SubscriptionMode::Dynamic => room.chars().count() != 20,
                        SubscriptionMode::DynamicPrivate => true,
                    };
                    if by_room {
                        self.room_channel(nsp, room)
                    } else {
                        self.main_channel(nsp)
                    }
                }
                _ => self.main_channel(nsp),
            };
            self.publish(channel, body)
        }
    }

    /// Publishes a response to `requester`'s request.
    fn publish_response(&self, nsp: &str, requester: Option<&str>, message: &Message) {
        let result = if self.classic() {
            let Some(body) = encode_classic(None, message) else {
                return;
            };
            // serverSideEmit acknowledgements always use the shared channel.
            let specific = self.config.publish_on_specific_response_channel
                && !matches!(message, Message::ServerSideEmitResponse { .. });
            let channel = match requester {
                Some(uid) if specific => format!("{}-response#{nsp}#{uid}#", self.config.key),
                _ => self.response_channel(nsp),
            };
            self.publish(channel, body)
        } else {
            let Some(requester) = requester else {
                return;
            };
            let Some(body) = encode_cluster(&self.uid, nsp, message) else {
                return;
            };
            self.publish(self.room_channel(nsp, requester), body)
        };
        if let Err(e) = result {
            tracing::debug!(error = %e, "redis adapter: response not sent");
        }
    }

    fn subscribe_namespace(&self, nsp: &str) {
        self.link.update_subs(|s| match self.config.mode {
            Mode::Classic => {
                s.patterns.insert(format!("{}*", self.main_channel(nsp)));
                s.channels.insert(self.request_channel(nsp));
                s.channels.insert(self.response_channel(nsp));
                s.channels.insert(self.own_response_channel(nsp));
            }
            Mode::Sharded(_) => {
                s.shard.insert(self.main_channel(nsp));
                s.shard.insert(self.own_response_channel(nsp));
            }
        });
    }

    fn next_request_id(&self) -> String {
        match self.config.mode {
            Mode::Classic => random_token(12, ALNUM),
            Mode::Sharded(_) => random_token(16, HEX),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Incoming messages
// ---------------------------------------------------------------------------------------

/// What a subscribed channel carries.
enum ChannelKind {
    /// Classic `key#nsp#[room#]`.
    ClassicBroadcast,
    /// Classic `key-request#nsp#`.
    ClassicRequest,
    /// Classic `key-response#nsp#[uid#]`.
    ClassicResponse,
    /// Sharded main or room channel.
    Sharded,
    /// Sharded `key#nsp#<our uid>#`.
    ShardedResponse,
}

impl Shared {
    /// The namespace adapter and kind of a channel.
    fn route(&self, channel: &str) -> Option<(Arc<RedisAdapter>, ChannelKind)> {
        let key = &self.config.key;
        let namespaces = self.namespaces.read().unwrap_or_else(|p| p.into_inner());
        let find = |rest: &str| -> Option<(Arc<RedisAdapter>, usize)> {
            // The longest namespace `N` such that `rest` starts with `N#`.
            namespaces
                .iter()
                .filter(|(n, _)| {
                    rest.len() > n.len() && rest.starts_with(n.as_str()) && {
                        rest.as_bytes()[n.len()] == b'#'
                    }
                })
                .max_by_key(|(n, _)| n.len())
                .and_then(|(n, a)| a.upgrade().map(|a| (a, n.len() + 1)))
        };
        if self.classic() {
            if let Some(rest) = channel
                .strip_prefix(key.as_str())
                .and_then(|r| r.strip_prefix("-request#"))
            {
                let (a, _) = find(rest)?;
                return Some((a, ChannelKind::ClassicRequest));
            }
            if let Some(rest) = channel
                .strip_prefix(key.as_str())
                .and_then(|r| r.strip_prefix("-response#"))
            {
                let (a, _) = find(rest)?;
                return Some((a, ChannelKind::ClassicResponse));
            }
            let rest = channel.strip_prefix(key.as_str())?.strip_prefix('#')?;
            let (a, _) = find(rest)?;
            Some((a, ChannelKind::ClassicBroadcast))
        } else {
            let rest = channel.strip_prefix(key.as_str())?.strip_prefix('#')?;
            let (a, at) = find(rest)?;
            let tail = &rest[at..];
            let kind = if tail.strip_suffix('#') == Some(self.uid.as_str()) {
                ChannelKind::ShardedResponse
            } else {
                ChannelKind::Sharded
            };
            Some((a, kind))
        }
    }
}

/// The processing task: decodes and dispatches what the subscriber received, in order.
async fn process(shared: Weak<Shared>, mut incoming: mpsc::Receiver<Incoming>) {
    while let Some(msg) = incoming.recv().await {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let Some((adapter, kind)) = shared.route(&msg.channel) else {
            continue;
        };
        let decoded = match kind {
            ChannelKind::ClassicBroadcast => decode_classic_broadcast(&msg.payload),
            ChannelKind::ClassicRequest | ChannelKind::ClassicResponse => {
                decode_classic(&msg.payload)
            }
            ChannelKind::Sharded | ChannelKind::ShardedResponse => decode_cluster(&msg.payload),
        };
        match decoded {
            Ok(env) => {
                let response_channel = matches!(
                    kind,
                    ChannelKind::ClassicResponse | ChannelKind::ShardedResponse
                );
                adapter.on_message(env, response_channel);
            }
            Err(e) => {
                shared
                    .link
                    .counters
                    .decode_errors
                    .fetch_add(1, Ordering::Relaxed);
                tracing::debug!(channel = %msg.channel, error = %e, "redis adapter: undecodable message");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The adapter
// ---------------------------------------------------------------------------------------

enum Pending {
    /// A request whose answers are collected by the requesting future.
    Collect(mpsc::UnboundedSender<Message>),
    /// A broadcast or serverSideEmit with acknowledgements.
    Acks(Arc<dyn AckSink>),
}

/// The adapter of one namespace: a [`LocalAdapter`] for this server's sockets, plus Redis
/// for the others.
pub struct RedisAdapter {
    local: LocalAdapter,
    nsp: String,
    shared: Arc<Shared>,
    pending: Mutex<HashMap<String, Pending>>,
}

impl fmt::Debug for RedisAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisAdapter")
            .field("nsp", &self.nsp)
            .field("uid", &self.shared.uid)
            .finish()
    }
}

fn rooms_of(v: &[String]) -> Vec<Room> {
    v.iter().map(|r| Room::from(r.as_str())).collect()
}

fn strings_of(v: &[Room]) -> Vec<String> {
    v.iter().map(|r| r.to_string()).collect()
}

/// Our options to the wire's.
fn wire_opts(opts: &BroadcastOptions) -> Opts {
    let mut flags = Vec::new();
    if opts.flags.volatile {
        flags.push(("volatile".to_owned(), Value::Bool(true)));
    }
    if let Some(t) = opts.flags.timeout {
        flags.push(("timeout".to_owned(), Value::Int(t.as_millis() as i64)));
    }
    Opts {
        rooms: strings_of(&opts.rooms),
        except: strings_of(&opts.except),
        flags: Some(Value::Map(flags)),
    }
}

/// The wire's options to ours.
fn local_opts(opts: &Opts) -> BroadcastOptions {
    BroadcastOptions {
        rooms: rooms_of(&opts.rooms),
        except: rooms_of(&opts.except),
        flags: BroadcastFlags {
            local: true,
            volatile: opts.volatile(),
            timeout: opts.timeout_ms().map(Duration::from_millis),
        },
    }
}

/// Utility requests (join, leave, disconnect) carry no flags in classic mode.
fn request_opts(opts: &BroadcastOptions, classic: bool) -> Opts {
    let mut o = wire_opts(opts);
    if classic {
        o.flags = None;
    } else {
        o.flags = Some(Value::Map(Vec::new()));
    }
    o
}

fn info_to_value(s: &SocketInfo) -> Value {
    Value::map([
        ("id", Value::Str(s.id.to_string())),
        ("handshake", Value::from_json_value(&s.handshake)),
        ("rooms", Value::strings(s.rooms.iter().map(|r| &**r))),
        ("data", Value::from_json_value(&s.data)),
    ])
}

fn value_to_info(v: &Value) -> Option<SocketInfo> {
    Some(SocketInfo {
        id: v.get("id")?.js_string().into(),
        handshake: v
            .get("handshake")
            .map(Value::to_json_value)
            .unwrap_or(serde_json::Value::Null),
        rooms: v
            .get("rooms")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(|r| Room::from(r.js_string())).collect())
            .unwrap_or_default(),
        data: v
            .get("data")
            .map(Value::to_json_value)
            .unwrap_or(serde_json::Value::Null),
    })
}

/// Reports a remote broadcast-with-ack's local results back to the requester.
struct RemoteAckSink {
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
    fn create(shared: &Arc<Shared>, sockets: LocalSockets) -> Arc<dyn Adapter> {
        let nsp = sockets.namespace();
        // Handles of dynamic namespaces (a pattern, or a predicate's label) are no real
        // namespace: they stay local, as Node's parent namespaces do.
        if !nsp.starts_with('/') || nsp.contains('*') {
            return Arc::new(LocalAdapter::new(sockets));
        }
        let local = match shared.config.mode {
            Mode::Sharded(
                mode @ (SubscriptionMode::Dynamic | SubscriptionMode::DynamicPrivate),
            ) => {
                let weak = Arc::downgrade(shared);
                let nsp = nsp.clone();
                LocalAdapter::with_room_hook(
                    sockets,
                    Arc::new(move |local: &LocalAdapter, e: &RoomEvent| {
                        let Some(shared) = weak.upgrade() else {
                            return;
                        };
                        match e {
                            RoomEvent::Create(room) if !room.is_empty() => {
                                // A room named after a local socket is that socket's own.
                                let private = !local.socket_rooms(room).is_empty();
                                if !private || mode == SubscriptionMode::DynamicPrivate {
                                    let ch = shared.room_channel(&nsp, room);
                                    shared.link.update_subs(|s| {
                                        s.shard.insert(ch);
                                    });
                                }
                            }
                            RoomEvent::Delete(room) => {
                                let ch = shared.room_channel(&nsp, room);
                                if ch != shared.main_channel(&nsp)
                                    && ch != shared.own_response_channel(&nsp)
                                {
                                    shared.link.update_subs(|s| {
                                        s.shard.remove(&ch);
                                    });
                                }
                            }
                            _ => {}
                        }
                    }),
                )
            }
            _ => LocalAdapter::new(sockets),
        };
        let adapter = Arc::new(Self {
            local,
            nsp: nsp.clone(),
            shared: shared.clone(),
            pending: Mutex::new(HashMap::new()),
        });
        shared
            .namespaces
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(nsp.clone(), Arc::downgrade(&adapter));
        shared.subscribe_namespace(&nsp);
        adapter
    }

    /// The local part.
    pub fn local(&self) -> &LocalAdapter {
        &self.local
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers acknowledgements for `request_id` and forgets them after `ttl`.
    fn register_acks(self: &Arc<Self>, request_id: &str, sink: Arc<dyn AckSink>, ttl: Duration) {
        self.pending()
            .insert(request_id.to_owned(), Pending::Acks(sink));
        let weak = Arc::downgrade(self);
        let rid = request_id.to_owned();
        tokio::spawn(async move {
            tokio::time::sleep(ttl).await;
            if let Some(me) = weak.upgrade() {
                me.pending().remove(&rid);
            }
        });
    }

    fn on_message(self: &Arc<Self>, env: Envelope, on_response_channel: bool) {
        if env.uid.as_deref() == Some(self.shared.uid.as_str()) {
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
                        let parser = self.local.local_sockets().parser();
                        let p = build_packet(parser, &self.nsp, &packet.data, None);
                        self.local.deliver(&p, &local_opts);
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
            }
            Message::SocketsLeave { opts, rooms } => {
                self.local
                    .del_sockets(&local_opts(&opts), &rooms_of(&rooms));
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

    fn on_response(&self, msg: Message) {
        let Some(rid) = msg.request_id().map(str::to_owned) else {
            return;
        };
        let mut pending = self.pending();
        match pending.get(&rid) {
            Some(Pending::Collect(tx)) => {
                let gone = tx.send(msg).is_err();
                if gone {
                    pending.remove(&rid);
                }
            }
            Some(Pending::Acks(sink)) => {
                let sink = sink.clone();
                drop(pending);
                match msg {
                    Message::BroadcastClientCount { client_count, .. } => {
                        sink.client_count(client_count as usize);
                    }
                    Message::BroadcastAck { packet, .. }
                    | Message::ServerSideEmitResponse { packet, .. } => {
                        sink.response("", values_to_args(&[packet]));
                    }
                    _ => {}
                }
            }
            None => {}
        }
    }

    async fn server_count_now(&self) -> Result<usize, AdapterError> {
        let link = &self.shared.link;
        if !link.is_healthy() {
            return Err(link.unavailable());
        }
        let n: i64 = if self.shared.classic() {
            let (_, n): (String, i64) = link
                .query(
                    redis::cmd("PUBSUB")
                        .arg("NUMSUB")
                        .arg(self.shared.request_channel(&self.nsp)),
                )
                .await?;
            n
        } else {
            let (_, n): (String, i64) = link
                .query(
                    redis::cmd("PUBSUB")
                        .arg("SHARDNUMSUB")
                        .arg(self.shared.main_channel(&self.nsp)),
                )
                .await?;
            n
        };
        Ok(n.max(1) as usize)
    }

    /// Sends `request` and collects the other servers' answers (one each).
    async fn request(
        self: &Arc<Self>,
        request_id: String,
        request: Message,
    ) -> Result<Vec<Message>, AdapterError> {
        let expected = self.server_count_now().await?.saturating_sub(1);
        if expected == 0 {
            return Ok(Vec::new());
        }
        let (tx, mut rx) = mpsc::unbounded_channel();
        self.pending()
            .insert(request_id.clone(), Pending::Collect(tx));
        let guard = RemoveOnDrop {
            adapter: self.clone(),
            request_id: request_id.clone(),
        };
        self.shared.publish_request(&self.nsp, &request)?;
        let mut out = Vec::with_capacity(expected);
        let deadline = tokio::time::Instant::now() + self.shared.config.requests_timeout;
        while out.len() < expected {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(m)) => out.push(m),
                Ok(None) => break,
                Err(_) => {
                    self.shared
                        .link
                        .counters
                        .request_timeouts
                        .fetch_add(1, Ordering::Relaxed);
                    return Err(AdapterError::Timeout {
                        expected,
                        received: out.len(),
                    });
                }
            }
        }
        drop(guard);
        Ok(out)
    }
}

struct RemoveOnDrop {
    adapter: Arc<RedisAdapter>,
    request_id: String,
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        self.adapter.pending().remove(&self.request_id);
    }
}

/// The adapter trait needs `&self`; the cluster operations need an `Arc` to outlive the
/// call. Namespaces hold the adapter in an `Arc`, and the registry keeps a `Weak` to it.
impl RedisAdapter {
    fn arc(&self) -> Option<Arc<Self>> {
        self.shared
            .namespaces
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&self.nsp)
            .and_then(Weak::upgrade)
            .filter(|a| std::ptr::eq(Arc::as_ptr(a), self))
    }

    fn publish_or_log(&self, message: &Message) {
        if let Err(e) = self.shared.publish_request(&self.nsp, message) {
            tracing::debug!(error = %e, "redis adapter: not published");
        }
    }
}

impl Adapter for RedisAdapter {
    fn add_all(&self, id: &str, rooms: &[Room]) {
        self.local.add_all(id, rooms);
    }

    fn del(&self, id: &str, room: &str) {
        self.local.del(id, room);
    }

    fn del_all(&self, id: &str) {
        self.local.del_all(id);
    }

    fn socket_rooms(&self, id: &str) -> Vec<Room> {
        self.local.socket_rooms(id)
    }

    fn broadcast(&self, packet: &BroadcastPacket, opts: &BroadcastOptions) {
        if !opts.flags.local {
            match packet_data(packet) {
                Ok(data) => {
                    let packet = Packet {
                        kind: 2,
                        data,
                        nsp: self.shared.classic().then(|| self.nsp.clone()),
                    };
                    let msg = Message::Broadcast {
                        packet,
                        opts: wire_opts(opts),
                        request_id: None,
                    };
                    self.publish_or_log(&msg);
                }
                Err(e) => tracing::debug!(error = %e, "redis adapter: cannot read packet"),
            }
        }
        self.local.deliver(packet, opts);
    }

    fn broadcast_with_ack(
        &self,
        packet: &BroadcastPacket,
        ack_id: u64,
        opts: &BroadcastOptions,
        sink: Arc<dyn AckSink>,
    ) {
        if !opts.flags.local {
            if let (Some(me), Ok(data)) = (self.arc(), packet_data(packet)) {
                let request_id = self.shared.next_request_id();
                let ttl = opts
                    .flags
                    .timeout
                    .unwrap_or(self.shared.config.requests_timeout);
                me.register_acks(&request_id, sink.clone(), ttl);
                let packet = Packet {
                    kind: 2,
                    data,
                    nsp: self.shared.classic().then(|| self.nsp.clone()),
                };
                let msg = Message::Broadcast {
                    packet,
                    opts: wire_opts(opts),
                    request_id: Some(request_id),
                };
                self.publish_or_log(&msg);
            }
        }
        let n = self
            .local
            .broadcast_with_ack_local(packet, ack_id, opts, &sink);
        sink.client_count(n);
    }

    fn sockets(&self, opts: &BroadcastOptions) -> BoxFuture<Result<Vec<String>, AdapterError>> {
        let fetch = self.fetch_sockets(opts);
        Box::pin(async move { Ok(fetch.await?.into_iter().map(|s| s.id.into()).collect()) })
    }

    fn fetch_sockets(
        &self,
        opts: &BroadcastOptions,
    ) -> BoxFuture<Result<Vec<SocketInfo>, AdapterError>> {
        let mut list = self.local.fetch_local(opts);
        if opts.flags.local {
            return Box::pin(std::future::ready(Ok(list)));
        }
        let Some(me) = self.arc() else {
            return Box::pin(std::future::ready(Ok(list)));
        };
        let opts = request_opts(opts, self.shared.classic());
        Box::pin(async move {
            let request_id = me.shared.next_request_id();
            let msg = Message::FetchSockets {
                opts,
                request_id: request_id.clone(),
            };
            for reply in me.request(request_id, msg).await? {
                if let Message::FetchSocketsResponse { sockets, .. } = reply {
                    list.extend(sockets.iter().filter_map(value_to_info));
                }
            }
            Ok(list)
        })
    }

    fn add_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]) {
        self.local.add_sockets(opts, rooms);
        if !opts.flags.local {
            self.publish_or_log(&Message::SocketsJoin {
                opts: request_opts(opts, self.shared.classic()),
                rooms: strings_of(rooms),
            });
        }
    }

    fn del_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]) {
        self.local.del_sockets(opts, rooms);
        if !opts.flags.local {
            self.publish_or_log(&Message::SocketsLeave {
                opts: request_opts(opts, self.shared.classic()),
                rooms: strings_of(rooms),
            });
        }
    }

    fn disconnect_sockets(&self, opts: &BroadcastOptions, close: bool) {
        if !opts.flags.local {
            self.publish_or_log(&Message::DisconnectSockets {
                opts: request_opts(opts, self.shared.classic()),
                close,
            });
        }
        self.local.disconnect_local(opts, close);
    }

    fn all_rooms(&self) -> BoxFuture<Result<Vec<Room>, AdapterError>> {
        let local = self.local.local_rooms();
        if !self.shared.classic() {
            // As Node's sharded adapter, which has no allRooms().
            return Box::pin(std::future::ready(Err(AdapterError::Unsupported(
                "allRooms() is not supported by the sharded adapter".into(),
            ))));
        }
        let Some(me) = self.arc() else {
            return Box::pin(std::future::ready(Ok(local)));
        };
        Box::pin(async move {
            let request_id = me.shared.next_request_id();
            let msg = Message::AllRooms {
                request_id: request_id.clone(),
            };
            let mut set: std::collections::BTreeSet<Room> = local.into_iter().collect();
            for reply in me.request(request_id, msg).await? {
                if let Message::AllRoomsResponse { rooms, .. } = reply {
                    set.extend(rooms.iter().map(|r| Room::from(r.as_str())));
                }
            }
            Ok(set.into_iter().collect())
        })
    }

    fn server_count(&self) -> BoxFuture<Result<usize, AdapterError>> {
        let Some(me) = self.arc() else {
            return Box::pin(std::future::ready(Ok(1)));
        };
        Box::pin(async move { me.server_count_now().await })
    }

    fn server_side_emit(
        &self,
        event: &str,
        args: &RawArgs,
        sink: Option<Arc<dyn AckSink>>,
    ) -> Result<(), AdapterError> {
        let link = &self.shared.link;
        if !link.is_healthy() {
            return Err(link.unavailable());
        }
        let mut packet = vec![Value::Str(event.to_owned())];
        packet.extend(args_to_values(args));
        let request_id = match sink {
            Some(sink) => {
                let me = self.arc().ok_or(AdapterError::Closed)?;
                let rid = self.shared.next_request_id();
                me.register_acks(&rid, sink, self.shared.config.requests_timeout);
                Some(rid)
            }
            None => None,
        };
        self.shared
            .publish_request(&self.nsp, &Message::ServerSideEmit { packet, request_id })
    }
}
