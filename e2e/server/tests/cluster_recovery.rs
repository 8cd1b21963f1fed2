//! Connection state recovery across a cluster of `conformance-server` processes
//! (`REDIS_ADAPTER=streams RECOVERY=1`) on a redis-server the test starts, with raw
//! Socket.IO clients: a client cut from server A recovers on server B after A was killed
//! with SIGKILL, with its id, its rooms and every packet it missed (sent by A before it died
//! and by B after), once each and in order. A client still connected to A when it is killed
//! recovers on B too, from the snapshot of its session A kept in Redis while it was
//! connected (Node keeps a session only when its socket disconnects, which a killed server
//! cannot do).

mod common;

use std::time::Instant;

use common::{Client, WAIT, cluster, offset, sigkill, wait_snapshot};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_recovers_on_b_after_a_was_killed() {
    let mut cl = cluster();
    let (a_port, b_port, redis_port) = (cl.a_port, cl.b_port, cl.redis_port);

    // c1 (to be cut) and c2 (connected when A dies) on A, the watcher on B.
    let (mut c1, r1, _) = Client::open(a_port, "40").await;
    let (sid1, pid1) = (r1["sid"].clone(), r1["pid"].clone());
    let auth = c1.event().await;
    assert_eq!(auth[0], "auth");
    offset(&auth);
    assert_eq!(
        c1.ask(0, json!(["cluster:join", "r"])).await,
        json!(["volley-a"])
    );
    let (mut c2, r2, _) = Client::open(a_port, "40").await;
    c2.event().await;
    let (mut w, _, _) = Client::open(b_port, "40").await;
    w.event().await;
    // A first broadcast every client gets.
    c2.send(r#"42["cluster:emit-all","m0"]"#);
    let e = c1.event().await;
    assert_eq!(
        e[..3],
        [json!("cluster:all"), json!("m0"), json!("volley-a")]
    );
    let off1 = offset(&e);
    assert_eq!(w.event().await[1], "m0");
    let off2 = offset(&c2.event().await);
    // c2's session is in Redis while it is connected.
    let pid2 = r2["pid"].as_str().unwrap().to_owned();
    wait_snapshot(redis_port, &pid2, |s| s.is_some()).await;

    // Cut c1; A keeps its session once it noticed (fetchSockets no longer lists it).
    drop(c1);
    let deadline = Instant::now() + WAIT;
    loop {
        let list = w.ask(1, json!(["cluster:fetch", null])).await;
        let gone = list[0]
            .as_array()
            .is_some_and(|l| l.iter().all(|s| s["id"] != sid1));
        if gone {
            break;
        }
        assert!(Instant::now() < deadline, "A never noticed the cut");
    }
    // Missed from A (after its SET on the same connection), then from B.
    c2.send(r#"42["cluster:emit-room","r","m1"]"#);
    c2.send(r#"42["cluster:emit-all","m2"]"#);
    assert_eq!(w.event().await[1], "m2");
    w.send(r#"42["cluster:emit-room","r","m3"]"#);
    w.send(r#"42["cluster:emit-except","r","no"]"#);
    assert_eq!(w.event().await[0], "cluster:except");

    // A dies.
    sigkill(&mut cl.a);
    w.send(r#"42["cluster:emit-all","m4"]"#);
    assert_eq!(w.event().await[1], "m4");

    // c1 comes back on B: same id, rooms, and every missed packet once, in order.
    let connect = format!(r#"40{{"pid":{pid1},"offset":"{off1}"}}"#);
    let (mut c1, reply, before) = Client::open(b_port, &connect).await;
    assert_eq!(reply["sid"], sid1, "recovered on B: {reply}");
    let missed: Vec<Value> = before.iter().map(|t| strip_offset(t)).collect();
    assert_eq!(
        missed,
        [
            json!(["cluster:room", "r", "m1"]),
            json!(["cluster:all", "m2", "volley-a"]),
            json!(["cluster:room", "r", "m3"]),
            json!(["cluster:all", "m4", "volley-b"]),
        ]
    );
    let state = c1.ask(2, json!(["recovery:state"])).await;
    let mut rooms = vec![sid1.as_str().unwrap().to_owned(), "r".to_owned()];
    rooms.sort();
    assert_eq!(
        state,
        json!([{"id": sid1, "recovered": true, "rooms": rooms}])
    );
    // Its rooms work across the cluster again.
    w.send(r#"42["cluster:emit-room","r","m5"]"#);
    assert_eq!(
        c1.event().await[..3],
        [json!("cluster:room"), json!("r"), json!("m5")]
    );

    // c2 was connected when A died: it recovers from its snapshot, with what it missed
    // after its last offset (not room r's).
    drop(c2);
    let connect = format!(r#"40{{"pid":"{pid2}","offset":"{off2}"}}"#);
    let (mut c2, reply, before) = Client::open(b_port, &connect).await;
    assert_eq!(reply["sid"], r2["sid"], "recovered on B: {reply}");
    let missed: Vec<Value> = before.iter().map(|t| strip_offset(t)).collect();
    assert_eq!(
        missed,
        [
            json!(["cluster:all", "m2", "volley-a"]),
            json!(["cluster:except", "r", "no"]),
            json!(["cluster:all", "m4", "volley-b"]),
        ]
    );
    let state = c2.ask(0, json!(["recovery:state"])).await;
    assert_eq!(state[0]["recovered"], true);
}

/// An event's text `42[...]` without the offset it carries last (which must be there).
fn strip_offset(t: &str) -> Value {
    let v: Value = serde_json::from_str(t.strip_prefix("42").expect(t)).unwrap();
    let a = v.as_array().unwrap();
    offset(a);
    json!(a[..a.len() - 1])
}
