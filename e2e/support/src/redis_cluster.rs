//! A real Redis Cluster on loopback ports, started by a test or a bench: `redis-server
//! --cluster-enabled yes` per node, joined with `redis-cli --cluster create`, ready once every
//! node reports `cluster_state:ok` and the same masters for all 16384 slots.
//!
//! ```no_run
//! use volley_test_support::redis_cluster::RedisClusterNodes;
//!
//! let mut cluster = RedisClusterNodes::start(3, 1); // 3 masters, 1 replica each
//! let seeds = cluster.seeds(); // "redis://127.0.0.1:P1,redis://127.0.0.1:P2,..."
//! let master = cluster.master_of("socket.io#/#");
//! cluster.kill(master); // SIGKILL
//! cluster.wait_failover(master); // a replica took over its slots
//! # let _ = seeds;
//! ```
//!
//! Every wait polls `CLUSTER INFO` / `CLUSTER SLOTS` (Redis has no other readiness signal)
//! with a bound ([`CLUSTER_WAIT`]) that is only reached when something is broken. The nodes
//! are killed and their files removed on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

/// The bound of every wait: never reached unless the cluster is broken.
pub const CLUSTER_WAIT: Duration = Duration::from_secs(60);

/// The cluster's node timeout (ms): how long a silent master takes to be declared failed.
const NODE_TIMEOUT_MS: u32 = 1000;

/// One node of the cluster.
#[derive(Debug)]
struct Node {
    port: u16,
    child: Option<Child>,
}

/// A Redis Cluster of local `redis-server` processes, killed on drop.
#[derive(Debug)]
pub struct RedisClusterNodes {
    nodes: Vec<Node>,
    dir: PathBuf,
}

