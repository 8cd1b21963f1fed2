//! The engine as a tower service, called in memory: handshakes, long-polling, error answers,
//! CORS, the session cookie and the connection limit, checked against what Node's `engine.io`
//! 6.6 answers.

mod common;

use std::convert::Infallible;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use common::{Harness, Res, call, get, open_packet, poll_uri, post, request};
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt as _, Full};
use tower::{Layer as _, ServiceExt as _};
use volley_engine::{
    AllowOrigin, BoxFuture, CloseReason, Cookie, Cors, EngineConfig, Message, RequestInfo,
};

const HANDSHAKE: &str = "/engine.io/?EIO=4&transport=polling";

#[tokio::test]
async fn polling_handshake_sends_exactly_the_open_packet() {
    let mut h = Harness::default_config();
    let res = get(&h.engine, HANDSHAKE).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(
        res.header(header::CONTENT_TYPE),
        Some("text/plain; charset=UTF-8")
    );
    let open = open_packet(&res.body);
    let mut keys: Vec<&str> = open
        .as_object()
        .expect("an object")
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
    assert_eq!(open["upgrades"], serde_json::json!(["websocket"]));
    assert_eq!(open["pingInterval"], 25_000);
    assert_eq!(open["pingTimeout"], 20_000);
    assert_eq!(open["maxPayload"], 1_000_000);

    let sid = open["sid"].as_str().expect("sid is a string");
    assert_eq!(sid.len(), 22, "sid {sid}");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(sid)
        .expect("sid is base64url without padding");
    assert!(raw.len() * 8 >= 120, "sid has only {} bits", raw.len() * 8);
    assert_eq!(h.next_open().await.sid(), sid);
    assert_eq!(h.engine.session_count(), 1);

    // No cookie unless configured, as Node.
    assert!(res.headers.get(header::SET_COOKIE).is_none());
}

#[tokio::test]
async fn handshake_advertises_the_configured_values() {
    let config = EngineConfig::builder()
        .ping_interval(Duration::from_millis(300))
        .ping_timeout(Duration::from_millis(200))
        .max_payload(1234)
        .allow_upgrades(false)
        .build();
    let h = Harness::new(config);
    let open = open_packet(&get(&h.engine, HANDSHAKE).await.body);
    assert_eq!(open["pingInterval"], 300);
    assert_eq!(open["pingTimeout"], 200);
    assert_eq!(open["maxPayload"], 1234);
    assert_eq!(open["upgrades"], serde_json::json!([]));
}

#[tokio::test]
async fn sids_differ_between_sessions() {
    let mut h = Harness::default_config();
    let a = h.handshake().await;
    let b = h.handshake().await;
    assert_ne!(a, b);
    assert_eq!(h.engine.session_count(), 2);
}

#[tokio::test]
async fn get_returns_queued_messages_batched_with_record_separators() {
    let mut h = Harness::default_config();
    let res = get(&h.engine, HANDSHAKE).await;
    let sid = open_packet(&res.body)["sid"].as_str().unwrap().to_owned();
    let socket = h.next_open().await;
    socket.send_text("a").unwrap();
    socket.send_text("b").unwrap();
    socket.send_binary(Bytes::from_static(&[1, 2, 3])).unwrap();
    assert_eq!(socket.queued(), 3);

    let res = get(&h.engine, &poll_uri(&sid)).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(
        res.header(header::CONTENT_TYPE),
        Some("text/plain; charset=UTF-8")
    );
    assert_eq!(res.text(), "4a\x1e4b\x1ebAQID");
    assert_eq!(socket.queued(), 0);
}

