//! Engine.IO v3 (`EIO=3`, socket.io-client 2.x): refused unless allowed, the v3 long-polling
//! framing (text and binary), the client-driven heartbeat, type-prefixed binary WebSocket
//! frames. Byte strings are what engine.io 6.6 with `allowEIO3` answers.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{Harness, call, get, post, request, ws_in_memory, ws_next};
use futures_util::SinkExt as _;
use http::{Method, StatusCode};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use volley_engine::{CloseReason, EngineConfig, Message, ProtocolVersion};

const INTERVAL: Duration = Duration::from_millis(300);
const TIMEOUT: Duration = Duration::from_millis(200);

fn v3_config() -> EngineConfig {
    EngineConfig::builder()
        .ping_interval(INTERVAL)
        .ping_timeout(TIMEOUT)
        .allow_eio3(true)
        .build()
}

fn uri(sid: &str) -> String {
    format!("/engine.io/?EIO=3&transport=polling&sid={sid}")
}

/// Opens a v3 polling session; returns its sid.
async fn handshake(h: &mut Harness, query: &str) -> String {
    let res = get(
        &h.engine,
        &format!("/engine.io/?EIO=3&transport=polling{query}"),
    )
    .await;
    assert_eq!(res.status, StatusCode::OK);
    let text = res.text().to_owned();
    let (len, packet) = text.split_once(':').expect("a v3 record");
    assert_eq!(len.parse::<usize>().unwrap(), packet.encode_utf16().count());
    let open: serde_json::Value = serde_json::from_str(&packet[1..]).unwrap();
    assert_eq!(
        open.as_object().unwrap().keys().collect::<Vec<_>>(),
        [
            "sid",
            "upgrades",
            "pingInterval",
            "pingTimeout",
            "maxPayload"
        ]
    );
    let socket = h.next_open().await;
    assert_eq!(socket.protocol(), ProtocolVersion::V3);
    socket.sid().to_owned()
}

#[tokio::test]
async fn eio3_is_refused_by_default_as_node_refuses_it() {
    let h = Harness::default_config();
    for q in [
        "EIO=3&transport=polling",
        "transport=polling",
        "EIO=abc&transport=polling",
    ] {
        let res = get(&h.engine, &format!("/engine.io/?{q}")).await;
        res.assert_error(400, 5, "Unsupported protocol version");
    }
}

#[tokio::test]
async fn polling_text_framing_both_ways() {
    let mut h = Harness::new(v3_config());
    let sid = handshake(&mut h, "").await;
    // Two packets in one body, lengths in UTF-16 units ("é😀" is three).
    let res = post(&h.engine, &uri(&sid), "6:4hello4:4é😀").await;
    assert_eq!((res.status, res.text()), (StatusCode::OK, "ok"));
    assert_eq!(h.next_message().await.1, Message::text("hello"));
    assert_eq!(h.next_message().await.1, Message::text("é😀"));
    let res = get(&h.engine, &uri(&sid)).await;
    assert_eq!(res.text(), "6:4hello4:4é😀");
    assert_eq!(
        res.header(http::header::CONTENT_TYPE),
        Some("text/plain; charset=UTF-8")
    );
    // A bad payload closes the session.
    let res = post(&h.engine, &uri(&sid), "9:4hello").await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(h.next_close().await.1, CloseReason::ParseError);
}

#[tokio::test]
async fn binary_polling_payloads() {
    let mut h = Harness::new(v3_config());
    let sid = handshake(&mut h, "").await;
    // engine.io-client 3.x posts binary payloads as application/octet-stream.
    let mut req = request(
        Method::POST,
        &uri(&sid),
        Bytes::from_static(&[
            0, 6, 0xff, b'4', b'h', b'e', b'l', b'l', b'o', 1, 4, 0xff, 4, 1, 2, 3,
        ]),
    );
    req.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/octet-stream"),
    );
    let res = call(&h.engine, req).await;
    assert_eq!(res.text(), "ok");
    assert_eq!(h.next_message().await.1, Message::text("hello"));
    assert_eq!(
        h.next_message().await.1,
        Message::Binary(Bytes::from_static(&[1, 2, 3]))
    );
    let res = get(&h.engine, &uri(&sid)).await;
    assert_eq!(
        res.header(http::header::CONTENT_TYPE),
        Some("application/octet-stream")
    );
    assert_eq!(
        &res.body[..],
        &[
            0, 6, 0xff, b'4', b'h', b'e', b'l', b'l', b'o', 1, 4, 0xff, 4, 1, 2, 3
        ]
    );

    // With b64=1 binary goes back as `b4` + base64 in a text payload.
    let sid = handshake(&mut h, "&b64=1").await;
    let res = post(&h.engine, &format!("{}&b64=1", uri(&sid)), "10:b4AQIDBA==").await;
    assert_eq!(res.text(), "ok");
    assert_eq!(
        h.next_message().await.1,
        Message::Binary(Bytes::from_static(&[1, 2, 3, 4]))
    );
    let res = get(&h.engine, &format!("{}&b64=1", uri(&sid))).await;
    assert_eq!(res.text(), "10:b4AQIDBA==");
}

