//! Test servers for volley-client: the official Node server (socket.io 4.8, as a child
//! process running `e2e/interop/scripts/client-server.mjs`) and the Volley server (in-process,
//! on a runtime of its own so that a "restart" really drops every connection), both with the
//! same behaviour; and a TCP proxy that can freeze, to cut the network without closing it.
//!
//! Every wait is bounded.

#![allow(dead_code, unreachable_pub, missing_docs)]

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, watch};
use volley::{AckSender, ConnectError, RawArgs, Socket, SocketIo};

/// The longest any single expected thing may take: a bound on a hang, never reached unless
/// something is broken (however busy the machine).
pub const WAIT: Duration = Duration::from_secs(30);

/// Which server implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Node,
    Volley,
    /// python-socketio 5.x on aiohttp (`tests/python/client_server.py`).
    Python,
}

/// Heartbeat settings of a test server.
#[derive(Debug, Clone, Copy)]
pub struct Ping {
    pub interval: u64,
    pub timeout: u64,
}

impl Default for Ping {
    fn default() -> Self {
        Self {
            interval: 25_000,
            timeout: 20_000,
        }
    }
}

enum Running {
    /// A child process: the Node or the Python server.
    Node(tokio::process::Child),
    Volley(tokio::runtime::Runtime),
    Stopped,
}

/// A running test server on 127.0.0.1.
pub struct Server {
    pub kind: Kind,
    pub port: u16,
    ping: Ping,
    /// Connection state recovery on (Node and Volley only).
    recovery: bool,
    running: Running,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.halt();
    }
}

impl Server {
    /// Starts a server of `kind` on a free port.
    pub async fn start(kind: Kind, ping: Ping) -> Server {
        Self::start_on(kind, ping, 0).await
    }

    /// Starts a server of `kind` on `port` (0: a free one).
    pub async fn start_on(kind: Kind, ping: Ping, port: u16) -> Server {
        Self::start_with(kind, ping, port, false).await
    }

    /// Starts a server of `kind` (Node or Volley) with connection state recovery on.
    pub async fn start_recovery(kind: Kind) -> Server {
        assert_ne!(
            kind,
            Kind::Python,
            "python-socketio has no connection state recovery"
        );
        Self::start_with(kind, Ping::default(), 0, true).await
    }

    async fn start_with(kind: Kind, ping: Ping, port: u16, recovery: bool) -> Server {
        let mut s = Server {
            kind,
            port,
            ping,
            recovery,
            running: Running::Stopped,
        };
        s.launch().await;
        s
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn launch(&mut self) {
        self.running = match self.kind {
            Kind::Node => {
                let (child, port) = start_node(self.port, self.ping, self.recovery).await;
                self.port = port;
                Running::Node(child)
            }
            Kind::Python => {
                let (child, port) = start_python(self.port, self.ping).await;
                self.port = port;
                Running::Node(child)
            }
            Kind::Volley => {
                let (rt, port) = start_volley(self.port, self.ping, self.recovery).await;
                self.port = port;
                Running::Volley(rt)
            }
        };
    }

    fn halt(&mut self) {
        match std::mem::replace(&mut self.running, Running::Stopped) {
            Running::Node(mut child) => {
                let _ = child.start_kill();
            }
            Running::Volley(rt) => rt.shutdown_background(),
            Running::Stopped => {}
        }
    }

    /// Stops the server: every connection is dropped, the port stops listening. Returns once
    /// the Node process has exited, or the Volley runtime has dropped every task (its listener
    /// included), so that the port is free again.
    pub async fn stop(&mut self) {
        match std::mem::replace(&mut self.running, Running::Stopped) {
            Running::Node(mut child) => {
                let _ = child.kill().await;
            }
            Running::Volley(rt) => {
                tokio::task::spawn_blocking(move || rt.shutdown_timeout(WAIT))
                    .await
                    .expect("server runtime shutdown");
            }
            Running::Stopped => {}
        }
    }

    /// Starts it again on the same port, with a fresh state.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.launch().await;
    }
}

