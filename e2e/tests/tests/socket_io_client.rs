//! The official `socket.io-client` (npm) against an in-process Volley server.
//!
//! Each scenario builds a server with `volley::SocketIo::builder()`, serves it on a free
//! loopback port and runs `e2e/interop/scripts/sio-client.mjs <url> <mode> <scenario>`,
//! which reports what the client saw as JSON lines; what the server saw comes into the test
//! through a channel (`sio::Observer`). Every scenario runs three times: over polling only,
//! over WebSocket only, and with the default upgrade from polling to WebSocket (the script
//! waits for the upgrade and reports the transport it ended on).

mod sio;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinHandle};
use volley::{
    AckError, AckSender, ConnectError, Data, DisconnectReason, RawArgs, Socket, SocketIo,
};
use volley_test_support::{NodeOutput, run_node};

use sio::{Obs, Server, observer, serve, str_of};

const SCRIPT: &str = "sio-client.mjs";
/// The script gives up after 20 s by itself; this only bounds a hung Node.
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

    /// The transport the client must end on.
    fn final_transport(self) -> &'static str {
        match self {
            Self::Polling => "polling",
            Self::Websocket | Self::Upgrade => "websocket",
        }
    }
}

/// Starts the script; the test can act on server reports while it runs.
fn start_script(url: String, mode: Mode, scenario: &'static str) -> JoinHandle<NodeOutput> {
    tokio::spawn(async move { run_node(SCRIPT, &[&url, mode.as_str(), scenario], DEADLINE).await })
}

/// Waits for the script to end. A panic in it (timeout, no Node) is the test's panic.
async fn finish(script: JoinHandle<NodeOutput>) -> NodeOutput {
    match script.await {
        Ok(out) => out,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("script task failed: {e}"),
    }
}

async fn run_script(server: &Server, mode: Mode, scenario: &'static str) -> NodeOutput {
    finish(start_script(server.url(), mode, scenario)).await
}

/// The one line of `event`, or a panic showing the whole output.
#[track_caller]
fn one(out: &NodeOutput, event: &str) -> Value {
    let lines = out.events(event);
    assert_eq!(lines.len(), 1, "expected one {event:?} line\n{out}");
    lines.into_iter().next().unwrap_or_default()
}

/// The script ran to its end, reported no error, and the transport was the mode's.
#[track_caller]
fn assert_clean(out: &NodeOutput, mode: Mode) {
    assert!(
        out.events("error").is_empty(),
        "the script reported errors\n{out}"
    );
    out.assert_success();
    one(out, "done");
    let transports = out.events("transport");
    assert!(!transports.is_empty(), "no transport line\n{out}");
    for t in transports {
        assert_eq!(str_of(&t, "name"), mode.final_transport(), "{out}");
    }
}

/// Three tests per scenario: `<scenario>::polling`, `::websocket` and `::upgrade`.
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

each_transport!(
    namespaces,
    auth,
    events,
    acks,
    binary,
    big_binary,
    unicode,
    client_disconnect,
    server_disconnect,
    reconnect,
);

