//! `SocketIo::server_metrics`: sockets and rooms per namespace, pending acknowledgements and
//! their latency, refused CONNECTs, volatile packets dropped, and the engine's counters, as
//! real clients use the server.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use volley::{ConnectError, NamespaceMetrics, ServerMetrics, Socket, SocketIo};

fn ns<'a>(m: &'a ServerMetrics, name: &str) -> &'a NamespaceMetrics {
    m.namespaces
        .iter()
        .find(|n| n.name == name)
        .unwrap_or_else(|| panic!("no namespace {name} in {m:?}"))
}

#[tokio::test]
async fn sockets_rooms_and_acknowledgements_per_namespace() {
    let io = SocketIo::builder().build();
    let mut root = capture_sockets(&io.of("/"));
    let mut chat = capture_sockets(&io.of("/chat"));
    let srv = start(io).await;
    let (mut a, sa) = join_captured(&srv, "/", &mut root).await;
    let (_b, sb) = join_captured(&srv, "/", &mut root).await;
    a.join("/chat").await;
    let sa_chat = recv(&mut chat).await;
    sa.join(["red", "blue"]);
    sb.join("red");
    sa_chat.join("lobby");

    let m = srv.io.server_metrics();
    let (root_m, chat_m) = (ns(&m, "/"), ns(&m, "/chat"));
    assert_eq!((root_m.sockets, root_m.adapter.rooms), (2, Some(2)));
    assert_eq!((chat_m.sockets, chat_m.adapter.rooms), (1, Some(1)));
    // No cluster: no link to report.
    assert_eq!(root_m.adapter.link_up, None);
    assert_eq!(
        (m.engine.websocket_sessions, m.engine.polling_sessions),
        (2, 0)
    );

    // An acknowledgement the server waits for is pending until the client answers; its
    // latency is then observed once.
    let reply = sa.timeout(NEVER).emit_with_ack::<String, _>("q", &1);
    assert_eq!(ns(&srv.io.server_metrics(), "/").pending_acks, 1);
    let e = a.next_event("/", "q").await;
    a.ack("/", e.ack_id.expect("an ack id"), json!(["yes"]));
    assert_eq!(reply.await.unwrap(), "yes");
    let m = srv.io.server_metrics();
    assert_eq!(ns(&m, "/").pending_acks, 0);
    assert_eq!(m.ack_latency.count, 1);
    assert_eq!(m.ack_latency.buckets.last().map(|b| b.1), Some(1));
    assert_eq!(m.ack_timeouts_total, 0);

    // One that never comes is counted as a timeout, and is no longer pending.
    let reply = sa
        .timeout(Duration::from_millis(1))
        .emit_with_ack::<String, _>("never", &());
    assert!(reply.await.is_err());
    let m = srv.io.server_metrics();
    assert_eq!((m.ack_timeouts_total, m.ack_latency.count), (1, 1));
    assert_eq!(ns(&m, "/").pending_acks, 0);

    // Leaving rooms and namespaces shows.
    sa.leave("blue");
    drop(a);
    recv_disconnect(&srv, "/", 1).await;
    let m = srv.io.server_metrics();
    assert_eq!(
        (ns(&m, "/").sockets, ns(&m, "/").adapter.rooms),
        (1, Some(1))
    );
    assert_eq!(ns(&m, "/chat").sockets, 0);
    assert_eq!(m.engine.sessions_closed_total, 1);
}

/// Waits until `nsp` has `n` sockets, on the server's own disconnect signal.
async fn recv_disconnect(srv: &TestServer, nsp: &str, n: usize) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for s in srv.io.of(nsp).sockets() {
        let tx = tx.clone();
        s.on_disconnect(move |_: Socket, _: volley::DisconnectReason| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(());
            }
        });
    }
    drop(tx);
    while srv.io.of(nsp).sockets().len() > n {
        recv(&mut rx).await;
    }
}

#[tokio::test]
async fn refused_connects_are_counted_by_reason() {
    let io = SocketIo::builder().max_namespaces_per_connection(2).build();
    io.of("/private")
        .middleware(|_: Socket| async { Err::<(), _>(ConnectError::new("no")) });
    io.of("/a");
    let srv = start(io).await;
    let mut c = srv.client().await;
    assert!(c.try_join("/nope", None).await.is_err());
    assert!(c.try_join("/private", None).await.is_err());
    c.join("/").await;
    c.join("/a").await;
    assert!(c.try_join("/other", None).await.is_err());
    let m = srv.io.server_metrics();
    assert_eq!(
        (
            m.connects_refused_invalid_namespace_total,
            m.connects_refused_middleware_total,
            m.connects_refused_too_many_namespaces_total,
            m.connect_timeouts_total,
        ),
        (1, 1, 1, 0)
    );
}

/// One HTTP/1.1 request over a fresh TCP connection; the response's status and body.
async fn http(addr: std::net::SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Content-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(req.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut raw))
        .await
        .expect("a response in time")
        .expect("read");
    let raw = String::from_utf8(raw).expect("UTF-8 response");
    let (head, body) = raw.split_once("\r\n\r\n").expect("a header block");
    let status = head[9..12].parse().expect("a status code");
    (status, body.to_owned())
}

#[tokio::test]
async fn a_volatile_packet_for_a_socket_that_cannot_take_it_is_counted_as_dropped() {
    let io = SocketIo::builder().build();
    let mut root = capture_sockets(&io.of("/"));
    let srv = start(io).await;
    // A long-polling client that joins and does not poll: the CONNECT reply waits for it.
    let (status, open) = http(srv.addr, "GET", "/socket.io/?EIO=4&transport=polling", "").await;
    assert_eq!(status, 200, "{open}");
    let open: serde_json::Value = serde_json::from_str(&open[1..]).expect("the open packet");
    let sid = open["sid"].as_str().expect("a sid");
    let path = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    assert_eq!(
        http(srv.addr, "POST", &path, "40").await,
        (200, "ok".into())
    );
    let socket = recv(&mut root).await;

    srv.io.volatile().emit("tick", &1).unwrap();
    let m = srv.io.server_metrics();
    assert_eq!(m.volatile_dropped_total, 1);
    assert_eq!(m.engine.polling_sessions, 1);
    // A packet that is not volatile is queued as usual, and both reach the client.
    socket.emit("tock", &2).unwrap();
    let (status, body) = http(srv.addr, "GET", &path, "").await;
    assert_eq!(status, 200);
    assert!(body.contains("tock") && !body.contains("tick"), "{body}");
    assert_eq!(srv.io.server_metrics().volatile_dropped_total, 1);
}
