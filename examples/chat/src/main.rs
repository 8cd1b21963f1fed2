//! `cargo run --release --bin chat`: the chat on http://127.0.0.1:3000 (`PORT` changes the
//! port). See `lib.rs` for the app itself.

use std::io;
use std::process::ExitCode;

use volley_example_chat::{router, socket_io, socket_io_client};

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chat: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> io::Result<()> {
    let port: u16 = match std::env::var("PORT") {
        Ok(p) => p
            .parse()
            .map_err(|_| io::Error::other(format!("bad PORT {p:?}")))?,
        Err(_) => 3000,
    };
    let client_js = socket_io_client()?;
    let io = socket_io();
    let app = router(&io, client_js);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("Volley chat on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await
}
