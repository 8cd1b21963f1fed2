//! `SocketIo::close(grace)`: every socket is disconnected with "server shutting down",
//! pending acknowledgements fail at once with a clear error, new connections are refused,
//! and the call returns in bounded time even when a client does not cooperate.

mod reliability_support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reliability_support::client::{Client, ConnectOptions, Target};
use reliability_support::{get_req, http, polling_handshake, post_req, serve};
use serde_json::Value;
use volley::{AckError, DisconnectReason, Socket, SocketIo};

#[derive(Default)]
struct Seen {
    reasons: Mutex<Vec<DisconnectReason>>,
    /// Each pending `emit_with_ack`: its error message and how long it waited.
    acks: Mutex<Vec<(String, bool, Duration)>>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_disconnects_every_socket_fails_pending_acks_and_returns_in_bounded_time() {
    const WS_CLIENTS: usize = 5;
    let io = SocketIo::builder().build();
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    io.of("/").on_connection(move |socket: Socket| {
        let seen = s.clone();
        async move {
            let on_dc = seen.clone();
            socket.on_disconnect(move |_: Socket, reason| async move {
                on_dc.reasons.lock().unwrap().push(reason);
            });
            // A question no client answers: pending until the shutdown.
            tokio::spawn(async move {
                let asked = Instant::now();
                let r = socket
                    .timeout(Duration::from_secs(60))
                    .emit_with_ack::<Value, _>("question", &1)
                    .await;
                let err = r.expect_err("nobody answers");
                let disconnected = matches!(err, AckError::Disconnected);
                seen.acks
                    .lock()
                    .unwrap()
                    .push((err.to_string(), disconnected, asked.elapsed()));
            });
        }
    });
    let addr = serve(&io).await;
    let target = Target::local(addr);

    // WebSocket clients that keep reading and note when their connection ends.
    let mut readers = Vec::new();
    for _ in 0..WS_CLIENTS {
        let mut c = Client::connect(&target, &ConnectOptions::default())
            .await
            .unwrap();
        readers.push(tokio::spawn(async move {
            loop {
                match c.next_packet().await {
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => return Instant::now(),
                }
            }
        }));
    }
    // A long-polling client that joins, then stops polling: it will never come for its
    // close packet.
    let sid = polling_handshake(addr).await;
    let uri = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    assert_eq!(
        http(addr, &post_req(&uri, b"40")).await.unwrap().text(),
        "ok"
    );
    let joined = http(addr, &get_req(&uri)).await.unwrap().text();
    assert!(joined.starts_with("40{\"sid\":"), "{joined}");

    while io.of("/").sockets().len() < WS_CLIENTS + 1 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(io.connection_count(), WS_CLIENTS + 1);

    let grace = Duration::from_secs(1);
    let start = Instant::now();
    io.close(grace).await;
    let took = start.elapsed();

    // Every socket was disconnected, with Node's reason, by the time `close` returned.
    let reasons = seen.reasons.lock().unwrap().clone();
    assert_eq!(reasons.len(), WS_CLIENTS + 1, "{reasons:?}");
    assert!(
        reasons
            .iter()
            .all(|r| *r == DisconnectReason::ServerShuttingDown
                && r.as_str() == "server shutting down"),
        "{reasons:?}"
    );
    // It waited its grace period for the polling client, and not much more.
    assert!(took >= grace, "{took:?}");
    assert!(took < grace + Duration::from_millis(1500), "{took:?}");
    assert_eq!(io.connection_count(), 0);
    assert!(io.of("/").sockets().is_empty());

    // The WebSocket clients saw their connection end, without waiting for the grace period.
    for r in readers {
        let ended = tokio::time::timeout(Duration::from_secs(5), r)
            .await
            .expect("a WebSocket client still connected 5 s after close")
            .unwrap();
        assert!(ended - start < grace, "{:?}", ended - start);
    }

    // Pending acknowledgements failed at once, with a clear error, not at their 60 s timeout.
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen.acks.lock().unwrap().len() < WS_CLIENTS + 1 {
        assert!(Instant::now() < deadline, "pending acks did not fail");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for (message, disconnected, waited) in seen.acks.lock().unwrap().iter() {
        assert!(*disconnected, "{message}");
        assert_eq!(message, "the socket disconnected before acknowledging");
        assert!(*waited < Duration::from_secs(5), "{waited:?}");
    }

    // Nothing is accepted any more; the forgotten polling session is gone.
    let refused = http(addr, &get_req("/socket.io/?EIO=4&transport=polling"))
        .await
        .unwrap();
    assert_eq!(refused.status, 503);
    assert_eq!(
        refused.text(),
        r#"{"code":3,"message":"Server unavailable"}"#
    );
    let late = http(addr, &get_req(&uri)).await.unwrap();
    assert_eq!(late.status, 400);
    assert_eq!(late.text(), r#"{"code":1,"message":"Session ID unknown"}"#);

    // And every session's state is released once the last handles are dropped.
    let deadline = Instant::now() + Duration::from_secs(5);
    while io.metrics().sessions_allocated > 0 {
        assert!(Instant::now() < deadline, "{:?}", io.metrics());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
