//! The sharded mode on a real Redis Cluster (3 masters, 3 replicas, started by the test on
//! loopback ports): three Volley servers share broadcasts (to all, to one room: channels of
//! different slots, so of different masters), fetchSockets and serverSideEmit with
//! acknowledgements; then the main channel's slot moves to another master (Redis
//! unsubscribes the servers, they subscribe again where the slot is now); then its replica
//! takes over by `CLUSTER FAILOVER`; then the master owning it is killed (SIGKILL) and its
//! replica promoted; after each, everything works again without restarting the Volley
//! servers. Classic mode on the same cluster too.
//! Needs `redis-server` and `redis-cli` (>= 7).

mod common;

use std::time::Duration;

use common::{Client, WAIT, connect_client, next_text, wait_until};
use volley::{RawArgs, SocketIo};
use volley_redis::{Mode, RedisAdapterConfig, RedisCluster, SubscriptionMode};
use volley_test_support::redis_cluster::{RedisClusterNodes, redis_cli};

const MAIN: &str = "socket.io#/#";
const ROOM: &str = "socket.io#/#green#";

struct Node {
    name: String,
    cluster: RedisCluster,
    io: SocketIo,
    client: Client,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.server.abort();
        self.cluster.close();
    }
}

fn config(mode: Mode) -> RedisAdapterConfig {
    RedisAdapterConfig {
        mode,
        cluster: true,
        // A lost node is noticed by its connection closing; a generous timeout so that a
        // busy machine does not look like a dead node.
        command_timeout: WAIT,
        max_backoff: Duration::from_millis(200),
        ..Default::default()
    }
}

/// A server whose clients join room `green` and which answers the server event `ping` with its
/// name; with one raw client connected.
async fn node(seeds: &str, mode: Mode, name: &str) -> Node {
    let cluster = RedisCluster::connect(seeds, config(mode))
        .await
        .expect("joins the cluster");
    let io = SocketIo::builder().adapter(cluster.factory()).build();
    io.of("/").on_connection(|s: volley::Socket| async move {
        s.join("green");
    });
    let answer = name.to_owned();
    io.of("/").on_server_event("ping", move |_: RawArgs, ack| {
        let answer = answer.clone();
        async move {
            if let Some(ack) = ack {
                let _ = ack.send(&answer);
            }
        }
    });
    cluster.ready(WAIT).await.expect("subscribed");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = io.service();
    let server = tokio::spawn(async move {
        let _ = volley::serve(listener, service).await;
    });
    let client = connect_client(addr).await;
    Node {
        name: name.to_owned(),
        cluster,
        io,
        client,
        server,
    }
}

/// How many subscribers `channel` has on the whole cluster (shard channel or not).
fn subscribers(redis: &RedisClusterNodes, channel: &str, shard: bool) -> i64 {
    let sub = if shard { "SHARDNUMSUB" } else { "NUMSUB" };
    redis
        .live_ports()
        .into_iter()
        .filter_map(|p| redis_cli(p, &["PUBSUB", sub, channel]).ok())
        .filter_map(|out| {
            out.lines()
                .nth(1)
                .and_then(|n| n.trim().parse::<i64>().ok())
        })
        .sum()
}

/// Waits until `channel` has `n` subscribers on the master that owns it (Redis is the only
/// one who knows; polled, bounded).
async fn wait_subscribed(redis: &RedisClusterNodes, channel: &str, n: i64) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let on_master = redis.shard_subscribers(channel);
        if on_master == Some(n) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{channel} has {on_master:?} subscribers on its master, not {n}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every server reaches every client, to all and to one room; fetchSockets and
