//! Connection state recovery with the official `socket.io-client` 4.8 against an in-process
//! Volley server (`e2e/interop/scripts/sio-recovery.mjs`), over polling, WebSocket and the
//! upgrade: the transport is cut, broadcasts to everybody and to a room go on while the
//! client is away, and the client comes back by itself with `socket.recovered === true`,
//! the same id, its rooms, and every missed packet exactly once and in order. A manual
//! disconnect, or coming back after the window, gives a fresh session. And across two Volley
//! servers on Redis (streams mode): cut from one, recovered by the other.

mod sio;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use volley::{AckSender, ConnectionStateRecovery, Data, Parser, Socket, SocketIo};
use volley_test_support::{NodeOutput, run_node};

use sio::{Obs, observer, serve, str_of};

const SCRIPT: &str = "sio-recovery.mjs";
/// The script gives up after 20 s by itself; this only bounds a hung Node.
const DEADLINE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy)]
enum Mode {
    Polling,
    Websocket,
    Upgrade,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Self::Polling => "polling",
            Self::Websocket => "websocket",
            Self::Upgrade => "upgrade",
        }
    }
}

#[track_caller]
fn one(out: &NodeOutput, event: &str) -> Value {
    let lines = out.events(event);
    assert_eq!(lines.len(), 1, "expected one {event:?} line\n{out}");
    lines.into_iter().next().unwrap_or_default()
}

fn server(window: Duration, obs: Obs, parser: Parser) -> SocketIo {
    server_with(window, obs, parser, None, Arc::new(|| {}), "one")
}

/// The same, with an adapter, and `on_cut` run when the client leaves (before the server
/// broadcasts what it will miss).
fn server_with(
    window: Duration,
    obs: Obs,
    parser: Parser,
    adapter: Option<volley::adapter::AdapterFactory>,
    on_cut: Arc<dyn Fn() + Send + Sync>,
    name: &'static str,
) -> SocketIo {
    let mut builder = SocketIo::builder()
        .parser(parser)
        .connection_state_recovery(
            ConnectionStateRecovery::default().max_disconnection_duration(window),
        );
    if let Some(factory) = adapter {
        builder = builder.adapter(factory);
    }
    let io = builder.build();
    let io2 = io.clone();
    io.of("/").on_connection(move |s: Socket| {
        let (obs, io, on_cut) = (obs.clone(), io2.clone(), on_cut.clone());
        async move {
            let mut rooms: Vec<String> = s.rooms().iter().map(|r| r.to_string()).collect();
            rooms.sort();
            obs.send(json!({
                "kind": "connect", "id": s.id(), "recovered": s.recovered(), "rooms": rooms,
                "node": name,
            }));
            s.on(
                "join",
                |s: Socket, Data(room): Data<String>, ack: AckSender| async move {
                    s.join(room);
                    let _ = ack.send(&());
                },
            );
            let io_now = io.clone();
            s.on(
                "emit-now",
                move |_: Socket, Data(n): Data<Value>, ack: AckSender| {
                    let io = io_now.clone();
                    async move {
                        io.emit("all", &n).expect("broadcast");
                        let _ = ack.send(&());
                    }
                },
            );
            s.on_disconnect(move |s, reason| async move {
                if reason.is_recoverable() {
                    on_cut();
                    // While the client is away.
                    io.emit("all", &1).expect("broadcast");
                    io.to("r").emit("room", &2).expect("broadcast");
                    io.to("q").emit("room", &"no").expect("broadcast");
                    io.except("r").emit("all", &"no").expect("broadcast");
                    io.emit("all", &3).expect("broadcast");
                }
                obs.send(json!({"kind": "disconnect", "id": s.id(), "reason": reason.as_str()}));
            });
        }
    });
    io
}