/// Written out: its polling variant once failed because the close packet shared the payload
/// of the DISCONNECT packets (the client then reported "transport close").
mod server_disconnect_all {
    use super::Mode;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn polling() {
        super::server_disconnect_all(Mode::Polling).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn websocket() {
        super::server_disconnect_all(Mode::Websocket).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn upgrade() {
        super::server_disconnect_all(Mode::Upgrade).await
    }
}

// ---------------------------------------------------------------------------------------
// 1. Namespaces multiplexed on one connection
// ---------------------------------------------------------------------------------------

async fn namespaces(mode: Mode) {
    let (obs, mut seen) = observer();
    let io = SocketIo::builder().build();
    for nsp in ["/", "/chat"] {
        let obs = obs.clone();
        let counter = io.clone();
        io.of(nsp).on_connection(move |socket: Socket| {
            let obs = obs.clone();
            let connections = counter.connection_count();
            async move {
                obs.send(json!({
                    "kind": "connect",
                    "nsp": socket.namespace(),
                    "id": socket.id(),
                    "connections": connections,
                }));
                socket
                    .emit(
                        "welcome",
                        &json!({"nsp": socket.namespace(), "id": socket.id()}),
                    )
                    .expect("emit welcome");
                socket.on(
                    "which",
                    |socket: Socket, _: RawArgs, ack: AckSender| async move {
                        ack.send(socket.namespace()).expect("ack which");
                    },
                );
            }
        });
    }
    let server = serve(io).await;
    let out = run_script(&server, mode, "namespaces").await;
    assert_clean(&out, mode);

    assert_eq!(
        one(&out, "manager")["shared"],
        true,
        "io(url) and io(url/chat) share a Manager\n{out}"
    );
    assert_eq!(one(&out, "engine")["same"], true, "{out}");
    let client: Vec<Value> = out.events("connect");
    assert_eq!(client.len(), 2, "{out}");
    // Server reports come in the order the CONNECTs were handled.
    let server_side = [seen.wait("connect").await, seen.wait("connect").await];
    for line in &client {
        let nsp = str_of(line, "nsp");
        let id = str_of(line, "id");
        let reports: Vec<&Value> = server_side.iter().filter(|r| r["nsp"] == nsp).collect();
        assert_eq!(
            reports.len(),
            1,
            "one server-side connection to {nsp}: {server_side:?}"
        );
        assert_eq!(
            reports[0]["id"], id,
            "the client's socket.id is the server's\n{out}"
        );
        assert_eq!(
            reports[0]["connections"], 1,
            "both namespaces ride one Engine.IO connection\n{out}"
        );
        let welcome: Vec<Value> = out
            .events("welcome")
            .into_iter()
            .filter(|w| w["nsp"] == nsp)
            .collect();
        assert_eq!(welcome.len(), 1, "{out}");
        assert_eq!(welcome[0]["data"], json!({"nsp": nsp, "id": id}), "{out}");
        let which: Vec<Value> = out
            .events("which")
            .into_iter()
            .filter(|w| w["nsp"] == nsp)
            .collect();
        assert_eq!(which.len(), 1, "{out}");
        assert_eq!(
            which[0]["answer"], nsp,
            "the event reached its own namespace\n{out}"
        );
    }
    assert_ne!(client[0]["id"], client[1]["id"], "{out}");
}

// ---------------------------------------------------------------------------------------
// 2. Auth accepted and refused by middleware
// ---------------------------------------------------------------------------------------

async fn auth(mode: Mode) {
    let (obs, mut seen) = observer();
    let io = SocketIo::builder().build();
    let check = {
        let obs = obs.clone();
        move |socket: Socket| {
            let obs = obs.clone();
            async move {
                let auth = socket.handshake().auth().clone();
                obs.send(json!({"kind": "middleware", "nsp": socket.namespace(), "auth": auth}));
                if auth.get("token") == Some(&json!("secret")) {
                    Ok(())
                } else {
                    Err(ConnectError::new("not authorized").with_data(json!({"code": 42})))
                }
            }
        }
    };
    io.of("/")
        .middleware(check.clone())
        .on_connection(|socket: Socket| async move {
            socket
                .emit("auth", socket.handshake().auth())
                .expect("emit auth");
            socket.on("ping", |_: Socket, _: RawArgs, ack: AckSender| async move {
                ack.send("pong").expect("ack ping");
            });
        });
    {
        let obs = obs.clone();
        io.of("/admin")
            .middleware(check)
            .on_connection(move |socket: Socket| {
                let obs = obs.clone();
                async move { obs.send(json!({"kind": "admin-connect", "id": socket.id()})) }
            });
    }
    let server = serve(io).await;
    let out = run_script(&server, mode, "auth").await;
    assert_clean(&out, mode);

    let manager = one(&out, "manager");
    assert_eq!(manager["shared"], true, "{out}");
    assert_eq!(manager["separate"], true, "{out}");
    one(&out, "connect");
    let errors = out.events("connect_error");
    assert_eq!(errors.len(), 2, "{out}");
    for name in ["admin", "anon"] {
        let err = errors
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("no connect_error for {name}\n{out}"));
        assert_eq!(err["message"], "not authorized", "{out}");
        assert_eq!(
            err["data"],
            json!({"code": 42}),
            "err.data.code == 42\n{out}"
        );
        assert_eq!(
            err["active"], false,
            "a refused socket does not retry\n{out}"
        );
    }
    assert_eq!(
        one(&out, "auth")["data"],
        json!({"token": "secret"}),
        "{out}"
    );
    assert_eq!(
        one(&out, "pong")["answer"],
        "pong",
        "\"/\" still works after \"/admin\" was refused on the same connection\n{out}"
    );

    let mut calls = vec![
        seen.wait("middleware").await,
        seen.wait("middleware").await,
        seen.wait("middleware").await,
    ];
    calls.sort_by_key(|c| c.to_string());
    let mut expected = vec![
        json!({"kind": "middleware", "nsp": "/", "auth": {"token": "secret"}}),
        json!({"kind": "middleware", "nsp": "/admin", "auth": {"token": "wrong"}}),
        // No `auth` option: the CONNECT has no payload, and the server sees `{}`.
        json!({"kind": "middleware", "nsp": "/", "auth": {}}),
    ];
    expected.sort_by_key(|c| c.to_string());
    assert_eq!(calls, expected);
    assert!(
        seen.take("admin-connect").is_empty(),
        "a refused socket reached on_connection"
    );
}

// ---------------------------------------------------------------------------------------
// 3. Events with several arguments, both ways
// ---------------------------------------------------------------------------------------

async fn events(mode: Mode) {
    let (obs, mut seen) = observer();
    let io = SocketIo::builder().build();
    io.of("/").on_connection(move |socket: Socket| {
        let obs = obs.clone();
        async move {
            socket
                .emit_args("multi", ("a", 2, json!([3.5, {"k": null}]), false))
                .expect("emit multi");
            socket.emit_args("none", ()).expect("emit none");
            let ev_obs = obs.clone();
            socket.on(
                "ev",
                move |socket: Socket, Data((n, s, v)): Data<(i32, String, Value)>| {
                    let obs = ev_obs.clone();
                    async move {
                        obs.send(json!({"kind": "ev", "n": n, "s": s, "v": v}));
                        socket
                            .emit_args("ev-back", (n * 10, format!("{s}!"), v, Value::Null))
                            .expect("emit ev-back");
                    }
                },
            );
            socket.on("zero", move |socket: Socket, Data(()): Data<()>| {
                let obs = obs.clone();
                async move {
                    obs.send(json!({"kind": "zero"}));
                    socket.emit_args("zero-back", ()).expect("emit zero-back");
                }
            });
        }
    });
    let server = serve(io).await;
    let out = run_script(&server, mode, "events").await;
    assert_clean(&out, mode);

    assert_eq!(
        one(&out, "multi")["args"],
        json!(["a", 2, [3.5, {"k": null}], false]),
        "{out}"
    );
    assert_eq!(one(&out, "none")["args"], json!([]), "{out}");
    assert_eq!(
        seen.wait("ev").await,
        json!({"kind": "ev", "n": 1, "s": "two", "v": {"three": [3]}})
    );
    assert_eq!(
        one(&out, "ev-back")["args"],
        json!([10, "two!", {"three": [3]}, null]),
        "{out}"
    );
    seen.wait("zero").await;
    assert_eq!(one(&out, "zero-back")["args"], json!([]), "{out}");
}

// ---------------------------------------------------------------------------------------
// 4. Acknowledgements both ways, and their timeouts
// ---------------------------------------------------------------------------------------

async fn acks(mode: Mode) {
    let (obs, mut seen) = observer();
    let io = SocketIo::builder().build();
    io.of("/").on_connection(move |socket: Socket| {
        let obs = obs.clone();
        async move {
            socket.on(
                "sum",
                |_: Socket, Data((a, b)): Data<(i64, i64)>, ack: AckSender| async move {
                    ack.send(&(a + b)).expect("ack sum");
                },
            );
            socket.on("pair", |_: Socket, _: RawArgs, ack: AckSender| async move {
                ack.send_args(("x", 2)).expect("ack pair");
            });
            let o = obs.clone();
            socket.on(
                "ask-me",
                move |socket: Socket, Data(q): Data<String>, ack: AckSender| {
                    let obs = o.clone();
                    async move {
                        let reply = socket.emit_with_ack::<Value, _>("question", &q).await;
                        obs.send(json!({
                            "kind": "question-answered",
                            "reply": reply.as_ref().ok(),
                            "debug": format!("{reply:?}"),
                        }));
                        ack.send(&json!({"got": reply.ok()})).expect("ack ask-me");
                    }
                },
            );
            let o = obs.clone();
            socket.on(
                "never-answers",
                move |_: Socket, args: RawArgs, ack: AckSender| {
                    let obs = o.clone();
                    async move {
                        obs.send(json!({
                            "kind": "never-answers",
                            "requested": ack.is_requested(),
                            "args": args.args().len(),
                        }));
                        drop(ack);
                    }
                },
            );
            socket.on(
                "server-timeout",
                move |socket: Socket, _: RawArgs, ack: AckSender| {
                    let obs = obs.clone();
                    async move {
                        let started = Instant::now();
                        let reply = socket
                            .timeout(Duration::from_millis(300))
                            .emit_with_ack::<Value, _>("no-answer", &1)
                            .await;
                        let elapsed = started.elapsed();
                        let result = match &reply {
                            Err(AckError::Timeout) => "timeout",
                            Ok(_) => "answered",
                            Err(_) => "other error",
                        };
                        obs.send(json!({
                            "kind": "server-timeout",
                            "result": result,
                            "debug": format!("{reply:?}"),
                            "elapsed_ms": elapsed.as_millis() as u64,
                        }));
                        ack.send(result).expect("ack server-timeout");
                    }
                },
            );
        }
    });
    let server = serve(io).await;
    let out = run_script(&server, mode, "acks").await;
    assert_clean(&out, mode);

    // Client emit with a callback, answered by the server's AckSender.
    assert_eq!(one(&out, "sum")["result"], 5, "{out}");
    assert_eq!(one(&out, "pair")["args"], json!(["x", 2]), "{out}");

    // Server emit_with_ack, answered by the client's callback.
    let question = one(&out, "question");
    assert_eq!(question["q"], "life?", "{out}");
    assert_eq!(
        question["hasCallback"], true,
        "the server asked for an ack\n{out}"
    );
    let answered = seen.wait("question-answered").await;
    assert_eq!(
        answered["reply"],
        json!({"answer": 42, "q": "life?"}),
        "{answered}"
    );
    assert_eq!(
        one(&out, "ask-me")["result"],
        json!({"got": {"answer": 42, "q": "life?"}}),
        "{out}"
    );

    // The client's timeout against a handler that never answers.
    let never = seen.wait("never-answers").await;
    assert_eq!(never["requested"], true, "{never}");
    assert_eq!(never["args"], 1, "{never}");
    let client_timeout = one(&out, "client-timeout");
    assert_eq!(
        client_timeout["message"], "operation has timed out",
        "{out}"
    );
    let elapsed = client_timeout["elapsed"].as_u64().unwrap_or_default();
    assert!(
        (500..5_000).contains(&elapsed),
        "client timeout after {elapsed} ms\n{out}"
    );

    // The server's timeout against a client that never answers.
    let no_answer = one(&out, "no-answer");
    assert_eq!(no_answer["x"], 1, "{out}");
    assert_eq!(no_answer["hasCallback"], true, "{out}");
    let server_timeout = seen.wait("server-timeout").await;
    assert_eq!(
        server_timeout["result"], "timeout",
        "AckError::Timeout expected: {server_timeout}"
    );
    // Not before its time (no upper bound: a busy machine may run the timer late).
    let elapsed = server_timeout["elapsed_ms"].as_u64().unwrap_or_default();
    assert!(elapsed >= 300, "server timeout after {elapsed} ms");
    assert_eq!(one(&out, "server-timeout")["result"], "timeout", "{out}");
}

// ---------------------------------------------------------------------------------------
// 5. Binary: nested, several attachments, 1 MB
// ---------------------------------------------------------------------------------------

/// What the client sends as `{a: Buffer, b: [Buffer, "x"]}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Nested {
    a: Bytes,
    b: (Bytes, String),
}

