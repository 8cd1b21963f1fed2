//! The conveniences of the API against the Volley server: `once`, event streams, byte
//! sequences sent as binary, `emit_with_ack` inference, building a namespace twice, and the
//! reasons of client-side disconnects.

mod common;

use std::time::Duration;

use common::{Kind, Ping, Server, WAIT, recv, wait_for};
use futures_util::StreamExt;
use serde_json::Value;
use tokio::sync::mpsc;
use volley_client::{
    AckError, Bytes, DisconnectReason, EmitError, Manager, ManagerEvent, Overflow, RawArgs, Socket,
    SocketEvent, TransportKind,
};

fn manager(url: &str) -> Manager {
    Manager::builder(url)
        .transports(&[TransportKind::WebSocket])
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_runs_for_the_next_event_only() {
    let server = Server::start(Kind::Volley, Ping::default()).await;
    let m = manager(&server.url());
    let socket = m.socket("/").connect().await.unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let t = tx.clone();
    socket.once("echo", move |_: Socket, args: RawArgs| {
        let _ = t.send(args.parse::<String>().unwrap());
        async {}
    });
    let mut stream = socket.event_stream();
    socket.emit("echo", "first").unwrap();
    socket.emit("echo", "second").unwrap();
    // Both reach the stream; the `once` handler saw the first only.
    for want in ["first", "second"] {
        let (name, args) = tokio::time::timeout(WAIT, stream.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (name.as_str(), args.parse::<String>().unwrap().as_str()),
            ("echo", want)
        );
    }
    assert_eq!(recv(&mut rx, "once").await, "first");
    assert!(rx.try_recv().is_err());

    // A `once` replaced by `on` before it fired leaves the new handler in place.
    socket.once("echo", |_: Socket| async {});
    let t = tx.clone();
    socket.on("echo", move |_: Socket, args: RawArgs| {
        let _ = t.send(args.parse::<String>().unwrap());
        async {}
    });
    socket.emit("echo", "a").unwrap();
    socket.emit("echo", "b").unwrap();
    assert_eq!(recv(&mut rx, "on a").await, "a");
    assert_eq!(recv(&mut rx, "on b").await, "b");
    m.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn byte_sequences_are_binary_and_acks_infer() -> Result<(), Box<dyn std::error::Error>> {
    let server = Server::start(Kind::Volley, Ping::default()).await;
    let m = manager(&server.url());
    let socket = m.socket("/").connect().await?;
    let mut stream = socket.event_stream();

    socket.emit("echo", &vec![1u8, 2, 3])?;
    let (_, args) = tokio::time::timeout(WAIT, stream.next()).await?.unwrap();
    assert_eq!(
        args.attachments().len(),
        1,
        "a Vec<u8> goes as one binary attachment"
    );
    assert_eq!(args.parse::<Bytes>()?, Bytes::from_static(&[1, 2, 3]));

    // Only the output type is a type parameter: annotations or `::<T>` alone.
    let back: Bytes = socket.emit_with_ack("ack", &[4u8, 5][..]).await?;
    assert_eq!(back, Bytes::from_static(&[4, 5]));
    let n = socket.emit_with_ack::<u32>("ack", &7).await?;
    assert_eq!(n, 7);
    // The same with a timeout.
    let n = socket.timeout(WAIT).emit_with_ack::<u32>("ack", &8).await?;
    assert_eq!(n, 8);
    let back: Bytes = socket
        .timeout(WAIT)
        .emit_with_ack("ack", &vec![6u8])
        .await?;
    assert_eq!(back, Bytes::from_static(&[6]));

    // Other numbers stay numbers.
    let nums: Vec<u32> = socket.emit_with_ack("ack", &vec![1u32, 2]).await?;
    assert_eq!(nums, [1, 2]);
    let raw: RawArgs = socket.emit_with_ack("ack", &vec![1u32, 2]).await?;
    assert!(raw.attachments().is_empty());
    assert_eq!(raw.parse::<Value>()?, serde_json::json!([1, 2]));
    m.close();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn building_a_namespace_again_merges() {
    let server = Server::start(Kind::Volley, Ping::default()).await;
    let m = manager(&server.url());
    let first = m
        .socket("/")
        .send_buffer(1, Overflow::Reject)
        .ack_timeout(Duration::from_secs(30))
        .build();
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    // Built again with a handler only: the send buffer of one keeps its capacity.
    let second = m
        .socket("/")
        .on("echo", move |_: Socket, args: RawArgs| {
            let _ = tx.send(args.parse::<String>().unwrap());
            async {}
        })
        .build();
    second.emit("echo", "buffered").unwrap();
    assert!(matches!(
        first.emit("echo", "over"),
        Err(EmitError::BufferFull)
    ));
    // Options set again replace the old ones.
    let third = m.socket("/").send_buffer(2, Overflow::Reject).build();
    third.emit("echo", "second").unwrap();
    third.connect();
    third.wait_connected().await.unwrap();
    assert_eq!(recv(&mut rx, "buffered").await, "buffered");
    assert_eq!(recv(&mut rx, "second").await, "second");
    assert!(first.connected() && second.connected());
    m.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_side_reasons_are_the_official_ones() {
    let server = Server::start(Kind::Volley, Ping::default()).await;
    let m = manager(&server.url());
    let mut mev = m.events();
    let main = m.socket("/").connect().await.unwrap();
    let admin = m.socket("/admin").connect().await.unwrap();
    let mut main_ev = main.events();
    let mut admin_ev = admin.events();
    // A pending ack fails when its socket leaves.
    let pending = admin.emit_with_ack::<Value>("flaky", "never");

    // `socket.disconnect()`: "io client disconnect".
    admin.disconnect();
    let r = wait_for(&mut admin_ev, "admin disconnect", |e| match e {
        SocketEvent::Disconnect(r) => Some(*r),
        _ => None,
    })
    .await;
    assert_eq!(r, DisconnectReason::IoClientDisconnect);
    assert_eq!(r.as_str(), "io client disconnect");
    assert!(matches!(
        tokio::time::timeout(WAIT, pending).await.unwrap(),
        Err(AckError::Disconnected)
    ));

    // `manager.close()`: "forced close", for the sockets and the manager.
    m.close();
    let r = wait_for(&mut main_ev, "main disconnect", |e| match e {
        SocketEvent::Disconnect(r) => Some(*r),
        _ => None,
    })
    .await;
    assert_eq!(r, DisconnectReason::ForcedClose);
    assert_eq!(r.as_str(), "forced close");
    assert!(!r.will_reconnect());
    wait_for(&mut mev, "manager close", |e| {
        (*e == ManagerEvent::Close(DisconnectReason::ForcedClose)).then_some(())
    })
    .await;
}
