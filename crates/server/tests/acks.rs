//! Acknowledgements both ways: a socket's `emit_with_ack`, a broadcast's `AckStream` over many
//! sockets (one of them slow), and handlers answering the client's acks.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use futures_util::StreamExt as _;
use serde_json::{Value, json};
use volley::{AckError, AckSender, Data, EmitError, Socket, SocketIo};

/// The acknowledgement timeout of a socket that never answers, reached on paused time: below
/// 25 s, the default ping interval, so that auto-advancing the paused clock reaches it before
/// any heartbeat. (Where every socket answers, the timeout is [`NEVER`].)
const LONG: Duration = Duration::from_secs(10);

/// Reads the broadcast `name` on `client` and answers it with `answer`.
async fn answer(client: &mut Client, name: &str, answer: Value) {
    let e = client.next_event("/", name).await;
    let id = e.ack_id.expect("a broadcast with ack carries an ack id");
    client.ack("/", id, json!([answer]));
}

#[tokio::test]
async fn broadcast_ack_collects_every_sockets_answer() {
    let srv = start_default().await;
    let mut socks = capture_sockets(&srv.io.of("/"));
    let (mut a, sa) = join_captured(&srv, "/", &mut socks).await;
    let (mut b, sb) = join_captured(&srv, "/", &mut socks).await;
    let (mut c, sc) = join_captured(&srv, "/", &mut socks).await;

    let stream = srv
        .io
        .timeout(NEVER)
        .emit_with_ack::<String, _>("who", &"are you");
    for (client, name) in [(&mut a, "a"), (&mut b, "b"), (&mut c, "c")] {
        let e = client.next_event("/", "who").await;
        assert_eq!(e.args, vec![json!("are you")]);
        client.ack("/", e.ack_id.unwrap(), json!([name]));
    }
    let all = tokio::time::timeout(WAIT, stream.collect_all())
        .await
        .expect("every socket answered: the stream ends without waiting for the timeout");
    let got: BTreeMap<String, String> = all
        .into_iter()
        .map(|r| {
            (
                r.socket_id.expect("answers carry the socket id"),
                r.result.unwrap(),
            )
        })
        .collect();
    let want: BTreeMap<String, String> = [(&sa, "a"), (&sb, "b"), (&sc, "c")]
        .into_iter()
        .map(|(s, n)| (s.id().to_string(), n.to_owned()))
        .collect();
    assert_eq!(got, want);
}

#[tokio::test]
async fn broadcast_ack_slow_socket_times_out_and_the_others_answer() {
    let srv = start_default().await;
    let mut socks = capture_sockets(&srv.io.of("/"));
    let (mut a, sa) = join_captured(&srv, "/", &mut socks).await;
    let (mut b, sb) = join_captured(&srv, "/", &mut socks).await;
    let (mut slow, _) = join_captured(&srv, "/", &mut socks).await;

    let mut stream = srv.io.timeout(LONG).emit_with_ack::<u32, _>("count", &());
    answer(&mut a, "count", json!(1)).await;
    answer(&mut b, "count", json!(2)).await;
    // The slow client receives the event and never answers.
    assert!(slow.next_event("/", "count").await.ack_id.is_some());

    // The fast answers come first, as they arrive; then one timeout for the missing one,
    // reached on paused time once nothing else is left to happen.
    let mut items = Vec::new();
    for _ in 0..2 {
        let item = tokio::time::timeout(WAIT, stream.next())
            .await
            .expect("a fast answer")
            .expect("the stream is not over");
        items.push(item);
    }
    tokio::time::pause();
    while let Some(item) = tokio::time::timeout(WAIT, stream.next())
        .await
        .expect("the stream ends by its own timeout")
    {
        items.push(item);
    }
    assert_eq!(items.len(), 3, "{items:?}");
    let mut ok: Vec<(String, u32)> = items[..2]
        .iter()
        .map(|r| {
            let v = r.result.as_ref().expect("fast answers first");
            (r.socket_id.clone().unwrap(), *v)
        })
        .collect();
    ok.sort_by_key(|(_, v)| *v);
    assert_eq!(ok, vec![(sa.id().to_string(), 1), (sb.id().to_string(), 2)]);
    assert!(
        matches!(items[2].result, Err(AckError::Timeout)),
        "{:?}",
        items[2]
    );
}