#[tokio::test(start_paused = true)]
async fn the_client_pings_and_the_server_answers() {
    let mut h = Harness::new(v3_config());
    let sid = handshake(&mut h, "").await;
    // Three intervals, each ping answered with a pong; the server never pings on its own.
    for _ in 0..3 {
        tokio::time::sleep(INTERVAL).await;
        assert_eq!(post(&h.engine, &uri(&sid), "1:2").await.text(), "ok");
        assert_eq!(get(&h.engine, &uri(&sid)).await.text(), "1:3");
    }
    // Without a ping the session ends pingInterval + pingTimeout after the last one.
    let last = Instant::now();
    let (_, reason) = h.next_close().await;
    assert_eq!(reason, CloseReason::PingTimeout);
    let waited = Instant::now() - last;
    assert!(
        waited >= INTERVAL + TIMEOUT && waited <= INTERVAL + TIMEOUT + Duration::from_millis(5)
    );
    assert_eq!(
        get(&h.engine, &uri(&sid)).await.status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn websocket_binary_frames_carry_the_type_byte() {
    let mut h = Harness::new(v3_config());
    let mut ws = ws_in_memory(&h.engine, "EIO=3&transport=websocket").await;
    let Some(WsMessage::Text(open)) = ws_next(&mut ws).await else {
        panic!("no open packet")
    };
    assert!(open.as_str().starts_with("0{\"sid\""));
    let _ = h.next_open().await;
    ws.send(WsMessage::Binary(Bytes::from_static(&[4, 1, 2])))
        .await
        .unwrap();
    assert_eq!(
        h.next_message().await.1,
        Message::Binary(Bytes::from_static(&[1, 2]))
    );
    assert_eq!(
        ws_next(&mut ws).await,
        Some(WsMessage::Binary(Bytes::from_static(&[4, 1, 2])))
    );
    ws.send(WsMessage::text("2")).await.unwrap();
    assert_eq!(ws_next(&mut ws).await, Some(WsMessage::text("3")));
    ws.send(WsMessage::text("4hi")).await.unwrap();
    assert_eq!(h.next_message().await.1, Message::text("hi"));
    assert_eq!(ws_next(&mut ws).await, Some(WsMessage::text("4hi")));
}

#[tokio::test]
async fn upgrade_from_polling() {
    let mut h = Harness::new(v3_config());
    let sid = handshake(&mut h, "").await;
    let engine = h.engine.clone();
    let u = uri(&sid);
    let parked = tokio::spawn(async move { get(&engine, &u).await });
    let mut ws = ws_in_memory(&h.engine, &format!("EIO=3&transport=websocket&sid={sid}")).await;
    ws.send(WsMessage::text("2probe")).await.unwrap();
    assert_eq!(ws_next(&mut ws).await, Some(WsMessage::text("3probe")));
    assert_eq!(parked.await.unwrap().text(), "1:6");
    ws.send(WsMessage::text("5")).await.unwrap();
    ws.send(WsMessage::text("4hello")).await.unwrap();
    assert_eq!(h.next_message().await.1, Message::text("hello"));
    assert_eq!(ws_next(&mut ws).await, Some(WsMessage::text("4hello")));
}

#[tokio::test]
async fn a_pong_from_a_v3_client_is_the_wrong_direction() {
    let mut h = Harness::new(v3_config());
    let sid = handshake(&mut h, "").await;
    assert_eq!(post(&h.engine, &uri(&sid), "1:3").await.text(), "ok");
    assert_eq!(h.next_close().await.1, CloseReason::TransportError);
}

#[tokio::test]
async fn websocket_without_binary_support_gets_base64_text() {
    let mut h = Harness::new(v3_config());
    let mut ws = ws_in_memory(&h.engine, "EIO=3&transport=websocket&b64=1").await;
    let _open = ws_next(&mut ws).await;
    let _ = h.next_open().await;
    ws.send(WsMessage::text("b4AQI=")).await.unwrap();
    assert_eq!(
        h.next_message().await.1,
        Message::Binary(Bytes::from_static(&[1, 2]))
    );
    assert_eq!(ws_next(&mut ws).await, Some(WsMessage::text("b4AQI=")));
}
