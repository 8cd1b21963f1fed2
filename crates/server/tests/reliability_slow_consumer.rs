//! A client that stops reading must neither slow the others down nor make the server's
//! memory grow: its backlog is bounded (`max_buffered_bytes`, the default here; the time
//! bound, `slow_consumer_timeout`, is turned off in the first test so that the memory bound
//! is what cuts) and the emit that would cross the bound closes its connection. A client that
//! only stalls for a while under a broadcast storm catches up and keeps its connection.
//!
//! "Slows nobody" is checked by progress, not by speed: with the stuck client's backlog held
//! by the server, broadcasts to it and to 100 healthy clients go on, and every healthy client
//! receives every one of them (the broadcaster waits for the healthy clients, never for the
//! stuck one; a server that blocked on it would hang the run). Delivery rates are printed for
//! information only: a busy machine changes them, so nothing is asserted on them.

mod reliability_support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reliability_support::client::{Client, ConnectOptions, Target};
use reliability_support::{mib, rss, serve};
use tokio::sync::{Notify, mpsc};
use volley::{DisconnectReason, EmitError, Socket, SocketIo};

const HEALTHY: u64 = 100;
const BROADCASTS: u64 = 1500;
/// The broadcaster stays at most this many broadcasts ahead of the slowest healthy client,
/// so that a run measures delivery, not queueing.
const WINDOW: u64 = 32;

/// A bound on a hang, never reached unless something is broken.
const WAIT: Duration = Duration::from_secs(120);

/// What the server reports: each healthy socket as it joins, the stuck client's socket, and
/// the stuck client's disconnect reason.
struct Seen {
    healthy: mpsc::UnboundedSender<()>,
    slow: mpsc::UnboundedSender<Socket>,
    reason: Mutex<Option<tokio::sync::oneshot::Sender<DisconnectReason>>>,
}

async fn next<T>(rx: &mut mpsc::UnboundedReceiver<T>, what: &str) -> T {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap_or_else(|_| panic!("no {what} within {WAIT:?}"))
        .unwrap_or_else(|| panic!("channel of {what} closed"))
}

