//! The node a client was on is killed with SIGKILL, and the client recovers on another node
//! with everything it missed. On a redis-server the test starts: node A is a
//! `conformance-server` process (`REDIS_ADAPTER=streams RECOVERY=1`), node B another one,
//! node C the official Node server with `@socket.io/redis-streams-adapter` 0.3.1 and
//! recovery (`cluster-node.mjs`). The official `socket.io-client` 4.8
//! (`sio-sigkill.mjs`), over polling or WebSocket, reaches A through a TCP proxy, joins room
//! "r" and gets a first broadcast; once A's snapshot of its session is in Redis, A is
//! SIGKILLed. While the client knocks at the dead address, B and C broadcast to all, to "r",
//! to another room and to all but "r"; then the proxy is switched to B (Volley) or C (Node)
//! and the client comes back by itself: `recovered`, the same id, its rooms, and every packet
//! it missed exactly once and in order.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};

use common::{
    Client, Cluster, Proc, Script, WAIT, cluster, has_room, node_server, pids_of, sigkill,
    wait_snapshot,
};
use serde_json::{Value, json};
use volley_test_support::switching_proxy as proxy;

#[derive(Clone, Copy, PartialEq)]
enum Target {
    /// Node B: Volley.
    Volley,
    /// Node C: Node.
    Node,
}

/// The next event a watcher gets: `[name, a, b]` without the offset.
async fn watched(w: &mut Client) -> Value {
    let e = w.event().await;
    json!(e[..3])
}

