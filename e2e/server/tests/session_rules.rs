//! The rules around the session snapshots a streams cluster keeps while sockets are
//! connected (two `conformance-server` processes, `REDIS_ADAPTER=streams RECOVERY=1`, on a
//! redis-server the test starts; raw Socket.IO clients):
//! - a manual or a server-side disconnect deletes the snapshot: coming back with the pid
//!   gives a fresh session;
//! - a forged pid gives a fresh session, and leaves the real one alone;
//! - a pid presented while its socket is still connected (on another server or the same
//!   one) takes the session over: the old socket is disconnected, never two live sockets of
//!   one id, and the old server's late writes do not remove the new snapshot.

mod common;

use common::{Client, cluster, has_room, sigkill, snapshot, wait_snapshot};
use serde_json::{Value, json};

/// A client on `port`: the CONNECT reply and the offset of its first event ("auth").
async fn connected(port: u16) -> (Client, String, String, String) {
    let (mut c, reply, _) = Client::open(port, "40").await;
    let auth = c.event().await;
    assert_eq!(auth[0], "auth");
    let off = common::offset(&auth);
    let sid = reply["sid"].as_str().unwrap().to_owned();
    let pid = reply["pid"].as_str().unwrap().to_owned();
    (c, sid, pid, off)
}

fn restore(pid: &str, off: &str) -> String {
    format!(r#"40{{"pid":"{pid}","offset":"{off}"}}"#)
}

/// Waits until every Redis command `w`'s server queued so far ran: it broadcasts a marker
/// (one more command in its ordered queue) that `w` gets back from the stream; its offset.
async fn flush(w: &mut Client, marker: &str) -> String {
    w.send(&format!(r#"42["cluster:emit-all","{marker}"]"#));
    loop {
        let e = w.event().await;
        if e[0] == "cluster:all" && e[1] == marker {
            return common::offset(&e);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_and_server_side_disconnects_are_not_recoverable() {
    let cl = cluster();
    let (a_port, b_port, redis_port) = (cl.a_port, cl.b_port, cl.redis_port);

    // The client leaves on purpose.
    let (c, sid, pid, off) = connected(a_port).await;
    wait_snapshot(redis_port, &pid, |s| s.is_some()).await;
    c.send("41");
    wait_snapshot(redis_port, &pid, |s| s.is_none()).await;
    let (_c, reply, before) = Client::open(b_port, &restore(&pid, &off)).await;
    assert_ne!(reply["sid"], json!(sid), "a fresh session: {reply}");
    assert!(before.is_empty());

    // The server disconnects it (disconnectSockets from B, in a room only it is in).
    let (mut c, sid, pid, off) = connected(a_port).await;
    assert_eq!(
        c.ask(0, json!(["cluster:join", "alone"])).await,
        json!(["volley-a"])
    );
    wait_snapshot(redis_port, &pid, |s| has_room(s, "alone")).await;
    let (mut w, _, _) = Client::open(b_port, "40").await;
    w.event().await;
    w.ask(0, json!(["cluster:disconnect-room", "alone"])).await;
    assert_eq!(c.next().await, "41", "A disconnects it");
    wait_snapshot(redis_port, &pid, |s| s.is_none()).await;
    let (_c, reply, _) = Client::open(b_port, &restore(&pid, &off)).await;
    assert_ne!(reply["sid"], json!(sid), "a fresh session: {reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_pid_gets_a_fresh_session() {
    let cl = cluster();
    let (a_port, b_port, redis_port) = (cl.a_port, cl.b_port, cl.redis_port);
    let (c, sid, pid, off) = connected(a_port).await;
    wait_snapshot(redis_port, &pid, |s| s.is_some()).await;

    // Another pid of the same shape, one character changed, with a real offset.
    let mut forged: Vec<char> = pid.chars().collect();
    forged[0] = if forged[0] == 'A' { 'B' } else { 'A' };
    let forged: String = forged.into_iter().collect();
    for connect in [
        restore(&forged, &off),
        restore("", &off),
        format!(r#"40{{"pid":{{"sid":"{sid}"}},"offset":"{off}"}}"#),
        restore(&sid, &off),
    ] {
        let (_f, reply, before) = Client::open(b_port, &connect).await;
        assert_ne!(reply["sid"], json!(sid), "{connect}: {reply}");
        assert!(before.is_empty());
    }
    // The real session is untouched: still kept, still restorable.
    assert!(snapshot(redis_port, &pid).is_some());
    drop(c);
    let (_c, reply, _) = Client::open(b_port, &restore(&pid, &off)).await;
    assert_eq!(reply["sid"], json!(sid), "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pid_presented_while_its_socket_is_connected_takes_the_session_over() {
    let mut cl = cluster();
    let (a_port, b_port, redis_port) = (cl.a_port, cl.b_port, cl.redis_port);
    let (mut wa, _, _) = Client::open(a_port, "40").await;
    wa.event().await;

    // On another server.
    let (mut old, sid, pid, off) = connected(a_port).await;
    assert_eq!(
        old.ask(0, json!(["cluster:join", "r"])).await,
        json!(["volley-a"])
    );
    wait_snapshot(redis_port, &pid, |s| has_room(s, "r")).await;
    let (mut new, reply, _) = Client::open(b_port, &restore(&pid, &off)).await;
    assert_eq!(reply["sid"], json!(sid), "taken over on B: {reply}");
    assert_eq!(reply["pid"], json!(pid));
    assert_eq!(old.next().await, "41", "the old socket is disconnected");
    let state = new.ask(0, json!(["recovery:state"])).await;
    let mut rooms = vec![sid.clone(), "r".to_owned()];
    rooms.sort();
    assert_eq!(state[0]["rooms"], json!(rooms));
    assert_eq!(state[0]["recovered"], true);
    // A's deletion of the old socket's snapshot ran (it is before the marker in A's
    // queue) and left B's alone.
    flush(&mut wa, "after-takeover").await;
    wait_snapshot(redis_port, &pid, |s| has_room(s, "r")).await;
    let list = wa.ask(1, json!(["cluster:fetch", null])).await;
    let ids: Vec<&Value> = list[0]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["id"] == json!(sid))
        .collect();
    assert_eq!(ids.len(), 1, "one live socket of that id: {list}");

    // B dies: the client recovers on A from B's snapshot.
    let off = flush(&mut new, "m1").await;
    sigkill(&mut cl.b);
    drop(new);
    let (mut again, reply, before) = Client::open(a_port, &restore(&pid, &off)).await;
    assert_eq!(
        reply["sid"],
        json!(sid),
        "recovered on A after B died: {reply}"
    );
    assert!(before.is_empty(), "{before:?}");
    wait_snapshot(redis_port, &pid, |s| has_room(s, "r")).await;

    // On the same server: the old socket is disconnected, the new one has the id.
    let (mut twin, reply, _) = Client::open(a_port, &restore(&pid, &off)).await;
    assert_eq!(reply["sid"], json!(sid), "taken over on A: {reply}");
    assert_eq!(again.next().await, "41", "the old socket is disconnected");
    let state = twin.ask(0, json!(["recovery:state"])).await;
    assert_eq!(state[0]["rooms"], json!(rooms));
    flush(&mut wa, "after-twin").await;
    wait_snapshot(redis_port, &pid, |s| has_room(s, "r")).await;
    drop(twin);
    sigkill(&mut cl.a);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_snapshot_follows_rooms_and_data() {
    let cl = cluster();
    let (a_port, b_port, redis_port) = (cl.a_port, cl.b_port, cl.redis_port);
    let (mut c, sid, pid, _) = connected(a_port).await;
    wait_snapshot(redis_port, &pid, |s| {
        s.is_some_and(|s| s.id.as_str() == sid && s.rooms.len() == 1)
    })
    .await;

    c.ask(0, json!(["cluster:join", "x"])).await;
    wait_snapshot(redis_port, &pid, |s| has_room(s, "x")).await;
    c.ask(1, json!(["cluster:leave", "x"])).await;
    wait_snapshot(redis_port, &pid, |s| s.is_some() && !has_room(s, "x")).await;
    c.ask(2, json!(["cluster:set-data", 42])).await;
    wait_snapshot(redis_port, &pid, |s| {
        s.is_some_and(|s| s.data == json!({"value": 42}))
    })
    .await;
    // socketsJoin / socketsLeave from another server.
    let (mut w, _, _) = Client::open(b_port, "40").await;
    w.event().await;
    w.ask(0, json!(["cluster:sockets-join", sid, "y"])).await;
    wait_snapshot(redis_port, &pid, |s| has_room(s, "y")).await;
    w.ask(1, json!(["cluster:sockets-leave", sid, "y"])).await;
    wait_snapshot(redis_port, &pid, |s| s.is_some() && !has_room(s, "y")).await;
    drop(c);
}