// The paused clock only moves when every task waits: once the timeout below has elapsed, the
// GET has reached the session and is parked there.
#[tokio::test(start_paused = true)]
async fn a_parked_get_is_answered_when_a_message_is_queued() {
    let mut h = Harness::default_config();
    let res = get(&h.engine, HANDSHAKE).await;
    let sid = open_packet(&res.body)["sid"].as_str().unwrap().to_owned();
    let socket = h.next_open().await;

    let engine = h.engine.clone();
    let uri = poll_uri(&sid);
    let mut pending = tokio::spawn(async move { get(&engine, &uri).await });
    let waited = tokio::time::timeout(Duration::from_secs(1), &mut pending).await;
    assert!(waited.is_err(), "the GET was answered with nothing queued");
    socket.send_text("late").unwrap();
    let res = pending.await.unwrap();
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.text(), "4late");
}

#[tokio::test]
async fn post_message_is_acknowledged_with_ok_and_reaches_the_handler() {
    let mut h = Harness::default_config();
    let sid = h.handshake().await;
    let res = post(&h.engine, &poll_uri(&sid), "4hello").await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.text(), "ok");
    assert_eq!(res.header(header::CONTENT_TYPE), Some("text/html"));
    assert_eq!(
        h.next_message().await,
        (sid.clone(), Message::Text(Bytes::from_static(b"hello")))
    );
    // The echo comes back on the next GET.
    assert_eq!(get(&h.engine, &poll_uri(&sid)).await.text(), "4hello");
}

#[tokio::test]
async fn several_packets_in_one_post_arrive_in_order() {
    let mut h = Harness::default_config();
    let sid = h.handshake().await;
    let res = post(&h.engine, &poll_uri(&sid), "4test1\x1e4test2\x1e4test3").await;
    assert_eq!(res.text(), "ok");
    for expected in ["test1", "test2", "test3"] {
        let (_, m) = h.next_message().await;
        assert_eq!(m, Message::Text(Bytes::from(expected)));
    }
    assert_eq!(
        get(&h.engine, &poll_uri(&sid)).await.text(),
        "4test1\x1e4test2\x1e4test3"
    );
}

#[tokio::test]
async fn binary_messages_travel_as_base64_both_ways() {
    let mut h = Harness::default_config();
    let sid = h.handshake().await;
    let res = post(&h.engine, &poll_uri(&sid), "4hello\x1ebAQIDBA==").await;
    assert_eq!(res.text(), "ok");
    assert_eq!(
        h.next_message().await.1,
        Message::Text(Bytes::from_static(b"hello"))
    );
    assert_eq!(
        h.next_message().await.1,
        Message::Binary(Bytes::from_static(&[1, 2, 3, 4]))
    );
    assert_eq!(
        get(&h.engine, &poll_uri(&sid)).await.text(),
        "4hello\x1ebAQIDBA=="
    );
}

// Error answers, byte for byte as Node's engine.io 6.6 sends them.

#[tokio::test]
async fn error_0_transport_unknown() {
    let h = Harness::default_config();
    for uri in [
        "/engine.io/",
        "/engine.io/?EIO=4",
        "/engine.io/?EIO=4&transport=tobi",
        "/engine.io/?EIO=4&transport=",
    ] {
        get(&h.engine, uri)
            .await
            .assert_error(400, 0, "Transport unknown");
    }
}

#[tokio::test]
async fn error_0_for_a_transport_that_is_turned_off() {
    let config = EngineConfig::builder()
        .transports(&[volley_engine::TransportKind::WebSocket])
        .build();
    let h = Harness::new(config);
    get(&h.engine, HANDSHAKE)
        .await
        .assert_error(400, 0, "Transport unknown");
}

#[tokio::test]
async fn error_1_session_id_unknown() {
    let h = Harness::default_config();
    get(&h.engine, &poll_uri("nope"))
        .await
        .assert_error(400, 1, "Session ID unknown");
    post(&h.engine, &poll_uri("nope"), "4hello")
        .await
        .assert_error(400, 1, "Session ID unknown");
}

#[tokio::test]
async fn error_2_bad_handshake_method() {
    let h = Harness::default_config();
    for method in [Method::POST, Method::PUT, Method::DELETE] {
        call(&h.engine, request(method, HANDSHAKE, "4hello"))
            .await
            .assert_error(400, 2, "Bad handshake method");
    }
    assert_eq!(h.engine.session_count(), 0);
}

