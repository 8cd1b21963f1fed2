//! socketioxide server for `sio-modes` (bench/src/bin/sio-modes.rs): the handlers of the
//! shared harness's socketioxide peer (shared/bench/peers/socketioxide/src/main.rs) plus
//! `serverack`. Built by bench/scripts/server-ack.sh as a second binary of a copy of that
//! peer's package (same Cargo.lock), so it is not a member of this workspace.
//!   'echo'      -> socket.emit('echo', data)
//!   'ack'       -> ack(data)
//!   'broadcast' -> io.emit('broadcast', data)
//!   'serverack' {inflight, data} -> keeps `inflight` socket.emit_with_ack('sack', data) in
//!                  flight, each followed by the next when its ack arrives, until one fails
//! Listens on 127.0.0.1:$PORT (default 3000). Default socketioxide config.
use axum::serve::ListenerExt;
use serde_json::Value;
use socketioxide::{
    extract::{AckSender, Data, SocketRef},
    SocketIo,
};

async fn on_connect(socket: SocketRef) {
    socket.on("echo", |s: SocketRef, Data::<Value>(data)| async move {
        let _ = s.emit("echo", &data);
    });
    socket.on("ack", |Data::<Value>(data), ack: AckSender| async move {
        let _ = ack.send(&data);
    });
    socket.on("broadcast", |io: SocketIo, Data::<Value>(data)| async move {
        let _ = io.emit("broadcast", &data).await;
    });
    socket.on("serverack", |s: SocketRef, Data::<Value>(opts)| async move {
        let inflight = opts.get("inflight").and_then(Value::as_u64).unwrap_or(1);
        let data = opts.get("data").cloned().unwrap_or(Value::Null);
        for _ in 0..inflight {
            let (s, data) = (s.clone(), data.clone());
            tokio::spawn(async move {
                while let Ok(ack) = s.emit_with_ack::<_, Value>("sack", &data) {
                    if ack.await.is_err() {
                        break;
                    }
                }
            });
        }
    });
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(3000);
    let (layer, io) = SocketIo::new_layer();
    io.ns("/", on_connect);
    let app = axum::Router::new().layer(layer);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await?
        .tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
    eprintln!("socketioxide modes peer listening on 127.0.0.1:{port}");
    axum::serve(listener, app).await?;
    Ok(())
}