/// Runs `redis-cli -p port args...` and returns its output (raw, one item per line).
///
/// # Panics
///
/// When `redis-cli` cannot be started.
pub fn redis_cli(port: u16, args: &[&str]) -> Result<String, String> {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run redis-cli: {e} (scripts/install-deps.sh)"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() && !text.starts_with("ERR") && !text.contains("Could not connect") {
        Ok(text)
    } else {
        Err(format!(
            "{text}{}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Polls `f` until it holds, panicking with `what` and `state()` after [`CLUSTER_WAIT`].
fn wait_or(what: &str, mut f: impl FnMut() -> bool, state: impl Fn() -> String) {
    let deadline = Instant::now() + CLUSTER_WAIT;
    while !f() {
        assert!(
            Instant::now() < deadline,
            "{what}: not within {CLUSTER_WAIT:?}\n{}",
            state()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl RedisClusterNodes {
    /// Starts `masters` masters with `replicas` replicas each, and waits until the cluster
    /// is formed and every node agrees on it.
    ///
    /// # Panics
    ///
    /// When `redis-server` or `redis-cli` cannot be started or the cluster does not form.
    pub fn start(masters: usize, replicas: usize) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "volley-redis-cluster-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let mut cluster = Self {
            nodes: Vec::new(),
            dir,
        };
        for _ in 0..masters * (1 + replicas) {
            let node = cluster.spawn_node();
            cluster.nodes.push(node);
        }
        let addrs: Vec<String> = cluster
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run redis-cli: {e}"));
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        cluster.wait_stable();
        cluster
    }

    /// Starts one empty cluster-enabled node and waits until it answers. A free port can be
    /// taken by someone else between our probe and redis-server's bind (then redis-server
    /// exits at once): that is retried with other ports.
    fn spawn_node(&self) -> Node {
        for _ in 0..20 {
            let port = free_port();
            let bus = free_port();
            let taken = |p: u16| p == 0 || self.nodes.iter().any(|n| n.port == p);
            if port == bus || taken(port) || taken(bus) {
                continue;
            }
            let mut child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args([
                    "--cluster-enabled",
                    "yes",
                    "--cluster-port",
                    &bus.to_string(),
                ])
                .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
                .args(["--cluster-node-timeout", &NODE_TIMEOUT_MS.to_string()])
                // A replica may always take over, however long it was away.
                .args(["--cluster-replica-validity-factor", "0"])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(&self.dir)
                .stdout(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("cannot start redis-server: {e} (scripts/install-deps.sh)")
                });
            let deadline = Instant::now() + CLUSTER_WAIT;
            loop {
                if redis_cli(port, &["PING"]).is_ok_and(|r| r.trim() == "PONG") {
                    return Node {
                        port,
                        child: Some(child),
                    };
                }
                if child.try_wait().ok().flatten().is_some() {
                    break; // a port was taken: try others
                }
                assert!(
                    Instant::now() < deadline,
                    "redis-server on {port} does not answer"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("redis-server does not start (20 attempts)");
    }

    /// The ports of the nodes still running.
    pub fn live_ports(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|n| n.child.is_some())
            .map(|n| n.port)
            .collect()
    }

    /// Every node's url, comma-separated (the seed list of `RedisAdapterConfig::cluster`).
    pub fn seeds(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("redis://127.0.0.1:{}", n.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The seed urls, one per node (node-redis's `rootNodes`).
    pub fn seed_list(&self) -> Vec<String> {
        self.seeds().split(',').map(str::to_owned).collect()
    }

    /// The port of the master that owns `key`'s slot now (a channel name for pub/sub).
    pub fn master_of(&self, key: &str) -> u16 {
        let port = self.live_ports()[0];
        let slot: u16 = redis_cli(port, &["CLUSTER", "KEYSLOT", key])
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .expect("CLUSTER KEYSLOT answers");
        self.slot_masters(port)
            .expect("CLUSTER SLOTS answers")
            .into_iter()
            .find(|(from, to, _)| (*from..=*to).contains(&slot))
            .map(|(_, _, master)| master)
            .expect("every slot has a master")
    }

    /// How many subscribers shard channel `channel` has on the master that owns its slot
    /// now (where Node's adapter, and Volley's, count servers); `None` if it does not answer.
    pub fn shard_subscribers(&self, channel: &str) -> Option<i64> {
        redis_cli(self.master_of(channel), &["PUBSUB", "SHARDNUMSUB", channel])
            .ok()?
            .lines()
            .nth(1)?
            .trim()
            .parse()
            .ok()
    }

    /// The slot map as seen by node `port`: `(first slot, last slot, master port)`.
    fn slot_masters(&self, port: u16) -> Option<Vec<(u16, u16, u16)>> {
        // From CLUSTER NODES: redis-cli prints CLUSTER SLOTS flat, losing its nesting.
        let nodes = redis_cli(port, &["CLUSTER", "NODES"]).ok()?;
        let mut out = Vec::new();
        for line in nodes.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 8 || !fields[2].contains("master") || fields[2].contains("fail") {
                continue;
            }
            let master: u16 = fields[1]
                .split('@')
                .next()?
                .rsplit(':')
                .next()?
                .parse()
                .ok()?;
            for range in &fields[8..] {
                if range.starts_with('[') {
                    continue; // a slot being migrated
                }
                let (from, to) = match range.split_once('-') {
                    Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
                    None => {
                        let s = range.parse().ok()?;
                        (s, s)
                    }
                };
                out.push((from, to, master));
            }
        }
        Some(out)
    }

    /// Whether every live node reports `cluster_state:ok` and the same live masters for
    /// all 16384 slots.
    fn stable(&self) -> bool {
        let live = self.live_ports();
        let mut views = Vec::new();
        for &port in &live {
            let ok = redis_cli(port, &["CLUSTER", "INFO"])
                .is_ok_and(|i| i.lines().any(|l| l.trim() == "cluster_state:ok"));
            let Some(mut slots) = self.slot_masters(port).filter(|_| ok) else {
                return false;
            };
            slots.sort_unstable();
            let covered: u32 = slots
                .iter()
                .map(|(a, b, _)| u32::from(*b) - u32::from(*a) + 1)
                .sum();
            if covered != 16384 || slots.iter().any(|(_, _, m)| !live.contains(m)) {
                return false;
            }
            views.push(slots);
        }
        views.windows(2).all(|w| w[0] == w[1])
    }

    /// Waits until every live node reports `cluster_state:ok` and they all agree on the
    /// masters of every slot.
    pub fn wait_stable(&self) {
        self.wait("the redis cluster is stable", || self.stable());
    }

    /// Polls `f` until it holds; past [`CLUSTER_WAIT`], panics with every node's view.
    fn wait(&self, what: &str, f: impl FnMut() -> bool) {
        wait_or(what, f, || self.views());
    }

    /// What every live node says of the cluster (for a failure's message).
    fn views(&self) -> String {
        self.live_ports()
            .into_iter()
            .map(|p| {
                let state = redis_cli(p, &["CLUSTER", "INFO"]).map(|i| {
                    i.lines()
                        .find(|l| l.starts_with("cluster_state"))
                        .unwrap_or_default()
                        .to_owned()
                });
                let nodes = redis_cli(p, &["CLUSTER", "NODES"]);
                format!("node {p}: {state:?}\n{}\n", nodes.unwrap_or_else(|e| e))
            })
            .collect()
    }

    /// Kills node `port` (SIGKILL, no goodbye: a crash).
    pub fn kill(&mut self, port: u16) {
        let node = self
            .nodes
            .iter_mut()
            .find(|n| n.port == port)
            .expect("a node of this cluster");
        if let Some(mut child) = node.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits until the killed master `port` is replaced: a replica owns its slots and every
    /// live node agrees.
    pub fn wait_failover(&self, port: u16) {
        self.wait(&format!("a replica replaces master {port}"), || {
            self.stable()
        });
    }

    /// A graceful failover: `CLUSTER FAILOVER` on a replica of master `port`, which takes
    /// over its slots (the old master becomes its replica); waits until every node agrees.
    /// Returns the new master's port.
    pub fn failover_to_replica(&self, port: u16) -> u16 {
        let id = redis_cli(port, &["CLUSTER", "MYID"]).expect("CLUSTER MYID");
        let replicas =
            redis_cli(port, &["CLUSTER", "REPLICAS", id.trim()]).expect("CLUSTER REPLICAS");
        let replica: u16 = replicas
            .split_whitespace()
            .nth(1)
            .and_then(|addr| addr.split('@').next()?.rsplit(':').next()?.parse().ok())
            .unwrap_or_else(|| panic!("master {port} has no replica: {replicas:?}"));
        redis_cli(replica, &["CLUSTER", "FAILOVER"]).expect("CLUSTER FAILOVER");
        self.wait(&format!("replica {replica} replaces master {port}"), || {
            self.stable() && self.masters().contains(&replica) && !self.masters().contains(&port)
        });
        replica
    }

    /// Moves the (key-less) slot of `key` to master `to` with `CLUSTER SETSLOT ... NODE` on
    /// every master, as a resharding does once the keys are moved; waits until all agree.
    pub fn move_slot_of(&self, key: &str, to: u16) {
        let any = self.live_ports()[0];
        let slot = redis_cli(any, &["CLUSTER", "KEYSLOT", key])
            .expect("CLUSTER KEYSLOT")
            .trim()
            .to_owned();
        let from = self.master_of(key);
        let id = |port: u16| {
            redis_cli(port, &["CLUSTER", "MYID"])
                .expect("CLUSTER MYID")
                .trim()
                .to_owned()
        };
        let (from_id, to_id) = (id(from), id(to));
        let set = |port: u16, args: &[&str]| {
            let mut all = vec!["CLUSTER", "SETSLOT", &slot];
            all.extend_from_slice(args);
            redis_cli(port, &all).unwrap_or_else(|e| panic!("SETSLOT on {port}: {e}"));
        };
        set(to, &["IMPORTING", &from_id]);
        set(from, &["MIGRATING", &to_id]);
        set(to, &["NODE", &to_id]);
        set(from, &["NODE", &to_id]);
        self.wait(&format!("slot {slot} is on {to} everywhere"), || {
            self.stable() && self.master_of(key) == to
        });
    }

    /// The ports of the masters now.
    pub fn masters(&self) -> Vec<u16> {
        let mut m: Vec<u16> = self
            .slot_masters(self.live_ports()[0])
            .unwrap_or_default()
            .into_iter()
            .map(|(_, _, p)| p)
            .collect();
        m.sort_unstable();
        m.dedup();
        m
    }
}

impl Drop for RedisClusterNodes {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut child) = n.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
