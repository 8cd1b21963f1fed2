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
