//! Volley's showcase: a small chat, served by axum on one port.
//!
//! - `/` is the page (`static/`), and `/vendor/socket.io.min.js` the official
//!   `socket.io-client` from npm (see [`socket_io_client`]): no CDN.
//! - `/api/hello` is an ordinary JSON route.
//! - `/socket.io/` is Volley, mounted with `.layer(io.layer())` on the same `Router`.
//! - `/metrics` is Volley's Prometheus text (feature `prometheus`): connections, sockets,
//!   rooms, messages, acknowledgement latency... (see `volley::prometheus`).
//!
//! The chat is the `/chat` namespace. A middleware refuses a wrong token; a client then joins
//! a room, sends messages to it (acknowledged, so the sender sees "delivered") and a
//! volatile typing hint, and everyone sees how many people are online. Connection state
//! recovery is on (on one server): a client whose network blips comes back with its id and
//! room and gets every message it missed, and the page says so.
//!
//! The handlers are plain `async fn`s registered by name. Each takes what it needs as
//! arguments: the event's data (`Data<T>`), the acknowledgement (`AckSender`) and the chat's
//! [`Rules`] (`State<Rules>`, given once to the builder). The namespace is
//! `socket.nsp()`. So no handler captures a clone of anything.
//!
//! With `ADMIN_PASSWORD_HASH` set, `main.rs` also serves the official Socket.IO admin UI's
//! namespace ([`admin`]), for the UI at <https://admin.socket.io> (or `ADMIN_UI_ORIGIN`).
//!
//! `main.rs` runs it; the browser test in `e2e/tests` builds the same [`router`].

use std::io;
use std::path::Path;
use std::process::Command;

use axum::body::Bytes;
use axum::http::HeaderValue;
use axum::http::header::CONTENT_TYPE;
use axum::response::Html;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use volley::adapter::AdapterFactory;
use volley::adapter::Room;
use volley::{
    AckSender, AllowOrigin, BroadcastOperator, ConnectError, ConnectionStateRecovery, Cors, Data,
    DisconnectReason, Namespace, Socket, SocketIo, State,
};
use volley_admin::{AdminError, AdminOptions, Auth, instrument};

/// What the chat accepts: the application state its handlers share.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// The token the demo accepts. The page fills it in; type anything else to see a
    /// refusal.
    pub token: &'static str,
    /// The longest nickname, in characters.
    pub name_chars: usize,
    /// The longest room name, in characters.
    pub room_chars: usize,
    /// The longest message, in characters (longer ones are cut).
    pub text_chars: usize,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            token: "secret",
            name_chars: 24,
            room_chars: 32,
            text_chars: 500,
        }
    }
}

/// The Socket.IO server, with the chat in its `/chat` namespace, on one machine.
pub fn socket_io() -> SocketIo {
    socket_io_with(None)
}

/// The Socket.IO server with a cluster adapter (e.g. Redis), so that several chat servers
/// share rooms, messages and the online count.
pub fn socket_io_with(adapter: Option<AdapterFactory>) -> SocketIo {
    socket_io_for(adapter, &[ADMIN_UI_ORIGIN])
}

/// Where the Socket.IO admin UI is hosted; its pages may connect to the chat (CORS, with
/// credentials) once [`admin`] serves `/admin`.
pub const ADMIN_UI_ORIGIN: &str = "https://admin.socket.io";

/// [`socket_io_with`], letting pages from `admin_ui_origins` connect (e.g. the admin UI's
/// `ui/dist` served locally, `http://127.0.0.1:8080`).
pub fn socket_io_for(adapter: Option<AdapterFactory>, admin_ui_origins: &[&str]) -> SocketIo {
    let rules = Rules::default();
    let origins = admin_ui_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    // Handlers receive the rules as `State<Rules>`.
    let mut builder = SocketIo::builder()
        .state(rules)
        .cors(Cors::new(AllowOrigin::List(origins)).credentials(true));
    // Recovery needs an adapter that keeps sessions: the in-memory one does, the classic
    // Redis adapter does not (the Streams mode of volley-redis does).
    let recovery = adapter.is_none();
    if let Some(adapter) = adapter {
        builder = builder.adapter(adapter);
    } else {
        // A client that lost its connection for up to 2 minutes gets its id, its room and
        // every message it missed (Node's `connectionStateRecovery`).
        builder = builder.connection_state_recovery(ConnectionStateRecovery::default());
    }
    let io = builder.build();
    io.of("/chat")
        // A middleware takes the socket only; the rules are a `Copy` value it keeps.
        .middleware(move |socket| authenticate(socket, rules))
        .on_connection(move |socket| on_connect(socket, recovery));
    io
}

