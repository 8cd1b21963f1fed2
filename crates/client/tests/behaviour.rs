//! Client behaviour that does not depend on the transport: retries, the bounded send buffer,
//! volatile emits, ack timeouts, reconnection switches, contained panics, the blocking facade.

mod common;

use std::time::Duration;

use common::{Kind, Ping, Server, WAIT, wait_for};
use serde_json::{Value, json};
use volley_client::{
    AckError, DisconnectReason, EmitError, Manager, ManagerEvent, Overflow, RawArgs, Socket,
    SocketEvent, TransportKind,
};

fn manager(url: &str) -> Manager {
    Manager::builder(url)
        .transports(&[TransportKind::WebSocket])
        .reconnection_delay(Duration::from_millis(50))
        .reconnection_delay_max(Duration::from_millis(200))
        .build()
        .unwrap()
}

/// No event of `kind` for a while.
async fn quiet(rx: &mut tokio::sync::broadcast::Receiver<ManagerEvent>, for_: Duration) -> bool {
    tokio::time::timeout(for_, async {
        loop {
            match rx.recv().await {
                Ok(ManagerEvent::ReconnectAttempt(_) | ManagerEvent::Open(_)) => return,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => std::future::pending::<()>().await,
            }
        }
    })
    .await
    .is_err()
}