async fn start_node(port: u16, ping: Ping, recovery: bool) -> (tokio::process::Child, u16) {
    let dir = tokio::task::spawn_blocking(volley_test_support::ensure_node_modules)
        .await
        .expect("npm install");
    let mut child = tokio::process::Command::new("node")
        .arg(dir.join("scripts").join("client-server.mjs"))
        .arg(port.to_string())
        .arg(ping.interval.to_string())
        .arg(ping.timeout.to_string())
        .current_dir(&dir)
        .env("RECOVERY", if recovery { "1" } else { "0" })
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start node (is Node.js installed?)");
    let stdout = child.stdout.take().expect("piped");
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .expect("node server did not start in time")
        .expect("read node stdout")
        .expect("node server exited before listening");
    let v: Value = serde_json::from_str(&line).expect("JSON line");
    assert_eq!(v["event"], "listening", "{line}");
    let port = v["port"].as_u64().expect("port") as u16;
    // Keep draining stdout so that the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, port)
}

/// Starts `tests/python/client_server.py` (python-socketio on aiohttp). Fails loudly when
/// `python3` or the Python packages are missing: `scripts/install-deps.sh` installs them.
async fn start_python(port: u16, ping: Ping) -> (tokio::process::Child, u16) {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("python")
        .join("client_server.py");
    let mut child = tokio::process::Command::new("python3")
        .arg(&script)
        .arg(port.to_string())
        .arg(ping.interval.to_string())
        .arg(ping.timeout.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start python3 (is Python 3 installed? see scripts/install-deps.sh)");
    let stdout = child.stdout.take().expect("piped");
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .expect("python server did not start in time")
        .expect("read python stdout");
    let Some(line) = line else {
        let status = child.wait().await;
        panic!(
            "the python server exited before listening ({status:?}): are python-socketio and \
             aiohttp installed? run scripts/install-deps.sh"
        );
    };
    let v: Value = serde_json::from_str(&line).expect("JSON line");
    assert_eq!(v["event"], "listening", "{line}");
    let port = v["port"].as_u64().expect("port") as u16;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, port)
}

/// Server-wide state of the Volley test server (what the Node script keeps in globals).
#[derive(Default)]
struct State {
    collected: Mutex<Vec<Value>>,
    seen: Mutex<std::collections::HashMap<String, u32>>,
    auths: Mutex<Vec<Value>>,
}

fn behave(s: Socket, state: Arc<State>) {
    s.on(
        "broadcast",
        |s: Socket, args: RawArgs, ack: AckSender| async move {
            let _ = s.nsp().emit_args("tick", args);
            let _ = ack.send(&true);
        },
    );
    s.on(
        "poke",
        |s: Socket, args: RawArgs, ack: AckSender| async move {
            let reply = s
                .timeout(WAIT)
                .emit_args_with_ack::<RawArgs>("question", args);
            let _ = ack.send(&true);
            let _ = reply.await;
        },
    );
    s.on("state", |s: Socket, ack: AckSender| async move {
        let count = s.nsp().sockets().len();
        let _ =
            ack.send(&json!({ "id": s.id().as_str(), "recovered": s.recovered(), "count": count }));
    });
    s.on("echo", |s: Socket, args: RawArgs| async move {
        let _ = s.emit_args("echo", args);
    });
    s.on(
        "ack",
        |_: Socket, args: RawArgs, ack: AckSender| async move {
            let _ = ack.send_args(args);
        },
    );
    s.on("ask", |s: Socket, args: RawArgs| async move {
        let reply: Result<RawArgs, _> = s.timeout(WAIT).emit_args_with_ack("question", args).await;
        let _ = match reply {
            Ok(r) => {
                let first = RawArgs::new(
                    r.args().iter().take(1).cloned().collect(),
                    r.attachments().to_vec(),
                );
                s.emit_args("answer", first)
            }
            Err(e) => s.emit("answer", &json!({ "error": e.to_string() })),
        };
    });
    let st = state.clone();
    s.on(
        "collect",
        move |_: Socket, args: RawArgs, ack: AckSender| {
            let st = st.clone();
            async move {
                let v = args
                    .get::<Value>(0)
                    .and_then(Result::ok)
                    .unwrap_or(Value::Null);
                st.collected.lock().unwrap().push(v);
                let _ = ack.send(&true);
            }
        },
    );
    let st = state.clone();
    s.on("collected", move |_: Socket, _: RawArgs, ack: AckSender| {
        let list = st.collected.lock().unwrap().clone();
        async move {
            let _ = ack.send(&list);
        }
    });
    let st = state.clone();
    s.on("flaky", move |_: Socket, args: RawArgs, ack: AckSender| {
        let key = args
            .get::<String>(0)
            .and_then(Result::ok)
            .unwrap_or_default();
        let n = {
            let mut seen = st.seen.lock().unwrap();
            let n = seen.entry(key.clone()).or_insert(0);
            *n += 1;
            *n
        };
        st.collected.lock().unwrap().push(Value::String(key));
        async move {
            if n >= 2 {
                let _ = ack.send(&n);
            }
        }
    });
    let st = state;
    s.on("auths", move |_: Socket, _: RawArgs, ack: AckSender| {
        let list = st.auths.lock().unwrap().clone();
        async move {
            let _ = ack.send(&list);
        }
    });
    s.on("kick", |s: Socket| async move { s.disconnect() });
    s.on(
        "handshake",
        |s: Socket, _: RawArgs, ack: AckSender| async move {
            let h = s.handshake();
            let header = h
                .headers()
                .get("x-volley-test")
                .and_then(|v| v.to_str().ok());
            let _ = ack.send(&json!({ "query": h.query_param("q"), "header": header }));
        },
    );
}