async fn scenario(
    mode: Mode,
    name: &'static str,
    window: Duration,
    parser: Parser,
) -> (NodeOutput, sio::Observer) {
    let (obs, seen) = observer();
    let srv = serve(server(window, obs, parser)).await;
    let url = srv.url();
    let mut args = vec![url.as_str(), mode.as_str(), name];
    if parser == Parser::MsgPack {
        args.push("msgpack");
    }
    let out = run_node(SCRIPT, &args, DEADLINE).await;
    assert!(
        out.events("error").is_empty(),
        "the script reported errors\n{out}"
    );
    out.assert_success();
    one(&out, "done");
    (out, seen)
}

/// The values the client got, in order; checks every offset is there and unique.
#[track_caller]
fn values(out: &NodeOutput) -> Vec<Value> {
    let got = one(out, "got");
    let list = got["list"].as_array().cloned().unwrap_or_default();
    let mut offsets = HashSet::new();
    for item in &list {
        let off = item[2]
            .as_str()
            .unwrap_or_else(|| panic!("an event without offset: {item}\n{out}"));
        assert!(offsets.insert(off.to_owned()), "offset {off} twice\n{out}");
    }
    list.iter().map(|i| json!([i[0], i[1]])).collect()
}

async fn cut(mode: Mode) {
    cut_with(mode, Parser::Json).await
}

/// The same with the MessagePack parser on both sides (offsets appended to msgpack packets).
async fn cut_msgpack(mode: Mode) {
    cut_with(mode, Parser::MsgPack).await
}

async fn cut_with(mode: Mode, parser: Parser) {
    let (out, mut seen) = scenario(mode, "cut", Duration::from_secs(120), parser).await;
    let first = seen.wait("connect").await;
    assert_eq!(first["recovered"], false);
    let id = str_of(&first, "id").to_owned();
    let gone = seen.wait("disconnect").await;
    assert_eq!(gone["id"], json!(id));
    assert_eq!(gone["reason"], "transport close", "{out}");
    let back = seen.wait("connect").await;
    assert_eq!(back["id"], json!(id), "same id");
    assert_eq!(back["recovered"], true, "{out}");
    let mut rooms = vec![id.clone(), "r".to_owned()];
    rooms.sort();
    assert_eq!(back["rooms"], json!(rooms), "its rooms, at once");

    let connected = one(&out, "connected");
    assert_eq!(connected["recovered"], false);
    let reconnected = one(&out, "reconnected");
    assert_eq!(reconnected["recovered"], true, "{out}");
    assert_eq!(reconnected["sameId"], true, "{out}");
    assert_eq!(reconnected["id"], json!(id));
    assert_eq!(
        values(&out),
        [
            json!(["all", 0]),
            json!(["all", 1]),
            json!(["room", 2]),
            json!(["all", 3]),
            json!(["all", 4])
        ],
        "every missed packet exactly once, in order, then the new one\n{out}"
    );
}

async fn manual(mode: Mode) {
    let (out, mut seen) = scenario(mode, "manual", Duration::from_secs(120), Parser::Json).await;
    let first = seen.wait("connect").await;
    let gone = seen.wait("disconnect").await;
    assert_eq!(gone["reason"], "client namespace disconnect");
    let back = seen.wait("connect").await;
    assert_eq!(back["recovered"], false, "{out}");
    assert_ne!(back["id"], first["id"]);
    let reconnected = one(&out, "reconnected");
    assert_eq!(reconnected["recovered"], false, "{out}");
    assert_eq!(reconnected["sameId"], false, "{out}");
    assert_eq!(
        values(&out),
        [json!(["all", 0]), json!(["all", 4])],
        "{out}"
    );
}

async fn expired(mode: Mode) {
    // The client comes back after 1.5 s; the window is 300 ms.
    let (out, mut seen) = scenario(mode, "expired", Duration::from_millis(300), Parser::Json).await;
    let first = seen.wait("connect").await;
    seen.wait("disconnect").await;
    let back = seen.wait("connect").await;
    assert_eq!(back["recovered"], false, "{out}");
    assert_ne!(back["id"], first["id"]);
    let reconnected = one(&out, "reconnected");
    assert_eq!(reconnected["recovered"], false, "{out}");
    assert_eq!(
        values(&out),
        [json!(["all", 0]), json!(["all", 4])],
        "{out}"
    );
}