/// Binary made by the server.
#[derive(Debug, Serialize)]
struct ServerBin {
    one: Bytes,
    list: Vec<Bytes>,
    text: &'static str,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// How the script reports a Buffer.
fn bin(bytes: &[u8]) -> Value {
    json!({"$bin": b64(bytes)})
}

async fn binary(mode: Mode) {
    let (obs, mut seen) = observer();
    let io = SocketIo::builder().build();
    io.of("/").on_connection(move |socket: Socket| {
        let obs = obs.clone();
        async move {
            let o = obs.clone();
            socket.on("nested", move |socket: Socket, Data(n): Data<Nested>| {
                let obs = o.clone();
                async move {
                    obs.send(json!({
                        "kind": "nested",
                        "a": n.a.to_vec(),
                        "b0": n.b.0.to_vec(),
                        "b1": n.b.1,
                    }));
                    socket.emit("nested-back", &n).expect("emit nested-back");
                }
            });
            socket.on(
                "nested-ack",
                |_: Socket, Data(n): Data<Nested>, ack: AckSender| async move {
                    ack.send(&n).expect("ack nested-ack");
                },
            );
            socket.on("many", move |socket: Socket, args: RawArgs| {
                let obs = obs.clone();
                async move {
                    let attachments: Vec<Vec<u8>> =
                        args.attachments().iter().map(|b| b.to_vec()).collect();
                    obs.send(json!({
                        "kind": "many",
                        "args": args.args().len(),
                        "attachments": attachments,
                    }));
                    socket.emit_args("many-back", args).expect("emit many-back");
                }
            });
            socket.on(
                "server-bin",
                |_: Socket, _: RawArgs, ack: AckSender| async move {
                    let data = ServerBin {
                        one: Bytes::from_static(&[0, 1, 2, 255]),
                        list: vec![Bytes::from_static(b"abc"), Bytes::new()],
                        text: "t",
                    };
                    ack.send(&data).expect("ack server-bin");
                },
            );
        }
    });
    let server = serve(io).await;
    let out = run_script(&server, mode, "binary").await;
    assert_clean(&out, mode);

    assert_eq!(
        seen.wait("nested").await,
        json!({"kind": "nested", "a": [1, 2, 3], "b0": [4, 5, 255, 0], "b1": "x"})
    );
    let nested = json!({"a": bin(&[1, 2, 3]), "b": [bin(&[4, 5, 255, 0]), "x"]});
    let back = one(&out, "nested-back");
    assert_eq!(back["data"], nested, "{out}");
    assert_eq!(back["buffers"], json!([true, true]), "{out}");
    assert_eq!(one(&out, "nested-ack")["data"], nested, "{out}");

    let all_bytes: Vec<u8> = (0..=255).collect();
    let many = seen.wait("many").await;
    assert_eq!(many["args"], 4, "{many}");
    assert_eq!(
        many["attachments"],
        json!([b"first".to_vec(), [0], [], [255, 254], all_bytes]),
        "attachments in placeholder order, the empty one included"
    );
    assert_eq!(
        one(&out, "many-back")["args"],
        json!([
            bin(b"first"),
            {"x": bin(&[0]), "y": [bin(&[]), {"z": bin(&[255, 254])}]},
            "text",
            bin(&all_bytes),
        ]),
        "{out}"
    );

    let server_bin = one(&out, "server-bin");
    assert_eq!(
        server_bin["data"],
        json!({"one": bin(&[0, 1, 2, 255]), "list": [bin(b"abc"), bin(&[])], "text": "t"}),
        "{out}"
    );
    assert_eq!(server_bin["buffer"], true, "{out}");
}

/// The script's `bigPayload(n)`: bytes from a 32-bit LCG.
fn big_payload(n: usize) -> Vec<u8> {
    let mut x: u32 = 12345;
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 24) as u8
        })
        .collect()
}

