//! The options of [`instrument`](crate::instrument), as the npm package's.

use std::fmt;

/// Who may connect to the admin namespace (Node's `auth` option).
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// No authentication (Node's `auth: false`): anyone who reaches the server can watch it
    /// and, unless [`readonly`](AdminOptions::readonly), act on its sockets.
    None,
    /// The UI's username and password, checked against a bcrypt hash of the password
    /// (Node's `{ type: "basic", username, password }`). A successful login gets a session
    /// id (event `session`) that later connections of the UI present instead.
    Basic {
        /// The expected username.
        username: String,
        /// A bcrypt hash of the password (`$2a$`, `$2b$`, `$2y$`), never the password.
        password_hash: String,
    },
}

impl Auth {
    /// Basic authentication with `username` and a bcrypt `password_hash`.
    pub fn basic(username: impl Into<String>, password_hash: impl Into<String>) -> Self {
        Self::Basic {
            username: username.into(),
            password_hash: password_hash.into(),
        }
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            // The hash stays out of logs.
            Self::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .finish_non_exhaustive(),
        }
    }
}

/// What the UI is sent (Node's `mode` option).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Everything: the socket list and live events (connections, rooms, every event in and
    /// out), as well as the statistics. Costs an observer on every socket.
    #[default]
    Development,
    /// Only the statistics every 2 seconds (counts, per-second aggregates).
    Production,
}

/// The options of [`instrument`](crate::instrument), with Node's defaults.
///
/// ```
/// use volley_admin::{AdminOptions, Auth, Mode};
///
/// let options = AdminOptions::new(Auth::basic("admin", "$2b$10$..."))
///     .namespace("/admin")
///     .readonly(true)
///     .mode(Mode::Production)
///     .server_id("eu-1");
/// assert_eq!(options.namespace_name(), "/admin");
/// ```
#[derive(Debug, Clone)]
pub struct AdminOptions {
    pub(crate) namespace: String,
    pub(crate) auth: Auth,
    pub(crate) readonly: bool,
    pub(crate) mode: Mode,
    pub(crate) server_id: Option<String>,
}

impl AdminOptions {
    /// Options with `auth` (required, as in Node) and the defaults: namespace `/admin`,
    /// actions allowed, development mode, the host name as server id.
    pub fn new(auth: Auth) -> Self {
        Self {
            namespace: "/admin".to_owned(),
            auth,
            readonly: false,
            mode: Mode::default(),
            server_id: None,
        }
    }

    /// The admin namespace (default `/admin`).
    pub fn namespace(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.namespace = if name.starts_with('/') {
            name
        } else {
            format!("/{name}")
        };
        self
    }

    /// Refuses the UI's actions (emit, join, leave, disconnect); default `false`.
    pub fn readonly(mut self, yes: bool) -> Self {
        self.readonly = yes;
        self
    }

    /// Development (default) or production mode.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// The id this server shows in the UI (default: the host name); give each server of a
    /// cluster on one host its own.
    pub fn server_id(mut self, id: impl Into<String>) -> Self {
        self.server_id = Some(id.into());
        self
    }

    /// The admin namespace's name.
    pub fn namespace_name(&self) -> &str {
        &self.namespace
    }
}
