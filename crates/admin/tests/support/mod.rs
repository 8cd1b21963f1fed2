//! A Volley server with the admin namespace, user clients, and an admin client that records
//! what the admin namespace sends it (what the UI would get).

#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;
use volley::{AckSender, Data, Socket, SocketIo};
use volley_admin::{AdminOptions, instrument};
use volley_client::{ConnectError, Manager, TransportKind};

/// Bounds a wait for something that must come (never reached unless something is broken).
pub const WAIT: Duration = Duration::from_secs(30);

/// bcryptjs's hash of "secret" (cost 4), as the npm package's users make them.
pub const SECRET_HASH: &str = "$2a$04$pAoZGWFOvg5B4dr95w240ej4kaW7l2h.9/lDvqSYN7WrLXQVPQV26";

/// Starts a server on a free port with `/` serving `echo` (ack and `echo-back`) and
/// `join` (room, ack), instrumented with `options`.
pub async fn start(options: AdminOptions) -> (SocketIo, String) {
    let io = SocketIo::builder().build();
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
    instrument(&io, options).expect("valid admin options");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let url = format!("http://{}", listener.local_addr().expect("bound"));
    tokio::spawn(volley::serve(listener, io.service()));
    (io, url)
}

/// A user client on `/` over WebSocket only.
pub async fn user(url: &str) -> (Manager, volley_client::Socket) {
    let m = Manager::builder(url)
        .transports(&[TransportKind::WebSocket])
        .build()
        .expect("a valid url");
    let s = m.socket("/").connect().await.expect("user connects");
    (m, s)
}

/// The admin UI's side: every event the admin namespace sent, in order.
pub struct Ui {
    pub manager: Manager,
    pub socket: volley_client::Socket,
    rx: mpsc::UnboundedReceiver<(String, Vec<Value>)>,
}

/// Connects to `/admin` with `auth`, as the UI does.
pub async fn ui(url: &str, auth: Value) -> Result<Ui, ConnectError> {
    let manager = Manager::builder(url)
        .transports(&[TransportKind::WebSocket])
        .reconnection(false)
        .build()
        .expect("a valid url");
    let (tx, rx) = mpsc::unbounded_channel();
    let socket = manager
        .socket("/admin")
        .auth(auth)
        .on_any(move |_, event: String, args: volley::RawArgs| {
            let args: Vec<Value> = (0..args.len())
                .map(|i| args.get::<Value>(i).expect("an argument").expect("JSON"))
                .collect();
            let _ = tx.send((event, args));
            async {}
        })
        .connect()
        .await?;
    Ok(Ui {
        manager,
        socket,
        rx,
    })
}

impl Ui {
    /// The next event named `name`, skipping others.
    pub async fn next(&mut self, name: &str) -> Vec<Value> {
        loop {
            let (event, args) = tokio::time::timeout(WAIT, self.rx.recv())
                .await
                .unwrap_or_else(|_| panic!("no {name} within {WAIT:?}"))
                .expect("the admin client is alive");
            if event == name {
                return args;
            }
        }
    }

    /// Every event up to and with the next one named `name` whose arguments pass `pred`.
    pub async fn collect_until(
        &mut self,
        name: &str,
        pred: impl Fn(&[Value]) -> bool,
    ) -> Vec<(String, Vec<Value>)> {
        let mut seen = Vec::new();
        loop {
            let (event, args) = tokio::time::timeout(WAIT, self.rx.recv())
                .await
                .unwrap_or_else(|_| panic!("no {name} within {WAIT:?}: {seen:?}"))
                .expect("the admin client is alive");
            let done = event == name && pred(&args);
            seen.push((event, args));
            if done {
                return seen;
            }
        }
    }

    /// The next event named `name` whose arguments pass `pred`.
    pub async fn next_where(&mut self, name: &str, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        loop {
            let args = self.next(name).await;
            if pred(&args) {
                return args;
            }
        }
    }

    /// Every event up to the `marker` the server sends now to the admin namespace: what the
    /// admin namespace sent before it (one queue per connection keeps the order).
    pub async fn until_marker(
        &mut self,
        io: &SocketIo,
        admin_ns: &str,
    ) -> Vec<(String, Vec<Value>)> {
        io.of(admin_ns)
            .emit("test-marker", &())
            .expect("marker sent");
        let mut seen = Vec::new();
        loop {
            let (event, args) = tokio::time::timeout(WAIT, self.rx.recv())
                .await
                .expect("the marker comes")
                .expect("the admin client is alive");
            if event == "test-marker" {
                return seen;
            }
            seen.push((event, args));
        }
    }
}

/// The names of `events`, in order, without `server_stats` (periodic).
pub fn names(events: &[(String, Vec<Value>)]) -> Vec<&str> {
    events
        .iter()
        .map(|(e, _)| e.as_str())
        .filter(|e| *e != "server_stats")
        .collect()
}
