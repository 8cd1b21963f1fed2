//! Rooms and broadcast operators, seen from raw clients: who gets a packet and who does not.
//!
//! "Must not receive" is proven with a barrier: after the broadcast that must miss a client,
//! a second one that reaches it is sent, and the first thing the client sees must be the
//! barrier (packets of one connection arrive in order).

mod common;

use std::collections::BTreeSet;

use common::*;
use serde_json::json;
use volley::adapter::Room;
use volley::{Socket, SocketIo};

fn set(rooms: Vec<Room>) -> BTreeSet<String> {
    rooms.iter().map(|r| r.to_string()).collect()
}

fn names<const N: usize>(ids: [&str; N]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

/// Sends `barrier` to every socket of `/` so clients can check what came before it.
fn barrier(io: &SocketIo) {
    io.emit("barrier", &0).unwrap();
}

#[tokio::test]
async fn join_leave_leave_all_and_rooms() {
    let srv = start_default().await;
    let mut socks = capture_sockets(&srv.io.of("/"));
    let (mut a, sa) = join_captured(&srv, "/", &mut socks).await;

    // Every socket starts in the room named by its id.
    assert_eq!(set(sa.rooms()), names([sa.id()]));

    sa.join("r1");
    sa.join(["r2", "r3"]);
    sa.join(vec!["r3".to_string(), "r4".to_string()]);
    assert_eq!(set(sa.rooms()), names([sa.id(), "r1", "r2", "r3", "r4"]));

    srv.io.to("r2").emit("in-r2", &1).unwrap();
    assert_eq!(a.expect_next_event("/", "in-r2").await.args, vec![json!(1)]);

    sa.leave("r2");
    assert_eq!(set(sa.rooms()), names([sa.id(), "r1", "r3", "r4"]));
    srv.io.to("r2").emit("left-r2", &2).unwrap();
    srv.io.to("r1").emit("in-r1", &3).unwrap();
    a.expect_next_event("/", "in-r1").await;

    // leave_all keeps the socket's own room: it can still be reached by id.
    sa.leave_all();
    assert_eq!(set(sa.rooms()), names([sa.id()]));
    srv.io
        .to(["r1", "r3", "r4"])
        .emit("after-leave-all", &4)
        .unwrap();
    srv.io.to(sa.id()).emit("by-id", &5).unwrap();
    a.expect_next_event("/", "by-id").await;
}

#[tokio::test]
async fn to_one_room_reaches_only_its_members() {
    let srv = start_default().await;
    let mut socks = capture_sockets(&srv.io.of("/"));
    let (mut a, sa) = join_captured(&srv, "/", &mut socks).await;
    let (mut b, _sb) = join_captured(&srv, "/", &mut socks).await;
    sa.join("r");

    srv.io.to("r").emit("m", &"hello").unwrap();
    barrier(&srv.io);
    let e = a.expect_next_event("/", "m").await;
    assert_eq!(e.args, vec![json!("hello")]);
    assert_eq!(e.ack_id, None);
    a.expect_next_event("/", "barrier").await;
    b.expect_next_event("/", "barrier").await;

    // The namespace handle and the broadcast operator select the same way.
    srv.io.of("/").to("r").emit("m2", &1).unwrap();
    srv.io.broadcast().to("r").emit("m3", &2).unwrap();
    barrier(&srv.io);
    a.expect_next_event("/", "m2").await;
    a.expect_next_event("/", "m3").await;
    a.expect_next_event("/", "barrier").await;
    b.expect_next_event("/", "barrier").await;
}

#[tokio::test]
async fn to_several_rooms_is_a_union_and_delivers_once() {
    let srv = start_default().await;
    let mut socks = capture_sockets(&srv.io.of("/"));
    let (mut a, sa) = join_captured(&srv, "/", &mut socks).await;
    let (mut b, sb) = join_captured(&srv, "/", &mut socks).await;
    let (mut c, sc) = join_captured(&srv, "/", &mut socks).await;
    let (mut d, _sd) = join_captured(&srv, "/", &mut socks).await;
    sa.join("r1");
    sb.join("r2");
    sc.join(["r1", "r2"]);

    srv.io.to(["r1", "r2"]).emit("m", &1).unwrap();
    // Chained `to` adds rooms the same way.
    srv.io.to("r1").to("r2").emit("m", &2).unwrap();
    barrier(&srv.io);
    for client in [&mut a, &mut b, &mut c] {
        assert_eq!(
            client.expect_next_event("/", "m").await.args,
            vec![json!(1)]
        );
        assert_eq!(
            client.expect_next_event("/", "m").await.args,
            vec![json!(2)]
        );
        // C is in both rooms and still got each packet once.
        client.expect_next_event("/", "barrier").await;
    }
    d.expect_next_event("/", "barrier").await;
}

#[tokio::test]
async fn within_is_the_same_as_to() {
    let srv = start_default().await;
    let mut socks = capture_sockets(&srv.io.of("/"));
    let (mut a, sa) = join_captured(&srv, "/", &mut socks).await;
    let (mut b, _sb) = join_captured(&srv, "/", &mut socks).await;
    sa.join("r");

    srv.io.within("r").emit("w1", &1).unwrap();
    srv.io.of("/").within("r").emit("w2", &2).unwrap();
    srv.io.broadcast().within("r").emit("w3", &3).unwrap();
    barrier(&srv.io);
    a.expect_next_event("/", "w1").await;
    a.expect_next_event("/", "w2").await;
    a.expect_next_event("/", "w3").await;
    a.expect_next_event("/", "barrier").await;
    b.expect_next_event("/", "barrier").await;
}

#[tokio::test]
async fn except_one_room() {
    let srv = start_default().await;
    let mut socks = capture_sockets(&srv.io.of("/"));
    let (mut a, sa) = join_captured(&srv, "/", &mut socks).await;
    let (mut b, _sb) = join_captured(&srv, "/", &mut socks).await;
    sa.join("muted");

    srv.io.except("muted").emit("m", &1).unwrap();
    srv.io.of("/").except("muted").emit("m", &2).unwrap();
    barrier(&srv.io);
    a.expect_next_event("/", "barrier").await;
    assert_eq!(b.expect_next_event("/", "m").await.args, vec![json!(1)]);
    assert_eq!(b.expect_next_event("/", "m").await.args, vec![json!(2)]);
    b.expect_next_event("/", "barrier").await;
}

#[tokio::test]
async fn except_several_rooms_and_combined_with_to() {
    let srv = start_default().await;
    let mut socks = capture_sockets(&srv.io.of("/"));
    let (mut a, sa) = join_captured(&srv, "/", &mut socks).await;
    let (mut b, sb) = join_captured(&srv, "/", &mut socks).await;
    let (mut c, sc) = join_captured(&srv, "/", &mut socks).await;
    let (mut d, sd) = join_captured(&srv, "/", &mut socks).await;
    sa.join("r1");
    sb.join("r2");
    sc.join("r3");
    sd.join(["r1", "r3"]);

    // Everyone but the members of r1 or r2: only C (D is in r1).
    srv.io.except(["r1", "r2"]).emit("m", &1).unwrap();
    // Chained except adds rooms too.
    srv.io.except("r1").except("r2").emit("m", &2).unwrap();
    // r3 without r1: C, not D.
    srv.io.to("r3").except("r1").emit("m", &3).unwrap();
    // Union minus several: r1 ∪ r2 ∪ r3 minus (r2 ∪ r3) = A only.
    srv.io
        .to(["r1", "r2", "r3"])
        .except(vec!["r2", "r3"])
        .emit("m", &4)
        .unwrap();
    barrier(&srv.io);

    assert_eq!(a.expect_next_event("/", "m").await.args, vec![json!(4)]);
    a.expect_next_event("/", "barrier").await;
    b.expect_next_event("/", "barrier").await;
    assert_eq!(c.expect_next_event("/", "m").await.args, vec![json!(1)]);
    assert_eq!(c.expect_next_event("/", "m").await.args, vec![json!(2)]);
    assert_eq!(c.expect_next_event("/", "m").await.args, vec![json!(3)]);
    c.expect_next_event("/", "barrier").await;
    d.expect_next_event("/", "barrier").await;
}

#[tokio::test]
async fn socket_broadcast_excludes_the_sender() {
    let srv = start_default().await;
    let mut socks = capture_sockets(&srv.io.of("/"));
    let (mut a, sa) = join_captured(&srv, "/", &mut socks).await;
    let (mut b, _sb) = join_captured(&srv, "/", &mut socks).await;
    let (mut c, sc) = join_captured(&srv, "/", &mut socks).await;
    sc.join("quiet");

    sa.broadcast().emit("m", &1).unwrap();
    sa.except("quiet").emit("m", &2).unwrap();
    barrier(&srv.io);
    a.expect_next_event("/", "barrier").await;
    assert_eq!(b.expect_next_event("/", "m").await.args, vec![json!(1)]);
    assert_eq!(b.expect_next_event("/", "m").await.args, vec![json!(2)]);
    b.expect_next_event("/", "barrier").await;
    assert_eq!(c.expect_next_event("/", "m").await.args, vec![json!(1)]);
    c.expect_next_event("/", "barrier").await;
}

#[tokio::test]
async fn socket_to_room_excludes_the_sender() {
    let srv = start_default().await;
    let mut socks = capture_sockets(&srv.io.of("/"));
    let (mut a, sa) = join_captured(&srv, "/", &mut socks).await;
    let (mut b, sb) = join_captured(&srv, "/", &mut socks).await;
    let (mut c, _sc) = join_captured(&srv, "/", &mut socks).await;
    sa.join("r");
    sb.join("r");

    sa.to("r").emit("m", &1).unwrap();
    sa.within("r").emit("m", &2).unwrap();
    barrier(&srv.io);
    a.expect_next_event("/", "barrier").await;
    b.expect_next_event("/", "m").await;
    b.expect_next_event("/", "m").await;
    b.expect_next_event("/", "barrier").await;
    c.expect_next_event("/", "barrier").await;

    // Even when it targets the sender's own id room.
    sa.to(sa.id()).emit("self", &3).unwrap();
    barrier(&srv.io);
    a.expect_next_event("/", "barrier").await;
}

#[tokio::test]
async fn io_to_socket_id_reaches_that_socket_only() {
    let srv = start_default().await;
    let mut socks = capture_sockets(&srv.io.of("/"));
    let (mut a, _sa) = join_captured(&srv, "/", &mut socks).await;
    let (mut b, sb) = join_captured(&srv, "/", &mut socks).await;

    srv.io.to(sb.id()).emit("private", &"for b").unwrap();
    srv.io
        .to(sb.id().to_string())
        .emit("private", &"again")
        .unwrap();
    barrier(&srv.io);
    a.expect_next_event("/", "barrier").await;
    assert_eq!(
        b.expect_next_event("/", "private").await.args,
        vec![json!("for b")]
    );
    b.expect_next_event("/", "private").await;
    b.expect_next_event("/", "barrier").await;
}

#[tokio::test]
async fn local_reaches_this_servers_sockets() {
    let srv = start_default().await;
    let mut socks = capture_sockets(&srv.io.of("/"));
    let (mut a, sa) = join_captured(&srv, "/", &mut socks).await;
    let (mut b, _sb) = join_captured(&srv, "/", &mut socks).await;
    sa.join("r");

    srv.io.local().emit("all", &1).unwrap();
    srv.io.local().to("r").emit("room", &2).unwrap();
    srv.io
        .of("/")
        .local()
        .except("r")
        .emit("not-r", &3)
        .unwrap();
    barrier(&srv.io);
    a.expect_next_event("/", "all").await;
    a.expect_next_event("/", "room").await;
    a.expect_next_event("/", "barrier").await;
    b.expect_next_event("/", "all").await;
    b.expect_next_event("/", "not-r").await;
    b.expect_next_event("/", "barrier").await;
    assert!(srv.io.local().options().flags.local);
}

#[tokio::test]
async fn volatile_reaches_a_writable_socket_in_order() {
    let srv = start_default().await;
    let mut socks = capture_sockets(&srv.io.of("/"));
    let (mut a, sa) = join_captured(&srv, "/", &mut socks).await;
    sa.join("r");

    // The connection is idle: a volatile packet goes out, before what follows it.
    srv.io.volatile().emit("v", &1).unwrap();
    srv.io.emit("n", &2).unwrap();
    a.expect_next_event("/", "v").await;
    a.expect_next_event("/", "n").await;

    srv.io
        .of("/")
        .volatile()
        .to("r")
        .emit("v-room", &3)
        .unwrap();
    a.expect_next_event("/", "v-room").await;
    assert!(srv.io.volatile().options().flags.volatile);
}

#[tokio::test]
async fn volatile_is_dropped_while_the_queue_is_busy_and_never_reorders() {
    let srv = start_default().await;
    let mut socks = capture_sockets(&srv.io.of("/"));
    let (mut a, _sa) = join_captured(&srv, "/", &mut socks).await;

    // No await between these: the first packet still waits in the queue when the volatile
    // one is emitted (the test runtime is single-threaded), so the volatile one is dropped.
    srv.io.emit("first", &1).unwrap();
    srv.io.volatile().emit("dropped", &2).unwrap();
    srv.io.emit("last", &3).unwrap();
    a.expect_next_event("/", "first").await;
    a.expect_next_event("/", "last").await;
}

#[tokio::test]
async fn namespaces_are_isolated() {
    let srv = start_default().await;
    let mut root = capture_sockets(&srv.io.of("/"));
    let mut chat = capture_sockets(&srv.io.of("/chat"));
    let (mut a, _) = join_captured(&srv, "/", &mut root).await;
    let (mut b, _) = join_captured(&srv, "/chat", &mut chat).await;
    // C is in both namespaces over one connection.
    let (mut c, _) = join_captured(&srv, "/", &mut root).await;
    let c_chat = c.join("/chat").await;
    assert_eq!(recv(&mut chat).await.id(), c_chat);

    srv.io.emit("main-only", &1).unwrap();
    srv.io.of("/chat").emit("chat-only", &2).unwrap();

    a.expect_next_event("/", "main-only").await;
    c.expect_next_event("/", "main-only").await;
    b.expect_next_event("/chat", "chat-only").await;
    c.expect_next_event("/chat", "chat-only").await;

    // A second round, now with barriers: what A and C's "/" got first was the main emit,
    // what B and C's "/chat" got first was the chat emit.
    srv.io.of("/chat").emit("chat-2", &3).unwrap();
    srv.io.emit("main-2", &4).unwrap();
    a.expect_next_event("/", "main-2").await;
    c.expect_next_event("/", "main-2").await;
    b.expect_next_event("/chat", "chat-2").await;
    c.expect_next_event("/chat", "chat-2").await;
    // B never received any packet for "/", A none for "/chat".
    b.expect_no_event_within("/", std::time::Duration::from_millis(50))
        .await;
    a.expect_no_event_within("/chat", std::time::Duration::from_millis(1))
        .await;
}

#[tokio::test]
async fn same_room_name_in_two_namespaces_is_two_rooms() {
    let srv = start_default().await;
    let mut root = capture_sockets(&srv.io.of("/"));
    let mut chat = capture_sockets(&srv.io.of("/chat"));
    let (mut a, sa) = join_captured(&srv, "/", &mut root).await;
    let (mut b, sb) = join_captured(&srv, "/chat", &mut chat).await;
    sa.join("lobby");
    sb.join("lobby");

    srv.io.to("lobby").emit("m", &"main").unwrap();
    srv.io.of("/chat").emit("barrier", &0).unwrap();
    b.expect_next_event("/chat", "barrier").await;
    assert_eq!(
        a.expect_next_event("/", "m").await.args,
        vec![json!("main")]
    );

    srv.io.of("/chat").to("lobby").emit("m", &"chat").unwrap();
    barrier(&srv.io);
    a.expect_next_event("/", "barrier").await;
    assert_eq!(
        b.expect_next_event("/chat", "m").await.args,
        vec![json!("chat")]
    );

    // Leaving the room in one namespace leaves the other's alone.
    sa.leave("lobby");
    assert!(sb.rooms().iter().any(|r| &**r == "lobby"));
    assert!(!set(srv.io.all_rooms().await.unwrap()).contains("lobby"));
    assert!(set(srv.io.of("/chat").all_rooms().await.unwrap()).contains("lobby"));
}

#[tokio::test]
async fn rooms_are_isolated() {
    let srv = start_default().await;
    let mut socks = capture_sockets(&srv.io.of("/"));
    let (mut a, sa) = join_captured(&srv, "/", &mut socks).await;
    let (mut b, sb) = join_captured(&srv, "/", &mut socks).await;
    sa.join("red");
    sb.join("blue");

    srv.io.to("red").emit("red", &1).unwrap();
    srv.io.to("blue").emit("blue", &2).unwrap();
    // A room nobody joined reaches nobody.
    srv.io.to("green").emit("green", &3).unwrap();
    barrier(&srv.io);
    a.expect_next_event("/", "red").await;
    a.expect_next_event("/", "barrier").await;
    b.expect_next_event("/", "blue").await;
    b.expect_next_event("/", "barrier").await;
}

#[tokio::test]
async fn emit_args_sends_every_argument() {
    let srv = start_default().await;
    let mut socks = capture_sockets(&srv.io.of("/"));
    let (mut a, sa) = join_captured(&srv, "/", &mut socks).await;

    srv.io
        .emit_args("io", (1, "two", json!({"three": 3})))
        .unwrap();
    srv.io.of("/").emit_args("ns", ()).unwrap();
    sa.emit_args("sock", ("x", 2)).unwrap();
    sa.emit("one", &vec![1, 2]).unwrap();
    assert_eq!(
        a.expect_next_event("/", "io").await.args,
        vec![json!(1), json!("two"), json!({"three": 3})]
    );
    assert_eq!(
        a.expect_next_event("/", "ns").await.args,
        Vec::<serde_json::Value>::new()
    );
    assert_eq!(
        a.expect_next_event("/", "sock").await.args,
        vec![json!("x"), json!(2)]
    );
    assert_eq!(
        a.expect_next_event("/", "one").await.args,
        vec![json!([1, 2])]
    );
}

#[tokio::test]
async fn fetch_sockets_reports_ids_rooms_data_and_handshake() {
    let srv = start_default().await;
    let mut socks = capture_sockets(&srv.io.of("/"));
    let mut a = Client::connect_with(srv.addr, "room=blue&name=a%20b", &[("x-test", "yes")]).await;
    let a_id = a
        .try_join("/", Some(json!({"token": "abc"})))
        .await
        .unwrap();
    let sa = recv(&mut socks).await;
    assert_eq!(sa.id(), a_id);
    let (_b, sb) = join_captured(&srv, "/", &mut socks).await;
    sa.join("r");
    sa.set_data(&json!({"name": "alice"})).unwrap();

    let all = srv.io.fetch_sockets().await.unwrap();
    let ids: BTreeSet<String> = all.iter().map(|s| s.id().to_string()).collect();
    assert_eq!(ids, names([sa.id(), sb.id()]));

    let ra = all.iter().find(|s| s.id() == sa.id()).unwrap();
    assert_eq!(set(ra.rooms().to_vec()), names([sa.id(), "r"]));
    assert_eq!(ra.data(), &json!({"name": "alice"}));
    let hs = ra.handshake();
    assert_eq!(hs["auth"], json!({"token": "abc"}), "handshake: {hs}");
    assert_eq!(hs["query"]["room"], json!("blue"), "handshake: {hs}");
    assert_eq!(hs["query"]["name"], json!("a b"), "handshake: {hs}");
    assert_eq!(hs["query"]["EIO"], json!("4"), "handshake: {hs}");
    assert_eq!(hs["headers"]["x-test"], json!("yes"), "handshake: {hs}");
    assert_eq!(hs["address"], json!("127.0.0.1"), "handshake: {hs}");
    assert!(hs["url"].as_str().unwrap().starts_with("/socket.io/?"));

    let rb = all.iter().find(|s| s.id() == sb.id()).unwrap();
    assert_eq!(rb.data(), &serde_json::Value::Null);
    assert_eq!(rb.handshake()["auth"], json!({}));

    // Selection applies as for emits.
    let in_r = srv.io.to("r").fetch_sockets().await.unwrap();
    assert_eq!(in_r.len(), 1);
    assert_eq!(in_r[0].id(), sa.id());
    let not_r = srv.io.except("r").fetch_sockets().await.unwrap();
    assert_eq!(not_r.len(), 1);
    assert_eq!(not_r[0].id(), sb.id());
    assert!(
        srv.io
            .to("nobody")
            .fetch_sockets()
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        srv.io
            .of("/chat")
            .broadcast()
            .fetch_sockets()
            .await
            .unwrap()
            .is_empty()
    );

    // Socket::data reads back as a type.
    #[derive(serde::Deserialize, PartialEq, Debug)]
    struct D {
        name: String,
    }
    assert_eq!(
        sa.data::<D>(),
        Some(D {
            name: "alice".into()
        })
    );
    drop(a);
}

#[tokio::test]
async fn remote_socket_emit_join_leave() {
    let srv = start_default().await;
    let mut socks = capture_sockets(&srv.io.of("/"));
    let (mut a, sa) = join_captured(&srv, "/", &mut socks).await;
    let (mut b, _sb) = join_captured(&srv, "/", &mut socks).await;

    let remote = srv
        .io
        .fetch_sockets()
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.id() == sa.id())
        .unwrap();

    remote.emit("hi", &"remote").unwrap();
    barrier(&srv.io);
    assert_eq!(
        a.expect_next_event("/", "hi").await.args,
        vec![json!("remote")]
    );
    a.expect_next_event("/", "barrier").await;
    b.expect_next_event("/", "barrier").await;

    remote.join(["x", "y"]);
    assert_eq!(set(sa.rooms()), names([sa.id(), "x", "y"]));
    remote.leave("x");
    assert_eq!(set(sa.rooms()), names([sa.id(), "y"]));
    // The handle keeps the rooms of when it was fetched.
    assert_eq!(set(remote.rooms().to_vec()), names([sa.id()]));
    srv.io.to("y").emit("in-y", &1).unwrap();
    a.expect_next_event("/", "in-y").await;
    assert!(remote.emit("disconnect", &1).is_err());
}

