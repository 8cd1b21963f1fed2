//! Connection lifecycle and hooks: middleware (global, namespace, dynamic namespaces),
//! handlers and packet hooks, reserved event names, room events, disconnect reasons, and the
//! cluster-facing methods without a cluster.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use volley::adapter::{
    AckSink, Adapter, AdapterError, BroadcastOptions, BroadcastPacket, LocalAdapter, LocalSockets,
    Room, RoomEvent, SocketInfo,
};
use volley::handler::BoxFuture;
use volley::{
    AckError, AckSender, ConnectError, Data, EmitError, PacketError, RawArgs, ServerAck, Socket,
    SocketIo,
};

fn set(rooms: Vec<Room>) -> BTreeSet<String> {
    rooms.iter().map(|r| r.to_string()).collect()
}

// ---------------------------------------------------------------------------------------
// Handlers and packet hooks
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn on_registers_replaces_and_off_removes() {
    let srv = start_default().await;
    let (tx, mut ready) = mpsc::unbounded_channel();
    srv.io.of("/").on_connection(move |s: Socket| {
        let tx = tx.clone();
        async move {
            s.on("ev", |s: Socket, Data(v): Data<i32>| async move {
                let _ = s.emit("first", &v);
            });
            // A later registration for the same name replaces the first.
            s.on("ev", |s: Socket, Data(v): Data<i32>| async move {
                let _ = s.emit("second", &v);
            });
            s.on("drop", |s: Socket| async move {
                s.off("ev");
                // Registered from a handler: the next packet finds it.
                s.on("late", |s: Socket| async move {
                    let _ = s.emit("late-ok", &());
                });
                let _ = s.emit("dropped", &());
            });
            // Arguments that do not fit the handler's type skip the handler.
            s.on("typed", |s: Socket, Data(v): Data<u8>| async move {
                let _ = s.emit("typed-ok", &v);
            });
            let _ = tx.send(());
        }
    });
    let mut a = srv.client().await;
    a.join("/").await;
    recv(&mut ready).await;

    a.emit("/", "ev", json!([1]));
    assert_eq!(
        a.expect_next_event("/", "second").await.args,
        vec![json!(1)]
    );
    a.emit("/", "typed", json!(["not a number"]));
    a.emit("/", "typed", json!([7]));
    assert_eq!(
        a.expect_next_event("/", "typed-ok").await.args,
        vec![json!(7)]
    );
    a.emit("/", "drop", json!([]));
    a.expect_next_event("/", "dropped").await;
    a.emit("/", "ev", json!([2]));
    a.emit("/", "late", json!([]));
    a.expect_next_event("/", "late-ok").await;
    a.emit("/", "typed", json!([8]));
    a.expect_next_event("/", "typed-ok").await;
}

/// A namespace whose sockets log their hooks to `log` and answer `sync` with an ack, so the
/// test knows every earlier packet was handled.
fn hooked_namespace(io: &SocketIo, log: Log) -> mpsc::UnboundedReceiver<Socket> {
    let (tx, rx) = mpsc::unbounded_channel();
    io.of("/").on_connection(move |s: Socket| {
        let tx = tx.clone();
        let log = log.clone();
        async move {
            let l = log.clone();
            s.on_any(move |_: Socket, event: String, args: RawArgs| {
                let l = l.clone();
                async move {
                    let first: Option<Value> = args.get(0).and_then(Result::ok);
                    l.push(format!("any:{event}:{}", first.unwrap_or(Value::Null)));
                }
            });
            let l = log.clone();
            s.on("ev", move |_: Socket, Data(v): Data<Value>| {
                let l = l.clone();
                async move { l.push(format!("handler:ev:{v}")) }
            });
            let l = log.clone();
            s.on("sync", move |_: Socket, _: RawArgs, ack: AckSender| {
                let l = l.clone();
                async move {
                    l.push("handler:sync");
                    let _ = ack.send(&"synced");
                }
            });
            let _ = tx.send(s);
        }
    });
    rx
}

#[tokio::test]
async fn on_any_sees_every_event_before_its_handler() {
    let srv = start_default().await;
    let log = Log::default();
    let mut socks = hooked_namespace(&srv.io, log.clone());
    let (mut a, _sa) = join_captured(&srv, "/", &mut socks).await;

    a.emit("/", "ev", json!([1]));
    a.emit("/", "unhandled", json!(["x"]));
    a.emit("/", "ev", json!([{"k": 2}]));
    assert_eq!(
        a.emit_with_ack("/", "sync", json!([])).await,
        vec![json!("synced")]
    );
    assert_eq!(
        log.take(),
        vec![
            "any:ev:1",
            "handler:ev:1",
            "any:unhandled:\"x\"",
            "any:ev:{\"k\":2}",
            "handler:ev:{\"k\":2}",
            "any:sync:null",
            "handler:sync",
        ]
    );
}