#[tokio::test]
async fn broadcast_ack_collect_all_with_a_slow_socket() {
    let srv = start_default().await;
    let mut socks = capture_sockets(&srv.io.of("/"));
    let (mut a, sa) = join_captured(&srv, "/", &mut socks).await;
    let (mut slow, _) = join_captured(&srv, "/", &mut socks).await;
    let (mut b, sb) = join_captured(&srv, "/", &mut socks).await;
    for s in [&sa, &sb] {
        s.on(
            "sync",
            |_: Socket, _: volley::RawArgs, ack: AckSender| async move {
                let _ = ack.send(&());
            },
        );
    }

    let stream = srv
        .io
        .of("/")
        .broadcast()
        .timeout(LONG)
        .emit_with_ack::<String, _>("ping", &1);
    answer(&mut a, "ping", json!("pong-a")).await;
    answer(&mut b, "ping", json!("pong-b")).await;
    slow.next_event("/", "ping").await;
    // The server handles a connection's packets in order: once it answered these, it has the
    // two answers. Then the paused clock reaches the timeout of the slow one at once.
    a.emit_with_ack("/", "sync", json!([])).await;
    b.emit_with_ack("/", "sync", json!([])).await;
    tokio::time::pause();

    let all = tokio::time::timeout(WAIT, stream.collect_all())
        .await
        .unwrap();
    assert_eq!(all.len(), 3, "{all:?}");
    let ok: BTreeMap<String, String> = all
        .iter()
        .filter_map(|r| match &r.result {
            Ok(v) => Some((r.socket_id.clone().unwrap(), v.clone())),
            Err(_) => None,
        })
        .collect();
    assert_eq!(
        ok,
        BTreeMap::from([
            (sa.id().to_string(), "pong-a".to_owned()),
            (sb.id().to_string(), "pong-b".to_owned())
        ])
    );
    let timeouts: Vec<_> = all
        .iter()
        .filter(|r| matches!(r.result, Err(AckError::Timeout)))
        .collect();
    assert_eq!(timeouts.len(), 1, "{all:?}");
}

#[tokio::test]
async fn broadcast_ack_streams_fast_answers_while_a_slow_one_is_pending() {
    let srv = start_default().await;
    let mut socks = capture_sockets(&srv.io.of("/"));
    let (mut a, sa) = join_captured(&srv, "/", &mut socks).await;
    let (mut b, sb) = join_captured(&srv, "/", &mut socks).await;
    let (mut slow, sslow) = join_captured(&srv, "/", &mut socks).await;

    // A long timeout: nothing below waits for it.
    let mut stream = srv.io.timeout(NEVER).emit_with_ack::<String, _>("q", &0);
    answer(&mut a, "q", json!("a")).await;
    answer(&mut b, "q", json!("b")).await;
    let slow_event = slow.next_event("/", "q").await;

    let mut first = Vec::new();
    for _ in 0..2 {
        let item = tokio::time::timeout(WAIT, stream.next())
            .await
            .expect("a fast answer is yielded before the slow socket answers")
            .expect("the stream is not over");
        first.push((item.socket_id.unwrap(), item.result.unwrap()));
    }
    first.sort();
    let mut want = vec![
        (sa.id().to_string(), "a".to_owned()),
        (sb.id().to_string(), "b".to_owned()),
    ];
    want.sort();
    assert_eq!(first, want);

    slow.ack("/", slow_event.ack_id.unwrap(), json!(["late"]));
    let last = tokio::time::timeout(WAIT, stream.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(last.socket_id.as_deref(), Some(sslow.id().as_str()));
    assert_eq!(last.result.unwrap(), "late");
    assert!(
        tokio::time::timeout(WAIT, stream.next())
            .await
            .unwrap()
            .is_none(),
        "the stream ends once every socket answered"
    );
}

#[tokio::test]
async fn broadcast_ack_respects_the_selection() {
    let srv = start_default().await;
    let mut socks = capture_sockets(&srv.io.of("/"));
    let (mut a, sa) = join_captured(&srv, "/", &mut socks).await;
    let (mut b, sb) = join_captured(&srv, "/", &mut socks).await;
    let (mut c, _sc) = join_captured(&srv, "/", &mut socks).await;
    sa.join("r");
    sb.join("r");

    // socket.to(room) excludes the sender: only B is asked.
    let stream = sa.to("r").timeout(NEVER).emit_with_ack::<i32, _>("q", &1);
    answer(&mut b, "q", json!(7)).await;
    let all = tokio::time::timeout(WAIT, stream.collect_all())
        .await
        .unwrap();
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0].socket_id.as_deref(), Some(sb.id().as_str()));
    assert_eq!(*all[0].result.as_ref().unwrap(), 7);
    srv.io.emit("barrier", &0).unwrap();
    a.expect_next_event("/", "barrier").await;
    c.expect_next_event("/", "barrier").await;

    // A local broadcast with acks to a room.
    let stream = srv
        .io
        .local()
        .to("r")
        .timeout(NEVER)
        .emit_with_ack::<i32, _>("q2", &2);
    answer(&mut a, "q2", json!(1)).await;
    answer(&mut b, "q2", json!(2)).await;
    let all = tokio::time::timeout(WAIT, stream.collect_all())
        .await
        .unwrap();
    let mut vals: Vec<i32> = all.into_iter().map(|r| r.result.unwrap()).collect();
    vals.sort();
    assert_eq!(vals, vec![1, 2]);

    // Nobody selected: the stream ends at once, empty.
    let stream = srv
        .io
        .to("empty-room")
        .timeout(NEVER)
        .emit_with_ack::<i32, _>("q3", &3);
    let all = tokio::time::timeout(WAIT, stream.collect_all())
        .await
        .expect("no socket to wait for");
    assert!(all.is_empty(), "{all:?}");
}

