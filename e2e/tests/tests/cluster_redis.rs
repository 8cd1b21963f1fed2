//! Mixed clusters on a real Redis: one Node server (official socket.io 4.8 with
//! `@socket.io/redis-adapter` 8.3, `scripts/cluster-node.mjs`) and two Volley servers
//! (volley-redis, the cluster handlers of conformance-server), each with official
//! socket.io-client clients (`scripts/cluster-driver.mjs`): broadcasts every way (all, one
//! room, several rooms with except, binary, `/chat`), fetchSockets, serverSideEmit with
//! ack, emitWithAck across the cluster, socketsJoin/Leave, disconnectSockets, allRooms and
//! `@socket.io/redis-emitter` (classic). Then Redis is restarted and everything is checked
//! again. In classic and in sharded mode, and in streams mode (Node's
//! `@socket.io/redis-streams-adapter` 0.3.1 next to Volley's `Mode::Streams`). In streams
//! mode with connection state recovery, a raw client recovers from the Node server on the
//! Volley one and back.
//!
//! The tests start `redis-server` themselves on a free loopback port and fail loudly if it
//! or Node cannot start.

mod cluster_common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::{Duration, Instant};

use cluster_common::{WAIT, drive, start_node, start_node_with, start_volley, start_volley_with};
use tokio_tungstenite::tungstenite::Message;
use volley_redis::{Mode, SubscriptionMode};
use volley_test_support::free_port;

/// One Redis command over a fresh connection; the raw reply.
fn redis_cmd(port: u16, args: &[&str]) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(req.as_bytes())?;
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// A `redis-server` on a loopback port, killed on drop.
struct Redis {
    port: u16,
    child: Option<std::process::Child>,
}

