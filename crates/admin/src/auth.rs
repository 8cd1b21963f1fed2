//! Basic authentication of the admin namespace: a bcrypt hash of the password, and session
//! ids handed to the UI after a successful login (as the npm package's in-memory store).

use std::collections::{HashSet, VecDeque};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use volley::{ConnectError, Namespace, Socket};

use crate::AdminError;

/// Sessions kept at most; the oldest is forgotten first (its UI logs in again).
const MAX_SESSIONS: usize = 1024;

/// Session ids the UI presents after a login (secrets: never logged).
#[derive(Default)]
struct Sessions {
    set: HashSet<String>,
    order: VecDeque<String>,
}

impl Sessions {
    fn contains(&self, id: &str) -> bool {
        self.set.contains(id)
    }

    fn insert(&mut self, id: String) {
        if self.set.len() >= MAX_SESSIONS
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        self.order.push_back(id.clone());
        self.set.insert(id);
    }
}

/// Checks that `hash` is a bcrypt hash, as the npm package does at start (`getRounds`).
pub(crate) fn check_hash(hash: &str) -> Result<(), AdminError> {
    bcrypt::HashParts::from_str(hash)
        .map(|_| ())
        .map_err(|_| AdminError::InvalidPasswordHash)
}

/// 8 random bytes in hex, as the package's `randomId`.
fn random_id() -> String {
    let mut b = [0u8; 8];
    // An OS without randomness cannot serve sessions safely: refuse the login instead.
    if getrandom::fill(&mut b).is_err() {
        return String::new();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Installs the login middleware on the admin namespace.
pub(crate) fn install(ns: &Namespace, username: String, password_hash: String) {
    let sessions: Arc<Mutex<Sessions>> = Arc::default();
    let (username, hash) = (Arc::new(username), Arc::new(password_hash));
    ns.middleware(move |socket: Socket| {
        let (sessions, username, hash) = (sessions.clone(), username.clone(), hash.clone());
        async move {
            let auth = socket.handshake().auth();
            if let Some(Value::String(sid)) = auth.get("sessionId")
                && lock(&sessions).contains(sid)
            {
                return Ok(());
            }
            let user = auth.get("username").and_then(Value::as_str);
            let password = auth
                .get("password")
                .and_then(Value::as_str)
                .map(str::to_owned);
            if let (Some(user), Some(password)) = (user, password)
                && user == username.as_str()
            {
                // bcrypt is slow on purpose: keep it off the runtime's threads.
                let hash = hash.clone();
                let ok = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash))
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .unwrap_or(false);
                let id = random_id();
                if ok && !id.is_empty() {
                    lock(&sessions).insert(id.clone());
                    let _ = socket.emit("session", &id);
                    return Ok(());
                }
            }
            tracing::debug!("admin UI login refused: invalid credentials");
            Err(ConnectError::new("invalid credentials"))
        }
    });
}

fn lock(s: &Mutex<Sessions>) -> std::sync::MutexGuard<'_, Sessions> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}
