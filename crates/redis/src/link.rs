//! The two Redis connections of one server and the tasks that keep them alive.
//!
//! - The **subscriber** connection (RESP3, so one multiplexed connection carries SUBSCRIBE,
//!   PSUBSCRIBE and SSUBSCRIBE alike) is owned by the supervisor task. Messages arrive as
//!   RESP3 pushes and are handed to the processing task through a bounded queue; when it is
//!   full, the message is dropped and counted (never blocking the connection, so Redis never
//!   closes it for its output buffer).
//! - The **publisher** connection carries PUBLISH/SPUBLISH (sent in order, pipelined in
//!   batches by the publisher task) and the few commands (`PUBSUB NUMSUB`).
//! - The supervisor keeps the *desired* subscription set. After every (re)connection it
//!   subscribes all of it again and only then marks the link healthy; it pings the
//!   subscriber connection to notice a half-open socket, and reconnects with a capped
//!   backoff whenever either connection fails.

mod conn;
mod publisher;
mod supervisor;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};
use volley_core::adapter::AdapterError;

use self::conn::Conn;
pub(crate) use self::conn::Target;

/// What the processing task receives.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// A message on a subscribed channel.
    Message { channel: String, payload: Bytes },
    /// An entry of the stream (streams mode), with its id.
    Entry {
        id: String,
        fields: Vec<(Bytes, Bytes)>,
    },
    /// Streams mode: the reader (re)starts after this entry id; every entry up to it has
    /// been queued before.
    Position(String),
    /// Streams mode: a restore asks to join a socket to its rooms at an exact point of the
    /// stream order (connection state recovery).
    Barrier(crate::session::Barrier),
}

/// Which publish command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PubCmd {
    Publish,
    SPublish,
}

/// A command of the ordered publish queue (PUBLISH, SPUBLISH, XADD, SET), and who wants
/// its reply (as a string: an XADD's entry id).
struct Outgoing {
    cmd: redis::Cmd,
    reply: Option<oneshot::Sender<String>>,
}

/// What the adapter wants to be subscribed to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Subs {
    pub(crate) channels: BTreeSet<String>,
    pub(crate) patterns: BTreeSet<String>,
    pub(crate) shard: BTreeSet<String>,
}

enum Ctl {
    /// The desired set changed.
    Sync,
    /// Connection `generation` failed.
    Lost(u64),
    /// Redis unsubscribed subscriber connection `generation` from this shard channel by
    /// itself (its slot moved to another node).
    Unsubscribed(u64, String),
    /// Stop.
    Close,
}

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LinkState {
    pub(crate) healthy: bool,
    /// The desired-set revision the subscriber last confirmed.
    synced: u64,
    /// Streams mode: whether the stream reader is reading.
    pub(crate) reading: bool,
    /// The link was closed.
    pub(crate) closed: bool,
}

/// Counters, for monitoring.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) dropped_incoming: AtomicU64,
    pub(crate) dropped_outgoing: AtomicU64,
    pub(crate) decode_errors: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    pub(crate) request_timeouts: AtomicU64,
}

/// Link settings.
#[derive(Debug, Clone)]
pub(crate) struct LinkConfig {
    pub(crate) incoming_capacity: usize,
    pub(crate) outgoing_capacity: usize,
    pub(crate) ping_interval: Duration,
    pub(crate) command_timeout: Duration,
    pub(crate) max_backoff: Duration,
}

pub(crate) struct Link {
    target: Target,
    config: LinkConfig,
    /// The publisher connection and its generation, while healthy.
    conn: Mutex<Option<(u64, Conn)>>,
    healthy: AtomicBool,
    desired: Mutex<(u64, Subs)>,
    ctl: mpsc::UnboundedSender<Ctl>,
    pub(crate) state: watch::Sender<LinkState>,
    /// Whether a stream reader must be reading for the link to be ready.
    needs_reader: AtomicBool,
    out: mpsc::Sender<Outgoing>,
    /// The queue to the processing task, weakly (only to measure its backlog: holding it
    /// would keep the processing task alive).
    incoming: mpsc::WeakSender<Incoming>,
    pub(crate) counters: Arc<Counters>,
    last_error: Mutex<String>,
}