#[tokio::test]
async fn use_packet_rewrites_arguments_and_runs_in_order() {
    let srv = start_default().await;
    let log = Log::default();
    let mut socks = hooked_namespace(&srv.io, log.clone());
    let (mut a, sa) = join_captured(&srv, "/", &mut socks).await;

    let l = log.clone();
    sa.use_packet(move |_, event, args| {
        l.push(format!("mw1:{event}"));
        if event == "ev" {
            *args = RawArgs::new(vec![bytes::Bytes::from_static(b"\"rewritten\"")], vec![]);
        }
        Ok(())
    });
    let l = log.clone();
    sa.use_packet(move |_, event, args| {
        // Sees what the first middleware made of the arguments.
        let first: Option<Value> = args.get(0).and_then(Result::ok);
        l.push(format!("mw2:{event}:{}", first.unwrap_or(Value::Null)));
        Ok(())
    });

    a.emit("/", "ev", json!(["original"]));
    a.emit_with_ack("/", "sync", json!([])).await;
    assert_eq!(
        log.take(),
        vec![
            "mw1:ev",
            "mw2:ev:\"rewritten\"",
            "any:ev:\"rewritten\"",
            "handler:ev:\"rewritten\"",
            "mw1:sync",
            "mw2:sync:null",
            "any:sync:null",
            "handler:sync",
        ]
    );
}

#[tokio::test]
async fn use_packet_refusal_goes_to_on_error_and_skips_handlers() {
    let srv = start_default().await;
    let log = Log::default();
    let mut socks = hooked_namespace(&srv.io, log.clone());
    let (mut a, sa) = join_captured(&srv, "/", &mut socks).await;

    sa.use_packet(|_, event, _| {
        if event == "ev" {
            Err(PacketError("ev is forbidden".into()))
        } else {
            Ok(())
        }
    });
    let l = log.clone();
    sa.on_error(move |s, e| {
        l.push(format!("error:{e}"));
        let _ = s.emit("refused", &e.0);
    });

    a.emit("/", "ev", json!([1]));
    assert_eq!(
        a.expect_next_event("/", "refused").await.args,
        vec![json!("ev is forbidden")]
    );
    a.emit_with_ack("/", "sync", json!([])).await;
    // Neither on_any nor the handler saw the refused event.
    assert_eq!(
        log.take(),
        vec!["error:ev is forbidden", "any:sync:null", "handler:sync"]
    );
    // A refused event with an ack id gets no answer; the socket stays connected.
    assert!(sa.connected());
}

#[tokio::test]

async fn on_any_outgoing_sees_socket_emits() {
    let srv = start_default().await;
    let mut socks = capture_sockets(&srv.io.of("/"));
    let (mut a, sa) = join_captured(&srv, "/", &mut socks).await;
    let log = Log::default();
    let l = log.clone();
    sa.on_any_outgoing(move |_, event, args| {
        let first: Option<Value> = args.get(0).and_then(Result::ok);
        l.push(format!(
            "{event}:{}:{}",
            args.len(),
            first.unwrap_or(Value::Null)
        ));
    });

    sa.emit("one", &1).unwrap();
    sa.emit_args("two", ("a", "b")).unwrap();
    let ack = sa
        .timeout(Duration::from_millis(100))
        .emit_with_ack::<Value, _>("three", &3);
    // The observer runs synchronously, before the packet is queued.
    assert_eq!(log.take(), vec!["one:1:1", "two:2:\"a\"", "three:1:3"]);
    // A refused emit is not observed.
    assert!(sa.emit("disconnect", &0).is_err());
    assert!(log.take().is_empty());
    a.expect_next_event("/", "one").await;
    a.expect_next_event("/", "two").await;
    a.expect_next_event("/", "three").await;
    let _ = ack.await;
}

// ---------------------------------------------------------------------------------------
// Reserved event names
// ---------------------------------------------------------------------------------------

const RESERVED: [&str; 6] = [
    "connect",
    "disconnect",
    "disconnecting",
    "connect_error",
    "newListener",
    "removeListener",
];

fn is_reserved(r: Result<(), EmitError>, name: &str) -> bool {
    matches!(r, Err(EmitError::ReservedEvent(n)) if n == name)
}

