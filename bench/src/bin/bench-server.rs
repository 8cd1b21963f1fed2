//! The Volley server for the shared benchmark harness (`shared/bench`).
//!
//! Same handlers as every peer there (`peers/node/server.js`):
//! - `echo` → `socket.emit("echo", data)`
//! - `ack` → `ack(data)`
//! - `broadcast` → `io.emit("broadcast", data)`, to every socket, the sender included
//!
//! and one more, for `sio-modes server-ack` (not in the shared harness):
//! - `serverack` with `{"inflight": F, "data": D}` → keeps `F` `socket.emit_with_ack("sack",
//!   D)` in flight on that socket, each followed by the next as soon as its ack arrives, until
//!   the socket is gone
//!
//! Default configuration, the default multi-thread runtime, served with [`volley::serve`] on
//! `127.0.0.1:$PORT` (default 3000).
//!
//! By default the handlers take `Data<serde_json::Value>`, what a user writing an echo server
//! would write (and what the socketioxide peer uses). With `--raw` they take
//! [`volley::RawArgs`] instead, forwarding the arguments as sent without parsing them.
//!
//! With `--recovery`, connection state recovery is on (Node's `connectionStateRecovery`
//! defaults): every event without an ack carries its offset and is kept for replay, which is
//! what the recovery-on/off comparison in BENCHMARKS.md measures.
//!
//! With `--msgpack`, the server speaks `socket.io-msgpack-parser`'s format
//! ([`Parser::MsgPack`]) instead of the default JSON one; the shared load generator speaks only
//! JSON, so drive it with `echo-parsers --parser msgpack` (see `bench/scripts/parsers.sh`).
//! The flags combine (`--raw --msgpack` forwards msgpack arguments unparsed).
//!
//! With `--metrics`, every request outside `/socket.io/` gets Volley's Prometheus text
//! (`curl 127.0.0.1:$PORT/metrics`), as `bench/scripts/metrics-agree.sh` scrapes it.
//!
//! With `--admin`, the server side of the admin UI (`volley_admin::instrument`) runs on
//! `/admin`, without auth, in production mode (statistics every 2 s); `--admin-dev` runs it in
//! development mode (live events for every socket and event), as Node's default. Used by
//! `bench/scripts/instrumentation.sh`, which measures what admin + metrics cost.
//!
//! With `--redis URL`, the server is one node of a cluster through [`volley_redis`]: the
//! sharded adapter (`--sharded`, the default: Node's `createShardedAdapter`,
//! `subscriptionMode: "dynamic"`), or the classic one with `--classic` (`createAdapter`).
//! `broadcast` then reaches every client of every node. The port is bound only once the
//! adapter's subscriptions are confirmed, so a client that can connect is served by a node
//! that already hears the cluster (see `bench/scripts/cluster-95k.sh`).

use std::time::Duration;

use serde_json::Value;
use volley::{AckSender, ConnectionStateRecovery, Data, Parser, RawArgs, Socket, SocketIo};
use volley_redis::{Mode, RedisAdapterConfig, RedisCluster, SubscriptionMode};

/// `serverack`: `inflight` loops of acknowledged emits on `socket`, each waiting for its ack
/// before the next; they end when an ack fails (the socket is gone).
fn server_ack(socket: Socket, opts: Value) {
    let inflight = opts.get("inflight").and_then(Value::as_u64).unwrap_or(1);
    let data = opts.get("data").cloned().unwrap_or(Value::Null);
    for _ in 0..inflight {
        let (socket, data) = (socket.clone(), data.clone());
        tokio::spawn(async move {
            while socket
                .emit_with_ack::<Value, _>("sack", &data)
                .await
                .is_ok()
            {}
        });
    }
}

fn register_value_handlers(io: &SocketIo) {
    let io2 = io.clone();
    io.of("/").on_connection(move |socket: Socket| {
        let io = io2.clone();
        async move {
            socket.on(
                "echo",
                |socket: Socket, Data(data): Data<Value>| async move {
                    let _ = socket.emit("echo", &data);
                },
            );
            socket.on(
                "ack",
                |_: Socket, Data(data): Data<Value>, ack: AckSender| async move {
                    let _ = ack.send(&data);
                },
            );
            socket.on(
                "serverack",
                |socket: Socket, Data(opts): Data<Value>| async move { server_ack(socket, opts) },
            );
            socket.on("broadcast", move |_: Socket, Data(data): Data<Value>| {
                let io = io.clone();
                async move {
                    let _ = io.emit("broadcast", &data);
                }
            });
        }
    });
}

