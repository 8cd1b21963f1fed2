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
    Client, Script, free_port, has_room, node_server, proxy, redis, server, sigkill,
    wait_snapshot,
};
use serde_json::{Value, json};

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

async fn sigkill_then_recover(mode: &str, target: Target) {
    let redis_port = free_port();
    let _redis = redis(redis_port);
    let url = format!("redis://127.0.0.1:{redis_port}");
    let (mut a, a_port) = server(&url, "volley-a");
    let (_b, b_port) = server(&url, "volley-b");
    let (_c, c_port) = node_server(&url, "node-c");

    // Watchers on B and C, in room "r" too: they see every broadcast of the test.
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

    let to = Arc::new(AtomicU16::new(a_port));
    let front = proxy(to.clone()).await;
    let mut client = Script::start(
        "sio-sigkill.mjs",
        &[&format!("http://127.0.0.1:{front}"), mode],
    );
    let ready = client.wait("ready").await;
    let id = ready["id"].as_str().expect("an id").to_owned();
    let pid = ready["pid"].as_str().expect("a pid").to_owned();
    let m0 = json!(["cluster:all", "m0", "volley-a"]);
    assert_eq!(watched(&mut wb).await, m0);
    assert_eq!(watched(&mut wc).await, m0);

    // A keeps the connected socket's session in Redis, with its rooms.
    wait_snapshot(redis_port, &pid, |s| {
        has_room(s, "r") && s.is_some_and(|s| s.id.as_str() == id)
    })
    .await;
    sigkill(&mut a);
    let gone = client.wait("disconnected").await;
    let reason = gone["reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with("transport "), "{gone}");

    // While the client knocks at A's dead address: broadcasts from B and C, each waited
    // for on the other node (so it is in the stream, in this order).
    wb.send(r#"42["cluster:emit-room","r","m1"]"#);
    assert_eq!(watched(&mut wc).await, json!(["cluster:room", "r", "m1"]));
    assert_eq!(watched(&mut wb).await, json!(["cluster:room", "r", "m1"]));
    wc.send(r#"42["cluster:emit-all","m2"]"#);
    assert_eq!(watched(&mut wb).await, json!(["cluster:all", "m2", "node-c"]));
    assert_eq!(watched(&mut wc).await, json!(["cluster:all", "m2", "node-c"]));
    // Not for the client: to another room, and to all but "r" (the watchers are in "r").
    wc.send(r#"42["cluster:emit-room","q","no"]"#);
    wb.send(r#"42["cluster:emit-except","r","no"]"#);
    wb.send(r#"42["cluster:emit-all","m3"]"#);
    assert_eq!(watched(&mut wc).await, json!(["cluster:all", "m3", "volley-b"]));
    assert_eq!(watched(&mut wb).await, json!(["cluster:all", "m3", "volley-b"]));
    wc.send(r#"42["cluster:emit-all","m4"]"#);
    assert_eq!(watched(&mut wb).await, json!(["cluster:all", "m4", "node-c"]));
    assert_eq!(watched(&mut wc).await, json!(["cluster:all", "m4", "node-c"]));

    // The client comes back, by itself, to B or C.
    let (port, name) = match target {
        Target::Volley => (b_port, "volley-b"),
        Target::Node => (c_port, "node-c"),
    };
    to.store(port, Ordering::SeqCst);
    let back = client.wait("reconnected").await;
    assert_eq!(back["recovered"], true, "{:?}", client.seen);
    assert_eq!(back["sameId"], true);
    assert_eq!(back["id"], json!(id));
    let got = client.wait("got").await;
    client.wait("done").await;
    let list = got["list"].as_array().cloned().unwrap_or_default();
    let mut offsets = HashSet::new();
    for item in &list {
        let off = item[2]
            .as_str()
            .unwrap_or_else(|| panic!("an event without offset: {item}"));
        assert!(offsets.insert(off.to_owned()), "offset {off} twice: {list:?}");
    }
    let values: Vec<Value> = list.iter().map(|i| json!([i[0], i[1]])).collect();
    assert_eq!(
        values,
        [
            json!(["all", "m0"]),
            json!(["room", "m1"]),
            json!(["all", "m2"]),
            json!(["all", "m3"]),
            json!(["all", "m4"]),
            json!(["all", "end"]),
        ],
        "every missed packet exactly once, in order, then the new one"
    );
    assert_eq!(
        watched(&mut wb).await,
        json!(["cluster:all", "end", name]),
        "the client's emit reached the node it came back to"
    );
    // Its rooms, on the node it came back to: fetchSockets across the cluster.
    let list = wb.ask(1, json!(["cluster:fetch", "r"])).await;
    let mine: Vec<&Value> = list[0]
        .as_array()
        .expect("a list")
        .iter()
        .filter(|s| s["id"] == json!(id))
        .collect();
    let mut rooms = vec![id.clone(), "r".to_owned()];
    rooms.sort();
    assert_eq!(mine.len(), 1, "one live socket of that id: {list}");
    assert_eq!(mine[0]["rooms"], json!(rooms));
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
