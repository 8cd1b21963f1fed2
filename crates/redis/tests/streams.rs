//! The streams mode (`@socket.io/redis-streams-adapter` 0.3.1) between two Volley servers on
//! a redis-server the test starts: broadcasts (all, room, except) and socketsJoin and
//! disconnectSockets through the stream, fetchSockets, serverSideEmit and broadcasts with
//! acknowledgements over pub/sub, server count; the reader resuming after a Redis restart;
//! sessions kept in Redis and restored with the packets they missed.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Client, Redis, WAIT, adapter_stats, connect_client, free_port, next_text};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message as Ws;
use volley::{RawArgs, SocketIo};
use volley_core::adapter::{BroadcastOptions, BroadcastPacket, ConnectionStateRecovery, Session};
use volley_redis::{RedisAdapterConfig, RedisCluster, StreamsConfig};

fn config() -> RedisAdapterConfig {
    RedisAdapterConfig {
        // Generous: a busy machine must not look like a dead Redis.
        command_timeout: WAIT,
        max_backoff: Duration::from_millis(200),
        ..RedisAdapterConfig::streams()
    }
}

struct Node {
    cluster: RedisCluster,
    io: SocketIo,
    addr: std::net::SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

/// A server whose clients join `room`, answering the server event `ping` with `name`.
async fn node(
    url: &str,
    config: RedisAdapterConfig,
    name: &'static str,
    room: &'static str,
) -> Node {
    node_with(url, config, name, room, None).await
}

/// The same, with the server's connection state recovery settings.
async fn node_with(
    url: &str,
    config: RedisAdapterConfig,
    name: &'static str,
    room: &'static str,
    recovery: Option<ConnectionStateRecovery>,
) -> Node {
    let cluster = RedisCluster::connect(url, config).await.expect("connects");
    let mut builder = SocketIo::builder().adapter(cluster.factory());
    if let Some(recovery) = recovery {
        builder = builder.connection_state_recovery(recovery);
    }
    let io = builder.build();
    io.of("/")
        .on_connection(move |s: volley::Socket| async move {
            s.join(room);
        });
    io.of("/")
        .on_server_event("ping", move |_: RawArgs, ack| async move {
            if let Some(ack) = ack {
                let _ = ack.send(name);
            }
        });
    cluster.ready(WAIT).await.expect("subscribed and reading");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = io.service();
    let server = tokio::spawn(async move {
        let _ = volley::serve(listener, service).await;
    });
    Node {
        cluster,
        io,
        addr,
        server,
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.server.abort();
        self.cluster.close();
    }
}

/// Answers the acknowledgement request in `text` (`42<id>[...]` or `43`...) with `answer`.
async fn answer(ws: &mut Client, text: &str, answer: &str) {
    let id: String = text[2..].chars().take_while(char::is_ascii_digit).collect();
    assert!(!id.is_empty(), "no ack id in {text}");
    ws.send(Ws::text(format!(r#"43{id}["{answer}"]"#)))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_streams_nodes_share_broadcasts_rooms_and_requests() {
    let port = free_port();
    let _redis = Redis::start(port);
    let url = format!("redis://127.0.0.1:{port}");
    let a = node(&url, config(), "a", "ra").await;
    let b = node(&url, config(), "b", "rb").await;
    assert_eq!(a.io.server_count().await.unwrap(), 2);
    assert_eq!(b.io.server_count().await.unwrap(), 2);
    let mut a1 = connect_client(a.addr).await;
    let mut b1 = connect_client(b.addr).await;

    // Through the stream, in order: to all, to a room, except a room.
    a.io.emit("all", &1).unwrap();
    a.io.to("rb").emit("room", &2).unwrap();
    a.io.except("rb").emit("except", &3).unwrap();
    a.io.emit("after", &4).unwrap();
    assert_eq!(next_text(&mut a1).await, r#"42["all",1]"#);
    assert_eq!(next_text(&mut a1).await, r#"42["except",3]"#);
    assert_eq!(next_text(&mut a1).await, r#"42["after",4]"#);
    assert_eq!(next_text(&mut b1).await, r#"42["all",1]"#);
    assert_eq!(next_text(&mut b1).await, r#"42["room",2]"#);
    assert_eq!(next_text(&mut b1).await, r#"42["after",4]"#);

    // fetchSockets over pub/sub: both servers' sockets, with their rooms.
    let sockets = a.io.fetch_sockets().await.unwrap();
    assert_eq!(sockets.len(), 2, "{sockets:?}");

    // serverSideEmit with an acknowledgement: the other server answers.
    let answers =
        a.io.of("/")
            .server_side_emit_with_ack::<String>("ping", (), WAIT)
            .await
            .unwrap()
            .collect_all()
            .await;
    let answers: Vec<_> = answers.into_iter().map(|r| r.result.unwrap()).collect();
    assert_eq!(answers, ["b"]);

    // A broadcast with acknowledgements reaches both clients; both answers come back.
    let mut acks = a.io.timeout(WAIT).emit_with_ack::<String, _>("ask", "q");
    let ask_a = next_text(&mut a1).await;
    let ask_b = next_text(&mut b1).await;
    assert!(ask_a.ends_with(r#"["ask","q"]"#), "{ask_a}");
    assert!(ask_b.ends_with(r#"["ask","q"]"#), "{ask_b}");
    answer(&mut a1, &ask_a, "from-a1").await;
    answer(&mut b1, &ask_b, "from-b1").await;
    let mut got = Vec::new();
    for _ in 0..2 {
        let r = tokio::time::timeout(WAIT, acks.next())
            .await
            .expect("an answer")
            .expect("not over");
        got.push(r.result.unwrap());
    }
    got.sort();
    assert_eq!(got, ["from-a1", "from-b1"]);

    // socketsJoin then a broadcast to the new room: both through the stream, in order.
    a.io.to("rb").sockets_join("joined");
    a.io.to("joined").emit("joined", &5).unwrap();
    assert_eq!(next_text(&mut b1).await, r#"42["joined",5]"#);

    // disconnectSockets through the stream.
    a.io.to("rb").disconnect_sockets(false);
    assert_eq!(next_text(&mut b1).await, "41");
    a.io.emit("still", &6).unwrap();
    assert_eq!(next_text(&mut a1).await, r#"42["still",6]"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reader_resumes_from_its_last_id_after_a_redis_restart() {
    let port = free_port();
    let redis = Redis::start(port);
    let url = format!("redis://127.0.0.1:{port}");
    let a = node(&url, config(), "a", "ra").await;
    let b = node(&url, config(), "b", "rb").await;
    let mut b1 = connect_client(b.addr).await;
    a.io.emit("before", &1).unwrap();
    assert_eq!(next_text(&mut b1).await, r#"42["before",1]"#);

    drop(redis);
    let _redis = Redis::start(port);
    // An entry written as soon as Redis is back, by a writer of its own (as
    // `@socket.io/redis-streams-emitter` would), whether or not the servers reconnected yet;
    // with an id older than the last one read (a clock behind, say): the stream restarted
    // empty, so the reader reads it from its start.
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let data =
        r#"{"packet":{"type":2,"data":["back",2]},"opts":{"rooms":[],"except":[],"flags":{}}}"#;
    let _: String = redis::cmd("XADD")
        .arg("socket.io")
        .arg("1-1")
        .arg("uid")
        .arg("emitter")
        .arg("nsp")
        .arg("/")
        .arg("type")
        .arg("3")
        .arg("data")
        .arg(data)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(next_text(&mut b1).await, r#"42["back",2]"#);
    // And the servers' own traffic flows again.
    a.cluster.ready(WAIT).await.unwrap();
    b.cluster.ready(WAIT).await.unwrap();
    a.io.emit("again", &3).unwrap();
    assert_eq!(next_text(&mut b1).await, r#"42["again",3]"#);
}

/// The entry ids in an XREAD reply (the only `<digits>-<digits>` strings in it).
fn entry_ids(v: &redis::Value) -> Vec<String> {
    match v {
        redis::Value::BulkString(b) => std::str::from_utf8(b)
            .ok()
            .filter(|s| volley_redis::message::parse_entry_id(s).is_some())
            .map(|s| vec![s.to_owned()])
            .unwrap_or_default(),
        redis::Value::Array(a) => a.iter().flat_map(entry_ids).collect(),
        redis::Value::Map(m) => m
            .iter()
            .flat_map(|(k, v)| [entry_ids(k), entry_ids(v)].concat())
            .collect(),
        _ => Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_kept_in_redis_and_restored_with_their_missed_packets() {
    let port = free_port();
    let _redis = Redis::start(port);
    let url = format!("redis://127.0.0.1:{port}");
    let ttl = Duration::from_secs(60);
    let recovery = ConnectionStateRecovery::default().max_disconnection_duration(ttl);
    let a = node_with(&url, config(), "a", "ra", Some(recovery)).await;
    let adapter = Arc::clone(a.io.of("/").adapter());
    // A client on the node: what reaches it tells how far the node's stream reader got.
    let mut watcher = connect_client(a.addr).await;
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    // Reads the stream after `from` until `n` entries came: XREAD BLOCK is the signal.
    let mut read = async |from: &str, n: usize| -> Vec<String> {
        let mut ids = Vec::new();
        let mut from = from.to_owned();
        while ids.len() < n {
            let reply: redis::Value = redis::cmd("XREAD")
                .arg("BLOCK")
                .arg(WAIT.as_millis() as u64)
                .arg("STREAMS")
                .arg("socket.io")
                .arg(&from)
                .query_async(&mut conn)
                .await
                .unwrap();
            assert!(
                !matches!(reply, redis::Value::Nil),
                "no entry within {WAIT:?}"
            );
            for id in entry_ids(&reply) {
                if !ids.contains(&id) {
                    from.clone_from(&id);
                    ids.push(id);
                }
            }
        }
        ids
    };
    let packet =
        |event: &str| BroadcastPacket::from_parts(format!(r#"2["{event}"]"#).as_bytes(), vec![]);
    let to = |rooms: &[&str], except: &[&str]| BroadcastOptions {
        rooms: rooms.iter().map(|r| (*r).into()).collect(),
        except: except.iter().map(|r| (*r).into()).collect(),
        ..Default::default()
    };

    adapter.broadcast(&packet("seen"), &to(&[], &[]));
    let offset = read("0-0", 1).await.remove(0);
    adapter
        .persist_session(Session {
            id: "sid1".into(),
            pid: "pid1".into(),
            rooms: vec!["sid1".into(), "r1".into()],
            data: serde_json::json!({"user": 7}),
            missed_packets: Vec::new(),
        })
        .unwrap();
    adapter.broadcast(&packet("to-r1"), &to(&["r1"], &[]));
    adapter.broadcast(&packet("to-r2"), &to(&["r2"], &[]));
    adapter.broadcast(&packet("except-r1"), &to(&[], &["r1"]));
    adapter.broadcast(&packet("to-all"), &to(&[], &[]));
    let ids = read(&offset, 4).await;
    // The SET went before those broadcasts, on the same connection.
    let pttl: i64 = redis::cmd("PTTL")
        .arg("sio:session:pid1")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(pttl > 0 && pttl <= ttl.as_millis() as i64, "{pttl}");

    // A restore replays what the node's reader has delivered: wait until it delivered the
    // last broadcast (to everyone, so to the watcher too).
    while !next_text(&mut watcher).await.contains("to-all") {}
    assert_eq!(
        adapter.restore_session("pid1", "nonsense").await.unwrap(),
        None
    );
    let session = adapter
        .restore_session("pid1", &offset)
        .await
        .unwrap()
        .expect("the session");
    assert_eq!(&*session.id, "sid1");
    assert_eq!(session.data, serde_json::json!({"user": 7}));
    let texts: Vec<String> = session
        .missed_packets
        .iter()
        .map(|p| String::from_utf8(p.text().to_vec()).unwrap())
        .collect();
    assert_eq!(
        texts,
        [
            format!(r#"2["to-r1","{}"]"#, ids[0]),
            format!(r#"2["to-all","{}"]"#, ids[3]),
        ]
    );
    // Taken: a second restore finds nothing.
    assert_eq!(
        adapter.restore_session("pid1", &offset).await.unwrap(),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_node_kept_is_restored_with_the_packets_node_would_send() {
    // What Node's redis-streams-adapter 0.3.1 wrote (e2e/interop/scripts/capture-streams.mjs),
    // put back into a fresh Redis with the same entry ids.
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/streams-node-capture.json");
    let capture: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let port = free_port();
    let _redis = Redis::start(port);
    let url = format!("redis://127.0.0.1:{port}");
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    for e in capture["entries"].as_array().unwrap() {
        let mut cmd = redis::cmd("XADD");
        cmd.arg("socket.io").arg(e["id"].as_str().unwrap());
        for kv in e["fields"].as_array().unwrap() {
            cmd.arg(kv[0].as_str().unwrap())
                .arg(kv[1].as_str().unwrap());
        }
        let _: String = cmd.query_async(&mut conn).await.unwrap();
    }
    let _: () = redis::cmd("SET")
        .arg(capture["session"]["key"].as_str().unwrap())
        .arg(capture["session"]["value"].as_str().unwrap())
        .query_async(&mut conn)
        .await
        .unwrap();

    let recovery = Some(ConnectionStateRecovery::default());
    let a = node_with(&url, config(), "a", "ra", recovery).await;
    let pid = capture["client"]["pid"].as_str().unwrap();
    let offset = capture["client"]["offset"].as_str().unwrap();
    let session =
        a.io.of("/")
            .adapter()
            .restore_session(pid, offset)
            .await
            .unwrap()
            .expect("the session");
    assert_eq!(&*session.id, capture["client"]["id"].as_str().unwrap());
    let ids: Vec<&str> = capture["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    // missed1 (to room1), not missed2 (except room1), missed3 (binary, to all): each with
    // its entry id last, as Node's restoreSession gives them.
    let texts: Vec<String> = session
        .missed_packets
        .iter()
        .map(|p| String::from_utf8(p.text().to_vec()).unwrap())
        .collect();
    assert_eq!(
        texts,
        [
            format!(r#"2["missed1","x","{}"]"#, ids[9]),
            format!(
                r#"51-["missed3",{{"_placeholder":true,"num":0}},"{}"]"#,
                ids[11]
            ),
        ]
    );
    assert_eq!(&session.missed_packets[1].attachments()[0][..], [4]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_recovery_broadcasts_carry_their_stream_offset_everywhere() {
    let port = free_port();
    let _redis = Redis::start(port);
    let url = format!("redis://127.0.0.1:{port}");
    let recovery = Some(ConnectionStateRecovery::default());
    let a = node_with(&url, config(), "a", "ra", recovery).await;
    let b = node_with(&url, config(), "b", "rb", recovery).await;
    let mut a1 = connect_client(a.addr).await;
    let mut b1 = connect_client(b.addr).await;

    a.io.emit("e", &1).unwrap();
    a.io.emit("f", &2).unwrap();
    let offset = |text: &str, prefix: &str| -> String {
        let rest = text
            .strip_prefix(prefix)
            .unwrap_or_else(|| panic!("{text}"));
        let id = rest.trim_end_matches("\"]").to_owned();
        assert!(
            volley_redis::message::parse_entry_id(&id).is_some(),
            "{text}"
        );
        id
    };
    // The sender's own clients get the offset too, in order.
    let a_e = offset(&next_text(&mut a1).await, r#"42["e",1,""#);
    let a_f = offset(&next_text(&mut a1).await, r#"42["f",2,""#);
    let b_e = offset(&next_text(&mut b1).await, r#"42["e",1,""#);
    let b_f = offset(&next_text(&mut b1).await, r#"42["f",2,""#);
    assert_eq!((&a_e, &a_f), (&b_e, &b_f));
    let id = |s: &str| volley_redis::message::parse_entry_id(s).unwrap();
    assert!(id(&a_e) < id(&a_f), "{a_e} then {a_f}");
    // Volatile broadcasts are not kept for recovery: no offset.
    a.io.volatile().emit("v", &3).unwrap();
    assert_eq!(next_text(&mut a1).await, r#"42["v",3]"#);
    assert_eq!(next_text(&mut b1).await, r#"42["v",3]"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_behind_waits_instead_of_dropping() {
    let port = free_port();
    let _redis = Redis::start(port);
    let url = format!("redis://127.0.0.1:{port}");
    // A one-message processing queue and small reads: the reader must wait for room.
    let config = RedisAdapterConfig {
        incoming_capacity: 1,
        streams: StreamsConfig {
            read_count: 3,
            ..StreamsConfig::default()
        },
        ..config()
    };
    let b = node(&url, config, "b", "rb").await;
    let mut b1 = connect_client(b.addr).await;
    // 300 entries in one pipeline, from a writer of its own.
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut pipe = redis::pipe();
    for i in 0..300 {
        let data = format!(
            r#"{{"packet":{{"type":2,"data":["n",{i}]}},"opts":{{"rooms":[],"except":[],"flags":{{}}}}}}"#
        );
        pipe.cmd("XADD")
            .arg("socket.io")
            .arg("*")
            .arg("uid")
            .arg("emitter")
            .arg("nsp")
            .arg("/")
            .arg("type")
            .arg("3")
            .arg("data")
            .arg(data)
            .ignore();
    }
    let () = pipe.query_async(&mut conn).await.unwrap();
    for i in 0..300 {
        assert_eq!(next_text(&mut b1).await, format!(r#"42["n",{i}]"#));
        // The server's metrics see the link up (its reader reading) and the entries read
        // but not yet applied, never more than the queue holds.
        let link = adapter_stats(&b.io);
        assert_eq!(link.link_up, Some(true));
        assert!(link.incoming_backlog <= 1, "{link:?}");
    }
    assert_eq!(b.cluster.stats().dropped_incoming, 0);
    assert_eq!(adapter_stats(&b.io).dropped_incoming_total, 0);
}
