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

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, PushInfo, PushKind};
use tokio::sync::{mpsc, oneshot, watch};
use volley_core::adapter::AdapterError;

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
    client: redis::Client,
    config: LinkConfig,
    /// The publisher connection and its generation, while healthy.
    conn: Mutex<Option<(u64, MultiplexedConnection)>>,
    healthy: AtomicBool,
    desired: Mutex<(u64, Subs)>,
    ctl: mpsc::UnboundedSender<Ctl>,
    pub(crate) state: watch::Sender<LinkState>,
    /// Whether a stream reader must be reading for the link to be ready.
    needs_reader: AtomicBool,
    out: mpsc::Sender<Outgoing>,
    pub(crate) counters: Arc<Counters>,
    last_error: Mutex<String>,
}

impl Link {
    /// Starts the supervisor and publisher tasks; incoming messages go to the returned
    /// receiver. Does not wait for the connection.
    pub(crate) fn start(
        client: redis::Client,
        config: LinkConfig,
    ) -> (Arc<Self>, mpsc::Sender<Incoming>, mpsc::Receiver<Incoming>) {
        let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
        let (in_tx, in_rx) = mpsc::channel(config.incoming_capacity.max(1));
        let (out_tx, out_rx) = mpsc::channel(config.outgoing_capacity.max(1));
        let link = Arc::new(Self {
            client,
            config,
            conn: Mutex::new(None),
            healthy: AtomicBool::new(false),
            desired: Mutex::new((0, Subs::default())),
            ctl: ctl_tx,
            state: watch::Sender::new(LinkState::default()),
            needs_reader: AtomicBool::new(false),
            out: out_tx,
            counters: Arc::default(),
            last_error: Mutex::new("not connected yet".into()),
        });
        tokio::spawn(supervise(link.clone(), ctl_rx, in_tx.clone()));
        tokio::spawn(publish_loop(Arc::downgrade(&link), out_rx));
        (link, in_tx, in_rx)
    }

