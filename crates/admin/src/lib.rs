//! The server side of the official Socket.IO admin UI, [`@socket.io/admin-ui`] 0.5.1, for
//! Volley: the UI (its hosted version at <https://admin.socket.io>, or the `ui/dist` folder
//! of the npm package served anywhere) connects to a namespace of your server, `/admin` by
//! default, and shows the servers, their clients, namespaces, sockets, rooms and events, and
//! lets you act on them (emit, join, leave, disconnect).
//!
//! [`instrument`] does what the npm package's `instrument(io, options)` does, with the same
//! options ([`AdminOptions`]) and the same messages, so the unchanged UI works with it, and
//! Node and Volley servers of one cluster show up together: the admin namespace is an
//! ordinary namespace, its broadcasts and `fetch_sockets` go through the server's adapter.
//!
//! ```
//! use volley::SocketIo;
//! use volley_admin::{AdminOptions, Auth, instrument};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // The UI runs on another origin: let it in, with its credentials (cookies).
//! let io = SocketIo::builder()
//!     .cors(volley::Cors::new(volley::AllowOrigin::Mirror).credentials(true))
//!     .build();
//! // A bcrypt hash of the password, e.g. from an environment variable.
//! # let hash = "$2a$04$q9lNQ1ZtsJmqs3rweWzpGuhtc6MWFAe/R7QYM5f9EhHm8nZ3Kf7Au"; // bcryptjs, "changeit"
//! instrument(&io, AdminOptions::new(Auth::basic("admin", hash)))?;
//! # let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! # let url = format!("http://{}", listener.local_addr()?);
//! # tokio::spawn(volley::serve(listener, io.service()));
//!
//! // The UI logs in with the username and the password:
//! let ui = volley_client::Manager::builder(&url)
//!     .build()?
//!     .socket("/admin")
//!     .auth(serde_json::json!({ "username": "admin", "password": "changeit" }))
//!     .connect()
//!     .await?;
//! # assert!(ui.connected());
//! # Ok(())
//! # }
//! ```
//!
//! What the UI gets:
//! - `config` on connection: the supported features (the actions unless
//!   [`readonly`](AdminOptions::readonly), `AGGREGATED_EVENTS`, and `ALL_EVENTS` in
//!   development mode);
//! - `server_stats` every 2 seconds: server id, host name, pid, uptime, clients (Engine.IO
//!   connections), clients on long-polling, namespaces with their socket counts, and the
//!   per-second counts of connections, disconnections, packets and bytes in and out
//!   (`aggregatedEvents`); Volley adds `memoryUsage.rss` (bytes, Linux);
//! - in development mode ([`Mode::Development`], the default): `all_sockets` on connection
//!   (every socket of every namespace, on every server), then `socket_connected`,
//!   `socket_updated`, `socket_disconnected`, `room_joined`, `room_left`, `event_received`,
//!   `event_sent` as they happen. To do that, development mode keeps
//!   `{"_admin": {"clientId", "transport"}}` in each socket's data, where the npm package
//!   keeps it (other servers of a cluster read it there); the UI never shows it.
//!
//! [`@socket.io/admin-ui`]: https://www.npmjs.com/package/@socket.io/admin-ui

use std::fmt;

use serde_json::{Value, json};
use volley::{Socket, SocketIo};

mod actions;
mod auth;
mod live;
mod options;
mod serialize;
mod stats;

pub use options::{AdminOptions, Auth, Mode};

/// Why [`instrument`] refused its options.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AdminError {
    /// `Auth::Basic`'s hash is not a bcrypt hash (the npm package says "the `password`
    /// field must be a valid bcrypt hash").
    InvalidPasswordHash,
    /// Called outside a tokio runtime (the statistics run on a task).
    NoRuntime,
}

impl fmt::Display for AdminError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::InvalidPasswordHash => "the password must be a valid bcrypt hash",
            Self::NoRuntime => "instrument must be called within a tokio runtime",
        })
    }
}

impl std::error::Error for AdminError {}

/// Serves the admin UI's namespace on `io` (the npm package's `instrument(io, options)`).
///
/// Call it once, from within a tokio runtime, before the namespace is otherwise used; it
/// sets the admin namespace's middleware (with [`Auth::Basic`]) and connection handler.
/// The statistics task runs as long as the runtime does.
pub fn instrument(io: &SocketIo, options: AdminOptions) -> Result<(), AdminError> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| AdminError::NoRuntime)?;
    if let Auth::Basic { password_hash, .. } = &options.auth {
        auth::check_hash(password_hash)?;
    }
    let admin = io.of(&options.namespace);
    match options.auth {
        Auth::None => tracing::warn!("admin UI: authentication is disabled"),
        Auth::Basic {
            username,
            password_hash,
        } => {
            auth::install(&admin, username, password_hash);
        }
    }
    let development = options.mode == Mode::Development;
    let mut features: Vec<&str> = if options.readonly {
        Vec::new()
    } else {
        actions::ACTION_FEATURES.to_vec()
    };
    features.push("AGGREGATED_EVENTS");
    if development {
        features.push("ALL_EVENTS");
    }
    let config = json!({ "supportedFeatures": features });
    let (readonly, io2) = (options.readonly, io.clone());
    admin.on_connection(move |socket: Socket| {
        let (config, io) = (config.clone(), io2.clone());
        async move {
            if !readonly {
                actions::register(&io, &socket);
            }
            let _ = socket.emit("config", &config);
            if development {
                let _ = socket.emit("all_sockets", &all_sockets(&io).await);
            }
        }
    });
    let live = development.then(|| {
        let live = live::Live::new(admin.clone());
        io.observe(live.clone());
        live
    });
    let identity = stats::Identity::new(options.server_id);
    let io = io.clone();
    runtime.spawn(async move {
        let mut tick = tokio::time::interval(stats::SAMPLE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last = stats::totals(&io.metrics());
        let mut buffer = stats::EventBuffer::default();
        let mut n: u32 = 0;
        loop {
            tick.tick().await;
            let now = stats::totals(&io.metrics());
            buffer.push_delta(stats::this_second_ms(), &last, &now);
            last = now;
            if let Some(live) = &live {
                live.check_upgrades();
            }
            if n % stats::SAMPLES_PER_STATS == 0 {
                let payload = stats::server_stats(&io, &identity, &now, buffer.take());
                let _ = admin.emit("server_stats", &payload);
            }
            n = n.wrapping_add(1);
        }
    });
    Ok(())
}

/// Every socket of every namespace, on every server of the cluster (`all_sockets`).
async fn all_sockets(io: &SocketIo) -> Vec<Value> {
    let mut out = Vec::new();
    for ns in io.namespace_handles() {
        match ns.fetch_sockets().await {
            Ok(list) => out.extend(list.iter().map(|s| match ns.get_socket(s.id()) {
                Some(local) => serialize::local(&local),
                None => serialize::remote(s, ns.name()),
            })),
            Err(e) => {
                tracing::debug!(error = %e, namespace = ns.name(), "admin: fetch_sockets failed")
            }
        }
    }
    out
}
