//! `conformance-server`: what `../shared/conformance/SUITES.md` asks of a server under test.
//!
//! Listens on `127.0.0.1:$PORT` (default 3000) and serves, with pingInterval 300 ms,
//! pingTimeout 200 ms and maxPayload 1,000,000:
//! - `/engine.io/`: a raw Engine.IO echo (section 2);
//! - `/socket.io/`: Socket.IO with namespaces `/` and `/custom`, handlers H1-H5 (sections 3
//!   and 4), connectTimeout 1 s.
//!
//! Optional modes (SUITES.md section 6; an unknown mode or value fails at start):
//! `RECOVERY=1` turns connection state recovery on (2-minute window, middlewares skipped);
//! a recovered socket gets no second `auth` event, and `recovery:state` (with an ack)
//! answers `{id, recovered, rooms}` (rooms sorted) on `/` and `/custom`. `PARSER=msgpack`
//! speaks `socket.io-msgpack-parser` 3.x on `/socket.io/`, same handlers. `ALLOW_EIO3=1`
//! also accepts Engine.IO v3 clients (socket.io-client 2.x) on `/socket.io/`. `ADMIN=1`
//! serves the `@socket.io/admin-ui` server side on `/admin` (`volley-admin`, no auth,
//! development mode; server id `SERVER_NAME` when set, else the host name) with CORS
//! mirroring any origin, with credentials, so the UI served from another port connects.
//!
//! With `REDIS_URL` set it also joins a Redis cluster (`../shared/conformance/CLUSTER.md`):
//! every namespace uses `volley-redis` (`REDIS_ADAPTER=classic|sharded|streams`, `SERVER_NAME`), and
//! `/` and `/chat` serve the cluster handlers (see `cluster.rs`).

use volley_conformance_server::cluster;
use volley_conformance_server::modes::Modes;

use std::time::Duration;

use tower_layer::Layer;
use volley::{AckSender, ConnectionStateRecovery, RawArgs, Socket, SocketIo};
use volley_admin::{AdminOptions, Auth, Mode};
use volley_engine::{Engine, EngineConfig, Frame, Message};

const PING_INTERVAL: Duration = Duration::from_millis(300);
const PING_TIMEOUT: Duration = Duration::from_millis(200);
const MAX_PAYLOAD: usize = 1_000_000;

