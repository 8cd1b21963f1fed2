//! The engine's traffic and session counters (`EngineMetrics`): message packets and payload
//! bytes in and out as `@socket.io/admin-ui` counts them, open sessions by transport, and
//! closed sessions, whatever transport carried the messages.

mod common;

use bytes::Bytes;
use common::{Harness, get, poll_uri, post, ws_in_memory, ws_next};
use futures_util::SinkExt as _;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use volley_engine::{CloseReason, EngineMetrics, Message, TransportKind};

const WS_HANDSHAKE: &str = "EIO=4&transport=websocket";

/// The traffic counters of a snapshot, in one comparable value: (messages in, bytes in,
/// messages out, bytes out).
fn traffic(m: &EngineMetrics) -> (u64, u64, u64, u64) {
    (
        m.messages_received_total,
        m.bytes_received_total,
        m.messages_sent_total,
        m.bytes_sent_total,
    )
}

/// Long-polls `sid` until every one of `expected` came back; returns the bodies read (a GET
/// answers with what is queued at the time, so the echoes may come in several).
async fn poll_until(h: &Harness, sid: &str, expected: &[&str]) -> String {
    let mut all = String::new();
    while !expected.iter().all(|e| all.contains(e)) {
        all.push_str(get(&h.engine, &poll_uri(sid)).await.text());
        all.push('\u{1e}');
    }
    all
}

#[tokio::test]
async fn polling_messages_and_bytes_are_counted_both_ways_and_kept_after_the_close() {
    let mut h = Harness::default_config();
    let before = h.engine.metrics();
    assert_eq!(traffic(&before), (0, 0, 0, 0));
    assert_eq!(before.sessions_closed_total, 0);

    let socket = h.handshake_socket().await;
    let sid = socket.sid().to_owned();
    let m = h.engine.metrics();
    assert_eq!((m.polling_sessions, m.websocket_sessions), (1, 0));
    // The open packet is not a message.
    assert_eq!(traffic(&m), (0, 0, 0, 0));

    // Two text messages (one with a two-byte character) and a binary one of 3 bytes, in one
    // payload. Text bytes count without the packet type; binary bytes are the decoded ones.
    let res = post(&h.engine, &poll_uri(&sid), "4hello\u{1e}4wé\u{1e}bAQID").await;
    assert_eq!(res.text(), "ok");
    for _ in 0..3 {
        h.next_message().await;
    }
    assert_eq!(
        (
            h.engine.metrics().messages_received_total,
            h.engine.metrics().bytes_received_total
        ),
        (3, 5 + 3 + 3)
    );
    // The echoes were queued by the handler; reading them proves they were sent.
    let echoed = poll_until(&h, &sid, &["4hello", "4wé", "bAQID"]).await;
    let packets = echoed.split('\u{1e}').filter(|p| !p.is_empty()).count();
    assert_eq!(packets, 3, "{echoed:?}");
    assert_eq!(traffic(&h.engine.metrics()), (3, 11, 3, 11));

    // A frame the layer above queues itself is counted once accepted.
    socket.send_text("from server").unwrap();
    assert_eq!(traffic(&h.engine.metrics()), (3, 11, 4, 22));
    assert_eq!(get(&h.engine, &poll_uri(&sid)).await.text(), "4from server");

    // The client closes: the session's counts move to the engine's totals.
    assert_eq!(post(&h.engine, &poll_uri(&sid), "1").await.text(), "ok");
    assert_eq!(
        h.next_close().await,
        (sid.clone(), CloseReason::TransportClose)
    );
    let m = h.engine.metrics();
    assert_eq!(traffic(&m), (3, 11, 4, 22));
    assert_eq!(m.sessions_closed_total, 1);
    assert_eq!((m.sessions_open, m.polling_sessions), (0, 0));
    // A refused send counts for nothing.
    assert!(socket.send_text("too late").is_err());
    assert_eq!(traffic(&h.engine.metrics()), (3, 11, 4, 22));
}

