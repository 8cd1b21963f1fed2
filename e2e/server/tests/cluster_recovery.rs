//! Connection state recovery across a cluster of `conformance-server` processes
//! (`REDIS_ADAPTER=streams RECOVERY=1`) on a redis-server the test starts, with raw
//! Socket.IO clients: a client cut from server A recovers on server B after A was killed
//! with SIGKILL, with its id, its rooms and every packet it missed (sent by A before it died
//! and by B after), once each and in order. A client still connected to A when it is killed
//! gets a fresh session on B: its session was never kept (as with Node, a session is kept
//! when its socket disconnects, which a killed server cannot do).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as Ws;

/// A bound on a hang, never reached unless something is broken.
const WAIT: Duration = Duration::from_secs(60);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    let mut buf = [0u8; 16];
    s.write_all(b"PING\r\n").is_ok()
        && s.read(&mut buf)
            .is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
}

/// A child process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn redis(port: u16) -> Proc {
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start redis-server: {e}"));
    // redis-server has no readiness signal but its answer.
    let deadline = Instant::now() + WAIT;
    while !ping(port) {
        assert!(Instant::now() < deadline, "redis-server does not answer");
        std::thread::sleep(Duration::from_millis(20));
    }
    Proc(child)
}

/// A conformance-server in the cluster, once it says it joined it.
fn server(redis: &str, name: &str) -> (Proc, u16) {
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_conformance-server"))
        .env("PORT", port.to_string())
        .env("REDIS_URL", redis)
        .env("REDIS_ADAPTER", "streams")
        .env("RECOVERY", "1")
        .env("SERVER_NAME", name)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("conformance-server starts");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains("redis adapter on") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(WAIT)
        .unwrap_or_else(|_| panic!("{name} did not join the cluster"));
    (Proc(child), port)
}

/// A raw Socket.IO client (WebSocket) on "/": a task answers the server's pings (every
/// 300 ms) and hands over every other text.
struct Client {
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
    async fn open(port: u16, connect: &str) -> (Self, Value, Vec<String>) {
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

    fn send(&self, text: &str) {
        self.tx.send(text.to_owned()).unwrap();
    }

    async fn next(&mut self) -> String {
        tokio::time::timeout(WAIT, self.rx.recv())
            .await
            .expect("a message within WAIT")
            .expect("connected")
    }

    /// The next event: its arguments (the offset last).
    async fn event(&mut self) -> Vec<Value> {
        let t = self.next().await;
        let v: Value = serde_json::from_str(t.strip_prefix("42").expect(&t)).unwrap();
        v.as_array().unwrap().clone()
    }

    /// Sends event `args` with ack id `id`; the acknowledgement's arguments.
    async fn ask(&mut self, id: u32, args: Value) -> Value {
        self.send(&format!("42{id}{args}"));
        let prefix = format!("43{id}");
        let t = self.next().await;
        serde_json::from_str(t.strip_prefix(&prefix).expect(&t)).unwrap()
    }
}

fn offset(args: &[Value]) -> String {
    let o = args.last().and_then(Value::as_str).expect("an offset");
    assert!(o.contains('-'), "a stream entry id: {o}");
    o.to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_recovers_on_b_after_a_was_killed() {
    let redis_port = free_port();
    let _redis = redis(redis_port);
    let url = format!("redis://127.0.0.1:{redis_port}");
    let (mut a, a_port) = server(&url, "volley-a");
    let (_b, b_port) = server(&url, "volley-b");

    // c1 (to be cut) and c2 (connected when A dies) on A, the watcher on B.
    let (mut c1, r1, _) = Client::open(a_port, "40").await;
    let (sid1, pid1) = (r1["sid"].clone(), r1["pid"].clone());
    let auth = c1.event().await;
    assert_eq!(auth[0], "auth");
    offset(&auth);
    assert_eq!(
        c1.ask(0, json!(["cluster:join", "r"])).await,
        json!(["volley-a"])
    );
    let (mut c2, r2, _) = Client::open(a_port, "40").await;
    let off2 = offset(&c2.event().await);
    let (mut w, _, _) = Client::open(b_port, "40").await;
    w.event().await;
    // A first broadcast every client gets.
    c2.send(r#"42["cluster:emit-all","m0"]"#);
    let e = c1.event().await;
    assert_eq!(
        e[..3],
        [json!("cluster:all"), json!("m0"), json!("volley-a")]
    );
    let off1 = offset(&e);
    assert_eq!(w.event().await[1], "m0");
    c2.event().await;

    // Cut c1; A keeps its session once it noticed (fetchSockets no longer lists it).
    drop(c1);
    let deadline = Instant::now() + WAIT;
    loop {
        let list = w.ask(1, json!(["cluster:fetch", null])).await;
        let gone = list[0]
            .as_array()
            .is_some_and(|l| l.iter().all(|s| s["id"] != sid1));
        if gone {
            break;
        }
        assert!(Instant::now() < deadline, "A never noticed the cut");
    }
    // Missed from A (after its SET on the same connection), then from B.
    c2.send(r#"42["cluster:emit-room","r","m1"]"#);
    c2.send(r#"42["cluster:emit-all","m2"]"#);
    assert_eq!(w.event().await[1], "m2");
    w.send(r#"42["cluster:emit-room","r","m3"]"#);
    w.send(r#"42["cluster:emit-except","r","no"]"#);
    assert_eq!(w.event().await[0], "cluster:except");

    // A dies.
    a.0.kill().unwrap();
    a.0.wait().unwrap();
    w.send(r#"42["cluster:emit-all","m4"]"#);
    assert_eq!(w.event().await[1], "m4");

    // c1 comes back on B: same id, rooms, and every missed packet once, in order.
    let connect = format!(r#"40{{"pid":{pid1},"offset":"{off1}"}}"#);
    let (mut c1, reply, before) = Client::open(b_port, &connect).await;
    assert_eq!(reply["sid"], sid1, "recovered on B: {reply}");
    let missed: Vec<Value> = before
        .iter()
        .map(|t| {
            let v: Value = serde_json::from_str(t.strip_prefix("42").expect(t)).unwrap();
            let a = v.as_array().unwrap();
            offset(a);
            json!(a[..a.len() - 1])
        })
        .collect();
    assert_eq!(
        missed,
        [
            json!(["cluster:room", "r", "m1"]),
            json!(["cluster:all", "m2", "volley-a"]),
            json!(["cluster:room", "r", "m3"]),
            json!(["cluster:all", "m4", "volley-b"]),
        ]
    );
    let state = c1.ask(2, json!(["recovery:state"])).await;
    let mut rooms = vec![sid1.as_str().unwrap().to_owned(), "r".to_owned()];
    rooms.sort();
    assert_eq!(
        state,
        json!([{"id": sid1, "recovered": true, "rooms": rooms}])
    );
    // Its rooms work across the cluster again.
    w.send(r#"42["cluster:emit-room","r","m5"]"#);
    assert_eq!(
        c1.event().await[..3],
        [json!("cluster:room"), json!("r"), json!("m5")]
    );

    // c2 was connected when A died: nothing was kept, a fresh session.
    drop(c2);
    let connect = format!(r#"40{{"pid":{},"offset":"{off2}"}}"#, r2["pid"]);
    let (_c2, reply, before) = Client::open(b_port, &connect).await;
    assert_ne!(reply["sid"], r2["sid"], "{reply}");
    assert!(before.is_empty(), "{before:?}");
}