impl Redis {
    fn start(port: u16) -> Self {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start redis-server: {e} (scripts/install-deps.sh installs it)")
            });
        let mut redis = Self {
            port,
            child: Some(child),
        };
        let deadline = Instant::now() + WAIT;
        loop {
            if redis_cmd(port, &["PING"]).is_ok_and(|r| r.starts_with("+PONG")) {
                return redis;
            }
            if let Some(status) = redis
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("redis-server exited at start: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on {port} does not answer PING"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops it the hard way for clients: SHUTDOWN NOSAVE, and waits for the exit.
    fn stop(&mut self) {
        let _ = redis_cmd(self.port, &["SHUTDOWN", "NOSAVE"]);
        if let Some(mut c) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(5);
            while c.try_wait().ok().flatten().is_none() {
                if Instant::now() > deadline {
                    let _ = c.kill();
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    /// Subscribers of `channel` (`shard`: of the shard channel).
    fn numsub(&self, channel: &str, shard: bool) -> Option<i64> {
        let sub = if shard { "SHARDNUMSUB" } else { "NUMSUB" };
        let reply = redis_cmd(self.port, &["PUBSUB", sub, channel]).ok()?;
        reply
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix(':'))
            .and_then(|n| n.trim().parse().ok())
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// How many clients wait in a blocking command: here, in `XREAD` (each streams server has
/// one reader).
fn stream_readers(redis: &Redis) -> usize {
    redis_cmd(redis.port, &["INFO", "clients"])
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("blocked_clients:"))
                .and_then(|n| n.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Waits (bounded) until Redis counts `n` servers on `/` and `/chat` (and, in streams mode,
/// `n` stream readers: Node's reader reads from `$`, so it must be waiting before anything
/// is written).
async fn wait_servers(redis: &Redis, n: i64, mode: &str) {
    let within = WAIT;
    let sharded = mode == "sharded";
    let (a, b) = if mode == "classic" {
        ("socket.io-request#/#", "socket.io-request#/chat#")
    } else {
        ("socket.io#/#", "socket.io#/chat#")
    };
    let deadline = Instant::now() + within;
    loop {
        let counts = (redis.numsub(a, sharded), redis.numsub(b, sharded));
        let readers = mode != "streams" || stream_readers(redis) >= n as usize;
        if counts == (Some(n), Some(n)) && readers {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "Redis counts {counts:?} servers, not {n}, after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Starts Redis, one Node and two Volley nodes in `volley_mode`; checks the cluster, and
/// with `restart`, checks it again after a Redis restart.
async fn mixed_cluster(volley_mode: Mode, restart: bool) {
    let (mode, subscription) = match volley_mode {
        Mode::Classic => ("classic", ""),
        Mode::Sharded(SubscriptionMode::Static) => ("sharded", "static"),
        Mode::Sharded(SubscriptionMode::Dynamic) => ("sharded", "dynamic"),
        Mode::Sharded(SubscriptionMode::DynamicPrivate) => ("sharded", "dynamic-private"),
        Mode::Streams => ("streams", ""),
    };
    let label = format!("{mode} {subscription}").trim_end().to_owned();
    let mut redis = Redis::start(free_port());
    let url = redis.url();
    let node = start_node(&url, mode, subscription, "node-a").await;
    let v1 = start_volley(&url, volley_mode, "volley-b").await;
    let v2 = start_volley(&url, volley_mode, "volley-c").await;
    wait_servers(&redis, 3, mode).await;
    let urls: Vec<String> = [node.port, v1.port, v2.port]
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect();
    drive(&urls, mode, &url, &format!("{label}, before the restart")).await;
    if !restart {
        return;
    }

    // Restart Redis: everybody reconnects and resubscribes by itself.
    let t0 = Instant::now();
    redis.stop();
    let before = v1.cluster.stats().reconnects;
    let deadline = Instant::now() + WAIT;
    while v1.cluster.is_connected() || v2.cluster.is_connected() {
        assert!(
            Instant::now() < deadline,
            "volley did not notice Redis is gone"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let redis = Redis::start(redis.port);
    wait_servers(&redis, 3, mode).await;
    eprintln!(
        "{label}: 3 servers counted again {:?} after the shutdown",
        t0.elapsed()
    );
    // Node's count can be complete before a Volley node has marked its link healthy
    // again: wait for that signal rather than read the flag once.
    v1.cluster
        .ready(WAIT)
        .await
        .expect("volley-b back on Redis");
    v2.cluster
        .ready(WAIT)
        .await
        .expect("volley-c back on Redis");
    assert!(v1.cluster.is_connected() && v2.cluster.is_connected());
    assert_eq!(v1.cluster.stats().reconnects, before + 1);
    drive(&urls, mode, &url, &format!("{label}, after the restart")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classic_mixed_cluster_survives_a_redis_restart() {
    mixed_cluster(Mode::Classic, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_dynamic_mixed_cluster_survives_a_redis_restart() {
    mixed_cluster(Mode::Sharded(SubscriptionMode::Dynamic), true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_static_mixed_cluster() {
    mixed_cluster(Mode::Sharded(SubscriptionMode::Static), false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_dynamic_private_mixed_cluster() {
    mixed_cluster(Mode::Sharded(SubscriptionMode::DynamicPrivate), false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_mixed_cluster_survives_a_redis_restart() {
    mixed_cluster(Mode::Streams, true).await;
}

/// A raw Socket.IO client on "/" (WebSocket; the servers here ping every second and wait 20 s,
/// so answering pings while reading is enough).
struct Raw(
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
);

impl Raw {
    /// Connects to `port` and sends `connect`; the CONNECT reply and what came before it.
    async fn open(port: u16, connect: &str) -> (Self, serde_json::Value, Vec<String>) {
        use futures_util::SinkExt;
        let url = format!("ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket");
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let mut c = Self(ws);
        assert!(c.next().await.starts_with("0{"));
        c.0.send(Message::text(connect.to_owned())).await.unwrap();
        let mut before = Vec::new();
        loop {
            let t = c.next().await;
            if let Some(reply) = t.strip_prefix("40") {
                return (c, serde_json::from_str(reply).unwrap(), before);
            }
            before.push(t);
        }
    }

    async fn send(&mut self, text: &str) {
        use futures_util::SinkExt;
        self.0.send(Message::text(text.to_owned())).await.unwrap();
    }

    async fn next(&mut self) -> String {
        use futures_util::{SinkExt, StreamExt};
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let m = tokio::time::timeout_at(deadline, self.0.next())
                .await
                .expect("a message within WAIT")
                .expect("open")
                .expect("no error");
            if let Message::Text(t) = m {
                if t.as_str() == "2" {
                    self.0.send(Message::text("3")).await.unwrap();
                    continue;
                }
                return t.to_string();
            }
        }
    }

    /// The next event's arguments.
    async fn event(&mut self) -> Vec<serde_json::Value> {
        let t = self.next().await;
        let v: serde_json::Value = serde_json::from_str(t.strip_prefix("42").expect(&t)).unwrap();
        v.as_array().unwrap().clone()
    }

    /// Sends event `args` asking for ack `id`; the ack's arguments.
    async fn ask(&mut self, id: u32, args: serde_json::Value) -> serde_json::Value {
        self.send(&format!("42{id}{args}")).await;
        let t = self.next().await;
        let prefix = format!("43{id}");
        serde_json::from_str(t.strip_prefix(&prefix).expect(&t)).unwrap()
    }

    /// Waits (bounded) until no server lists socket `sid` (its server kept its session).
    async fn wait_gone(&mut self, sid: &serde_json::Value) {
        let deadline = Instant::now() + WAIT;
        loop {
            let list = self
                .ask(9, serde_json::json!(["cluster:fetch", null]))
                .await;
            if list[0]
                .as_array()
                .is_some_and(|l| l.iter().all(|s| s["id"] != *sid))
            {
                return;
            }
            assert!(Instant::now() < deadline, "{sid} is still connected");
        }
    }
}

/// The offset (last argument) of an event, a stream entry id.
fn offset_of(args: &[serde_json::Value]) -> String {
    let o = args.last().and_then(|v| v.as_str()).expect("an offset");
    assert!(volley_redis::message::parse_entry_id(o).is_some(), "{o}");
    o.to_owned()
}

/// Each missed packet's arguments without its offset.
fn without_offsets(before: &[String]) -> Vec<serde_json::Value> {
    before
        .iter()
        .map(|t| {
            let v: serde_json::Value =
                serde_json::from_str(t.strip_prefix("42").expect(t)).unwrap();
            let a = v.as_array().unwrap();
            offset_of(a);
            serde_json::Value::from(a[..a.len() - 1].to_vec())
        })
        .collect()
}

/// Streams mode with recovery on a Node server and a Volley server: a client cut from the
/// Node server recovers on the Volley one, then cut from the Volley one, recovers on the Node
/// one; each time with its id, its room and every packet it missed (from both), in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_recovery_node_to_volley_and_back() {
    use serde_json::json;
    let redis = Redis::start(free_port());
    let url = redis.url();
    let node = start_node_with(&url, "streams", "", "node-a", true).await;
    let volley = start_volley_with(&url, Mode::Streams, "volley-b", true).await;
    wait_servers(&redis, 2, "streams").await;
    let (n, v) = (node.port, volley.port);

    let (mut c, reply, _) = Raw::open(n, "40").await;
    let (sid, pid) = (reply["sid"].clone(), reply["pid"].clone());
    assert!(pid.is_string(), "{reply}");
    assert_eq!(
        c.ask(0, json!(["cluster:join", "r"])).await,
        json!(["node-a"])
    );
    let (mut wn, _, _) = Raw::open(n, "40").await;
    let (mut wv, _, _) = Raw::open(v, "40").await;
    wv.send(r#"42["cluster:emit-all","m0"]"#).await;
    let mut off = offset_of(&c.event().await);
    wv.event().await;
    wn.event().await;

    // Node → Volley, then Volley → Node.
    for (from, to, from_name, to_name) in
        [(n, v, "node-a", "volley-b"), (v, n, "volley-b", "node-a")]
    {
        drop(c);
        wv.wait_gone(&sid).await;
        let (w_from, w_to) = if from == n {
            (&mut wn, &mut wv)
        } else {
            (&mut wv, &mut wn)
        };
        // From the server it left (after it kept the session), then from the other one.
        w_from.send(r#"42["cluster:emit-room","r","m1"]"#).await;
        w_from.send(r#"42["cluster:emit-all","m2"]"#).await;
        assert_eq!(w_from.event().await[1], "m2");
        assert_eq!(w_to.event().await[1], "m2");
        w_to.send(r#"42["cluster:emit-except","r","no"]"#).await;
        w_to.send(r#"42["cluster:emit-room","r","m3"]"#).await;
        w_to.send(r#"42["cluster:emit-all","m4"]"#).await;
        for w in [&mut *w_from, &mut *w_to] {
            assert_eq!(w.event().await[0], "cluster:except");
            assert_eq!(w.event().await[1], "m4");
        }
        let connect = format!(r#"40{{"pid":{pid},"offset":"{off}"}}"#);
        let (c2, reply, before) = Raw::open(to, &connect).await;
        c = c2;
        assert_eq!(
            reply["sid"], sid,
            "{from_name} → {to_name}: recovered: {reply}"
        );
        assert_eq!(
            without_offsets(&before),
            [
                json!(["cluster:room", "r", "m1"]),
                json!(["cluster:all", "m2", from_name]),
                json!(["cluster:room", "r", "m3"]),
                json!(["cluster:all", "m4", to_name]),
            ],
            "{from_name} → {to_name}"
        );
        // In room "r" again, wherever the broadcast comes from.
        w_from.send(r#"42["cluster:emit-room","r","m5"]"#).await;
        let e = c.event().await;
        assert_eq!(e[..3], [json!("cluster:room"), json!("r"), json!("m5")]);
        off = offset_of(&e);
    }
}
