//! What the cluster recovery tests share: a redis-server, conformance-server processes
//! and a Node cluster node on free ports, a TCP proxy whose target can be switched, a raw
//! Socket.IO client, and a look at the session snapshots in Redis.

#![allow(dead_code)]

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as Ws;
use volley_test_support::{RedisServer, free_port};

/// A bound on a hang, never reached unless something is broken.
pub(crate) const WAIT: Duration = Duration::from_secs(60);

/// A child process killed on drop.
pub(crate) struct Proc(pub(crate) Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// How many free ports a server is tried on: a port found free can be taken (by any
/// process's outgoing connection) before the server binds it.
const ATTEMPTS: usize = 5;

/// Starts `command(port)` on a free port until it prints a line containing `ready` (on
/// stderr with `stderr`, else stdout); a server that exits first (its port was taken) is
/// started again on another port.
fn start_on_free_port(
    what: &str,
    command: impl Fn(u16) -> Command,
    ready: &'static str,
    stderr: bool,
) -> (Proc, u16) {
    for _ in 0..ATTEMPTS {
        let port = free_port();
        let mut cmd = command(port);
        if stderr {
            cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        } else {
            cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        let out: Box<dyn Read + Send> = match (child.stderr.take(), child.stdout.take()) {
            (Some(e), _) => Box::new(e),
            (None, Some(o)) => Box::new(o),
            (None, None) => unreachable!("piped"),
        };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if line.contains(ready) {
                    let _ = tx.send(());
                }
            }
        });
        match rx.recv_timeout(WAIT) {
            Ok(()) => return (Proc(child), port),
            // Its output ended: it exited.
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                let _ = child.wait();
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                panic!("{what} did not start within {WAIT:?}");
            }
        }
    }
    panic!("{what} did not start on {ATTEMPTS} free ports");
}

/// A conformance-server in the cluster, once it says it joined it.
pub(crate) fn server(redis: &str, name: &str) -> (Proc, u16) {
    let command = |port: u16| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_conformance-server"));
        c.env("PORT", port.to_string())
            .env("REDIS_URL", redis)
            .env("REDIS_ADAPTER", "streams")
            .env("RECOVERY", "1")
            .env("SERVER_NAME", name);
        c
    };
    start_on_free_port(name, command, "redis adapter on", true)
}

/// A redis-server and two conformance-servers in it, "volley-a" and "volley-b"
/// (`REDIS_ADAPTER=streams RECOVERY=1`); all killed on drop.
pub(crate) struct Cluster {
    pub(crate) a: Proc,
    pub(crate) a_port: u16,
    pub(crate) b: Proc,
    pub(crate) b_port: u16,
    pub(crate) url: String,
    pub(crate) redis_port: u16,
    _redis: RedisServer,
}

pub(crate) fn cluster() -> Cluster {
    let redis = RedisServer::start();
    let (url, redis_port) = (redis.url(), redis.port());
    let (a, a_port) = server(&url, "volley-a");
    let (b, b_port) = server(&url, "volley-b");
    Cluster {
        a,
        a_port,
        b,
        b_port,
        url,
        redis_port,
        _redis: redis,
    }
}

/// A raw Socket.IO client (WebSocket) on "/": a task answers the server's pings (every
/// 300 ms) and hands over every other text.
pub(crate) struct Client {
    rx: mpsc::UnboundedReceiver<String>,
    tx: mpsc::UnboundedSender<String>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Client {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Client {
    /// Connects and sends `connect`; the CONNECT reply and what came before it.
    pub(crate) async fn open(port: u16, connect: &str) -> (Self, Value, Vec<String>) {
        let url = format!("ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket");
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let (mut sink, mut stream) = ws.split();
        let (in_tx, rx) = mpsc::unbounded_channel();
        let (tx, mut out_rx) = mpsc::unbounded_channel::<String>();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    m = stream.next() => match m {
                        Some(Ok(Ws::Text(t))) if t.as_str() == "2" => {
                            if sink.send(Ws::text("3")).await.is_err() { return; }
                        }
                        Some(Ok(Ws::Text(t))) => { let _ = in_tx.send(t.to_string()); }
                        Some(Ok(_)) => {}
                        _ => return,
                    },
                    o = out_rx.recv() => match o {
                        Some(t) => if sink.send(Ws::text(t)).await.is_err() { return; },
                        None => return,
                    },
                }
            }
        });
        let mut c = Self { rx, tx, task };
        assert!(c.next().await.starts_with("0{"));
        c.send(connect);
        let mut before = Vec::new();
        loop {
            let t = c.next().await;
            if let Some(reply) = t.strip_prefix("40") {
                return (c, serde_json::from_str(reply).unwrap(), before);
            }
            before.push(t);
        }
    }

    pub(crate) fn send(&self, text: &str) {
        self.tx.send(text.to_owned()).unwrap();
    }

    pub(crate) async fn next(&mut self) -> String {
        tokio::time::timeout(WAIT, self.rx.recv())
            .await
            .expect("a message within WAIT")
            .expect("connected")
    }

    /// The next event: its arguments (the offset last).
    pub(crate) async fn event(&mut self) -> Vec<Value> {
        let t = self.next().await;
        let v: Value = serde_json::from_str(t.strip_prefix("42").expect(&t)).unwrap();
        v.as_array().unwrap().clone()
    }

    /// Sends event `args` with ack id `id`; the acknowledgement's arguments.
    pub(crate) async fn ask(&mut self, id: u32, args: Value) -> Value {
        self.send(&format!("42{id}{args}"));
        let prefix = format!("43{id}");
        let t = self.next().await;
        serde_json::from_str(t.strip_prefix(&prefix).expect(&t)).unwrap()
    }
}