#[tokio::test]
async fn broadcast_ack_answer_that_does_not_decode() {
    let srv = start_default().await;
    let mut socks = capture_sockets(&srv.io.of("/"));
    let (mut a, sa) = join_captured(&srv, "/", &mut socks).await;

    let stream = srv.io.timeout(NEVER).emit_with_ack::<u32, _>("n", &0);
    answer(&mut a, "n", json!("not a number")).await;
    let all = tokio::time::timeout(WAIT, stream.collect_all())
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].socket_id.as_deref(), Some(sa.id().as_str()));
    assert!(matches!(all[0].result, Err(AckError::Decode(_))), "{all:?}");
}

#[tokio::test]
async fn socket_emit_with_ack_gets_the_answer() {
    let srv = start_default().await;
    let mut socks = capture_sockets(&srv.io.of("/"));
    let (mut a, sa) = join_captured(&srv, "/", &mut socks).await;

    let fut = sa.emit_with_ack::<String, _>("hello", &json!({"n": 1}));
    let e = a.next_event("/", "hello").await;
    assert_eq!(e.args, vec![json!({"n": 1})]);
    a.ack("/", e.ack_id.unwrap(), json!(["world"]));
    assert_eq!(
        tokio::time::timeout(WAIT, fut).await.unwrap().unwrap(),
        "world"
    );

    // Several arguments each way.
    let fut = sa
        .timeout(NEVER)
        .emit_args_with_ack::<(i32, String)>("pair", (1, "x"));
    let e = a.next_event("/", "pair").await;
    assert_eq!(e.args, vec![json!(1), json!("x")]);
    a.ack("/", e.ack_id.unwrap(), json!([2, "y"]));
    assert_eq!(
        tokio::time::timeout(WAIT, fut).await.unwrap().unwrap(),
        (2, "y".to_owned())
    );

    // Two acks in flight at once are told apart by id, answered out of order.
    let f1 = sa.emit_with_ack::<i32, _>("one", &1);
    let f2 = sa.emit_with_ack::<i32, _>("two", &2);
    let e1 = a.next_event("/", "one").await;
    let e2 = a.next_event("/", "two").await;
    assert_ne!(e1.ack_id, e2.ack_id);
    a.ack("/", e2.ack_id.unwrap(), json!([20]));
    a.ack("/", e1.ack_id.unwrap(), json!([10]));
    assert_eq!(tokio::time::timeout(WAIT, f1).await.unwrap().unwrap(), 10);
    assert_eq!(tokio::time::timeout(WAIT, f2).await.unwrap().unwrap(), 20);
}

#[tokio::test]
async fn socket_emit_with_ack_times_out() {
    let srv = start_default().await;
    let mut socks = capture_sockets(&srv.io.of("/"));
    let (mut a, sa) = join_captured(&srv, "/", &mut socks).await;

    let fut = sa
        .timeout(Duration::from_millis(200))
        .emit_with_ack::<Value, _>("never", &1);
    let e = a.next_event("/", "never").await;
    let r = tokio::time::timeout(WAIT, fut).await.unwrap();
    assert!(matches!(r, Err(AckError::Timeout)), "{r:?}");
    // A late answer is ignored, and the socket still works.
    a.ack("/", e.ack_id.unwrap(), json!(["late"]));
    let fut = sa.emit_with_ack::<String, _>("again", &2);
    let e = a.next_event("/", "again").await;
    a.ack("/", e.ack_id.unwrap(), json!(["ok"]));
    assert_eq!(
        tokio::time::timeout(WAIT, fut).await.unwrap().unwrap(),
        "ok"
    );
}

#[tokio::test]
async fn socket_emit_with_ack_uses_the_servers_default_timeout() {
    let io = SocketIo::builder()
        .ack_timeout(Duration::from_millis(200))
        .build();
    let srv = start(io).await;
    let mut socks = capture_sockets(&srv.io.of("/"));
    let (mut a, sa) = join_captured(&srv, "/", &mut socks).await;

    let fut = sa.emit_with_ack::<Value, _>("never", &1);
    a.next_event("/", "never").await;
    let r = tokio::time::timeout(WAIT, fut).await.unwrap();
    assert!(matches!(r, Err(AckError::Timeout)), "{r:?}");

    // Broadcasts without `timeout` use it too.
    let stream = srv.io.broadcast().emit_with_ack::<Value, _>("never-b", &2);
    a.next_event("/", "never-b").await;
    let all = tokio::time::timeout(WAIT, stream.collect_all())
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
    assert!(matches!(all[0].result, Err(AckError::Timeout)));
}

