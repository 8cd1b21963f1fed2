//! The supervisor task: owns the subscriber connection, (re)connects with a capped backoff,
//! brings the subscriptions to the desired set, pings, and hands received messages to the
//! processing task without ever blocking the connection.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use redis::{PushInfo, PushKind};
use tokio::sync::mpsc;

use super::{Conn, Counters, Ctl, Incoming, Link, Subs, bytes_of};

/// The RESP3 push handler of subscriber connection `generation`: never blocks.
pub(super) fn push_sender(
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
            // A cluster node unsubscribes shard channels by itself when their slot moves
            // away (resharding, failover): subscribe them again, where the slot is now (a
            // no-op for our own SUNSUBSCRIBEs).
            PushKind::SUnsubscribe => {
                if let Some(channel) = info.data.first().and_then(bytes_of) {
                    let channel = String::from_utf8_lossy(&channel).into_owned();
                    let _ = ctl.send(Ctl::Unsubscribed(generation, channel));
                }
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

/// Opens the subscriber connection (its pushes go to the processing task).
async fn connect_sub(
    link: &Arc<Link>,
    generation: u64,
    ctl: &mpsc::UnboundedSender<Ctl>,
    incoming: &mpsc::Sender<Incoming>,
) -> redis::RedisResult<Conn> {
    let push = push_sender(
        generation,
        incoming.clone(),
        ctl.clone(),
        link.counters.clone(),
    );
    link.target.connect(&link.config, Some(push)).await
}

/// Subscribes a new subscriber connection to the desired set, then opens the publisher:
/// after the subscriptions, so that on a cluster the publisher's slot map is at least as
/// recent as the one the subscriptions succeeded with (after a failover, not the old one).
async fn subscribe_then_publisher(
    link: &Link,
    sub: &mut Conn,
    current: &mut Subs,
) -> redis::RedisResult<(u64, Conn)> {
    let rev = sync_subs(link, sub, current).await?;
    let no_push: Option<fn(PushInfo) -> Result<(), ()>> = None;
    let publisher = link.target.connect(&link.config, no_push).await?;
    Ok((rev, publisher))
}

/// Brings the subscriber's subscriptions to the desired set; returns the revision reached.
async fn sync_subs(link: &Link, conn: &mut Conn, current: &mut Subs) -> redis::RedisResult<u64> {
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
            if sub == "SSUBSCRIBE" {
                conn.refresh_route(ch.as_bytes()).await?;
            }
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

pub(super) async fn supervise(
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
        match connect_sub(&link, generation, &ctl_tx, &incoming).await {
            Ok(mut sub) => {
                let mut current = Subs::default();
                match subscribe_then_publisher(&link, &mut sub, &mut current).await {
                    Ok((rev, publisher)) => {
                        // Counted before it is reported: whoever sees the link healthy
                        // again sees the reconnection too.
                        if ever_connected {
                            link.counters.reconnects.fetch_add(1, Ordering::Relaxed);
                            tracing::info!("redis adapter: reconnected and resubscribed");
                        }
                        *link.conn.lock().unwrap_or_else(|p| p.into_inner()) =
                            Some((generation, publisher));
                        link.healthy.store(true, Ordering::Release);
                        link.state.send_modify(|s| {
                            s.healthy = true;
                            s.synced = rev;
                        });
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
                                    Some(c @ (Ctl::Sync | Ctl::Unsubscribed(..))) => {
                                        match c {
                                            Ctl::Unsubscribed(g, channel) if g == generation => {
                                                current.shard.remove(&channel);
                                            }
                                            _ => {}
                                        }
                                        match sync_subs(&link, &mut sub, &mut current).await {
                                            Ok(rev) => {
                                                link.state.send_modify(|s| s.synced = rev);
                                            }
                                            Err(e) => {
                                                mark_down(&link, &e);
                                                break;
                                            }
                                        }
                                    }
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

pub(super) fn mark_down(link: &Link, why: impl std::fmt::Display) {
    let was = link.healthy.swap(false, Ordering::AcqRel);
    *link.conn.lock().unwrap_or_else(|p| p.into_inner()) = None;
    link.set_error(&why);
    link.state.send_modify(|s| s.healthy = false);
    if was {
        tracing::warn!(error = %why, "redis adapter: connection lost; local delivery goes on");
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn payload(i: Incoming) -> Bytes {
        match i {
            Incoming::Message { payload, .. } => payload,
            _ => panic!("not a message"),
        }
    }

    fn channel(i: Incoming) -> String {
        match i {
            Incoming::Message { channel, .. } => channel,
            _ => panic!("not a message"),
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
