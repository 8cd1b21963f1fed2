//! The official `engine.io-client` (npm) against an in-process `volley_engine` echo server.
//!
//! Each test starts an Engine.IO echo on `127.0.0.1:0` (Node's default ping settings) and runs
//! `e2e/interop/scripts/eio-echo.mjs`, which sends text and binary messages, checks every echo
//! and reports what it saw as JSON lines. The assertions here check those reports again:
//! the transport the client ended on, and each echoed payload against what was sent.

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;
use volley_engine::{Engine, EngineConfig, Frame, Message};
use volley_test_support::{NodeOutput, run_node};

const SCRIPT: &str = "eio-echo.mjs";
const DEADLINE: Duration = Duration::from_secs(60);

/// Starts `engine` on a free loopback port; the server task ends with the test's runtime.
async fn serve(engine: Engine) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("bound address");
    let service = engine.service();
    tokio::spawn(async move { volley_engine::serve(listener, service).await });
    addr
}

/// An Engine.IO echo: every message goes back unchanged, text as text, binary as binary.
fn echo_engine() -> Engine {
    mangling_engine(|msg| msg)
}

/// An "echo" that passes each message through `f` first, to prove the checks can fail.
fn mangling_engine(f: fn(Message) -> Message) -> Engine {
    let config = EngineConfig::builder().path("/engine.io/").build();
    Engine::new(config, move |socket, mut incoming| async move {
        while let Ok(msg) = incoming.recv().await {
            let frame = match f(msg) {
                Message::Text(t) => Frame::message(
                    std::str::from_utf8(&t).expect("Engine.IO text messages are UTF-8"),
                ),
                Message::Binary(b) => Frame::binary(b),
            };
            if socket.send(frame).is_err() {
                break;
            }
        }
    })
}

/// What the script sends, in order: (name, kind, payload as reported: text, or base64 bytes).
/// Must match `MESSAGES` in `eio-echo.mjs`.
fn expected_echoes() -> Vec<(&'static str, &'static str, String)> {
    let all_bytes: Vec<u8> = (0..=255).collect();
    vec![
        ("text", "text", "hello".to_owned()),
        ("text-unicode", "text", "héllo wörld € 🙂 日本".to_owned()),
        (
            "text-tricky",
            "text",
            "bAQIDBA==\n4 2probe \"q\" \\ \0 end".to_owned(),
        ),
        ("text-empty", "text", String::new()),
        ("text-large", "text", "x".repeat(100_000)),
        ("binary-buffer", "binary", base64(&[1, 2, 3, 4])),
        ("binary-arraybuffer", "binary", base64(&all_bytes)),
        (
            "binary-uint8array",
            "binary",
            base64(&[255, 0, 128, 10, 30]),
        ),
    ]
}

/// Standard base64 with padding, as Node's `Buffer#toString("base64")` writes it.
fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn str_field<'a>(line: &'a Value, key: &str) -> &'a str {
    line.get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string {key:?} in {line}"))
}

/// Checks the echoes of one phase: all messages, in order, unchanged, each received over
/// `transport` when given.
fn assert_echoes(out: &NodeOutput, phase: &str, transport: Option<&str>) {
    let echoes: Vec<Value> = out
        .events("echo")
        .into_iter()
        .filter(|e| str_field(e, "phase") == phase)
        .collect();
    let expected = expected_echoes();
    assert_eq!(
        echoes.len(),
        expected.len(),
        "phase {phase}: wrong number of echoes\n{out}"
    );
    for (echo, (name, kind, data)) in echoes.iter().zip(&expected) {
        assert_eq!(
            str_field(echo, "name"),
            *name,
            "phase {phase}: order\n{out}"
        );
        assert_eq!(
            str_field(echo, "kind"),
            *kind,
            "phase {phase}: {name} came back as the wrong kind"
        );
        assert!(
            str_field(echo, "data") == data,
            "phase {phase}: {name} came back changed: {:.200}",
            str_field(echo, "data")
        );
        assert_eq!(
            echo["ok"], true,
            "phase {phase}: script saw a mismatch: {echo}"
        );
        if let Some(t) = transport {
            assert_eq!(str_field(echo, "transport"), t, "phase {phase}: {name}");
        }
    }
}

