//! Bounds on what one client can make the server hold: the outbound backlog of a client that
//! does not read (slow consumer), the handshake rate per address, and sessions abandoned by
//! their client.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use common::{Event, Harness, call, get, open_packet, poll_uri, post, ws_in_memory, ws_request};
use futures_util::{SinkExt as _, StreamExt as _};
use http::{Method, StatusCode, header};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use volley_engine::{
    CloseReason, EngineConfig, EngineSocket, FRAME_SLOT_BYTES, Frame, HandshakeRateLimit, SendError,
};

const HANDSHAKE: &str = "/engine.io/?EIO=4&transport=polling";
const WS_HANDSHAKE: &str = "EIO=4&transport=websocket";

fn kib_frame(i: usize) -> Frame {
    let mut text = format!("{i:08}");
    text.push_str(&"x".repeat(1024 - text.len()));
    Frame::message(&text)
}

/// Opens a WebSocket session in memory and returns the client and the handler's handle.
async fn ws_session(
    h: &mut Harness,
) -> (
    tokio_tungstenite::WebSocketStream<tokio::io::DuplexStream>,
    EngineSocket,
) {
    let mut ws = ws_in_memory(&h.engine, WS_HANDSHAKE).await;
    let Some(Ok(WsMessage::Text(_open))) = ws.next().await else {
        panic!("no open packet");
    };
    let socket = h.next_open().await;
    (ws, socket)
}

/// The original bug: the driver moved the shared queue into a private outbox on every poll,
/// so a WebSocket client that never reads let the outbox grow without bound while `queued()`
/// said 0. Now every frame counts until tungstenite takes it, and the send that crosses the
/// bound closes the session.
#[tokio::test(start_paused = true)]
async fn a_websocket_client_that_never_reads_is_cut_off_at_the_byte_bound() {
    const BOUND: usize = 64 * 1024;
    let mut h = Harness::new(EngineConfig::builder().max_buffered_bytes(BOUND).build());
    let (_stuck, socket) = ws_session(&mut h).await;
    let (mut healthy, healthy_socket) = ws_session(&mut h).await;

    let mut accepted = 0;
    let mut max_queued = 0;
    let result = loop {
        if accepted > 100_000 {
            panic!("100,000 frames accepted for a client that reads nothing");
        }
        match socket.send(kib_frame(accepted)) {
            Ok(()) => accepted += 1,
            Err(e) => break e,
        }
        max_queued = max_queued.max(socket.queued_bytes());
        // Let the driver take the frames and write what the pipe takes.
        tokio::task::yield_now().await;
        tokio::task::yield_now().await;
    };
    assert_eq!(result, SendError::Full);
    eprintln!("accepted {accepted} frames, at most {max_queued} bytes queued");
    assert!(max_queued <= BOUND, "{max_queued} bytes queued");
    // The in-memory pipe holds 64 KiB: what was accepted is the pipe, plus tungstenite's
    // write batch (16 KiB and one frame), plus the bound.
    assert!(
        accepted * 1024 <= BOUND + 64 * 1024 + 16 * 1024 + 2 * 1024,
        "{accepted} frames of 1 KiB accepted"
    );
    assert!(accepted * 1024 >= BOUND, "cut off early: {accepted} frames");

    let (sid, reason) = h.next_close().await;
    assert_eq!(
        (sid.as_str(), reason),
        (socket.sid(), CloseReason::TransportError)
    );
    assert_eq!(socket.send_text("more"), Err(SendError::Closed));
    assert_eq!(socket.queued(), 0);
    assert!(!socket.is_open());
    let m = h.engine.metrics();
    assert_eq!(m.slow_consumer_closes_total, 1);
    assert_eq!(m.sessions_open, 1);

    // The other client is unaffected.
    healthy_socket.send_text("still here").unwrap();
    assert_eq!(
        common::ws_next(&mut healthy).await,
        Some(WsMessage::text("4still here"))
    );
}

#[tokio::test(start_paused = true)]
async fn the_frame_bound_closes_a_polling_session_that_is_not_polled() {
    let mut h = Harness::new(EngineConfig::builder().max_buffered_packets(10).build());
    let socket = h.handshake_socket().await;
    for i in 0..10 {
        socket.send_text(&format!("m{i}")).unwrap();
        tokio::task::yield_now().await;
    }
    assert_eq!(socket.queued(), 10);
    assert_eq!(socket.queued_bytes(), 10 * 3);
    assert!(!socket.is_writable());
    assert_eq!(socket.send_text("one too many"), Err(SendError::Full));
    assert_eq!(
        h.next_close().await,
        (socket.sid().to_owned(), CloseReason::TransportError)
    );
    get(&h.engine, &poll_uri(socket.sid()))
        .await
        .assert_error(400, 1, "Session ID unknown");
    assert_eq!(h.engine.metrics().slow_consumer_closes_total, 1);
}