pub(crate) fn offset(args: &[Value]) -> String {
    let o = args.last().and_then(Value::as_str).expect("an offset");
    assert!(o.contains('-'), "a stream entry id: {o}");
    o.to_owned()
}

/// A command to the redis-server at `port`.
pub(crate) fn redis_query<T: redis::FromRedisValue>(port: u16, cmd: &redis::Cmd) -> T {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
    let mut con = client.get_connection().expect("redis answers");
    cmd.query(&mut con).expect("a reply")
}

/// The session Redis keeps for `pid` (Node's key and encoding), if any.
pub(crate) fn snapshot(port: u16, pid: &str) -> Option<volley::adapter::Session> {
    let raw: Option<Vec<u8>> =
        redis_query(port, redis::cmd("GET").arg(format!("sio:session:{pid}")));
    Some(volley_redis::message::decode_session(&raw?).expect("a session Node can read"))
}

/// The pids of the sessions Redis keeps for socket `sid`.
pub(crate) fn pids_of(port: u16, sid: &str) -> Vec<String> {
    let keys: Vec<String> = redis_query(port, redis::cmd("KEYS").arg("sio:session:*"));
    keys.iter()
        .filter_map(|k| k.strip_prefix("sio:session:"))
        .filter(|pid| snapshot(port, pid).is_some_and(|s| s.id.as_str() == sid))
        .map(str::to_owned)
        .collect()
}

/// Waits (bounded) until the session kept for `pid` satisfies `ok` (`None`: there is none).
pub(crate) async fn wait_snapshot(
    port: u16,
    pid: &str,
    ok: impl Fn(Option<&volley::adapter::Session>) -> bool,
) {
    let deadline = Instant::now() + WAIT;
    let pid = pid.to_owned();
    loop {
        let p = pid.clone();
        let s = tokio::task::spawn_blocking(move || snapshot(port, &p))
            .await
            .unwrap();
        if ok(s.as_ref()) {
            return;
        }
        assert!(Instant::now() < deadline, "the session snapshot: {s:?}");
        // Redis has no notification for this one key; poll it.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether a session holds room `room`.
pub(crate) fn has_room(s: Option<&volley::adapter::Session>, room: &str) -> bool {
    s.is_some_and(|s| s.rooms.iter().any(|r| &**r == room))
}

/// Kills a process with SIGKILL and reaps it.
pub(crate) fn sigkill(p: &mut Proc) {
    p.0.kill().expect("SIGKILL");
    p.0.wait().expect("reaped");
}

/// A Node cluster node (`e2e/interop/scripts/cluster-node.mjs`: socket.io 4.8 with
/// `@socket.io/redis-streams-adapter` 0.3.1, recovery on), once it listens.
pub(crate) fn node_server(redis: &str, name: &str) -> (Proc, u16) {
    let dir = volley_test_support::ensure_node_modules();
    let command = |port: u16| {
        let mut c = Command::new("node");
        c.arg(dir.join("scripts/cluster-node.mjs"))
            .current_dir(&dir)
            .env("PORT", port.to_string())
            .env("REDIS_URL", redis)
            .env("REDIS_ADAPTER", "streams")
            .env("SERVER_NAME", name)
            .env("RECOVERY", "1");
        c
    };
    start_on_free_port(name, command, "\"listening\"", false)
}

/// A script of `e2e/interop/scripts` running, read one JSON line at a time.
pub(crate) struct Script {
    child: tokio::process::Child,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    /// Every line so far, for failure messages.
    pub(crate) seen: Vec<String>,
}

impl Script {
    pub(crate) fn start(script: &str, args: &[&str]) -> Self {
        use tokio::io::AsyncBufReadExt;
        let dir = volley_test_support::ensure_node_modules();
        let mut child = tokio::process::Command::new("node")
            .arg(dir.join("scripts").join(script))
            .args(args)
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start node: {e}"));
        let lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The next line whose "event" is `event`; fails on an "error" line or the end.
    pub(crate) async fn wait(&mut self, event: &str) -> Value {
        loop {
            let line = tokio::time::timeout(WAIT, self.lines.next_line())
                .await
                .unwrap_or_else(|_| panic!("no {event:?} within {WAIT:?}: {:?}", self.seen))
                .unwrap();
            let Some(line) = line else {
                panic!("the script ended before {event:?}: {:?}", self.seen);
            };
            self.seen.push(line.clone());
            let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
            assert_ne!(v["event"], "error", "{:?}", self.seen);
            if v["event"] == event {
                return v;
            }
        }
    }

    /// Closes the script's stdin and waits for it to exit with status 0.
    pub(crate) async fn finish(mut self) {
        drop(self.child.stdin.take());
        let status = tokio::time::timeout(WAIT, self.child.wait())
            .await
            .expect("the script exits")
            .unwrap();
        assert!(status.success(), "{status}: {:?}", self.seen);
    }
}
