//! WebSocket sessions over real loopback TCP, served by `volley_engine::serve`: the direct
//! handshake, echo, the upgrade from long-polling, and what ends a session.
//!
//! Long-polling requests of the upgrade test go through the same engine's tower service in
//! memory; the registry behind both is one.

mod common;

use bytes::Bytes;
use common::{
    Harness, get, open_packet, poll_uri, post, serve_tcp, ws_closed, ws_next, ws_open_packet,
    ws_tcp,
};
use futures_util::SinkExt as _;
use http::StatusCode;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use volley_engine::{CloseReason, EngineConfig, Message, TransportKind};

const WS_HANDSHAKE: &str = "EIO=4&transport=websocket";

#[tokio::test]
async fn direct_websocket_handshake_sends_the_open_packet_first() {
    let mut h = Harness::default_config();
    let addr = serve_tcp(&h.engine).await;
    let mut ws = ws_tcp(addr, WS_HANDSHAKE).await;
    let open = ws_open_packet(&mut ws).await;
    let mut keys: Vec<&str> = open
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "maxPayload",
            "pingInterval",
            "pingTimeout",
            "sid",
            "upgrades"
        ]
    );
    // Nothing to upgrade to from WebSocket.
    assert_eq!(open["upgrades"], serde_json::json!([]));
    assert_eq!(open["pingInterval"], 25_000);
    assert_eq!(open["pingTimeout"], 20_000);
    assert_eq!(open["maxPayload"], 1_000_000);
    let sid = open["sid"].as_str().unwrap();
    assert_eq!(sid.len(), 22);

    let socket = h.next_open().await;
    assert_eq!(socket.sid(), sid);
    assert_eq!(socket.transport(), TransportKind::WebSocket);
    assert_eq!(
        socket.request().remote_addr.map(|a| a.ip()),
        Some([127, 0, 0, 1].into())
    );
    // A WebSocket sid is no long-polling sid.
    get(&h.engine, &poll_uri(sid))
        .await
        .assert_error(400, 3, "Bad request");
}

#[tokio::test]
async fn text_and_binary_messages_are_echoed_as_they_came() {
    let mut h = Harness::default_config();
    let addr = serve_tcp(&h.engine).await;
    let mut ws = ws_tcp(addr, WS_HANDSHAKE).await;
    let sid = ws_open_packet(&mut ws).await["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    h.next_open().await;

    ws.send(WsMessage::text("4hello")).await.unwrap();
    assert_eq!(ws_next(&mut ws).await, Some(WsMessage::text("4hello")));
    assert_eq!(
        h.next_message().await,
        (sid.clone(), Message::Text(Bytes::from_static(b"hello")))
    );

    ws.send(WsMessage::binary(vec![1u8, 2, 3, 4]))
        .await
        .unwrap();
    assert_eq!(
        ws_next(&mut ws).await,
        Some(WsMessage::binary(vec![1u8, 2, 3, 4]))
    );
    assert_eq!(
        h.next_message().await,
        (
            sid.clone(),
            Message::Binary(Bytes::from_static(&[1, 2, 3, 4]))
        )
    );

    // Several frames in a row keep their order.
    for i in 0..50 {
        ws.send(WsMessage::text(format!("4m{i}"))).await.unwrap();
    }
    for i in 0..50 {
        assert_eq!(
            ws_next(&mut ws).await,
            Some(WsMessage::text(format!("4m{i}")))
        );
    }
}

#[tokio::test]
async fn polling_session_upgrades_to_websocket() {
    let mut h = Harness::default_config();
    let addr = serve_tcp(&h.engine).await;
    let socket = h.handshake_socket().await;
    let sid = socket.sid().to_owned();

    // A GET is parked while the client probes the WebSocket.
    let engine = h.engine.clone();
    let uri = poll_uri(&sid);
    let parked = tokio::spawn(async move { get(&engine, &uri).await });

    let mut ws = ws_tcp(addr, &format!("{WS_HANDSHAKE}&sid={sid}")).await;
    ws.send(WsMessage::text("2probe")).await.unwrap();
    assert_eq!(ws_next(&mut ws).await, Some(WsMessage::text("3probe")));
    // The parked GET is released with a noop so that the client can pause polling.
    let res = parked.await.unwrap();
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.text(), "6");
    assert_eq!(socket.transport(), TransportKind::Polling);

    ws.send(WsMessage::text("5")).await.unwrap();
    ws.send(WsMessage::text("4hello")).await.unwrap();
    assert_eq!(ws_next(&mut ws).await, Some(WsMessage::text("4hello")));
    assert_eq!(socket.transport(), TransportKind::WebSocket);
    assert_eq!(
        h.next_message().await,
        (sid.clone(), Message::Text(Bytes::from_static(b"hello")))
    );
    // Frames the server sends now go over the WebSocket.
    socket.send_text("from server").unwrap();
    assert_eq!(
        ws_next(&mut ws).await,
        Some(WsMessage::text("4from server"))
    );

    // Long-polling with that sid is over (Node: TRANSPORT_MISMATCH).
    get(&h.engine, &poll_uri(&sid))
        .await
        .assert_error(400, 3, "Bad request");
    post(&h.engine, &poll_uri(&sid), "4x")
        .await
        .assert_error(400, 3, "Bad request");

    // A second WebSocket with that sid is accepted, then closed at once.
    let mut second = ws_tcp(addr, &format!("{WS_HANDSHAKE}&sid={sid}")).await;
    ws_closed(&mut second).await;

    // The upgraded session goes on.
    ws.send(WsMessage::text("4after")).await.unwrap();
    assert_eq!(ws_next(&mut ws).await, Some(WsMessage::text("4after")));
    h.next_message().await;
    h.assert_no_event();
    assert_eq!(h.engine.session_count(), 1);
}

