//! The reconnection backoff: bounds after any number of failures, and the manager's actual
//! schedule on tokio's paused clock with a seeded generator.

mod common;

use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;
use volley_client::backoff::Rng;
use volley_client::{Backoff, Manager, ManagerEvent, SocketEvent, TransportKind};

const MIN: Duration = Duration::from_secs(1);
const MAX: Duration = Duration::from_secs(5);

#[test]
fn ten_thousand_failures_stay_within_bounds() {
    for seed in 0..20 {
        let mut b = Backoff::new(MIN, MAX, 0.5, Rng::seeded(seed));
        for n in 0..10_000u32 {
            let d = b.duration();
            assert!(d >= MIN / 2 && d <= MAX, "attempt {n}: {d:?}");
            assert!(!d.is_zero());
            if n >= 4 {
                // Past the cap the official client's jitter vanishes: exactly the maximum.
                assert_eq!(d, MAX, "attempt {n}");
            }
        }
        assert_eq!(b.attempts(), 10_000);
    }
}

#[test]
fn extreme_settings_never_overflow_or_reach_zero() {
    let cases = [
        // (min, max, factor)
        (Duration::from_millis(1), Duration::MAX, 0.5),
        (Duration::from_millis(1), Duration::MAX, 1.0),
        (Duration::ZERO, Duration::ZERO, 1.0),
        (Duration::from_secs(10), Duration::from_secs(1), 0.5),
        (Duration::from_secs(u64::MAX / 4), Duration::MAX, 0.9),
        (MIN, MAX, f64::NAN),
        (MIN, MAX, -1.0),
        (MIN, MAX, 7.0),
    ];
    for (min, max, factor) in cases {
        let mut b = Backoff::new(min, max, factor, Rng::seeded(1));
        let floor = min.max(Duration::from_millis(1));
        let cap = max.max(floor);
        let mut last = Duration::ZERO;
        for n in 0..10_000u32 {
            let d = b.duration();
            assert!(
                d >= Duration::from_millis(1),
                "{min:?} {max:?} {factor}: attempt {n}: {d:?}"
            );
            assert!(d <= cap, "{min:?} {max:?} {factor}: attempt {n}: {d:?}");
            last = d;
        }
        // Eventually pinned to the cap (jitter only ever lowers the value below it, and the
        // official formula's spread does not reach below once the base is far past the cap).
        assert_eq!(last, cap, "{min:?} {max:?} {factor}");
    }
}

#[test]
fn without_jitter_the_delays_double_up_to_the_cap() {
    let mut b = Backoff::new(MIN, MAX, 0.0, Rng::seeded(0));
    let got: Vec<u64> = (0..6).map(|_| b.duration().as_millis() as u64).collect();
    assert_eq!(got, [1000, 2000, 4000, 5000, 5000, 5000]);
    b.reset();
    assert_eq!(b.duration(), MIN);
}

#[test]
fn jitter_after_cap_spreads_capped_delays_below_the_cap() {
    let mut b = Backoff::new(MIN, MAX, 0.5, Rng::seeded(3)).jitter_after_cap(true);
    let capped: Vec<Duration> = (0..1000).map(|_| b.duration()).skip(4).collect();
    assert!(capped.iter().all(|d| *d >= MAX / 2 && *d <= MAX));
    let distinct: std::collections::HashSet<_> = capped.iter().collect();
    assert!(distinct.len() > 100, "capped delays should be spread");
}

/// The manager against a port where nothing listens, on paused time: the first connection is
/// retried, every gap between a failure and the next attempt is exactly the seeded backoff's
/// delay (never zero, at most the cap), attempts are numbered 1..=N, and after N attempts
/// `reconnect_failed` ends it and the waiting socket fails.
#[tokio::test(start_paused = true)]
async fn manager_schedule_on_paused_time_for_10000_failures() {
    const SEED: u64 = 0x5eed;
    const N: u32 = 10_000;
    // A hang must fail the test, but a tokio timer would be auto-advanced to on paused time.
    let watchdog = std::thread::spawn(|| {
        std::thread::sleep(Duration::from_secs(120));
    });
    let port = common::closed_port();
    let manager = Manager::builder(&format!("http://127.0.0.1:{port}"))
        .transports(&[TransportKind::WebSocket])
        .reconnection_attempts(Some(N))
        .reconnection_seed(SEED)
        .timeout(None)
        .build()
        .unwrap();
    let mut events = manager.events();
    let socket = manager.socket("/").build();
    let mut sev = socket.events();
    socket.connect();

    let mut expected = Backoff::new(MIN, MAX, 0.5, Rng::seeded(SEED));
    let mut failed_at: Option<Instant> = None;
    let mut attempts = 0u32;
    let mut errors = 0u32;
    loop {
        let ev = match events.recv().await {
            Ok(ev) => ev,
            Err(RecvError::Lagged(n)) => panic!("lost {n} events"),
            Err(RecvError::Closed) => panic!("manager gone"),
        };
        let now = Instant::now();
        match ev {
            ManagerEvent::Error(_) => {
                errors += 1;
                failed_at = Some(now);
            }
            ManagerEvent::ReconnectAttempt(n) => {
                attempts += 1;
                assert_eq!(n, attempts);
                let gap = now - failed_at.take().expect("an attempt follows a failure");
                let want = expected.duration();
                assert_eq!(gap, want, "delay before attempt {n}");
                assert!(gap >= MIN / 2 && gap <= MAX, "attempt {n}: {gap:?}");
            }
            ManagerEvent::ReconnectError(_) => {}
            ManagerEvent::ReconnectFailed => break,
            other => panic!("unexpected {other:?}"),
        }
        assert!(!watchdog.is_finished(), "took too long");
    }
    assert_eq!(attempts, N);
    assert_eq!(
        errors,
        N + 1,
        "the first connection and every attempt failed"
    );
    // Every failure was also a `connect_error` on the waiting socket, and then it gave up.
    let mut connect_errors = 0;
    loop {
        match sev.try_recv() {
            Ok(SocketEvent::ConnectError(e)) => {
                assert!(!e.is_from_server());
                connect_errors += 1;
            }
            Ok(_) => {}
            // The socket's channel keeps the last 64 events; older ones were dropped.
            Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => {}
            Err(_) => break,
        }
    }
    assert!(connect_errors > 0);
    let err = socket.wait_connected().await.unwrap_err();
    assert_eq!(err.message(), "reconnection failed");
}