fn volley_io(ping: Ping, recovery: bool) -> SocketIo {
    let mut b = SocketIo::builder()
        .ping_interval(Duration::from_millis(ping.interval))
        .ping_timeout(Duration::from_millis(ping.timeout))
        .max_payload(10_000_000);
    if recovery {
        b = b.connection_state_recovery(volley::adapter::ConnectionStateRecovery::default());
    }
    let io = b.build();
    let state = Arc::new(State::default());
    let st = state.clone();
    io.of("/").on_connection(move |s: Socket| {
        st.auths.lock().unwrap().push(s.handshake().auth().clone());
        behave(s, st.clone());
        async {}
    });
    let st = state.clone();
    io.of("/admin").on_connection(move |s: Socket| {
        behave(s, st.clone());
        async {}
    });
    let st = state;
    io.of("/secure")
        .middleware(|s: Socket| async move {
            if s.handshake().auth().get("token").and_then(Value::as_str) == Some("ok") {
                Ok(())
            } else {
                Err(ConnectError::new("not authorized").with_data(json!({ "code": 42 })))
            }
        })
        .on_connection(move |s: Socket| {
            behave(s, st.clone());
            async {}
        });
    io
}

async fn start_volley(port: u16, ping: Ping, recovery: bool) -> (tokio::runtime::Runtime, u16) {
    // `Server::stop` returned once the previous listener was closed: the port is free.
    let listener = std::net::TcpListener::bind(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("bind 127.0.0.1:{port}: {e}"));
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("server runtime");
    rt.spawn(async move {
        let listener = TcpListener::from_std(listener).expect("listener");
        let io = volley_io(ping, recovery);
        let _ = volley::serve(listener, io.service()).await;
    });
    (rt, port)
}

