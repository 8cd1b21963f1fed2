//! volley-client against three server implementations, the official Node server (socket.io
//! 4.8), the Volley server and python-socketio 5.x (on aiohttp), over each transport: polling
//! only, WebSocket only, and polling upgraded to WebSocket.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::{Kind, Ping, Proxy, Server, WAIT, recv, wait_for};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use volley_client::{
    AckError, AckSender, Data, DisconnectReason, Manager, ManagerBuilder, ManagerEvent, Overflow,
    RawArgs, Socket, SocketEvent, TransportKind,
};

#[derive(Debug, Clone, Copy)]
enum Mode {
    Polling,
    WebSocket,
    Upgrade,
}

fn builder(url: &str, mode: Mode) -> ManagerBuilder {
    let b = Manager::builder(url)
        .query("q", "a b&c")
        .header("X-Volley-Test", "yes")
        .reconnection_delay(Duration::from_millis(100))
        .reconnection_delay_max(Duration::from_millis(400))
        // A connection attempt may take this long: a bound on a hang, not a speed.
        .timeout(Some(WAIT));
    match mode {
        Mode::Polling => b.transports(&[TransportKind::Polling]),
        Mode::WebSocket => b.transports(&[TransportKind::WebSocket]),
        Mode::Upgrade => b.transports(&[TransportKind::Polling, TransportKind::WebSocket]),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct File {
    name: String,
    data: Bytes,
    parts: Vec<Bytes>,
}

/// Events both ways, acks both ways, binary, two namespaces on one connection, refused auth
/// with data, a server-side disconnect, and no reconnection after the last manual disconnect.
async fn suite(kind: Kind, mode: Mode) {
    let server = Server::start(kind, Ping::default()).await;
    let manager = builder(&server.url(), mode).build().unwrap();
    let mut mevents = manager.events();

    let (echo_tx, mut echo_rx) = mpsc::unbounded_channel::<(String, RawArgs)>();
    let (answer_tx, mut answer_rx) = mpsc::unbounded_channel::<Value>();
    let (any_tx, mut any_rx) = mpsc::unbounded_channel::<String>();
    let tx = echo_tx.clone();
    let main = manager
        .socket("/")
        .on("echo", move |s: Socket, args: RawArgs| {
            let tx = tx.clone();
            async move {
                let _ = tx.send((s.namespace().to_owned(), args));
            }
        })
        // The server asks; the handler itself emits and awaits an ack before answering.
        .on(
            "question",
            |s: Socket, Data(v): Data<Value>, ack: AckSender| async move {
                let round: Value = s
                    .timeout(WAIT)
                    .emit_with_ack("ack", &json!({ "inner": v }))
                    .await
                    .expect("ack from inside a handler");
                let _ = ack.send(&json!({ "got": v, "round": round }));
            },
        )
        .on("answer", move |_: Socket, Data(v): Data<Value>| {
            let tx = answer_tx.clone();
            async move {
                let _ = tx.send(v);
            }
        })
        .on_any(move |_: Socket, event: String, _: RawArgs| {
            let tx = any_tx.clone();
            async move {
                let _ = tx.send(event);
            }
        })
        .connect()
        .await
        .expect("connect /");
    assert!(main.connected());
    assert!(main.id().is_some());
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
    assert_ne!(main.id(), admin.id());

    // The transport, once settled.
    match mode {
        Mode::Polling => assert_eq!(manager.transport(), Some(TransportKind::Polling)),
        Mode::WebSocket => assert_eq!(manager.transport(), Some(TransportKind::WebSocket)),
        Mode::Upgrade => {
            if manager.transport() != Some(TransportKind::WebSocket) {
                wait_for(&mut mevents, "upgrade", |e| {
                    (*e == ManagerEvent::Upgrade(TransportKind::WebSocket)).then_some(())
                })
                .await;
            }
            assert_eq!(manager.transport(), Some(TransportKind::WebSocket));
        }
    }

    // Query parameters and headers reach the server, on every transport.
    let hs: Value = main
        .timeout(WAIT)
        .emit_with_ack("handshake", &())
        .await
        .unwrap();
    assert_eq!(hs, json!({ "query": "a b&c", "header": "yes" }));

    // Events both ways, several arguments.
    main.emit_args("echo", ("hello", 42, json!({ "a": [1, 2] })))
        .unwrap();
    let (nsp, args) = recv(&mut echo_rx, "echo").await;
    assert_eq!(nsp, "/");
    let (s, n, o): (String, u32, Value) = args.parse().unwrap();
    assert_eq!((s.as_str(), n, o), ("hello", 42, json!({ "a": [1, 2] })));
    assert_eq!(recv(&mut any_rx, "on_any").await, "echo");

    // Client → server ack.
    let r: (String, u32) = main
        .timeout(WAIT)
        .emit_args_with_ack("ack", ("x", 7))
        .await
        .unwrap();
    assert_eq!(r, ("x".to_owned(), 7));

    // Server → client ack, answered by a handler that awaited its own ack first.
    main.emit("ask", &5).unwrap();
    let answer = recv(&mut answer_rx, "answer").await;
    assert_eq!(answer, json!({ "got": 5, "round": { "inner": 5 } }));

    // Binary anywhere, both ways, in events and acks.
    let file = File {
        name: "a.bin".into(),
        data: Bytes::from_static(&[0, 1, 2, 255]),
        parts: vec![
            Bytes::from_static(b"x"),
            Bytes::new(),
            Bytes::from(vec![7u8; 100_000]),
        ],
    };
    main.emit("echo", &file).unwrap();
    let (_, args) = recv(&mut echo_rx, "binary echo").await;
    assert_eq!(args.attachments().len(), 4);
    assert_eq!(args.parse::<File>().unwrap(), file);
    let back: (File, Bytes) = main
        .timeout(WAIT)
        .emit_args_with_ack("ack", (&file, Bytes::from_static(b"tail")))
        .await
        .unwrap();
    assert_eq!(back, (file.clone(), Bytes::from_static(b"tail")));

    // Namespaces are separate on the one connection.
    admin.emit("echo", "to admin").unwrap();
    let (nsp, args) = recv(&mut echo_rx, "admin echo").await;
    assert_eq!(nsp, "/admin");
    assert_eq!(args.parse::<String>().unwrap(), "to admin");

    // Refused auth, with the server's data; then accepted with an auth closure.
    let err = manager
        .socket("/secure")
        .auth(json!({ "token": "bad" }))
        .connect()
        .await
        .unwrap_err();
    assert!(err.is_from_server());
    assert_eq!(err.message(), "not authorized");
    assert_eq!(err.data(), Some(&json!({ "code": 42 })));
    let secure = manager
        .socket("/secure")
        .auth_with(|| async { Some(json!({ "token": "ok" })) })
        .connect()
        .await
        .expect("auth ok");
    let r: String = secure
        .timeout(WAIT)
        .emit_with_ack("ack", "in")
        .await
        .unwrap();
    assert_eq!(r, "in");

    // A server-side disconnect: no reconnection of that socket; the others stay.
    let mut aev = admin.events();
    admin.emit("kick", &()).unwrap();
    wait_for(&mut aev, "server disconnect", |e| {
        (*e == SocketEvent::Disconnect(DisconnectReason::IoServerDisconnect)).then_some(())
    })
    .await;
    assert!(!admin.active());
    let r: u32 = main.timeout(WAIT).emit_with_ack("ack", &1).await.unwrap();
    assert_eq!(r, 1);
    // Had the kicked socket sent a CONNECT, it would have gone out before this ack's request
    // on the same connection, and its answer would have come back before the ack's: no wait
    // is needed to see that nothing reconnected.
    assert!(!admin.connected());
    while let Ok(e) = aev.try_recv() {
        assert!(
            e != SocketEvent::Connect,
            "the kicked socket reconnected: {e:?}"
        );
    }

    // Manual disconnect of the last sockets: the connection closes, nothing reconnects.
    let mut mev = manager.events();
    secure.disconnect();
    main.disconnect();
    // The sockets said "io client disconnect"; the manager's own close is "forced close", as
    // socket.io-client's manager closes itself when its last socket leaves.
    wait_for(&mut mev, "close", |e| {
        (*e == ManagerEvent::Close(DisconnectReason::ForcedClose)).then_some(())
    })
    .await;
    let quiet = tokio::time::timeout(Duration::from_millis(600), async {
        loop {
            if let Ok(ManagerEvent::ReconnectAttempt(_) | ManagerEvent::Open(_)) = mev.recv().await
            {
                return;
            }
        }
    })
    .await;
    assert!(quiet.is_err(), "reconnected after a manual disconnect");
    assert_eq!(manager.transport(), None);
}

/// The server goes away and comes back on the same port: the manager reconnects by itself,
/// acks pending at the disconnect fail, emits made meanwhile are delivered in order, and auth
/// is computed again.
async fn restart(kind: Kind, mode: Mode) {
    let mut server = Server::start(kind, Ping::default()).await;
    let manager = builder(&server.url(), mode).build().unwrap();
    let mut mev = manager.events();
    let counter = Arc::new(AtomicU32::new(0));
    let c = counter.clone();
    let socket = manager
        .socket("/")
        .auth_with(move || {
            let n = c.fetch_add(1, Ordering::SeqCst) + 1;
            async move { Some(json!({ "n": n })) }
        })
        .connect()
        .await
        .unwrap();
    if let Mode::Upgrade = mode {
        common::settled(&manager, &mut mev, TransportKind::WebSocket).await;
    }
    let mut sev = socket.events();
    // An ack the server never sends ("flaky" answers only a repeated key): pending when the
    // server goes away. Emitted while connected, it belongs to that connection: its ack fails
    // whether or not the event was written before the connection went away, and it is not
    // sent again after the reconnection (the new server's list below would show it).
    let pending = socket.emit_with_ack::<Value>("flaky", "lost");

    server.stop().await;
    let reason = wait_for(&mut sev, "disconnect", |e| match e {
        SocketEvent::Disconnect(r) => Some(*r),
        _ => None,
    })
    .await;
    // The server was killed: socket.io-client says "transport close" when its WebSocket
    // closes, and "transport error" when a long-polling request fails.
    let expected = match mode {
        Mode::Polling => DisconnectReason::TransportError,
        Mode::WebSocket | Mode::Upgrade => DisconnectReason::TransportClose,
    };
    assert_eq!(reason, expected);
    assert!(reason.will_reconnect(), "{reason:?}");
    assert!(matches!(
        tokio::time::timeout(WAIT, pending).await.unwrap(),
        Err(AckError::Disconnected)
    ));

    // Buffered while disconnected, in order; one with an ack that survives the outage.
    for i in 0..20 {
        socket.emit("collect", &i).unwrap();
    }
    let buffered_ack = socket.emit_with_ack::<bool>("collect", &20);
    assert_eq!(socket.buffered(), 21);
    wait_for(&mut mev, "reconnect attempt", |e| {
        matches!(e, ManagerEvent::ReconnectAttempt(_)).then_some(())
    })
    .await;

    server.restart().await;
    wait_for(&mut sev, "reconnect", |e| {
        (*e == SocketEvent::Connect).then_some(())
    })
    .await;
    assert!(
        tokio::time::timeout(WAIT, buffered_ack)
            .await
            .unwrap()
            .unwrap()
    );
    let list: Vec<u32> = socket
        .timeout(WAIT)
        .emit_with_ack("collected", &())
        .await
        .unwrap();
    assert_eq!(list, (0..=20).collect::<Vec<_>>());
    // The new server saw a freshly computed auth.
    let auths: Vec<Value> = socket
        .timeout(WAIT)
        .emit_with_ack("auths", &())
        .await
        .unwrap();
    assert_eq!(auths.len(), 1, "{auths:?}");
    assert!(auths[0]["n"].as_u64().unwrap() >= 2, "{auths:?}");
    assert!(counter.load(Ordering::SeqCst) >= 2);
    manager.close();
}

/// The network goes silent (a frozen proxy): the client notices by its heartbeat deadline
/// (`pingInterval + pingTimeout` after the last ping: a ping timeout, not a transport error),
/// then reconnects once the network is back.
async fn heartbeat(kind: Kind, mode: Mode) {
    // Pings come often; the pong deadline is long enough that a pong delayed by a busy machine
    // never ends a healthy connection (the client then needs about 5 s to notice the freeze).
    let ping = Ping {
        interval: 200,
        timeout: 5_000,
    };
    let server = Server::start(kind, ping).await;
    let proxy = Proxy::start(server.port).await;
    let manager = builder(&proxy.url(), mode).build().unwrap();
    let mut mev = manager.events();
    // Subscribed before connecting: the Connect event may reach a receiver subscribed only
    // once `wait_connected` returned.
    let socket = manager.socket("/").build();
    let mut sev = socket.events();
    socket.connect();
    tokio::time::timeout(WAIT, socket.wait_connected())
        .await
        .expect("connected within WAIT")
        .unwrap();
    wait_for(&mut sev, "connect", |e| {
        (*e == SocketEvent::Connect).then_some(())
    })
    .await;
    if let Mode::Upgrade = mode {
        common::settled(&manager, &mut mev, TransportKind::WebSocket).await;
    }
    // A few heartbeats go by first: an idle client sends something (a pong, or the requests
    // of a polling cycle) only because the server pinged it.
    let sent = proxy.upstream();
    proxy.wait_upstream(sent + 6).await;
    let r: u32 = socket.timeout(WAIT).emit_with_ack("ack", &1).await.unwrap();
    assert_eq!(r, 1);
    let quiet = sev.try_recv();
    assert!(
        matches!(
            quiet,
            Err(tokio::sync::broadcast::error::TryRecvError::Empty)
        ),
        "during the heartbeats: {quiet:?}"
    );
    proxy.freeze(true);
    let reason = wait_for(&mut sev, "ping timeout", |e| match e {
        SocketEvent::Disconnect(r) => Some(*r),
        _ => None,
    })
    .await;
    assert_eq!(reason, DisconnectReason::PingTimeout);
    proxy.freeze(false);
    wait_for(&mut sev, "reconnect", |e| {
        (*e == SocketEvent::Connect).then_some(())
    })
    .await;
    let r: u32 = socket.timeout(WAIT).emit_with_ack("ack", &3).await.unwrap();
    assert_eq!(r, 3);
    manager.close();
}

/// Events the server emits from its connection handler: python-socketio writes them before
/// the namespace's CONNECT answer (`42/early,[...]` then `40/early,{...}`). They are kept and
/// delivered once, in order, binary included, with the socket connected, before the
/// `connect` event, as socket.io-client's `receiveBuffer` does; and to event streams too.
async fn early(mode: Mode) {
    let server = Server::start(Kind::Python, Ping::default()).await;
    let manager = builder(&server.url(), mode).build().unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let t = tx.clone();
    let socket = manager
        .socket("/early")
        .on("early", move |s: Socket, args: RawArgs| {
            let what = match args.parse::<Bytes>() {
                Ok(b) => format!("binary {:?}", &b[..]),
                Err(_) => args.parse::<Value>().unwrap().to_string(),
            };
            let _ = t.send(format!("early {what} connected={}", s.connected()));
            async {}
        })
        .on_connect(move |_: Socket| {
            let _ = tx.send("connect".to_owned());
            async {}
        })
        .build();
    let mut stream = socket.event_stream();
    socket.connect();
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(recv(&mut rx, "early events and connect").await);
    }
    assert_eq!(
        seen,
        [
            "early 1 connected=true",
            "early 2 connected=true",
            "early binary [1, 2, 3] connected=true",
            "connect",
        ]
    );
    for want in ["1", "2"] {
        let (name, args) = tokio::time::timeout(WAIT, stream.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(name, "early");
        assert_eq!(args.parse::<Value>().unwrap().to_string(), want);
    }
    let (_, args) = tokio::time::timeout(WAIT, stream.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        args.parse::<Bytes>().unwrap(),
        Bytes::from_static(&[1, 2, 3])
    );
    // Nothing twice: after a round trip, no more early event came.
    let r: u32 = socket.timeout(WAIT).emit_with_ack("ack", &1).await.unwrap();
    assert_eq!(r, 1);
    assert!(rx.try_recv().is_err());
    manager.close();
}

/// The events kept before the CONNECT answer are bounded like the send buffer, with its
/// overflow rule: the newest dropped (`Reject`) or the oldest (`DropOldest`).
async fn early_bounded(overflow: Overflow, want: [&str; 2]) {
    let server = Server::start(Kind::Python, Ping::default()).await;
    let manager = builder(&server.url(), Mode::WebSocket).build().unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let t = tx.clone();
    let socket = manager
        .socket("/early")
        .send_buffer(2, overflow)
        .on("early", move |_: Socket, args: RawArgs| {
            let what = match args.parse::<Bytes>() {
                Ok(_) => "binary".to_owned(),
                Err(_) => args.parse::<Value>().unwrap().to_string(),
            };
            let _ = t.send(what);
            async {}
        })
        .on_connect(move |_: Socket| {
            let _ = tx.send("connect".to_owned());
            async {}
        })
        .connect()
        .await
        .unwrap();
    let seen = [
        recv(&mut rx, "first").await,
        recv(&mut rx, "second").await,
        recv(&mut rx, "connect").await,
    ];
    assert_eq!(seen, [want[0], want[1], "connect"]);
    let r: u32 = socket.timeout(WAIT).emit_with_ack("ack", &1).await.unwrap();
    assert_eq!(r, 1);
    assert!(rx.try_recv().is_err());
    manager.close();
}

mod early {
    use super::*;
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn python_bounded_reject() {
        super::early_bounded(Overflow::Reject, ["1", "2"]).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn python_bounded_drop_oldest() {
        super::early_bounded(Overflow::DropOldest, ["2", "binary"]).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn python_polling() {
        super::early(Mode::Polling).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn python_websocket() {
        super::early(Mode::WebSocket).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn python_upgrade() {
        super::early(Mode::Upgrade).await
    }
}

macro_rules! matrix {
    ($($name:ident: $kind:expr, $mode:expr;)*) => {
        mod suite {
            use super::*;
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::suite($kind, $mode).await })*
        }
        mod restart {
            use super::*;
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::restart($kind, $mode).await })*
        }
        mod heartbeat {
            use super::*;
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::heartbeat($kind, $mode).await })*
        }
    };
}

matrix! {
    node_polling: Kind::Node, Mode::Polling;
    node_websocket: Kind::Node, Mode::WebSocket;
    node_upgrade: Kind::Node, Mode::Upgrade;
    volley_polling: Kind::Volley, Mode::Polling;
    volley_websocket: Kind::Volley, Mode::WebSocket;
    volley_upgrade: Kind::Volley, Mode::Upgrade;
    python_polling: Kind::Python, Mode::Polling;
    python_websocket: Kind::Python, Mode::WebSocket;
    python_upgrade: Kind::Python, Mode::Upgrade;
}
