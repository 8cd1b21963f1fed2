//! The built `volley` binary against the official Node server and a Volley server, over
//! long-polling, WebSocket, and polling upgraded to WebSocket (the default): listen, emit with
//! and without acknowledgement, bench, and every failure with its message and exit code.

mod common;

use common::{Kind, Server, spawn, volley, volley_json};
use serde_json::json;
use volley::Parser;

/// Exit codes (the README's table).
const USAGE: i32 = 2;
const BAD_URL: i32 = 3;
const UNREACHABLE: i32 = 4;
const REFUSED: i32 = 5;
const TIMEOUT: i32 = 6;
const DISCONNECTED: i32 = 7;

/// `volley <cmd> <url> <rest…> [--transport T]`.
fn args<'a>(
    cmd: &'a str,
    url: &'a str,
    transport: Option<&'a str>,
    rest: &[&'a str],
) -> Vec<&'a str> {
    let mut v = vec![cmd, url];
    v.extend_from_slice(rest);
    if let Some(t) = transport {
        v.extend_from_slice(&["--transport", t]);
    }
    v
}

/// The words of `s`, for options without spaces in them.
fn w(s: &str) -> Vec<&str> {
    s.split_whitespace().collect()
}

/// listen prints the events it is asked for, binary included; emit sends with and without
/// acknowledgement, to a namespace, with a query and auth; Ctrl-C ends listen cleanly.
async fn listen_and_emit(kind: Kind, transport: Option<&str>) {
    let server = Server::start(kind, Parser::Json).await;
    let url = server.url();
    let t = transport;
    let mut listen = spawn(&args(
        "listen",
        &url,
        t,
        &["--event", "tick", "--event", "tock"],
    ));
    let connected = listen.wait_stderr("connected to").await;
    if let Some(t) = t {
        assert!(connected.contains(t), "{connected}");
    }
    // Not asked for: filtered out (it reaches the listener before the next ones).
    let shout = &["shout", r#"["other",1]"#, "--ack"];
    assert_eq!(
        volley_json(&args("emit", &url, t, shout)).await,
        json!([true])
    );
    // Without acknowledgement: nothing printed, and the event still arrives.
    let out = volley(&args("emit", &url, t, &["shout", r#"["tick","no ack"]"#])).await;
    assert_eq!((out.code(), out.stdout.as_str()), (0, ""), "{out:?}");
    assert_eq!(
        listen.next_json().await,
        json!({ "event": "tick", "args": ["no ack"] })
    );
    // Several arguments, binary among them.
    let shout = &["shout", r#"["tock",{"n":1},{"$binary":"AQID"}]"#, "--ack"];
    assert_eq!(
        volley_json(&args("emit", &url, t, shout)).await,
        json!([true])
    );
    assert_eq!(
        listen.next_json().await,
        json!({ "event": "tock", "args": [{ "n": 1 }, { "$binary": "AQID" }] })
    );
    // An acknowledgement with several arguments.
    let ack = &["ack", r#"[1,"a",{"$binary":"AQID"},[2]]"#, "--ack"];
    assert_eq!(
        volley_json(&args("emit", &url, t, ack)).await,
        json!([1, "a", { "$binary": "AQID" }, [2]])
    );
    // One argument, a negative number (not an option).
    let neg = &["ack", "-2.5", "--ack"];
    assert_eq!(
        volley_json(&args("emit", &url, t, neg)).await,
        json!([-2.5])
    );
    // A namespace, a query parameter, a header, auth.
    let mut hs = w("handshake --ack --ns /chat --query q=42 --header x-volley-test:yes --auth");
    hs.push(r#"{"user":"ann"}"#);
    assert_eq!(
        volley_json(&args("emit", &url, t, &hs)).await,
        json!([{ "query": "42", "auth": { "user": "ann" }, "header": "yes" }])
    );
    // Auth a middleware accepts.
    let ok = &[
        "ack",
        r#""in""#,
        "--ack",
        "--ns",
        "/secure",
        "--auth",
        r#"{"token":"ok"}"#,
    ];
    assert_eq!(volley_json(&args("emit", &url, t, ok)).await, json!(["in"]));
    // Ctrl-C: a clean end.
    interrupt(&listen.child);
    let (code, stderr) = listen.exit().await;
    assert_eq!(code, 0, "{stderr}");
}

/// Sends SIGINT, as Ctrl-C does.
fn interrupt(child: &tokio::process::Child) {
    let pid = child.id().expect("running").to_string();
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("run kill");
    assert!(status.success());
}

/// A refused connection (message and data), an acknowledgement that never comes, and the
/// server disconnecting a listener: each with its message and exit code.
async fn failures(kind: Kind, transport: Option<&str>) {
    let server = Server::start(kind, Parser::Json).await;
    let url = server.url();
    let t = transport;
    let bad = &["ack", "--ns", "/secure", "--auth", r#"{"token":"bad"}"#];
    volley(&args("emit", &url, t, bad)).await.assert_fails(
        REFUSED,
        &[
            "refused the connection: not authorized",
            r#"data: {"code":42}"#,
        ],
    );
    let never = &["never", "--ack", "--timeout", "200ms"];
    volley(&args("emit", &url, t, never))
        .await
        .assert_fails(TIMEOUT, &["timeout", "no acknowledgement of \"never\""]);
    let mut listen = spawn(&args("listen", &url, t, &[]));
    listen.wait_stderr("connected to").await;
    assert_eq!(
        volley_json(&args("emit", &url, t, &["kickall", "--ack"])).await,
        json!([true])
    );
    let (code, stderr) = listen.exit().await;
    assert_eq!(code, DISCONNECTED, "{stderr}");
    assert!(
        stderr.contains("disconnected: io server disconnect"),
        "{stderr}"
    );
}

/// A small bench finishes with every reply and prints the percentiles, as JSON and as text.
async fn bench(kind: Kind, transport: Option<&str>) {
    let server = Server::start(kind, Parser::Json).await;
    let url = server.url();
    let t = transport;
    // The timeout only bounds the wait for the last replies; the run ends when they came.
    let opts = &w("--clients 3 --rate 40 --duration 1s --timeout 60s --json");
    let r = volley_json(&args("bench", &url, t, opts)).await;
    assert_eq!(
        (&r["sent"], &r["received"], &r["lost"], &r["errors"]),
        (&json!(40), &json!(40), &json!(0), &json!(0)),
        "{r}"
    );
    let lat = &r["latency_us"];
    let (p50, p99, max) = (
        lat["p50"].as_u64(),
        lat["p99"].as_u64(),
        lat["max"].as_u64(),
    );
    assert!(p50 > Some(0) && p50 <= p99 && p99 <= max, "{r}");
    let (ws, polling) = (&r["transports"]["websocket"], &r["transports"]["polling"]);
    match t {
        Some("websocket") => assert_eq!((ws, polling), (&json!(3), &json!(0)), "{r}"),
        Some("polling") => assert_eq!((ws, polling), (&json!(0), &json!(3)), "{r}"),
        _ => assert_eq!(
            ws.as_u64().zip(polling.as_u64()).map(|(a, b)| a + b),
            Some(3)
        ),
    }
    // Acknowledgements, as text.
    let opts = &w("--clients 2 --rate 20 --duration 500ms --timeout 60s --ack");
    let out = volley(&args("bench", &url, t, opts)).await;
    assert_eq!(out.code(), 0, "{out:?}");
    for needle in [
        "sent 10, received 10, lost 0, errors 0",
        "p50 ",
        "p99 ",
        "max ",
    ] {
        assert!(out.stdout.contains(needle), "{needle:?}: {out:?}");
    }
}

/// One module per server and transport, each running every scenario.
macro_rules! matrix {
    ($($name:ident: $kind:expr, $transport:expr;)*) => {$(
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn listen_and_emit() {
                super::listen_and_emit($kind, $transport).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn failures() {
                super::failures($kind, $transport).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn bench() {
                super::bench($kind, $transport).await;
            }
        }
    )*};
}

matrix! {
    node_polling: Kind::Node, Some("polling");
    node_websocket: Kind::Node, Some("websocket");
    node_upgrade: Kind::Node, None;
    volley_polling: Kind::Volley, Some("polling");
    volley_websocket: Kind::Volley, Some("websocket");
    volley_upgrade: Kind::Volley, None;
}

/// The MessagePack parser, against both servers using it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msgpack() {
    for kind in [Kind::Node, Kind::Volley] {
        let server = Server::start(kind, Parser::MsgPack).await;
        let url = server.url();
        let mut listen = spawn(&["listen", &url, "--msgpack"]);
        listen.wait_stderr("connected to").await;
        let ack = &[
            "emit",
            &url,
            "shout",
            r#"["tick",1.5,{"$binary":"AQID"}]"#,
            "--ack",
            "--msgpack",
        ];
        assert_eq!(volley_json(ack).await, json!([true]), "{kind:?}");
        assert_eq!(
            listen.next_json().await,
            json!({ "event": "tick", "args": [1.5, { "$binary": "AQID" }] }),
            "{kind:?}"
        );
        let opts = w("--msgpack --clients 2 --rate 20 --duration 500ms --timeout 60s --json");
        let r = volley_json(&args("bench", &url, None, &opts)).await;
        assert_eq!(
            (&r["received"], &r["lost"]),
            (&json!(10), &json!(0)),
            "{kind:?}: {r}"
        );
        interrupt(&listen.child);
        assert_eq!(listen.exit().await.0, 0);
    }
}

#[tokio::test]
async fn a_bad_url_is_named() {
    volley(&["emit", "not a url", "x"])
        .await
        .assert_fails(BAD_URL, &["invalid URL", "not a url"]);
    volley(&["listen", "ftp://127.0.0.1:1/"])
        .await
        .assert_fails(BAD_URL, &["invalid URL", "unsupported scheme"]);
}

#[tokio::test]
async fn a_closed_port_is_unreachable() {
    // A port nothing listens on any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind")
        .port();
    let url = format!("http://127.0.0.1:{port}");
    for t in ["polling", "websocket"] {
        volley(&["emit", &url, "x", "--transport", t])
            .await
            .assert_fails(UNREACHABLE, &["cannot reach the server", "refused"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_times_out() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            open.push(conn);
        }
    });
    volley(&["emit", &url, "x", "--connect-timeout", "300ms"])
        .await
        .assert_fails(TIMEOUT, &["timeout: not connected to", "within 300ms"]);
    held.abort();
}

#[tokio::test]
async fn bad_arguments_are_usage_errors() {
    let url = "http://127.0.0.1:1";
    volley(&["emit", url, "x", "{nope"])
        .await
        .assert_fails(USAGE, &["invalid JSON"]);
    volley(&["emit", url, "x", "--auth", "[1]"])
        .await
        .assert_fails(USAGE, &["--auth must be a JSON object"]);
    volley(&["emit", url, "x", "--query", "novalue"])
        .await
        .assert_fails(USAGE, &["expected KEY=VALUE"]);
    volley(&["emit", url, "x", "--timeout", "soon"])
        .await
        .assert_fails(USAGE, &["soon"]);
    volley(&["emit", url, "x", r#"{"$binary":"%%"}"#])
        .await
        .assert_fails(USAGE, &["invalid base64"]);
    volley(&["emit", url, "disconnect"])
        .await
        .assert_fails(USAGE, &["reserved event name"]);
    let help = volley(&["--help"]).await;
    assert_eq!(help.code(), 0);
    assert!(help.stdout.contains("Exit codes:"), "{help:?}");
}

/// listen survives the loss of its server: it says so on stderr and reconnects, as the
/// official client does, until Ctrl-C.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_reconnects_after_losing_the_server() {
    let mut server = Server::start(Kind::Node, Parser::Json).await;
    let (url, port) = (server.url(), server.port);
    let mut listen = spawn(&["listen", &url, "--transport", "websocket"]);
    listen.wait_stderr("connected to").await;
    server.stop().await;
    let lines = listen
        .stderr_until("disconnected (transport close); reconnecting")
        .await;
    assert!(
        !lines.iter().any(|l| l.contains("reconnected")),
        "{lines:?}"
    );
    let _again = Server::start_node_on(port).await;
    listen.wait_stderr("reconnected to").await;
    let shout = &["emit", &url, "shout", r#"["tick","after"]"#, "--ack"];
    assert_eq!(volley_json(shout).await, json!([true]));
    assert_eq!(
        listen.next_json().await,
        json!({ "event": "tick", "args": ["after"] })
    );
    interrupt(&listen.child);
    let (code, stderr) = listen.exit().await;
    assert_eq!(code, 0, "{stderr}");
}

/// Ctrl-C while bench sends: it stops sending, waits for the replies of what it sent, and
/// prints the results.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_stops_on_ctrl_c_with_its_results() {
    let server = Server::start(Kind::Volley, Parser::Json).await;
    let url = server.url();
    let opts = w("--clients 2 --rate 50 --duration 1h --timeout 60s --json");
    let mut bench = spawn(&args("bench", &url, Some("websocket"), &opts));
    bench.wait_stderr("2 clients connected").await;
    interrupt(&bench.child);
    let r = bench.next_json().await;
    let (sent, received) = (r["sent"].as_u64(), r["received"].as_u64());
    assert!(sent > Some(0) && sent == received, "{r}");
    assert_eq!(r["lost"], 0, "{r}");
    let (code, stderr) = bench.exit().await;
    assert_eq!(code, 0, "{stderr}");
}

/// Ctrl-C while listen is still connecting: exit code 130.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_interrupted_while_connecting() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let listen = spawn(&["listen", &url, "--connect-timeout", "1h"]);
    // The CLI is connecting once its connection is accepted (and never answered).
    let (conn, _) = tokio::time::timeout(common::WAIT, listener.accept())
        .await
        .expect("no connection in time")
        .expect("accept");
    interrupt(&listen.child);
    let (code, stderr) = listen.exit().await;
    assert_eq!(code, 130, "{stderr}");
    assert!(stderr.contains("interrupted while connecting"), "{stderr}");
    drop(conn);
}