fn register_raw_handlers(io: &SocketIo) {
    let io2 = io.clone();
    io.of("/").on_connection(move |socket: Socket| {
        let io = io2.clone();
        async move {
            socket.on("echo", |socket: Socket, args: RawArgs| async move {
                let _ = socket.emit_args("echo", args);
            });
            socket.on(
                "ack",
                |_: Socket, args: RawArgs, ack: AckSender| async move {
                    let _ = ack.send_args(args);
                },
            );
            socket.on(
                "serverack",
                |socket: Socket, Data(opts): Data<Value>| async move { server_ack(socket, opts) },
            );
            socket.on("broadcast", move |_: Socket, args: RawArgs| {
                let io = io.clone();
                async move {
                    let _ = io.emit_args("broadcast", args);
                }
            });
        }
    });
}

/// How long a cluster node waits for its Redis subscriptions before giving up.
const REDIS_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// `--redis URL`: connects this node's adapter (`--classic`, otherwise sharded).
async fn connect_cluster(url: &str, classic: bool) -> std::io::Result<RedisCluster> {
    let mode = if classic {
        Mode::Classic
    } else {
        Mode::Sharded(SubscriptionMode::Dynamic)
    };
    let config = RedisAdapterConfig {
        mode,
        ..RedisAdapterConfig::default()
    };
    RedisCluster::connect(url, config)
        .await
        .map_err(|e| std::io::Error::other(format!("redis adapter: {e}")))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| args.iter().any(|a| a == name);
    let (raw, recovery, msgpack) = (flag("--raw"), flag("--recovery"), flag("--msgpack"));
    let metrics = flag("--metrics");
    let redis_url = args
        .iter()
        .position(|a| a == "--redis")
        .map(|i| args.get(i + 1).cloned())
        .map(|url| url.ok_or_else(|| std::io::Error::other("--redis needs a URL")))
        .transpose()?;
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);

    let mut builder = SocketIo::builder();
    if msgpack {
        builder = builder.parser(Parser::MsgPack);
    }
    if recovery {
        builder = builder.connection_state_recovery(ConnectionStateRecovery::default());
    }
    let cluster = match &redis_url {
        Some(url) => Some(connect_cluster(url, flag("--classic")).await?),
        None => None,
    };
    if let Some(cluster) = &cluster {
        builder = builder.adapter(cluster.factory());
    }
    let io = builder.build();
    if flag("--admin") || flag("--admin-dev") {
        let mode = if flag("--admin-dev") {
            volley_admin::Mode::Development
        } else {
            volley_admin::Mode::Production
        };
        let options = volley_admin::AdminOptions::new(volley_admin::Auth::None).mode(mode);
        volley_admin::instrument(&io, options).map_err(std::io::Error::other)?;
    }
    if raw {
        register_raw_handlers(&io);
    } else {
        register_value_handlers(&io);
    }
    if let Some(cluster) = &cluster {
        cluster
            .ready(REDIS_READY_TIMEOUT)
            .await
            .map_err(|e| std::io::Error::other(format!("redis adapter not ready: {e}")))?;
    }

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    eprintln!(
        "volley bench-server listening on 127.0.0.1:{port} (handlers take {}, {} parser{}{})",
        if raw { "RawArgs" } else { "Data<Value>" },
        if msgpack { "msgpack" } else { "JSON" },
        if recovery { ", recovery on" } else { "" },
        match (&cluster, flag("--classic")) {
            (None, _) => "",
            (Some(_), true) => ", classic Redis adapter",
            (Some(_), false) => ", sharded Redis adapter",
        }
    );
    if metrics {
        eprintln!("metrics at http://127.0.0.1:{port}/metrics");
        let service = tower_layer::Layer::layer(&io.layer(), io.prometheus_service());
        return volley::serve(listener, service).await;
    }
    volley::serve(listener, io.service()).await
}