    pub(crate) fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Acquire)
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
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let Some((generation, mut conn)) = conn else {
            return Err(self.unavailable());
        };
        match tokio::time::timeout(self.config.command_timeout, cmd.query_async(&mut conn)).await {
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

    /// The Redis client (for connections of their own, like the stream reader's).
    pub(crate) fn client(&self) -> &redis::Client {
        &self.client
    }

    /// The link settings.
    pub(crate) fn config(&self) -> &LinkConfig {
        &self.config
    }

    /// Runs a pipeline on the publisher connection.
    pub(crate) async fn query_pipe<T: redis::FromRedisValue>(
        &self,
        pipe: &redis::Pipeline,
    ) -> Result<T, AdapterError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let Some((generation, mut conn)) = conn else {
            return Err(self.unavailable());
        };
        match tokio::time::timeout(self.config.command_timeout, pipe.query_async(&mut conn)).await {
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

/// The RESP3 push handler of subscriber connection `generation`: never blocks.
fn push_sender(
    generation: u64,
    incoming: mpsc::Sender<Incoming>,
    ctl: mpsc::UnboundedSender<Ctl>,
    counters: Arc<Counters>,
) -> impl Fn(PushInfo) -> Result<(), ()> + Send + Sync + 'static {
    move |info: PushInfo| {
        let (channel, payload) = match info.kind {
            PushKind::Message | PushKind::SMessage if info.data.len() >= 2 => {
                (bytes_of(&info.data[0]), bytes_of(&info.data[1]))
            }
            PushKind::PMessage if info.data.len() >= 3 => {
                (bytes_of(&info.data[1]), bytes_of(&info.data[2]))
            }
            PushKind::Disconnection => {
                let _ = ctl.send(Ctl::Lost(generation));
                return Ok(());
            }
            // Redis unsubscribes shard channels by itself when their slot moves: subscribe
            // them again (a no-op for our own SUNSUBSCRIBEs).
            PushKind::SUnsubscribe => {
                let _ = ctl.send(Ctl::Sync);
                return Ok(());
            }
            _ => return Ok(()),
        };
        let (Some(channel), Some(payload)) = (channel, payload) else {
            return Ok(());
        };
        let channel = String::from_utf8_lossy(&channel).into_owned();
        // Overflow policy: never wait; drop the newest message and count it.
        if incoming
            .try_send(Incoming::Message { channel, payload })
            .is_err()
        {
            let n = counters.dropped_incoming.fetch_add(1, Ordering::Relaxed);
            if n.is_power_of_two() {
                tracing::warn!(
                    dropped = n + 1,
                    "redis adapter: incoming queue full, message dropped"
                );
            }
        }
        Ok(())
    }
}

async fn connect(
    link: &Arc<Link>,
    generation: u64,
    ctl: &mpsc::UnboundedSender<Ctl>,
    incoming: &mpsc::Sender<Incoming>,
) -> redis::RedisResult<(MultiplexedConnection, MultiplexedConnection)> {
    let timeout = Some(link.config.command_timeout);
    let sub_cfg = AsyncConnectionConfig::new()
        .set_connection_timeout(timeout)
        .set_response_timeout(timeout)
        .set_push_sender(push_sender(
            generation,
            incoming.clone(),
            ctl.clone(),
            link.counters.clone(),
        ));
    let sub = link
        .client
        .get_multiplexed_async_connection_with_config(&sub_cfg)
        .await?;
    let pub_cfg = AsyncConnectionConfig::new()
        .set_connection_timeout(timeout)
        .set_response_timeout(timeout);
    let publisher = link
        .client
        .get_multiplexed_async_connection_with_config(&pub_cfg)
        .await?;
    Ok((sub, publisher))
}

/// Brings the subscriber's subscriptions to the desired set; returns the revision reached.
async fn sync_subs(
    link: &Link,
    conn: &mut MultiplexedConnection,
    current: &mut Subs,
) -> redis::RedisResult<u64> {
    let (rev, want) = link
        .desired
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let sets = [
        (
            &want.channels,
            &mut current.channels,
            "SUBSCRIBE",
            "UNSUBSCRIBE",
        ),
        (
            &want.patterns,
            &mut current.patterns,
            "PSUBSCRIBE",
            "PUNSUBSCRIBE",
        ),
        // One channel per command: channels of different slots in one SSUBSCRIBE are refused
        // (CROSSSLOT) on a Redis Cluster.
        (
            &want.shard,
            &mut current.shard,
            "SSUBSCRIBE",
            "SUNSUBSCRIBE",
        ),
    ];
    for (want, have, sub, unsub) in sets {
        let add: Vec<String> = want.difference(have).cloned().collect();
        let del: Vec<String> = have.difference(want).cloned().collect();
        for ch in add {
            redis::cmd(sub).arg(&ch).exec_async(&mut *conn).await?;
            have.insert(ch);
        }
        for ch in del {
            redis::cmd(unsub).arg(&ch).exec_async(&mut *conn).await?;
            have.remove(&ch);
        }
    }
    Ok(rev)
}

async fn supervise(
    link: Arc<Link>,
    mut ctl_rx: mpsc::UnboundedReceiver<Ctl>,
    incoming: mpsc::Sender<Incoming>,
) {
    let ctl_tx = link.ctl.clone();
    let mut generation = 0u64;
    let mut backoff = Duration::from_millis(50);
    let mut ever_connected = false;
    'outer: loop {
        generation += 1;
        match connect(&link, generation, &ctl_tx, &incoming).await {
            Ok((mut sub, publisher)) => {
                let mut current = Subs::default();
                match sync_subs(&link, &mut sub, &mut current).await {
                    Ok(rev) => {
                        *link.conn.lock().unwrap_or_else(|p| p.into_inner()) =
                            Some((generation, publisher));
                        link.healthy.store(true, Ordering::Release);
                        link.state.send_modify(|s| {
                            s.healthy = true;
                            s.synced = rev;
                        });
                        if ever_connected {
                            link.counters.reconnects.fetch_add(1, Ordering::Relaxed);
                            tracing::info!("redis adapter: reconnected and resubscribed");
                        }
                        ever_connected = true;
                        backoff = Duration::from_millis(50);
                        let mut ping = tokio::time::interval(link.config.ping_interval);
                        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                        ping.tick().await;
                        loop {
                            tokio::select! {
                                c = ctl_rx.recv() => match c {
                                    None | Some(Ctl::Close) => {
                                        mark_down(&link, "closed");
                                        link.state.send_modify(|s| s.closed = true);
                                        break 'outer;
                                    }
                                    Some(Ctl::Sync) => match sync_subs(&link, &mut sub, &mut current).await {
                                        Ok(rev) => {
                                            link.state.send_modify(|s| s.synced = rev);
                                        }
                                        Err(e) => {
                                            mark_down(&link, &e);
                                            break;
                                        }
                                    },
                                    Some(Ctl::Lost(g)) if g == generation => {
                                        mark_down(&link, "connection lost");
                                        break;
                                    }
                                    Some(Ctl::Lost(_)) => {}
                                },
                                _ = ping.tick() => {
                                    let pong = tokio::time::timeout(
                                        link.config.command_timeout,
                                        redis::cmd("PING").query_async::<redis::Value>(&mut sub),
                                    ).await;
                                    if !matches!(pong, Ok(Ok(_))) {
                                        mark_down(&link, "no answer to PING");
                                        break;
                                    }
                                }
                            }
                        }
                    }
                    Err(e) => mark_down(&link, &e),
                }
            }
            Err(e) => mark_down(&link, &e),
        }
        // Back off, still listening for Close (Sync and stale Lost are covered by the full
        // resubscription after reconnecting).
        let sleep = tokio::time::sleep(backoff);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => break,
                c = ctl_rx.recv() => match c {
                    None | Some(Ctl::Close) => {
                        link.state.send_modify(|s| s.closed = true);
                        break 'outer;
                    }
                    Some(_) => {}
                },
            }
        }
        backoff = (backoff * 2).min(link.config.max_backoff);
    }
}