/// Serves the Socket.IO admin UI's namespace `/admin` (`volley-admin`, development mode):
/// the UI logs in as `username` with the password whose bcrypt hash is `password_hash`
/// (make one with `htpasswd -nbBC 10 "" 'your password' | cut -d: -f2`).
pub fn admin(io: &SocketIo, username: &str, password_hash: &str) -> Result<(), AdminError> {
    instrument(io, AdminOptions::new(Auth::basic(username, password_hash)))
}

/// The whole app on one axum `Router`: the page, the npm client, a REST route and Volley.
pub fn router(io: &SocketIo, client_js: Bytes) -> Router {
    let js = |body| ([(CONTENT_TYPE, "text/javascript")], body);
    let css = ([(CONTENT_TYPE, "text/css")], CHAT_CSS);
    let chat = io.of("/chat");
    let hello = move || async move {
        let online = online(&chat).await;
        Json(json!({ "message": "Hello from axum, next to Volley", "online": online }))
    };
    Router::new()
        .route("/", get(Html(INDEX_HTML)))
        .route("/chat.js", get(js(Bytes::from_static(CHAT_JS))))
        .route("/chat.css", get(css))
        .route("/vendor/socket.io.min.js", get(js(client_js)))
        .route("/api/hello", get(hello))
        .route_service("/metrics", io.prometheus_service())
        .layer(io.layer())
}

const INDEX_HTML: &str = include_str!("../static/index.html");
const CHAT_JS: &[u8] = include_bytes!("../static/chat.js");
const CHAT_CSS: &str = include_str!("../static/chat.css");

/// Runs before a client joins `/chat` (Node's `io.of("/chat").use`): checks the token and
/// keeps the nickname in the socket's data. A refusal reaches the client's `connect_error`
/// with `message` and `data`.
async fn authenticate(socket: Socket, rules: Rules) -> Result<(), ConnectError> {
    let auth = socket.handshake().auth();
    if auth["token"] != rules.token {
        let hint = format!("the demo token is \"{}\"", rules.token);
        return Err(ConnectError::new("invalid token").with_data(json!({ "hint": hint })));
    }
    let name = auth["name"].as_str().unwrap_or_default().trim();
    if name.is_empty() || name.chars().count() > rules.name_chars {
        let hint = format!("a nickname has 1 to {} characters", rules.name_chars);
        return Err(ConnectError::new("invalid nickname").with_data(json!({ "hint": hint })));
    }
    socket.set_data(&name).expect("a string is valid JSON");
    Ok(())
}

// Broadcasts fail only for a reserved event name or data that is not JSON, neither of which
// happens here; emits to one socket fail only when it is gone. Hence the `let _ =` below.

/// A client joined `/chat`: announce it and register its event handlers. A recovered
/// client is back after a blip, with its room and the messages it missed: nobody is told.
async fn on_connect(socket: Socket, recovery: bool) {
    if !socket.recovered() {
        let _ = socket.broadcast().emit("user connected", &name(&socket));
    }
    send_online(socket.nsp()).await;

    socket
        .on("join", join)
        .on("leave", leave)
        .on("message", message)
        .on("typing", typing);
    // Still in its room here, so the others hear that it left. A lost connection keeps
    // the room when recovery is on: its session saves the room, and the client comes back.
    socket.on_disconnecting(move |socket, reason: DisconnectReason| async move {
        if !(recovery && reason.is_recoverable()) {
            leave(socket).await;
        }
    });
    socket.on_disconnect(|socket, _| send_online(socket.nsp()));
}

/// Tells everyone in the chat how many people are online.
async fn send_online(chat: Namespace) {
    let _ = chat.emit("online", &online(&chat).await);
}

