//! `SocketIo::close(grace)`: every socket is disconnected with "server shutting down",
//! pending acknowledgements fail at once with a clear error, new connections are refused,
//! and the call returns in bounded time even when a client does not cooperate.
//!
//! Every wait is for a signal (a channel, a task's end), bounded by [`WAIT`] only to turn a
//! hang into a failure; nothing depends on how fast a busy machine runs.

mod reliability_support;

use std::time::{Duration, Instant};

use reliability_support::client::{Client, ConnectOptions, Target};
use reliability_support::{get_req, http, polling_handshake, post_req, serve};
use serde_json::Value;
use tokio::sync::mpsc;
use volley::{AckError, DisconnectReason, Socket, SocketIo};

/// A bound on a hang, never reached unless something is broken.
const WAIT: Duration = Duration::from_secs(30);

/// An acknowledgement timeout, or a grace period, that nothing in these tests reaches.
const FOREVER: Duration = Duration::from_secs(3600);

/// The next value of `rx`, within [`WAIT`].
async fn next<T>(rx: &mut mpsc::UnboundedReceiver<T>, what: &str) -> T {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap_or_else(|_| panic!("no {what} within {WAIT:?}"))
        .unwrap_or_else(|| panic!("channel of {what} closed"))
}

/// What the server's sockets report: each socket's disconnect reason, and the error of the
/// question it asked its client (which no client answers).
struct Reports {
    asked: mpsc::UnboundedReceiver<()>,
    reasons: mpsc::UnboundedReceiver<DisconnectReason>,
    acks: mpsc::UnboundedReceiver<AckError>,
}

/// A server whose every socket asks its client a question with a timeout that is never
/// reached, and reports (see [`Reports`]).
fn server() -> (SocketIo, Reports) {
    let io = SocketIo::builder().build();
    let (asked_tx, asked) = mpsc::unbounded_channel();
    let (reason_tx, reasons) = mpsc::unbounded_channel();
    let (ack_tx, acks) = mpsc::unbounded_channel();
    io.of("/").on_connection(move |socket: Socket| {
        let (asked_tx, reason_tx, ack_tx) = (asked_tx.clone(), reason_tx.clone(), ack_tx.clone());
        async move {
            socket.on_disconnect(move |_: Socket, reason| async move {
                let _ = reason_tx.send(reason);
            });
            // Sent at once; pending until the shutdown.
            let answer = socket
                .timeout(FOREVER)
                .emit_with_ack::<Value, _>("question", &1);
            let _ = asked_tx.send(());
            tokio::spawn(async move {
                let _ = ack_tx.send(answer.await.expect_err("nobody answers"));
            });
        }
    });
    (
        io,
        Reports {
            asked,
            reasons,
            acks,
        },
    )
}

/// Opens a long-polling session and joins `/`; returns the session's URI.
async fn polling_client(addr: std::net::SocketAddr) -> String {
    let sid = polling_handshake(addr).await;
    let uri = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    assert_eq!(
        http(addr, &post_req(&uri, b"40")).await.unwrap().text(),
        "ok"
    );
    let joined = http(addr, &get_req(&uri)).await.unwrap().text();
    assert!(joined.starts_with("40{\"sid\":"), "{joined}");
    uri
}