/// A TCP proxy to `127.0.0.1:upstream` that can be frozen: while frozen, nothing is forwarded
/// either way, but no connection is closed (a network that went silent). It counts its open
/// connections and the reads it forwarded from clients to the server, and tests wait on those
/// counts (not on time).
pub struct Proxy {
    pub port: u16,
    live: watch::Sender<usize>,
    upstream: watch::Sender<u64>,
    frozen: watch::Sender<bool>,
    /// Bumped by [`Proxy::cut`]: every connection open then is closed.
    epoch: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    pub async fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (frozen, _) = watch::channel(false);
        let (live, _) = watch::channel(0usize);
        let (sent, _) = watch::channel(0u64);
        let (epoch, _) = watch::channel(0u64);
        let (tx, count, up, ep) = (frozen.clone(), live.clone(), sent.clone(), epoch.clone());
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                    continue;
                };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                let up = pipe(cr, sw, tx.subscribe(), Some(up.clone()));
                let down = pipe(sr, cw, tx.subscribe(), None);
                let count = count.clone();
                count.send_modify(|n| *n += 1);
                let mut cut = ep.subscribe();
                cut.mark_unchanged();
                conns.spawn(async move {
                    // Dropping both halves closes both connections.
                    tokio::select! {
                        _ = async { tokio::join!(up, down) } => {}
                        _ = cut.changed() => {}
                    }
                    count.send_modify(|n| *n -= 1);
                });
            }
        });
        Proxy {
            port,
            live,
            upstream: sent,
            frozen,
            epoch,
            task,
        }
    }

    /// Cuts the network: closes every open connection (both sides see it at once) and
    /// freezes, so that new connections hang until [`freeze(false)`](Self::freeze).
    pub fn cut(&self) {
        self.freeze(true);
        self.epoch.send_modify(|e| *e += 1);
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// How many proxied connections are open.
    pub fn live(&self) -> usize {
        *self.live.borrow()
    }

    /// Waits until exactly `n` proxied connections are open, failing after [`WAIT`].
    pub async fn wait_live(&self, n: usize) {
        let mut rx = self.live.subscribe();
        tokio::time::timeout(WAIT, rx.wait_for(|live| *live == n))
            .await
            .unwrap_or_else(|_| panic!("{} proxied connections, not {n}", self.live()))
            .expect("proxy gone");
    }

    /// How many reads the proxy has forwarded from clients to the server so far.
    pub fn upstream(&self) -> u64 {
        *self.upstream.borrow()
    }

    /// Waits until the proxy has forwarded at least `n` reads from clients to the server,
    /// failing after [`WAIT`].
    pub async fn wait_upstream(&self, n: u64) {
        let mut rx = self.upstream.subscribe();
        tokio::time::timeout(WAIT, rx.wait_for(|sent| *sent >= n))
            .await
            .unwrap_or_else(|_| panic!("{} reads forwarded upstream, not {n}", self.upstream()))
            .expect("proxy gone");
    }

    pub fn freeze(&self, yes: bool) {
        self.frozen.send_replace(yes);
    }
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut frozen: watch::Receiver<bool>,
    forwarded: Option<watch::Sender<u64>>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if frozen.wait_for(|f| !*f).await.is_err() {
            return;
        }
        let read = from.read(&mut buf).await;
        // Frozen, the network forwards nothing, not even the end of a connection.
        if frozen.wait_for(|f| !*f).await.is_err() {
            return;
        }
        let n = match read {
            Ok(0) | Err(_) => {
                let _ = to.shutdown().await;
                return;
            }
            Ok(n) => n,
        };
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
        if let Some(count) = &forwarded {
            count.send_modify(|c| *c += 1);
        }
    }
}

/// Waits until `manager` uses `want`, from the events of `events` (subscribed before the
/// connection opened, so that no upgrade can be missed), failing after [`WAIT`].
pub async fn settled(
    manager: &volley_client::Manager,
    events: &mut broadcast::Receiver<volley_client::ManagerEvent>,
    want: volley_client::TransportKind,
) {
    if manager.transport() != Some(want) {
        wait_for(events, "upgrade", |e| {
            (*e == volley_client::ManagerEvent::Upgrade(want)).then_some(())
        })
        .await;
    }
    assert_eq!(manager.transport(), Some(want));
}

/// Waits for the first event `f` accepts, failing after [`WAIT`].
pub async fn wait_for<T: Clone, R>(
    rx: &mut broadcast::Receiver<T>,
    what: &str,
    mut f: impl FnMut(&T) -> Option<R>,
) -> R {
    let fut = async {
        loop {
            match rx.recv().await {
                Ok(ev) => {
                    if let Some(r) = f(&ev) {
                        return r;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => {
                    panic!("closed while waiting for {what}")
                }
            }
        }
    };
    tokio::time::timeout(WAIT, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// Receives from an mpsc channel, failing after [`WAIT`].
pub async fn recv<T>(rx: &mut tokio::sync::mpsc::UnboundedReceiver<T>, what: &str) -> T {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
        .unwrap_or_else(|| panic!("channel closed waiting for {what}"))
}

/// A free loopback port with nothing listening on it.
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().map(|a: SocketAddr| a.port()).expect("addr")
}
