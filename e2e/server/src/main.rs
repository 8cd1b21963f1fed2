//! `conformance-server`: what `../shared/conformance/SUITES.md` asks of a server under test.
//!
//! Listens on `127.0.0.1:$PORT` (default 3000) and serves a raw Engine.IO echo at
//! `/engine.io/` (pingInterval 300 ms, pingTimeout 200 ms, maxPayload 1,000,000).

use std::time::Duration;

use volley_engine::{Engine, EngineConfig, Frame, Message};

fn engine_echo() -> Engine {
    let config = EngineConfig::builder()
        .path("/engine.io/")
        .ping_interval(Duration::from_millis(300))
        .ping_timeout(Duration::from_millis(200))
        .max_payload(1_000_000)
        .build();
    Engine::new(config, |socket, mut incoming| async move {
        while let Ok(msg) = incoming.recv().await {
            let frame = match msg {
                Message::Text(t) => {
                    let mut b = Vec::with_capacity(t.len() + 1);
                    b.push(b'4');
                    b.extend_from_slice(&t);
                    Frame::Text(b.into())
                }
                Message::Binary(b) => Frame::Binary(b),
            };
            if socket.send(frame).is_err() {
                break;
            }
        }
    })
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    eprintln!("conformance-server listening on http://127.0.0.1:{port}");
    let engine = engine_echo();
    volley_engine::serve(listener, engine.service()).await
}
