//! The official `socket.io-client` 4.8 with `socket.io-msgpack-parser` 3.0.2 against an
//! in-process Volley server built with `Parser::MsgPack`, over polling, WebSocket and the
//! upgrade (`e2e/interop/scripts/sio-msgpack.mjs` documents the handlers and checks).

mod sio;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use volley::{AckSender, Data, Parser, RawArgs, Socket, SocketIo};
use volley_test_support::{NodeOutput, run_node};

use sio::{observer, serve, str_of};

/// The script gives up after 20 s by itself; this only bounds a hung Node.
const DEADLINE: Duration = Duration::from_secs(60);

#[derive(Serialize, Deserialize, Debug)]
struct Nested {
    x: Vec<Bytes>,
}

/// The 1,000,000 bytes of the "big" payload: the LCG of the script's `bigPayload`.
fn big_payload(n: usize) -> Vec<u8> {
    let mut x: u32 = 12345;
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(1103515245).wrapping_add(12345);
            (x >> 24) as u8
        })
        .collect()
}

fn msgpack_server() -> (SocketIo, sio::Observer) {
    let (obs, seen) = observer();
    // 1,000,000 bytes plus framing (and base64 over polling) exceed the default limit.
    let io = SocketIo::builder()
        .parser(Parser::MsgPack)
        .max_payload(2_000_000)
        .build();
    for nsp in ["/", "/custom"] {
        let obs = obs.clone();
        io.of(nsp).on_connection(move |socket: Socket| {
            let obs = obs.clone();
            async move {
                let auth = socket.handshake().auth().clone();
                let welcome = json!({"nsp": socket.namespace(), "auth": auth});
                socket.emit("welcome", &welcome).expect("welcome");
                let nested = Nested {
                    x: vec![Bytes::from_static(&[4, 5])],
                };
                socket
                    .emit_args("kinds", (1, 1.5, -3, "héllo ✓ 🎉", None::<u8>, nested))
                    .expect("kinds");
                socket.on(
                    "echo",
                    |_: Socket, args: RawArgs, ack: AckSender| async move {
                        ack.send_args(args).expect("ack echo");
                    },
                );
                socket.on(
                    "check",
                    |_: Socket, args: RawArgs, ack: AckSender| async move {
                        let v = |i| args.get::<Value>(i).and_then(Result::ok);
                        let (a, b, c) = (v(0), v(1), v(2));
                        let ints = [&a, &c]
                            .iter()
                            .all(|x| x.as_ref().is_some_and(Value::is_u64));
                        let floats = b.as_ref().is_some_and(Value::is_f64);
                        let bin = args.get::<Bytes>(5).and_then(Result::ok);
                        let seen = json!({
                            "ints": ints,
                            "floats": floats,
                            "values": [a, b, c],
                            "text": v(3),
                            "nil": v(4),
                            "bin": bin.map(|b| b.to_vec()),
                        });
                        ack.send(&seen).expect("ack check");
                    },
                );
                socket.on("burst", |socket: Socket, Data(n): Data<u32>| async move {
                    for i in 0..n {
                        socket.emit("n", &i).expect("emit n");
                    }
                });
                let recorded = Arc::new(Mutex::new(Vec::<u32>::new()));
                let r = recorded.clone();
                socket.on("seq", move |_: Socket, Data(i): Data<u32>| {
                    r.lock().unwrap().push(i);
                    async {}
                });
                socket.on("seq-done", move |_: Socket, _: RawArgs, ack: AckSender| {
                    let list = recorded.lock().unwrap().clone();
                    async move { ack.send(&list).expect("ack seq-done") }
                });
                socket.on(
                    "big",
                    |socket: Socket, Data(data): Data<Bytes>, ack: AckSender| async move {
                        let exact = data[..] == big_payload(1_000_000)[..];
                        ack.send_args((data.len(), exact)).expect("ack big");
                        socket.emit("big-back", &data).expect("emit big-back");
                    },
                );
                let reply = socket
                    .emit_with_ack::<Value, _>("question", &"q?")
                    .await
                    .ok();
                obs.send(json!({"kind": "answer", "nsp": socket.namespace(), "reply": reply}));
            }
        });
    }
    (io, seen)
}

async fn run(mode: &'static str) {
    let (io, mut seen) = msgpack_server();
    let server = serve(io).await;
    let url = server.url();
    let out: NodeOutput = run_node("sio-msgpack.mjs", &[&url, mode], DEADLINE).await;
    assert!(
        out.events("error").is_empty(),
        "the script reported errors\n{out}"
    );
    out.assert_success();
    assert_eq!(out.events("done").len(), 1, "{out}");
    let final_transport = if mode == "polling" {
        "polling"
    } else {
        "websocket"
    };
    assert_eq!(
        str_of(&out.events("transport")[0], "name"),
        final_transport,
        "{out}"
    );
    let welcomes = out.events("welcome");
    assert_eq!(
        welcomes,
        vec![
            json!({"event": "welcome", "nsp": "/", "data": {"nsp": "/", "auth": {"token": "t-1", "n": 7}}}),
            json!({"event": "welcome", "nsp": "/custom", "data": {"nsp": "/custom", "auth": {"token": "t-2"}}}),
        ],
        "{out}"
    );
    assert_eq!(
        out.events("check"),
        vec![json!({"event": "check", "data": {
            "ints": true,
            "floats": true,
            "values": [1, 1.5, 1u64 << 40],
            "text": "ü",
            "nil": null,
            "bin": [7, 8],
        }})],
        "{out}"
    );
    assert_eq!(
        out.events("connect_error"),
        vec![json!({"event": "connect_error", "message": "Invalid namespace"})],
        "{out}"
    );
    assert_eq!(
        out.events("burst"),
        vec![json!({"event": "burst", "received": 300, "recorded": 300})]
    );
    assert_eq!(
        out.events("big"),
        vec![json!({"event": "big", "len": 1_000_000, "same": true})]
    );
    // Server -> client acks, on both namespaces.
    let mut answers = Vec::new();
    for _ in 0..2 {
        let a = seen.wait("answer").await;
        answers.push(a);
    }
    answers.sort_by_key(|a| a["nsp"].as_str().unwrap_or_default().to_owned());
    assert_eq!(
        answers,
        vec![
            json!({"kind": "answer", "nsp": "/", "reply": {"answer": "q? yes", "from": "/"}}),
            json!({"kind": "answer", "nsp": "/custom", "reply": {"answer": "q? yes", "from": "/custom"}}),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msgpack_polling() {
    run("polling").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msgpack_websocket() {
    run("websocket").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msgpack_upgrade() {
    run("upgrade").await
}