/// Broadcasts `BROADCASTS` ticks to `rooms` and returns deliveries per second to the
/// healthy clients.
async fn run(io: &SocketIo, rooms: &[&str], received: &AtomicU64, progress: &Notify) -> f64 {
    let payload = "p".repeat(200);
    let base = received.load(Ordering::Acquire);
    let start = Instant::now();
    for i in 0..BROADCASTS {
        let floor = base + i.saturating_sub(WINDOW) * HEALTHY;
        while received.load(Ordering::Acquire) < floor {
            let _ = tokio::time::timeout(Duration::from_millis(50), progress.notified()).await;
        }
        let rooms: Vec<&str> = rooms.to_vec();
        io.to(rooms).emit("tick", &payload).unwrap();
    }
    let all = base + BROADCASTS * HEALTHY;
    let deadline = Instant::now() + WAIT;
    while received.load(Ordering::Acquire) < all {
        assert!(
            Instant::now() < deadline,
            "the healthy clients stopped receiving"
        );
        let _ = tokio::time::timeout(Duration::from_millis(50), progress.notified()).await;
    }
    (BROADCASTS * HEALTHY) as f64 / start.elapsed().as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_slows_nobody_and_is_cut_off() {
    let io = SocketIo::builder()
        .slow_consumer_timeout(Duration::MAX)
        .build();
    let (healthy_tx, mut healthy_joined) = mpsc::unbounded_channel();
    let (slow_tx, mut slow_joined) = mpsc::unbounded_channel();
    let (reason_tx, reason_rx) = tokio::sync::oneshot::channel();
    let seen = Arc::new(Seen {
        healthy: healthy_tx,
        slow: slow_tx,
        reason: Mutex::new(Some(reason_tx)),
    });
    io.of("/").on_connection(move |socket: Socket| {
        let seen = seen.clone();
        async move {
            if socket
                .handshake()
                .auth()
                .get("role")
                .and_then(|r| r.as_str())
                == Some("slow")
            {
                socket.join("slow");
                let s = seen.clone();
                socket.on_disconnect(move |_: Socket, reason| async move {
                    if let Some(tx) = s.reason.lock().unwrap().take() {
                        let _ = tx.send(reason);
                    }
                });
                let _ = seen.slow.send(socket);
            } else {
                socket.join("healthy");
                let _ = seen.healthy.send(());
            }
        }
    });
    let addr = serve(&io).await;
    let target = Target::local(addr);

    let received = Arc::new(AtomicU64::new(0));
    let progress = Arc::new(Notify::new());
    let healthy_opts = ConnectOptions {
        auth: Some(r#"{"role":"healthy"}"#.into()),
        timeout: Duration::from_secs(600),
        ..ConnectOptions::default()
    };
    for _ in 0..HEALTHY {
        let mut client = Client::connect(&target, &healthy_opts).await.unwrap();
        let (received, progress) = (received.clone(), progress.clone());
        tokio::spawn(async move {
            while let Ok(Some(packet)) = client.next_packet().await {
                if packet.starts_with("2[\"tick\"") {
                    received.fetch_add(1, Ordering::AcqRel);
                    progress.notify_one();
                }
            }
        });
    }
    for _ in 0..HEALTHY {
        next(&mut healthy_joined, "healthy client joined").await;
    }
    // Warm up, then the baseline of memory.
    run(&io, &["healthy"], &received, &progress).await;
    let rss_start = rss();

    // The stuck client: joins, then never reads its socket again (a 4 KiB receive buffer,
    // so that the kernel does not absorb much).
    let stuck = Client::connect(
        &target,
        &ConnectOptions {
            auth: Some(r#"{"role":"slow"}"#.into()),
            recv_buffer: Some(4096),
            ..ConnectOptions::default()
        },
    )
    .await
    .unwrap()
    .into_ws();
    let slow_socket = next(&mut slow_joined, "stuck client joined").await;
    // Fill the kernel's buffers so that its backlog is in the server's hands during the
    // runs: at least 1 MiB waiting in the server.
    let chunk = "f".repeat(64 * 1024);
    let mut filled = false;
    for _ in 0..200 {
        slow_socket.emit("fill", &chunk).unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
        if io.metrics().max_session_queued_bytes >= 1 << 20 {
            filled = true;
            break;
        }
    }
    assert!(
        filled,
        "the stuck client's backlog never reached 1 MiB: {:?}",
        io.metrics()
    );

    // One run without the stuck client in the audience and one with it: both end, every
    // healthy client having received every broadcast. (One run with it: its 1 500 packets
    // and the fill above stay below the byte bound, which cuts it off below.)
    let without = run(&io, &["healthy"], &received, &progress).await;
    let with = run(&io, &["healthy", "slow"], &received, &progress).await;
    let metrics = io.metrics();
    let rss_stuck = rss();
    eprintln!(
        "deliveries/s to {HEALTHY} clients, {BROADCASTS} broadcasts a run (for information): \
         without the stuck client {without:.0}, with it {with:.0}; stuck client's backlog {} \
         KiB; RSS {:.1} -> {:.1} MiB",
        metrics.max_session_queued_bytes / 1024,
        mib(rss_start),
        mib(rss_stuck),
    );
    assert!(slow_socket.connected(), "cut off before its bound");
    assert!(metrics.max_session_queued_bytes >= 1 << 20);

    // Now keep sending to it alone: the backlog hits its bound (16 MiB by default) and the
    // connection is closed; memory stays flat however much is thrown at it.
    let mut sent: u64 = 0;
    let mut rss_max = rss_stuck;
    let refused = loop {
        match slow_socket.emit("fill", &chunk) {
            Ok(()) => sent += chunk.len() as u64,
            Err(e) => break e,
        }
        assert!(
            sent < 300 << 20,
            "300 MiB accepted for a client that reads nothing"
        );
        if sent % (16 * chunk.len() as u64) == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
            rss_max = rss_max.max(rss());
        }
    };
    assert!(
        matches!(refused, EmitError::QueueFull | EmitError::Disconnected),
        "{refused:?}"
    );
    let reason = tokio::time::timeout(WAIT, reason_rx)
        .await
        .expect("the stuck client was not disconnected")
        .expect("disconnect reported");
    rss_max = rss_max.max(rss());
    eprintln!(
        "cut off after {:.1} MiB more; RSS at most {:.1} MiB (+{:.1} MiB over the start)",
        mib(sent),
        mib(rss_max),
        mib(rss_max.saturating_sub(rss_start))
    );
    assert_eq!(reason, DisconnectReason::TransportError);
    assert!(sent <= 24 << 20, "cut off late: {sent} bytes");
    assert!(
        rss_max < rss_start + (200 << 20),
        "RSS grew by {:.1} MiB",
        mib(rss_max - rss_start)
    );
    let m = io.metrics();
    assert_eq!(m.slow_consumer_closes_total, 1);
    assert_eq!(m.sessions_open, HEALTHY as usize);
    assert!(m.max_session_queued_bytes < 1 << 20, "{m:?}");
    drop(stuck);

    // The others go on as before.
    let after = run(&io, &["healthy"], &received, &progress).await;
    eprintln!("after: {after:.0} deliveries/s");
}

/// A client stalls while a storm of small broadcasts goes to it: far more than the 10,000
/// packets that used to cut such a client off wait for it in the server, then it reads again
/// and gets every one, in order, and keeps its connection. The stall ends on a signal (the
/// server's backlog for it crossing 30,000 packets), not after some time; the time bound is
/// set far above what the run takes so that a busy machine cannot change the outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stalls_under_a_broadcast_storm_catches_up() {
    const BACKLOG: usize = 30_000;
    let io = SocketIo::builder()
        .slow_consumer_timeout(Duration::from_secs(600))
        .build();
    let (joined_tx, mut joined) = mpsc::unbounded_channel();
    io.of("/").on_connection(move |socket: Socket| {
        let joined_tx = joined_tx.clone();
        async move {
            socket.join("storm");
            let _ = joined_tx.send(socket);
        }
    });
    let addr = serve(&io).await;
    let mut client = Client::connect(
        &Target::local(addr),
        &ConnectOptions {
            recv_buffer: Some(4096),
            timeout: Duration::from_secs(600),
            ..ConnectOptions::default()
        },
    )
    .await
    .unwrap();
    let socket = next(&mut joined, "client joined").await;

    // The storm, while the client reads nothing.
    let mut sent = 0u64;
    while io.metrics().queued_frames < BACKLOG {
        for _ in 0..1000 {
            io.to("storm").emit("tick", &sent).unwrap();
            sent += 1;
        }
        tokio::task::yield_now().await;
        assert!(sent < 2_000_000, "two million broadcasts and no backlog");
    }
    let m = io.metrics();
    eprintln!(
        "{sent} broadcasts sent; the stalled client's backlog: {} packets, {} KiB",
        m.queued_frames,
        m.queued_bytes / 1024
    );
    assert!(socket.connected());

    // It reads again: every broadcast arrives, in order.
    for i in 0..sent {
        let packet = tokio::time::timeout(WAIT, client.next_packet())
            .await
            .expect("a hang")
            .unwrap()
            .unwrap_or_else(|| panic!("cut off after {i} of {sent} broadcasts"));
        assert_eq!(packet, format!("2[\"tick\",{i}]"));
    }
    assert!(socket.connected());
    let m = io.metrics();
    assert_eq!(m.slow_consumer_closes_total, 0);
    assert_eq!(m.queued_frames, 0);
}