async fn run_mode(addr: SocketAddr, mode: &str) -> NodeOutput {
    let url = format!("http://{addr}");
    run_node(SCRIPT, &[&url, mode], DEADLINE).await
}

/// The script closes its socket at the end; the server must drop the session. (The engine
/// reports no such event: its count is polled, within the bound of a hang.)
async fn assert_sessions_drain(engine: &Engine) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while engine.session_count() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} session(s) still open {DEADLINE:?} after the client closed",
            engine.session_count()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn assert_clean_end(out: &NodeOutput, final_transport: &str) {
    assert!(out.events("error").is_empty(), "errors reported\n{out}");
    let done = out.events("done");
    assert_eq!(done.len(), 1, "one done line\n{out}");
    assert_eq!(str_field(&done[0], "transport"), final_transport, "{out}");
    assert_eq!(done[0]["mismatches"], 0, "{out}");
    let close = out.events("close");
    assert_eq!(close.len(), 1, "one close line\n{out}");
    assert_eq!(str_field(&close[0], "reason"), "forced close", "{out}");
}

#[tokio::test]
async fn polling_only_echoes_text_and_binary() {
    let engine = echo_engine();
    let addr = serve(engine.clone()).await;
    let out = run_mode(addr, "polling").await;
    out.assert_success();

    let open = out.events("open");
    assert_eq!(str_field(&open[0], "transport"), "polling", "{out}");
    assert_eq!(
        open[0]["upgrades"],
        serde_json::json!(["websocket"]),
        "{out}"
    );
    assert_echoes(&out, "open", Some("polling"));
    assert!(
        out.events("upgrade").is_empty(),
        "polling-only upgraded\n{out}"
    );
    assert_clean_end(&out, "polling");
    assert_sessions_drain(&engine).await;
}

#[tokio::test]
async fn websocket_only_echoes_text_and_binary() {
    let engine = echo_engine();
    let addr = serve(engine.clone()).await;
    let out = run_mode(addr, "websocket").await;
    out.assert_success();

    let open = out.events("open");
    assert_eq!(str_field(&open[0], "transport"), "websocket", "{out}");
    // A WebSocket handshake offers no upgrade.
    assert_eq!(open[0]["upgrades"], serde_json::json!([]), "{out}");
    assert_echoes(&out, "open", Some("websocket"));
    assert_clean_end(&out, "websocket");
    assert_sessions_drain(&engine).await;
}

#[tokio::test]
async fn polling_upgrades_to_websocket_and_keeps_echoing() {
    let engine = echo_engine();
    let addr = serve(engine.clone()).await;
    let out = run_mode(addr, "upgrade").await;
    out.assert_success();

    let open = out.events("open");
    assert_eq!(str_field(&open[0], "transport"), "polling", "{out}");
    assert_eq!(
        open[0]["upgrades"],
        serde_json::json!(["websocket"]),
        "{out}"
    );
    // Sent while the probe may be in flight: any transport, but nothing lost or reordered.
    assert_echoes(&out, "open", None);
    let upgrade = out.events("upgrade");
    assert_eq!(upgrade.len(), 1, "one upgrade\n{out}");
    assert_eq!(str_field(&upgrade[0], "transport"), "websocket", "{out}");
    assert_echoes(&out, "upgraded", Some("websocket"));
    assert_clean_end(&out, "websocket");
    assert_sessions_drain(&engine).await;
}

/// The harness itself: a server that changes messages must make the script fail.
#[tokio::test]
async fn a_server_that_changes_messages_fails_the_check() {
    let engine = mangling_engine(|msg| match msg {
        Message::Text(t) => Message::Text(t.to_ascii_uppercase().into()),
        Message::Binary(b) => Message::Binary(b.iter().rev().copied().collect::<Vec<_>>().into()),
    });
    let addr = serve(engine).await;
    let out = run_mode(addr, "websocket").await;
    assert!(!out.success(), "the script accepted mangled echoes\n{out}");
    let echoes = out.events("echo");
    let bad: Vec<&str> = echoes
        .iter()
        .filter(|e| e["ok"] == false)
        .map(|e| str_field(e, "name"))
        .collect();
    assert!(bad.contains(&"text"), "{out}");
    assert!(bad.contains(&"binary-arraybuffer"), "{out}");
}
