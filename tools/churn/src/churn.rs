//! The churn loop: `cycles` short sessions, `concurrency` at a time, each one connect, emit
//! (optionally acknowledged), disconnect.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::client::{Client, ConnectOptions, Target};

/// What to run.
#[derive(Debug, Clone)]
pub struct ChurnOptions {
    /// The server.
    pub target: Target,
    /// How many connect/emit/disconnect cycles.
    pub cycles: usize,
    /// How many cycles run at once.
    pub concurrency: usize,
    /// The namespace to join.
    pub namespace: String,
    /// The event emitted in each cycle, with the cycle number as its argument.
    pub event: String,
    /// Whether each emit asks for an acknowledgement and waits for it (the server must
    /// acknowledge `event`).
    pub ack: bool,
    /// How long any one step may take.
    pub timeout: Duration,
}

impl ChurnOptions {
    /// 20,000 cycles, 50 at a time, on `/`, emitting `churn` with an acknowledgement.
    pub fn new(target: Target) -> Self {
        Self {
            target,
            cycles: 20_000,
            concurrency: 50,
            namespace: "/".into(),
            event: "churn".into(),
            ack: true,
            timeout: Duration::from_secs(10),
        }
    }
}

/// What happened.
#[derive(Debug, Clone)]
pub struct ChurnReport {
    /// Cycles that went through.
    pub ok: u64,
    /// Cycles that failed.
    pub failed: u64,
    /// Wall time of the whole run.
    pub elapsed: Duration,
    /// The first failures (at most 10), for the report.
    pub errors: Vec<String>,
}

impl ChurnReport {
    /// Cycles per second.
    pub fn rate(&self) -> f64 {
        (self.ok + self.failed) as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

async fn cycle(opts: &ChurnOptions, n: usize) -> std::io::Result<()> {
    let connect = ConnectOptions {
        namespace: opts.namespace.clone(),
        timeout: opts.timeout,
        ..ConnectOptions::default()
    };
    let mut client = Client::connect(&opts.target, &connect).await?;
    if opts.ack {
        let reply = client.emit_with_ack(1, &opts.event, &n.to_string()).await?;
        if reply != format!("[{n}]") {
            return Err(std::io::Error::other(format!(
                "cycle {n}: acknowledged with {reply}"
            )));
        }
    } else {
        client.emit(&opts.event, &n.to_string()).await?;
    }
    client.disconnect().await
}

/// Runs the cycles and reports.
pub async fn run(opts: ChurnOptions) -> ChurnReport {
    let opts = Arc::new(opts);
    let next = Arc::new(AtomicUsize::new(0));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let start = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..opts.concurrency.max(1) {
        let (opts, next, ok, failed, errors) = (
            opts.clone(),
            next.clone(),
            ok.clone(),
            failed.clone(),
            errors.clone(),
        );
        workers.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= opts.cycles {
                    break;
                }
                match cycle(&opts, n).await {
                    Ok(()) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        let mut errors = errors.lock().unwrap_or_else(|p| p.into_inner());
                        if errors.len() < 10 {
                            errors.push(format!("cycle {n}: {e}"));
                        }
                    }
                }
            }
        }));
    }
    for w in workers {
        let _ = w.await;
    }
    let errors = errors.lock().unwrap_or_else(|p| p.into_inner()).clone();
    ChurnReport {
        ok: ok.load(Ordering::Relaxed),
        failed: failed.load(Ordering::Relaxed),
        elapsed: start.elapsed(),
        errors,
    }
}

/// The resident set size of a process in bytes, from `VmRSS` in `/proc/<pid>/status`
/// (Linux only; `None` elsewhere). `None` as `pid` means this process.
pub fn rss_bytes(pid: Option<u32>) -> Option<u64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/status"),
        None => "/proc/self/status".to_owned(),
    };
    let status = std::fs::read_to_string(path).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
