//! The official admin UI (`@socket.io/admin-ui` 0.5.1) against Volley's `volley-admin`.
//!
//! - The UI's own `ui/dist`, served from another loopback port, in headless Chromium
//!   (`scripts/admin-ui-browser.mjs`, playwright-core): its login form against a bcrypt hash
//!   (a wrong password refused, the right one accepted), the dashboard, servers, sockets and
//!   rooms pages show what is connected, and the UI's disconnect button disconnects a client
//!   (heard by that client). Screenshots go to `e2e/artifacts/admin-*.png`.
//! - The same with a mixed cluster on a real Redis: one Node server with the npm package's
//!   `instrument` and `@socket.io/redis-adapter`, one Volley server with volley-redis
//!   (classic), the UI connected to Volley: both servers and every socket appear.
//! - Every message the admin namespace sends, Volley against Node's `instrument` for the same
//!   scenario (`scripts/admin-observe.mjs` with the official client): the same events, the
//!   same shapes.
//!
//! Needs Node, Debian's `/usr/bin/chromium` and `redis-server` (scripts/install-deps.sh); a
//! test fails, never skips, without them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use volley::{AckSender, Data, Socket, SocketIo};
use volley_admin::{AdminOptions, Auth, instrument};
use volley_test_support::{NodeOutput, ensure_node_modules, repo_root, run_node};

const CHROMIUM: &str = "/usr/bin/chromium";
/// Bounds a wait for something that must come (a process starting): never reached unless
/// something is broken, however busy the machine.
const WAIT: Duration = Duration::from_secs(60);
const DEADLINE: Duration = Duration::from_secs(300);

/// `/` serves what the scripts use, as `admin-node-server.mjs` does: `echo` and `join`.
fn handlers(io: &SocketIo) {
    io.of("/").on_connection(|socket: Socket| async move {
        socket
            .on(
                "echo",
                |s: Socket, Data(v): Data<Value>, ack: AckSender| async move {
                    let _ = s.emit("echo-back", &v);
                    let _ = ack.send(&v);
                },
            )
            .on(
                "join",
                |s: Socket, Data(room): Data<String>, ack: AckSender| async move {
                    s.join(room);
                    let _ = ack.send(&());
                },
            );
    });
}

/// A Volley server as the admin UI needs it (CORS for the UI's origin, with credentials);
/// returns its URL.
async fn start_volley(
    adapter: Option<volley::adapter::AdapterFactory>,
    server_id: &str,
    auth: Auth,
) -> (SocketIo, String) {
    let mut builder = SocketIo::builder()
        .cors(volley::Cors::new(volley::AllowOrigin::Mirror).credentials(true))
        .ping_timeout(Duration::from_secs(20));
    if let Some(factory) = adapter {
        builder = builder.adapter(factory);
    }
    let io = builder.build();
    handlers(&io);
    instrument(&io, AdminOptions::new(auth).server_id(server_id)).expect("instrumented");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let url = format!("http://{}", listener.local_addr().expect("bound"));
    tokio::spawn(volley::serve(listener, io.service()));
    (io, url)
}

/// `scripts/admin-node-server.mjs`, stopped when dropped (stdin closes, then the kill).
struct NodeAdmin {
    url: String,
    _child: tokio::process::Child,
}

async fn start_node(env: &[(&str, &str)]) -> NodeAdmin {
    let dir = tokio::task::spawn_blocking(ensure_node_modules)
        .await
        .expect("npm install");
    let mut child = tokio::process::Command::new("node")
        .arg(dir.join("scripts/admin-node-server.mjs"))
        .current_dir(&dir)
        .env("PORT", "0")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start node: {e} (is Node.js installed?)"));
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let line = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .expect("the Node admin server starts")
        .expect("its stdout")
        .unwrap_or_default();
    let started: Value = serde_json::from_str(&line)
        .unwrap_or_else(|_| panic!("the Node admin server did not start: {line:?}"));
    let port = started["port"].as_u64().expect("a port");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    NodeAdmin {
        url: format!("http://127.0.0.1:{port}"),
        _child: child,
    }
}

fn shots_dir() -> String {
    let dir = repo_root().join("e2e").join("artifacts");
    std::fs::create_dir_all(&dir).expect("create e2e/artifacts");
    dir.to_str().expect("a UTF-8 path").to_owned()
}

async fn browse(config: Value) -> NodeOutput {
    assert!(
        Path::new(CHROMIUM).is_file(),
        "{CHROMIUM} is missing: the browser test needs Debian's chromium \
         (scripts/install-deps.sh installs it, or: apt-get install chromium)"
    );
    let out = run_node("admin-ui-browser.mjs", &[&config.to_string()], DEADLINE).await;
    out.assert_success();
    assert_eq!(out.events("done").len(), 1, "{out}");
    for shot in out.events("screenshot") {
        println!("screenshot: {}", shot["path"].as_str().unwrap_or_default());
    }
    out
}

