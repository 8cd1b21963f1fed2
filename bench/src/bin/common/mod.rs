//! What the load generators of this package share: server CPU time from `/proc`, percentiles
//! and rounding for their JSON lines.

#![allow(dead_code)] // each generator uses a different subset

use std::time::Duration;

/// The error type of the generators: any error, reported and the run failed.
pub(crate) type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// How long any single read may take before the run fails.
pub(crate) const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Clock ticks per second of `/proc/PID/stat` (`getconf CLK_TCK`), assumed.
const CLK_TCK: f64 = 100.0;

/// utime + stime of `pid`, in seconds (fields 14 and 15 of `/proc/PID/stat`).
pub(crate) fn cpu_seconds(pid: u32) -> Res<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces: count fields after its closing `)`.
    let rest = &stat[stat.rfind(')').ok_or("bad /proc stat")? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    Ok(ticks as f64 / CLK_TCK)
}

/// The `q` quantile of sorted nanosecond samples, in microseconds.
pub(crate) fn percentile_us(sorted: &[u64], q: f64) -> f64 {
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i] as f64 / 1000.0
}

/// `x` rounded to `decimals` decimals.
pub(crate) fn round(x: f64, decimals: i32) -> f64 {
    let k = 10f64.powi(decimals);
    (x * k).round() / k
}

/// The server's CPU seconds over the window `start..end` of the run, read at both ends
/// (`None` without a pid).
pub(crate) async fn server_cpu(
    pid: Option<u32>,
    start: std::time::Instant,
    end: std::time::Instant,
) -> Res<Option<f64>> {
    let Some(pid) = pid else { return Ok(None) };
    tokio::time::sleep_until(start.into()).await;
    let before = cpu_seconds(pid)?;
    tokio::time::sleep_until(end.into()).await;
    Ok(Some(cpu_seconds(pid)? - before))
}

/// Adds the server CPU fields (`srv_cpu_s`, `srv_cpu_pct`, `srv_cpu_us_per_msg`) to a result
/// line, for `n` messages over `duration`.
pub(crate) fn add_cpu(line: &mut serde_json::Value, cpu: Option<f64>, n: f64, duration: Duration) {
    if let Some(cpu) = cpu {
        line["srv_cpu_s"] = round(cpu, 2).into();
        line["srv_cpu_pct"] = round(100.0 * cpu / duration.as_secs_f64(), 1).into();
        line["srv_cpu_us_per_msg"] = round(cpu * 1e6 / n, 3).into();
    }
}

/// The options every generator takes: `--port`, `-c`/`--clients`, `--duration`, `--warmup`,
/// `--size`, `--pid`.
pub(crate) struct Run {
    pub(crate) port: u16,
    pub(crate) clients: usize,
    pub(crate) duration: Duration,
    pub(crate) warmup: Duration,
    pub(crate) size: usize,
    pub(crate) pid: Option<u32>,
}

impl Run {
    /// The defaults, with `clients` clients.
    pub(crate) fn new(clients: usize) -> Self {
        Self {
            port: 0,
            clients,
            duration: Duration::from_secs(5),
            warmup: Duration::from_secs(1),
            size: 32,
            pid: None,
        }
    }

    /// Takes one of the common flags; `None` for another flag or a value that does not parse.
    pub(crate) fn set(&mut self, flag: &str, val: &str) -> Option<()> {
        let secs = |v: &str| v.parse().ok().map(Duration::from_secs_f64);
        match flag {
            "--port" => self.port = val.parse().ok()?,
            "-c" | "--clients" => self.clients = val.parse().ok()?,
            "--duration" => self.duration = secs(val)?,
            "--warmup" => self.warmup = secs(val)?,
            "--size" => self.size = val.parse().ok()?,
            "--pid" => self.pid = Some(val.parse().ok()?),
            _ => return None,
        }
        Some(())
    }

    /// Whether the options make a run (a port, at least one client).
    pub(crate) fn is_valid(&self) -> bool {
        self.port != 0 && self.clients != 0
    }
}
