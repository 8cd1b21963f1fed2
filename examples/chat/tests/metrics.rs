//! The chat serves Volley's Prometheus text at `/metrics`, next to its other routes: after a
//! long-polling client joined `/chat`, the scrape shows it.

use axum::body::{Body, Bytes};
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;
use volley_example_chat::{router, socket_io};

/// One request through the app, in memory: status, content type and body.
async fn call(
    app: &axum::Router,
    method: Method,
    uri: &str,
    body: &str,
) -> (StatusCode, String, String) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, "text/plain;charset=UTF-8")
        .body(Body::from(body.to_owned()))
        .expect("a request");
    let res = app.clone().oneshot(req).await.expect("the router answers");
    let status = res.status();
    let kind = res
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().expect("ASCII").to_owned())
        .unwrap_or_default();
    let body = res.into_body().collect().await.expect("a body").to_bytes();
    (
        status,
        kind,
        String::from_utf8(body.to_vec()).expect("UTF-8"),
    )
}

#[tokio::test]
async fn metrics_show_a_client_of_the_chat() {
    let io = socket_io();
    let app = router(&io, Bytes::new());

    let (status, _, open) =
        call(&app, Method::GET, "/socket.io/?EIO=4&transport=polling", "").await;
    assert_eq!(status, StatusCode::OK, "{open}");
    let open: serde_json::Value = serde_json::from_str(&open[1..]).expect("the open packet");
    let poll = format!(
        "/socket.io/?EIO=4&transport=polling&sid={}",
        open["sid"].as_str().expect("a sid")
    );
    let connect = r#"40/chat,{"token":"secret","name":"ann"}"#;
    assert_eq!(call(&app, Method::POST, &poll, connect).await.2, "ok");
    // The CONNECT reply comes once the socket is in the namespace.
    let (_, _, reply) = call(&app, Method::GET, &poll, "").await;
    assert!(reply.starts_with("40/chat,"), "{reply}");

    let (status, kind, text) = call(&app, Method::GET, "/metrics", "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(kind.starts_with("application/openmetrics-text"), "{kind}");
    for line in [
        "volley_connections{transport=\"polling\"} 1",
        "volley_connections{transport=\"websocket\"} 0",
        "volley_sockets{namespace=\"/chat\"} 1",
        "volley_messages_received_total 1",
        &format!("volley_received_bytes_total {}", connect.len() - 1),
        "volley_connects_refused_total{reason=\"middleware\"} 0",
        "# TYPE volley_ack_latency_seconds histogram",
        "# EOF",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "no line {line:?} in:\n{text}"
        );
    }
    // The rest of the app is untouched.
    let (status, _, _) = call(&app, Method::GET, "/api/hello", "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        call(&app, Method::POST, "/metrics", "").await.0,
        StatusCode::METHOD_NOT_ALLOWED
    );
}
