//! Churn without leaks: many short sessions (connect, emit with ack, disconnect) leave no
//! connection, socket, session state or memory behind.
//!
//! Runs the `tools/churn` loop in-process against an in-process server: 2,000 cycles by
//! default, `CHURN_CYCLES=20000` for the full soak (release mode advised).

mod reliability_support;

use std::time::{Duration, Instant};

use reliability_support::churn::{ChurnOptions, run};
use reliability_support::client::Target;
use reliability_support::{mib, rss, serve};
use volley::{AckSender, Data, Socket, SocketIo};

const WARM_UP: usize = 4_000;

/// Waits until nothing of the churn is left (counters no signal reports: polled, within the
/// bound of a hang).
async fn settle(io: &SocketIo) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let m = io.metrics();
        if io.connection_count() == 0
            && io.of("/").sockets().is_empty()
            && m.sessions_allocated == 0
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "still open 60 s after the churn: {} connections, {} sockets, {m:?}",
            io.connection_count(),
            io.of("/").sockets().len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_emit_disconnect_cycles_leave_nothing_behind() {
    let cycles: usize = std::env::var("CHURN_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let io = SocketIo::builder().build();
    io.of("/").on_connection(|socket: Socket| async move {
        socket.join("churners");
        socket.on(
            "churn",
            |_: Socket, Data(n): Data<u64>, ack: AckSender| async move {
                let _ = ack.send(&n);
            },
        );
    });
    let addr = serve(&io).await;
    let opts = ChurnOptions {
        cycles: WARM_UP,
        concurrency: 50,
        // Each step of a cycle may take this long: a bound on a hang, not a speed.
        timeout: Duration::from_secs(60),
        ..ChurnOptions::new(Target::local(addr))
    };

    // Warm-up: the allocator's arenas, tokio's and hyper's pools and the maps' capacities
    // reach their working size (RSS is flat from about 8,000 cycles on; measured over
    // 40,000).
    let warm = run(opts.clone()).await;
    assert_eq!(warm.failed, 0, "{:?}", warm.errors);
    settle(&io).await;
    let baseline = rss();

    let report = run(ChurnOptions { cycles, ..opts }).await;
    let ran = Instant::now();
    settle(&io).await;
    let settled_in = ran.elapsed();
    let after = rss();
    let m = io.metrics();
    eprintln!(
        "{} cycles ({} failed) in {:.2?} ({:.0}/s); all gone {settled_in:.2?} later; \
         RSS {:.1} MiB after the warm-up, {:.1} MiB after ({:+.1}%); {m:?}",
        report.ok,
        report.failed,
        report.elapsed,
        report.rate(),
        mib(baseline),
        mib(after),
        (after as f64 - baseline as f64) * 100.0 / baseline as f64,
    );
    assert_eq!(report.failed, 0, "{:?}", report.errors);
    assert_eq!(report.ok, cycles as u64);
    assert_eq!(io.connection_count(), 0);
    assert!(io.of("/").sockets().is_empty());
    assert_eq!(m.sessions_allocated, 0);
    assert_eq!(m.sessions_opened_total, (cycles + WARM_UP) as u64);
    assert!(
        (after as f64) <= baseline as f64 * 1.10,
        "RSS grew more than 10%: {:.1} -> {:.1} MiB",
        mib(baseline),
        mib(after)
    );
}
