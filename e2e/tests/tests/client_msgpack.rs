//! volley-client with `Parser::MsgPack` against the official Node server (socket.io 4.8) with
//! `socket.io-msgpack-parser` 3.0.2 (`e2e/interop/scripts/client-server.mjs ... msgpack`),
//! over polling, WebSocket and the upgrade.

use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{broadcast, mpsc};
use volley_client::{
    AckSender, Data, Manager, ManagerEvent, Parser, RawArgs, Socket, TransportKind,
};

/// A bound on a hang, never reached unless something is broken.
const WAIT: Duration = Duration::from_secs(30);

/// The Node server, killed when dropped (and when its stdin closes).
struct Node {
    _child: tokio::process::Child,
    port: u16,
}

async fn start_node() -> Node {
    let dir = tokio::task::spawn_blocking(volley_test_support::ensure_node_modules)
        .await
        .expect("npm install");
    let mut child = tokio::process::Command::new("node")
        .arg(dir.join("scripts").join("client-server.mjs"))
        .args(["0", "25000", "20000", "msgpack"])
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start node (is Node.js installed?)");
    let stdout = child.stdout.take().expect("piped");
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .expect("node server did not start in time")
        .expect("read node stdout")
        .expect("node server exited before listening");
    let v: Value = serde_json::from_str(&line).expect("JSON line");
    assert_eq!(v["event"], "listening", "{line}");
    let port = v["port"].as_u64().expect("port") as u16;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Node {
        _child: child,
        port,
    }
}

async fn recv<T>(rx: &mut mpsc::UnboundedReceiver<T>, what: &str) -> T {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap_or_else(|_| panic!("no {what} within {WAIT:?}"))
        .unwrap_or_else(|| panic!("channel closed waiting for {what}"))
}

async fn upgraded(rx: &mut broadcast::Receiver<ManagerEvent>) {
    let fut = async {
        loop {
            match rx.recv().await {
                Ok(ManagerEvent::Upgrade(TransportKind::WebSocket)) => return,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => panic!("manager gone"),
            }
        }
    };
    tokio::time::timeout(WAIT, fut).await.expect("the upgrade");
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct File {
    name: String,
    parts: Vec<Bytes>,
}

async fn suite(transports: &[TransportKind]) {
    let node = start_node().await;
    let url = format!("http://127.0.0.1:{}", node.port);
    let manager = Manager::builder(&url)
        .parser(Parser::MsgPack)
        .transports(transports)
        .reconnection(false)
        .timeout(Some(WAIT))
        .build()
        .unwrap();
    let mut mevents = manager.events();
    let (echo_tx, mut echo_rx) = mpsc::unbounded_channel::<(String, RawArgs)>();
    let (answer_tx, mut answer_rx) = mpsc::unbounded_channel::<Value>();
    let tx = echo_tx.clone();
    let main = manager
        .socket("/")
        .auth(json!({"token": "t-1", "n": 7, "u": "ü"}))
        .on("echo", move |s: Socket, args: RawArgs| {
            let tx = tx.clone();
            async move {
                let _ = tx.send((s.namespace().to_owned(), args));
            }
        })
        .on(
            "question",
            |_: Socket, Data(v): Data<Value>, ack: AckSender| async move {
                let _ = ack.send(&json!({ "got": v }));
            },
        )
        .on("answer", move |_: Socket, Data(v): Data<Value>| {
            let tx = answer_tx.clone();
            async move {
                let _ = tx.send(v);
            }
        })
        .connect()
        .await
        .expect("connect /");
    let tx = echo_tx.clone();
    let admin = manager
        .socket("/admin")
        .on("echo", move |s: Socket, args: RawArgs| {
            let tx = tx.clone();
            async move {
                let _ = tx.send((s.namespace().to_owned(), args));
            }
        })
        .connect()
        .await
        .expect("connect /admin");
    if transports.len() == 2 && manager.transport() != Some(TransportKind::WebSocket) {
        upgraded(&mut mevents).await;
    }
    let expected = if transports == [TransportKind::Polling] {
        TransportKind::Polling
    } else {
        TransportKind::WebSocket
    };
    assert_eq!(manager.transport(), Some(expected));

    // The auth payload as the server saw it.
    let auths: Vec<Value> = main
        .timeout(WAIT)
        .emit_with_ack("auths", &())
        .await
        .unwrap();
    assert_eq!(auths, vec![json!({"token": "t-1", "n": 7, "u": "ü"})]);

    // Several arguments: integers and floats apart, unicode, null, nested binary.
    let file = File {
        name: "a.bin".into(),
        parts: vec![Bytes::from_static(&[0, 255]), Bytes::new()],
    };
    let args = (1, 1.5, -3, "héllo ✓ 🎉", None::<u8>, &file);
    main.emit_args("echo", args).unwrap();
    let (nsp, raw) = recv(&mut echo_rx, "echo").await;
    assert_eq!((nsp.as_str(), raw.parser()), ("/", Parser::MsgPack));
    assert!(raw.attachments().is_empty());
    assert!(raw.get::<Value>(0).unwrap().unwrap().is_u64());
    assert!(raw.get::<Value>(1).unwrap().unwrap().is_f64());
    let back: (u8, f64, i32, String, Option<u8>, File) = raw.parse().unwrap();
    assert_eq!(back, (1, 1.5, -3, "héllo ✓ 🎉".into(), None, file.clone()));

    // Acks both ways.
    let r: (String, u32, Bytes) = main
        .timeout(WAIT)
        .emit_args_with_ack("ack", ("x", 7, Bytes::from_static(b"tail")))
        .await
        .unwrap();
    assert_eq!(r, ("x".to_owned(), 7, Bytes::from_static(b"tail")));
    main.emit("ask", &5).unwrap();
    assert_eq!(recv(&mut answer_rx, "answer").await, json!({ "got": 5 }));

    // Namespaces are separate on the one connection.
    admin.emit("echo", "to admin").unwrap();
    let (nsp, raw) = recv(&mut echo_rx, "admin echo").await;
    assert_eq!(
        (nsp.as_str(), raw.parse::<String>().unwrap().as_str()),
        ("/admin", "to admin")
    );

    // Unknown namespace; refused auth with data.
    let err = manager.socket("/nope").connect().await.unwrap_err();
    assert_eq!(err.message(), "Invalid namespace");
    let err = manager
        .socket("/secure")
        .auth(json!({ "token": "bad" }))
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.message(), "not authorized");
    assert_eq!(err.data(), Some(&json!({ "code": 42 })));

    // 300 events in order.
    for i in 0..300 {
        main.emit("collect", &i).unwrap();
    }
    let collected: Vec<u32> = main
        .timeout(WAIT)
        .emit_with_ack("collected", &())
        .await
        .unwrap();
    assert_eq!(collected, (0..300).collect::<Vec<_>>());

    // 1 MB of binary, there and back.
    let big = Bytes::from((0..1_000_000u32).map(|i| (i * 7) as u8).collect::<Vec<_>>());
    let back: Bytes = main.timeout(WAIT).emit_with_ack("ack", &big).await.unwrap();
    assert_eq!(back, big);
    manager.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msgpack_polling() {
    suite(&[TransportKind::Polling]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msgpack_websocket() {
    suite(&[TransportKind::WebSocket]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msgpack_upgrade() {
    suite(&[TransportKind::Polling, TransportKind::WebSocket]).await
}