macro_rules! each_transport {
    ($($scenario:ident),+ $(,)?) => {$(
        mod $scenario {
            use super::Mode;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn polling() {
                super::$scenario(Mode::Polling).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn websocket() {
                super::$scenario(Mode::Websocket).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn upgrade() {
                super::$scenario(Mode::Upgrade).await
            }
        }
    )+};
}

each_transport!(cut, cut_msgpack, manual, expired);

/// Two Volley servers on Redis (streams mode), behind one address: the official client is
/// cut from server A and comes back by itself, through the same address, to server B, where
/// it is recovered with its id, its rooms and every packet it missed (broadcast by A while it
/// was away), exactly once and in order. WebSocket only: each connection is a new TCP one
/// (polling would reuse A's kept-alive connections).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_from_one_server_recovered_by_another_in_a_streams_cluster() {
    use volley_redis::{RedisAdapterConfig, RedisCluster};
    let redis = volley_test_support::RedisServer::start();
    let url = redis.url();
    let target = Arc::new(AtomicU16::new(0));
    let (obs, mut seen) = observer();
    let mut nodes = Vec::new();
    let mut ports = Vec::new();
    for name in ["a", "b"] {
        let config = RedisAdapterConfig {
            command_timeout: DEADLINE,
            ..RedisAdapterConfig::streams()
        };
        let cluster = RedisCluster::connect(&url, config).await.expect("joins");
        // A flips the proxy to B when the client leaves; B's flip changes nothing.
        let (t, b_port) = (target.clone(), Arc::new(AtomicU16::new(0)));
        let b = b_port.clone();
        let on_cut: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
            t.store(b.load(Ordering::SeqCst), Ordering::SeqCst);
        });
        let io = server_with(
            Duration::from_secs(120),
            obs.clone(),
            Parser::Json,
            Some(cluster.factory()),
            on_cut,
            name,
        );
        cluster.ready(DEADLINE).await.expect("reading");
        let srv = serve(io).await;
        ports.push((srv.addr.port(), b_port));
        nodes.push((cluster, srv));
    }
    let (a, b) = (ports[0].0, ports[1].0);
    ports[0].1.store(b, Ordering::SeqCst);
    ports[1].1.store(b, Ordering::SeqCst);
    target.store(a, Ordering::SeqCst);
    let front = volley_test_support::switching_proxy(target.clone()).await;

    let out = run_node(
        SCRIPT,
        &[&format!("http://127.0.0.1:{front}"), "websocket", "cut"],
        DEADLINE,
    )
    .await;
    assert!(out.events("error").is_empty(), "{out}");
    out.assert_success();
    let first = seen.wait("connect").await;
    assert_eq!(first["node"], "a");
    let id = str_of(&first, "id").to_owned();
    seen.wait("disconnect").await;
    let back = seen.wait("connect").await;
    assert_eq!(back["node"], "b", "{out}");
    assert_eq!(back["id"], json!(id), "same id on B");
    assert_eq!(back["recovered"], true, "{out}");
    let mut rooms = vec![id.clone(), "r".to_owned()];
    rooms.sort();
    assert_eq!(back["rooms"], json!(rooms), "its rooms, at once");
    assert_eq!(
        target.load(Ordering::SeqCst),
        b,
        "the client came back to B"
    );
    assert_eq!(
        values(&out),
        [
            json!(["all", 0]),
            json!(["all", 1]),
            json!(["room", 2]),
            json!(["all", 3]),
            json!(["all", 4])
        ],
        "every missed packet exactly once, in order, then the new one\n{out}"
    );
    for (cluster, _) in &nodes {
        cluster.close();
    }
}