#[tokio::test]
async fn remote_socket_disconnect_keeps_or_closes_the_connection() {
    let srv = start_default().await;
    let mut socks = capture_sockets(&srv.io.of("/"));
    let mut chat = capture_sockets(&srv.io.of("/chat"));
    let (mut a, sa) = join_captured(&srv, "/", &mut socks).await;
    a.join("/chat").await;
    let a_chat = recv(&mut chat).await;
    let (mut b, sb) = join_captured(&srv, "/", &mut socks).await;
    let (reasons_tx, mut reasons) = tokio::sync::mpsc::unbounded_channel();
    for s in [&sa, &sb, &a_chat] {
        let tx = reasons_tx.clone();
        s.on_disconnect(move |s: Socket, r| async move {
            let _ = tx.send((s.id().to_string(), r.as_str()));
        });
    }

    let fetched = srv.io.fetch_sockets().await.unwrap();
    let ra = fetched.iter().find(|s| s.id() == sa.id()).unwrap();
    let rb = fetched.iter().find(|s| s.id() == sb.id()).unwrap();

    // Without close: A's "/" socket goes, A's connection and its "/chat" socket stay.
    ra.disconnect(false);
    a.expect_disconnect("/").await;
    assert_eq!(
        recv(&mut reasons).await,
        (sa.id().to_string(), "server namespace disconnect")
    );
    assert!(!sa.connected());
    srv.io.of("/chat").emit("still-here", &1).unwrap();
    a.expect_next_event("/chat", "still-here").await;
    assert!(!a.is_closed());
    // And A may join "/" again on the same connection.
    let again = a.join("/").await;
    assert_ne!(again, sa.id());
    let _ = recv(&mut socks).await;

    // With close: B gets DISCONNECT, then the connection ends.
    rb.disconnect(true);
    b.expect_disconnect("/").await;
    b.expect_closed().await;
    assert_eq!(
        recv(&mut reasons).await,
        (sb.id().to_string(), "server namespace disconnect")
    );
    assert!(!sb.connected());
}

