//! Bad input, one case per test, each answered as Node's `engine.io` 6.6 answers it (checked
//! against the reference server), and never with a panic or a hang.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{
    ChannelBody, Harness, call, get, poll_uri, post, serve_tcp, ws_closed, ws_next, ws_open_packet,
    ws_request, ws_tcp,
};
use futures_util::SinkExt as _;
use http::{Method, Request, StatusCode, header};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::frame::Frame as WsFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use volley_engine::{CloseReason, EngineConfig, Message};

#[tokio::test]
async fn missing_eio_is_unsupported_protocol_version() {
    let h = Harness::default_config();
    get(&h.engine, "/engine.io/?transport=polling")
        .await
        .assert_error(400, 5, "Unsupported protocol version");
}

#[tokio::test]
async fn wrong_eio_is_unsupported_protocol_version() {
    let h = Harness::default_config();
    for eio in ["3", "abc", "", "44"] {
        get(
            &h.engine,
            &format!("/engine.io/?EIO={eio}&transport=polling"),
        )
        .await
        .assert_error(400, 5, "Unsupported protocol version");
    }
    assert_eq!(h.engine.session_count(), 0);
}

#[tokio::test]
async fn unknown_transport_is_transport_unknown() {
    let h = Harness::default_config();
    get(&h.engine, "/engine.io/?EIO=4&transport=abc")
        .await
        .assert_error(400, 0, "Transport unknown");
}

#[tokio::test]
async fn missing_transport_is_transport_unknown() {
    let h = Harness::default_config();
    get(&h.engine, "/engine.io/?EIO=4")
        .await
        .assert_error(400, 0, "Transport unknown");
}

#[tokio::test]
async fn unknown_sid_is_session_id_unknown() {
    let mut h = Harness::default_config();
    let sid = h.handshake().await;
    let other = format!("{}x", &sid[..21]);
    get(&h.engine, &poll_uri(&other))
        .await
        .assert_error(400, 1, "Session ID unknown");
    post(&h.engine, &poll_uri(&other), "4x")
        .await
        .assert_error(400, 1, "Session ID unknown");
    // The real session is unaffected.
    assert_eq!(post(&h.engine, &poll_uri(&sid), "4x").await.text(), "ok");
}

/// Node refuses a WebSocket upgrade with `400`, `text/html` and the bare message (its
/// `abortUpgrade`), not with the JSON of long-polling errors.
#[tokio::test]
async fn refused_websocket_upgrades_get_nodes_plain_answer() {
    let h = Harness::default_config();
    for (query, message) in [
        ("EIO=4&transport=websocket&sid=nope", "Session ID unknown"),
        ("EIO=4&transport=tobi", "Transport unknown"),
        ("EIO=4", "Transport unknown"),
        ("EIO=3&transport=websocket", "Unsupported protocol version"),
        ("transport=websocket", "Unsupported protocol version"),
    ] {
        let res = call(&h.engine, ws_request(&format!("/engine.io/?{query}"))).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(
            res.header(header::CONTENT_TYPE),
            Some("text/html"),
            "{query}"
        );
        assert_eq!(res.text(), message, "{query}");
    }
    assert_eq!(h.engine.session_count(), 0);
}

#[tokio::test]
async fn a_websocket_with_an_unknown_sid_is_refused_over_tcp() {
    let h = Harness::default_config();
    let addr = serve_tcp(&h.engine).await;
    let url = format!("ws://{addr}/engine.io/?EIO=4&transport=websocket&sid=nope");
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        }
        other => panic!("expected an HTTP refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn malformed_packet_closes_the_session() {
    let mut h = Harness::default_config();
    let sid = h.handshake().await;
    let res = post(&h.engine, &poll_uri(&sid), "abc").await;
    // The official suite wants 400 here (Node itself answers 200 "ok"); either way the
    // session is over.
    res.assert_error(400, 3, "Bad request");
    assert_eq!(h.next_close().await, (sid.clone(), CloseReason::ParseError));
    get(&h.engine, &poll_uri(&sid))
        .await
        .assert_error(400, 1, "Session ID unknown");
}