/// The byte bound counts every frame's payload plus its queue slot ([`FRAME_SLOT_BYTES`]).
#[tokio::test(start_paused = true)]
async fn a_single_frame_larger_than_the_byte_bound_is_refused_and_the_session_stays() {
    // Room for exactly three frames of 301 bytes.
    let bound = 3 * (301 + FRAME_SLOT_BYTES);
    let mut h = Harness::new(EngineConfig::builder().max_buffered_bytes(bound).build());
    let socket = h.handshake_socket().await;
    // `4` + text + its slot is one byte over.
    let big = "y".repeat(bound - FRAME_SLOT_BYTES);
    assert_eq!(socket.send_text(&big), Err(SendError::Full));
    assert!(socket.is_open());
    assert_eq!(socket.queued(), 0);
    // Up to the bound is fine: 3 × 301 bytes, then the 4th crosses it.
    let third = "z".repeat(300);
    for _ in 0..3 {
        socket.send_text(&third).unwrap();
    }
    assert_eq!(socket.queued_bytes(), 903);
    assert_eq!(socket.send_text(&third), Err(SendError::Full));
    assert_eq!(h.next_close().await.1, CloseReason::TransportError);
}

#[tokio::test(start_paused = true)]
async fn send_many_is_bounded_as_a_whole() {
    let mut h = Harness::new(EngineConfig::builder().max_buffered_packets(4).build());
    let socket = h.handshake_socket().await;
    socket
        .send_many([Frame::message("a"), Frame::binary(vec![1u8, 2])])
        .unwrap();
    assert_eq!(socket.queued(), 2);
    assert_eq!(socket.queued_bytes(), 2 + 2);
    assert_eq!(
        socket.send_many([
            Frame::message("b"),
            Frame::message("c"),
            Frame::message("d")
        ]),
        Err(SendError::Full)
    );
    assert_eq!(h.next_close().await.1, CloseReason::TransportError);
}

/// `queued()` counts frames from `send` until they are written: in the shared queue and in
/// the driver's outbox alike; a GET that takes them brings it back to 0.
#[tokio::test(start_paused = true)]
async fn queued_counts_until_a_get_takes_the_frames() {
    let mut h = Harness::default_config();
    let socket = h.handshake_socket().await;
    assert!(socket.is_writable());
    socket.send_text("one").unwrap();
    socket.send_binary(vec![0u8; 10]).unwrap();
    // The driver runs and moves them to its outbox: still pending.
    common::settle().await;
    assert_eq!((socket.queued(), socket.queued_bytes()), (2, 4 + 10));
    assert!(!socket.is_writable());
    let m = h.engine.metrics();
    assert_eq!((m.queued_frames, m.queued_bytes), (2, 14));
    assert_eq!(m.max_session_queued_bytes, 14);

    let res = get(&h.engine, &poll_uri(socket.sid())).await;
    assert_eq!(res.text(), "4one\x1ebAAAAAAAAAAAAAA==");
    assert_eq!((socket.queued(), socket.queued_bytes()), (0, 0));
    assert!(socket.is_writable());
    assert_eq!(h.engine.metrics().queued_bytes, 0);
}

#[tokio::test(start_paused = true)]
async fn queued_counts_until_the_websocket_takes_the_frames() {
    let mut h = Harness::default_config();
    let (mut ws, socket) = ws_session(&mut h).await;
    socket.send_text("hello").unwrap();
    assert_eq!(socket.queued(), 1);
    assert_eq!(
        common::ws_next(&mut ws).await,
        Some(WsMessage::text("4hello"))
    );
    assert_eq!(socket.queued(), 0);
    assert!(socket.is_writable());
}

#[tokio::test(start_paused = true)]
async fn is_writable_is_false_while_the_websocket_cannot_take_more() {
    let mut h = Harness::default_config();
    let (_stuck, socket) = ws_session(&mut h).await;
    // Fill the 64 KiB pipe: the socket stops taking frames.
    let mut blocked = false;
    for i in 0..200 {
        socket.send(kib_frame(i)).unwrap();
        common::settle().await;
        if !socket.is_writable() && socket.queued() > 0 {
            blocked = true;
            break;
        }
    }
    assert!(blocked, "the write side never blocked");
    assert!(socket.is_open());
}