fn one(out: &NodeOutput, event: &str) -> Value {
    let mut all = out.events(event);
    assert_eq!(all.len(), 1, "one {event} line: {out}");
    all.remove(0)
}

/// Rows as sets of their first `n` cells.
fn rows(v: &Value, n: usize) -> BTreeSet<Vec<String>> {
    v["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            r.as_array().expect("a row")[..n]
                .iter()
                .map(|c| c.as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .collect()
}

fn row(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| (*c).to_owned()).collect()
}

/// The UI's run with two clients: one on WebSocket in room "lobby" at `first`, one on
/// long-polling in room "garden" at `second`.
async fn browse_two_clients(
    admin_url: &str,
    prefix: &str,
    servers: usize,
    first: &str,
    second: &str,
    login: Value,
) -> NodeOutput {
    browse(json!({
        "adminUrl": admin_url, "shots": shots_dir(), "prefix": prefix, "servers": servers,
        "clients": [
            { "url": first, "transport": "websocket", "rooms": ["lobby"] },
            { "url": second, "transport": "polling", "rooms": ["garden"] },
        ],
        "login": login,
    }))
    .await
}

/// Checks what every run of [`browse_two_clients`] must show: three clients (the two and
/// the UI), both sockets in "/" with their transports, both rooms, and the first client
/// disconnected by the UI's button. Returns the two socket ids.
fn check_two_clients(out: &NodeOutput) -> (String, String) {
    let clients = out.events("client");
    let id = |i: usize| clients[i]["id"].as_str().expect("an id").to_owned();
    let (ws, lp) = (id(0), id(1));
    assert_eq!(one(out, "dashboard")["clients"], 3, "{out}");
    assert_eq!(one(out, "dashboard")["polling"], 1, "{out}");
    let sockets = one(out, "sockets");
    assert_eq!(sockets["namespace"], "/");
    assert_eq!(
        rows(&sockets, 3),
        BTreeSet::from([
            row(&[&ws, "127.0.0.1", "WebSocket"]),
            row(&[&lp, "127.0.0.1", "HTTP long-polling"]),
        ]),
        "{out}"
    );
    assert_eq!(
        rows(&one(out, "rooms"), 3),
        BTreeSet::from([
            row(&["garden", "PUBLIC", "1"]),
            row(&["lobby", "PUBLIC", "1"])
        ]),
        "{out}"
    );
    // The UI's disconnect button: the client heard it.
    let gone = one(out, "client-disconnect");
    assert_eq!(gone["id"], ws.as_str());
    assert_eq!(gone["reason"], "io server disconnect");
    (ws, lp)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_ui_in_chromium_shows_volley() {
    // bcryptjs's hash of "secret" (the npm package's own library made it).
    let hash = "$2a$04$pAoZGWFOvg5B4dr95w240ej4kaW7l2h.9/lDvqSYN7WrLXQVPQV26";
    let (io, url) = start_volley(None, "volley-1", Auth::basic("admin", hash)).await;
    let login = json!({ "username": "admin", "password": "secret" });
    let out = browse_two_clients(&url, "volley", 1, &url, &url, login).await;
    // The login form refused a wrong password and took the right one (checked against the
    // hash): everything below needs that connection.
    let refused = one(&out, "login-refused");
    assert_eq!(refused["text"], "Invalid credentials", "{out}");
    let servers = rows(&one(&out, "servers"), 5);
    assert_eq!(servers.len(), 1, "{out}");
    let server = servers.iter().next().unwrap();
    assert_eq!(server[0], "volley-1");
    assert_eq!(server[2], std::process::id().to_string(), "the pid");
    assert_eq!(server[4], "3", "two users and the UI: {out}");
    assert_eq!(one(&out, "dashboard")["healthyServers"], 1, "{out}");
    let (ws, _) = check_two_clients(&out);
    assert!(io.of("/").get_socket(&ws).is_none(), "the server let it go");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_ui_in_chromium_shows_a_mixed_cluster() {
    let redis = volley_test_support::RedisServer::start();
    let node = start_node(&[("REDIS_URL", &redis.url()), ("SERVER_ID", "node-1")]).await;
    // A long command timeout: a Redis slowed down by a busy machine is not taken for gone.
    let config = volley_redis::RedisAdapterConfig {
        command_timeout: WAIT,
        ..Default::default()
    };
    let cluster = volley_redis::RedisCluster::connect(&redis.url(), config)
        .await
        .expect("volley joins the cluster");
    let (_io, url) = start_volley(Some(cluster.factory()), "volley-1", Auth::None).await;
    cluster.ready(WAIT).await.expect("subscribed");

    // The UI talks to Volley; one client on each server. The UI (on Volley) disconnects
    // the client of the Node server, through Redis.
    let out = browse_two_clients(&url, "cluster", 2, &node.url, &url, Value::Null).await;
    let servers: BTreeMap<String, String> = rows(&one(&out, "servers"), 5)
        .into_iter()
        .map(|r| (r[0].clone(), r[4].clone()))
        .collect();
    assert_eq!(
        servers,
        BTreeMap::from([
            ("node-1".to_owned(), "1".to_owned()),
            ("volley-1".to_owned(), "2".to_owned()),
        ]),
        "server id -> clients (Volley's include the UI): {out}"
    );
    check_two_clients(&out);
    cluster.close();
}

/// The shape of a value: its type, and for objects the shapes of their keys (headers, query
/// and data are maps whose keys depend on the request: only their value types count).
fn shape(key: &str, v: &Value) -> Value {
    match v {
        Value::Null => json!("null"),
        Value::Bool(_) => json!("boolean"),
        Value::Number(_) => json!("number"),
        Value::String(_) => json!("string"),
        Value::Array(items) => json!({ "array": distinct(items.iter().map(|i| shape(key, i))) }),
        Value::Object(map) if matches!(key, "headers" | "query" | "data") => {
            json!({ "map": distinct(map.values().map(|i| shape("", i))) })
        }
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), shape(k, v))).collect())
        }
    }
}