#[tokio::test]
async fn malformed_base64_closes_the_session() {
    let mut h = Harness::default_config();
    let sid = h.handshake().await;
    let res = post(&h.engine, &poll_uri(&sid), "4ok\x1eb!!!").await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    // A payload is taken whole or not at all.
    assert_eq!(h.next_close().await, (sid.clone(), CloseReason::ParseError));
    get(&h.engine, &poll_uri(&sid))
        .await
        .assert_error(400, 1, "Session ID unknown");
}

#[tokio::test]
async fn an_empty_post_closes_the_session() {
    let mut h = Harness::default_config();
    let sid = h.handshake().await;
    let res = post(&h.engine, &poll_uri(&sid), Bytes::new()).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(h.next_close().await, (sid, CloseReason::ParseError));
}

#[tokio::test]
async fn non_utf8_post_is_read_as_node_reads_it() {
    let mut h = Harness::default_config();
    let sid = h.handshake().await;
    // Node decodes a POST body as UTF-8 text with replacement characters: the message
    // arrives with U+FFFD in place of each bad byte, and the session goes on.
    let res = post(&h.engine, &poll_uri(&sid), &b"4a\xff\xfeb"[..]).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.text(), "ok");
    assert_eq!(
        h.next_message().await,
        (
            sid.clone(),
            Message::Text(Bytes::from("a\u{fffd}\u{fffd}b"))
        )
    );
    assert_eq!(
        get(&h.engine, &poll_uri(&sid)).await.text(),
        "4a\u{fffd}\u{fffd}b"
    );
}

