//! What the link connects to: one Redis server, or a Redis Cluster through seed nodes.
//!
//! On a cluster, both of the link's connections are redis-rs cluster connections
//! (`cluster-async`): each keeps one connection per node, routes every command by the hash
//! slot of its first key (the channel of SPUBLISH/SSUBSCRIBE/PUBLISH), follows `MOVED` and
//! `ASK` redirections and refreshes its slot map (`CLUSTER SLOTS`) when one arrives or a node
//! fails. RESP3 pushes of every node reach the one push handler, so the subscriber sees
//! `smessage`s of every shard, and a `Disconnection` of any node.

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, Cmd, ConnectionInfo, PushInfo, RedisFuture, Value};

use super::LinkConfig;

/// Where the link connects.
pub(crate) struct Target {
    /// A single server (or, on a cluster, the first seed: used only by what needs a plain
    /// connection, the stream reader, which is refused on a cluster).
    pub(crate) single: redis::Client,
    /// The seed nodes of a Redis Cluster.
    pub(crate) cluster: Option<Vec<ConnectionInfo>>,
}

/// One connection of the link: to a server, or to a whole cluster.
#[derive(Clone)]
pub(crate) enum Conn {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl Conn {
    /// Whether commands to different slots must travel in different pipelines (a cluster
    /// refuses a pipeline whose keys live in different slots).
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }

    /// Runs `cmd` (a command whose arguments do not say where it belongs, like `PUBSUB
    /// SHARDNUMSUB`) on the master that owns `key`'s slot: in a pipeline after
    /// [`master_guard`], so that a stale slot map is corrected on the way.
    pub(crate) async fn query_at(&mut self, cmd: &Cmd, key: &[u8]) -> redis::RedisResult<Value> {
        let mut pipe = redis::pipe();
        if self.is_cluster() {
            pipe.add_command(master_guard(key)).ignore();
        }
        pipe.add_command(cmd.clone());
        let (reply,): (Value,) = pipe.query_async(self).await?;
        Ok(reply)
    }

    /// On a cluster: brings the connection's slot map up to date for `key`'s slot, so that
    /// the next command keyed by it (an SSUBSCRIBE) goes to the slot's master. The
    /// subscriber's cluster connection does not follow redirections (see
    /// [`Target::connect`]): each `MOVED` comes back here after redis-rs refreshed its map
    /// from some node, whose view may itself be a moment old, so it is asked again until
    /// the map's master accepts the guard.
    pub(crate) async fn refresh_route(&mut self, key: &[u8]) -> redis::RedisResult<()> {
        if !self.is_cluster() {
            return Ok(());
        }
        let mut attempts = 0;
        loop {
            match master_guard(key).exec_async(self).await {
                Err(e) if e.redirect_node().is_some() && attempts < ROUTE_ATTEMPTS => {
                    attempts += 1;
                }
                done => return done,
            }
        }
    }
}

/// How many slot-map refreshes [`Conn::refresh_route`] tries before it gives up (then the
/// supervisor reconnects).
const ROUTE_ATTEMPTS: u32 = 16;

/// `PEXPIRE key 0 GT`: changes nothing (a key without a TTL counts as an infinite one, and 0
/// is never greater than a TTL), but it is a write, so a node that is not the master of
/// `key`'s slot answers `MOVED`, which redis-rs follows while refreshing its slot map.
///
/// Why it is needed: Redis serves shard channels on every node of a shard, replicas
/// included, so after a failover a stale map sends SSUBSCRIBE (or `PUBSUB SHARDNUMSUB`) to
/// the demoted master without any redirection: the subscription would work but be counted
/// by nobody (Node's adapter, as this one, counts servers on the masters).
fn master_guard(key: &[u8]) -> Cmd {
    let mut cmd = redis::cmd("PEXPIRE");
    cmd.arg(key).arg(0).arg("GT");
    cmd
}

/// The hash slot of `key`, as Redis Cluster computes it: CRC16 (XMODEM) of the key, or of
/// its hash tag (the first non-empty `{...}`), modulo 16384. redis-rs computes it too but
/// does not export it.
pub(crate) fn slot(key: &[u8]) -> u16 {
    let tagged = key.iter().position(|&b| b == b'{').and_then(|open| {
        let rest = &key[open + 1..];
        let close = rest.iter().position(|&b| b == b'}')?;
        (close > 0).then(|| &rest[..close])
    });
    crc16::State::<crc16::XMODEM>::calculate(tagged.unwrap_or(key)) % 16384
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(cmd, offset, count),
            Self::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

impl Target {
    /// Opens one connection; `push` receives its RESP3 pushes (the subscriber's). On a
    /// cluster, the subscriber's connection (`push` given) does not retry: a command that
    /// fails or is redirected comes back as an error, so that the supervisor knows where
    /// each SSUBSCRIBE went (see [`Conn::refresh_route`]) and reconnects on a failure.
    pub(crate) async fn connect<P>(
        &self,
        config: &LinkConfig,
        push: Option<P>,
    ) -> redis::RedisResult<Conn>
    where
        P: Fn(PushInfo) -> Result<(), ()> + Send + Sync + 'static,
    {
        let timeout = config.command_timeout;
        let Some(seeds) = &self.cluster else {
            let mut cfg = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(timeout))
                .set_response_timeout(Some(timeout));
            if let Some(push) = push {
                cfg = cfg.set_push_sender(push);
            }
            let conn = self
                .single
                .get_multiplexed_async_connection_with_config(&cfg)
                .await?;
            return Ok(Conn::Single(conn));
        };
        let mut builder = ClusterClientBuilder::new(seeds.clone())
            .use_protocol(redis::ProtocolVersion::RESP3)
            .connection_timeout(timeout)
            .response_timeout(timeout)
            // A command follows a redirection or waits out a failover a few times, then
            // fails; the supervisor takes over from there (reconnects with its backoff).
            .retries(if push.is_some() { 0 } else { CLUSTER_RETRIES })
            .min_retry_wait(CLUSTER_MIN_RETRY_WAIT_MS)
            .max_retry_wait(CLUSTER_MAX_RETRY_WAIT_MS);
        if let Some(push) = push {
            builder = builder.push_sender(push);
        }
        let client = builder.build()?;
        let conn = client.get_async_connection().await?;
        Ok(Conn::Cluster(conn))
    }
}

/// How many times a command is retried on a cluster (redirections, a node being down).
const CLUSTER_RETRIES: u32 = 6;

/// The first wait before a retry on a cluster, in milliseconds.
const CLUSTER_MIN_RETRY_WAIT_MS: u64 = 20;

/// The longest wait before a retry on a cluster, in milliseconds.
const CLUSTER_MAX_RETRY_WAIT_MS: u64 = 500;

#[cfg(test)]
mod tests {
    use super::slot;

    #[test]
    fn slots_are_redis_cluster_slots() {
        // Values from CLUSTER KEYSLOT on redis-server 7.
        assert_eq!(slot(b"socket.io#/#"), 13868);
        assert_eq!(slot(b"socket.io#/#green#"), 1670);
        assert_eq!(slot(b"foo"), 12182);
        // A hash tag: only what is inside the first non-empty braces counts.
        assert_eq!(slot(b"{user1000}.following"), slot(b"user1000"));
        assert_eq!(slot(b"foo{}{bar}"), slot(b"foo{}{bar}"));
        assert_ne!(slot(b"foo{}{bar}"), slot(b"bar"));
    }
}