/// While the client knocks at A's dead address: broadcasts from B and C, each waited for on
/// the other node (so it is in the stream, in this order): "m1" to room "r", "m2", "m3",
/// "m4" to all, and two the client must not get (to room "q", to all but "r").
async fn away(wb: &mut Client, wc: &mut Client) {
    wb.send(r#"42["cluster:emit-room","r","m1"]"#);
    assert_eq!(watched(wc).await, json!(["cluster:room", "r", "m1"]));
    assert_eq!(watched(wb).await, json!(["cluster:room", "r", "m1"]));
    wc.send(r#"42["cluster:emit-all","m2"]"#);
    assert_eq!(watched(wb).await, json!(["cluster:all", "m2", "node-c"]));
    assert_eq!(watched(wc).await, json!(["cluster:all", "m2", "node-c"]));
    // Not for the client: to another room, and to all but "r" (the watchers are in "r").
    wc.send(r#"42["cluster:emit-room","q","no"]"#);
    wb.send(r#"42["cluster:emit-except","r","no"]"#);
    wb.send(r#"42["cluster:emit-all","m3"]"#);
    assert_eq!(watched(wc).await, json!(["cluster:all", "m3", "volley-b"]));
    assert_eq!(watched(wb).await, json!(["cluster:all", "m3", "volley-b"]));
    wc.send(r#"42["cluster:emit-all","m4"]"#);
    assert_eq!(watched(wb).await, json!(["cluster:all", "m4", "node-c"]));
    assert_eq!(watched(wc).await, json!(["cluster:all", "m4", "node-c"]));
}

/// What the client must have got: every missed packet once, in order, then the new one.
const EXPECTED: [(&str, &str); 6] = [
    ("all", "m0"),
    ("room", "m1"),
    ("all", "m2"),
    ("all", "m3"),
    ("all", "m4"),
    ("all", "end"),
];

/// Checks `list` (`[event, value, offset]` each) against [`EXPECTED`], offsets all distinct.
#[track_caller]
fn check_got(list: &[Value]) {
    let mut offsets = HashSet::new();
    for item in list {
        let off = item[2]
            .as_str()
            .unwrap_or_else(|| panic!("an event without offset: {item}"));
        assert!(
            offsets.insert(off.to_owned()),
            "offset {off} twice: {list:?}"
        );
    }
    let values: Vec<Value> = list.iter().map(|i| json!([i[0], i[1]])).collect();
    let expected: Vec<Value> = EXPECTED.iter().map(|(e, v)| json!([e, v])).collect();
    assert_eq!(
        values, expected,
        "every missed packet exactly once, in order, then the new one"
    );
}

/// The watchers on B (Volley) and C (Node), both in room "r".
async fn watchers(b_port: u16, c_port: u16) -> (Client, Client) {
    let (mut wb, _, _) = Client::open(b_port, "40").await;
    wb.event().await; // conformance-server's "auth" event
    assert_eq!(
        wb.ask(0, json!(["cluster:join", "r"])).await,
        json!(["volley-b"])
    );
    let (mut wc, _, _) = Client::open(c_port, "40").await;
    assert_eq!(
        wc.ask(0, json!(["cluster:join", "r"])).await,
        json!(["node-c"])
    );
    (wb, wc)
}

/// Checks over `w` that socket `id` is live once in the cluster, in its rooms.
async fn live_once(w: &mut Client, id: &str) {
    let list = w.ask(1, json!(["cluster:fetch", "r"])).await;
    let mine: Vec<&Value> = list[0]
        .as_array()
        .expect("a list")
        .iter()
        .filter(|s| s["id"] == json!(id))
        .collect();
    let mut rooms = vec![id.to_owned(), "r".to_owned()];
    rooms.sort();
    assert_eq!(mine.len(), 1, "one live socket of that id: {list}");
    assert_eq!(mine[0]["rooms"], json!(rooms));
}

/// Nodes A and B (Volley) and C (Node), a watcher on B and one on C, and the proxy in
/// front of A.
struct Setup {
    cl: Cluster,
    c_port: u16,
    _c: Proc,
    wb: Client,
    wc: Client,
    to: Arc<AtomicU16>,
    front: u16,
}

async fn setup() -> Setup {
    let cl = cluster();
    let (c, c_port) = node_server(&cl.url, "node-c");
    // In room "r" too: they see every broadcast of the test.
    let (wb, wc) = watchers(cl.b_port, c_port).await;
    let to = Arc::new(AtomicU16::new(cl.a_port));
    let front = proxy(to.clone()).await;
    Setup {
        cl,
        c_port,
        _c: c,
        wb,
        wc,
        to,
        front,
    }
}

impl Setup {
    /// Points the proxy at B or C; the node's name.
    fn switch(&self, target: Target) -> &'static str {
        let (port, name) = match target {
            Target::Volley => (self.cl.b_port, "volley-b"),
            Target::Node => (self.c_port, "node-c"),
        };
        self.to.store(port, Ordering::SeqCst);
        name
    }
}

async fn sigkill_then_recover(mode: &str, target: Target) {
    let mut st = setup().await;
    let (front, redis_port) = (st.front, st.cl.redis_port);
    let mut client = Script::start(
        "sio-sigkill.mjs",
        &[&format!("http://127.0.0.1:{front}"), mode],
    );
    let ready = client.wait("ready").await;
    let id = ready["id"].as_str().expect("an id").to_owned();
    let pid = ready["pid"].as_str().expect("a pid").to_owned();
    let m0 = json!(["cluster:all", "m0", "volley-a"]);
    assert_eq!(watched(&mut st.wb).await, m0);
    assert_eq!(watched(&mut st.wc).await, m0);

    // A keeps the connected socket's session in Redis, with its rooms.
    wait_snapshot(redis_port, &pid, |s| {
        has_room(s, "r") && s.is_some_and(|s| s.id.as_str() == id)
    })
    .await;
    sigkill(&mut st.cl.a);
    let gone = client.wait("disconnected").await;
    let reason = gone["reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with("transport "), "{gone}");

    away(&mut st.wb, &mut st.wc).await;

    // The client comes back, by itself, to B or C.
    let name = st.switch(target);
    let back = client.wait("reconnected").await;
    assert_eq!(back["recovered"], true, "{:?}", client.seen);
    assert_eq!(back["sameId"], true);
    assert_eq!(back["id"], json!(id));
    let got = client.wait("got").await;
    client.wait("done").await;
    check_got(got["list"].as_array().expect("a list"));
    assert_eq!(
        watched(&mut st.wb).await,
        json!(["cluster:all", "end", name]),
        "the client's emit reached the node it came back to"
    );
    // Its rooms, on the node it came back to: fetchSockets across the cluster.
    live_once(&mut st.wb, &id).await;
    client.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_client_of_a_killed_volley_node_recovers_on_volley() {
    sigkill_then_recover("websocket", Target::Volley).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_client_of_a_killed_volley_node_recovers_on_volley() {
    sigkill_then_recover("polling", Target::Volley).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_client_of_a_killed_volley_node_recovers_on_node() {
    sigkill_then_recover("websocket", Target::Node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_client_of_a_killed_volley_node_recovers_on_node() {
    sigkill_then_recover("polling", Target::Node).await;
}

/// The same with volley-client (WebSocket): it keeps the pid and last offset, comes back by
/// itself, and is recovered on B (Volley) or C (Node).
async fn volley_client_recovers(target: Target) {
    use std::time::Duration;
    use volley_client::{Manager, RawArgs, Socket, SocketEvent, TransportKind};

    let mut st = setup().await;
    let (front, redis_port) = (st.front, st.cl.redis_port);

    let manager = Manager::builder(&format!("http://127.0.0.1:{front}"))
        .transports(&[TransportKind::WebSocket])
        .reconnection_delay(Duration::from_millis(50))
        .randomization_factor(0.0)
        .build()
        .expect("manager");
    let socket = manager.socket("/").build();
    let (tx, mut got) = tokio::sync::mpsc::unbounded_channel::<Value>();
    for (event, kind) in [("cluster:all", "all"), ("cluster:room", "room")] {
        let tx = tx.clone();
        socket.on(event, move |_: Socket, args: RawArgs| {
            let tx = tx.clone();
            async move {
                let arg = |i| {
                    args.get::<Value>(i)
                        .and_then(Result::ok)
                        .unwrap_or(Value::Null)
                };
                let value = if kind == "all" { arg(0) } else { arg(1) };
                let _ = tx.send(json!([kind, value, arg(2)]));
            }
        });
    }
    let mut events = socket.events();
    socket.connect();
    socket.wait_connected().await.expect("connects to A");
    let id = socket.id().expect("an id").to_string();
    let joined: Value = tokio::time::timeout(WAIT, socket.emit_with_ack("cluster:join", "r"))
        .await
        .expect("in time")
        .expect("joined");
    assert_eq!(joined, json!("volley-a"));
    socket.emit("cluster:emit-all", "m0").unwrap();
    let mut list = vec![recv(&mut got).await];
    watched(&mut st.wb).await;
    watched(&mut st.wc).await;
    // A keeps the connected socket's session in Redis, with its rooms.
    let deadline = std::time::Instant::now() + WAIT;
    let pid = loop {
        let i = id.clone();
        let pids = tokio::task::spawn_blocking(move || pids_of(redis_port, &i))
            .await
            .unwrap();
        if let [pid] = &pids[..] {
            break pid.clone();
        }
        assert!(std::time::Instant::now() < deadline, "no snapshot of {id}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    wait_snapshot(redis_port, &pid, |s| has_room(s, "r")).await;

    sigkill(&mut st.cl.a);
    loop {
        let e = tokio::time::timeout(WAIT, events.recv())
            .await
            .expect("in time");
        if matches!(e, Ok(SocketEvent::Disconnect(_))) {
            break;
        }
    }
    away(&mut st.wb, &mut st.wc).await;
    let name = st.switch(target);
    loop {
        let e = tokio::time::timeout(WAIT, events.recv())
            .await
            .expect("in time");
        if matches!(e, Ok(SocketEvent::Connect)) {
            break;
        }
    }
    assert!(socket.recovered(), "recovered on {name}");
    assert_eq!(socket.id().map(|i| i.to_string()), Some(id.clone()));
    socket.emit("cluster:emit-all", "end").unwrap();
    while list.len() < EXPECTED.len() {
        list.push(recv(&mut got).await);
    }
    check_got(&list);
    assert_eq!(
        watched(&mut st.wb).await,
        json!(["cluster:all", "end", name]),
        "the client's emit reached the node it came back to"
    );
    live_once(&mut st.wb, &id).await;
    socket.disconnect();
}

async fn recv(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Value>) -> Value {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("an event in time")
        .expect("open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volley_client_of_a_killed_volley_node_recovers_on_volley() {
    volley_client_recovers(Target::Volley).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volley_client_of_a_killed_volley_node_recovers_on_node() {
    volley_client_recovers(Target::Node).await;
}
