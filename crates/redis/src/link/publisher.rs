//! The publisher task: sends the queued commands in order, pipelined in batches, and routes
//! the replies that were asked for (an XADD's entry id).

use std::sync::atomic::Ordering;

use tokio::sync::mpsc;

use super::{Ctl, Link, Outgoing, bytes_of};

/// Holds the link weakly: once the link is gone its sender is dropped and this ends.
pub(super) async fn publish_loop(link: std::sync::Weak<Link>, mut rx: mpsc::Receiver<Outgoing>) {
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