const BIG: usize = 1_000_000;

async fn big_binary(mode: Mode) {
    let (obs, mut seen) = observer();
    // 1,000,000 bytes plus framing (and base64 over polling) exceed the default limit.
    let io = SocketIo::builder().max_payload(2_000_000).build();
    let expected = Arc::new(Bytes::from(big_payload(BIG)));
    io.of("/").on_connection(move |socket: Socket| {
        let obs = obs.clone();
        let expected = expected.clone();
        async move {
            socket.on(
                "big",
                move |socket: Socket, Data((data, sha)): Data<(Bytes, String)>, ack: AckSender| {
                    let obs = obs.clone();
                    let expected = expected.clone();
                    async move {
                        obs.send(json!({
                            "kind": "big",
                            "len": data.len(),
                            "exact": data == *expected,
                            "sha": sha,
                        }));
                        ack.send(&data.len()).expect("ack big");
                        socket.emit("big-back", &data).expect("emit big-back");
                    }
                },
            );
        }
    });
    let server = serve(io).await;
    let out = run_script(&server, mode, "big").await;
    assert_clean(&out, mode);

    let got = seen.wait("big").await;
    assert_eq!(got["len"], BIG, "{got}");
    assert_eq!(
        got["exact"], true,
        "the server received other bytes than sent"
    );
    let big = one(&out, "big");
    assert_eq!(big["ack"], BIG, "{out}");
    assert_eq!(big["backLen"], BIG, "{out}");
    assert_eq!(big["equal"], true, "{out}");
    assert_eq!(big["backSha"], big["sentSha"], "{out}");
    assert_eq!(got["sha"], big["sentSha"], "{out}");
}

