//! What a Volley server does when Redis goes away and comes back: local delivery goes on
//! (broadcasts and acks of local clients), cluster requests fail at once with a clear
//! error, and after Redis returns the adapter resubscribes and counts servers again by
//! itself. Needs `redis-server` (the test starts it on a free loopback port).

mod common;

use std::time::Duration;

use common::{Redis, WAIT, adapter_stats, free_port, next_text, wait_until};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message as Ws;
use volley::{RawArgs, SocketIo};
use volley_redis::{RedisAdapterConfig, RedisCluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_keeps_local_delivery_fails_fast_and_heals() {
    let port = free_port();
    let redis = Redis::start(port);
    // The link notices the outage by its connections closing, not by a timeout: the command
    // timeout is long, so that a Redis slowed down by a busy machine is not taken for gone.
    let config = RedisAdapterConfig {
        command_timeout: WAIT,
        ping_interval: Duration::from_millis(500),
        max_backoff: Duration::from_millis(200),
        ..Default::default()
    };
    let cluster = RedisCluster::connect(&format!("redis://127.0.0.1:{port}"), config)
        .await
        .expect("connects");
    let io = SocketIo::builder().adapter(cluster.factory()).build();
    io.of("/").on_connection(|s: volley::Socket| async move {
        s.join("r");
    });
    cluster.ready(WAIT).await.unwrap();
    assert_eq!(io.server_count().await.unwrap(), 1);
    // The server's metrics show the link through the adapter.
    assert_eq!(adapter_stats(&io).link_up, Some(true));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(volley::serve(listener, io.service()));
    let (mut ws, _) = tokio_tungstenite::connect_async(format!(
        "ws://{addr}/socket.io/?EIO=4&transport=websocket"
    ))
    .await
    .unwrap();
    assert!(next_text(&mut ws).await.starts_with("0{"));
    ws.send(Ws::text("40")).await.unwrap();
    assert!(next_text(&mut ws).await.starts_with("40{"));

    // Redis goes away.
    drop(redis);
    wait_until("the adapter notices", || !cluster.is_connected()).await;
    assert_eq!(adapter_stats(&io).link_up, Some(false));

    // Cluster requests fail at once, with a clear error: "redis unavailable", not the
    // timeout of a request that waited (these timeouts are far longer than the test).
    let err = io.server_count().await.unwrap_err();
    assert!(err.to_string().contains("redis unavailable"), "{err}");
    let err = io.fetch_sockets().await.unwrap_err();
    assert!(err.to_string().contains("redis unavailable"), "{err}");
    let err = io.all_rooms().await.unwrap_err();
    assert!(err.to_string().contains("redis unavailable"), "{err}");
    let sse = io
        .of("/")
        .server_side_emit_with_ack::<RawArgs>("x", (), Duration::from_secs(3600))
        .await;
    match sse {
        Err(err) => assert!(err.to_string().contains("redis unavailable"), "{err}"),
        Ok(_) => panic!("a cluster request during the outage succeeded"),
    }

    // Local delivery goes on: broadcasts to all and to a room...
    io.emit("during-outage", "x").unwrap();
    assert_eq!(next_text(&mut ws).await, r#"42["during-outage","x"]"#);
    io.to("r").emit("room", &1).unwrap();
    assert_eq!(next_text(&mut ws).await, r#"42["room",1]"#);
    // ...and a broadcast with acks gets the local client's answer (as it arrives: a timeout
    // that only a bug reaches).
    let mut acks = io.timeout(WAIT).emit_with_ack::<String, _>("ask", "q");
    let ask = next_text(&mut ws).await;
    let id: String = ask[2..].chars().take_while(char::is_ascii_digit).collect();
    assert!(ask.ends_with(r#"["ask","q"]"#), "{ask}");
    ws.send(Ws::text(format!(r#"43{id}["a"]"#))).await.unwrap();
    let answer = tokio::time::timeout(WAIT, acks.next())
        .await
        .expect("the local answer")
        .expect("the stream is not over");
    assert_eq!(answer.result.as_deref().ok(), Some("a"), "{answer:?}");

    // Redis comes back on the same port: the adapter reconnects and resubscribes.
    let _redis = Redis::start(port);
    cluster
        .ready(WAIT)
        .await
        .expect("reconnected and resubscribed");
    assert_eq!(io.server_count().await.unwrap(), 1);
    let stats = cluster.stats();
    assert_eq!(stats.reconnects, 1, "{stats:?}");
    assert!(
        stats.dropped_outgoing >= 2,
        "publishes during the outage: {stats:?}"
    );
    assert_eq!(io.fetch_sockets().await.unwrap().len(), 1);
    let back = adapter_stats(&io);
    assert_eq!(back.link_up, Some(true));
    assert_eq!(back.reconnects_total, 1);
    assert_eq!(back.dropped_outgoing_total, stats.dropped_outgoing);
    // The client joined "r": one room besides its own.
    assert_eq!(back.rooms, Some(1));

    server.abort();
    cluster.close();
}