#[tokio::test]
async fn reserved_event_names_are_refused_everywhere() {
    let srv = start_default().await;
    let mut socks = capture_sockets(&srv.io.of("/"));
    let (mut a, sa) = join_captured(&srv, "/", &mut socks).await;
    sa.join("r");
    let remote = srv.io.fetch_sockets().await.unwrap().remove(0);

    for name in RESERVED {
        assert!(is_reserved(sa.emit(name, &1), name), "socket emit {name}");
        assert!(
            is_reserved(sa.emit_args(name, ()), name),
            "socket emit_args {name}"
        );
        let r = sa.emit_with_ack::<Value, _>(name, &1).await;
        assert!(
            matches!(&r, Err(AckError::Emit(EmitError::ReservedEvent(n))) if n == name),
            "socket emit_with_ack {name}: {r:?}"
        );
        assert!(is_reserved(srv.io.emit(name, &1), name), "io emit {name}");
        assert!(
            is_reserved(srv.io.emit_args(name, (1, 2)), name),
            "io emit_args {name}"
        );
        assert!(
            is_reserved(srv.io.of("/").emit(name, &1), name),
            "ns emit {name}"
        );
        assert!(
            is_reserved(srv.io.of("/chat").emit_args(name, ()), name),
            "ns emit_args {name}"
        );
        assert!(
            is_reserved(srv.io.to("r").emit(name, &1), name),
            "to emit {name}"
        );
        assert!(
            is_reserved(sa.broadcast().emit(name, &1), name),
            "socket broadcast {name}"
        );
        assert!(
            is_reserved(remote.emit(name, &1), name),
            "remote emit {name}"
        );

        let all = tokio::time::timeout(
            WAIT,
            srv.io
                .timeout(NEVER)
                .emit_with_ack::<Value, _>(name, &1)
                .collect_all(),
        )
        .await
        .expect("a refused broadcast ends at once");
        assert_eq!(all.len(), 1, "{all:?}");
        assert!(
            matches!(&all[0].result, Err(AckError::Emit(EmitError::ReservedEvent(n))) if n == name),
            "broadcast emit_with_ack {name}: {all:?}"
        );
    }

    // Nothing of the above reached the client; names that merely look alike are allowed.
    sa.emit("Connect", &1).unwrap();
    srv.io.emit("connected", &2).unwrap();
    a.expect_next_event("/", "Connect").await;
    a.expect_next_event("/", "connected").await;
}