// ---------------------------------------------------------------------------------------
// 6. Unicode in event names and payloads
// ---------------------------------------------------------------------------------------

/// Must match `UNICODE_*` in the script.
const UNICODE_EVENT: &str = "évént 🙂 \u{2028}\u{2029} \"q\" \\ /\u{1e}";
const UNICODE_STRINGS: [&str; 5] = [
    "emoji 🙂👍🏽🇫🇷 and 日本語",
    "line\u{2028}separator\u{2029}paragraph",
    "quote \" apostrophe ' backslash \\ slash / backslash-u \\u0041",
    "record\u{1e}separator and \u{0} nul and \t\n\r",
    "",
];

fn unicode_object() -> Value {
    json!({"kéy 🙂\u{2028}": "vål \"\\", "\u{2029}": ["\u{1e}", "🙂"]})
}

async fn unicode(mode: Mode) {
    let (obs, mut seen) = observer();
    let io = SocketIo::builder().build();
    io.of("/").on_connection(move |socket: Socket| {
        let obs = obs.clone();
        async move {
            socket.on(
                UNICODE_EVENT,
                move |socket: Socket,
                      Data((strings, object)): Data<(Vec<String>, Value)>,
                      ack: AckSender| {
                    let obs = obs.clone();
                    async move {
                        obs.send(json!({"kind": "unicode", "strings": strings, "object": object}));
                        socket
                            .emit_args(UNICODE_EVENT, (&strings, &object))
                            .expect("emit unicode");
                        ack.send(&strings).expect("ack unicode");
                    }
                },
            );
        }
    });
    let server = serve(io).await;
    let out = run_script(&server, mode, "unicode").await;
    assert_clean(&out, mode);

    let got = seen.wait("unicode").await;
    assert_eq!(got["strings"], json!(UNICODE_STRINGS), "server side");
    assert_eq!(got["object"], unicode_object(), "server side");
    let line = one(&out, "unicode");
    assert_eq!(line["echoOk"], true, "{out}");
    assert_eq!(line["ackOk"], true, "{out}");
    assert_eq!(
        line["args"],
        json!([UNICODE_STRINGS, unicode_object()]),
        "{out}"
    );
}

