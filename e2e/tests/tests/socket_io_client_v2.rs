//! The official `socket.io-client` 2.5.0 (npm, Engine.IO v3 / Socket.IO protocol v4) against
//! an in-process Volley server built with `allow_eio3(true)`, over polling, WebSocket and the
//! upgrade; a 2.x and a 4.x client in one room; and the refusal without `allow_eio3`.
//!
//! The script is `e2e/interop/scripts/sio-client-v2.mjs`; its expectations were first run
//! against the official Node server (socket.io 4.8 with `allowEIO3: true`).

mod sio;

use std::time::Duration;

use serde_json::{Value, json};
use volley::{AckSender, ConnectError, DisconnectReason, RawArgs, Socket, SocketIo};
use volley_test_support::{NodeOutput, run_node};

use sio::{Obs, observer, serve, str_of};

const SCRIPT: &str = "sio-client-v2.mjs";
const DEADLINE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

    fn final_transport(self) -> &'static str {
        match self {
            Self::Polling => "polling",
            Self::Websocket | Self::Upgrade => "websocket",
        }
    }
}

#[track_caller]
fn one(out: &NodeOutput, event: &str) -> Value {
    let lines = out.events(event);
    assert_eq!(lines.len(), 1, "expected one {event:?} line\n{out}");
    lines.into_iter().next().unwrap_or(Value::Null)
}

#[track_caller]
fn assert_clean(out: &NodeOutput, mode: Mode) {
    assert!(
        out.events("error").is_empty(),
        "the script reported errors\n{out}"
    );
    out.assert_success();
    one(out, "done");
    for t in out.events("transport") {
        assert_eq!(str_of(&t, "name"), mode.final_transport(), "{out}");
    }
}

/// The conformance handlers (auth, message, message-with-ack, emit-with-ack) plus `kick`,
/// `join` and `room-say`, on `/` and `/custom`; connections and disconnections are reported.
fn server(obs: &Obs, allow_eio3: bool) -> SocketIo {
    let io = SocketIo::builder()
        .ping_interval(Duration::from_millis(300))
        .ping_timeout(Duration::from_millis(200))
        .allow_eio3(allow_eio3)
        .build();
    for nsp in ["/", "/custom"] {
        let obs = obs.clone();
        let handle = io.clone();
        io.of(nsp).on_connection(move |socket: Socket| {
            let obs = obs.clone();
            let io = handle.clone();
            async move {
                obs.send(json!({
                    "kind": "connect",
                    "nsp": socket.namespace(),
                    "id": socket.id().as_str(),
                }));
                let _ = socket.emit("auth", socket.handshake().auth());
                let o = obs.clone();
                socket.on_disconnect(move |socket: Socket, reason: DisconnectReason| async move {
                    o.send(json!({
                        "kind": "disconnect",
                        "nsp": socket.namespace(),
                        "reason": reason.as_str(),
                    }));
                });
                socket.on("message", |socket: Socket, args: RawArgs| async move {
                    let _ = socket.emit_args("message-back", args);
                });
                socket.on(
                    "message-with-ack",
                    |_: Socket, args: RawArgs, ack: AckSender| async move {
                        let _ = ack.send_args(args);
                    },
                );
                socket.on(
                    "emit-with-ack",
                    |socket: Socket, args: RawArgs| async move {
                        let reply = socket
                            .timeout(Duration::from_secs(5))
                            .emit_args_with_ack::<RawArgs>("emit-with-ack", args)
                            .await;
                        if let Ok(reply) = reply {
                            let _ = socket.emit_args("emit-with-ack", reply);
                        }
                    },
                );
                socket.on("kick", |socket: Socket| async move { socket.disconnect() });
                socket.on("join", |socket: Socket, ack: AckSender| async move {
                    socket.join("r");
                    let _ = ack.send(&());
                });
                socket.on("room-say", move |_: Socket, args: RawArgs| {
                    let io = io.clone();
                    async move {
                        let _ = io.to("r").emit_args("room-said", args);
                    }
                });
            }
        });
    }
    io
}