#[tokio::test]
async fn error_3_bad_request_for_a_websocket_handshake_without_upgrade() {
    let h = Harness::default_config();
    get(&h.engine, "/engine.io/?EIO=4&transport=websocket")
        .await
        .assert_error(400, 3, "Bad request");
}

#[tokio::test]
async fn error_3_bad_request_for_a_polling_sid_on_the_websocket_transport() {
    let mut h = Harness::default_config();
    let sid = h.handshake().await;
    // Node: TRANSPORT_MISMATCH.
    get(
        &h.engine,
        &format!("/engine.io/?EIO=4&transport=websocket&sid={sid}"),
    )
    .await
    .assert_error(400, 3, "Bad request");
    // The session is untouched.
    assert_eq!(post(&h.engine, &poll_uri(&sid), "4x").await.text(), "ok");
}

fn deny_nope(_: &RequestInfo) -> BoxFuture<'_, Result<(), String>> {
    Box::pin(async { Err("nope".to_owned()) })
}

fn deny_silently(_: &RequestInfo) -> BoxFuture<'_, Result<(), String>> {
    Box::pin(async { Err(String::new()) })
}

fn allow_with_header(req: &RequestInfo) -> BoxFuture<'_, Result<(), String>> {
    Box::pin(async move {
        match req.headers.get("x-token") {
            Some(v) if v == "secret" => Ok(()),
            _ => Err("bad token".to_owned()),
        }
    })
}

#[tokio::test]
async fn error_4_forbidden_carries_the_hook_message() {
    let h = Harness::new(EngineConfig::builder().allow_request(deny_nope).build());
    get(&h.engine, HANDSHAKE).await.assert_error(403, 4, "nope");
    // Node runs allowRequest before the protocol check.
    get(&h.engine, "/engine.io/?EIO=3&transport=polling")
        .await
        .assert_error(403, 4, "nope");
    assert_eq!(h.engine.session_count(), 0);

    let h = Harness::new(EngineConfig::builder().allow_request(deny_silently).build());
    get(&h.engine, HANDSHAKE)
        .await
        .assert_error(403, 4, "Forbidden");
}

#[tokio::test]
async fn allow_request_sees_the_handshake_request() {
    let mut h = Harness::new(
        EngineConfig::builder()
            .allow_request(allow_with_header)
            .build(),
    );
    get(&h.engine, HANDSHAKE)
        .await
        .assert_error(403, 4, "bad token");
    let req = Request::builder()
        .uri(HANDSHAKE)
        .header("x-token", "secret")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let res = call(&h.engine, req).await;
    assert_eq!(res.status, StatusCode::OK);
    let socket = h.next_open().await;
    assert_eq!(socket.request().headers["x-token"], "secret");
}

#[tokio::test]
async fn error_5_unsupported_protocol_version() {
    let h = Harness::default_config();
    for uri in [
        "/engine.io/?transport=polling",
        "/engine.io/?EIO=3&transport=polling",
        "/engine.io/?EIO=abc&transport=polling",
        "/engine.io/?EIO=5&transport=polling",
    ] {
        get(&h.engine, uri)
            .await
            .assert_error(400, 5, "Unsupported protocol version");
    }
    assert_eq!(h.engine.session_count(), 0);
}

#[tokio::test]
async fn paths_outside_the_engine_get_404() {
    let h = Harness::default_config();
    for uri in [
        "/",
        "/other",
        "/socket.io/?EIO=4&transport=polling",
        "/engine.ioo/",
    ] {
        let res = get(&h.engine, uri).await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{uri}");
        assert!(res.body.is_empty());
    }
    assert_eq!(h.engine.session_count(), 0);
}

