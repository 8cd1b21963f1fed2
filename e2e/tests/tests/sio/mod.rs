//! What the Socket.IO interop tests share: an in-process Volley server on a free loopback
//! port, and a channel that carries what the server saw into the test.
//!
//! Handlers report through an [`Obs`] (a JSON object with a `"kind"` key each); the test
//! waits for a report with [`Observer::wait`], which gives up after [`WAIT`] instead of
//! hanging. No test sleeps to "let things happen": it waits for a concrete report.

#![allow(dead_code)] // each test binary uses a different part

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use volley::SocketIo;

/// The longest a test waits for one server-side report: a bound on a hang, never reached
/// unless something is broken, however busy the machine.
pub(crate) const WAIT: Duration = Duration::from_secs(30);

/// A Volley server on `127.0.0.1:<free port>`; dropping it stops accepting connections.
pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    pub(crate) io: SocketIo,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `io` on a free loopback port.
pub(crate) async fn serve(io: SocketIo) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("bound address");
    let service = io.service();
    let task = tokio::spawn(volley::serve(listener, service));
    Server { addr, io, task }
}

/// The sending side, cloned into handlers.
#[derive(Clone, Debug)]
pub(crate) struct Obs(mpsc::UnboundedSender<Value>);

impl Obs {
    /// Reports `value`, a JSON object with a `"kind"` key.
    pub(crate) fn send(&self, value: Value) {
        assert!(
            value.get("kind").is_some(),
            "a report needs a kind: {value}"
        );
        // The test may be over (and the receiver gone) while the server still runs.
        let _ = self.0.send(value);
    }
}

/// The receiving side, in the test.
#[derive(Debug)]
pub(crate) struct Observer {
    rx: mpsc::UnboundedReceiver<Value>,
    /// Received and not yet taken by `wait` / `take`.
    pending: Vec<Value>,
    /// Everything received, for failure messages.
    log: Vec<Value>,
}

pub(crate) fn observer() -> (Obs, Observer) {
    let (tx, rx) = mpsc::unbounded_channel();
    (
        Obs(tx),
        Observer {
            rx,
            pending: Vec::new(),
            log: Vec::new(),
        },
    )
}

fn kind_of(v: &Value) -> &str {
    v.get("kind").and_then(Value::as_str).unwrap_or("")
}

impl Observer {
    /// The next report of `kind` not taken yet, waiting at most [`WAIT`] for it.
    #[track_caller]
    pub(crate) fn wait<'a>(
        &'a mut self,
        kind: &'a str,
    ) -> impl std::future::Future<Output = Value> + 'a {
        let caller = std::panic::Location::caller();
        async move {
            match self.wait_within(kind, WAIT).await {
                Some(v) => v,
                None => panic!(
                    "{caller}: no server report of kind {kind:?} within {WAIT:?}; \
                     reports so far: {:#?}",
                    self.log
                ),
            }
        }
    }

    /// Like [`wait`](Self::wait) with a chosen limit; `None` when nothing came in time.
    pub(crate) async fn wait_within(&mut self, kind: &str, limit: Duration) -> Option<Value> {
        if let Some(i) = self.pending.iter().position(|v| kind_of(v) == kind) {
            return Some(self.pending.remove(i));
        }
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(v)) => {
                    self.log.push(v.clone());
                    if kind_of(&v) == kind {
                        return Some(v);
                    }
                    self.pending.push(v);
                }
                Ok(None) | Err(_) => return None,
            }
        }
    }

    /// Every report of `kind` received so far and not taken yet, without waiting.
    pub(crate) fn take(&mut self, kind: &str) -> Vec<Value> {
        while let Ok(v) = self.rx.try_recv() {
            self.log.push(v.clone());
            self.pending.push(v);
        }
        let (taken, rest) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|v| kind_of(v) == kind);
        self.pending = rest;
        taken
    }

    /// Everything received so far, for failure messages.
    pub(crate) fn log(&self) -> &[Value] {
        &self.log
    }
}

/// The string at `key` of a JSON object, or a panic naming it.
#[track_caller]
pub(crate) fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string {key:?} in {v}"))
}