async fn main_scenario(mode: Mode) {
    let (obs, mut seen) = observer();
    let srv = serve(server(&obs, true)).await;
    let out = run_node(SCRIPT, &[&srv.url(), mode.as_str(), "main"], DEADLINE).await;
    assert_clean(&out, mode);

    // In "/" at once; ids derived from the Engine.IO id, as Node gives them.
    let root = one(&out, "root");
    assert_eq!(root["id"], root["engine_id"], "{out}");
    assert_eq!(root["auth"], json!({}));
    let custom = one(&out, "custom");
    assert_eq!(custom["same_manager"], true);
    assert_eq!(
        str_of(&custom, "id"),
        format!("/custom#{}", str_of(&root, "engine_id"))
    );
    // The namespace query is the handshake's auth.
    assert_eq!(custom["auth"], json!({"x": "y", "token": "a b"}));
    assert_eq!(
        one(&out, "message-back")["args"],
        json!([1, "2", {"3": [true]}, "é😀"])
    );
    assert_eq!(one(&out, "ack")["args"], json!([1, "2", {"3": [false]}]));
    let sa = one(&out, "server-ack");
    assert_eq!(sa["asked"], json!(["question"]));
    assert_eq!(sa["answered"], json!(["answer", {"n": 2}]));
    let bin = one(&out, "binary-back");
    assert_eq!(
        (bin["first"].clone(), bin["nested"].clone()),
        (json!("010203"), json!("040506"))
    );
    assert_eq!(
        one(&out, "binary-ack"),
        json!({"event": "binary-ack", "data": "ff00", "is_buffer": true})
    );
    assert_eq!(
        one(&out, "random-error")["error"],
        json!({"message": "Invalid namespace"})
    );
    let burst = one(&out, "burst");
    assert_eq!(
        (burst["in_order"].clone(), burst["count"].clone()),
        (json!(true), json!(300))
    );
    assert_eq!(
        str_of(&one(&out, "root-disconnect"), "reason"),
        "io server disconnect"
    );

    // What the server saw.
    let c1 = seen.wait("connect").await;
    let c2 = seen.wait("connect").await;
    assert_eq!(str_of(&c1, "nsp"), "/");
    assert_eq!(str_of(&c2, "nsp"), "/custom");
    let mut reasons = vec![seen.wait("disconnect").await, seen.wait("disconnect").await];
    reasons.sort_by_key(|r| str_of(r, "nsp").to_owned());
    assert_eq!(
        reasons,
        vec![
            json!({"kind": "disconnect", "nsp": "/", "reason": "server namespace disconnect"}),
            json!({"kind": "disconnect", "nsp": "/custom", "reason": "client namespace disconnect"}),
        ]
    );
}

async fn heartbeat(mode: Mode) {
    let (obs, mut seen) = observer();
    let srv = serve(server(&obs, true)).await;
    let out = run_node(SCRIPT, &[&srv.url(), mode.as_str(), "heartbeat"], DEADLINE).await;
    assert_clean(&out, mode);
    let hb = one(&out, "heartbeat");
    assert_eq!(hb["pongs"], 3);
    assert_eq!(hb["connected"], true);
    assert_eq!(hb["disconnected"], json!([]));
    seen.wait("connect").await;
    assert_eq!(
        str_of(&seen.wait("disconnect").await, "reason"),
        "transport close"
    );
}

async fn room(mode: Mode) {
    let (obs, _seen) = observer();
    let srv = serve(server(&obs, true)).await;
    let out = run_node(SCRIPT, &[&srv.url(), mode.as_str(), "room"], DEADLINE).await;
    assert!(out.events("error").is_empty(), "{out}");
    out.assert_success();
    let room = one(&out, "room");
    let both = json!([["from-v2", "02"], ["from-v4", "04"]]);
    assert_eq!(room["v2"], both, "{out}");
    assert_eq!(room["v4"], both, "{out}");
}

async fn refusal(mode: Mode) {
    let (obs, _seen) = observer();
    let io = server(&obs, true);
    io.of("/secret")
        .middleware(|_: Socket| async { Err(ConnectError::new("not authorized")) });
    io.of("/secret-data").middleware(|_: Socket| async {
        Err(ConnectError::new("not authorized").with_data(json!({"code": 7})))
    });
    let srv = serve(io).await;
    let out = run_node(SCRIPT, &[&srv.url(), mode.as_str(), "refusal"], DEADLINE).await;
    assert_clean(&out, mode);
    let r = one(&out, "refusal");
    assert_eq!(r["plain"], "not authorized", "{out}");
    assert_eq!(r["with_data"], json!({"code": 7}), "{out}");
    assert_eq!(r["root_connected"], true, "{out}");
}

async fn refused(mode: Mode) {
    let (obs, mut seen) = observer();
    let srv = serve(server(&obs, false)).await;
    let out = run_node(SCRIPT, &[&srv.url(), mode.as_str(), "refused"], DEADLINE).await;
    assert!(out.events("error").is_empty(), "{out}");
    out.assert_success();
    let refusal = one(&out, "refused");
    if mode == Mode::Polling {
        assert_eq!(refusal["status"], 400, "{out}");
    }
    assert!(
        seen.wait_within("connect", Duration::from_millis(200))
            .await
            .is_none()
    );
    // The exact refusal Node gives (engine.io `UNSUPPORTED_PROTOCOL_VERSION`).
    let res = reqwest_like_get(&format!("{}/socket.io/?EIO=3&transport=polling", srv.url())).await;
    assert_eq!(
        res,
        (
            400,
            r#"{"code":5,"message":"Unsupported protocol version"}"#.to_owned()
        )
    );
}

/// A bare HTTP/1.1 GET over a TCP stream: status and body.
async fn reqwest_like_get(url: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_once('/').expect("a path");
    let mut s = tokio::net::TcpStream::connect(host).await.expect("connect");
    let req = format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.expect("read");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text[9..12].parse().expect("status");
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
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

each_transport!(main_scenario, heartbeat, room, refusal, refused);