#[tokio::test]
async fn sockets_join_and_sockets_leave() {
    let srv = start_default().await;
    let mut socks = capture_sockets(&srv.io.of("/"));
    let (_a, sa) = join_captured(&srv, "/", &mut socks).await;
    let (_b, sb) = join_captured(&srv, "/", &mut socks).await;
    let (_c, sc) = join_captured(&srv, "/", &mut socks).await;
    sa.join("vip");

    srv.io.sockets_join("everyone");
    for s in [&sa, &sb, &sc] {
        assert!(set(s.rooms()).contains("everyone"), "{:?}", s.rooms());
    }

    // Narrowed by to / except.
    srv.io.to("vip").sockets_join(["gold", "silver"]);
    assert!(set(sa.rooms()).is_superset(&names(["gold", "silver"])));
    assert!(!set(sb.rooms()).contains("gold"));
    srv.io.of("/").except("vip").sockets_join("plain");
    assert!(!set(sa.rooms()).contains("plain"));
    assert!(set(sb.rooms()).contains("plain") && set(sc.rooms()).contains("plain"));
    srv.io.to(sb.id()).sockets_join("only-b");
    assert!(set(sb.rooms()).contains("only-b") && !set(sc.rooms()).contains("only-b"));

    srv.io.to("vip").sockets_leave("everyone");
    assert!(!set(sa.rooms()).contains("everyone"));
    assert!(set(sb.rooms()).contains("everyone"));
    srv.io.sockets_leave(["everyone", "plain"]);
    for s in [&sa, &sb, &sc] {
        let rooms = set(s.rooms());
        assert!(
            !rooms.contains("everyone") && !rooms.contains("plain"),
            "{rooms:?}"
        );
        assert!(rooms.contains(s.id().as_str()), "own room kept");
    }
    let all = set(srv.io.all_rooms().await.unwrap());
    assert!(!all.contains("everyone") && !all.contains("plain"));
    assert!(all.contains("gold") && all.contains("only-b"));
}