/// serverSideEmit with acknowledgements see every server.
async fn check(nodes: &mut [Node], label: &str) {
    let n = nodes.len();
    for i in 0..n {
        let count = nodes[i].io.server_count().await.expect("server count");
        assert_eq!(count, n, "{label}: server count on {}", nodes[i].name);
        nodes[i].io.emit("all", &i).unwrap();
        nodes[i].io.to("green").emit("room", &i).unwrap();
        // The two travel on channels of different shards: no order between them.
        for node in nodes.iter_mut() {
            let mut got = [
                next_text(&mut node.client).await,
                next_text(&mut node.client).await,
            ];
            got.sort();
            let want = [format!(r#"42["all",{i}]"#), format!(r#"42["room",{i}]"#)];
            assert_eq!(got, want, "{label}: on {}", node.name);
        }
        let sockets = nodes[i].io.fetch_sockets().await.expect("fetchSockets");
        assert_eq!(sockets.len(), n, "{label}: {sockets:?}");
        let answers = nodes[i]
            .io
            .of("/")
            .server_side_emit_with_ack::<String>("ping", (), WAIT)
            .await
            .expect("serverSideEmit")
            .collect_all()
            .await;
        let mut answers: Vec<String> = answers.into_iter().map(|r| r.result.unwrap()).collect();
        answers.sort();
        let mut others: Vec<String> = nodes
            .iter()
            .filter(|o| o.name != nodes[i].name)
            .map(|o| o.name.clone())
            .collect();
        others.sort();
        assert_eq!(answers, others, "{label}");
    }
}

async fn start_cluster() -> RedisClusterNodes {
    tokio::task::spawn_blocking(|| RedisClusterNodes::start(3, 1))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_mode_follows_slot_moves_and_survives_a_master_failover() {
    let t0 = std::time::Instant::now();
    let mut redis = start_cluster().await;
    eprintln!("cluster up after {:?}", t0.elapsed());
    let seeds = redis.seeds();
    let mode = Mode::Sharded(SubscriptionMode::Dynamic);
    let mut nodes = Vec::new();
    for name in ["a", "b", "c"] {
        nodes.push(node(&seeds, mode, name).await);
    }
    assert_ne!(
        redis.master_of(MAIN),
        redis.master_of(ROOM),
        "the test wants the two channels on different masters"
    );
    wait_subscribed(&redis, ROOM, 3).await;
    check(&mut nodes, "at first").await;

    // Resharding: the main channel's slot moves to another master. Redis unsubscribes the
    // servers (a `sunsubscribe` push); they subscribe again, where the slot is now.
    let from = redis.master_of(MAIN);
    let to = *redis.masters().iter().find(|&&m| m != from).unwrap();
    tokio::task::block_in_place(|| redis.move_slot_of(MAIN, to));
    eprintln!("slot moved after {:?}", t0.elapsed());
    wait_subscribed(&redis, MAIN, 3).await;
    eprintln!("resubscribed after {:?}", t0.elapsed());
    for node in &nodes {
        node.cluster.ready(WAIT).await.expect("resubscribed");
        assert_eq!(
            node.cluster.stats().reconnects,
            0,
            "a slot move is no outage"
        );
    }
    check(&mut nodes, "after the slot moved").await;

    // A graceful failover: the replica of the master owning the main channel takes over;
    // the old master, now a replica, unsubscribes the servers.
    let master = redis.master_of(MAIN);
    let promoted = tokio::task::block_in_place(|| redis.failover_to_replica(master));
    assert_eq!(redis.master_of(MAIN), promoted);
    eprintln!("graceful failover after {:?}", t0.elapsed());
    wait_subscribed(&redis, MAIN, 3).await;
    for node in &nodes {
        node.cluster.ready(WAIT).await.expect("resubscribed");
    }
    check(&mut nodes, "after a graceful failover").await;

    // Failover: the master owning the main channel is killed; its replica takes over.
    let master = redis.master_of(MAIN);
    let before: Vec<u64> = nodes.iter().map(|n| n.cluster.stats().reconnects).collect();
    redis.kill(master);
    tokio::task::block_in_place(|| redis.wait_failover(master));
    eprintln!("failover done after {:?}", t0.elapsed());
    assert_ne!(redis.master_of(MAIN), master);
    for (node, before) in nodes.iter().zip(&before) {
        let cluster = node.cluster.clone();
        wait_until(&format!("{} reconnects", node.name), move || {
            cluster.stats().reconnects > *before
        })
        .await;
        node.cluster.ready(WAIT).await.expect("back on the cluster");
    }
    eprintln!("servers back after {:?}", t0.elapsed());
    wait_subscribed(&redis, MAIN, 3).await;
    wait_subscribed(&redis, ROOM, 3).await;
    check(&mut nodes, "after the failover").await;
    eprintln!("checked after {:?}", t0.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classic_mode_on_a_cluster() {
    let redis = start_cluster().await;
    let seeds = redis.seeds();
    let mut nodes = Vec::new();
    for name in ["a", "b"] {
        nodes.push(node(&seeds, Mode::Classic, name).await);
    }
    // PUBLISH reaches the subscribers of every node of the cluster.
    assert_eq!(subscribers(&redis, "socket.io-request#/#", false), 2);
    check(&mut nodes, "classic").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_mode_is_refused_on_a_cluster() {
    let err = RedisCluster::connect(
        "redis://127.0.0.1:1",
        RedisAdapterConfig {
            cluster: true,
            ..RedisAdapterConfig::streams()
        },
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("not supported"), "{err}");
}