// ---------------------------------------------------------------------------------------
// 7. Disconnections by the client and by the server
// ---------------------------------------------------------------------------------------

/// "/" and "/chat", reporting connections and disconnections; `extra` adds handlers.
fn disconnect_server(obs: &Obs, extra: fn(&SocketIo, &Socket)) -> SocketIo {
    let io = SocketIo::builder().build();
    for nsp in ["/", "/chat"] {
        let obs = obs.clone();
        let handle = io.clone();
        io.of(nsp).on_connection(move |socket: Socket| {
            let obs = obs.clone();
            let handle = handle.clone();
            async move {
                obs.send(json!({"kind": "connect", "nsp": socket.namespace(), "id": socket.id()}));
                let o = obs.clone();
                socket.on_disconnect(move |socket: Socket, reason: DisconnectReason| async move {
                    o.send(json!({
                        "kind": "disconnect",
                        "nsp": socket.namespace(),
                        "id": socket.id(),
                        "reason": reason.as_str(),
                    }));
                });
                extra(&handle, &socket);
            }
        });
    }
    io
}

async fn client_disconnect(mode: Mode) {
    let (obs, mut seen) = observer();
    let io = disconnect_server(&obs, |io, socket| {
        let root = io.of("/");
        socket.on("alive", move |_: Socket, _: RawArgs, ack: AckSender| {
            let left = root.sockets().len();
            async move {
                ack.send(&left).expect("ack alive");
            }
        });
    });
    let server = serve(io).await;
    let out = run_script(&server, mode, "client-disconnect").await;
    assert_clean(&out, mode);

    let ids: Vec<Value> = out.events("connect");
    let id_of = |nsp: &str| {
        ids.iter()
            .find(|c| c["nsp"] == nsp)
            .map(|c| c["id"].clone())
            .unwrap_or_else(|| panic!("no connect to {nsp}\n{out}"))
    };
    let first = seen.wait("disconnect").await;
    assert_eq!(
        first,
        json!({
            "kind": "disconnect",
            "nsp": "/",
            "id": id_of("/"),
            "reason": DisconnectReason::ClientNamespaceDisconnect.as_str(),
        }),
        "socket.disconnect() on the client"
    );
    assert_eq!(
        one(&out, "alive")["answer"],
        0,
        "\"/\" is gone, \"/chat\" still answers on the same connection\n{out}"
    );
    let second = seen.wait("disconnect").await;
    assert_eq!(
        second,
        json!({
            "kind": "disconnect",
            "nsp": "/chat",
            "id": id_of("/chat"),
            "reason": "client namespace disconnect",
        }),
        "the last namespace's socket.disconnect()"
    );
    let client_side = out.events("disconnect");
    assert_eq!(client_side.len(), 2, "{out}");
    for d in client_side {
        assert_eq!(d["reason"], "io client disconnect", "{out}");
    }
}

