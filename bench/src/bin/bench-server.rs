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

use serde_json::Value;
use volley::{AckSender, ConnectionStateRecovery, Data, Parser, RawArgs, Socket, SocketIo};

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

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let flag = |name: &str| std::env::args().skip(1).any(|a| a == name);
    let (raw, recovery, msgpack) = (flag("--raw"), flag("--recovery"), flag("--msgpack"));
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
    let io = builder.build();
    if raw {
        register_raw_handlers(&io);
    } else {
        register_value_handlers(&io);
    }

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    eprintln!(
        "volley bench-server listening on 127.0.0.1:{port} (handlers take {}, {} parser{})",
        if raw { "RawArgs" } else { "Data<Value>" },
        if msgpack { "msgpack" } else { "JSON" },
        if recovery { ", recovery on" } else { "" }
    );
    volley::serve(listener, io.service()).await
}
