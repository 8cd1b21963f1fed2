//! A mixed cluster on a real Redis Cluster (3 masters, 3 replicas, started by the test on
//! loopback ports): one Node server (official socket.io 4.8 with `@socket.io/redis-adapter`
//! 8.3 `createShardedAdapter` on node-redis's `createCluster`) and two Volley servers
//! (volley-redis with `cluster: true`), each with official socket.io-client clients
//! (`scripts/cluster-driver.mjs`): broadcasts every way, fetchSockets, serverSideEmit with
//! acks, emitWithAck across the cluster, socketsJoin/Leave, disconnectSockets. Then the
//! master owning `/`'s main channel is killed (SIGKILL), its replica is promoted, and
//! everything is checked again, without restarting any server. The Node server's cluster
//! client is node-redis 6.4 (4.7 never moves sharded subscriptions; see
//! `scripts/cluster-node.mjs`). Classic mode (`createAdapter`, and the emitter) on a
//! cluster too, without failover.
//!
//! Not here: a graceful failover (`CLUSTER FAILOVER`) with a Node server. Volley follows it
//! (`crates/redis/tests/redis_cluster.rs`), but Node's adapter counts servers on the masters
//! its publishing client knows, and that client keeps the demoted master in its list (the
//! demoted master, now a replica, still accepts SPUBLISH, so nothing redirects it): Node's
//! serverCount says 0 until that client rediscovers the cluster for another reason.
//!
//! The test fails loudly if `redis-server`, `redis-cli` or Node cannot start.

mod cluster_common;

use std::time::{Duration, Instant};

use cluster_common::{WAIT, drive, start_cluster_node, start_cluster_volley};
use volley_redis::{Mode, SubscriptionMode};
use volley_test_support::redis_cluster::{RedisClusterNodes, redis_cli};

/// The main channels of `/` and `/chat` (in different slots, on different masters).
const CHANNELS: [&str; 2] = ["socket.io#/#", "socket.io#/chat#"];

/// Classic mode's request channels of `/` and `/chat` (what Node counts servers with).
const REQUEST_CHANNELS: [&str; 2] = ["socket.io-request#/#", "socket.io-request#/chat#"];

/// Subscribers of classic channel `channel` on the whole cluster (a SUBSCRIBE may be on any
/// node; PUBLISH reaches them all).
fn subscribers(redis: &RedisClusterNodes, channel: &str) -> Option<i64> {
    redis
        .live_ports()
        .into_iter()
        .map(|p| {
            let out = redis_cli(p, &["PUBSUB", "NUMSUB", channel]).ok()?;
            out.lines().nth(1)?.trim().parse::<i64>().ok()
        })
        .sum()
}

/// Waits (bounded) until `/` and `/chat` count `n` servers: in sharded mode, subscribers of
/// the main channel on the master owning it (every server subscribed where the slot is
/// now); in classic mode, subscribers of the request channel anywhere. Redis is the only
/// one who knows: polled.
async fn wait_servers(redis: &RedisClusterNodes, n: i64, sharded: bool) {
    let deadline = Instant::now() + WAIT;
    loop {
        let counts: Vec<Option<i64>> = if sharded {
            CHANNELS
                .iter()
                .map(|ch| redis.shard_subscribers(ch))
                .collect()
        } else {
            REQUEST_CHANNELS
                .iter()
                .map(|ch| subscribers(redis, ch))
                .collect()
        };
        if counts.iter().all(|c| *c == Some(n)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the cluster counts {counts:?} servers, not {n}, after {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The urls of the servers listening on `ports`.
fn urls(ports: &[u16]) -> Vec<String> {
    ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect()
}

async fn start_redis_cluster() -> RedisClusterNodes {
    tokio::task::spawn_blocking(|| RedisClusterNodes::start(3, 1))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_mixed_cluster_on_a_redis_cluster_survives_a_master_failover() {
    let mut redis = start_redis_cluster().await;
    let seeds = redis.seeds();
    let mode = Mode::Sharded(SubscriptionMode::Dynamic);
    let node = start_cluster_node(&seeds, "sharded", "dynamic", "node-a").await;
    let v1 = start_cluster_volley(&seeds, mode, "volley-b").await;
    let v2 = start_cluster_volley(&seeds, mode, "volley-c").await;
    wait_servers(&redis, 3, true).await;
    let urls = urls(&[node.port, v1.port, v2.port]);
    let label = "sharded dynamic on a Redis Cluster";
    drive(
        &urls,
        "sharded",
        &seeds,
        &format!("{label}, before the failover"),
    )
    .await;

    // A master dies (SIGKILL); its replica is promoted.
    let t0 = Instant::now();
    let master = redis.master_of(CHANNELS[0]);
    let before = [v1.cluster.stats().reconnects, v2.cluster.stats().reconnects];
    redis.kill(master);
    tokio::task::block_in_place(|| redis.wait_failover(master));
    eprintln!("{label}: failover done {:?} after the kill", t0.elapsed());
    for (v, before) in [&v1, &v2].into_iter().zip(before) {
        let deadline = Instant::now() + WAIT;
        while v.cluster.stats().reconnects == before {
            assert!(
                Instant::now() < deadline,
                "volley did not notice the failover"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        v.cluster
            .ready(WAIT)
            .await
            .expect("volley back on the cluster");
    }
    wait_servers(&redis, 3, true).await;
    eprintln!(
        "{label}: 3 servers counted again {:?} after the kill",
        t0.elapsed()
    );
    drive(
        &urls,
        "sharded",
        &seeds,
        &format!("{label}, after the failover"),
    )
    .await;
}

/// Classic mode on a Redis Cluster: PUBLISH reaches every node's subscribers, Node's
/// `createAdapter` on node-redis's cluster client next to Volley's `Mode::Classic` with
/// `cluster: true`; the emitter publishes through one node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classic_mixed_cluster_on_a_redis_cluster() {
    let redis = start_redis_cluster().await;
    let seeds = redis.seeds();
    let node = start_cluster_node(&seeds, "classic", "", "node-a").await;
    let v1 = start_cluster_volley(&seeds, Mode::Classic, "volley-b").await;
    let v2 = start_cluster_volley(&seeds, Mode::Classic, "volley-c").await;
    wait_servers(&redis, 3, false).await;
    let first_seed = redis.seed_list().remove(0);
    drive(
        &urls(&[node.port, v1.port, v2.port]),
        "classic",
        &first_seed,
        "classic on a Redis Cluster",
    )
    .await;
}
