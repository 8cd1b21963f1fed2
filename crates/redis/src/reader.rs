//! Streams mode: the task that reads the stream on a connection of its own (`XREAD COUNT n
//! BLOCK ms STREAMS <stream> <last id>`) and hands each entry to the processing task.
//!
//! - It starts after the stream's newest entry at the time it first connects (Node starts
//!   at `$` on every call, which misses what is added between two reads), then always
//!   resumes from the id of the last entry it read: after a lost connection or a Redis
//!   restart, nothing still in the stream is missed. A stream whose newest entry is older
//!   than the last one read (Redis restarted empty) is read from its start.
//! - Memory stays bounded when this server falls behind: at most `read_count` entries are
//!   read at once, and the reader waits for room in the processing queue instead of
//!   dropping (the backlog stays in Redis, trimmed by `MAXLEN ~`).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;
use tokio::sync::mpsc;

use crate::link::{Incoming, Link, bytes_of};
use crate::message::parse_entry_id;

/// One stream entry: its id and its fields.
pub(crate) type Entry = (String, Vec<(Bytes, Bytes)>);

/// What the reader reads.
#[derive(Debug, Clone)]
pub(crate) struct ReaderConfig {
    pub(crate) stream: String,
    pub(crate) count: usize,
    pub(crate) block: Duration,
}

/// Starts the reader of `cfg.stream`; the link's `ready` then waits for it too.
pub(crate) fn spawn(link: &Arc<Link>, cfg: ReaderConfig, incoming: mpsc::Sender<Incoming>) {
    link.expect_reader();
    tokio::spawn(read_loop(link.clone(), cfg, incoming));
}

fn set_reading(link: &Link, reading: bool) {
    link.state.send_if_modified(|s| {
        let changed = s.reading != reading;
        s.reading = reading;
        changed
    });
}

async fn read_loop(link: Arc<Link>, cfg: ReaderConfig, incoming: mpsc::Sender<Incoming>) {
    let mut state = link.state.subscribe();
    let mut last: Option<String> = None;
    let mut backoff = Duration::from_millis(50);
    loop {
        let session = async {
            let mut conn = connect(&link, &cfg).await?;
            let newest = newest_id(&mut conn, &cfg.stream).await?;
            let mut from = match last.clone() {
                // A stream newer than what we read (Redis restarted empty, or failed over
                // to a replica that lost the tail): everything in it is new to us.
                Some(id) if entry_id(&newest) < entry_id(&id) => "0-0".to_owned(),
                Some(id) => id,
                None => newest,
            };
            last = Some(from.clone());
            // Everything up to `from` is queued: the processing task's position.
            if incoming
                .send(Incoming::Position(from.clone()))
                .await
                .is_err()
            {
                return Ok::<(), redis::RedisError>(());
            }
            set_reading(&link, true);
            backoff = Duration::from_millis(50);
            loop {
                let reply: redis::Value = redis::cmd("XREAD")
                    .arg("COUNT")
                    .arg(cfg.count.max(1))
                    .arg("BLOCK")
                    .arg(cfg.block.as_millis() as u64)
                    .arg("STREAMS")
                    .arg(&cfg.stream)
                    .arg(&from)
                    .query_async(&mut conn)
                    .await?;
                for (id, fields) in xread_entries(&reply) {
                    from.clone_from(&id);
                    last = Some(id.clone());
                    // Wait for room: the backlog stays in Redis meanwhile.
                    if incoming.send(Incoming::Entry { id, fields }).await.is_err() {
                        return Ok(());
                    }
                }
            }
        };
        tokio::select! {
            r = session => match r {
                Ok(()) => return,
                Err(e) => tracing::debug!(error = %e, "redis adapter: stream reader lost its connection"),
            },
            _ = state.wait_for(|s| s.closed) => return,
        }
        set_reading(&link, false);
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = state.wait_for(|s| s.closed) => return,
        }
        backoff = (backoff * 2).min(link.config().max_backoff);
    }
}

async fn connect(link: &Link, cfg: &ReaderConfig) -> redis::RedisResult<MultiplexedConnection> {
    let timeout = link.config().command_timeout;
    let conn_cfg = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(cfg.block + timeout));
    link.client()
        .get_multiplexed_async_connection_with_config(&conn_cfg)
        .await
}

fn entry_id(id: &str) -> (u64, u64) {
    parse_entry_id(id).unwrap_or_default()
}

/// The id of the stream's newest entry, or `0-0` when it is empty or missing.
async fn newest_id(conn: &mut MultiplexedConnection, stream: &str) -> redis::RedisResult<String> {
    let reply: redis::Value = redis::cmd("XREVRANGE")
        .arg(stream)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(conn)
        .await?;
    Ok(entries(&reply)
        .into_iter()
        .next()
        .map_or_else(|| "0-0".to_owned(), |(id, _)| id))
}

/// The entries of an XREAD reply (RESP3 map or RESP2 array of `[stream, entries]`; nil
/// when the read timed out).
pub(crate) fn xread_entries(v: &redis::Value) -> Vec<Entry> {
    match v {
        redis::Value::Map(streams) => streams.iter().flat_map(|(_, e)| entries(e)).collect(),
        redis::Value::Array(streams) => streams
            .iter()
            .flat_map(|s| match s {
                redis::Value::Array(pair) if pair.len() == 2 => entries(&pair[1]),
                _ => Vec::new(),
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The entries of an XRANGE-like reply: `[[id, [field, value, ...]], ...]`.
pub(crate) fn entries(v: &redis::Value) -> Vec<Entry> {
    let redis::Value::Array(list) = v else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|e| {
            let redis::Value::Array(pair) = e else {
                return None;
            };
            let id = bytes_of(pair.first()?)?;
            let fields = match pair.get(1)? {
                redis::Value::Array(flat) => flat
                    .chunks_exact(2)
                    .filter_map(|kv| Some((bytes_of(&kv[0])?, bytes_of(&kv[1])?)))
                    .collect(),
                redis::Value::Map(kv) => kv
                    .iter()
                    .filter_map(|(k, v)| Some((bytes_of(k)?, bytes_of(v)?)))
                    .collect(),
                _ => return None,
            };
            Some((String::from_utf8_lossy(&id).into_owned(), fields))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> redis::Value {
        redis::Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn xread_replies_in_both_protocols() {
        let entry = redis::Value::Array(vec![
            bulk("1-0"),
            redis::Value::Array(vec![bulk("uid"), bulk("u"), bulk("nsp"), bulk("/")]),
        ]);
        let list = redis::Value::Array(vec![entry]);
        let resp3 = redis::Value::Map(vec![(bulk("socket.io"), list.clone())]);
        let resp2 = redis::Value::Array(vec![redis::Value::Array(vec![bulk("socket.io"), list])]);
        for reply in [resp3, resp2] {
            let e = xread_entries(&reply);
            assert_eq!(e.len(), 1);
            assert_eq!(e[0].0, "1-0");
            assert_eq!(&e[0].1[1].1[..], b"/");
        }
        assert!(xread_entries(&redis::Value::Nil).is_empty());
    }
}