fn mark_down(link: &Link, why: impl std::fmt::Display) {
    let was = link.healthy.swap(false, Ordering::AcqRel);
    *link.conn.lock().unwrap_or_else(|p| p.into_inner()) = None;
    link.set_error(&why);
    link.state.send_modify(|s| s.healthy = false);
    if was {
        tracing::warn!(error = %why, "redis adapter: connection lost; local delivery goes on");
    }
}

/// Holds the link weakly: once the link is gone its sender is dropped and this ends.
async fn publish_loop(link: std::sync::Weak<Link>, mut rx: mpsc::Receiver<Outgoing>) {
    let mut batch = Vec::with_capacity(256);
    while rx.recv_many(&mut batch, 256).await > 0 {
        let Some(link) = link.upgrade() else {
            return;
        };
        let conn = link.conn.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let n = batch.len() as u64;
        match conn {
            None => {
                link.counters
                    .dropped_outgoing
                    .fetch_add(n, Ordering::Relaxed);
            }
            Some((generation, mut conn)) => {
                let mut pipe = redis::pipe();
                let mut replies = Vec::new();
                for o in batch.drain(..) {
                    pipe.add_command(o.cmd);
                    match o.reply {
                        Some(tx) => replies.push(tx),
                        None => {
                            pipe.ignore();
                        }
                    }
                }
                let result = if replies.is_empty() {
                    pipe.exec_async(&mut conn).await
                } else {
                    pipe.query_async::<Vec<redis::Value>>(&mut conn)
                        .await
                        .map(|values| {
                            for (tx, v) in replies.into_iter().zip(values) {
                                if let Some(b) = bytes_of(&v) {
                                    let _ = tx.send(String::from_utf8_lossy(&b).into_owned());
                                }
                            }
                        })
                };
                if let Err(e) = result {
                    link.counters
                        .dropped_outgoing
                        .fetch_add(n, Ordering::Relaxed);
                    tracing::debug!(error = %e, "redis adapter: publish failed");
                    if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() {
                        let _ = link.ctl.send(Ctl::Lost(generation));
                    }
                }
            }
        }
        batch.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(i: Incoming) -> Bytes {
        match i {
            Incoming::Message { payload, .. } => payload,
            Incoming::Entry { .. } => panic!("not a message"),
        }
    }

    fn channel(i: Incoming) -> String {
        match i {
            Incoming::Message { channel, .. } => channel,
            Incoming::Entry { .. } => panic!("not a message"),
        }
    }

    fn message(channel: &str, payload: &str) -> PushInfo {
        PushInfo {
            kind: PushKind::Message,
            data: vec![
                redis::Value::BulkString(channel.as_bytes().to_vec()),
                redis::Value::BulkString(payload.as_bytes().to_vec()),
            ],
        }
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_blocking() {
        let counters = Arc::new(Counters::default());
        let (tx, mut rx) = mpsc::channel(2);
        let (ctl, mut ctl_rx) = mpsc::unbounded_channel();
        let push = push_sender(7, tx, ctl, counters.clone());
        for i in 0..5 {
            assert!(push(message("ch", &i.to_string())).is_ok());
        }
        assert_eq!(counters.dropped_incoming.load(Ordering::Relaxed), 3);
        assert_eq!(&payload(rx.try_recv().unwrap())[..], b"0");
        assert_eq!(&payload(rx.try_recv().unwrap())[..], b"1");
        assert!(rx.try_recv().is_err());
        // Room again after the processing task caught up.
        assert!(push(message("ch", "5")).is_ok());
        assert_eq!(&payload(rx.try_recv().unwrap())[..], b"5");
        // A lost connection is never dropped: it goes to the supervisor.
        let _ = push(PushInfo {
            kind: PushKind::Disconnection,
            data: vec![],
        });
        assert!(matches!(ctl_rx.try_recv(), Ok(Ctl::Lost(7))));
    }

    #[test]
    fn pattern_and_shard_messages_carry_their_channel() {
        let counters = Arc::new(Counters::default());
        let (tx, mut rx) = mpsc::channel(4);
        let (ctl, _ctl_rx) = mpsc::unbounded_channel();
        let push = push_sender(1, tx, ctl, counters);
        let bulk = |s: &str| redis::Value::BulkString(s.as_bytes().to_vec());
        let _ = push(PushInfo {
            kind: PushKind::PMessage,
            data: vec![bulk("socket.io#/#*"), bulk("socket.io#/#room#"), bulk("x")],
        });
        let _ = push(PushInfo {
            kind: PushKind::SMessage,
            data: vec![bulk("socket.io#/#"), bulk("y")],
        });
        assert_eq!(channel(rx.try_recv().unwrap()), "socket.io#/#room#");
        assert_eq!(channel(rx.try_recv().unwrap()), "socket.io#/#");
    }
}
