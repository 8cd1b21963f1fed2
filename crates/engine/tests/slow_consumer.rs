//! The slow-consumer policy: a session's outbound backlog is bounded in memory
//! (`max_buffered_bytes`, every frame counting its payload and its queue slot) and in time
//! (`slow_consumer_timeout`: the backlog must drain within it). A client that stalls for a
//! moment under a storm survives and gets everything; one that never reads is cut, with its
//! backlog bounded all along.
//!
//! All on tokio's paused clock and in-memory pipes: the clock only moves when every task
//! waits, so the same things happen at the same instants on every run.

mod common;

use std::time::Duration;

use common::{Harness, get, poll_uri, ws_in_memory};
use futures_util::StreamExt as _;
use tokio::io::DuplexStream;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use volley_engine::{
    CloseReason, DEFAULT_MAX_BUFFERED_BYTES, DEFAULT_SLOW_CONSUMER_TIMEOUT, EngineConfig,
    EngineSocket, FRAME_SLOT_BYTES, Frame, SendError,
};

type Ws = WebSocketStream<DuplexStream>;

/// A small storm message: `4` + 8 digits + padding, 40 bytes of payload.
fn tick(i: usize) -> Frame {
    Frame::message(&format!("{i:08}{}", "t".repeat(31)))
}

fn tick_text(i: usize) -> String {
    format!("4{i:08}{}", "t".repeat(31))
}

async fn ws_session(h: &mut Harness) -> (Ws, EngineSocket) {
    let mut ws = ws_in_memory(&h.engine, "EIO=4&transport=websocket").await;
    let Some(Ok(WsMessage::Text(_open))) = ws.next().await else {
        panic!("no open packet");
    };
    let socket = h.next_open().await;
    (ws, socket)
}

/// What the session's backlog holds against the memory cap now.
fn backlog_memory(socket: &EngineSocket) -> usize {
    socket.queued_bytes() + socket.queued() * FRAME_SLOT_BYTES
}

/// Reads `n` messages and checks they are ticks `from..from + n`, in order.
async fn read_ticks(ws: &mut Ws, from: usize, n: usize) {
    for i in from..from + n {
        match common::ws_next(ws).await {
            Some(WsMessage::Text(t)) => assert_eq!(t.as_str(), tick_text(i), "message {i}"),
            other => panic!("message {i}: expected a tick, got {other:?}"),
        }
    }
}

/// Sends `n` ticks from `from` as a storm: a batch of 500, then the driver gets to run
/// (writing what the pipe takes), and so on. Returns the most memory the backlog held.
async fn storm(socket: &EngineSocket, from: usize, n: usize) -> usize {
    let mut most = 0;
    for i in from..from + n {
        socket.send(tick(i)).expect("the storm is accepted");
        most = most.max(backlog_memory(socket));
        if i % 500 == 499 {
            tokio::task::yield_now().await;
        }
    }
    most
}

/// The probe that found the old bound: a storm of small broadcasts cut a client that did not
/// read for 0.16 s (10,000 frames). Now 50,000 of them wait while the client stalls for a
/// second, and it then gets every one, in order.
#[tokio::test(start_paused = true)]
async fn a_client_that_stalls_for_a_second_under_a_storm_survives_and_gets_everything() {
    const STORM: usize = 50_000;
    let mut h = Harness::default_config();
    let (mut ws, socket) = ws_session(&mut h).await;
    let most = storm(&socket, 0, STORM).await;
    common::settle().await;
    assert!(
        socket.queued() > 10_000,
        "the pipe took the storm: {} frames wait",
        socket.queued()
    );
    assert!(most <= DEFAULT_MAX_BUFFERED_BYTES, "{most} bytes held");

    // A second without reading (paused clock: exactly a second, every run).
    let stalled = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(socket.is_open());

    read_ticks(&mut ws, 0, STORM).await;
    assert!(stalled.elapsed() < DEFAULT_SLOW_CONSUMER_TIMEOUT);
    assert_eq!(socket.queued(), 0);
    assert!(socket.is_open());
    socket.send_text("still here").unwrap();
    assert_eq!(
        common::ws_next(&mut ws).await,
        Some(WsMessage::text("4still here"))
    );
    assert_eq!(h.engine.metrics().slow_consumer_closes_total, 0);
}