#[tokio::test]
async fn a_custom_path_is_served_and_the_default_is_not() {
    let h = Harness::new(EngineConfig::builder().path("/rt").build());
    assert_eq!(h.engine.config().path(), "/rt/");
    let res = get(&h.engine, "/rt/?EIO=4&transport=polling").await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(
        get(&h.engine, HANDSHAKE).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_layer_passes_other_paths_to_the_inner_service() {
    let mut h = Harness::default_config();
    let inner = tower::service_fn(|req: Request<Full<Bytes>>| async move {
        let body = format!("inner {} {}", req.method(), req.uri().path());
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
    });
    let service = h.engine.layer().layer(inner);

    let res = service
        .clone()
        .oneshot(request(Method::POST, "/api/items", "x"))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "inner POST /api/items");

    // The engine's own path still goes to the engine.
    let res = service
        .oneshot(request(Method::GET, HANDSHAKE, Bytes::new()))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert!(body.starts_with(b"0{\"sid\":"), "{body:?}");
    h.next_open().await;
}

fn cors_config() -> EngineConfig {
    EngineConfig::builder()
        .cors(
            Cors::new(AllowOrigin::List(vec![http::HeaderValue::from_static(
                "https://a.example",
            )]))
            .credentials(true),
        )
        .build()
}

#[tokio::test]
async fn cors_preflight_is_answered_when_configured() {
    let h = Harness::new(cors_config());
    let req = Request::builder()
        .method(Method::OPTIONS)
        .uri(HANDSHAKE)
        .header(header::ORIGIN, "https://a.example")
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "content-type")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let res = call(&h.engine, req).await;
    // As Node's `cors` middleware answers it.
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    assert!(res.body.is_empty());
    assert_eq!(
        res.header(header::ACCESS_CONTROL_ALLOW_ORIGIN),
        Some("https://a.example")
    );
    assert_eq!(
        res.header(header::ACCESS_CONTROL_ALLOW_CREDENTIALS),
        Some("true")
    );
    assert_eq!(
        res.header(header::ACCESS_CONTROL_ALLOW_METHODS),
        Some("GET,HEAD,PUT,PATCH,POST,DELETE")
    );
    assert_eq!(
        res.header(header::ACCESS_CONTROL_ALLOW_HEADERS),
        Some("content-type")
    );
    assert_eq!(res.header(header::CONTENT_LENGTH), Some("0"));
    assert!(
        res.headers
            .get_all(header::VARY)
            .iter()
            .any(|v| v.to_str().unwrap().contains("Origin"))
    );
    // A preflight opens no session.
    assert_eq!(h.engine.session_count(), 0);
}

#[tokio::test]
async fn cors_headers_are_added_to_answers_and_errors_when_configured() {
    let mut h = Harness::new(cors_config());
    let with_origin = |uri: &str, origin: &'static str| {
        Request::builder()
            .uri(uri)
            .header(header::ORIGIN, origin)
            .body(Full::new(Bytes::new()))
            .unwrap()
    };
    let res = call(&h.engine, with_origin(HANDSHAKE, "https://a.example")).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(
        res.header(header::ACCESS_CONTROL_ALLOW_ORIGIN),
        Some("https://a.example")
    );
    assert_eq!(
        res.header(header::ACCESS_CONTROL_ALLOW_CREDENTIALS),
        Some("true")
    );
    h.next_open().await;

    let res = call(
        &h.engine,
        with_origin("/engine.io/?EIO=4&transport=tobi", "https://a.example"),
    )
    .await;
    res.assert_error(400, 0, "Transport unknown");
    assert_eq!(
        res.header(header::ACCESS_CONTROL_ALLOW_ORIGIN),
        Some("https://a.example")
    );

    // An origin outside the list is not allowed.
    let res = call(&h.engine, with_origin(HANDSHAKE, "https://evil.example")).await;
    assert!(
        res.headers
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none()
    );
    h.next_open().await;
}