fn from_addr(uri: &str, addr: &str) -> http::Request<http_body_util::Full<Bytes>> {
    let mut req = common::request(Method::GET, uri, Bytes::new());
    req.extensions_mut()
        .insert(addr.parse::<SocketAddr>().unwrap());
    req
}

#[tokio::test(start_paused = true)]
async fn handshakes_over_the_rate_limit_get_429_with_retry_after() {
    let h = Harness::new(
        EngineConfig::builder()
            .handshake_rate_limit(HandshakeRateLimit::per_second(1).burst(2))
            .build(),
    );
    let a = "10.1.1.1:5000";
    for _ in 0..2 {
        assert_eq!(call(&h.engine, from_addr(HANDSHAKE, a)).await.status, 200);
    }
    let refused = call(&h.engine, from_addr(HANDSHAKE, "10.1.1.1:5001")).await;
    refused.assert_error(429, 4, "Too many requests");
    assert_eq!(refused.header(header::RETRY_AFTER), Some("1"));
    assert_eq!(h.engine.session_count(), 2);

    // A WebSocket handshake from the same address is refused as Node refuses upgrades.
    let mut ws = ws_request("/engine.io/?EIO=4&transport=websocket");
    ws.extensions_mut().insert(a.parse::<SocketAddr>().unwrap());
    let res = call(&h.engine, ws).await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(res.text(), "Too many requests");
    assert_eq!(res.header(header::RETRY_AFTER), Some("1"));

    // Other addresses have their own budget; requests without an address are not limited.
    assert_eq!(
        call(&h.engine, from_addr(HANDSHAKE, "10.1.1.2:1"))
            .await
            .status,
        200
    );
    assert_eq!(get(&h.engine, HANDSHAKE).await.status, 200);
    // Requests of an open session are not handshakes.
    let sid = h.engine.metrics().sessions_open;
    assert_eq!(sid, 4);

    // One token a second.
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(call(&h.engine, from_addr(HANDSHAKE, a)).await.status, 200);
    assert_eq!(call(&h.engine, from_addr(HANDSHAKE, a)).await.status, 429);
    let m = h.engine.metrics();
    assert_eq!(m.handshakes_rate_limited_total, 3);
    assert_eq!(m.rate_limited_addresses, 2);
}

#[tokio::test(start_paused = true)]
async fn polling_requests_of_an_open_session_are_not_rate_limited() {
    let mut h = Harness::new(
        EngineConfig::builder()
            .handshake_rate_limit(HandshakeRateLimit::per_second(1).burst(1))
            .build(),
    );
    let a = "10.9.9.9:1";
    let res = call(&h.engine, from_addr(HANDSHAKE, a)).await;
    let sid = open_packet(&res.body)["sid"].as_str().unwrap().to_owned();
    h.next_open().await;
    for i in 0..20 {
        let mut req = common::request(Method::POST, &poll_uri(&sid), format!("4m{i}"));
        req.extensions_mut()
            .insert(a.parse::<SocketAddr>().unwrap());
        assert_eq!(call(&h.engine, req).await.text(), "ok");
    }
}

#[tokio::test]
async fn the_rate_limit_is_off_by_default() {
    let h = Harness::default_config();
    assert!(h.engine.config().handshake_rate_limit().is_none());
    for _ in 0..50 {
        assert_eq!(
            call(&h.engine, from_addr(HANDSHAKE, "10.0.0.1:1"))
                .await
                .status,
            200
        );
    }
}

/// Drains every event the handler reported so far, dropping the handles they carry.
fn drain(h: &mut Harness) -> Vec<(String, CloseReason)> {
    let mut closed = Vec::new();
    while let Ok(e) = h.events.try_recv() {
        if let Event::Closed(sid, reason) = e {
            closed.push((sid, reason));
        }
    }
    closed
}

