//! Cluster mode of conformance-server (`../shared/conformance/CLUSTER.md`): with `REDIS_URL` set, every namespace
//! uses the Redis adapter (`REDIS_ADAPTER=classic|sharded|streams`, `SUBSCRIPTION_MODE`
//! for the sharded one) and `/` (and `/chat`) serve the cluster handlers C0-C13, plus
//! `cluster:emit-rooms` (rooms, except, data: several rooms with except) and
//! `cluster:emit-volatile` (data: a volatile broadcast to all).

use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use volley::handler::BoxFuture;
use volley::{AckSender, Data, Namespace, RawArgs, Socket};
use volley_redis::{Mode, RedisAdapterConfig, RedisCluster, SubscriptionMode};

/// The cluster settings from the environment, if `REDIS_URL` is set.
#[derive(Debug, Clone)]
pub struct ClusterEnv {
    /// `REDIS_URL`.
    pub url: String,
    /// `SERVER_NAME` (default `volley-<PORT>`).
    pub name: String,
    /// The adapter settings (`REDIS_ADAPTER`, `SUBSCRIPTION_MODE`).
    pub config: RedisAdapterConfig,
}

impl ClusterEnv {
    /// Reads the environment; `None` without `REDIS_URL`, an error for an unknown
    /// `REDIS_ADAPTER` or `SUBSCRIPTION_MODE` (a mode the server does not know must fail
    /// loudly at start).
    pub fn from_env(port: u16) -> Result<Option<Self>, String> {
        let Some(url) = std::env::var("REDIS_URL").ok().filter(|u| !u.is_empty()) else {
            return Ok(None);
        };
        let adapter = std::env::var("REDIS_ADAPTER").unwrap_or_default();
        let config = match adapter.as_str() {
            "" | "classic" => RedisAdapterConfig::default(),
            "sharded" => {
                let sub = match std::env::var("SUBSCRIPTION_MODE")
                    .unwrap_or_default()
                    .as_str()
                {
                    "static" => SubscriptionMode::Static,
                    "dynamic-private" => SubscriptionMode::DynamicPrivate,
                    "" | "dynamic" => SubscriptionMode::Dynamic,
                    other => return Err(format!("unknown SUBSCRIPTION_MODE {other:?}")),
                };
                RedisAdapterConfig {
                    mode: Mode::Sharded(sub),
                    ..Default::default()
                }
            }
            "streams" => RedisAdapterConfig::streams(),
            other => {
                return Err(format!(
                    "unknown REDIS_ADAPTER {other:?} (classic, sharded or streams)"
                ));
            }
        };
        let name = std::env::var("SERVER_NAME").unwrap_or_else(|_| format!("volley-{port}"));
        Ok(Some(Self { url, name, config }))
    }

    /// Joins the cluster.
    pub async fn connect(&self) -> Result<RedisCluster, volley::adapter::AdapterError> {
        RedisCluster::connect(&self.url, self.config.clone()).await
    }
}

/// `args[from..]` followed by the string `extra` if any, attachments kept, in the format the
/// arguments came in (JSON or MessagePack, `PARSER=msgpack`).
fn forward(args: &RawArgs, from: usize, extra: Option<&str>) -> RawArgs {
    let mut out: Vec<Bytes> = args.args().iter().skip(from).cloned().collect();
    if let Some(s) = extra {
        let s = RawArgs::from_args(args.parser(), &volley::One(s)).unwrap_or_default();
        out.extend(s.args().iter().cloned());
    }
    RawArgs::with_parser(args.parser(), out, args.attachments().to_vec())
}

