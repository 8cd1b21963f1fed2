//! `volley bench`: N clients send an event at a total rate (open loop) and time each echo or
//! acknowledgement.
//!
//! Every event's data is a string `"<send time in ns>|xxx…"` of `--size` bytes; the server
//! echoes it (or acknowledges with it), and the round trip is the time since that send time.
//! Sending is paced against the clock (the events due so far go out on each wake-up), so a slow
//! reply never slows the senders: latencies include any queueing.

mod stats;

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::{Semaphore, broadcast};
use tokio::task::JoinSet;
use tokio::time::Instant;
use volley_client::{Manager, RawArgs, Socket, SocketEvent, TransportKind};

use crate::cli::BenchArgs;
use crate::connect::{close, connect, manager};
use crate::error::Failure;
use crate::note;
use crate::signal::{Stop, unless_stopped};
use stats::{Run, Stats};

/// How many clients connect at the same time.
const CONNECTING_AT_ONCE: usize = 64;

/// One connected client.
struct Client {
    manager: Manager,
    socket: Socket,
}

/// Runs `volley bench`.
pub(crate) async fn run(args: BenchArgs) -> Result<(), Failure> {
    // Ctrl-C while sending stops it, and the results so far are printed.
    let mut stop = Stop::new()?;
    let stats = Arc::new(Stats::new());
    let bar = progress_bar(args.common.quiet);
    let clients = unless_stopped(&mut stop, connect_all(&args, &stats, &bar)).await?;
    let total = planned(args.rate, args.duration);
    bar.set_length(total);
    bar.set_position(0);
    bar.set_message("round trips");
    let ticker = tokio::spawn(follow(bar.clone(), stats.clone()));
    let started = Instant::now();
    let sent = send(&args, &clients, &stats, &mut stop).await;
    let sending = started.elapsed();
    bar.set_message("waiting for the last replies");
    tokio::select! {
        () = stats.wait_done(sent, args.timeout) => {}
        () = stop.recv() => {}
    }
    ticker.abort();
    bar.finish_and_clear();
    let (websocket, polling) = transports(&clients);
    let report = stats.report(Run {
        clients: args.clients,
        rate: args.rate,
        duration: args.duration,
        sent,
        sending,
        websocket,
        polling,
        ack: args.ack,
    });
    let mut closing = JoinSet::new();
    for c in clients {
        closing.spawn(async move { close(&c.manager).await });
    }
    closing.join_all().await;
    if args.json {
        println!("{}", report.to_json());
    } else {
        println!("{}", report.to_text());
    }
    if report.lost > 0 {
        return Err(Failure::Timeout(format!(
            "{} of {} replies did not come within {} after sending stopped",
            report.lost,
            sent,
            humantime::format_duration(args.timeout)
        )));
    }
    if report.errors > 0 {
        return Err(Failure::Other(format!("{} emits failed", report.errors)));
    }
    Ok(())
}

/// How many events `rate` per second for `duration` makes (at least one).
fn planned(rate: u32, duration: Duration) -> u64 {
    ((f64::from(rate) * duration.as_secs_f64()).ceil() as u64).max(1)
}

/// A progress bar on stderr, hidden when stderr is not a terminal or with `--quiet`.
fn progress_bar(quiet: bool) -> ProgressBar {
    let target = if quiet || !std::io::stderr().is_terminal() {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    };
    let bar = ProgressBar::with_draw_target(None, target);
    bar.set_style(
        ProgressStyle::with_template("{msg:28} [{bar:40}] {pos}/{len} {elapsed}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar
}

/// Connects every client (a few at a time); the first failure ends the run.
async fn connect_all(
    args: &BenchArgs,
    stats: &Arc<Stats>,
    bar: &ProgressBar,
) -> Result<Vec<Client>, Failure> {
    bar.set_length(u64::from(args.clients));
    bar.set_message("connecting");
    let permits = Arc::new(Semaphore::new(CONNECTING_AT_ONCE));
    let mut set = JoinSet::new();
    for _ in 0..args.clients {
        let (common, event, ack) = (args.common.clone(), args.event().to_owned(), args.ack);
        let (stats, permits) = (stats.clone(), permits.clone());
        set.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let manager = manager(&common)?;
            let on_echo = stats.clone();
            let (socket, lifecycle) = connect(&manager, &common, |b| {
                if ack {
                    b
                } else {
                    b.on(event, move |_: Socket, raw: RawArgs| {
                        match raw.get::<String>(0).and_then(Result::ok) {
                            Some(data) => match sent_at(&data) {
                                Some(ns) => on_echo.reply(ns),
                                None => on_echo.error(),
                            },
                            None => on_echo.error(),
                        }
                        async {}
                    })
                }
            })
            .await?;
            watch_disconnects(lifecycle, stats);
            Ok::<_, Failure>(Client { manager, socket })
        });
    }
    let mut clients = Vec::with_capacity(args.clients as usize);
    while let Some(joined) = set.join_next().await {
        let client = joined.map_err(|e| Failure::Other(format!("a client task failed: {e}")))??;
        clients.push(client);
        bar.inc(1);
    }
    let text = format!("{} clients connected to {}", clients.len(), args.common.url);
    bar.suspend(|| note(args.common.quiet, &text));
    Ok(clients)
}