fn engine_echo() -> Engine {
    let config = EngineConfig::builder()
        .path("/engine.io/")
        .ping_interval(PING_INTERVAL)
        .ping_timeout(PING_TIMEOUT)
        .max_payload(MAX_PAYLOAD)
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

/// H1-H5 of SUITES.md, the same on `/` and `/custom`.
async fn on_connection(socket: Socket) {
    // H1: the CONNECT payload back as "auth" (not again on a recovered socket: its missed
    // packets are replayed instead).
    if !socket.recovered() {
        let _ = socket.emit("auth", socket.handshake().auth());
    }
    // RECOVERY=1: the socket's state, rooms sorted.
    socket.on(
        "recovery:state",
        |socket: Socket, ack: AckSender| async move {
            let mut rooms: Vec<String> = socket.rooms().iter().map(|r| r.to_string()).collect();
            rooms.sort();
            let _ = ack.send(&serde_json::json!({
                "id": socket.id().as_str(),
                "recovered": socket.recovered(),
                "rooms": rooms,
            }));
        },
    );
    // H2: "message" -> "message-back" with the same arguments, binary kept.
    socket.on("message", |socket: Socket, args: RawArgs| async move {
        let _ = socket.emit_args("message-back", args);
    });
    // H3: "message-with-ack" -> acknowledged with the same arguments.
    socket.on(
        "message-with-ack",
        |_: Socket, args: RawArgs, ack: AckSender| async move {
            let _ = ack.send_args(args);
        },
    );
    // H5: "emit-with-ack" -> the same arguments back, asking for an ack; the client's ack
    // arguments come back as another "emit-with-ack".
    socket.on(
        "emit-with-ack",
        |socket: Socket, args: RawArgs| async move {
            let reply = socket
                .timeout(Duration::from_secs(5))
                .emit_args_with_ack::<RawArgs>("emit-with-ack", args)
                .await;
            if let Ok(reply) = reply {
                let _ = socket.emit_args("emit-with-ack", reply);
            }
        },
    );
}

fn socket_io(modes: Modes, adapter: Option<volley::adapter::AdapterFactory>) -> SocketIo {
    let mut builder = SocketIo::builder()
        .ping_interval(PING_INTERVAL)
        .ping_timeout(PING_TIMEOUT)
        .max_payload(MAX_PAYLOAD)
        .connect_timeout(Duration::from_secs(1));
    if let Some(factory) = adapter {
        builder = builder.adapter(factory);
    }
    if modes.msgpack {
        builder = builder.parser(volley::Parser::MsgPack);
    }
    if modes.allow_eio3 {
        // Node's allowEIO3: true (socket.io-client 2.x).
        builder = builder.allow_eio3(true);
    }
    if modes.admin {
        // Node's cors: { origin: true, credentials: true }
        builder = builder.cors(volley::Cors::new(volley::AllowOrigin::Mirror).credentials(true));
    }
    if modes.recovery {
        // Node's connectionStateRecovery: { maxDisconnectionDuration: 120000, skipMiddlewares: true }
        builder = builder.connection_state_recovery(
            ConnectionStateRecovery::default()
                .max_disconnection_duration(Duration::from_secs(120))
                .skip_middlewares(true),
        );
    }
    let io = builder.build();
    if modes.admin {
        // Node's instrument(io, { auth: false, mode: "development" })
        let mut options = AdminOptions::new(Auth::None).mode(Mode::Development);
        if let Ok(name) = std::env::var("SERVER_NAME") {
            options = options.server_id(name);
        }
        if let Err(e) = volley_admin::instrument(&io, options) {
            eprintln!("conformance-server: ADMIN=1: {e}");
            std::process::exit(2);
        }
    }
    io.of("/").on_connection(on_connection);
    io.of("/custom").on_connection(on_connection);
    io
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let modes = Modes::from_env().map_err(|e| {
        eprintln!("conformance-server: {e}");
        std::io::Error::new(std::io::ErrorKind::InvalidInput, e)
    })?;
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let cluster_env = cluster::ClusterEnv::from_env(port).map_err(std::io::Error::other)?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    eprintln!("conformance-server listening on http://127.0.0.1:{port}");
    let engine = engine_echo();
    let io = match cluster_env {
        None => {
            let io = socket_io(modes, None);
            // SUITES.md section 6: the cluster handlers on "/" always, on one server too
            // (the checks of the optional modes use them).
            let base: cluster::BaseHandler = std::sync::Arc::new(|s| Box::pin(on_connection(s)));
            let name = std::env::var("SERVER_NAME").unwrap_or_else(|_| format!("volley-{port}"));
            cluster::install(&io.of("/"), &name, Some(base));
            io
        }
        Some(env) => {
            let redis = env.connect().await.map_err(|e| {
                std::io::Error::other(format!("cannot join the cluster at {}: {e}", env.url))
            })?;
            let io = socket_io(modes, Some(redis.factory()));
            // "/" serves H1-H5 and the cluster handlers, as ref-node; "/chat" only the latter.
            let base: cluster::BaseHandler = std::sync::Arc::new(|s| Box::pin(on_connection(s)));
            cluster::install(&io.of("/"), &env.name, Some(base));
            cluster::install(&io.of("/chat"), &env.name, None);
            redis
                .ready(Duration::from_secs(10))
                .await
                .map_err(|e| std::io::Error::other(format!("cluster not ready: {e}")))?;
            eprintln!(
                "conformance-server: {:?} redis adapter on {} as {} (uid {})",
                env.config.mode,
                env.url,
                env.name,
                redis.uid()
            );
            io
        }
    };
    let service = io.layer().layer(engine.service());
    volley::serve(listener, service).await
}