/// Sorts values as JavaScript's default `sort()` does for strings (other values by their
/// JSON text).
fn js_sorted(mut v: Vec<Value>) -> Vec<Value> {
    let key = |x: &Value| match x {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    v.sort_by_key(key);
    v
}

fn template(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

fn room_arg(args: &RawArgs, i: usize) -> Option<String> {
    match args.get::<Value>(i)?.ok()? {
        Value::String(s) => Some(s),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

fn rooms_arg(args: &RawArgs, i: usize) -> Vec<String> {
    match args.get::<Value>(i).and_then(Result::ok) {
        Some(Value::Array(a)) => a.iter().map(template).collect(),
        Some(Value::Null) | None => Vec::new(),
        Some(v) => vec![template(&v)],
    }
}

/// A connection handler run before the cluster handlers (H1-H5 on "/").
pub type BaseHandler = std::sync::Arc<dyn Fn(Socket) -> BoxFuture<()> + Send + Sync>;

/// Installs the cluster handlers on a namespace; with `base`, after that handler (ref-node
/// serves H1-H5 and the cluster handlers on "/").
pub fn install(ns: &Namespace, name: &str, base: Option<BaseHandler>) {
    let server_name = name.to_owned();
    ns.on_server_event("cluster:ping", move |args: RawArgs, ack| {
        let name = server_name.clone();
        async move {
            if let Some(ack) = ack {
                let data = args
                    .get::<Value>(0)
                    .and_then(Result::ok)
                    .unwrap_or(Value::Null);
                let _ = ack.send(&format!("{name}:{}", template(&data)));
            }
        }
    });
    let name = name.to_owned();
    let ns_handle = ns.clone();
    ns.on_connection(move |socket: Socket| {
        let name = name.clone();
        let ns = ns_handle.clone();
        let base = base.clone();
        async move {
            if let Some(base) = base {
                base(socket.clone()).await;
            }
            on_connection(socket, ns, name)
        }
    });
}

fn on_connection(socket: Socket, ns: Namespace, name: String) {
    // Node's socket.data starts as {}.
    let _ = socket.set_data(&json!({}));
    {
        let name = name.clone();
        socket.on(
            "cluster:name",
            move |_: Socket, _: RawArgs, ack: AckSender| {
                let name = name.clone();
                async move {
                    let _ = ack.send(&name);
                }
            },
        );
    }
    for (event, join) in [("cluster:join", true), ("cluster:leave", false)] {
        let name = name.clone();
        socket.on(event, move |s: Socket, args: RawArgs, ack: AckSender| {
            let name = name.clone();
            async move {
                if let Some(room) = room_arg(&args, 0) {
                    if join {
                        s.join(room);
                    } else {
                        s.leave(&room);
                    }
                }
                let _ = ack.send(&name);
            }
        });
    }
    socket.on(
        "cluster:set-data",
        |s: Socket, Data(value): Data<Value>, ack: AckSender| async move {
            let mut data = s.data_value();
            if !data.is_object() {
                data = json!({});
            }
            data["value"] = value;
            let _ = s.set_data(&data);
            let _ = ack.send_args(());
        },
    );
    {
        let (ns, name) = (ns.clone(), name.clone());
        socket.on("cluster:emit-all", move |_: Socket, args: RawArgs| {
            let (ns, name) = (ns.clone(), name.clone());
            async move {
                let _ = ns.emit_args("cluster:all", forward(&args, 0, Some(&name)));
            }
        });
    }
    {
        let ns = ns.clone();
        socket.on("cluster:emit-room", move |_: Socket, args: RawArgs| {
            let ns = ns.clone();
            async move {
                if let Some(room) = room_arg(&args, 0) {
                    let _ = ns
                        .to(room)
                        .emit_args("cluster:room", forward(&args, 0, None));
                }
            }
        });
    }
    {
        let ns = ns.clone();
        socket.on("cluster:emit-except", move |_: Socket, args: RawArgs| {
            let ns = ns.clone();
            async move {
                if let Some(room) = room_arg(&args, 0) {
                    let _ = ns
                        .except(room)
                        .emit_args("cluster:except", forward(&args, 0, None));
                }
            }
        });
    }
    {
        let (ns, name) = (ns.clone(), name.clone());
        socket.on("cluster:emit-rooms", move |_: Socket, args: RawArgs| {
            let (ns, name) = (ns.clone(), name.clone());
            async move {
                let rooms = rooms_arg(&args, 0);
                let except = rooms_arg(&args, 1);
                let _ = ns
                    .to(rooms)
                    .except(except)
                    .emit_args("cluster:rooms", forward(&args, 2, Some(&name)));
            }
        });
    }
    {
        let ns = ns.clone();
        socket.on("cluster:emit-volatile", move |_: Socket, args: RawArgs| {
            let ns = ns.clone();
            async move {
                let _ = ns
                    .volatile()
                    .emit_args("cluster:volatile", forward(&args, 0, None));
            }
        });
    }
    socket.on("cluster:broadcast", |s: Socket, args: RawArgs| async move {
        let _ = s
            .broadcast()
            .emit_args("cluster:broadcast", forward(&args, 0, None));
    });
    {
        let ns = ns.clone();
        socket.on(
            "cluster:fetch",
            move |_: Socket, args: RawArgs, ack: AckSender| {
                let ns = ns.clone();
                async move {
                    let op = match room_arg(&args, 0) {
                        Some(room) => ns.to(room),
                        None => ns.broadcast(),
                    };
                    match op.fetch_sockets().await {
                        Ok(list) => {
                            let mut out: Vec<Value> = list
                                .iter()
                                .map(|s| {
                                    let mut rooms: Vec<String> =
                                        s.rooms().iter().map(|r| r.to_string()).collect();
                                    rooms.sort();
                                    json!({"id": s.id(), "rooms": rooms, "data": s.data()})
                                })
                                .collect();
                            out.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
                            let _ = ack.send(&out);
                        }
                        Err(e) => {
                            let _ = ack.send(&json!({"error": e.to_string()}));
                        }
                    }
                }
            },
        );
    }
    {
        let ns = ns.clone();
        socket.on(
            "cluster:sse",
            move |_: Socket, Data(data): Data<Value>, ack: AckSender| {
                let ns = ns.clone();
                async move {
                    let reply = match ns
                        .server_side_emit_with_ack::<Value>(
                            "cluster:ping",
                            (data,),
                            Duration::from_secs(20),
                        )
                        .await
                    {
                        Ok(stream) => {
                            let mut ok = Vec::new();
                            let mut missing = 0;
                            for r in stream.collect_all().await {
                                match r.result {
                                    Ok(v) => ok.push(v),
                                    Err(_) => missing += 1,
                                }
                            }
                            if missing > 0 {
                                json!({"error": format!("timeout reached: missing {missing} responses")})
                            } else {
                                Value::Array(js_sorted(ok))
                            }
                        }
                        Err(e) => json!({"error": e.to_string()}),
                    };
                    let _ = ack.send(&reply);
                }
            },
        );
    }
    {
        let ns = ns.clone();
        socket.on(
            "cluster:ask-all",
            move |_: Socket, args: RawArgs, ack: AckSender| {
                let ns = ns.clone();
                async move {
                    let stream = ns
                        .broadcast()
                        .timeout(Duration::from_secs(20))
                        .emit_args_with_ack::<Value>("cluster:ask", args);
                    let mut ok = Vec::new();
                    let mut failed = false;
                    for r in stream.collect_all().await {
                        match r.result {
                            Ok(v) => ok.push(v),
                            Err(_) => failed = true,
                        }
                    }
                    let reply = if failed {
                        json!({"error": "operation has timed out"})
                    } else {
                        Value::Array(js_sorted(ok))
                    };
                    let _ = ack.send(&reply);
                }
            },
        );
    }
    for (event, join) in [
        ("cluster:sockets-join", true),
        ("cluster:sockets-leave", false),
    ] {
        let ns = ns.clone();
        socket.on(event, move |_: Socket, args: RawArgs, ack: AckSender| {
            let ns = ns.clone();
            async move {
                if let (Some(room), Some(target)) = (room_arg(&args, 0), room_arg(&args, 1)) {
                    if join {
                        ns.to(room).sockets_join(target);
                    } else {
                        ns.to(room).sockets_leave(target);
                    }
                }
                let _ = ack.send_args(());
            }
        });
    }
    {
        let ns = ns.clone();
        socket.on(
            "cluster:disconnect-room",
            move |_: Socket, args: RawArgs, ack: AckSender| {
                let ns = ns.clone();
                async move {
                    if let Some(room) = room_arg(&args, 0) {
                        ns.to(room).disconnect_sockets(false);
                    }
                    let _ = ack.send_args(());
                }
            },
        );
    }
    {
        let ns = ns.clone();
        socket.on(
            "cluster:all-rooms",
            move |_: Socket, _: RawArgs, ack: AckSender| {
                let ns = ns.clone();
                async move {
                    let reply = match ns.all_rooms().await {
                        Ok(rooms) => {
                            let mut r: Vec<String> = rooms.iter().map(|r| r.to_string()).collect();
                            r.sort();
                            json!(r)
                        }
                        Err(e) => json!({"error": e.to_string()}),
                    };
                    let _ = ack.send(&reply);
                }
            },
        );
    }
    socket.on(
        "cluster:server-count",
        move |_: Socket, _: RawArgs, ack: AckSender| {
            let ns = ns.clone();
            async move {
                let reply = match ns.server_count().await {
                    Ok(n) => json!(n),
                    Err(e) => json!({"error": e.to_string()}),
                };
                let _ = ack.send(&reply);
            }
        },
    );
}
