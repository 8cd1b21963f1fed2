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
                socket.on("shout", |socket: Socket, args: RawArgs| async move {
                    socket
                        .nsp()
                        .emit_args("shouted", args)
                        .expect("broadcast shouted");
                });
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
        out.events("broadcast"),
        vec![json!({"event": "broadcast", "received": 2})]
    );
    assert_eq!(
        out.events("burst"),
        vec![json!({"event": "burst", "received": 300, "recorded": 300})]
    );
    assert_eq!(
        out.events("big"),
        vec![json!({"event": "big", "len": 1_000_000, "same": true})]
    );
    // Server -> client acks, on both namespaces (and from the second client of "/").
    let mut answers = Vec::new();
    for _ in 0..3 {
        let a = seen.wait("answer").await;
        answers.push(a);
    }
    answers.sort_by_key(|a| a["nsp"].as_str().unwrap_or_default().to_owned());
    assert_eq!(
        answers,
        vec![
            json!({"kind": "answer", "nsp": "/", "reply": {"answer": "q? yes", "from": "/"}}),
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

/// A raw WebSocket client speaking MessagePack packets, built with Volley's own encoder.
mod raw {
    use std::net::SocketAddr;
    use std::time::Duration;

    use futures_util::{SinkExt, StreamExt};
    use tokio::net::TcpStream;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};
    use volley::Parser;
    use volley_core::EncodedFrame;
    use volley_proto::socket::{DecodeLimits, Packet, PacketData};

    const FRAME_WAIT: Duration = Duration::from_secs(30);

    pub(super) struct Raw {
        ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
        pub(super) id: String,
    }

    fn bytes(f: EncodedFrame) -> Vec<u8> {
        match f {
            EncodedFrame::Binary(b) => b.to_vec(),
            EncodedFrame::Text(t) => panic!("a text frame from the msgpack encoder: {t:?}"),
        }
    }

    impl Raw {
        /// Opens a WebSocket session and joins "/".
        pub(super) async fn connect(addr: SocketAddr) -> Self {
            let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
            let (ws, _) = tokio::time::timeout(FRAME_WAIT, connect_async(url))
                .await
                .expect("WebSocket handshake in time")
                .expect("WebSocket handshake");
            let mut raw = Self {
                ws,
                id: String::new(),
            };
            let open = raw.next().await.expect("open packet");
            assert!(
                matches!(&open, Message::Text(t) if t.starts_with("0{")),
                "{open:?}"
            );
            raw.send(bytes(Parser::MsgPack.connect("/", None).first_frame()))
                .await;
            let p = raw.packet().await;
            let PacketData::Json(sid) = p.data else {
                panic!("CONNECT answer: {p:?}")
            };
            let sid: serde_json::Value = serde_json::from_slice(&sid).expect("CONNECT payload");
            raw.id = sid["sid"].as_str().expect("sid").to_owned();
            raw
        }

        pub(super) async fn send(&mut self, data: Vec<u8>) {
            self.ws.send(Message::binary(data)).await.expect("send");
        }

        pub(super) async fn send_text(&mut self, text: &str) {
            self.ws.send(Message::text(text)).await.expect("send");
        }

        /// The next frame, answering pings; `None` once closed.
        async fn next(&mut self) -> Option<Message> {
            loop {
                let msg = tokio::time::timeout(FRAME_WAIT, self.ws.next())
                    .await
                    .unwrap_or_else(|_| panic!("no frame within {FRAME_WAIT:?}"));
                match msg {
                    Some(Ok(Message::Text(t))) if t.as_str() == "2" => {
                        self.ws.send(Message::text("3")).await.expect("pong");
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(m)) => return Some(m),
                }
            }
        }

        /// The next Socket.IO packet.
        pub(super) async fn packet(&mut self) -> Packet {
            match self.next().await {
                Some(Message::Binary(b)) => Parser::MsgPack
                    .decoder(DecodeLimits::default())
                    .binary(b)
                    .expect("a msgpack packet")
                    .expect("a whole packet"),
                other => panic!("expected a binary frame, got {other:?}"),
            }
        }

        /// Emits "echo" with `arg` and expects it back (as an ack) unchanged.
        pub(super) async fn echo(&mut self, arg: &str) {
            let e = Parser::MsgPack
                .event("/", "echo", &volley::One(&arg), Some(1))
                .expect("encode");
            self.send(bytes(e.first_frame())).await;
            let p = self.packet().await;
            assert_eq!(p.id, Some(1), "{p:?}");
            let PacketData::Ack { args } = p.data else {
                panic!("ack expected: {p:?}")
            };
            let raw = volley::RawArgs::with_parser(Parser::MsgPack, args, vec![]);
            assert_eq!(raw.parse::<String>().expect("a string"), arg);
        }

        /// Reads until the server closes; only an Engine.IO close packet may come first.
        pub(super) async fn closed(&mut self) {
            while let Some(m) = self.next().await {
                assert!(matches!(&m, Message::Text(t) if t.as_str() == "1"), "{m:?}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_msgpack_closes_only_its_connection() {
    let io = SocketIo::builder()
        .parser(Parser::MsgPack)
        .max_payload(2_000_000)
        .build();
    let (obs, mut seen) = observer();
    io.of("/").on_connection(move |socket: Socket| {
        let obs = obs.clone();
        async move {
            socket.on(
                "echo",
                |_: Socket, args: RawArgs, ack: AckSender| async move {
                    ack.send_args(args).expect("ack echo");
                },
            );
            socket.on_disconnect(move |socket: Socket, reason: volley::DisconnectReason| {
                let obs = obs.clone();
                async move {
                    obs.send(
                        json!({"kind": "disconnect", "id": socket.id(), "reason": reason.as_str()}),
                    );
                }
            });
        }
    });
    let server = serve(io).await;
    let mut bystander = raw::Raw::connect(server.addr).await;
    bystander.echo("before").await;
    // Over maxPayload (2,000,000 here): the engine refuses the frame.
    let big = Parser::MsgPack
        .event(
            "/",
            "echo",
            &volley::One(&Bytes::from(vec![0u8; 2_000_001])),
            None,
        )
        .expect("encode");
    let big = big.msgpack_frame().expect("a msgpack frame").to_vec();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("not a map", vec![0xc0]),
        ("never-used byte", vec![0xc1]),
        (
            "truncated",
            vec![0x83, 0xa4, b't', b'y', b'p', b'e', 0x02, 0xa4],
        ),
        (
            "type 5",
            [
                &[0x82, 0xa4][..],
                b"type",
                &[0x05, 0xa3],
                b"nsp",
                &[0xa1, b'/'],
            ]
            .concat(),
        ),
        (
            "huge array",
            [
                &[0x83, 0xa4][..],
                b"type",
                &[0x02, 0xa4],
                b"data",
                &[0xdd, 0x7f, 0xff, 0xff, 0xff, 0xa3],
                b"nsp",
                &[0xa1, b'/'],
            ]
            .concat(),
        ),
        ("too big", big),
    ];
    for (what, frame) in cases {
        let mut victim = raw::Raw::connect(server.addr).await;
        victim.echo("alive").await;
        victim.send(frame).await;
        victim.closed().await;
        let d = loop {
            let d = seen.wait("disconnect").await;
            if d["id"] == victim.id.as_str() {
                break d;
            }
        };
        if what != "too big" {
            assert_eq!(
                d["reason"],
                volley::DisconnectReason::ParseError.as_str(),
                "{what}: {d}"
            );
        }
        bystander.echo(&format!("after {what}")).await;
    }
    // A text frame is no msgpack packet.
    let mut victim = raw::Raw::connect(server.addr).await;
    victim.send_text(r#"42["echo","x"]"#).await;
    victim.closed().await;
    bystander.echo("after text").await;
}
