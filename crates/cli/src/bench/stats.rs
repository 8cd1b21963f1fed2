//! What a bench run counts, and the report at the end.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::json;
use tokio::sync::watch;

/// The counters every client's handlers update.
#[derive(Debug)]
pub(super) struct Stats {
    /// When the run started: payloads carry their send time as nanoseconds since then.
    pub(super) epoch: Instant,
    /// Round trips, in microseconds.
    latency: Mutex<Histogram<u64>>,
    /// Replies received plus emits that failed: what the end of the run waits for.
    done: watch::Sender<u64>,
    pub(super) received: AtomicU64,
    pub(super) errors: AtomicU64,
    pub(super) disconnects: AtomicU64,
}

impl Stats {
    pub(super) fn new() -> Self {
        Self {
            epoch: Instant::now(),
            // 1 µs to 1 hour, 3 significant figures; larger values are clamped.
            latency: Mutex::new(
                Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds"),
            ),
            done: watch::Sender::new(0),
            received: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            disconnects: AtomicU64::new(0),
        }
    }

    /// Nanoseconds since the start of the run, for a payload.
    pub(super) fn now_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// A reply to an event sent at `sent_ns` came.
    pub(super) fn reply(&self, sent_ns: u64) {
        let micros = self.now_ns().saturating_sub(sent_ns) / 1_000;
        self.latency
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .saturating_record(micros.max(1));
        self.received.fetch_add(1, Ordering::Relaxed);
        self.done.send_modify(|n| *n += 1);
    }

    /// An emit failed (or its acknowledgement did).
    pub(super) fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        self.done.send_modify(|n| *n += 1);
    }

    /// Waits until `sent` events have a reply or an error, at most `timeout`.
    pub(super) async fn wait_done(&self, sent: u64, timeout: Duration) {
        let mut rx = self.done.subscribe();
        let _ = tokio::time::timeout(timeout, rx.wait_for(|n| *n >= sent)).await;
    }

    /// The summary of the run.
    pub(super) fn report(&self, run: Run) -> Report {
        let h = self.latency.lock().unwrap_or_else(|e| e.into_inner());
        let received = self.received.load(Ordering::Relaxed);
        let errors = self.errors.load(Ordering::Relaxed);
        let q = |p: f64| {
            if h.is_empty() {
                0
            } else {
                h.value_at_quantile(p)
            }
        };
        Report {
            run,
            received,
            errors,
            lost: run.sent.saturating_sub(received + errors),
            disconnects: self.disconnects.load(Ordering::Relaxed),
            p50: q(0.50),
            p90: q(0.90),
            p99: q(0.99),
            max: if h.is_empty() { 0 } else { h.max() },
            mean: if h.is_empty() { 0.0 } else { h.mean() },
        }
    }
}

/// What was asked for and what was sent.
#[derive(Debug, Clone, Copy)]
pub(super) struct Run {
    pub(super) clients: u32,
    pub(super) rate: u32,
    pub(super) duration: Duration,
    pub(super) sent: u64,
    /// How long sending took.
    pub(super) sending: Duration,
    /// Clients on WebSocket and on polling at the end.
    pub(super) websocket: u32,
    pub(super) polling: u32,
    pub(super) ack: bool,
}

/// The results of a run (latencies in microseconds).
#[derive(Debug)]
pub(super) struct Report {
    pub(super) run: Run,
    pub(super) received: u64,
    pub(super) errors: u64,
    pub(super) lost: u64,
    pub(super) disconnects: u64,
    p50: u64,
    p90: u64,
    p99: u64,
    max: u64,
    mean: f64,
}

impl Report {
    /// Replies per second while sending.
    fn throughput(&self) -> f64 {
        let secs = self.run.sending.as_secs_f64();
        if secs > 0.0 {
            self.received as f64 / secs
        } else {
            0.0
        }
    }

    /// The report as one JSON object.
    pub(super) fn to_json(&self) -> serde_json::Value {
        let r = &self.run;
        json!({
            "clients": r.clients,
            "rate": r.rate,
            "duration_s": r.duration.as_secs_f64(),
            "mode": if r.ack { "ack" } else { "echo" },
            "transports": { "websocket": r.websocket, "polling": r.polling },
            "sent": r.sent,
            "received": self.received,
            "lost": self.lost,
            "errors": self.errors,
            "disconnects": self.disconnects,
            "throughput": (self.throughput() * 10.0).round() / 10.0,
            "latency_us": {
                "p50": self.p50,
                "p90": self.p90,
                "p99": self.p99,
                "max": self.max,
                "mean": self.mean.round(),
            },
        })
    }

    /// The report as text.
    pub(super) fn to_text(&self) -> String {
        let r = &self.run;
        let ms = |us: u64| format!("{:.3} ms", us as f64 / 1000.0);
        format!(
            "{} clients ({} websocket, {} polling), {}/s for {}, {} round trips\n\
             sent {}, received {}, lost {}, errors {}, disconnects {}\n\
             round trip: p50 {}, p90 {}, p99 {}, max {}, mean {}\n\
             throughput: {:.1} replies/s",
            r.clients,
            r.websocket,
            r.polling,
            r.rate,
            humantime::format_duration(r.duration),
            if r.ack { "ack" } else { "echo" },
            r.sent,
            self.received,
            self.lost,
            self.errors,
            self.disconnects,
            ms(self.p50),
            ms(self.p90),
            ms(self.p99),
            ms(self.max),
            ms(self.mean.round() as u64),
            self.throughput(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(sent: u64) -> Run {
        Run {
            clients: 2,
            rate: 10,
            duration: Duration::from_secs(1),
            sent,
            sending: Duration::from_secs(1),
            websocket: 2,
            polling: 0,
            ack: false,
        }
    }

    #[test]
    fn counts_and_percentiles() {
        let s = Stats::new();
        for _ in 0..3 {
            s.reply(0);
        }
        s.error();
        let r = s.report(run(5));
        assert_eq!((r.received, r.errors, r.lost), (3, 1, 1));
        assert!(r.p50 >= 1 && r.p50 <= r.p99 && r.p99 <= r.max);
        let j = r.to_json();
        assert_eq!(j["sent"], 5);
        assert_eq!(j["lost"], 1);
        assert!(r.to_text().contains("sent 5, received 3, lost 1, errors 1"));
    }

    #[test]
    fn an_empty_run_reports_zeros() {
        let r = Stats::new().report(run(0));
        assert_eq!(r.to_json()["latency_us"]["p99"], 0);
        assert_eq!(r.lost, 0);
    }

    #[tokio::test]
    async fn waiting_ends_when_every_reply_came() {
        let s = Stats::new();
        s.reply(0);
        s.error();
        // Returns at once: both are done (the timeout only bounds a bug).
        s.wait_done(2, Duration::from_secs(60)).await;
        assert_eq!(*s.done.borrow(), 2);
    }
}
