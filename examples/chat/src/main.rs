//! `cargo run --release --bin chat`: the chat on http://127.0.0.1:3000 (`PORT` changes the
//! port). `-- --redis redis://127.0.0.1:6379` makes it one node of a cluster: run several,
//! on several ports, and they share rooms, messages and the online count (through the same
//! Redis channels as Node's `@socket.io/redis-adapter`). See `lib.rs` for the app itself.
//!
//! The admin UI: `ADMIN_PASSWORD_HASH='<bcrypt hash>'` (and `ADMIN_USERNAME`, default
//! `admin`) serves `/admin` for the Socket.IO admin UI at https://admin.socket.io, or at
//! `ADMIN_UI_ORIGIN` (e.g. the npm package's `ui/dist` served on another port).

use std::io;
use std::process::ExitCode;

use volley_example_chat::{ADMIN_UI_ORIGIN, admin, router, socket_io_client, socket_io_for};
use volley_redis::{RedisAdapterConfig, RedisCluster};

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
    let adapter = match redis_url()? {
        Some(url) => {
            let cluster = RedisCluster::connect(&url, RedisAdapterConfig::default())
                .await
                .map_err(|e| io::Error::other(format!("cannot join the cluster at {url}: {e}")))?;
            println!("Volley chat: cluster on {url}");
            Some(cluster.factory())
        }
        None => None,
    };
    let origin = std::env::var("ADMIN_UI_ORIGIN").unwrap_or_else(|_| ADMIN_UI_ORIGIN.to_owned());
    let io = socket_io_for(adapter, &[&origin]);
    if let Ok(hash) = std::env::var("ADMIN_PASSWORD_HASH") {
        let user = std::env::var("ADMIN_USERNAME").unwrap_or_else(|_| "admin".to_owned());
        admin(&io, &user, &hash)
            .map_err(|e| io::Error::other(format!("ADMIN_PASSWORD_HASH: {e}")))?;
        println!("admin UI: namespace /admin, user {user:?}, for pages from {origin}");
    }
    let app = router(&io, client_js);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("Volley chat on http://{}", listener.local_addr()?);
    // With the peer address in each request, as `socket.handshake().address()` reads it.
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app).await
}

/// `--redis URL` (or `--redis=URL`) from the command line.
fn redis_url() -> io::Result<Option<String>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => Ok(None),
        [flag, url] if flag == "--redis" => Ok(Some(url.clone())),
        [arg] if arg.starts_with("--redis=") => Ok(Some(arg["--redis=".len()..].to_owned())),
        _ => Err(io::Error::other(
            "usage: chat [--redis redis://HOST:PORT]  (PORT=... sets the HTTP port)",
        )),
    }
}
