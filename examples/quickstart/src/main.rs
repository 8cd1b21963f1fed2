use axum::{Json, Router, routing::get};
use serde_json::json;
use volley::{AckSender, Cors, Data, Socket, SocketIo};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let io = SocketIo::builder()
        .cors(Cors::any()) // pages from other origins may connect; drop it for same-origin only
        .build();
    io.of("/").on_connection(|socket: Socket| async move {
        println!("connected: {}", socket.id());
        socket.on(
            "chat message",
            |socket: Socket, Data(msg): Data<String>, ack: AckSender| async move {
                let _ = socket.broadcast().emit("chat message", &msg); // to everyone else
                let _ = ack.send("received");
            },
        );
    });
    let app = Router::new()
        .route(
            "/api/hello",
            get(|| async { Json(json!({ "message": "Hello from axum" })) }),
        )
        .layer(io.layer()); // Socket.IO at /socket.io/, everything else to the Router
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await
}