/// The distinct values of `items`, in a stable order.
fn distinct(items: impl Iterator<Item = Value>) -> Vec<Value> {
    let by_text: BTreeMap<String, Value> = items.map(|v| (v.to_string(), v)).collect();
    by_text.into_values().collect()
}

/// Event name -> the set of shapes of its arguments, for every admin event of a run; with
/// the differences we know of taken out (`memoryUsage`, which Volley adds to
/// `server_stats`; `subType`, the reason Node gives each engine disconnection, which Volley's
/// engine counters do not keep).
fn shapes(out: &NodeOutput) -> BTreeMap<String, Vec<Value>> {
    let mut all: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for line in out.events("admin").iter().filter(|l| !broadcast_news(l)) {
        let mut args = line["args"].clone();
        if line["name"] == "server_stats" {
            let stats = &mut args[0];
            stats.as_object_mut().unwrap().remove("memoryUsage");
            for e in stats["aggregatedEvents"].as_array_mut().unwrap() {
                e.as_object_mut().unwrap().remove("subType");
            }
        }
        let name = line["name"].as_str().unwrap().to_owned();
        all.entry(name).or_default().push(shape("", &args));
    }
    all.into_iter()
        .map(|(k, v)| (k, distinct(v.into_iter())))
        .collect()
}

/// Node's `onAnyOutgoing` also sees broadcasts (socket.io 4.5+ adapters notify each
/// recipient), so the UI's `emit` action shows up as an `event_sent` there, while Volley's
/// `on_any_outgoing` sees only the socket's own emits: the one difference in the events.
fn broadcast_news(line: &Value) -> bool {
    line["name"] == "event_sent" && line["args"][2][0] == "news"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volley_sends_what_nodes_instrument_sends() {
    let node = start_node(&[]).await;
    let (_io, volley) = start_volley(None, "volley-1", Auth::None).await;
    let from_node = run_node("admin-observe.mjs", &[&node.url], DEADLINE).await;
    from_node.assert_success();
    let from_volley = run_node("admin-observe.mjs", &[&volley], DEADLINE).await;
    from_volley.assert_success();

    // The same events (server_stats and the order aside: both are periodic or racy; and
    // the broadcast Node's onAnyOutgoing sees, see `broadcast_news`)...
    let names = |out: &NodeOutput| -> BTreeMap<String, usize> {
        let mut n = BTreeMap::new();
        for line in &out.events("admin") {
            if line["name"] != "server_stats" && !broadcast_news(line) {
                *n.entry(line["name"].as_str().unwrap().to_owned())
                    .or_default() += 1;
            }
        }
        n
    };
    assert_eq!(
        names(&from_volley),
        names(&from_node),
        "{from_volley}\n{from_node}"
    );
    // ... with the same shapes, and the users saw the same.
    assert_eq!(
        shapes(&from_volley),
        shapes(&from_node),
        "{from_volley}\n{from_node}"
    );
    assert_eq!(from_volley.events("user"), from_node.events("user"));
    let stats = from_volley.events("admin");
    let stats = stats.iter().find(|l| l["name"] == "server_stats").unwrap();
    assert!(
        stats["args"][0]["memoryUsage"]["rss"]
            .as_u64()
            .is_some_and(|r| r > 0)
    );
}