#[tokio::test]
async fn cors_any_origin_sends_a_star() {
    let mut h = Harness::new(EngineConfig::builder().cors(Cors::any()).build());
    let req = Request::builder()
        .uri(HANDSHAKE)
        .header(header::ORIGIN, "https://b.example")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let res = call(&h.engine, req).await;
    assert_eq!(res.header(header::ACCESS_CONTROL_ALLOW_ORIGIN), Some("*"));
    assert!(
        res.headers
            .get(header::ACCESS_CONTROL_ALLOW_CREDENTIALS)
            .is_none()
    );
    h.next_open().await;
}

fn has_cors_header(res: &Res) -> bool {
    res.headers
        .keys()
        .any(|k| k.as_str().starts_with("access-control-"))
}

#[tokio::test]
async fn no_cors_headers_and_no_preflight_when_not_configured() {
    let mut h = Harness::default_config();
    let req = Request::builder()
        .uri(HANDSHAKE)
        .header(header::ORIGIN, "https://a.example")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let res = call(&h.engine, req).await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(!has_cors_header(&res), "{res:?}");
    let sid = open_packet(&res.body)["sid"].as_str().unwrap().to_owned();
    h.next_open().await;

    // Node without `cors`: an OPTIONS handshake is a bad handshake method...
    let req = Request::builder()
        .method(Method::OPTIONS)
        .uri(HANDSHAKE)
        .header(header::ORIGIN, "https://a.example")
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let res = call(&h.engine, req).await;
    res.assert_error(400, 2, "Bad handshake method");
    assert!(!has_cors_header(&res), "{res:?}");

    // ...and an OPTIONS on a session is answered 500 with an empty body by its transport.
    let res = call(
        &h.engine,
        request(Method::OPTIONS, &poll_uri(&sid), Bytes::new()),
    )
    .await;
    assert_eq!(res.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(res.body.is_empty(), "{res:?}");
    assert!(!has_cors_header(&res), "{res:?}");
    // The session lives on.
    assert_eq!(post(&h.engine, &poll_uri(&sid), "4x").await.text(), "ok");
}

#[tokio::test]
async fn the_io_cookie_is_set_when_configured() {
    let mut h = Harness::new(EngineConfig::builder().cookie(Cookie::default()).build());
    let res = get(&h.engine, HANDSHAKE).await;
    let sid = open_packet(&res.body)["sid"].as_str().unwrap().to_owned();
    // Node's `cookie: true`.
    assert_eq!(
        res.header(header::SET_COOKIE),
        Some(format!("io={sid}; Path=/; HttpOnly; SameSite=Lax").as_str())
    );
    h.next_open().await;
    // Only on the handshake.
    let res = post(&h.engine, &poll_uri(&sid), "4x").await;
    assert!(res.headers.get(header::SET_COOKIE).is_none());

    let mut h = Harness::new(
        EngineConfig::builder()
            .cookie(Cookie {
                name: "sess".into(),
                path: "/app".into(),
                http_only: false,
                same_site: "Strict".into(),
            })
            .build(),
    );
    let res = get(&h.engine, HANDSHAKE).await;
    let sid = open_packet(&res.body)["sid"].as_str().unwrap().to_owned();
    assert_eq!(
        res.header(header::SET_COOKIE),
        Some(format!("sess={sid}; Path=/app; SameSite=Strict").as_str())
    );
    h.next_open().await;
}

#[tokio::test]
async fn max_connections_refuses_handshakes_with_503() {
    let mut h = Harness::new(EngineConfig::builder().max_connections(2).build());
    let a = h.handshake().await;
    let _b = h.handshake().await;
    let res = get(&h.engine, HANDSHAKE).await;
    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.header(header::CONTENT_TYPE), Some("application/json"));
    h.assert_no_event();
    assert_eq!(h.engine.session_count(), 2);

    // Requests on open sessions still work, and a closed session frees its place.
    assert_eq!(post(&h.engine, &poll_uri(&a), "1").await.text(), "ok");
    assert_eq!(h.next_close().await, (a, CloseReason::TransportClose));
    // (Waiting for the close event above means the driver has ended the session.)
    let res = get(&h.engine, HANDSHAKE).await;
    assert_eq!(res.status, StatusCode::OK);
}
