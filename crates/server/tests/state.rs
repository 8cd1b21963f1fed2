//! Application state in handlers: `SocketIoBuilder::state` and the `State<T>` extractor, with
//! chainable `Socket::on` and extractors in any order.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use common::*;
use serde_json::json;
use volley::{AckSender, Data, RawArgs, Socket, SocketIo, State};

#[derive(Clone, Default)]
struct Counter(Arc<AtomicU64>);

#[tokio::test]
async fn handlers_receive_the_builders_state() {
    let counter = Counter::default();
    let io = SocketIo::builder()
        .state(counter.clone())
        .state(String::from("v1"))
        .build();
    let seen = counter.clone();
    io.of("/").on_connection(move |socket: Socket| {
        let seen = seen.clone();
        async move {
        socket
            .on(
                "add",
                |_: Socket, State(c): State<Counter>, Data(n): Data<u64>, ack: AckSender| async move {
                    let total = c.0.fetch_add(n, Ordering::SeqCst) + n;
                    let _ = ack.send(&total);
                },
            )
            .on(
                "version",
                |_: Socket, ack: AckSender, State(v): State<String>| async move {
                    let _ = ack.send(&v);
                },
            )
            .on("missing", move |_: Socket, State(_): State<u8>| {
                let seen = seen.clone();
                async move {
                    seen.0.fetch_add(100, Ordering::SeqCst);
                }
            })
            .on("raw", |_: Socket, raw: RawArgs, ack: AckSender| async move {
                let _ = ack.send_args(raw);
            });
        }
    });
    let srv = start(io).await;
    let mut client = srv.client_in("/").await;

    assert_eq!(
        client.emit_with_ack("/", "add", json!([2])).await,
        [json!(2)]
    );
    assert_eq!(
        client.emit_with_ack("/", "add", json!([3])).await,
        [json!(5)]
    );
    assert_eq!(counter.0.load(Ordering::SeqCst), 5);
    assert_eq!(
        client.emit_with_ack("/", "version", json!([])).await,
        [json!("v1")]
    );
    assert_eq!(
        client
            .emit_with_ack("/", "raw", json!([1, {"a": "b"}]))
            .await,
        [json!(1), json!({"a": "b"})]
    );
    // A handler whose state was not given does not run: no answer comes.
    client.emit("/", "missing", json!([]));
    assert_eq!(
        client.emit_with_ack("/", "version", json!([])).await,
        [json!("v1")]
    );
}

/// Middleware and `on_connection` take a plain `Socket`: `Socket::app_state` gives them the
/// builder's state, as `State<T>` does for event handlers.
#[tokio::test]
async fn middleware_and_on_connection_read_the_state() {
    #[derive(Clone)]
    struct Banned(Vec<&'static str>);
    #[derive(Clone)]
    struct Motd(&'static str);

    let io = SocketIo::builder()
        .state(Banned(vec!["mallory"]))
        .state(Motd("hello"))
        .build();
    io.of("/")
        .middleware(|socket: Socket| async move {
            let name = socket.handshake().auth()["name"].clone();
            let banned = socket.app_state::<Banned>().expect("the builder's state");
            match banned.0.iter().any(|b| name == *b) {
                true => Err(volley::ConnectError::new("banned")),
                false => Ok(()),
            }
        })
        .on_connection(|socket: Socket| async move {
            let motd = socket.app_state::<Motd>().map(|m| m.0);
            // State of a type nobody gave: none.
            let missing = socket.app_state::<u8>();
            let _ = socket.emit("motd", &json!({ "motd": motd, "missing": missing }));
        });
    let srv = start(io).await;

    let mut refused = srv.client().await;
    let err = refused
        .try_join("/", Some(json!({ "name": "mallory" })))
        .await
        .unwrap_err();
    assert_eq!(err["message"], "banned");

    let mut client = srv.client().await;
    client
        .try_join("/", Some(json!({ "name": "alice" })))
        .await
        .expect("alice is not banned");
    let motd = client.expect_next_event("/", "motd").await;
    assert_eq!(motd.args, [json!({ "motd": "hello", "missing": null })]);
}
