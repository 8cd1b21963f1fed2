//! What the mixed-cluster tests share: the Node cluster node (`scripts/cluster-node.mjs`),
//! Volley nodes in this process (the conformance server's cluster handlers), and the
//! driver (`scripts/cluster-driver.mjs`) that checks a cluster through official clients.
//! On one Redis server (`cluster_redis.rs`) or on a Redis Cluster
//! (`cluster_redis_cluster.rs`, where `redis` is the comma-separated seed list).
#![allow(dead_code)]

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use volley::SocketIo;
use volley_conformance_server::cluster::{ClusterEnv, install};
use volley_redis::{Mode, RedisAdapterConfig, RedisCluster};
use volley_test_support::{ensure_node_modules, run_node};

/// The longest any expected thing may take (a process starting, Redis counting subscribers, a
/// node noticing Redis is gone): a bound on a hang, never reached unless something is broken,
/// however busy the machine. What no signal reports is polled within it.
pub(crate) const WAIT: Duration = Duration::from_secs(60);

/// The Node cluster node, killed on drop.
pub(crate) struct NodeServer {
    pub(crate) port: u16,
    _child: tokio::process::Child,
}

pub(crate) async fn start_node(
    redis: &str,
    mode: &str,
    subscription: &str,
    name: &str,
) -> NodeServer {
    start_node_with(redis, mode, subscription, name, false).await
}

/// A Node node on the Redis Cluster of `seeds` (node-redis `createCluster`).
pub(crate) async fn start_cluster_node(
    seeds: &str,
    mode: &str,
    subscription: &str,
    name: &str,
) -> NodeServer {
    spawn_node(seeds, true, mode, subscription, name, false).await
}

/// The same, with `RECOVERY=1` when `recovery`.
pub(crate) async fn start_node_with(
    redis: &str,
    mode: &str,
    subscription: &str,
    name: &str,
    recovery: bool,
) -> NodeServer {
    spawn_node(redis, false, mode, subscription, name, recovery).await
}

async fn spawn_node(
    redis: &str,
    cluster: bool,
    mode: &str,
    subscription: &str,
    name: &str,
    recovery: bool,
) -> NodeServer {
    let dir = tokio::task::spawn_blocking(ensure_node_modules)
        .await
        .unwrap();
    let mut child = tokio::process::Command::new("node")
        .arg(dir.join("scripts/cluster-node.mjs"))
        .current_dir(&dir)
        // The system picks the port (a port probed free here could be taken before Node
        // binds it, by the many Redis processes of a cluster test for one).
        .env("PORT", "0")
        .env("REDIS_URL", redis)
        .env("REDIS_CLUSTER", if cluster { "1" } else { "0" })
        .env("REDIS_ADAPTER", mode)
        .env("SUBSCRIPTION_MODE", subscription)
        .env("SERVER_NAME", name)
        .env("RECOVERY", if recovery { "1" } else { "0" })
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start node: {e} (is Node.js installed?)"));
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .unwrap_or_else(|_| panic!("node cluster server {name} did not start within {WAIT:?}"));
    let line = line.unwrap().unwrap_or_default();
    let listening: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
    let port = listening["port"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .filter(|_| listening["event"] == "listening")
        .unwrap_or_else(|| panic!("node cluster server {name} did not start: {line:?}"));
    // Keep draining stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    NodeServer {
        port,
        _child: child,
    }
}

/// A Volley node in this process, stopped on drop.
pub(crate) struct VolleyNode {
    pub(crate) port: u16,
    pub(crate) cluster: RedisCluster,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for VolleyNode {
    fn drop(&mut self) {
        self.task.abort();
        self.cluster.close();
    }
}

pub(crate) async fn start_volley(redis: &str, mode: Mode, name: &str) -> VolleyNode {
    start_volley_with(redis, mode, name, false).await
}

/// A Volley node on the Redis Cluster of `seeds`.
pub(crate) async fn start_cluster_volley(seeds: &str, mode: Mode, name: &str) -> VolleyNode {
    volley_node(seeds, true, mode, name, false).await
}

/// The same, with connection state recovery on (Node's defaults) when `recovery`.
pub(crate) async fn start_volley_with(
    redis: &str,
    mode: Mode,
    name: &str,
    recovery: bool,
) -> VolleyNode {
    volley_node(redis, false, mode, name, recovery).await
}

async fn volley_node(
    redis: &str,
    cluster: bool,
    mode: Mode,
    name: &str,
    recovery: bool,
) -> VolleyNode {
    let env = ClusterEnv {
        url: redis.to_owned(),
        name: name.to_owned(),
        // The link notices a Redis restart by its connections closing: a long command
        // timeout, so that a Redis slowed down by a busy machine is not taken for gone (which
        // would add a reconnection).
        config: RedisAdapterConfig {
            mode,
            cluster,
            command_timeout: WAIT,
            // Cluster requests end as soon as every server answered; below the driver's own
            // 30 s bound on each of its requests, so that a missing answer is reported as such.
            requests_timeout: Duration::from_secs(20),
            ..Default::default()
        },
    };
    let cluster = env.connect().await.expect("volley joins the cluster");
    let mut builder = SocketIo::builder()
        .ping_interval(Duration::from_secs(1))
        .ping_timeout(Duration::from_secs(20))
        .adapter(cluster.factory());
    if recovery {
        builder = builder.connection_state_recovery(volley::ConnectionStateRecovery::default());
    }
    let io = builder.build();
    install(&io.of("/"), name, None);
    install(&io.of("/chat"), name, None);
    cluster.ready(WAIT).await.expect("subscribed");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(volley::serve(listener, io.service()));
    VolleyNode {
        port,
        cluster,
        task,
    }
}

/// Runs the driver against the nodes at `urls` and fails on any failed check.
pub(crate) async fn drive(urls: &[String], mode: &str, redis: &str, label: &str) {
    let cfg = serde_json::json!({
        "nodes": urls.iter().map(|u| serde_json::json!({"url": u})).collect::<Vec<_>>(),
        "mode": mode,
        "redis": redis,
        "label": label,
    })
    .to_string();
    let out = run_node("cluster-driver.mjs", &[&cfg], Duration::from_secs(300)).await;
    let failed: Vec<_> = out
        .events("check")
        .into_iter()
        .filter(|c| c["ok"] != true)
        .collect();
    assert!(
        out.success() && failed.is_empty(),
        "{label}: failed checks {failed:#?}\n{out}"
    );
    let done = out.events("done");
    let passed = done[0]["passed"].as_u64().unwrap();
    assert!(passed >= 40, "{label}: only {passed} checks ran\n{out}");
    eprintln!("{label}: {passed} checks passed");
}