/// Moves the progress bar with the replies (five times a second; a display only).
async fn follow(bar: ProgressBar, stats: Arc<Stats>) {
    if bar.is_hidden() {
        return;
    }
    loop {
        bar.set_position(stats.received.load(std::sync::atomic::Ordering::Relaxed));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Counts the disconnections of a client (each one makes events wait or fail).
fn watch_disconnects(mut events: broadcast::Receiver<SocketEvent>, stats: Arc<Stats>) {
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(SocketEvent::Disconnect(_)) => {
                    stats
                        .disconnects
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    });
}

/// The send time an echoed payload carries.
fn sent_at(data: &str) -> Option<u64> {
    data.split_once('|')?.0.parse().ok()
}

/// A payload of `size` bytes carrying its send time.
fn payload(sent_ns: u64, size: usize) -> String {
    let mut s = format!("{sent_ns}|");
    let pad = size.saturating_sub(s.len());
    s.extend(std::iter::repeat_n('x', pad));
    s
}

/// Sends the planned events, round robin over the clients, paced against the clock, until
/// they are all sent or `stop` fires; returns how many were sent.
async fn send(args: &BenchArgs, clients: &[Client], stats: &Arc<Stats>, stop: &mut Stop) -> u64 {
    let total = planned(args.rate, args.duration);
    let interval = Duration::from_secs_f64(1.0 / f64::from(args.rate));
    let size = args.size as usize;
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < total {
        let due = ((start.elapsed().as_secs_f64() * f64::from(args.rate)) as u64 + 1).min(total);
        while sent < due {
            let client = &clients[(sent % clients.len() as u64) as usize];
            let data = payload(stats.now_ns(), size);
            if args.ack {
                let reply = client
                    .socket
                    .timeout(args.duration + args.timeout)
                    .emit_with_ack::<RawArgs>(args.event(), &data);
                let stats = stats.clone();
                tokio::spawn(async move {
                    let echoed = reply.await.ok().and_then(|r| r.get::<String>(0)?.ok());
                    match echoed.as_deref().and_then(sent_at) {
                        Some(ns) => stats.reply(ns),
                        None => stats.error(),
                    }
                });
            } else if client.socket.emit(args.event(), &data).is_err() {
                stats.error();
            }
            sent += 1;
        }
        if sent < total {
            let next = start + interval.mul_f64(sent as f64);
            tokio::select! {
                () = tokio::time::sleep_until(next) => {}
                () = stop.recv() => break,
            }
        }
    }
    sent
}

/// How many clients ended on WebSocket and on polling.
fn transports(clients: &[Client]) -> (u32, u32) {
    clients
        .iter()
        .fold((0, 0), |(ws, poll), c| match c.manager.transport() {
            Some(TransportKind::WebSocket) => (ws + 1, poll),
            Some(TransportKind::Polling) => (ws, poll + 1),
            _ => (ws, poll),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_carry_their_send_time() {
        let p = payload(123_456, 32);
        assert_eq!(p.len(), 32);
        assert_eq!(sent_at(&p), Some(123_456));
        // Never shorter than the time itself.
        assert_eq!(sent_at(&payload(u64::MAX, 4)), Some(u64::MAX));
        assert_eq!(sent_at("nope"), None);
    }

    #[test]
    fn planned_events() {
        assert_eq!(planned(100, Duration::from_secs(2)), 200);
        assert_eq!(planned(3, Duration::from_millis(500)), 2);
        assert_eq!(planned(1, Duration::ZERO), 1);
    }
}
