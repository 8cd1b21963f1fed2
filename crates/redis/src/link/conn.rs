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
    /// SHARDNUMSUB`) on the master that owns `key`'s slot. It travels in a pipeline after
    /// `TYPE key`: a node that no longer owns the slot answers that with `MOVED`, and
    /// redis-rs follows the redirection and refreshes its slot map; alone, the command would
    /// be answered, wrongly, by whichever node a stale map names.
    pub(crate) async fn query_at(&mut self, cmd: &Cmd, key: &[u8]) -> redis::RedisResult<Value> {
        let mut pipe = redis::pipe();
        pipe.cmd("TYPE").arg(key).ignore().add_command(cmd.clone());
        let (reply,): (Value,) = pipe.query_async(self).await?;
        Ok(reply)
    }
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
    /// Opens one connection; `push` receives its RESP3 pushes (the subscriber's).
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
            .retries(CLUSTER_RETRIES)
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