#[tokio::test]
async fn socket_emit_with_ack_fails_when_the_client_leaves_the_namespace() {
    let srv = start_default().await;
    let mut socks = capture_sockets(&srv.io.of("/"));
    let (mut a, sa) = join_captured(&srv, "/", &mut socks).await;

    let fut = sa.timeout(NEVER).emit_with_ack::<Value, _>("wait", &1);
    a.next_event("/", "wait").await;
    a.leave_ns("/");
    let r = tokio::time::timeout(WAIT, fut)
        .await
        .expect("resolves at the disconnect, not at the timeout");
    assert!(matches!(r, Err(AckError::Disconnected)), "{r:?}");

    // Emitting on a disconnected socket fails at once.
    let r = tokio::time::timeout(WAIT, sa.emit_with_ack::<Value, _>("after", &1))
        .await
        .unwrap();
    assert!(
        matches!(r, Err(AckError::Emit(EmitError::Disconnected))),
        "{r:?}"
    );
    assert!(matches!(sa.emit("after", &1), Err(EmitError::Disconnected)));
}

#[tokio::test]
async fn socket_emit_with_ack_fails_when_the_connection_drops() {
    let srv = start_default().await;
    let mut socks = capture_sockets(&srv.io.of("/"));
    let (mut a, sa) = join_captured(&srv, "/", &mut socks).await;

    let fut = sa.timeout(NEVER).emit_with_ack::<Value, _>("wait", &1);
    a.next_event("/", "wait").await;
    a.drop_tcp();
    let r = tokio::time::timeout(WAIT, fut)
        .await
        .expect("resolves at the disconnect, not at the timeout");
    assert!(matches!(r, Err(AckError::Disconnected)), "{r:?}");
}

#[tokio::test]
async fn handlers_answer_the_clients_acks() {
    let srv = start_default().await;
    let ns = srv.io.of("/");
    let (tx, mut ready) = tokio::sync::mpsc::unbounded_channel();
    ns.on_connection(move |s: Socket| {
        let tx = tx.clone();
        async move {
            s.on(
                "add",
                |_: Socket, Data((a, b)): Data<(i64, i64)>, ack: AckSender| async move {
                    let _ = ack.send(&(a + b));
                },
            );
            s.on(
                "echo-all",
                |_: Socket, args: volley::RawArgs, ack: AckSender| async move {
                    assert!(ack.is_requested());
                    let _ = ack.send_args(args);
                },
            );
            s.on(
                "later",
                |_: Socket, Data(v): Data<Value>, ack: AckSender| async move {
                    tokio::task::yield_now().await;
                    let _ = ack.send_args((v, "later"));
                },
            );
            let _ = tx.send(());
        }
    });
    let mut a = srv.client().await;
    a.join("/").await;
    recv(&mut ready).await;

    assert_eq!(
        a.emit_with_ack("/", "add", json!([2, 3])).await,
        vec![json!(5)]
    );
    assert_eq!(
        a.emit_with_ack("/", "echo-all", json!(["x", {"y": [1]}, null]))
            .await,
        vec![json!("x"), json!({"y": [1]}), Value::Null]
    );
    assert_eq!(
        a.emit_with_ack("/", "later", json!([true])).await,
        vec![json!(true), json!("later")]
    );
}

#[tokio::test]
async fn acks_in_a_custom_namespace() {
    let srv = start_default().await;
    let mut socks = capture_sockets(&srv.io.of("/chat"));
    let (mut a, sa) = join_captured(&srv, "/chat", &mut socks).await;

    let fut = sa.emit_with_ack::<String, _>("q", &1);
    let e = a.next_event("/chat", "q").await;
    a.ack("/chat", e.ack_id.unwrap(), json!(["chat-answer"]));
    assert_eq!(
        tokio::time::timeout(WAIT, fut).await.unwrap().unwrap(),
        "chat-answer"
    );

    let stream = srv
        .io
        .of("/chat")
        .broadcast()
        .timeout(NEVER)
        .emit_with_ack::<String, _>("b", &2);
    let e = a.next_event("/chat", "b").await;
    a.ack("/chat", e.ack_id.unwrap(), json!(["b-answer"]));
    let all = tokio::time::timeout(WAIT, stream.collect_all())
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].socket_id.as_deref(), Some(sa.id().as_str()));
    assert_eq!(all[0].result.as_ref().unwrap(), "b-answer");
}