// ---------------------------------------------------------------------------------------
// Room events
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn room_events_follow_join_leave_and_disconnect() {
    let srv = start_default().await;
    let ns = srv.io.of("/");
    let events = Arc::new(Mutex::new(Vec::<RoomEvent>::new()));
    let e = events.clone();
    ns.on_room_event(move |ev| e.lock().unwrap().push(ev.clone()));
    let take = || std::mem::take(&mut *events.lock().unwrap());
    let room = |s: &str| -> Room { Arc::from(s) };

    let mut socks = capture_sockets(&ns);
    let (a, sa) = join_captured(&srv, "/", &mut socks).await;
    let id_a = sa.id().clone();
    assert_eq!(
        take(),
        vec![
            RoomEvent::Create(room(&id_a)),
            RoomEvent::Join(room(&id_a), id_a.clone())
        ]
    );

    sa.join("r");
    assert_eq!(
        take(),
        vec![
            RoomEvent::Create(room("r")),
            RoomEvent::Join(room("r"), id_a.clone())
        ]
    );
    sa.join("r");
    assert_eq!(take(), vec![], "joining twice changes nothing");

    let (_b, sb) = join_captured(&srv, "/", &mut socks).await;
    let id_b = sb.id().clone();
    take();
    sb.join("r");
    assert_eq!(take(), vec![RoomEvent::Join(room("r"), id_b.clone())]);

    sa.leave("r");
    assert_eq!(take(), vec![RoomEvent::Leave(room("r"), id_a.clone())]);
    sa.leave("r");
    sa.leave("never-joined");
    assert_eq!(take(), vec![]);
    sb.leave("r");
    assert_eq!(
        take(),
        vec![
            RoomEvent::Leave(room("r"), id_b.clone()),
            RoomEvent::Delete(room("r"))
        ]
    );

    // Utility operations go through the same path.
    srv.io.to(id_b.as_str()).sockets_join("u");
    assert_eq!(
        take(),
        vec![
            RoomEvent::Create(room("u")),
            RoomEvent::Join(room("u"), id_b.clone())
        ]
    );
    srv.io.sockets_leave("u");
    assert_eq!(
        take(),
        vec![
            RoomEvent::Leave(room("u"), id_b.clone()),
            RoomEvent::Delete(room("u"))
        ]
    );

    // Disconnecting leaves every room: each room's Leave comes before its Delete.
    sa.join("x");
    take();
    let (tx, mut gone) = mpsc::unbounded_channel();
    sa.on_disconnect(move |_, _| async move {
        let _ = tx.send(());
    });
    a.leave_ns("/");
    recv(&mut gone).await;
    let got = take();
    assert_eq!(got.len(), 4, "{got:?}");
    for r in [id_a.as_str(), "x"] {
        let leave = got
            .iter()
            .position(|e| *e == RoomEvent::Leave(room(r), id_a.clone()));
        let delete = got.iter().position(|e| *e == RoomEvent::Delete(room(r)));
        assert!(
            matches!((leave, delete), (Some(l), Some(d)) if l < d),
            "{r}: {got:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Connection middleware and dynamic namespaces
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn global_middleware_runs_before_namespace_middleware() {
    let srv = start_default().await;
    let log = Log::default();
    let l = log.clone();
    srv.io.middleware(move |s: Socket| {
        let l = l.clone();
        async move {
            assert!(!s.connected(), "not connected while middleware runs");
            l.push(format!("global:{}", s.namespace()));
            Ok(())
        }
    });
    let chat = srv.io.of("/chat");
    for name in ["ns1", "ns2"] {
        let l = log.clone();
        chat.middleware(move |_: Socket| {
            let l = l.clone();
            async move {
                // An awaiting middleware keeps its place in the order.
                tokio::task::yield_now().await;
                l.push(name);
                Ok(())
            }
        });
    }
    let mut socks = capture_sockets(&chat);

    let (_a, _sa) = join_captured(&srv, "/chat", &mut socks).await;
    assert_eq!(log.take(), vec!["global:/chat", "ns1", "ns2"]);
    let mut b = srv.client().await;
    b.join("/").await;
    assert_eq!(log.take(), vec!["global:/"]);
}

#[tokio::test]
async fn middleware_refusal_sends_connect_error_with_message_and_data() {
    let srv = start_default().await;
    let chat = srv.io.of("/chat");
    chat.middleware(|s: Socket| async move {
        match s.handshake().auth().get("token").and_then(Value::as_str) {
            Some("x") => {
                s.set_data(&json!({"user": "x"})).unwrap();
                Ok(())
            }
            Some(_) => Err(ConnectError::new("bad token").with_data(json!({"retry": false}))),
            None => Err(ConnectError::new("no token")),
        }
    });
    let log = Log::default();
    let l = log.clone();
    let (tx, mut socks) = mpsc::unbounded_channel();
    chat.on_connection(move |s: Socket| {
        let l = l.clone();
        let tx = tx.clone();
        async move {
            l.push(format!("connected:{}", s.data_value()));
            let _ = tx.send(s);
        }
    });

    let mut a = srv.client().await;
    assert_eq!(
        a.try_join("/chat", Some(json!({"token": "y"}))).await,
        Err(json!({"message": "bad token", "data": {"retry": false}}))
    );
    // Without data the payload has only the message.
    assert_eq!(
        a.try_join("/chat", None).await,
        Err(json!({"message": "no token"}))
    );
    // The connection stays usable: the same client joins with the right token.
    let sid = a
        .try_join("/chat", Some(json!({"token": "x"})))
        .await
        .unwrap();
    let s = recv(&mut socks).await;
    assert_eq!(s.id(), sid);
    assert_eq!(log.take(), vec!["connected:{\"user\":\"x\"}"]);
    assert_eq!(srv.io.of("/chat").sockets().len(), 1);

    // The same on the main namespace, whose packets carry no namespace on the wire.
    srv.io.of("/").middleware(|_: Socket| async move {
        Err(ConnectError::new("closed").with_data("maintenance"))
    });
    a.send_raw("0");
    let p = a.next_packet("/").await;
    assert_eq!(
        describe(&p),
        "ConnectError nsp=/ {\"message\":\"closed\",\"data\":\"maintenance\"}"
    );
}

#[tokio::test]
async fn global_refusal_skips_namespace_middleware_and_handler() {
    let srv = start_default().await;
    srv.io.middleware(|s: Socket| async move {
        if s.handshake().auth().get("ban").is_some() {
            Err(ConnectError::new("banned"))
        } else {
            Ok(())
        }
    });
    let log = Log::default();
    let l = log.clone();
    srv.io.of("/").middleware(move |_: Socket| {
        let l = l.clone();
        async move {
            l.push("ns");
            Ok(())
        }
    });
    let mut socks = capture_sockets(&srv.io.of("/"));

    let mut a = srv.client().await;
    assert_eq!(
        a.try_join("/", Some(json!({"ban": true}))).await,
        Err(json!({"message": "banned"}))
    );
    assert!(log.take().is_empty());
    // The next captured socket is the accepted one: the refused one never got there.
    let sid = a.try_join("/", Some(json!({}))).await.unwrap();
    assert_eq!(recv(&mut socks).await.id(), sid);
    assert_eq!(log.take(), vec!["ns"]);
}

#[tokio::test]
async fn unknown_namespace_is_refused() {
    let srv = start_default().await;
    let mut a = srv.client().await;
    assert_eq!(
        a.try_join("/nowhere", None).await,
        Err(json!({"message": "Invalid namespace"}))
    );
    a.join("/").await;
}

#[tokio::test]
async fn dynamic_namespaces_by_pattern() {
    let srv = start_default().await;
    let parent = srv.io.of_pattern("/room-*");
    parent.middleware(|s: Socket| async move {
        if s.namespace() == "/room-locked" {
            Err(ConnectError::new("locked"))
        } else {
            Ok(())
        }
    });
    let mut socks = capture_sockets(&parent);

    let (mut a, sa) = join_captured(&srv, "/room-1", &mut socks).await;
    let (mut b, sb) = join_captured(&srv, "/room-2", &mut socks).await;
    let (mut c, _sc) = join_captured(&srv, "/room-1", &mut socks).await;
    assert_eq!(sa.namespace(), "/room-1");
    assert_eq!(sb.namespace(), "/room-2");

    let mut d = srv.client().await;
    assert_eq!(
        d.try_join("/room-locked", None).await,
        Err(json!({"message": "locked"}))
    );
    for name in ["/room-1/sub", "/rooms", "/other"] {
        assert_eq!(
            d.try_join(name, None).await,
            Err(json!({"message": "Invalid namespace"})),
            "{name}"
        );
    }

    // Each child is its own namespace, reachable by name once created.
    srv.io.of("/room-1").emit("hello", &1).unwrap();
    srv.io.of("/room-2").emit("barrier", &0).unwrap();
    a.expect_next_event("/room-1", "hello").await;
    c.expect_next_event("/room-1", "hello").await;
    b.expect_next_event("/room-2", "barrier").await;
    assert_eq!(srv.io.of("/room-1").sockets().len(), 2);
    assert_eq!(srv.io.of("/room-2").sockets().len(), 1);
    // Rooms of children are separate too.
    sa.join("shared");
    sb.join("shared");
    srv.io
        .of("/room-2")
        .to("shared")
        .emit("only-2", &2)
        .unwrap();
    srv.io.of("/room-1").emit("barrier", &0).unwrap();
    a.expect_next_event("/room-1", "barrier").await;
    b.expect_next_event("/room-2", "only-2").await;
}

#[tokio::test]
async fn dynamic_namespaces_by_function_with_auth() {
    let srv = start_default().await;
    let parent = srv.io.of_fn(|name: String, auth: Value| async move {
        tokio::task::yield_now().await;
        name.starts_with("/dyn-") && auth.get("token") == Some(&json!("x"))
    });
    let mut socks = capture_sockets(&parent);

    let mut a = srv.client().await;
    let sid = a
        .try_join("/dyn-a", Some(json!({"token": "x"})))
        .await
        .unwrap();
    let sa = recv(&mut socks).await;
    assert_eq!((sa.id().as_str(), sa.namespace()), (sid.as_str(), "/dyn-a"));
    assert_eq!(sa.handshake().auth(), &json!({"token": "x"}));

    let mut b = srv.client().await;
    assert_eq!(
        b.try_join("/dyn-b", Some(json!({"token": "wrong"}))).await,
        Err(json!({"message": "Invalid namespace"}))
    );
    assert_eq!(
        b.try_join("/static-looking", Some(json!({"token": "x"})))
            .await,
        Err(json!({"message": "Invalid namespace"}))
    );
    // Once created, the child namespace exists for other clients as it is.
    b.try_join("/dyn-a", Some(json!({"token": "x"})))
        .await
        .unwrap();
    let _ = recv(&mut socks).await;
    srv.io.of("/dyn-a").emit("both", &1).unwrap();
    a.expect_next_event("/dyn-a", "both").await;
    b.expect_next_event("/dyn-a", "both").await;
}

// ---------------------------------------------------------------------------------------
// Disconnection
// ---------------------------------------------------------------------------------------

/// Records `on_disconnecting` (with the rooms then) and `on_disconnect` (with the rooms and
/// `connected()` then) of a socket, in order.
fn watch_disconnect(
    s: &Socket,
) -> mpsc::UnboundedReceiver<(String, &'static str, BTreeSet<String>, bool)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let t = tx.clone();
    s.on_disconnecting(move |s: Socket, r| {
        // Read synchronously: this part runs before the socket leaves its rooms.
        let rooms = set(s.rooms());
        let connected = s.connected();
        async move {
            let _ = t.send(("disconnecting".to_owned(), r.as_str(), rooms, connected));
        }
    });
    s.on_disconnect(move |s: Socket, r| {
        let rooms = set(s.rooms());
        let connected = s.connected();
        async move {
            let _ = tx.send(("disconnect".to_owned(), r.as_str(), rooms, connected));
        }
    });
    rx
}

#[tokio::test]
async fn client_namespace_disconnect() {
    let srv = start_default().await;
    let mut socks = capture_sockets(&srv.io.of("/"));
    let mut chat = capture_sockets(&srv.io.of("/chat"));
    let (mut a, sa) = join_captured(&srv, "/", &mut socks).await;
    a.join("/chat").await;
    let _ac = recv(&mut chat).await;
    sa.join(["r1", "r2"]);
    let mut seen = watch_disconnect(&sa);

    a.leave_ns("/");
    let (what, reason, rooms, _) = recv(&mut seen).await;
    assert_eq!(
        (what.as_str(), reason),
        ("disconnecting", "client namespace disconnect")
    );
    assert_eq!(
        rooms,
        [sa.id(), "r1", "r2"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
    let (what, reason, rooms, connected) = recv(&mut seen).await;
    assert_eq!(
        (what.as_str(), reason),
        ("disconnect", "client namespace disconnect")
    );
    assert!(rooms.is_empty(), "{rooms:?}");
    assert!(!connected);
    assert!(!sa.connected());
    assert!(srv.io.of("/").get_socket(sa.id()).is_none());
    assert!(srv.io.of("/").sockets().is_empty());
    assert!(!set(srv.io.all_rooms().await.unwrap()).contains("r1"));
    // The connection and its other namespace live on.
    srv.io.of("/chat").emit("alive", &1).unwrap();
    a.expect_next_event("/chat", "alive").await;
}

#[tokio::test]
async fn server_namespace_disconnect() {
    let srv = start_default().await;
    let mut socks = capture_sockets(&srv.io.of("/"));
    let (mut a, sa) = join_captured(&srv, "/", &mut socks).await;
    sa.join("r");
    let mut seen = watch_disconnect(&sa);

    sa.disconnect();
    a.expect_disconnect("/").await;
    let (what, reason, rooms, _) = recv(&mut seen).await;
    assert_eq!(
        (what.as_str(), reason),
        ("disconnecting", "server namespace disconnect")
    );
    assert!(rooms.contains("r"), "{rooms:?}");
    let (what, reason, _, _) = recv(&mut seen).await;
    assert_eq!(
        (what.as_str(), reason),
        ("disconnect", "server namespace disconnect")
    );
    // Disconnecting again does nothing; the connection stays open.
    sa.disconnect();
    assert_silent(&mut seen, Duration::from_millis(20)).await;
    let again = a.join("/").await;
    assert_ne!(again, sa.id());
}

#[tokio::test]
async fn disconnect_all_closes_every_namespace_and_the_connection() {
    let srv = start_default().await;
    let mut socks = capture_sockets(&srv.io.of("/"));
    let mut chat = capture_sockets(&srv.io.of("/chat"));
    let (mut a, sa) = join_captured(&srv, "/", &mut socks).await;
    a.join("/chat").await;
    let ac = recv(&mut chat).await;
    let mut seen_a = watch_disconnect(&sa);
    let mut seen_c = watch_disconnect(&ac);

    sa.disconnect_all();
    a.expect_disconnect("/").await;
    a.expect_disconnect("/chat").await;
    a.expect_closed().await;
    for seen in [&mut seen_a, &mut seen_c] {
        assert_eq!(recv(seen).await.1, "server namespace disconnect");
        assert_eq!(recv(seen).await.1, "server namespace disconnect");
    }
}

#[tokio::test]
async fn transport_close_on_a_clean_websocket_close() {
    let srv = start_default().await;
    let mut socks = capture_sockets(&srv.io.of("/"));
    let (a, sa) = join_captured(&srv, "/", &mut socks).await;
    sa.join("r");
    let mut seen = watch_disconnect(&sa);

    a.close();
    let (what, reason, rooms, _) = recv(&mut seen).await;
    assert_eq!(
        (what.as_str(), reason),
        ("disconnecting", "transport close")
    );
    assert!(rooms.contains("r"));
    let (what, reason, _, _) = recv(&mut seen).await;
    assert_eq!((what.as_str(), reason), ("disconnect", "transport close"));
}

#[tokio::test]
async fn transport_close_when_the_client_drops_tcp() {
    let srv = start_default().await;
    let mut socks = capture_sockets(&srv.io.of("/"));
    let (a, sa) = join_captured(&srv, "/", &mut socks).await;
    let mut seen = watch_disconnect(&sa);

    a.drop_tcp();
    let (what, reason, _, _) = recv(&mut seen).await;
    assert_eq!(
        (what.as_str(), reason),
        ("disconnecting", "transport close")
    );
    let (what, reason, _, _) = recv(&mut seen).await;
    assert_eq!((what.as_str(), reason), ("disconnect", "transport close"));
}

#[tokio::test]
async fn socket_data_and_extensions() {
    let srv = start_default().await;
    let mut socks = capture_sockets(&srv.io.of("/"));
    let (_a, sa) = join_captured(&srv, "/", &mut socks).await;

    assert_eq!(sa.data_value(), Value::Null);
    assert_eq!(sa.data::<u32>(), None);
    sa.set_data(&42u32).unwrap();
    assert_eq!(sa.data::<u32>(), Some(42));
    assert_eq!(sa.data::<String>(), None, "wrong type reads as None");
    sa.set_data(&json!({"a": [1, 2]})).unwrap();
    assert_eq!(sa.data_value(), json!({"a": [1, 2]}));

    #[derive(Clone, Debug, PartialEq)]
    struct Session(&'static str);
    sa.extensions().insert(Session("s1"));
    // Another handle to the same socket sees it.
    let same = srv.io.of("/").get_socket(sa.id()).unwrap();
    assert_eq!(same.extensions().get::<Session>(), Some(&Session("s1")));
    assert_eq!(sa.transport(), "websocket");
}

// ---------------------------------------------------------------------------------------
// Cluster-facing methods without a cluster
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn server_side_emit_server_count_and_all_rooms_without_cluster() {
    let srv = start_default().await;
    let mut socks = capture_sockets(&srv.io.of("/"));
    let (_a, sa) = join_captured(&srv, "/", &mut socks).await;
    let (_b, sb) = join_captured(&srv, "/", &mut socks).await;
    sa.join(["r1", "r2"]);
    sb.join("r2");

    let called = Log::default();
    let c = called.clone();
    srv.io.of("/").on_server_event("ping", move |_, _| {
        let c = c.clone();
        async move { c.push("local handler ran") }
    });
    srv.io.server_side_emit("ping", ("a", 1)).await.unwrap();
    srv.io
        .of("/chat")
        .server_side_emit("ping", ())
        .await
        .unwrap();
    let stream = tokio::time::timeout(
        WAIT,
        srv.io
            .of("/")
            .server_side_emit_with_ack::<Value>("ping", (1,), NEVER),
    )
    .await
    .unwrap()
    .unwrap();
    let answers = tokio::time::timeout(WAIT, stream.collect_all())
        .await
        .expect("no other server: resolves at once");
    assert!(answers.is_empty(), "{answers:?}");
    // Server-side events are for the other servers only.
    assert!(called.get().is_empty());

    assert_eq!(srv.io.server_count().await.unwrap(), 1);
    assert_eq!(srv.io.of("/chat").server_count().await.unwrap(), 1);

    let rooms = set(srv.io.all_rooms().await.unwrap());
    let want: BTreeSet<String> = [sa.id(), sb.id(), "r1", "r2"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(rooms, want);
    assert_eq!(srv.io.all_rooms().await.unwrap().len(), 4, "no duplicates");
    sa.leave("r1");
    assert!(!set(srv.io.of("/").all_rooms().await.unwrap()).contains("r1"));
    assert!(srv.io.of("/chat").all_rooms().await.unwrap().is_empty());
}

/// A stand-in for a cluster adapter: a local adapter that reports two servers and hands its
/// own server-side emits back to this namespace, as if the other server had sent them.
struct Loopback {
    local: LocalAdapter,
}

impl Adapter for Loopback {
    fn add_all(&self, id: &str, rooms: &[Room]) {
        self.local.add_all(id, rooms)
    }
    fn del(&self, id: &str, room: &str) {
        self.local.del(id, room)
    }
    fn del_all(&self, id: &str) {
        self.local.del_all(id)
    }
    fn socket_rooms(&self, id: &str) -> Vec<Room> {
        self.local.socket_rooms(id)
    }
    fn broadcast(&self, packet: &BroadcastPacket, opts: &BroadcastOptions) {
        self.local.broadcast(packet, opts)
    }
    fn broadcast_with_ack(
        &self,
        packet: &BroadcastPacket,
        ack_id: u64,
        opts: &BroadcastOptions,
        sink: Arc<dyn AckSink>,
    ) {
        self.local
            .broadcast_with_ack(packet, ack_id, opts, sink.clone());
        // The other server has nobody to send to.
        sink.client_count(0);
    }
    fn sockets(&self, opts: &BroadcastOptions) -> BoxFuture<Result<Vec<String>, AdapterError>> {
        self.local.sockets(opts)
    }
    fn fetch_sockets(
        &self,
        opts: &BroadcastOptions,
    ) -> BoxFuture<Result<Vec<SocketInfo>, AdapterError>> {
        self.local.fetch_sockets(opts)
    }
    fn add_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]) {
        self.local.add_sockets(opts, rooms)
    }
    fn del_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]) {
        self.local.del_sockets(opts, rooms)
    }
    fn disconnect_sockets(&self, opts: &BroadcastOptions, close: bool) {
        self.local.disconnect_sockets(opts, close)
    }
    fn all_rooms(&self) -> BoxFuture<Result<Vec<Room>, AdapterError>> {
        self.local.all_rooms()
    }
    fn server_count(&self) -> BoxFuture<Result<usize, AdapterError>> {
        Box::pin(std::future::ready(Ok(2)))
    }
    fn server_side_emit(
        &self,
        event: &str,
        args: &RawArgs,
        sink: Option<Arc<dyn AckSink>>,
    ) -> Result<(), AdapterError> {
        let ack =
            sink.map(|sink| ServerAck::new(move |reply| sink.response("other-server", reply)));
        self.local
            .local_sockets()
            .server_event(event, args.clone(), ack);
        Ok(())
    }
}

#[tokio::test]
async fn on_server_event_receives_and_answers_through_the_adapter() {
    let io = SocketIo::builder()
        .adapter(Arc::new(|sockets: LocalSockets| {
            Arc::new(Loopback {
                local: LocalAdapter::new(sockets),
            }) as Arc<dyn Adapter>
        }))
        .build();
    let srv = start(io).await;
    let got = Log::default();
    let g = got.clone();
    srv.io
        .of("/")
        .on_server_event("sum", move |args: RawArgs, ack: Option<ServerAck>| {
            let g = g.clone();
            async move {
                let a: i64 = args.get(0).unwrap().unwrap();
                let b: i64 = args.get(1).unwrap().unwrap();
                g.push(format!("sum {a} {b} ack={}", ack.is_some()));
                if let Some(ack) = ack {
                    ack.send(&(a + b)).unwrap();
                }
            }
        });

    srv.io.server_side_emit("sum", (1, 2)).await.unwrap();
    assert_eq!(got.take(), vec!["sum 1 2 ack=false"]);
    // Events without a handler are ignored.
    srv.io.server_side_emit("unknown", ()).await.unwrap();

    let stream = srv
        .io
        .of("/")
        .server_side_emit_with_ack::<i64>("sum", (20, 22), NEVER)
        .await
        .unwrap();
    let answers = tokio::time::timeout(WAIT, stream.collect_all())
        .await
        .expect("the one other server answered: no need to wait for the timeout");
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert_eq!(answers[0].socket_id.as_deref(), Some("other-server"));
    assert_eq!(*answers[0].result.as_ref().unwrap(), 42);
    assert_eq!(got.take(), vec!["sum 20 22 ack=true"]);
    assert_eq!(srv.io.server_count().await.unwrap(), 2);

    // Broadcast acks wait for the other server's count too, and end without the timeout.
    let mut socks = capture_sockets(&srv.io.of("/"));
    let (mut a, sa) = join_captured(&srv, "/", &mut socks).await;
    let stream = srv.io.timeout(NEVER).emit_with_ack::<i32, _>("q", &0);
    let e = a.next_event("/", "q").await;
    a.ack("/", e.ack_id.unwrap(), json!([5]));
    let all = tokio::time::timeout(WAIT, stream.collect_all())
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].socket_id.as_deref(), Some(sa.id().as_str()));
}

// ---------------------------------------------------------------------------------------
// Races and leaks around the CONNECT handshake
// ---------------------------------------------------------------------------------------

/// Registers, in `on_connection`, a handler for `hello` after some synchronous set-up work,
/// as an application loading state would.
fn slow_setup_namespace(io: &SocketIo) {
    io.of("/").on_connection(|s: Socket| async move {
        std::thread::sleep(Duration::from_millis(100));
        s.on("hello", |s: Socket| async move {
            let _ = s.emit("hi", &());
        });
    });
}

/// On a multi-threaded runtime too: the connection task does not read the client's next
/// packet before the synchronous part of `on_connection` ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_sent_right_after_connect_reaches_the_handler() {
    let srv = start_default().await;
    slow_setup_namespace(&srv.io);
    let mut a = srv.client().await;
    a.join("/").await;
    a.emit("/", "hello", json!([]));
    a.expect_next_event("/", "hi").await;
}