async fn server_disconnect(mode: Mode) {
    let (obs, mut seen) = observer();
    let io = disconnect_server(&obs, |_, socket| {
        socket.on("kick", |socket: Socket| async move { socket.disconnect() });
    });
    let server = serve(io).await;
    let out = run_script(&server, mode, "server-disconnect").await;
    assert_clean(&out, mode);

    let connect = one(&out, "connect");
    let gone = one(&out, "disconnect");
    assert_eq!(gone["nsp"], "/", "{out}");
    assert_eq!(gone["reason"], "io server disconnect", "{out}");
    assert_eq!(
        gone["active"], false,
        "the client must not reconnect\n{out}"
    );
    assert!(
        out.events("reconnect_attempt").is_empty(),
        "the client tried to reconnect\n{out}"
    );
    assert_eq!(
        seen.wait("disconnect").await,
        json!({
            "kind": "disconnect",
            "nsp": "/",
            "id": connect["id"],
            "reason": DisconnectReason::ServerNamespaceDisconnect.as_str(),
        })
    );
    // The script ended by itself, so no reconnection was pending; the server saw one.
    assert_eq!(seen.take("connect").len(), 1, "{:#?}", seen.log());
}

async fn server_disconnect_all(mode: Mode) {
    let (obs, mut seen) = observer();
    let io = disconnect_server(&obs, |_, socket| {
        socket.on("kick-all", |socket: Socket| async move {
            socket.disconnect_all()
        });
    });
    let server = serve(io).await;
    let out = run_script(&server, mode, "server-disconnect-all").await;
    assert_clean(&out, mode);

    assert_eq!(out.events("connect").len(), 2, "{out}");
    let gone = out.events("disconnect");
    assert_eq!(gone.len(), 2, "both namespaces are disconnected\n{out}");
    for d in &gone {
        assert_eq!(d["reason"], "io server disconnect", "{out}");
        assert_eq!(d["active"], false, "{out}");
    }
    assert!(
        out.events("reconnect_attempt").is_empty(),
        "the client tried to reconnect\n{out}"
    );
    let mut server_side = [seen.wait("disconnect").await, seen.wait("disconnect").await];
    server_side.sort_by_key(|d| d["nsp"].to_string());
    for (d, nsp) in server_side.iter().zip(["/", "/chat"]) {
        assert_eq!(d["nsp"], nsp, "{server_side:?}");
        assert_eq!(
            d["reason"], "server namespace disconnect",
            "{server_side:?}"
        );
    }
    assert_eq!(seen.take("connect").len(), 2, "{:#?}", seen.log());
}

// ---------------------------------------------------------------------------------------
// 8. The client reconnects by itself after its connection is cut
// ---------------------------------------------------------------------------------------

