//! Connection state recovery across a cluster (streams mode, on a redis-server the test
//! starts): a raw client connected to server A is cut while broadcasts from A and B go on,
//! comes back on server B with its pid and last offset, and gets its id, its rooms and
//! every packet it missed, once each and in order, before the CONNECT reply; then what is
//! broadcast while it restores, exactly once. Offsets are stream entry ids, whatever server
//! sent the packet. With the classic adapter, every reconnection is a fresh session.

mod common;

use std::time::Duration;

use common::{Client, Redis, WAIT, free_port, next_text};
use futures_util::SinkExt;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as Ws;
use volley::{ConnectionStateRecovery, Socket, SocketIo};
use volley_redis::{RedisAdapterConfig, RedisCluster};

struct Node {
    cluster: RedisCluster,
    io: SocketIo,
    addr: std::net::SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.server.abort();
        self.cluster.close();
    }
}

/// What a server's handlers report: `connect <id> <recovered>` (a first connection joined
/// the room its auth names first), `disconnect <id>`.
type Events = mpsc::UnboundedReceiver<String>;

async fn node(url: &str, config: RedisAdapterConfig) -> (Node, Events) {
    let cluster = RedisCluster::connect(url, config).await.expect("connects");
    let io = SocketIo::builder()
        .adapter(cluster.factory())
        .connection_state_recovery(ConnectionStateRecovery::default())
        .build();
    let (tx, rx) = mpsc::unbounded_channel();
    io.of("/").on_connection(move |s: Socket| {
        let tx = tx.clone();
        async move {
            let room = s.handshake().auth()["room"].as_str().map(str::to_owned);
            if let (false, Some(room)) = (s.recovered(), room) {
                s.join(room);
            }
            let _ = tx.send(format!("connect {} {}", s.id(), s.recovered()));
            let tx = tx.clone();
            s.on_disconnect(move |s, _| async move {
                let _ = tx.send(format!("disconnect {}", s.id()));
            });
        }
    });
    cluster.ready(WAIT).await.expect("subscribed and reading");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = io.service();
    let server = tokio::spawn(async move {
        let _ = volley::serve(listener, service).await;
    });
    let node = Node {
        cluster,
        io,
        addr,
        server,
    };
    (node, rx)
}

async fn next_event(events: &mut Events) -> String {
    tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("a server event within WAIT")
        .expect("the server is alive")
}

/// A raw client on "/" of `addr`, sending `connect` (`40...`); the CONNECT reply's JSON and
/// every event that came before it.
async fn open(addr: std::net::SocketAddr, connect: &str) -> (Client, Value, Vec<String>) {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!(
        "ws://{addr}/socket.io/?EIO=4&transport=websocket"
    ))
    .await
    .unwrap();
    assert!(next_text(&mut ws).await.starts_with("0{"));
    ws.send(Ws::text(connect.to_owned())).await.unwrap();
    let mut before = Vec::new();
    loop {
        let t = next_text(&mut ws).await;
        if let Some(reply) = t.strip_prefix("40") {
            return (ws, serde_json::from_str(reply).unwrap(), before);
        }
        before.push(t);
    }
}

/// `42["<event>",<value>,"<offset>"]` → (event, value, offset).
fn event(text: &str) -> (String, Value, String) {
    let v: Value = serde_json::from_str(text.strip_prefix("42").expect(text)).expect(text);
    let a = v.as_array().expect(text);
    assert_eq!(a.len(), 3, "event, value and offset: {text}");
    let offset = a[2].as_str().expect(text).to_owned();
    assert!(
        volley_redis::message::parse_entry_id(&offset).is_some(),
        "the offset is a stream entry id: {text}"
    );
    (a[0].as_str().unwrap().to_owned(), a[1].clone(), offset)
}

fn id(offset: &str) -> (u64, u64) {
    volley_redis::message::parse_entry_id(offset).unwrap()
}