impl Link {
    /// Starts the supervisor and publisher tasks; incoming messages go to the returned
    /// receiver. Does not wait for the connection.
    pub(crate) fn start(
        target: Target,
        config: LinkConfig,
    ) -> (Arc<Self>, mpsc::Sender<Incoming>, mpsc::Receiver<Incoming>) {
        let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
        let (in_tx, in_rx) = mpsc::channel(config.incoming_capacity.max(1));
        let (out_tx, out_rx) = mpsc::channel(config.outgoing_capacity.max(1));
        let link = Arc::new(Self {
            target,
            config,
            conn: Mutex::new(None),
            healthy: AtomicBool::new(false),
            desired: Mutex::new((0, Subs::default())),
            ctl: ctl_tx,
            state: watch::Sender::new(LinkState::default()),
            needs_reader: AtomicBool::new(false),
            out: out_tx,
            incoming: in_tx.downgrade(),
            counters: Arc::default(),
            last_error: Mutex::new("not connected yet".into()),
        });
        tokio::spawn(supervisor::supervise(link.clone(), ctl_rx, in_tx.clone()));
        tokio::spawn(publisher::publish_loop(Arc::downgrade(&link), out_rx));
        (link, in_tx, in_rx)
    }

    pub(crate) fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Acquire)
    }

    /// Whether the link is up: connected, and in Streams mode its reader reading.
    pub(crate) fn is_up(&self) -> bool {
        let state = *self.state.borrow();
        // The flag `is_healthy` reads goes down first when the connection is lost.
        self.is_healthy()
            && !state.closed
            && (state.reading || !self.needs_reader.load(Ordering::Acquire))
    }

    /// Messages received from Redis (pub/sub messages, or stream entries) not yet taken by
    /// the processing task.
    pub(crate) fn incoming_backlog(&self) -> usize {
        self.incoming
            .upgrade()
            .map_or(0, |tx| tx.max_capacity() - tx.capacity())
    }

    pub(crate) fn unavailable(&self) -> AdapterError {
        let why = self
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        AdapterError::Unavailable(format!("redis unavailable ({why})"))
    }

    /// Changes the desired subscriptions; the supervisor applies them.
    pub(crate) fn update_subs(&self, f: impl FnOnce(&mut Subs)) {
        {
            let mut d = self.desired.lock().unwrap_or_else(|p| p.into_inner());
            let before = d.1.clone();
            f(&mut d.1);
            if d.1 == before {
                return;
            }
            d.0 += 1;
        }
        let _ = self.ctl.send(Ctl::Sync);
    }

    /// Waits until the link is healthy and every subscription asked for so far is
    /// confirmed by Redis.
    pub(crate) async fn ready(&self, timeout: Duration) -> Result<(), AdapterError> {
        let want = self.desired.lock().unwrap_or_else(|p| p.into_inner()).0;
        let mut rx = self.state.subscribe();
        let reader = self.needs_reader.load(Ordering::Acquire);
        let wait = rx.wait_for(|s| s.healthy && s.synced >= want && (s.reading || !reader));
        match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(self.unavailable()),
        }
    }

    /// Queues a publish. Fails at once when Redis is unreachable or the queue is full
    /// (pub/sub is at-most-once: the message is then lost, as with Node's adapter).
    pub(crate) fn publish(
        &self,
        cmd: PubCmd,
        channel: String,
        payload: Vec<u8>,
    ) -> Result<(), AdapterError> {
        let name = match cmd {
            PubCmd::Publish => "PUBLISH",
            PubCmd::SPublish => "SPUBLISH",
        };
        let mut c = redis::cmd(name);
        c.arg(channel).arg(payload);
        self.send(c)
    }

    /// Queues a command after the publishes queued so far; fails at once like
    /// [`publish`](Self::publish).
    pub(crate) fn send(&self, cmd: redis::Cmd) -> Result<(), AdapterError> {
        self.enqueue(cmd, None)
    }

    /// Like [`send`](Self::send); the receiver gets the command's reply as a string (an
    /// XADD's entry id), or is dropped if the command fails.
    pub(crate) fn send_with_reply(
        &self,
        cmd: redis::Cmd,
    ) -> Result<oneshot::Receiver<String>, AdapterError> {
        let (tx, rx) = oneshot::channel();
        self.enqueue(cmd, Some(tx))?;
        Ok(rx)
    }

    fn enqueue(
        &self,
        cmd: redis::Cmd,
        reply: Option<oneshot::Sender<String>>,
    ) -> Result<(), AdapterError> {
        if !self.is_healthy() {
            self.counters
                .dropped_outgoing
                .fetch_add(1, Ordering::Relaxed);
            return Err(self.unavailable());
        }
        self.out.try_send(Outgoing { cmd, reply }).map_err(|_| {
            self.counters
                .dropped_outgoing
                .fetch_add(1, Ordering::Relaxed);
            AdapterError::QueueFull
        })
    }

    /// Runs a command on the publisher connection.
    pub(crate) async fn query<T: redis::FromRedisValue>(
        &self,
        cmd: &redis::Cmd,
    ) -> Result<T, AdapterError> {
        let (generation, mut conn) = self.publisher()?;
        let reply = tokio::time::timeout(self.config.command_timeout, cmd.query_async(&mut conn));
        self.outcome(generation, reply.await)
    }

    /// Runs a command on the publisher connection, on the cluster node that owns `key`'s
    /// slot (see [`Conn::query_at`]).
    pub(crate) async fn query_at(
        &self,
        cmd: &redis::Cmd,
        key: &str,
    ) -> Result<redis::Value, AdapterError> {
        let (generation, mut conn) = self.publisher()?;
        let reply = tokio::time::timeout(
            self.config.command_timeout,
            conn.query_at(cmd, key.as_bytes()),
        );
        self.outcome(generation, reply.await)
    }

    /// Runs a pipeline on the publisher connection.
    pub(crate) async fn query_pipe<T: redis::FromRedisValue>(
        &self,
        pipe: &redis::Pipeline,
    ) -> Result<T, AdapterError> {
        let (generation, mut conn) = self.publisher()?;
        let reply = tokio::time::timeout(self.config.command_timeout, pipe.query_async(&mut conn));
        self.outcome(generation, reply.await)
    }

    /// The publisher connection and its generation, or why there is none.
    fn publisher(&self) -> Result<(u64, Conn), AdapterError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner()).clone();
        conn.ok_or_else(|| self.unavailable())
    }

    /// A command's reply as the adapter reports it; a lost connection is told to the
    /// supervisor, which reconnects.
    fn outcome<T>(
        &self,
        generation: u64,
        reply: Result<redis::RedisResult<T>, tokio::time::error::Elapsed>,
    ) -> Result<T, AdapterError> {
        match reply {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                if e.is_io_error() || e.is_connection_dropped() {
                    let _ = self.ctl.send(Ctl::Lost(generation));
                }
                Err(AdapterError::Unavailable(format!("redis: {e}")))
            }
            Err(_) => Err(AdapterError::Unavailable("redis command timed out".into())),
        }
    }

    /// A stream reader will run: [`ready`](Self::ready) waits for it too.
    pub(crate) fn expect_reader(&self) {
        self.needs_reader.store(true, Ordering::Release);
    }

    /// The Redis client (for connections of their own, like the stream reader's; on a
    /// cluster, the first seed's).
    pub(crate) fn client(&self) -> &redis::Client {
        &self.target.single
    }

    /// The link settings.
    pub(crate) fn config(&self) -> &LinkConfig {
        &self.config
    }

    /// Stops the tasks and closes the connections.
    pub(crate) fn close(&self) {
        let _ = self.ctl.send(Ctl::Close);
    }

    fn set_error(&self, e: &dyn std::fmt::Display) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = e.to_string();
    }
}

pub(crate) fn bytes_of(v: &redis::Value) -> Option<Bytes> {
    match v {
        redis::Value::BulkString(b) => Some(Bytes::copy_from_slice(b)),
        redis::Value::SimpleString(s) => Some(Bytes::copy_from_slice(s.as_bytes())),
        _ => None,
    }
}