/// The error a pending acknowledgement gets at the shutdown: at once, not at its timeout.
fn assert_disconnected(err: &AckError) {
    assert!(matches!(err, AckError::Disconnected), "{err:?}");
    assert_eq!(
        err.to_string(),
        "the socket disconnected before acknowledging"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_disconnects_every_socket_and_fails_pending_acks_without_waiting_for_slow_clients() {
    const WS_CLIENTS: usize = 5;
    let (io, mut seen) = server();
    let addr = serve(&io).await;
    let target = Target::local(addr);
    let opts = ConnectOptions {
        timeout: FOREVER,
        ..ConnectOptions::default()
    };

    // WebSocket clients that keep reading and say when their connection ends.
    let (ended_tx, mut ended) = mpsc::unbounded_channel();
    for _ in 0..WS_CLIENTS {
        let mut c = Client::connect(&target, &opts).await.unwrap();
        let ended_tx = ended_tx.clone();
        tokio::spawn(async move {
            while let Ok(Some(_)) = c.next_packet().await {}
            let _ = ended_tx.send(());
        });
    }
    // A long-polling client that joins, then does not poll until told below.
    let uri = polling_client(addr).await;
    for _ in 0..=WS_CLIENTS {
        next(&mut seen.asked, "question asked").await;
    }
    assert_eq!(io.connection_count(), WS_CLIENTS + 1);

    // No limit on the grace period: `close` waits for the polling client to take its close
    // packet.
    let closing = tokio::spawn({
        let io = io.clone();
        async move { io.close(FOREVER).await }
    });

    // The WebSocket clients see their connection end, their sockets are disconnected with
    // Node's reason and their pending acknowledgements fail, while `close` still waits for
    // the polling client: nothing waited for it.
    for _ in 0..WS_CLIENTS {
        next(&mut ended, "end of a WebSocket connection").await;
        let reason = next(&mut seen.reasons, "disconnect").await;
        assert_eq!(reason, DisconnectReason::ServerShuttingDown);
        assert_eq!(reason.as_str(), "server shutting down");
        assert_disconnected(&next(&mut seen.acks, "failed ack").await);
    }
    assert!(
        !closing.is_finished(),
        "close did not wait for the polling client"
    );

    // New connections are refused meanwhile.
    let refused = http(addr, &get_req("/socket.io/?EIO=4&transport=polling"))
        .await
        .unwrap();
    assert_eq!(refused.status, 503);
    assert_eq!(
        refused.text(),
        r#"{"code":3,"message":"Server unavailable"}"#
    );

    // The polling client comes back for its close packet; then `close` returns.
    let last = http(addr, &get_req(&uri)).await.unwrap();
    assert_eq!(last.status, 200, "{last:?}");
    assert!(
        last.text().split('\u{1e}').any(|p| p == "1"),
        "a close packet: {:?}",
        last.text()
    );
    tokio::time::timeout(WAIT, closing)
        .await
        .expect("close returns once every client took its close packet")
        .unwrap();
    let reason = next(&mut seen.reasons, "disconnect of the polling socket").await;
    assert_eq!(reason, DisconnectReason::ServerShuttingDown);
    assert_disconnected(&next(&mut seen.acks, "failed ack of the polling socket").await);
    assert_eq!(io.connection_count(), 0);
    assert!(io.of("/").sockets().is_empty());
    let late = http(addr, &get_req(&uri)).await.unwrap();
    assert_eq!(late.status, 400);
    assert_eq!(late.text(), r#"{"code":1,"message":"Session ID unknown"}"#);

    // And every session's state is released once the last handles are dropped (a counter
    // that no signal reports: polled, within the bound of a hang).
    let deadline = Instant::now() + WAIT;
    while io.metrics().sessions_allocated > 0 {
        assert!(Instant::now() < deadline, "{:?}", io.metrics());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_returns_after_the_grace_period_when_a_polling_client_never_comes_back() {
    let (io, mut seen) = server();
    let addr = serve(&io).await;
    let uri = polling_client(addr).await;
    next(&mut seen.asked, "question asked").await;

    let grace = Duration::from_secs(1);
    let start = Instant::now();
    tokio::time::timeout(WAIT, io.close(grace))
        .await
        .expect("close returns although the client never comes for its close packet");
    // It waited its grace period for the client first.
    assert!(start.elapsed() >= grace, "{:?}", start.elapsed());

    let reason = next(&mut seen.reasons, "disconnect").await;
    assert_eq!(reason, DisconnectReason::ServerShuttingDown);
    assert_disconnected(&next(&mut seen.acks, "failed ack").await);
    assert_eq!(io.connection_count(), 0);
    assert!(io.of("/").sockets().is_empty());
    let late = http(addr, &get_req(&uri)).await.unwrap();
    assert_eq!(late.status, 400);
    assert_eq!(late.text(), r#"{"code":1,"message":"Session ID unknown"}"#);
}
