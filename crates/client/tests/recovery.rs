//! Connection state recovery, as socket.io-client 4.8 does it, against the official Node
//! server (`connectionStateRecovery`) and the Volley server
//! (`SocketIoBuilder::connection_state_recovery`): the network is cut under a connected
//! client, broadcasts go on meanwhile, and the client comes back with the same id,
//! `recovered() == true`, every missed event exactly once and in order (offset included, as
//! JS handlers see it), then its own emits buffered while it was away; the CONNECT carries
//! `{pid, offset}` merged with `auth`; a manual disconnect gives a fresh session (but see
//! Node's reuse of a restored pid below).
//!
//! No sleeps: every wait is for a signal, bounded by `WAIT`.

mod common;

use std::time::Duration;

use common::{Kind, Proxy, Server, WAIT, recv, wait_for};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use volley_client::{
    AckSender, DisconnectReason, Manager, RawArgs, Socket, SocketEvent, TransportKind,
};

/// A "tick" as a handler saw it: every argument, as JSON.
type Tick = Vec<Value>;

fn manager(url: &str) -> Manager {
    Manager::builder(url)
        .transports(&[TransportKind::WebSocket])
        .reconnection_delay(Duration::from_millis(10))
        .randomization_factor(0.0)
        .build()
        .expect("manager")
}

fn ticks(socket: &Socket) -> mpsc::UnboundedReceiver<Tick> {
    let (tx, rx) = mpsc::unbounded_channel();
    socket.on("tick", move |_: Socket, args: RawArgs| {
        let tx = tx.clone();
        async move {
            let all = (0..args.len())
                .map(|i| args.get::<Value>(i).expect("arg").expect("json"))
                .collect();
            let _ = tx.send(all);
        }
    });
    rx
}

async fn state(socket: &Socket) -> Value {
    tokio::time::timeout(WAIT, socket.emit_args_with_ack::<Value>("state", ()))
        .await
        .expect("state in time")
        .expect("state")
}

async fn broadcast(socket: &Socket, n: i64) {
    let ok: bool = tokio::time::timeout(WAIT, socket.emit_with_ack("broadcast", &n))
        .await
        .expect("broadcast in time")
        .expect("broadcast");
    assert!(ok);
}

/// Waits until the server counts `n` sockets in "/" (asked over `observer`): once the cut
/// socket is gone there, its session is kept.
async fn until_count(observer: &Socket, n: u64) {
    tokio::time::timeout(WAIT, async {
        while state(observer).await["count"] != json!(n) {}
    })
    .await
    .unwrap_or_else(|_| panic!("the server never counted {n} sockets"));
}

/// The tick `n` with its offset (a string), as a JS handler gets it; returns the offset.
fn offset_of(tick: &Tick, n: i64) -> String {
    assert_eq!(tick.len(), 2, "{tick:?}: the number, then the offset");
    assert_eq!(tick[0], json!(n), "{tick:?}");
    tick[1].as_str().expect("the offset is a string").to_owned()
}

async fn recovers(kind: Kind) {
    let server = Server::start_recovery(kind).await;
    let proxy = Proxy::start(server.port).await;

    let observer_manager = manager(&server.url());
    let observer = observer_manager
        .socket("/")
        .connect()
        .await
        .expect("observer");

    let m = manager(&proxy.url());
    let socket = m.socket("/").auth(json!({ "token": "t" })).build();
    let mut ticks = ticks(&socket);
    let mut events = socket.events();
    socket.connect();
    socket.wait_connected().await.expect("connect");
    assert!(!socket.recovered());
    let id = socket.id().expect("id");

    broadcast(&observer, 1).await;
    let first = offset_of(&recv(&mut ticks, "tick 1").await, 1);

    // The network goes; the server keeps the session once it sees the socket gone.
    proxy.cut();
    let reason = wait_for(&mut events, "disconnect", |e| match e {
        SocketEvent::Disconnect(r) => Some(*r),
        _ => None,
    })
    .await;
    assert_eq!(reason, DisconnectReason::TransportClose);
    until_count(&observer, 1).await;
    for n in 2..=4 {
        broadcast(&observer, n).await;
    }
    // Buffered while away, sent once recovered (the server broadcasts it after the missed).
    let away = socket.emit_with_ack::<bool>("broadcast", &5);
    assert_eq!(socket.buffered(), 1);

    proxy.freeze(false);
    wait_for(&mut events, "connect", |e| {
        matches!(e, SocketEvent::Connect).then_some(())
    })
    .await;
    assert!(socket.recovered());
    assert_eq!(socket.id(), Some(id.clone()));
    assert!(
        tokio::time::timeout(WAIT, away)
            .await
            .expect("ack in time")
            .expect("ack")
    );

    // Every missed tick exactly once, in order, then the buffered one.
    let mut offsets = vec![first.clone()];
    for n in 2..=5 {
        offsets.push(offset_of(&recv(&mut ticks, "a tick").await, n));
    }
    let distinct: std::collections::HashSet<_> = offsets.iter().collect();
    assert_eq!(distinct.len(), offsets.len(), "{offsets:?}");
    let st = state(&socket).await;
    assert_eq!(st["id"], json!(id.as_str()));
    assert_eq!(st["recovered"], json!(true));

    // A manual disconnect, then connect: the client still sends its pid and offset, as
    // socket.io-client does (it never clears them). Volley restores a pid once: a fresh
    // session. Node's in-memory adapter keeps a restored session under its pid for the whole
    // window: socket.io-client gets it restored again, as it was at the cut, and so do we.
    socket.disconnect();
    socket.connect();
    socket.wait_connected().await.expect("reconnect");
    let again = socket.id().expect("id");
    let st = state(&socket).await;
    assert_eq!(st["id"], json!(again.as_str()));
    match kind {
        Kind::Node => {
            assert!(socket.recovered());
            assert_eq!(again, id);
            assert_eq!(st["recovered"], json!(true));
        }
        _ => {
            assert!(!socket.recovered());
            assert_ne!(again, id);
            assert_eq!(st["recovered"], json!(false));
        }
    }
    broadcast(&observer, 6).await;
    offset_of(&recv(&mut ticks, "tick 6").await, 6);
    assert!(ticks.try_recv().is_err(), "nothing twice");

    // What each CONNECT of the socket carried: `auth` alone, then `{pid, offset}` merged
    // with it (the offset of the last tick handled), pid first.
    let auths: Vec<Value> =
        tokio::time::timeout(WAIT, observer.emit_args_with_ack::<Vec<Value>>("auths", ()))
            .await
            .expect("auths in time")
            .expect("auths");
    let ours: Vec<&Value> = auths.iter().filter(|a| a.get("token").is_some()).collect();
    assert_eq!(ours.len(), 3, "{auths:?}");
    assert_eq!(*ours[0], json!({ "token": "t" }));
    let pid = ours[1]["pid"].as_str().expect("pid").to_owned();
    assert_eq!(
        *ours[1],
        json!({ "pid": pid, "offset": first, "token": "t" })
    );
    assert_eq!(
        *ours[2],
        json!({ "pid": pid, "offset": offsets[4], "token": "t" })
    );
}

