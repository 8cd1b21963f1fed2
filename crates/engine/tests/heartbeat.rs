//! Heartbeats and timeouts on tokio's paused clock: time only moves when every task waits on a
//! timer, so each deadline is observed exactly, without real sleeps.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{Harness, get, open_packet, poll_uri, post, ws_in_memory};
use futures_util::{SinkExt as _, StreamExt as _};
use http::StatusCode;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use volley_engine::{CloseReason, EngineConfig, Message, TransportKind};

const INTERVAL: Duration = Duration::from_millis(300);
const TIMEOUT: Duration = Duration::from_millis(200);

/// The conformance suite's values: pingInterval 300 ms, pingTimeout 200 ms.
fn suite_config() -> EngineConfig {
    EngineConfig::builder()
        .ping_interval(INTERVAL)
        .ping_timeout(TIMEOUT)
        .build()
}

/// `at` is `expected` after `start`, within the timer wheel's millisecond rounding.
#[track_caller]
fn assert_at(start: Instant, at: Instant, expected: Duration) {
    let elapsed = at - start;
    assert!(
        elapsed >= expected && elapsed <= expected + Duration::from_millis(2),
        "expected {expected:?} after the start, got {elapsed:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn first_ping_comes_one_interval_after_the_handshake_not_at_once() {
    let mut h = Harness::default_config(); // pingInterval 25 s
    let start = Instant::now();
    let sid = h.handshake().await;
    let interval = h.engine.config().ping_interval();

    let engine = h.engine.clone();
    let uri = poll_uri(&sid);
    let mut poll = tokio::spawn(async move { get(&engine, &uri).await });
    let early = tokio::time::timeout(interval - Duration::from_millis(1), &mut poll).await;
    assert!(early.is_err(), "something was sent before pingInterval");

    let res = poll.await.unwrap();
    assert_at(start, Instant::now(), interval);
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.text(), "2");
    h.assert_no_event();
}

#[tokio::test(start_paused = true)]
async fn pongs_keep_a_polling_session_alive_across_many_intervals() {
    let mut h = Harness::new(suite_config());
    let sid = h.handshake().await;
    let start = Instant::now();
    for round in 1..=20u32 {
        let res = get(&h.engine, &poll_uri(&sid)).await;
        assert_eq!(res.text(), "2", "round {round}");
        // Each ping comes one interval after the previous pong.
        assert_at(start, Instant::now(), INTERVAL * round);
        let res = post(&h.engine, &poll_uri(&sid), "3").await;
        assert_eq!(res.text(), "ok", "round {round}");
    }
    // 6 s, twelve times pingInterval + pingTimeout, and the session is still there.
    h.assert_no_event();
    assert_eq!(h.engine.session_count(), 1);
    assert_eq!(
        post(&h.engine, &poll_uri(&sid), "4alive").await.text(),
        "ok"
    );
    assert_eq!(
        h.next_message().await.1,
        Message::Text(Bytes::from_static(b"alive"))
    );
}

#[tokio::test(start_paused = true)]
async fn a_missing_pong_closes_a_polling_session_with_ping_timeout() {
    let mut h = Harness::new(suite_config());
    let start = Instant::now();
    let sid = h.handshake().await;
    assert_eq!(get(&h.engine, &poll_uri(&sid)).await.text(), "2");
    assert_at(start, Instant::now(), INTERVAL);

    // No pong. A GET parked meanwhile is released with the close packet, as Node does.
    let res = get(&h.engine, &poll_uri(&sid)).await;
    assert_at(start, Instant::now(), INTERVAL + TIMEOUT);
    assert_eq!(res.text(), "1");
    assert_eq!(
        h.next_close().await,
        (sid.clone(), CloseReason::PingTimeout)
    );
    assert_eq!(h.engine.session_count(), 0);
    get(&h.engine, &poll_uri(&sid))
        .await
        .assert_error(400, 1, "Session ID unknown");
}

#[tokio::test(start_paused = true)]
async fn a_polling_session_nobody_polls_is_gone_after_interval_plus_timeout() {
    let mut h = Harness::new(suite_config());
    let start = Instant::now();
    let sid = h.handshake().await;
    // The client never comes back: it does not even see the ping.
    assert_eq!(
        h.next_close().await,
        (sid.clone(), CloseReason::PingTimeout)
    );
    assert_at(start, Instant::now(), INTERVAL + TIMEOUT);
    // What the suite checks: a GET 500 ms after the handshake gets 400.
    get(&h.engine, &poll_uri(&sid))
        .await
        .assert_error(400, 1, "Session ID unknown");
}

