//! The publisher task: sends the queued commands in order, pipelined in batches, and routes
//! the replies that were asked for (an XADD's entry id).
//!
//! On a Redis Cluster, a pipeline may only hold keys of one slot: a batch is split by the
//! slot of each command's key (the channel), each slot's commands stay in order in one
//! pipeline, and the pipelines of different slots (which have no order between them on a
//! cluster anyway) are sent at once.

use std::sync::atomic::Ordering;

use futures_util::future::join_all;
use tokio::sync::{mpsc, oneshot};

use super::conn::slot;
use super::{Conn, Ctl, Link, Outgoing, bytes_of};

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
                batch.clear();
            }
            Some((generation, conn)) => {
                let groups = if conn.is_cluster() {
                    by_slot(std::mem::take(&mut batch))
                } else {
                    vec![std::mem::take(&mut batch)]
                };
                let sent = groups.into_iter().map(|g| {
                    let mut conn = conn.clone();
                    async move {
                        let n = g.len() as u64;
                        send(&mut conn, g).await.map_err(|e| (n, e))
                    }
                });
                for (n, e) in join_all(sent).await.into_iter().filter_map(Result::err) {
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
    }
}

/// Splits a batch by the slot of its commands' first argument (their key), keeping the
/// order within each slot.
fn by_slot(batch: Vec<Outgoing>) -> Vec<Vec<Outgoing>> {
    let mut groups: Vec<(u16, Vec<Outgoing>)> = Vec::new();
    for o in batch {
        let key = match o.cmd.args_iter().nth(1) {
            Some(redis::Arg::Simple(k)) => slot(k),
            _ => 0,
        };
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, g)) => g.push(o),
            None => groups.push((key, vec![o])),
        }
    }
    groups.into_iter().map(|(_, g)| g).collect()
}

/// Sends `batch` as one pipeline and hands out the replies that were asked for.
async fn send(conn: &mut Conn, batch: Vec<Outgoing>) -> redis::RedisResult<()> {
    let mut pipe = redis::pipe();
    let mut replies: Vec<oneshot::Sender<String>> = Vec::new();
    for o in batch {
        pipe.add_command(o.cmd);
        match o.reply {
            Some(tx) => replies.push(tx),
            None => {
                pipe.ignore();
            }
        }
    }
    if replies.is_empty() {
        return pipe.exec_async(conn).await;
    }
    let values = pipe.query_async::<Vec<redis::Value>>(conn).await?;
    for (tx, v) in replies.into_iter().zip(values) {
        if let Some(b) = bytes_of(&v) {
            let _ = tx.send(String::from_utf8_lossy(&b).into_owned());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(name: &str, key: &str, payload: &str) -> Outgoing {
        let mut cmd = redis::cmd(name);
        cmd.arg(key).arg(payload);
        Outgoing { cmd, reply: None }
    }

    fn payloads(g: &[Outgoing]) -> Vec<String> {
        g.iter()
            .map(|o| match o.cmd.args_iter().nth(2) {
                Some(redis::Arg::Simple(p)) => String::from_utf8_lossy(p).into_owned(),
                _ => String::new(),
            })
            .collect()
    }

    #[test]
    fn a_cluster_batch_is_split_by_slot_in_order() {
        let batch = vec![
            out("SPUBLISH", "a", "1"),
            out("SPUBLISH", "b", "2"),
            out("SPUBLISH", "a", "3"),
            out("PUBLISH", "c", "4"),
            out("SPUBLISH", "b", "5"),
            out("SPUBLISH", "x{a}", "6"),
        ];
        // Three different slots; a key and its hash tag share one.
        let groups = by_slot(batch);
        let got: Vec<Vec<String>> = groups.iter().map(|g| payloads(g)).collect();
        assert_eq!(got, [vec!["1", "3", "6"], vec!["2", "5"], vec!["4"]]);
    }
}