/// A TCP proxy that can drop every connection at once, and switch to another backend.
///
/// Cutting closes both sides of every proxied TCP connection with no Engine.IO or
/// Socket.IO goodbye, as a crashed server or a broken network would: the client learns of
/// it from its transport alone.
struct Proxy {
    addr: SocketAddr,
    backend: Arc<Mutex<SocketAddr>>,
    conns: Arc<Mutex<Vec<AbortHandle>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    async fn start(backend: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let backend = Arc::new(Mutex::new(backend));
        let conns: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let accept = tokio::spawn({
            let backend = backend.clone();
            let conns = conns.clone();
            async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    let mut conns = conns.lock().expect("proxy lock");
                    let to = *backend.lock().expect("proxy lock");
                    let task = tokio::spawn(async move {
                        if let Ok(mut server) = TcpStream::connect(to).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                    conns.retain(|c| !c.is_finished());
                    conns.push(task.abort_handle());
                }
            }
        });
        Self {
            addr,
            backend,
            conns,
            accept,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Drops every open connection; new ones go to `to`.
    fn cut(&self, to: SocketAddr) {
        *self.backend.lock().expect("proxy lock") = to;
        self.drop_connections();
    }

    fn drop_connections(&self) {
        for conn in self.conns.lock().expect("proxy lock").drain(..) {
            conn.abort();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.drop_connections();
    }
}

fn reconnect_server(name: &'static str, obs: &Obs) -> SocketIo {
    // Frequent pings, so the server also notices a dead polling session within seconds; a
    // pong deadline long enough that a pong delayed by a busy machine never ends a healthy
    // connection.
    let io = SocketIo::builder()
        .ping_interval(Duration::from_millis(300))
        .ping_timeout(Duration::from_secs(5))
        .build();
    let obs = obs.clone();
    io.of("/").on_connection(move |socket: Socket| {
        let obs = obs.clone();
        async move {
            obs.send(json!({"kind": "connect", "server": name, "id": socket.id()}));
            let o = obs.clone();
            socket.on_disconnect(move |socket: Socket, reason: DisconnectReason| async move {
                o.send(json!({
                    "kind": "disconnect",
                    "server": name,
                    "id": socket.id(),
                    "reason": reason.as_str(),
                }));
            });
            socket.on("cut-me", move |socket: Socket, Data(n): Data<u32>| {
                let obs = obs.clone();
                async move {
                    obs.send(json!({"kind": "cut-me", "server": name, "n": n, "id": socket.id()}));
                }
            });
            socket.on(
                "still-there",
                |_: Socket, _: RawArgs, ack: AckSender| async move {
                    ack.send("yes").expect("ack still-there");
                },
            );
        }
    });
    io
}

async fn reconnect(mode: Mode) {
    let (obs, mut seen) = observer();
    let a = serve(reconnect_server("A", &obs)).await;
    let b = serve(reconnect_server("B", &obs)).await;
    let proxy = Proxy::start(a.addr).await;
    let script = start_script(proxy.url(), mode, "reconnect");

    // First cut: the same server comes back (a network failure).
    let cut = seen.wait("cut-me").await;
    assert_eq!(
        (cut["n"].as_u64(), cut["server"].as_str()),
        (Some(1), Some("A"))
    );
    proxy.cut(a.addr);
    // Second cut: a new server answers (a restart).
    let cut = seen.wait("cut-me").await;
    assert_eq!(
        (cut["n"].as_u64(), cut["server"].as_str()),
        (Some(2), Some("A"))
    );
    proxy.cut(b.addr);
    let out = finish(script).await;
    assert_clean(&out, mode);

    let connects = out.events("connect");
    assert_eq!(connects.len(), 3, "{out}");
    let ids: Vec<&str> = connects.iter().map(|c| str_of(c, "id")).collect();
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        3,
        "each reconnection is a new socket\n{out}"
    );
    // The client learns of each cut from its transport alone: the long-polling request
    // fails ("transport error") or the WebSocket closes ("transport close"). The last
    // disconnect is the script's own at the end.
    let cut_reason = match mode {
        Mode::Polling => "transport error",
        Mode::Websocket | Mode::Upgrade => "transport close",
    };
    let reasons: Vec<String> = out
        .events("disconnect")
        .iter()
        .map(|d| str_of(d, "reason").to_owned())
        .collect();
    assert_eq!(
        reasons,
        [cut_reason, cut_reason, "io client disconnect"],
        "{out}"
    );
    assert_eq!(
        out.events("reconnect").len(),
        2,
        "the Manager reconnected twice\n{out}"
    );
    assert_eq!(one(&out, "still-there")["answer"], "yes", "{out}");

    // Who served whom.
    let mut server_of = std::collections::HashMap::new();
    for _ in 0..3 {
        let c = seen.wait("connect").await;
        server_of.insert(str_of(&c, "id").to_owned(), str_of(&c, "server").to_owned());
    }
    let served: Vec<&str> = ids
        .iter()
        .map(|id| server_of.get(*id).map(String::as_str).unwrap_or("?"))
        .collect();
    assert_eq!(served, ["A", "A", "B"], "{server_of:?}\n{out}");

    // Server A sees both of its sockets go, for a transport reason.
    let mut gone = HashSet::new();
    while gone.len() < 2 {
        let d = seen.wait("disconnect").await;
        if d["server"] == "A" {
            let reason = str_of(&d, "reason");
            assert!(
                ["transport close", "transport error", "ping timeout"].contains(&reason),
                "{d}"
            );
            gone.insert(str_of(&d, "id").to_owned());
        }
    }
    assert_eq!(
        gone,
        HashSet::from([ids[0].to_owned(), ids[1].to_owned()]),
        "{:#?}",
        seen.log()
    );
}
