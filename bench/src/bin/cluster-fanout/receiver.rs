//! The receiver role: one child process holding `--clients` connections to one node.
//!
//! It reports to its parent on stdout, one line each:
//! - `ready <connected> <failed>` once every connection attempt has ended;
//! - `done <seq> <at_ns>` when broadcast `seq` has reached every connected client (`at_ns`
//!   is the epoch time of the last arrival);
//! - `lost <n>` when a connection drops after `ready` (the run cannot complete then);
//! - `end <deliveries> <lost>` when told to stop (a `stop` line or the end of stdin).
//!
//! Each client answers Engine.IO pings, so the run may outlast the ping interval.

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncBufReadExt;
use tokio::sync::{Semaphore, mpsc};
use tokio_tungstenite::tungstenite::Message;

use crate::wire::{Res, Ws, broadcast_seq, connect_sio, epoch_ns};

/// Where and how many to connect.
pub(crate) struct ReceiverOpts {
    pub(crate) port: u16,
    pub(crate) clients: usize,
    /// Source addresses `127.0.0.<src_base>` .. `127.0.0.<src_base + src_count - 1>`.
    pub(crate) src_base: u8,
    pub(crate) src_count: u8,
    /// Handshakes in progress at once.
    pub(crate) concurrency: usize,
    /// Per connection attempt.
    pub(crate) timeout: Duration,
}

/// Counts the copies of each broadcast until all clients have one.
struct Tally {
    target: AtomicU64,
    counts: Mutex<HashMap<u64, u64>>,
    deliveries: AtomicU64,
    lost: AtomicU64,
}

/// One line to the parent, flushed at once (the parent waits on it).
fn report(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

impl Tally {
    fn on_broadcast(&self, seq: u64) {
        self.deliveries.fetch_add(1, Ordering::Relaxed);
        let target = self.target.load(Ordering::Relaxed);
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let n = counts.entry(seq).or_insert(0);
        *n += 1;
        if *n == target {
            counts.remove(&seq);
            drop(counts);
            report(&format!("done {seq} {}", epoch_ns()));
        }
    }

    fn on_lost(&self) {
        let lost = self.lost.fetch_add(1, Ordering::Relaxed) + 1;
        report(&format!("lost {lost}"));
    }
}

/// One client after its handshake: counts broadcasts, answers pings, until its connection
/// ends (which the parent hears about as `lost`).
async fn receive(mut ws: Ws, tally: Arc<Tally>) {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => match broadcast_seq(t.as_str()) {
                Some(seq) => tally.on_broadcast(seq),
                None if t.as_str() == "2" && ws.send(Message::text("3")).await.is_err() => break,
                None => {}
            },
            Some(Ok(_)) => {}
            _ => break,
        }
    }
    tally.on_lost();
}

/// Connects every client, reports `ready`, then serves until stdin says stop.
pub(crate) async fn run(o: ReceiverOpts) -> Res<()> {
    let tally = Arc::new(Tally {
        target: AtomicU64::new(u64::MAX),
        counts: Mutex::new(HashMap::new()),
        deliveries: AtomicU64::new(0),
        lost: AtomicU64::new(0),
    });
    let sem = Arc::new(Semaphore::new(o.concurrency.max(1)));
    let (result_tx, mut result_rx) = mpsc::unbounded_channel::<Result<(), String>>();
    for i in 0..o.clients {
        let src = o.src_base + (i % o.src_count.max(1) as usize) as u8;
        let (sem, tally, result_tx) = (sem.clone(), tally.clone(), result_tx.clone());
        let (port, timeout) = (o.port, o.timeout);
        tokio::spawn(async move {
            let permit = sem.acquire_owned().await;
            let ws = connect_sio(port, src, timeout).await;
            drop(permit);
            match ws {
                Ok(ws) => {
                    let _ = result_tx.send(Ok(()));
                    receive(ws, tally).await;
                }
                Err(e) => {
                    let _ = result_tx.send(Err(e.to_string()));
                }
            }
        });
    }
    drop(result_tx);
    let (mut connected, mut failed) = (0u64, 0u64);
    // Each task sends exactly one result (and keeps its sender while it receives).
    for _ in 0..o.clients {
        match result_rx
            .recv()
            .await
            .ok_or("a client task ended without a result")?
        {
            Ok(()) => connected += 1,
            Err(e) => {
                if failed < 3 {
                    eprintln!(
                        "cluster-fanout receiver (port {}): connect error: {e}",
                        o.port
                    );
                }
                failed += 1;
            }
        }
    }
    tally.target.store(connected, Ordering::Relaxed);
    // Copies that arrived before `ready` (none are sent then) would be counted against
    // u64::MAX and never complete; the parent starts broadcasting only after `ready`.
    report(&format!("ready {connected} {failed}"));

    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if line.trim() == "stop" {
            break;
        }
    }
    report(&format!(
        "end {} {}",
        tally.deliveries.load(Ordering::Relaxed),
        tally.lost.load(Ordering::Relaxed)
    ));
    Ok(())
}