#[tokio::test]
async fn rooms_joined_in_middleware_are_kept_when_accepted() {
    let srv = start_default().await;
    srv.io.of("/").middleware(|s: Socket| async move {
        s.join("early");
        Ok(())
    });
    let mut socks = capture_sockets(&srv.io.of("/"));
    let (mut a, sa) = join_captured(&srv, "/", &mut socks).await;
    assert!(set(sa.rooms()).contains("early"));
    srv.io.to("early").emit("m", &1).unwrap();
    a.expect_next_event("/", "m").await;
}

#[tokio::test]

async fn rooms_joined_in_middleware_are_released_when_refused() {
    let srv = start_default().await;
    let events = Arc::new(Mutex::new(Vec::<RoomEvent>::new()));
    let e = events.clone();
    srv.io
        .of("/")
        .on_room_event(move |ev| e.lock().unwrap().push(ev.clone()))
        .middleware(|s: Socket| async move {
            s.join("lobby");
            Err(ConnectError::new("no"))
        });
    let mut a = srv.client().await;
    assert!(a.try_join("/", None).await.is_err());
    let rooms = set(srv.io.all_rooms().await.unwrap());
    assert!(rooms.is_empty(), "rooms left behind: {rooms:?}");
    let evs = events.lock().unwrap().clone();
    assert_eq!(
        evs.last(),
        Some(&RoomEvent::Delete(Arc::from("lobby"))),
        "{evs:?}"
    );
}

#[tokio::test]

async fn a_dynamic_parent_namespace_broadcasts_to_its_children() {
    let srv = start_default().await;
    let parent = srv.io.of_pattern("/team-*");
    let mut socks = capture_sockets(&parent);
    let (mut a, _) = join_captured(&srv, "/team-a", &mut socks).await;
    let (mut b, _) = join_captured(&srv, "/team-b", &mut socks).await;
    parent.emit("all-teams", &1).unwrap();
    a.expect_next_event("/team-a", "all-teams").await;
    b.expect_next_event("/team-b", "all-teams").await;
}