#[tokio::test(start_paused = true)]
async fn pongs_keep_a_websocket_session_alive_and_a_missing_one_closes_it() {
    let mut h = Harness::new(suite_config());
    let mut ws = ws_in_memory(&h.engine, "EIO=4&transport=websocket").await;
    let start = Instant::now();
    let Some(Ok(WsMessage::Text(open))) = ws.next().await else {
        panic!("no open packet");
    };
    let sid = open_packet(open.as_bytes())["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    h.next_open().await;

    for round in 1..=10u32 {
        let msg = ws.next().await.unwrap().unwrap();
        assert_eq!(msg, WsMessage::text("2"), "round {round}");
        assert_at(start, Instant::now(), INTERVAL * round);
        ws.send(WsMessage::text("3")).await.unwrap();
    }
    h.assert_no_event();

    // Now no pong: the server closes the socket pingTimeout after its ping.
    assert_eq!(ws.next().await.unwrap().unwrap(), WsMessage::text("2"));
    let ping_at = Instant::now();
    assert_eq!(h.next_close().await, (sid, CloseReason::PingTimeout));
    assert_at(ping_at, Instant::now(), TIMEOUT);
    common::ws_closed(&mut ws).await;
}

/// Opens a WebSocket-only session in memory; returns the client and the sid.
async fn ws_session(
    h: &mut Harness,
) -> (
    tokio_tungstenite::WebSocketStream<tokio::io::DuplexStream>,
    String,
) {
    let mut ws = ws_in_memory(&h.engine, "EIO=4&transport=websocket").await;
    let sid = common::ws_open_packet(&mut ws).await["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    h.next_open().await;
    (ws, sid)
}

/// Sends a message on `ws` and waits for the handler to see it and for its echo.
async fn ws_send_and_echo(
    h: &mut Harness,
    ws: &mut tokio_tungstenite::WebSocketStream<tokio::io::DuplexStream>,
    text: &str,
) {
    ws.send(WsMessage::text(format!("4{text}"))).await.unwrap();
    assert_eq!(
        h.next_message().await.1,
        Message::Text(Bytes::copy_from_slice(text.as_bytes()))
    );
    assert_eq!(
        common::ws_next(ws).await,
        Some(WsMessage::text(format!("4{text}")))
    );
}

// engine.io 6.6 (`Socket.onPacket`): while a pong is awaited, the first packet that is not a
// pong restarts the ping timeout, once per ping: a busy client whose pong is queued behind its
// own traffic is not cut off.

#[tokio::test(start_paused = true)]
async fn a_message_while_a_pong_is_awaited_gives_the_client_a_new_ping_timeout_on_websocket() {
    let mut h = Harness::new(suite_config());
    let (mut ws, _sid) = ws_session(&mut h).await;
    // Twice, to see that every ping allows one refresh.
    for round in 1..=2 {
        assert_eq!(common::ws_next(&mut ws).await, Some(WsMessage::text("2")));
        // The client is busy: a message goes out 150 ms after the ping ...
        tokio::time::sleep(TIMEOUT * 3 / 4).await;
        ws_send_and_echo(&mut h, &mut ws, "busy").await;
        // ... and its pong 150 ms after that: past the ping's own deadline, within the
        // message's.
        tokio::time::sleep(TIMEOUT * 3 / 4).await;
        ws.send(WsMessage::text("3")).await.unwrap();
        let pong_at = Instant::now();
        // Still open: the next ping comes one interval after the pong.
        assert_eq!(
            common::ws_next(&mut ws).await,
            Some(WsMessage::text("2")),
            "round {round}"
        );
        assert_at(pong_at, Instant::now(), INTERVAL);
        ws.send(WsMessage::text("3")).await.unwrap();
    }
    h.assert_no_event();
    assert_eq!(h.engine.session_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_ping_timeout_is_refreshed_only_by_the_first_packet_after_a_ping() {
    let mut h = Harness::new(suite_config());
    let (mut ws, sid) = ws_session(&mut h).await;
    assert_eq!(common::ws_next(&mut ws).await, Some(WsMessage::text("2")));
    let ping_at = Instant::now();
    let first_after = TIMEOUT / 2;
    tokio::time::sleep(first_after).await;
    ws_send_and_echo(&mut h, &mut ws, "one").await;
    tokio::time::sleep(TIMEOUT * 3 / 4).await;
    // A second packet does not move the deadline again.
    ws_send_and_echo(&mut h, &mut ws, "two").await;
    // No pong: the session ends pingTimeout after the first message, not after the second.
    assert_eq!(h.next_close().await, (sid, CloseReason::PingTimeout));
    assert_at(ping_at, Instant::now(), first_after + TIMEOUT);
    common::ws_closed(&mut ws).await;
}

#[tokio::test(start_paused = true)]
async fn packets_before_the_ping_do_not_extend_its_timeout() {
    let mut h = Harness::new(suite_config());
    let (mut ws, sid) = ws_session(&mut h).await;
    let start = Instant::now();
    // Traffic just before the ping: no pong is awaited yet, so nothing is refreshed.
    tokio::time::sleep(INTERVAL - Duration::from_millis(10)).await;
    ws_send_and_echo(&mut h, &mut ws, "early").await;
    assert_eq!(common::ws_next(&mut ws).await, Some(WsMessage::text("2")));
    assert_at(start, Instant::now(), INTERVAL);
    assert_eq!(h.next_close().await, (sid, CloseReason::PingTimeout));
    assert_at(start, Instant::now(), INTERVAL + TIMEOUT);
}

#[tokio::test(start_paused = true)]
async fn a_post_while_a_pong_is_awaited_gives_the_client_a_new_ping_timeout_on_polling() {
    let mut h = Harness::new(suite_config());
    let sid = h.handshake().await;
    assert_eq!(get(&h.engine, &poll_uri(&sid)).await.text(), "2");
    // A POST of messages 150 ms after the ping, the pong 150 ms after that (300 ms after the
    // ping, past its own deadline).
    tokio::time::sleep(TIMEOUT * 3 / 4).await;
    assert_eq!(post(&h.engine, &poll_uri(&sid), "4busy").await.text(), "ok");
    assert_eq!(
        h.next_message().await,
        (sid.clone(), Message::Text(Bytes::from_static(b"busy")))
    );
    tokio::time::sleep(TIMEOUT * 3 / 4).await;
    assert_eq!(post(&h.engine, &poll_uri(&sid), "3").await.text(), "ok");
    let pong_at = Instant::now();
    assert_eq!(get(&h.engine, &poll_uri(&sid)).await.text(), "4busy");
    assert_eq!(get(&h.engine, &poll_uri(&sid)).await.text(), "2");
    assert_at(pong_at, Instant::now(), INTERVAL);
    h.assert_no_event();
    assert_eq!(h.engine.session_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_upgrade_that_never_sends_5_is_dropped_and_polling_goes_on() {
    let mut h = Harness::default_config(); // upgradeTimeout 10 s, pingInterval 25 s
    let socket = h.handshake_socket().await;
    let sid = socket.sid().to_owned();

    let mut ws = ws_in_memory(&h.engine, &format!("EIO=4&transport=websocket&sid={sid}")).await;
    let start = Instant::now();
    ws.send(WsMessage::text("2probe")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), WsMessage::text("3probe"));
    // The probe is answered; a GET now gets a noop so that the client can upgrade.
    assert_eq!(get(&h.engine, &poll_uri(&sid)).await.text(), "6");

    // No `5`: the probe socket is closed upgradeTimeout after it arrived.
    assert_closes(&mut ws).await;
    assert_at(start, Instant::now(), UPGRADE_TIMEOUT);

    // The session itself is untouched and still on polling.
    h.assert_no_event();
    assert_eq!(socket.transport(), TransportKind::Polling);
    let res = post(&h.engine, &poll_uri(&sid), "4still polling").await;
    assert_eq!(res.text(), "ok");
    assert_eq!(
        h.next_message().await,
        (
            sid.clone(),
            Message::Text(Bytes::from_static(b"still polling"))
        )
    );
    assert_eq!(
        get(&h.engine, &poll_uri(&sid)).await.text(),
        "4still polling"
    );
    assert_eq!(h.engine.session_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_upgrade_socket_that_never_probes_is_dropped_too() {
    let mut h = Harness::default_config();
    let socket = h.handshake_socket().await;
    let sid = socket.sid().to_owned();
    let mut ws = ws_in_memory(&h.engine, &format!("EIO=4&transport=websocket&sid={sid}")).await;
    let start = Instant::now();
    assert_closes(&mut ws).await;
    assert_at(start, Instant::now(), UPGRADE_TIMEOUT);
    assert_eq!(socket.transport(), TransportKind::Polling);
    h.assert_no_event();
    assert_eq!(post(&h.engine, &poll_uri(&sid), "4x").await.text(), "ok");
    assert_eq!(
        h.next_message().await,
        (sid, Message::Text(Bytes::from_static(b"x")))
    );
}

const UPGRADE_TIMEOUT: Duration = Duration::from_secs(10);

/// Waits for the server to close `ws` (a close frame or the end of the stream).
async fn assert_closes(ws: &mut tokio_tungstenite::WebSocketStream<tokio::io::DuplexStream>) {
    match ws.next().await {
        Some(Ok(WsMessage::Close(_))) | None => {}
        other => panic!("expected the socket to close, got {other:?}"),
    }
}
