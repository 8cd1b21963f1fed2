//! [`RedisCluster`]: one server's membership in the cluster, shared by the adapters of all
//! its namespaces, and the task that dispatches what the subscriber receives.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use tokio::sync::mpsc;
use volley_core::adapter::{AdapterError, AdapterFactory, LocalSockets};

use crate::adapter::RedisAdapter;
use crate::channels::ChannelKind;
use crate::config::{Mode, RedisAdapterConfig, Stats};
use crate::link::{Incoming, Link, LinkConfig, Target};
use crate::message::{
    decode_classic, decode_classic_broadcast, decode_cluster, decode_stream_entry, parse_entry_id,
};
use crate::reader::{self, ReaderConfig};
use crate::session::Barrier;

pub(crate) struct Shared {
    pub(crate) config: RedisAdapterConfig,
    pub(crate) uid: String,
    pub(crate) link: Arc<Link>,
    pub(crate) namespaces: RwLock<HashMap<String, Weak<RedisAdapter>>>,
    /// Streams mode: the processing task's queue, for restores' barriers.
    pub(crate) barriers: Option<mpsc::Sender<Incoming>>,
}

/// A server's membership in a Redis-backed cluster: two connections to Redis, shared by the
/// adapters of all namespaces. Make it with [`RedisCluster::connect`], give
/// [`RedisCluster::factory`] to the builder's `.adapter(...)`.
///
/// ```
/// use std::time::Duration;
///
/// use volley::SocketIo;
/// use volley_redis::{RedisAdapterConfig, RedisCluster};
///
/// # struct Redis(std::process::Child, std::path::PathBuf);
/// # impl Drop for Redis {
/// #     fn drop(&mut self) { let _ = self.0.kill(); let _ = self.0.wait(); let _ = std::fs::remove_file(&self.1); }
/// # }
/// # fn start_redis() -> Result<(Redis, String), Box<dyn std::error::Error>> {
/// #     use std::io::{Read, Write};
/// #     let path = std::env::temp_dir().join(format!("volley-redis-doc-{}-{}.sock", std::process::id(), std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos()));
/// #     let _ = std::fs::remove_file(&path);
/// #     let child = std::process::Command::new("redis-server")
/// #         .args(["--port", "0", "--save", "", "--appendonly", "no", "--unixsocket"])
/// #         .arg(&path)
/// #         .stdout(std::process::Stdio::null())
/// #         .spawn()?;
/// #     let redis = Redis(child, path.clone());
/// #     let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
/// #     loop { // wait for PONG
/// #         if let Ok(mut s) = std::os::unix::net::UnixStream::connect(&path) {
/// #             let mut buf = [0u8; 7];
/// #             if s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n" { break; }
/// #         }
/// #         if std::time::Instant::now() > deadline { return Err("redis-server did not start".into()); }
/// #         std::thread::sleep(std::time::Duration::from_millis(20));
/// #     }
/// #     Ok((redis, format!("redis+unix://{}", path.display())))
/// # }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let (_redis, url) = start_redis()?;
/// // Two servers (in one process here, one per machine in real life) share one Redis.
/// // `url` is e.g. "redis://127.0.0.1:6379".
/// let mut servers = Vec::new();
/// for _ in 0..2 {
///     let cluster = RedisCluster::connect(&url, RedisAdapterConfig::default()).await?;
///     let io = SocketIo::builder().adapter(cluster.factory()).build();
///     io.of("/chat");
///     cluster.ready(Duration::from_secs(5)).await?; // subscriptions confirmed
///     servers.push((cluster, io));
/// }
/// let (_, io) = &servers[0];
/// assert_eq!(io.of("/chat").server_count().await?, 2);
/// // Reaches the clients of both servers.
/// io.of("/chat").emit("hello", "every client of every server")?;
/// # for (cluster, _) in &servers { cluster.close(); }
/// # Ok(()) }
/// ```
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

