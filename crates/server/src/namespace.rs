//! Namespaces: static ones by name, dynamic ones by pattern or by an async decision.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, RwLock, Weak};

use serde_json::Value;

use crate::error::ConnectError;
use crate::handler::{BoxFuture, ConnectHandler, Middleware};
use crate::server::IoInner;
use crate::socket::Socket;

/// What runs when a client joins a namespace: middleware, then the connection handler.
/// Dynamic namespaces share one set between the parent and every child it creates.
#[derive(Default)]
pub(crate) struct NsHandlers {
    pub(crate) middleware: RwLock<Vec<Middleware>>,
    pub(crate) on_connection: RwLock<Option<ConnectHandler>>,
}

pub(crate) struct NsInner {
    pub(crate) name: String,
    pub(crate) io: Weak<IoInner>,
    pub(crate) handlers: Arc<NsHandlers>,
    pub(crate) sockets: RwLock<HashMap<Arc<str>, Socket>>,
}

impl NsInner {
    pub(crate) fn new(name: String, io: Weak<IoInner>, handlers: Arc<NsHandlers>) -> Arc<Self> {
        Arc::new(Self {
            name,
            io,
            handlers,
            sockets: RwLock::new(HashMap::new()),
        })
    }

    pub(crate) fn io(&self) -> Option<Arc<IoInner>> {
        self.io.upgrade()
    }

    pub(crate) fn add_socket(&self, socket: &Socket) {
        let mut s = self.sockets.write().unwrap_or_else(|p| p.into_inner());
        s.insert(socket.id_arc(), socket.clone());
    }

    pub(crate) fn remove_socket(&self, socket: &Socket) {
        let mut s = self.sockets.write().unwrap_or_else(|p| p.into_inner());
        s.remove(socket.id());
    }

    pub(crate) fn sockets(&self) -> Vec<Socket> {
        let s = self.sockets.read().unwrap_or_else(|p| p.into_inner());
        s.values().cloned().collect()
    }
}

/// A namespace handle, as Node's `io.of(name)`: set its middleware and connection handler,
/// list its sockets, emit to all of them. Cheap to clone.
///
/// A dynamic namespace's handle configures every child namespace it creates.
#[derive(Clone)]
pub struct Namespace {
    pub(crate) inner: Arc<NsInner>,
}

impl fmt::Debug for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Namespace")
            .field("name", &self.inner.name)
            .finish()
    }
}

impl Namespace {
    /// The namespace name (for a dynamic namespace's handle, its pattern).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Sets the handler run for each socket that joins, after middleware accepted it.
    pub fn on_connection<F, Fut>(&self, handler: F) -> &Self
    where
        F: Fn(Socket) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let h: ConnectHandler = Arc::new(move |s| Box::pin(handler(s)));
        *self
            .inner
            .handlers
            .on_connection
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Some(h);
        self
    }

    /// Adds a middleware, run in order for each socket before it joins; an `Err` refuses
    /// the socket with `CONNECT_ERROR` (the client's `connect_error`, with `message` and
    /// `data`).
    pub fn middleware<F, Fut>(&self, middleware: F) -> &Self
    where
        F: Fn(Socket) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), ConnectError>> + Send + 'static,
    {
        let m: Middleware = Arc::new(move |s| Box::pin(middleware(s)));
        self.inner
            .handlers
            .middleware
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(m);
        self
    }

    /// The sockets connected to this namespace on this server.
    pub fn sockets(&self) -> Vec<Socket> {
        self.inner.sockets()
    }

    /// A connected socket by id.
    pub fn get_socket(&self, id: &str) -> Option<Socket> {
        let s = self.inner.sockets.read().unwrap_or_else(|p| p.into_inner());
        s.get(id).cloned()
    }
}

/// Decides whether a dynamic namespace exists: `async fn(name, auth) -> bool`.
pub(crate) type NsPredicate = Arc<dyn Fn(&str, &Value) -> BoxFuture<bool> + Send + Sync>;

pub(crate) enum Matcher {
    /// A name pattern where `*` matches any run of characters other than `/`.
    Pattern(String),
    /// An async decision.
    Predicate(NsPredicate),
}

pub(crate) struct DynamicNs {
    pub(crate) matcher: Matcher,
    pub(crate) handlers: Arc<NsHandlers>,
}

impl DynamicNs {
    pub(crate) async fn matches(&self, name: &str, auth: &Value) -> bool {
        match &self.matcher {
            Matcher::Pattern(p) => glob_match(p.as_bytes(), name.as_bytes()),
            Matcher::Predicate(f) => f(name, auth).await,
        }
    }
}

/// `*` matches any run of bytes except `/`; everything else matches itself.
pub(crate) fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => {
            let mut i = 0;
            loop {
                if glob_match(rest, &name[i..]) {
                    return true;
                }
                if i == name.len() || name[i] == b'/' {
                    return false;
                }
                i += 1;
            }
        }
        Some((c, rest)) => name.first() == Some(c) && glob_match(rest, &name[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs() {
        assert!(glob_match(b"/room-*", b"/room-1"));
        assert!(glob_match(b"/room-*", b"/room-"));
        assert!(!glob_match(b"/room-*", b"/room-1/x"));
        assert!(glob_match(b"/a/*/c", b"/a/b/c"));
        assert!(!glob_match(b"/a", b"/ab"));
    }
}