#[tokio::test]
async fn messages_queued_during_the_upgrade_are_not_lost() {
    let mut h = Harness::default_config();
    let addr = serve_tcp(&h.engine).await;
    let socket = h.handshake_socket().await;
    let sid = socket.sid().to_owned();

    let mut ws = ws_tcp(addr, &format!("{WS_HANDSHAKE}&sid={sid}")).await;
    ws.send(WsMessage::text("2probe")).await.unwrap();
    assert_eq!(ws_next(&mut ws).await, Some(WsMessage::text("3probe")));
    socket.send_text("one").unwrap();
    socket.send_text("two").unwrap();
    ws.send(WsMessage::text("5")).await.unwrap();
    // Nobody polled: the frames come over the new transport, in order.
    assert_eq!(ws_next(&mut ws).await, Some(WsMessage::text("4one")));
    assert_eq!(ws_next(&mut ws).await, Some(WsMessage::text("4two")));
}

#[tokio::test]
async fn a_message_over_max_payload_closes_only_its_session() {
    let mut h = Harness::new(EngineConfig::builder().max_payload(1000).build());
    let addr = serve_tcp(&h.engine).await;
    let mut a = ws_tcp(addr, WS_HANDSHAKE).await;
    let sid_a = ws_open_packet(&mut a).await["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    h.next_open().await;
    let mut b = ws_tcp(addr, WS_HANDSHAKE).await;
    let sid_b = ws_open_packet(&mut b).await["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    h.next_open().await;

    // Exactly maxPayload is fine.
    let fits = format!("4{}", "x".repeat(999));
    b.send(WsMessage::text(fits.clone())).await.unwrap();
    assert_eq!(ws_next(&mut b).await, Some(WsMessage::text(fits)));
    h.next_message().await;

    b.send(WsMessage::text(format!("4{}", "x".repeat(2000))))
        .await
        .unwrap();
    // Node (ws) closes with 1009 "message too big".
    assert_eq!(ws_closed(&mut b).await, Some(1009));
    assert_eq!(h.next_close().await, (sid_b, CloseReason::TransportError));

    a.send(WsMessage::text("4still here")).await.unwrap();
    assert_eq!(ws_next(&mut a).await, Some(WsMessage::text("4still here")));
    assert_eq!(
        h.next_message().await,
        (sid_a, Message::Text(Bytes::from_static(b"still here")))
    );
    assert_eq!(h.engine.session_count(), 1);
}

#[tokio::test]
async fn a_client_close_frame_ends_the_session_with_transport_close() {
    let mut h = Harness::default_config();
    let addr = serve_tcp(&h.engine).await;
    let mut ws = ws_tcp(addr, WS_HANDSHAKE).await;
    let sid = ws_open_packet(&mut ws).await["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    h.next_open().await;
    ws.close(None).await.unwrap();
    assert_eq!(h.next_close().await, (sid, CloseReason::TransportClose));
    assert_eq!(h.engine.session_count(), 0);
}

#[tokio::test]
async fn a_close_packet_ends_the_session_with_transport_close() {
    let mut h = Harness::default_config();
    let addr = serve_tcp(&h.engine).await;
    let mut ws = ws_tcp(addr, WS_HANDSHAKE).await;
    let sid = ws_open_packet(&mut ws).await["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    h.next_open().await;
    ws.send(WsMessage::text("1")).await.unwrap();
    ws_closed(&mut ws).await;
    assert_eq!(h.next_close().await, (sid, CloseReason::TransportClose));
}

#[tokio::test]
async fn a_dropped_connection_ends_the_session() {
    let mut h = Harness::default_config();
    let addr = serve_tcp(&h.engine).await;
    let mut ws = ws_tcp(addr, WS_HANDSHAKE).await;
    let sid = ws_open_packet(&mut ws).await["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    h.next_open().await;
    drop(ws);
    let (closed, reason) = h.next_close().await;
    assert_eq!(closed, sid);
    // No close frame: the peer vanished.
    assert!(
        matches!(
            reason,
            CloseReason::TransportClose | CloseReason::TransportError
        ),
        "{reason:?}"
    );
}

#[tokio::test]
async fn the_open_packet_of_a_polling_handshake_lists_websocket_only_when_it_can_be_used() {
    let h = Harness::new(
        EngineConfig::builder()
            .transports(&[TransportKind::Polling])
            .build(),
    );
    let res = get(&h.engine, "/engine.io/?EIO=4&transport=polling").await;
    assert_eq!(open_packet(&res.body)["upgrades"], serde_json::json!([]));
}