#[tokio::test]
async fn non_utf8_websocket_text_frame_closes_the_session() {
    let mut h = Harness::default_config();
    let addr = serve_tcp(&h.engine).await;
    let mut ws = ws_tcp(addr, "EIO=4&transport=websocket").await;
    let sid = ws_open_packet(&mut ws).await["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    h.next_open().await;
    let frame = WsFrame::message(&b"4a\xff\xfe"[..], OpCode::Data(Data::Text), true);
    ws.send(WsMessage::Frame(frame)).await.unwrap();
    // Node (ws): close code 1007, "transport error".
    assert_eq!(ws_closed(&mut ws).await, Some(1007));
    assert_eq!(h.next_close().await, (sid, CloseReason::TransportError));
}

#[tokio::test]
async fn malformed_websocket_packet_closes_the_session() {
    let mut h = Harness::default_config();
    let addr = serve_tcp(&h.engine).await;
    let mut ws = ws_tcp(addr, "EIO=4&transport=websocket").await;
    let sid = ws_open_packet(&mut ws).await["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    h.next_open().await;
    ws.send(WsMessage::text("abc")).await.unwrap();
    ws_closed(&mut ws).await;
    assert_eq!(h.next_close().await, (sid, CloseReason::ParseError));
}

#[tokio::test]
async fn post_body_over_max_payload_is_refused_and_the_session_stays() {
    let mut h = Harness::new(EngineConfig::builder().max_payload(100).build());
    let sid = h.handshake().await;
    let fits = format!("4{}", "x".repeat(99));
    assert_eq!(post(&h.engine, &poll_uri(&sid), fits).await.text(), "ok");
    h.next_message().await;

    let res = post(&h.engine, &poll_uri(&sid), format!("4{}", "x".repeat(150))).await;
    // Node: 413 with an empty body; the message is dropped and the session lives on.
    assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(res.body.is_empty(), "{res:?}");
    h.assert_no_event();
    assert_eq!(post(&h.engine, &poll_uri(&sid), "4next").await.text(), "ok");
    assert_eq!(
        h.next_message().await,
        (sid.clone(), Message::Text(Bytes::from_static(b"next")))
    );
    assert_eq!(
        get(&h.engine, &poll_uri(&sid)).await.text(),
        format!("4{}\x1e4next", "x".repeat(99))
    );
}

#[tokio::test]
async fn post_after_close_is_session_id_unknown() {
    let mut h = Harness::default_config();
    let sid = h.handshake().await;
    assert_eq!(post(&h.engine, &poll_uri(&sid), "1").await.text(), "ok");
    assert_eq!(
        h.next_close().await,
        (sid.clone(), CloseReason::TransportClose)
    );
    post(&h.engine, &poll_uri(&sid), "4late")
        .await
        .assert_error(400, 1, "Session ID unknown");
    get(&h.engine, &poll_uri(&sid))
        .await
        .assert_error(400, 1, "Session ID unknown");
    h.assert_no_event();
}

#[tokio::test(start_paused = true)]
async fn a_close_packet_releases_the_parked_get_with_a_noop() {
    let mut h = Harness::default_config();
    let sid = h.handshake().await;
    let engine = h.engine.clone();
    let uri = poll_uri(&sid);
    let mut parked = tokio::spawn(async move { get(&engine, &uri).await });
    // On the paused clock this elapses only once the GET is parked.
    assert!(
        tokio::time::timeout(Duration::from_secs(1), &mut parked)
            .await
            .is_err()
    );
    assert_eq!(post(&h.engine, &poll_uri(&sid), "1").await.text(), "ok");
    assert_eq!(parked.await.unwrap().text(), "6");
    assert_eq!(
        h.next_close().await,
        (sid.clone(), CloseReason::TransportClose)
    );
    get(&h.engine, &poll_uri(&sid))
        .await
        .assert_error(400, 1, "Session ID unknown");
}

#[tokio::test(start_paused = true)]
async fn two_concurrent_gets_close_the_session() {
    let mut h = Harness::default_config();
    let sid = h.handshake().await;
    let engine = h.engine.clone();
    let uri = poll_uri(&sid);
    let mut first = tokio::spawn(async move { get(&engine, &uri).await });
    // On the paused clock this elapses only once the first GET is parked.
    assert!(
        tokio::time::timeout(Duration::from_secs(1), &mut first)
            .await
            .is_err()
    );

    let second = get(&h.engine, &poll_uri(&sid)).await;
    let first = first.await.unwrap();
    // Node: the first GET gets the close packet, the second a bare 400.
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.text(), "1");
    assert_eq!(second.status, StatusCode::BAD_REQUEST);
    assert!(second.body.is_empty(), "{second:?}");
    assert_eq!(
        h.next_close().await,
        (sid.clone(), CloseReason::TransportError)
    );
    get(&h.engine, &poll_uri(&sid))
        .await
        .assert_error(400, 1, "Session ID unknown");
}

#[tokio::test(start_paused = true)]
async fn two_concurrent_posts_close_the_session() {
    let mut h = Harness::default_config();
    let sid = h.handshake().await;

    // The first POST sends half its body, then stalls.
    let (body_tx, body) = ChannelBody::new();
    body_tx.send(Bytes::from_static(b"4a")).await.unwrap();
    let req = Request::builder()
        .method(Method::POST)
        .uri(poll_uri(&sid))
        .body(body)
        .unwrap();
    let engine = h.engine.clone();
    let mut first = tokio::spawn(async move { call(&engine, req).await });
    assert!(
        tokio::time::timeout(Duration::from_secs(1), &mut first)
            .await
            .is_err()
    );

    let second = post(&h.engine, &poll_uri(&sid), "4b").await;
    // Node: a bare 400 for the overlapping POST, and the session is closed.
    assert_eq!(second.status, StatusCode::BAD_REQUEST);
    assert!(second.body.is_empty(), "{second:?}");
    assert_eq!(
        h.next_close().await,
        (sid.clone(), CloseReason::TransportError)
    );

    // The first POST ends without reaching a closed session (Node drops its connection).
    body_tx.send(Bytes::from_static(b"b")).await.unwrap();
    drop(body_tx);
    let first = first.await.unwrap();
    assert_eq!(first.status, StatusCode::BAD_REQUEST);
    h.assert_no_event();
    get(&h.engine, &poll_uri(&sid))
        .await
        .assert_error(400, 1, "Session ID unknown");
}

#[tokio::test]
async fn a_websocket_with_the_sid_of_an_upgraded_session_is_closed() {
    let mut h = Harness::default_config();
    let addr = serve_tcp(&h.engine).await;
    let sid = h.handshake().await;
    let mut ws = ws_tcp(addr, &format!("EIO=4&transport=websocket&sid={sid}")).await;
    ws.send(WsMessage::text("2probe")).await.unwrap();
    assert_eq!(ws_next(&mut ws).await, Some(WsMessage::text("3probe")));
    ws.send(WsMessage::text("5")).await.unwrap();

    for _ in 0..3 {
        let mut intruder = ws_tcp(addr, &format!("EIO=4&transport=websocket&sid={sid}")).await;
        // Accepted as a WebSocket, then closed without a frame of the session.
        ws_closed(&mut intruder).await;
    }
    ws.send(WsMessage::text("4mine")).await.unwrap();
    assert_eq!(ws_next(&mut ws).await, Some(WsMessage::text("4mine")));
    assert_eq!(h.next_message().await.1, Message::Text(Bytes::from("mine")));
    h.assert_no_event();
}

#[tokio::test]
async fn a_websocket_with_the_sid_of_a_websocket_session_is_closed() {
    let mut h = Harness::default_config();
    let addr = serve_tcp(&h.engine).await;
    let mut ws = ws_tcp(addr, "EIO=4&transport=websocket").await;
    let sid = ws_open_packet(&mut ws).await["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    h.next_open().await;
    let mut intruder = ws_tcp(addr, &format!("EIO=4&transport=websocket&sid={sid}")).await;
    ws_closed(&mut intruder).await;
    ws.send(WsMessage::text("4mine")).await.unwrap();
    assert_eq!(ws_next(&mut ws).await, Some(WsMessage::text("4mine")));
}

#[tokio::test]
async fn other_methods_on_a_session_get_500_as_node() {
    let mut h = Harness::default_config();
    let sid = h.handshake().await;
    for method in [Method::PUT, Method::DELETE, Method::OPTIONS] {
        let res = call(
            &h.engine,
            common::request(method.clone(), &poll_uri(&sid), "4x"),
        )
        .await;
        assert_eq!(res.status, StatusCode::INTERNAL_SERVER_ERROR, "{method}");
        assert!(res.body.is_empty(), "{method}: {res:?}");
    }
    // The session is untouched.
    h.assert_no_event();
    assert_eq!(post(&h.engine, &poll_uri(&sid), "4x").await.text(), "ok");
}

#[tokio::test]
async fn socket_close_delivers_queued_frames_then_the_close_packet() {
    let mut h = Harness::default_config();
    let socket = h.handshake_socket().await;
    let sid = socket.sid().to_owned();
    socket.send_text("a").unwrap();
    socket.send_binary(Bytes::from_static(&[1, 2, 3])).unwrap();
    socket.close();
    assert!(!socket.is_open());
    assert_eq!(
        socket.send_text("late"),
        Err(volley_engine::SendError::Closed)
    );

    // The queued frames first, then the close packet in an answer of its own, as Node:
    // in one payload the official client acts on the close before the packets before it.
    let res = get(&h.engine, &poll_uri(&sid)).await;
    assert_eq!(res.text(), "4a\x1ebAQID");
    let res = get(&h.engine, &poll_uri(&sid)).await;
    assert_eq!(res.text(), "1");
    assert_eq!(
        h.next_close().await,
        (sid.clone(), CloseReason::ForcedClose)
    );
    get(&h.engine, &poll_uri(&sid))
        .await
        .assert_error(400, 1, "Session ID unknown");
}

#[tokio::test]
async fn socket_close_on_websocket_sends_queued_frames_then_1_then_a_close_frame() {
    let mut h = Harness::default_config();
    let addr = serve_tcp(&h.engine).await;
    let mut ws = ws_tcp(addr, "EIO=4&transport=websocket").await;
    ws_open_packet(&mut ws).await;
    let socket = h.next_open().await;
    socket.send_text("a").unwrap();
    socket.send_text("b").unwrap();
    socket.close();
    assert_eq!(ws_next(&mut ws).await, Some(WsMessage::text("4a")));
    assert_eq!(ws_next(&mut ws).await, Some(WsMessage::text("4b")));
    assert_eq!(ws_next(&mut ws).await, Some(WsMessage::text("1")));
    ws_closed(&mut ws).await;
    assert_eq!(
        h.next_close().await,
        (socket.sid().to_owned(), CloseReason::ForcedClose)
    );
}

/// A polling session being closed waits for the client's next GET to hand it the close
/// packet. Its ping timer must not fire meanwhile: it once kept the driver looping without
/// ever yielding. Run on a runtime of its own in a thread, so that such a spin fails the test
/// instead of hanging it.
#[test]
fn a_closing_polling_session_waits_for_its_get_without_spinning() {
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(async {
            let mut h = Harness::new(
                EngineConfig::builder()
                    .ping_interval(Duration::from_secs(1))
                    .ping_timeout(Duration::from_secs(5))
                    .build(),
            );
            let socket = h.handshake_socket().await;
            let sid = socket.sid().to_owned();
            socket.send_text("bye").unwrap();
            socket.close();
            // Past pingInterval, before the close deadline (pingTimeout): nothing happens.
            let quiet = tokio::time::timeout(Duration::from_secs(3), h.events.recv()).await;
            assert!(quiet.is_err(), "{quiet:?}");
            let res = get(&h.engine, &poll_uri(&sid)).await;
            assert_eq!(res.text(), "4bye");
            let res = get(&h.engine, &poll_uri(&sid)).await;
            assert_eq!(res.text(), "1");
            assert_eq!(h.next_close().await, (sid, CloseReason::ForcedClose));
        });
        let _ = done_tx.send(());
    });
    match done_rx.recv_timeout(Duration::from_secs(30)) {
        Ok(()) => {}
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("the session driver spun without yielding")
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            panic!("the test failed in its thread (see the panic above)")
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_closing_polling_session_nobody_polls_ends_after_ping_timeout() {
    let mut h = Harness::default_config(); // pingInterval 25 s, pingTimeout 20 s
    let socket = h.handshake_socket().await;
    let start = tokio::time::Instant::now();
    socket.close();
    assert_eq!(
        h.next_close().await,
        (socket.sid().to_owned(), CloseReason::ForcedClose)
    );
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(20) && waited < Duration::from_secs(21),
        "{waited:?}"
    );
    assert_eq!(h.engine.session_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_flood_of_concurrent_gets_is_answered_and_ends_the_session() {
    let mut h = Harness::default_config();
    let sid = h.handshake().await;
    let uri = poll_uri(&sid);
    // 50 GETs at once: at most 8 wait for the session's driver, the others are refused at
    // once; none waits forever, and nothing grows with the flood.
    let answers = tokio::time::timeout(
        Duration::from_secs(10),
        futures_util::future::join_all((0..50).map(|_| get(&h.engine, &uri))),
    )
    .await
    .expect("every GET is answered");
    // As two overlapping GETs: the first parked one gets the close packet, the rest errors.
    let closes = answers
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .collect::<Vec<_>>();
    assert_eq!(closes.len(), 1, "{answers:?}");
    assert_eq!(closes[0].text(), "1");
    assert!(
        answers
            .iter()
            .filter(|r| r.status != StatusCode::OK)
            .all(|r| r.status == StatusCode::BAD_REQUEST),
        "{answers:?}"
    );
    assert_eq!(
        h.next_close().await,
        (sid.clone(), CloseReason::TransportError)
    );
    get(&h.engine, &uri)
        .await
        .assert_error(400, 1, "Session ID unknown");
}