/// How many people are in the chat, on every server of the cluster.
async fn online(chat: &Namespace) -> usize {
    match chat.broadcast().socket_ids().await {
        Ok(ids) => ids.len(),
        // The cluster is unreachable: count this server's people.
        Err(_) => chat.sockets().len(),
    }
}

/// `join(room, ack)`: leaves the current room, enters `room`, tells the others.
async fn join(
    socket: Socket,
    Data(room): Data<String>,
    State(rules): State<Rules>,
    ack: AckSender,
) {
    let room = room.trim().to_owned();
    if room.is_empty() || room.chars().count() > rules.room_chars {
        let error = format!("a room name has 1 to {} characters", rules.room_chars);
        let _ = ack.send(&json!({ "error": error }));
        return;
    }
    leave(socket.clone()).await;
    socket.join(&room);
    let _ = socket.to(&room).emit("joined", &name(&socket)); // everyone in the room but me
    send_members(socket.nsp().to(&room)).await; // everyone in the room, me included
    let _ = ack.send(&json!({ "room": room }));
}

/// `leave`: leaves the current room, if any, and tells the others.
async fn leave(socket: Socket) {
    let Some(room) = current_room(&socket) else {
        return;
    };
    socket.leave(&room);
    let _ = socket.to(room.clone()).emit("left", &name(&socket));
    send_members(socket.to(room)).await;
}

/// `message(text, ack)`: to everyone else in the room; the ack tells the sender it arrived.
async fn message(
    socket: Socket,
    Data(text): Data<String>,
    State(rules): State<Rules>,
    ack: AckSender,
) {
    let Some(room) = current_room(&socket) else {
        let _ = ack.send("join a room first");
        return;
    };
    let text: String = text.chars().take(rules.text_chars).collect();
    let _ = socket
        .to(room)
        .emit("message", &json!({ "from": name(&socket), "text": text }));
    let _ = ack.send("delivered");
}

/// `typing(bool)`: a hint to everyone else in the room.
async fn typing(socket: Socket, Data(typing): Data<bool>) {
    if let Some(room) = current_room(&socket) {
        // Volatile: a typing hint that cannot go out now is worthless later.
        let hint = json!({ "name": name(&socket), "typing": typing });
        let _ = socket.to(room).volatile().emit("typing", &hint);
    }
}

/// Sends the nicknames of the sockets `room` selects to those sockets.
async fn send_members(room: BroadcastOperator) {
    let Ok(sockets) = room.fetch_sockets().await else {
        return;
    };
    let names: Vec<&Value> = sockets.iter().map(|s| s.data()).collect();
    let _ = room.emit("members", &names);
}

/// The chat room a socket is in: any of its rooms but the one named by its own id.
fn current_room(socket: &Socket) -> Option<Room> {
    socket.rooms().into_iter().find(|r| **r != *socket.id())
}

/// The nickname the middleware stored.
fn name(socket: &Socket) -> String {
    socket.data().unwrap_or_default()
}

/// The official browser client: `socket.io.min.js` from the npm package pinned in `web/`.
///
/// On a fresh checkout (or after `web/package-lock.json` changed) this runs `npm ci` in
/// `web/` first, which needs Node.js and npm.
pub fn socket_io_client() -> io::Result<Bytes> {
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
    let file = web.join("node_modules/socket.io-client/dist/socket.io.min.js");
    // npm rewrites node_modules/.package-lock.json on every install.
    let modified = |p: &str| web.join(p).metadata().and_then(|m| m.modified()).ok();
    let stale = modified("node_modules/.package-lock.json") < modified("package-lock.json");
    if !file.is_file() || stale {
        npm_ci(&web)?;
    }
    std::fs::read(&file).map(Bytes::from)
}

fn npm_ci(dir: &Path) -> io::Result<()> {
    eprintln!("chat: npm ci in {} (gets socket.io-client)", dir.display());
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir)
        .status()
        .map_err(|e| {
            io::Error::other(format!(
                "cannot run npm ({e}). The page uses the official socket.io-client from npm: \
                 install Node.js and npm (e.g. `apt-get install nodejs npm`), then run again"
            ))
        })?;
    if !status.success() {
        let msg = format!("`npm ci` in {} failed ({status})", dir.display());
        return Err(io::Error::other(msg));
    }
    Ok(())
}