#[tokio::test]
async fn websocket_messages_are_counted_and_control_packets_are_not() {
    let mut h = Harness::default_config();
    let mut ws = ws_in_memory(&h.engine, WS_HANDSHAKE).await;
    common::ws_open_packet(&mut ws).await;
    let socket = h.next_open().await;
    let m = h.engine.metrics();
    assert_eq!((m.polling_sessions, m.websocket_sessions), (0, 1));

    // A pong (no ping was sent: ignored by the session) and a noop are not messages.
    ws.send(WsMessage::text("3")).await.unwrap();
    ws.send(WsMessage::text("6")).await.unwrap();
    ws.send(WsMessage::text("4abc")).await.unwrap();
    ws.send(WsMessage::binary(Bytes::from_static(&[9; 10])))
        .await
        .unwrap();
    h.next_message().await;
    h.next_message().await;
    assert_eq!(ws_next(&mut ws).await, Some(WsMessage::text("4abc")));
    assert_eq!(
        ws_next(&mut ws).await,
        Some(WsMessage::binary(Bytes::from_static(&[9; 10])))
    );
    assert_eq!(traffic(&h.engine.metrics()), (2, 13, 2, 13));

    // Several frames queued at once count one by one.
    socket
        .send_many([
            volley_engine::Frame::message("xy"),
            volley_engine::Frame::binary(Bytes::from_static(b"1234")),
        ])
        .unwrap();
    assert_eq!(traffic(&h.engine.metrics()), (2, 13, 4, 19));

    drop(ws);
    h.next_close().await;
    let m = h.engine.metrics();
    assert_eq!(traffic(&m), (2, 13, 4, 19));
    assert_eq!((m.sessions_closed_total, m.websocket_sessions), (1, 0));
}

#[tokio::test]
async fn an_upgraded_session_moves_from_polling_to_websocket() {
    let mut h = Harness::default_config();
    let socket = h.handshake_socket().await;
    let sid = socket.sid().to_owned();
    let mut ws = ws_in_memory(&h.engine, &format!("{WS_HANDSHAKE}&sid={sid}")).await;
    ws.send(WsMessage::text("2probe")).await.unwrap();
    assert_eq!(ws_next(&mut ws).await, Some(WsMessage::text("3probe")));
    // The probe is a ping, not a message.
    let m = h.engine.metrics();
    assert_eq!((m.polling_sessions, m.websocket_sessions), (1, 0));
    assert_eq!(traffic(&m), (0, 0, 0, 0));

    ws.send(WsMessage::text("5")).await.unwrap();
    ws.send(WsMessage::text("4on ws")).await.unwrap();
    assert_eq!(
        h.next_message().await,
        (sid, Message::Text(Bytes::from_static(b"on ws")))
    );
    assert_eq!(socket.transport(), TransportKind::WebSocket);
    let m = h.engine.metrics();
    assert_eq!((m.polling_sessions, m.websocket_sessions), (0, 1));
    assert_eq!(m.messages_received_total, 1);
}

#[tokio::test(start_paused = true)]
async fn sessions_closed_by_the_engine_are_counted_once() {
    let mut h = Harness::default_config();
    let a = h.handshake_socket().await;
    let _b = h.handshake_socket().await;
    a.close();
    h.next_close().await;
    assert_eq!(h.engine.metrics().sessions_closed_total, 1);
    h.engine.close(std::time::Duration::ZERO).await;
    h.next_close().await;
    let m = h.engine.metrics();
    assert_eq!((m.sessions_closed_total, m.sessions_open), (2, 0));
    assert_eq!(m.sessions_opened_total, 2);
}

#[tokio::test]
async fn refused_handshakes_are_counted_by_reason() {
    let mut h = Harness::new(
        volley_engine::EngineConfig::builder()
            .max_connections(1)
            .transports(&[TransportKind::Polling])
            .build(),
    );
    // Malformed: a POST handshake, a transport that is not served, a v3 handshake.
    post(&h.engine, "/engine.io/?EIO=4&transport=polling", "")
        .await
        .assert_error(400, 2, "Bad handshake method");
    get(&h.engine, "/engine.io/?EIO=4&transport=websocket")
        .await
        .assert_error(400, 0, "Transport unknown");
    get(&h.engine, "/engine.io/?EIO=3&transport=polling")
        .await
        .assert_error(400, 5, "Unsupported protocol version");
    // Requests of a session that does not exist are no handshakes.
    get(&h.engine, &poll_uri("nope"))
        .await
        .assert_error(400, 1, "Session ID unknown");
    // Full: the second session is refused.
    h.handshake().await;
    get(&h.engine, "/engine.io/?EIO=4&transport=polling")
        .await
        .assert_error(503, 3, "Server unavailable");
    let m = h.engine.metrics();
    assert_eq!(
        (
            m.handshakes_refused_bad_request_total,
            m.handshakes_refused_unavailable_total,
            m.handshakes_refused_forbidden_total,
        ),
        (3, 1, 0)
    );
}

#[tokio::test]
async fn handshakes_refused_by_allow_request_are_counted_as_forbidden() {
    let h = Harness::new(
        volley_engine::EngineConfig::builder()
            .allow_request(|_| Box::pin(async { Err("go away".to_owned()) }))
            .build(),
    );
    get(&h.engine, "/engine.io/?EIO=4&transport=polling")
        .await
        .assert_error(403, 4, "go away");
    assert_eq!(h.engine.metrics().handshakes_refused_forbidden_total, 1);
}