#[tokio::test]
async fn disconnect_sockets_without_close_keeps_the_connection() {
    let srv = start_default().await;
    let mut socks = capture_sockets(&srv.io.of("/"));
    let mut chat = capture_sockets(&srv.io.of("/chat"));
    let (mut a, sa) = join_captured(&srv, "/", &mut socks).await;
    a.join("/chat").await;
    let _a_chat = recv(&mut chat).await;
    let (mut b, sb) = join_captured(&srv, "/", &mut socks).await;
    sb.join("keep");

    // Only those selected: everyone but "keep".
    srv.io.except("keep").disconnect_sockets(false);
    a.expect_disconnect("/").await;
    assert!(!sa.connected());
    assert!(sb.connected());
    barrier(&srv.io);
    b.expect_next_event("/", "barrier").await;

    // A's connection and its other namespace are untouched.
    srv.io.of("/chat").emit("alive", &1).unwrap();
    a.expect_next_event("/chat", "alive").await;

    srv.io.disconnect_sockets(false);
    b.expect_disconnect("/").await;
    assert!(!sb.connected());
    assert!(srv.io.fetch_sockets().await.unwrap().is_empty());
    assert_eq!(srv.io.connection_count(), 2);
}

#[tokio::test]
async fn disconnect_sockets_with_close_ends_the_connection() {
    let srv = start_default().await;
    let mut socks = capture_sockets(&srv.io.of("/"));
    let mut chat = capture_sockets(&srv.io.of("/chat"));
    let (mut a, sa) = join_captured(&srv, "/", &mut socks).await;
    a.join("/chat").await;
    let a_chat = recv(&mut chat).await;
    let (mut b, sb) = join_captured(&srv, "/", &mut socks).await;
    sb.join("spared");

    srv.io.except("spared").disconnect_sockets(true);
    // Every namespace of the connection is told, then the connection ends.
    a.expect_disconnect("/").await;
    a.expect_disconnect("/chat").await;
    a.expect_closed().await;
    assert!(!sa.connected() && !a_chat.connected());
    assert!(sb.connected());
    barrier(&srv.io);
    b.expect_next_event("/", "barrier").await;
    assert!(!b.is_closed());
}
