//! `Engine::close`: every session ends with `ServerShuttingDown`, new ones are refused.

mod common;

use std::time::Duration;

use common::{Harness, get, open_packet, poll_uri, ws_closed, ws_in_memory, ws_next, ws_request};
use http::StatusCode;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use volley_engine::CloseReason;

const HANDSHAKE: &str = "/engine.io/?EIO=4&transport=polling";

#[tokio::test(start_paused = true)]
async fn close_ends_every_session_with_server_shutting_down_and_refuses_new_ones() {
    let mut h = Harness::default_config(); // pingInterval 25 s, pingTimeout 20 s

    // A polling session with a GET parked, one whose client is not polling right now, and a
    // WebSocket session.
    let parked_sid = h.handshake().await;
    let engine = h.engine.clone();
    let uri = poll_uri(&parked_sid);
    let mut parked = tokio::spawn(async move { get(&engine, &uri).await });
    assert!(
        tokio::time::timeout(Duration::from_secs(1), &mut parked)
            .await
            .is_err()
    );
    let idle_sid = h.handshake().await;
    let mut ws = ws_in_memory(&h.engine, "EIO=4&transport=websocket").await;
    let Some(WsMessage::Text(open)) = ws_next(&mut ws).await else {
        panic!("no open packet");
    };
    let ws_sid = open_packet(open.as_bytes())["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    h.next_open().await;
    assert_eq!(h.engine.session_count(), 3);

    let start = Instant::now();
    let engine = h.engine.clone();
    let closing = tokio::spawn(async move { engine.close(Duration::from_secs(60)).await });

    // The parked GET and the WebSocket get the close packet at once.
    assert_eq!(parked.await.unwrap().text(), "1");
    assert_eq!(ws_next(&mut ws).await, Some(WsMessage::text("1")));
    ws_closed(&mut ws).await;
    let mut closed = vec![h.next_close().await, h.next_close().await];
    assert_eq!(start.elapsed(), Duration::ZERO);

    // New sessions are refused meanwhile, on both transports.
    let res = get(&h.engine, HANDSHAKE).await;
    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE);
    let res = common::call(
        &h.engine,
        ws_request("/engine.io/?EIO=4&transport=websocket"),
    )
    .await;
    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE);

    // The idle client still finds the close packet when it polls.
    let res = get(&h.engine, &poll_uri(&idle_sid)).await;
    assert_eq!(res.text(), "1");
    closed.push(h.next_close().await);
    closing.await.unwrap();
    // close() looks at the registry every 10 ms.
    assert!(
        start.elapsed() <= Duration::from_millis(10),
        "close() waited for nothing: {:?}",
        start.elapsed()
    );

    closed.sort_by(|a, b| a.0.cmp(&b.0));
    let mut expected = vec![
        (parked_sid, CloseReason::ServerShuttingDown),
        (idle_sid, CloseReason::ServerShuttingDown),
        (ws_sid, CloseReason::ServerShuttingDown),
    ];
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(closed, expected);
    assert_eq!(h.engine.session_count(), 0);

    // And after close() returned.
    assert_eq!(
        get(&h.engine, HANDSHAKE).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    h.assert_no_event();
}

#[tokio::test(start_paused = true)]
async fn close_waits_at_most_its_grace_period() {
    let mut h = Harness::default_config();
    let sid = h.handshake().await;
    let start = Instant::now();
    // The client never polls again: its session could only end at the close deadline
    // (pingTimeout, 20 s). close() returns after its grace period, with the sid forgotten.
    h.engine.close(Duration::from_secs(2)).await;
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_millis(2100),
        "{waited:?}"
    );
    assert_eq!(h.engine.session_count(), 0);
    get(&h.engine, &poll_uri(&sid))
        .await
        .assert_error(400, 1, "Session ID unknown");
    // The handler still learns why its session ended.
    assert_eq!(h.next_close().await, (sid, CloseReason::ServerShuttingDown));
}

#[tokio::test(start_paused = true)]
async fn close_with_no_session_returns_at_once() {
    let h = Harness::default_config();
    let start = Instant::now();
    h.engine.close(Duration::from_secs(30)).await;
    assert_eq!(start.elapsed(), Duration::ZERO);
    let res = get(&h.engine, HANDSHAKE).await;
    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE);
}
