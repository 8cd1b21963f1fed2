//! The UI's actions (`emit`, `join`, `leave`, `_disconnect`), on one socket (a filter that
//! is a socket id) or many (a room, or the whole namespace), wherever they are connected.

use serde::de::DeserializeOwned;
use serde_json::Value;
use volley::{BroadcastOperator, Namespace, RawArgs, Socket, SocketIo};

/// The features a server with every action offers, in the package's order.
pub(crate) const ACTION_FEATURES: [&str; 7] = [
    "EMIT",
    "JOIN",
    "LEAVE",
    "DISCONNECT",
    "MJOIN",
    "MLEAVE",
    "MDISCONNECT",
];

fn arg<T: DeserializeOwned>(args: &RawArgs, i: usize) -> Option<T> {
    args.get::<T>(i)?.ok()
}

/// The namespace an action names, if it exists (the UI never creates one).
fn namespace(io: &SocketIo, name: &str) -> Option<Namespace> {
    io.namespace_handles()
        .into_iter()
        .find(|ns| ns.name() == name)
}

/// The sockets an action targets: those in room `filter`, or all of them without one.
fn target(ns: &Namespace, filter: Option<String>) -> BroadcastOperator {
    match filter.filter(|f| !f.is_empty()) {
        Some(room) => ns.to(room),
        None => ns.broadcast(),
    }
}

/// Registers the action handlers on an admin socket.
pub(crate) fn register(io: &SocketIo, socket: &Socket) {
    let io1 = io.clone();
    socket.on("emit", move |_: Socket, args: RawArgs| {
        let io = io1.clone();
        async move {
            let (Some(nsp), Some(ev)) = (arg::<String>(&args, 0), arg::<String>(&args, 2)) else {
                return;
            };
            let Some(ns) = namespace(&io, &nsp) else {
                return;
            };
            let rest: Vec<Value> = (3..args.len())
                .filter_map(|i| arg::<Value>(&args, i))
                .collect();
            if let Err(e) = target(&ns, arg(&args, 1)).emit_args(&ev, rest) {
                tracing::debug!(error = %e, "admin UI emit refused");
            }
        }
    });
    for (event, join) in [("join", true), ("leave", false)] {
        let io = io.clone();
        socket.on(event, move |_: Socket, args: RawArgs| {
            let io = io.clone();
            async move {
                let (Some(nsp), Some(room)) = (arg::<String>(&args, 0), arg::<String>(&args, 1))
                else {
                    return;
                };
                if let Some(ns) = namespace(&io, &nsp) {
                    let op = target(&ns, arg(&args, 2));
                    if join {
                        op.sockets_join(room);
                    } else {
                        op.sockets_leave(room);
                    }
                }
            }
        });
    }
    let io = io.clone();
    socket.on("_disconnect", move |_: Socket, args: RawArgs| {
        let io = io.clone();
        async move {
            let Some(nsp) = arg::<String>(&args, 0) else {
                return;
            };
            let close = arg::<bool>(&args, 1).unwrap_or(false);
            if let Some(ns) = namespace(&io, &nsp) {
                target(&ns, arg(&args, 2)).disconnect_sockets(close);
            }
        }
    });
}