pub(crate) fn random_token(len: usize, alphabet: &[u8]) -> String {
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
    /// Connects to Redis at `url` (`redis://host:port[/db]`; with
    /// [`RedisAdapterConfig::cluster`], a comma-separated list of a Redis Cluster's seed
    /// nodes) and waits until both connections are up, at most `config.command_timeout` (plus one retry). After that,
    /// the link heals itself: it reconnects and resubscribes whenever Redis comes back.
    pub async fn connect(url: &str, config: RedisAdapterConfig) -> Result<Self, AdapterError> {
        let target = target(url, &config)?;
        let uid = match config.mode {
            Mode::Classic => random_token(6, ALNUM),
            Mode::Sharded(_) | Mode::Streams => random_token(16, HEX),
        };
        let (link, incoming_tx, incoming) = Link::start(
            target,
            LinkConfig {
                incoming_capacity: config.incoming_capacity,
                outgoing_capacity: config.outgoing_capacity,
                ping_interval: config.ping_interval,
                command_timeout: config.command_timeout,
                max_backoff: config.max_backoff,
            },
        );
        let wait = config.command_timeout * 2 + Duration::from_millis(100);
        let barriers = matches!(config.mode, Mode::Streams).then(|| incoming_tx.clone());
        let shared = Arc::new(Shared {
            config,
            uid,
            link,
            namespaces: RwLock::new(HashMap::new()),
            barriers,
        });
        tokio::spawn(process(Arc::downgrade(&shared), incoming));
        if let Mode::Streams = shared.config.mode {
            let s = &shared.config.streams;
            let cfg = ReaderConfig {
                stream: s.stream_name.clone(),
                count: s.read_count,
                block: s.block_time,
            };
            reader::spawn(&shared.link, cfg, incoming_tx);
        } else {
            drop(incoming_tx);
        }
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

/// The server, or the cluster's seed nodes, `url` names; in RESP3 (one subscriber
/// connection carries every kind of subscription and its messages as pushes).
fn target(url: &str, config: &RedisAdapterConfig) -> Result<Target, AdapterError> {
    use redis::IntoConnectionInfo;
    let resp3 = |url: &str| {
        let info = url
            .trim()
            .into_connection_info()
            .map_err(|e| AdapterError::Config(format!("bad redis url {url:?}: {e}")))?;
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(redis::ProtocolVersion::RESP3);
        Ok::<_, AdapterError>(info.set_redis_settings(settings))
    };
    let urls: Vec<&str> = if config.cluster {
        url.split(',').filter(|u| !u.trim().is_empty()).collect()
    } else {
        vec![url]
    };
    let seeds = urls
        .iter()
        .map(|u| resp3(u))
        .collect::<Result<Vec<_>, _>>()?;
    let Some(first) = seeds.first() else {
        return Err(AdapterError::Config("no redis url".into()));
    };
    if config.cluster && config.mode == Mode::Streams {
        return Err(AdapterError::Config(
            "streams mode is not supported on a Redis Cluster".into(),
        ));
    }
    let single = redis::Client::open(first.clone())
        .map_err(|e| AdapterError::Config(format!("redis: {e}")))?;
    Ok(Target {
        single,
        cluster: config.cluster.then_some(seeds),
    })
}

impl Shared {
    pub(crate) fn next_request_id(&self) -> String {
        match self.config.mode {
            Mode::Classic => random_token(12, ALNUM),
            Mode::Sharded(_) | Mode::Streams => random_token(16, HEX),
        }
    }
}

/// The processing task: decodes and dispatches what the subscriber and the stream reader
/// received, in order. In streams mode it knows how far the stream has been delivered here
/// (`position`), and runs the restores' barriers at that exact point.
pub(crate) async fn process(shared: Weak<Shared>, mut incoming: mpsc::Receiver<Incoming>) {
    let mut position: Option<String> = None;
    let mut barriers: Vec<Barrier> = Vec::new();
    while let Some(msg) = incoming.recv().await {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        match msg {
            Incoming::Message { channel, payload } => {
                let Some((adapter, kind)) = shared.route(&channel) else {
                    continue;
                };
                let decoded = match kind {
                    ChannelKind::ClassicBroadcast => decode_classic_broadcast(&payload),
                    ChannelKind::ClassicRequest | ChannelKind::ClassicResponse => {
                        decode_classic(&payload)
                    }
                    ChannelKind::Sharded | ChannelKind::ShardedResponse => decode_cluster(&payload),
                };
                match decoded {
                    Ok(env) => {
                        let response_channel = matches!(
                            kind,
                            ChannelKind::ClassicResponse | ChannelKind::ShardedResponse
                        );
                        adapter.on_message(env, response_channel, None);
                    }
                    Err(e) => shared.decode_error(&channel, &e),
                }
                continue;
            }
            Incoming::Entry { id, fields } => {
                match decode_stream_entry(&fields) {
                    Ok(env) => {
                        let adapter = env.nsp.as_deref().and_then(|n| shared.adapter(n));
                        if let Some(adapter) = adapter {
                            adapter.on_message(env, false, Some(&id));
                        }
                    }
                    Err(e) => shared.decode_error(&shared.config.streams.stream_name, &e),
                }
                position = Some(id);
            }
            Incoming::Position(id) => position = Some(id),
            Incoming::Barrier(b) => barriers.push(b),
        }
        if let (Some(at), false) = (&position, barriers.is_empty()) {
            barriers = run_barriers(&shared, barriers, at);
        }
    }
}

/// Runs the barriers whose offset has been delivered here (`at` or before); keeps the others.
fn run_barriers(shared: &Shared, barriers: Vec<Barrier>, at: &str) -> Vec<Barrier> {
    let reached = |offset: &str| parse_entry_id(offset) <= parse_entry_id(at);
    let (now, later): (Vec<_>, Vec<_>) = barriers
        .into_iter()
        .partition(|b| b.is_abandoned() || reached(&b.offset));
    for b in now {
        if let Some(adapter) = shared.adapter(&b.nsp) {
            adapter.run_barrier(b, at);
        }
    }
    later
}

impl Shared {
    fn decode_error(&self, source: &str, e: &str) {
        self.link
            .counters
            .decode_errors
            .fetch_add(1, Ordering::Relaxed);
        tracing::debug!(source, error = %e, "redis adapter: undecodable message");
    }

    /// The adapter of namespace `nsp`, if it is alive.
    pub(crate) fn adapter(&self, nsp: &str) -> Option<Arc<RedisAdapter>> {
        self.namespaces
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(nsp)
            .and_then(Weak::upgrade)
    }
}