async fn retries(kind: Kind) {
    let server = Server::start(kind, Ping::default()).await;
    let m = manager(&server.url());
    // A short ack timeout, so that the test does not wait long for the retries it needs; an
    // answer that a busy machine delays past it only costs one more try (at-least-once), so
    // the counts below are lower bounds and there are tries to spare.
    let socket = m
        .socket("/")
        .retries(20)
        .ack_timeout(Duration::from_millis(300))
        .connect()
        .await
        .unwrap();
    // The server ignores the first delivery of each key: the retry queue sends it again, and
    // the events stay in order (one in flight at a time).
    let a = socket.emit_with_ack::<u32>("flaky", "a");
    let b = socket.emit_with_ack::<u32>("flaky", "b");
    socket.emit("flaky", "c").unwrap();
    assert!(tokio::time::timeout(WAIT, a).await.unwrap().unwrap() >= 2);
    assert!(tokio::time::timeout(WAIT, b).await.unwrap().unwrap() >= 2);
    // Acknowledged emits bypass nothing: "collected" goes through the queue too, after "c".
    let seen: Vec<String> = tokio::time::timeout(WAIT, socket.emit_with_ack("collected", &()))
        .await
        .unwrap()
        .unwrap();
    // In order, each key at least twice: a a… b b… c c…
    let mut runs: Vec<(String, usize)> = Vec::new();
    for key in &seen {
        match runs.last_mut() {
            Some((k, n)) if k == key => *n += 1,
            _ => runs.push((key.clone(), 1)),
        }
    }
    let keys: Vec<&str> = runs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["a", "b", "c"], "{seen:?}");
    assert!(runs.iter().all(|(_, n)| *n >= 2), "{seen:?}");
    // Out of tries: the error comes back.
    let socket2 = m
        .socket("/admin")
        .retries(1)
        .ack_timeout(Duration::from_millis(100))
        .connect()
        .await
        .unwrap();
    let never = socket2.emit_with_ack::<Value>("echo", "no ack ever");
    assert!(matches!(
        tokio::time::timeout(WAIT, never).await.unwrap(),
        Err(AckError::Timeout)
    ));
    m.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_give_at_least_once_delivery_volley() {
    retries(Kind::Volley).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_give_at_least_once_delivery_node() {
    retries(Kind::Node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_buffer_is_bounded_and_flushed_in_order() {
    let server = Server::start(Kind::Volley, Ping::default()).await;
    let m = manager(&server.url());

    // Not connected yet: emits wait in the buffer.
    let s = m.socket("/").send_buffer(3, Overflow::Reject).build();
    s.emit("collect", &1).unwrap();
    s.emit("collect", &2).unwrap();
    s.volatile().emit("collect", &99).unwrap();
    assert_eq!(s.buffered(), 2, "a volatile emit is not buffered");
    s.emit("collect", &3).unwrap();
    assert!(matches!(s.emit("collect", &4), Err(EmitError::BufferFull)));
    assert!(matches!(
        s.emit("connect", &()),
        Err(EmitError::ReservedEvent(_))
    ));

    // A timed-out acknowledgement takes its event out of the buffer.
    let s2 = m
        .socket("/admin")
        .send_buffer(2, Overflow::DropOldest)
        .build();
    let timed_out = s2
        .timeout(Duration::from_millis(50))
        .emit_with_ack::<Value>("collect", &"late");
    assert!(matches!(timed_out.await, Err(AckError::Timeout)));
    assert_eq!(s2.buffered(), 0);
    // Dropping the oldest fails its acknowledgement.
    let oldest = s2.emit_with_ack::<Value>("collect", &10);
    s2.emit("collect", &11).unwrap();
    s2.emit("collect", &12).unwrap();
    assert!(matches!(oldest.await, Err(AckError::Dropped)));
    assert_eq!(s2.buffered(), 2);

    s.connect();
    s.wait_connected().await.unwrap();
    s2.connect();
    s2.wait_connected().await.unwrap();
    let list: Vec<u32> = s
        .timeout(WAIT)
        .emit_with_ack("collected", &())
        .await
        .unwrap();
    assert_eq!(list, [1, 2, 3, 11, 12]);
    // Connected: volatile emits go out.
    s.volatile().emit("collect", &5).unwrap();
    let list: Vec<u32> = s
        .timeout(WAIT)
        .emit_with_ack("collected", &())
        .await
        .unwrap();
    assert_eq!(list.last(), Some(&5));
    m.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_reconnection_a_failed_connect_is_final() {
    let port = common::closed_port();
    let m = Manager::builder(&format!("http://127.0.0.1:{port}"))
        .reconnection(false)
        .build()
        .unwrap();
    let mut ev = m.events();
    let err = tokio::time::timeout(WAIT, m.socket("/").connect())
        .await
        .unwrap()
        .unwrap_err();
    assert!(!err.is_from_server());
    assert!(quiet(&mut ev, Duration::from_millis(300)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_connect_is_retried_until_the_server_comes() {
    let port = common::closed_port();
    let m = Manager::builder(&format!("http://127.0.0.1:{port}"))
        .reconnection_delay(Duration::from_millis(50))
        .reconnection_delay_max(Duration::from_millis(100))
        .build()
        .unwrap();
    let mut ev = m.events();
    let socket = m.socket("/").build();
    socket.emit("collect", &"early").unwrap();
    socket.connect();
    wait_for(&mut ev, "second attempt", |e| {
        matches!(e, ManagerEvent::ReconnectAttempt(2)).then_some(())
    })
    .await;
    // Now bring a server up on that port.
    let _server = Server::start_on(Kind::Volley, Ping::default(), port).await;
    tokio::time::timeout(WAIT, socket.wait_connected())
        .await
        .unwrap()
        .unwrap();
    wait_for(&mut ev, "reconnect", |e| {
        matches!(e, ManagerEvent::Reconnect(n) if *n >= 2).then_some(())
    })
    .await;
    let list: Vec<String> = socket
        .timeout(WAIT)
        .emit_with_ack("collected", &())
        .await
        .unwrap();
    assert_eq!(list, ["early"]);
    m.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_disconnect_of_the_last_socket_stops_everything() {
    let server = Server::start(Kind::Volley, Ping::default()).await;
    let m = manager(&server.url());
    let s = m.socket("/").connect().await.unwrap();
    let mut sev = s.events();
    let mut mev = m.events();
    s.emit("kick", &()).unwrap();
    wait_for(&mut sev, "kick", |e| {
        (*e == SocketEvent::Disconnect(DisconnectReason::IoServerDisconnect)).then_some(())
    })
    .await;
    assert!(quiet(&mut mev, Duration::from_millis(400)).await);
    assert!(!s.active());
    // The application may connect it again.
    s.connect();
    tokio::time::timeout(WAIT, s.wait_connected())
        .await
        .unwrap()
        .unwrap();
    m.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_is_contained() {
    let server = Server::start(Kind::Volley, Ping::default()).await;
    let m = manager(&server.url());
    let s = m
        .socket("/")
        .on("echo", |_: Socket, _: RawArgs| async move {
            panic!("handler bug");
        })
        .connect()
        .await
        .unwrap();
    s.emit("echo", &1).unwrap();
    s.emit("echo", &2).unwrap();
    let r: u32 = s.timeout(WAIT).emit_with_ack("ack", &7).await.unwrap();
    assert_eq!(r, 7);
    assert!(s.connected());
    m.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_every_handle_ends_the_connection() {
    let server = Server::start(Kind::Volley, Ping::default()).await;
    let proxy = common::Proxy::start(server.port).await;
    let m = manager(&proxy.url());
    let s = m.socket("/").connect().await.unwrap();
    assert_eq!(proxy.live(), 1);
    drop(m);
    // The socket handle keeps the manager alive: a round trip after the drop goes through the
    // driver's ordered command channel, behind the shutdown a drop of the last handle sends.
    let r: u32 = s.timeout(WAIT).emit_with_ack("ack", &5).await.unwrap();
    assert_eq!(r, 5);
    assert!(s.connected());
    assert_eq!(proxy.live(), 1);
    drop(s);
    proxy.wait_live(0).await;
}

#[test]
fn blocking_facade() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(Server::start(Kind::Volley, Ping::default()));
    let url = server.url();
    // Refuses to block inside a runtime instead of panicking.
    let inside = rt
        .block_on(async { volley_client::blocking::Client::connect(&url, "/", WAIT).map(|_| ()) });
    assert!(matches!(
        inside,
        Err(volley_client::blocking::Error::Build(
            volley_client::BuildError::Runtime(_)
        ))
    ));
    let client = volley_client::blocking::Client::connect(&url, "/", WAIT).unwrap();
    assert!(client.connected());
    let (tx, rx) = std::sync::mpsc::channel();
    client.on("echo", move |v: Value| {
        let _ = tx.send(v);
    });
    client.emit("echo", &json!({ "x": 1 })).unwrap();
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), json!({ "x": 1 }));
    let r: String = client.emit_with_ack("ack", "sync", WAIT).unwrap();
    assert_eq!(r, "sync");
    client.close();
    drop(server);
    rt.shutdown_background();
}