/// A client that never reads, under a steady trickle its backlog could hold for minutes, is
/// cut once the backlog has waited `slow_consumer_timeout`, not at the heartbeat's 45 s.
#[tokio::test(start_paused = true)]
async fn a_client_that_never_reads_is_cut_when_its_backlog_has_not_drained_in_time() {
    let timeout = Duration::from_secs(2);
    let mut h = Harness::new(
        EngineConfig::builder()
            .slow_consumer_timeout(timeout)
            .build(),
    );
    let (_stuck, socket) = ws_session(&mut h).await;
    let (mut healthy, healthy_socket) = ws_session(&mut h).await;

    // 100 ticks every 100 ms to both: the pipe (64 KiB) fills within 0.2 s, then the stuck
    // client's backlog waits.
    let start = Instant::now();
    let mut sent = 0;
    let mut most = 0;
    let mut backlog_started = None;
    let refused = loop {
        let round = Instant::now();
        let mut refused = None;
        for _ in 0..100 {
            if let Err(e) = socket.send(tick(sent)) {
                refused = Some(e);
                break;
            }
            healthy_socket.send(tick(sent)).unwrap();
            most = most.max(backlog_memory(&socket));
            sent += 1;
        }
        if let Some(e) = refused {
            break e;
        }
        read_ticks(&mut healthy, sent - 100, 100).await;
        common::settle().await;
        if backlog_started.is_none() && !socket.is_writable() {
            backlog_started = Some(round);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(start.elapsed() < Duration::from_secs(60), "never cut");
    };
    assert_eq!(refused, SendError::Closed);
    let (sid, reason) = h.next_close().await;
    assert_eq!(
        (sid.as_str(), reason),
        (socket.sid(), CloseReason::TransportError)
    );
    // Cut by time, not by memory: far below the cap all along.
    assert!(most < DEFAULT_MAX_BUFFERED_BYTES / 4, "{most} bytes held");
    let waited = backlog_started.expect("a backlog").elapsed();
    assert!(
        waited >= timeout && waited <= timeout + Duration::from_millis(300),
        "cut {waited:?} after its backlog started"
    );
    assert_eq!(socket.queued(), 0);
    let m = h.engine.metrics();
    assert_eq!(m.slow_consumer_closes_total, 1);
    assert_eq!(m.sessions_open, 1);

    // The healthy client goes on.
    healthy_socket.send_text("after").unwrap();
    assert_eq!(
        common::ws_next(&mut healthy).await,
        Some(WsMessage::text("4after"))
    );
}

/// A storm into a client that never reads hits the memory cap long before the timeout: the
/// cap counts every frame's slot, so tiny frames are bounded as well as big ones, and the
/// backlog's memory never goes past it.
#[tokio::test(start_paused = true)]
async fn a_storm_into_a_client_that_never_reads_is_cut_at_the_memory_cap() {
    const CAP: usize = 256 * 1024;
    let mut h = Harness::new(EngineConfig::builder().max_buffered_bytes(CAP).build());
    let (_stuck, socket) = ws_session(&mut h).await;
    let start = Instant::now();
    let mut accepted = 0;
    let mut most = 0;
    let refused = loop {
        assert!(accepted < 1_000_000, "a million frames accepted");
        match socket.send(tick(accepted)) {
            Ok(()) => accepted += 1,
            Err(e) => break e,
        }
        most = most.max(backlog_memory(&socket));
        assert!(most <= CAP, "{most} bytes held against a cap of {CAP}");
        if accepted % 500 == 0 {
            tokio::task::yield_now().await;
        }
    };
    assert_eq!(refused, SendError::Full);
    // Without the slots, 256 KiB would have held 6,500 frames of 40 bytes beyond the pipe.
    let per_frame = 40 + FRAME_SLOT_BYTES;
    assert!(
        most > CAP - per_frame,
        "cut at {most} bytes, before the cap"
    );
    assert_eq!(
        h.next_close().await,
        (socket.sid().to_owned(), CloseReason::TransportError)
    );
    assert_eq!(start.elapsed(), Duration::ZERO, "cut by the cap, at once");
    assert_eq!((socket.queued(), socket.queued_bytes()), (0, 0));
    assert_eq!(h.engine.metrics().slow_consumer_closes_total, 1);
}

/// A client that reads in bursts behind a busy stream, so that its backlog is never empty
/// for long but always empties again, is never cut, however long it goes on.
#[tokio::test(start_paused = true)]
async fn a_client_that_keeps_catching_up_is_never_cut() {
    let timeout = Duration::from_secs(1);
    let mut h = Harness::new(
        EngineConfig::builder()
            .slow_consumer_timeout(timeout)
            .build(),
    );
    let (mut ws, socket) = ws_session(&mut h).await;
    // Every 300 ms, 3,000 ticks (120 KiB, twice what the pipe holds) arrive, then the client
    // reads them: for 10 s, ten times the timeout.
    let start = Instant::now();
    let mut next = 0;
    let mut waited = 0;
    while start.elapsed() < timeout * 10 {
        storm(&socket, next, 3_000).await;
        common::settle().await;
        if socket.queued() > 0 {
            waited += 1;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        read_ticks(&mut ws, next, 3_000).await;
        next += 3_000;
    }
    assert!(waited > 20, "the backlog only waited {waited} times");
    assert!(socket.is_open());
    assert_eq!(h.engine.metrics().slow_consumer_closes_total, 0);
}

/// On long-polling the backlog drains when a GET carries it away: a client that polls
/// keeps its session; one that stops polling while frames wait is cut at the timeout
/// (before the heartbeat would notice).
#[tokio::test(start_paused = true)]
async fn a_polling_client_that_stops_polling_is_cut_at_the_timeout() {
    let timeout = Duration::from_secs(2);
    let mut h = Harness::new(
        EngineConfig::builder()
            .slow_consumer_timeout(timeout)
            .build(),
    );
    let socket = h.handshake_socket().await;
    for round in 0..5 {
        socket.send_text(&format!("r{round}")).unwrap();
        tokio::time::sleep(timeout / 2).await;
        assert_eq!(
            get(&h.engine, &poll_uri(socket.sid())).await.text(),
            format!("4r{round}")
        );
    }
    assert!(socket.is_open());

    let start = Instant::now();
    socket.send_text("never fetched").unwrap();
    assert_eq!(
        h.next_close().await,
        (socket.sid().to_owned(), CloseReason::TransportError)
    );
    let waited = start.elapsed();
    assert!(
        waited >= timeout && waited <= timeout + Duration::from_millis(5),
        "cut after {waited:?}"
    );
    get(&h.engine, &poll_uri(socket.sid()))
        .await
        .assert_error(400, 1, "Session ID unknown");
    assert_eq!(h.engine.metrics().slow_consumer_closes_total, 1);
}

#[test]
fn the_defaults_are_documented_values() {
    let c = EngineConfig::default();
    assert_eq!(c.slow_consumer_timeout(), DEFAULT_SLOW_CONSUMER_TIMEOUT);
    assert_eq!(c.slow_consumer_timeout(), Duration::from_secs(5));
    assert_eq!(c.max_buffered_bytes(), 16 << 20);
}
