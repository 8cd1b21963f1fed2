//! `server_stats`, sent every 2 seconds: who this server is, its counts, and the
//! per-second aggregates of Engine.IO connections, disconnections, packets and bytes.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use volley::{EngineMetrics, SocketIo};

/// How often the aggregates are sampled (the UI's histograms are per second).
pub(crate) const SAMPLE_EVERY: Duration = Duration::from_secs(1);
/// Samples per `server_stats` (the package sends them every 2 s).
pub(crate) const SAMPLES_PER_STATS: u32 = 2;

/// Engine totals since start; the one place that reads the engine's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    pub(crate) opened: u64,
    pub(crate) closed: u64,
    pub(crate) packets_in: u64,
    pub(crate) packets_out: u64,
    pub(crate) bytes_in: u64,
    pub(crate) bytes_out: u64,
    pub(crate) clients: usize,
    pub(crate) polling_clients: usize,
}

pub(crate) fn totals(m: &EngineMetrics) -> Totals {
    Totals {
        opened: m.sessions_opened_total,
        closed: m.sessions_closed_total,
        packets_in: m.messages_received_total,
        packets_out: m.messages_sent_total,
        bytes_in: m.bytes_received_total,
        bytes_out: m.bytes_sent_total,
        clients: m.sessions_open,
        polling_clients: m.polling_sessions,
    }
}

/// Counts per (second, type), as the package's `EventBuffer`.
#[derive(Debug, Default)]
pub(crate) struct EventBuffer {
    counts: BTreeMap<(u64, &'static str), u64>,
}

impl EventBuffer {
    /// Adds the growth of every counter between two samples, at second `ts` (ms).
    pub(crate) fn push_delta(&mut self, ts: u64, before: &Totals, after: &Totals) {
        let deltas = [
            ("rawConnection", after.opened.saturating_sub(before.opened)),
            (
                "rawDisconnection",
                after.closed.saturating_sub(before.closed),
            ),
            (
                "packetsIn",
                after.packets_in.saturating_sub(before.packets_in),
            ),
            (
                "packetsOut",
                after.packets_out.saturating_sub(before.packets_out),
            ),
            ("bytesIn", after.bytes_in.saturating_sub(before.bytes_in)),
            ("bytesOut", after.bytes_out.saturating_sub(before.bytes_out)),
        ];
        for (kind, n) in deltas {
            if n > 0 {
                *self.counts.entry((ts, kind)).or_default() += n;
            }
        }
    }

    /// The aggregates in the UI's shape (`{timestamp, type, count}`), emptied.
    pub(crate) fn take(&mut self) -> Vec<Value> {
        std::mem::take(&mut self.counts)
            .into_iter()
            .map(|((timestamp, kind), count)| {
                json!({ "timestamp": timestamp, "type": kind, "count": count })
            })
            .collect()
    }
}

/// Now, in milliseconds since the epoch, truncated to the second.
pub(crate) fn this_second_ms() -> u64 {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    ms - ms % 1000
}

/// Who this server is, in every `server_stats`.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub(crate) server_id: String,
    pub(crate) hostname: String,
    pub(crate) started: Instant,
}

impl Identity {
    pub(crate) fn new(server_id: Option<String>) -> Self {
        let hostname = gethostname::gethostname().to_string_lossy().into_owned();
        Self {
            server_id: server_id.unwrap_or_else(|| hostname.clone()),
            hostname,
            started: Instant::now(),
        }
    }
}

/// Resident memory of this process in bytes (Linux: `VmRSS` of `/proc/self/status`).
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// One `server_stats` payload, in the package's key order (plus `memoryUsage`).
pub(crate) fn server_stats(
    io: &SocketIo,
    id: &Identity,
    t: &Totals,
    aggregated: Vec<Value>,
) -> Value {
    let mut names: Vec<(String, usize)> = io
        .namespace_handles()
        .iter()
        .map(|ns| (ns.name().to_owned(), ns.sockets().len()))
        .collect();
    names.sort();
    let namespaces: Vec<Value> = names
        .into_iter()
        .map(|(name, n)| json!({ "name": name, "socketsCount": n }))
        .collect();
    let mut stats = json!({
        "serverId": id.server_id,
        "hostname": id.hostname,
        "pid": std::process::id(),
        "uptime": id.started.elapsed().as_secs_f64(),
        "clientsCount": t.clients,
        "pollingClientsCount": t.polling_clients,
        "aggregatedEvents": aggregated,
        "namespaces": namespaces,
    });
    if let (Some(rss), Some(map)) = (rss_bytes(), stats.as_object_mut()) {
        map.insert("memoryUsage".into(), json!({ "rss": rss }));
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_are_bucketed_per_second_and_type() {
        let mut b = EventBuffer::default();
        let t0 = Totals::default();
        let t1 = Totals {
            opened: 3,
            closed: 1,
            packets_in: 10,
            bytes_in: 100,
            ..t0
        };
        b.push_delta(1000, &t0, &t1);
        b.push_delta(1000, &t1, &Totals { opened: 4, ..t1 });
        b.push_delta(2000, &t1, &t1); // nothing happened: nothing pushed
        let out = b.take();
        assert_eq!(
            out,
            vec![
                json!({"timestamp": 1000, "type": "bytesIn", "count": 100}),
                json!({"timestamp": 1000, "type": "packetsIn", "count": 10}),
                json!({"timestamp": 1000, "type": "rawConnection", "count": 4}),
                json!({"timestamp": 1000, "type": "rawDisconnection", "count": 1}),
            ]
        );
        assert!(b.take().is_empty());
    }
}