fn config() -> RedisAdapterConfig {
    RedisAdapterConfig {
        command_timeout: WAIT,
        max_backoff: Duration::from_millis(200),
        ..RedisAdapterConfig::streams()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_cut_from_one_server_recovers_on_another_with_everything_it_missed() {
    let port = free_port();
    let _redis = Redis::start(port);
    let url = format!("redis://127.0.0.1:{port}");
    let (a, mut a_events) = node(&url, config()).await;
    let (b, mut b_events) = node(&url, config()).await;

    // The client on A, in room "r"; a watcher on B sees what goes to everybody.
    let (mut c, reply, _) = open(a.addr, r#"40{"room":"r"}"#).await;
    let sid = reply["sid"].as_str().unwrap().to_owned();
    let pid = reply["pid"].as_str().expect("a pid").to_owned();
    assert_eq!(
        next_event(&mut a_events).await,
        format!("connect {sid} false")
    );
    let (mut w, _, _) = open(b.addr, "40").await;
    next_event(&mut b_events).await;

    // Offsets are the stream's, whoever sends: the client's own server...
    a.io.emit("n", &0).unwrap();
    let (_, _, offset0) = event(&next_text(&mut c).await);
    // ...and the other one.
    b.io.emit("n", &1).unwrap();
    let (name, value, offset) = event(&next_text(&mut c).await);
    assert_eq!((name.as_str(), value), ("n", Value::from(1)));
    for _ in 0..2 {
        event(&next_text(&mut w).await);
    }
    assert!(id(&offset0) < id(&offset), "{offset0} then {offset}");

    // Cut: A keeps the session in Redis.
    drop(c);
    assert_eq!(next_event(&mut a_events).await, format!("disconnect {sid}"));

    // Missed, from both servers, in this order (each server's last one is seen by the
    // watcher before the next server sends, so the stream order is this one).
    a.io.emit("m", &2).unwrap();
    a.io.to("r").emit("m", &3).unwrap();
    a.io.to("elsewhere").emit("m", &"no").unwrap();
    a.io.to(sid.as_str()).emit("m", &4).unwrap();
    a.io.emit("m", &5).unwrap();
    assert_eq!(event(&next_text(&mut w).await).1, 2);
    assert_eq!(event(&next_text(&mut w).await).1, 5);
    b.io.except("r").emit("m", &"no").unwrap();
    b.io.to("r").emit("m", &6).unwrap();
    b.io.emit("m", &7).unwrap();
    let (_, _, w_last) = event(&next_text(&mut w).await);
    assert!(
        matches!(event(&next_text(&mut w).await), (_, v, _) if v == 7),
        "the watcher got the broadcast except r, then 7"
    );

    // Back, on B.
    let connect = format!(r#"40{{"pid":"{pid}","offset":"{offset}"}}"#);
    let (mut c, reply, before) = open(b.addr, &connect).await;
    assert_eq!(reply["sid"], sid.as_str(), "same id: {reply}");
    assert_eq!(reply["pid"], pid.as_str());
    assert_eq!(
        next_event(&mut b_events).await,
        format!("connect {sid} true")
    );
    let missed: Vec<(String, Value)> = before
        .iter()
        .map(|t| {
            let (e, v, _) = event(t);
            (e, v)
        })
        .collect();
    let expect: Vec<(String, Value)> = [2, 3, 4, 5, 6, 7]
        .into_iter()
        .map(|n| ("m".to_owned(), Value::from(n)))
        .collect();
    assert_eq!(missed, expect, "every missed packet once, in order");
    let last = event(before.last().unwrap()).2;
    assert!(id(&last) > id(&w_last), "the last missed one is the newest");

    // Its rooms are back ("r" and its own), on B; nothing is delivered twice.
    a.io.to("r").emit("after", &8).unwrap();
    b.io.to(sid.as_str()).emit("after", &9).unwrap();
    let first = event(&next_text(&mut c).await);
    let second = event(&next_text(&mut c).await);
    let mut got = vec![first.1, second.1];
    got.sort_by_key(|v| v.as_i64());
    assert_eq!(got, [Value::from(8), Value::from(9)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_during_a_restore_on_another_server_arrive_exactly_once_in_order() {
    let port = free_port();
    let _redis = Redis::start(port);
    let url = format!("redis://127.0.0.1:{port}");
    let (a, mut a_events) = node(&url, config()).await;
    let (b, mut b_events) = node(&url, config()).await;
    let (mut c, reply, _) = open(a.addr, r#"40{"room":"r"}"#).await;
    let sid = reply["sid"].as_str().unwrap().to_owned();
    let pid = reply["pid"].as_str().unwrap().to_owned();
    next_event(&mut a_events).await;
    let (mut w, w_reply, _) = open(b.addr, "40").await;
    next_event(&mut b_events).await;

    // 0, 1, 2... to room "r" and the watcher's own room, with no pause, from A and B in
    // turn, while the client is cut and comes back on B, until told to stop.
    let w_id = w_reply["sid"].as_str().unwrap().to_owned();
    let (ai, bi) = (a.io.clone(), b.io.clone());
    let w_room = w_id.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let counter = tokio::spawn(async move {
        let mut n = 0i64;
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
            let io = if n % 2 == 0 { &ai } else { &bi };
            io.to(["r", w_room.as_str()]).emit("n", &n).unwrap();
            n += 1;
            tokio::task::yield_now().await;
        }
        n
    });
    // (value, offset) of each packet the client got.
    let mut got: Vec<(i64, (u64, u64))> = Vec::new();
    let mut offset = String::new();
    while got.len() < 20 {
        let (_, v, o) = event(&next_text(&mut c).await);
        got.push((v.as_i64().unwrap(), id(&o)));
        offset = o;
    }
    drop(c);
    assert_eq!(next_event(&mut a_events).await, format!("disconnect {sid}"));
    // A kept the session (its SET goes before what it appends next): the watcher sees a
    // mark A sends now, and 20 more counted packets go by meanwhile.
    a.io.to(w_id.as_str()).emit("mark", &0).unwrap();
    let mut marked = false;
    let mut more = 0;
    while !marked || more < 20 {
        match event(&next_text(&mut w).await).0.as_str() {
            "mark" => marked = true,
            _ if marked => more += 1,
            _ => {}
        }
    }
    let connect = format!(r#"40{{"pid":"{pid}","offset":"{offset}"}}"#);
    let (mut c, reply, before) = open(b.addr, &connect).await;
    assert_eq!(reply["sid"], sid.as_str(), "recovered: {reply}");
    let replayed = before.len();
    assert!(replayed >= 20, "{replayed} replayed");
    for t in &before {
        let (_, v, o) = event(t);
        got.push((v.as_i64().unwrap(), id(&o)));
    }
    // 20 more live, then stop; each server's end mark comes after all it sent.
    for _ in 0..20 {
        let (_, v, o) = event(&next_text(&mut c).await);
        got.push((v.as_i64().unwrap(), id(&o)));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sent = counter.await.unwrap();
    a.io.to("r").emit("end", &"a").unwrap();
    b.io.to("r").emit("end", &"b").unwrap();
    let mut ends = 0;
    while ends < 2 {
        let (e, v, o) = event(&next_text(&mut c).await);
        if e == "end" {
            ends += 1;
        } else {
            got.push((v.as_i64().unwrap(), id(&o)));
        }
    }
    // In stream order (offsets strictly increase), each value once.
    let disorder = got.windows(2).find(|p| p[0].1 >= p[1].1);
    assert_eq!(disorder, None, "offsets increase");
    let mut values: Vec<i64> = got.iter().map(|(v, _)| *v).collect();
    values.sort_unstable();
    let twice: Vec<_> = values.windows(2).filter(|p| p[0] == p[1]).collect();
    assert!(twice.is_empty(), "delivered twice: {twice:?}");
    assert_eq!(values.len() as i64, sent, "each packet once");
    assert_eq!(values, (0..sent).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_classic_adapter_every_reconnection_is_a_fresh_session() {
    let port = free_port();
    let _redis = Redis::start(port);
    let url = format!("redis://127.0.0.1:{port}");
    let classic = RedisAdapterConfig {
        command_timeout: WAIT,
        ..RedisAdapterConfig::default()
    };
    let (a, mut a_events) = node(&url, classic.clone()).await;
    let (b, mut b_events) = node(&url, classic).await;
    let (mut c, reply, _) = open(a.addr, r#"40{"room":"r"}"#).await;
    let sid = reply["sid"].as_str().unwrap().to_owned();
    // As Node: a pid is sent (the server has recovery on)...
    let pid = reply["pid"].as_str().expect("a pid").to_owned();
    next_event(&mut a_events).await;
    // ...but broadcasts carry no offset (Node's classic adapter adds none).
    b.io.emit("n", &1).unwrap();
    assert_eq!(next_text(&mut c).await, r#"42["n",1]"#);
    drop(c);
    assert_eq!(next_event(&mut a_events).await, format!("disconnect {sid}"));
    // ...and a session is never restored, on another server or on the same one.
    for (addr, events) in [(b.addr, &mut b_events), (a.addr, &mut a_events)] {
        let connect = format!(r#"40{{"pid":"{pid}","offset":"1-0"}}"#);
        let (_c, reply, before) = open(addr, &connect).await;
        assert_ne!(reply["sid"], sid.as_str(), "{reply}");
        assert!(reply["pid"].is_string() && reply["pid"] != pid.as_str());
        assert!(before.is_empty(), "{before:?}");
        let e = next_event(events).await;
        assert!(e.ends_with(" false"), "{e}");
    }
}
