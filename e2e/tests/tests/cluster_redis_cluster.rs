//! A mixed cluster on a real Redis Cluster (3 masters, 3 replicas, started by the test on
//! loopback ports): one Node server (official socket.io 4.8 with `@socket.io/redis-adapter`
//! 8.3 `createShardedAdapter` on node-redis's `createCluster`) and two Volley servers
//! (volley-redis with `cluster: true`), each with official socket.io-client clients
//! (`scripts/cluster-driver.mjs`): broadcasts every way, fetchSockets, serverSideEmit with
//! acks, emitWithAck across the cluster, socketsJoin/Leave, disconnectSockets. Then the
//! master owning `/`'s main channel is killed (SIGKILL), its replica is promoted, and
//! everything is checked again, without restarting any server. The Node server's cluster
//! client is node-redis 6.4 (4.7 never moves sharded subscriptions; see
//! `scripts/cluster-node.mjs`).
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

/// Waits (bounded) until each main channel has `n` subscribers on the master owning it:
/// every server subscribed where the slot is now. Redis is the only one who knows: polled.
async fn wait_servers(redis: &RedisClusterNodes, n: i64) {
    let deadline = Instant::now() + WAIT;
    loop {
        let counts: Vec<Option<i64>> = CHANNELS
            .iter()
            .map(|ch| redis.shard_subscribers(ch))
            .collect();
        if counts.iter().all(|c| *c == Some(n)) {
            return;
        }
        if Instant::now() > deadline {
            let clients: Vec<String> = redis_cli(redis.master_of(CHANNELS[0]), &["CLIENT", "LIST"])
                .unwrap_or_default()
                .lines()
                .map(|l| {
                    l.split(' ')
                        .filter(|f| {
                            f.starts_with("ssub=")
                                || f.starts_with("resp=")
                                || f.starts_with("flags=")
                        })
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect();
            panic!("the masters count {counts:?} servers, not {n}, after {WAIT:?}: {clients:?}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_mixed_cluster_on_a_redis_cluster_survives_a_master_failover() {
    let mut redis = tokio::task::spawn_blocking(|| RedisClusterNodes::start(3, 1))
        .await
        .unwrap();
    let seeds = redis.seeds();
    let mode = Mode::Sharded(SubscriptionMode::Dynamic);
    let node = start_cluster_node(&seeds, "sharded", "dynamic", "node-a").await;
    let v1 = start_cluster_volley(&seeds, mode, "volley-b").await;
    let v2 = start_cluster_volley(&seeds, mode, "volley-c").await;
    wait_servers(&redis, 3).await;
    let urls: Vec<String> = [node.port, v1.port, v2.port]
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect();
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
    wait_servers(&redis, 3).await;
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
