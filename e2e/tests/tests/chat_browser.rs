//! The chat example (`examples/chat`) in headless Chromium.
//!
//! The test serves the example's own `Router` in-process on a free port, then
//! `e2e/interop/scripts/chat-browser.mjs` drives four pages with playwright-core: alice and
//! bob chat in room "lobby", carol sits in room "garden", dave brings a bad token. The script
//! waits for what each page must show and prints snapshots of the pages; the assertions here
//! check those snapshots again, as concrete page contents. Screenshots go to `e2e/artifacts/`.
//!
//! Chromium is Debian's `/usr/bin/chromium` (installed by `scripts/install-deps.sh`); without
//! it the test fails, it never skips.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use volley_test_support::{NodeOutput, repo_root, run_node};

const CHROMIUM: &str = "/usr/bin/chromium";
const DEADLINE: Duration = Duration::from_secs(300);

#[tokio::test(flavor = "multi_thread")]
async fn chat_page_works_in_chromium() {
    assert!(
        Path::new(CHROMIUM).is_file(),
        "{CHROMIUM} is missing: the browser test needs Debian's chromium \
         (scripts/install-deps.sh installs it, or: apt-get install chromium)"
    );
    let client_js = tokio::task::spawn_blocking(volley_example_chat::socket_io_client)
        .await
        .expect("the npm step does not panic")
        .expect("the chat example gets socket.io-client from npm");
    let io = volley_example_chat::socket_io();
    let app = volley_example_chat::router(&io, client_js);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let url = format!("http://{}", listener.local_addr().expect("bound address"));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let shots = repo_root().join("e2e").join("artifacts");
    std::fs::create_dir_all(&shots).expect("create e2e/artifacts");
    let shots = shots.to_str().expect("a UTF-8 path");
    let out = run_node("chat-browser.mjs", &[&url, shots], DEADLINE).await;
    out.assert_success();
    assert_eq!(out.events("done").len(), 1, "{out}");
    for shot in out.events("screenshot") {
        println!("screenshot: {}", shot["path"].as_str().unwrap_or_default());
    }

    // Bob types in lobby: alice sees it; carol, in garden, sees nothing of lobby.
    let alice = snapshot(&out, "typing", "alice");
    assert_eq!(alice["typing"], "bob is typing…", "{out}");
    let carol = snapshot(&out, "typing", "carol");
    assert_eq!(carol["typing"], "", "{out}");

    // After the exchange.
    let alice = snapshot(&out, "chat", "alice");
    assert_eq!(alice["status"], "connected as alice (websocket)", "{out}");
    assert_eq!(alice["online"], "3 online", "{out}");
    assert_eq!(alice["room"], "lobby", "{out}");
    assert_eq!(alice["members"], json!(["alice", "bob"]), "{out}");
    assert_eq!(alice["presence"], "carol connected", "{out}");
    assert_eq!(
        alice["api"], "GET /api/hello: Hello from axum, next to Volley",
        "{out}"
    );
    assert_eq!(
        log(&alice),
        [
            "notice: You joined lobby",
            "notice: bob joined",
            "message: bob: hello alice",
            "message mine: alice: hi bob [delivered]",
        ],
        "{out}"
    );
    assert_eq!(alice["typing"], "bob is typing…", "{out}");

    // Bob's own join is not announced to him (`socket.to(room)` leaves the sender out).
    let bob = snapshot(&out, "chat", "bob");
    assert_eq!(
        log(&bob),
        [
            "notice: You joined lobby",
            "message mine: bob: hello alice [delivered]",
            "message: alice: hi bob",
        ],
        "{out}"
    );
    let carol = snapshot(&out, "chat", "carol");
    assert_eq!(log(&carol), ["notice: You joined garden"], "{out}");
    assert_eq!(carol["members"], json!(["carol"]), "{out}");
    assert_eq!(carol["typing"], "", "{out}");

    // Dave's bad token: refused by the middleware, the page says why.
    let dave = snapshot(&out, "refused", "dave");
    assert_eq!(
        dave["error"], r#"Connection refused: invalid token (the demo token is "secret")"#,
        "{out}"
    );
    assert_eq!(dave["status"], "refused", "{out}");
    assert_eq!(dave["online"], "", "{out}");

    // Bob left lobby, then closed his page; dave was never online.
    let alice = snapshot(&out, "left", "alice");
    assert_eq!(
        log(&alice).last().map(String::as_str),
        Some("notice: bob left"),
        "{out}"
    );
    assert_eq!(alice["members"], json!(["alice"]), "{out}");
    assert_eq!(alice["online"], "2 online", "{out}");
    let carol = snapshot(&out, "left", "carol");
    assert_eq!(log(&carol), ["notice: You joined garden"], "{out}");
    assert_eq!(carol["online"], "2 online", "{out}");

    // A network blip: alice came back recovered (connection state recovery), still in lobby,
    // with carol's message written while she was away, exactly once.
    let alice = snapshot(&out, "blip", "alice");
    let status = alice["status"].as_str().unwrap_or_default();
    assert!(
        status.starts_with("connected as alice (") && status.ends_with("nothing missed"),
        "{out}"
    );
    assert_eq!(alice["room"], "lobby", "{out}");
    let log = log(&alice);
    let missed = "message: carol: are you there?";
    assert_eq!(log.iter().filter(|l| *l == missed).count(), 1, "{out}");
    assert_eq!(log.last().map(String::as_str), Some(missed), "{out}");
    assert_eq!(
        log.iter()
            .filter(|l| l.as_str() == "notice: You joined lobby")
            .count(),
        1,
        "a recovered client does not join again: {out}"
    );
}

/// The snapshot the script took of `page` at `step`.
#[track_caller]
fn snapshot(out: &NodeOutput, step: &str, page: &str) -> Value {
    out.events("snapshot")
        .into_iter()
        .find(|s| s["step"] == step && s["page"] == page)
        .unwrap_or_else(|| panic!("no snapshot of {page} at step {step:?}\n{out}"))
}

/// A page's message log as `"kind: text [ack]"` lines.
fn log(snapshot: &Value) -> Vec<String> {
    let entries = snapshot["log"].as_array().cloned().unwrap_or_default();
    entries
        .iter()
        .map(|e| {
            let (kind, text) = (e["kind"].as_str(), e["text"].as_str());
            let line = format!("{}: {}", kind.unwrap_or("?"), text.unwrap_or("?"));
            match e["ack"].as_str() {
                Some(ack) => format!("{line} [{ack}]"),
                None => line,
            }
        })
        .collect()
}