#[tokio::test]
async fn recovers_from_node() {
    recovers(Kind::Node).await;
}

#[tokio::test]
async fn recovers_from_volley() {
    recovers(Kind::Volley).await;
}

/// A manual disconnect leaves the session: the next connection is a fresh one, although the
/// CONNECT carries the pid and the last offset (as socket.io-client's does), which an event
/// with an ack id does not change.
async fn manual_disconnect_is_fresh(kind: Kind) {
    let server = Server::start_recovery(kind).await;
    let observer_manager = manager(&server.url());
    let observer = observer_manager
        .socket("/")
        .connect()
        .await
        .expect("observer");
    let m = manager(&server.url());
    let socket = m.socket("/").auth(json!({ "token": "m" })).build();
    let mut ticks = ticks(&socket);
    socket.connect();
    socket.wait_connected().await.expect("connect");
    let id = socket.id().expect("id");
    broadcast(&observer, 1).await;
    let offset = offset_of(&recv(&mut ticks, "tick 1").await, 1);
    // An event with an ack id: its last argument is no offset, even a string (in JS it is
    // the ack callback), and the server appends none.
    let (qtx, mut questions) = mpsc::unbounded_channel();
    socket.on(
        "question",
        move |_: Socket, args: RawArgs, ack: AckSender| {
            let qtx = qtx.clone();
            async move {
                let _ = qtx.send(args.get::<Value>(args.len() - 1).map(Result::ok));
                let _ = ack.send(&"ok");
            }
        },
    );
    let poked: bool = tokio::time::timeout(WAIT, socket.emit_with_ack("poke", &"not-an-offset"))
        .await
        .expect("poke in time")
        .expect("poke");
    assert!(poked);
    assert_eq!(
        recv(&mut questions, "question").await,
        Some(Some(json!("not-an-offset")))
    );

    socket.disconnect();
    assert!(!socket.connected());
    socket.connect();
    socket.wait_connected().await.expect("reconnect");
    assert!(!socket.recovered());
    assert_ne!(socket.id().expect("id"), id);
    assert_eq!(state(&socket).await["recovered"], json!(false));

    let auths: Vec<Value> =
        tokio::time::timeout(WAIT, observer.emit_args_with_ack::<Vec<Value>>("auths", ()))
            .await
            .expect("auths in time")
            .expect("auths");
    let ours: Vec<&Value> = auths.iter().filter(|a| a.get("token").is_some()).collect();
    assert_eq!(ours.len(), 2, "{auths:?}");
    assert_eq!(*ours[0], json!({ "token": "m" }));
    assert_eq!(ours[1]["offset"], json!(offset));
    assert!(ours[1]["pid"].is_string(), "{auths:?}");
}

#[tokio::test]
async fn manual_disconnect_is_fresh_on_node() {
    manual_disconnect_is_fresh(Kind::Node).await;
}

#[tokio::test]
async fn manual_disconnect_is_fresh_on_volley() {
    manual_disconnect_is_fresh(Kind::Volley).await;
}