/// Polling sessions whose client went away and upgrades that never complete are reclaimed
/// within pingInterval + pingTimeout (upgradeTimeout for the upgrade): nothing of them stays
/// in memory once the handler let go.
#[tokio::test(start_paused = true)]
async fn abandoned_sessions_and_upgrades_are_reclaimed() {
    const N: usize = 50;
    let interval = Duration::from_millis(300);
    let timeout = Duration::from_millis(200);
    let upgrade_timeout = Duration::from_millis(400);
    let mut h = Harness::new(
        EngineConfig::builder()
            .ping_interval(interval)
            .ping_timeout(timeout)
            .upgrade_timeout(upgrade_timeout)
            .build(),
    );
    let start = Instant::now();
    let mut sids = Vec::new();
    for _ in 0..N {
        // Each with frames queued that nobody will fetch.
        let socket = h.handshake_socket().await;
        for _ in 0..5 {
            socket.send_text("never fetched").unwrap();
        }
        sids.push(socket.sid().to_owned());
    }
    // Half of them also start an upgrade, probe it, and never send `5`.
    let mut probes = Vec::new();
    for sid in sids.iter().take(N / 2) {
        let mut ws = ws_in_memory(&h.engine, &format!("{WS_HANDSHAKE}&sid={sid}")).await;
        ws.send(WsMessage::text("2probe")).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), WsMessage::text("3probe"));
        probes.push(ws);
    }
    drain(&mut h);
    let m = h.engine.metrics();
    assert_eq!((m.sessions_open, m.sessions_allocated), (N, N));
    assert_eq!(m.queued_frames, N * 5);

    // The probe sockets are closed at upgradeTimeout.
    for ws in &mut probes {
        match ws.next().await {
            Some(Ok(WsMessage::Close(_))) | None => {}
            other => panic!("expected the probe socket to close, got {other:?}"),
        }
    }
    assert!(start.elapsed() <= upgrade_timeout + Duration::from_millis(10));
    assert_eq!(h.engine.session_count(), N);

    // Every session is gone pingInterval + pingTimeout after its handshake.
    let mut closed = Vec::new();
    while closed.len() < N {
        closed.push(h.next_close().await);
    }
    assert!(start.elapsed() <= interval + timeout + Duration::from_millis(10));
    assert!(closed.iter().all(|(_, r)| *r == CloseReason::PingTimeout));
    assert_eq!(h.engine.session_count(), 0);
    // The handler ended and dropped its handles: no session state is left.
    common::settle().await;
    let m = h.engine.metrics();
    assert_eq!(
        (m.sessions_open, m.sessions_allocated, m.queued_frames),
        (0, 0, 0)
    );
    assert_eq!(m.sessions_opened_total, N as u64);
    for sid in &sids {
        post(&h.engine, &poll_uri(sid), "4late")
            .await
            .assert_error(400, 1, "Session ID unknown");
    }
}

#[tokio::test(start_paused = true)]
async fn a_closed_session_releases_its_backlog_even_while_a_handle_is_kept() {
    let mut h = Harness::default_config();
    let socket = h.handshake_socket().await;
    for _ in 0..100 {
        socket.send_text(&"q".repeat(1000)).unwrap();
    }
    assert_eq!(socket.queued_bytes(), 100 * 1001);
    socket.close();
    // The client never comes back for its close packet: the session ends pingTimeout later.
    let (_, reason) = h.next_close().await;
    assert_eq!(reason, CloseReason::ForcedClose);
    assert_eq!(socket.queued_bytes(), 0);
    // `socket` is still held here: the state stays allocated, but nothing is open.
    let m = h.engine.metrics();
    assert_eq!((m.sessions_open, m.sessions_allocated), (0, 1));
    drop(socket);
    assert_eq!(h.engine.metrics().sessions_allocated, 0);
}

/// A POST whose body trickles in (or stops) cannot pin its session: the read is bounded by
/// pingInterval + pingTimeout, the time after which the session is over anyway.
#[tokio::test(start_paused = true)]
async fn a_post_body_that_never_completes_is_given_up_on() {
    let interval = Duration::from_millis(300);
    let timeout = Duration::from_millis(200);
    let mut h = Harness::new(
        EngineConfig::builder()
            .ping_interval(interval)
            .ping_timeout(timeout)
            .build(),
    );
    let sid = h.handshake().await;
    let (tx, body) = common::ChannelBody::new();
    let req = http::Request::builder()
        .method(Method::POST)
        .uri(poll_uri(&sid))
        .body(body)
        .unwrap();
    let engine = h.engine.clone();
    let start = Instant::now();
    let post = tokio::spawn(async move { call(&engine, req).await });
    tx.send(Bytes::from_static(b"4par")).await.unwrap();
    // ... and nothing more, with the connection kept open (`tx` is kept).
    let res = post.await.unwrap();
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert!(start.elapsed() <= interval + timeout + Duration::from_millis(5));
    assert_eq!(h.next_close().await.0, sid);
    drain(&mut h);
    common::settle().await;
    let m = h.engine.metrics();
    assert_eq!((m.sessions_open, m.sessions_allocated), (0, 0));
    drop(tx);
}
