//! The run role: spawns one receiver process per node, connects the sender, drives the
//! broadcasts with a window and measures.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use crate::procfs::{each_rss_kib, run_and_wait_secs, total_cpu_secs};
use crate::wire::{Res, Ws, broadcast_frame, broadcast_seq, connect_sio, epoch_ns};

/// Source addresses per receiver process: receiver `j` uses `127.0.0.(1 + 8j)` ..
/// `127.0.0.(8 + 8j)`.
const SRC_PER_RECEIVER: u8 = 8;
/// The sender's source address.
const SENDER_SRC: u8 = 250;

/// What to run.
pub(crate) struct RunOpts {
    /// One receiver process per port (node); the sender connects to the first.
    pub(crate) ports: Vec<u16>,
    pub(crate) per_node: usize,
    /// Broadcasts outstanding at once.
    pub(crate) window: usize,
    pub(crate) warmup: Duration,
    pub(crate) duration: Duration,
    /// Payload string length.
    pub(crate) size: usize,
    /// The nodes' process ids (RSS and CPU), and Redis's.
    pub(crate) server_pids: Vec<u32>,
    pub(crate) redis_pid: Option<u32>,
    pub(crate) label: String,
    pub(crate) concurrency: usize,
    /// Per connection attempt, and the longest wait for any progress once running.
    pub(crate) timeout: Duration,
    /// How long all receivers together may take to connect.
    pub(crate) connect_limit: Duration,
    /// Hard cap on broadcasts sent.
    pub(crate) max_broadcasts: u64,
}

/// A line from a receiver, or its end.
enum Event {
    Ready { connected: u64, failed: u64 },
    Done { seq: u64, at: u64 },
    Lost,
    End,
    Exited,
}

fn parse_event(line: &str) -> Option<Event> {
    let mut words = line.split_whitespace();
    let kind = words.next()?;
    let mut num = || words.next()?.parse::<u64>().ok();
    Some(match kind {
        "ready" => Event::Ready {
            connected: num()?,
            failed: num()?,
        },
        "done" => Event::Done {
            seq: num()?,
            at: num()?,
        },
        "lost" => Event::Lost,
        "end" => Event::End,
        _ => return None,
    })
}

struct Receiver {
    child: Child,
    stdin: Option<ChildStdin>,
    pid: u32,
}

/// Starts receiver `j` against `port`; its lines arrive on `events` tagged with `j`.
fn spawn_receiver(
    j: usize,
    port: u16,
    o: &RunOpts,
    events: mpsc::UnboundedSender<(usize, Event)>,
) -> Res<Receiver> {
    let src_base = 1 + SRC_PER_RECEIVER as usize * j;
    if src_base + SRC_PER_RECEIVER as usize > SENDER_SRC as usize {
        return Err("too many receivers for the loopback source addresses".into());
    }
    let mut child = Command::new(std::env::current_exe()?)
        .args(["receive", "--port", &port.to_string()])
        .args(["--clients", &o.per_node.to_string()])
        .args(["--src-base", &src_base.to_string()])
        .args(["--src-count", &SRC_PER_RECEIVER.to_string()])
        .args(["--concurrency", &o.concurrency.to_string()])
        .args(["--timeout", &o.timeout.as_secs_f64().to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().ok_or("receiver exited at once")?;
    let stdout = child.stdout.take().ok_or("no receiver stdout")?;
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            match parse_event(&line) {
                Some(ev) => {
                    let _ = events.send((j, ev));
                }
                None => eprintln!("cluster-fanout: receiver {j}: unexpected line {line:.80}"),
            }
        }
        let _ = events.send((j, Event::Exited));
    });
    let stdin = child.stdin.take();
    Ok(Receiver { child, stdin, pid })
}

/// One broadcast on its way.
struct Pending {
    t_sent: u64,
    /// Receivers (and the sender's own copy) that have not reported it yet.
    remaining: usize,
    last_at: u64,
    measured: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum Phase {
    Warmup,
    /// Warm-up time is over: no new broadcast until the outstanding ones are in.
    DrainWarmup,
    Measure,
    Stop,
}

/// CPU seconds of each group at one instant.
struct CpuSnap {
    at: Instant,
    servers: f64,
    /// The servers' threads: time on a CPU, time runnable but waiting (schedstat).
    servers_run: f64,
    servers_wait: f64,
    generator: f64,
    redis: f64,
}

impl CpuSnap {
    fn take(servers: &[u32], generators: &[u32], redis: Option<u32>) -> Self {
        let (servers_run, servers_wait) = run_and_wait_secs(servers);
        CpuSnap {
            at: Instant::now(),
            servers: total_cpu_secs(servers),
            servers_run,
            servers_wait,
            generator: total_cpu_secs(generators),
            redis: redis.map_or(0.0, |p| total_cpu_secs(&[p])),
        }
    }
}

/// The broadcast loop's counters.
#[derive(Default)]
struct Tally {
    seq: u64,
    outstanding: usize,
    reach_ns: Vec<u64>,
    warmup_done: u64,
}

/// Runs the whole measurement; the result line is returned even when the run failed (with
/// an `error` field), so the caller can print what was measured.
pub(crate) async fn run(o: &RunOpts) -> (Value, bool) {
    let mut out = json!({
        "label": o.label,
        "nodes": o.ports.len(),
        "per_node": o.per_node,
        "window": o.window,
        "size": o.size,
        "warmup_s": o.warmup.as_secs_f64(),
        "duration_s": o.duration.as_secs_f64(),
    });
    let ok = match measure(o, &mut out).await {
        Ok(()) => true,
        Err(e) => {
            out["error"] = e.to_string().into();
            false
        }
    };
    (out, ok)
}

fn percentile_us(sorted: &[u64], q: f64) -> Value {
    if sorted.is_empty() {
        return Value::Null;
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    round(sorted[i] as f64 / 1000.0, 1)
}

fn round(x: f64, decimals: i32) -> Value {
    let k = 10f64.powi(decimals);
    ((x * k).round() / k).into()
}

async fn measure(o: &RunOpts, out: &mut Value) -> Res<()> {
    let rss_before = each_rss_kib(&o.server_pids);
    let (ev_tx, mut events) = mpsc::unbounded_channel();
    let t_connect = Instant::now();
    let mut receivers = Vec::new();
    for (j, &port) in o.ports.iter().enumerate() {
        receivers.push(spawn_receiver(j, port, o, ev_tx.clone())?);
    }
    drop(ev_tx);
    let result = drive(o, out, &mut receivers, &mut events, t_connect, rss_before).await;
    // Stop the receivers whatever happened; they close their sockets (RST) and exit.
    for r in &mut receivers {
        if let Some(mut stdin) = r.stdin.take() {
            let _ = stdin.write_all(b"stop\n").await;
        }
    }
    let ends = async {
        let mut left = receivers.len();
        while left > 0 {
            match events.recv().await {
                Some((_, Event::End)) | Some((_, Event::Exited)) => left -= 1,
                Some(_) => {}
                None => break,
            }
        }
    };
    let _ = tokio::time::timeout(o.timeout, ends).await;
    for r in &mut receivers {
        let _ = tokio::time::timeout(o.timeout, r.child.wait()).await;
    }
    result
}

/// Waits until every receiver is `ready`; returns the connected counts.
async fn await_ready(
    o: &RunOpts,
    events: &mut mpsc::UnboundedReceiver<(usize, Event)>,
) -> Res<(Vec<u64>, u64)> {
    let mut connected = vec![None; o.ports.len()];
    let mut failed = 0;
    let deadline = tokio::time::Instant::now() + o.connect_limit;
    while connected.iter().any(Option::is_none) {
        let ev = tokio::time::timeout_at(deadline, events.recv())
            .await
            .map_err(|_| format!("receivers not connected within {:?}", o.connect_limit))?;
        match ev {
            Some((
                j,
                Event::Ready {
                    connected: c,
                    failed: f,
                },
            )) => {
                connected[j] = Some(c);
                failed += f;
            }
            Some((j, Event::Exited)) => return Err(format!("receiver {j} exited early").into()),
            Some(_) => {}
            None => return Err("every receiver is gone".into()),
        }
    }
    Ok((
        connected
            .into_iter()
            .map(Option::unwrap_or_default)
            .collect(),
        failed,
    ))
}

/// Connect, broadcast, measure; fills `out`.
async fn drive(
    o: &RunOpts,
    out: &mut Value,
    receivers: &mut [Receiver],
    events: &mut mpsc::UnboundedReceiver<(usize, Event)>,
    t_connect: Instant,
    rss_before: Vec<u64>,
) -> Res<()> {
    let (connected, failed) = await_ready(o, events).await?;
    let connect_s = t_connect.elapsed().as_secs_f64();
    let total: u64 = connected.iter().sum();
    out["connected"] = total.into();
    out["connected_per_node"] = connected.clone().into();
    out["connect_failed"] = failed.into();
    out["connect_s"] = round(connect_s, 2);
    out["connect_per_s"] = round(total as f64 / connect_s, 0);
    if failed > 0 {
        return Err(format!(
            "{failed} of {} clients could not connect",
            o.ports.len() * o.per_node
        )
        .into());
    }
    let mut sender = connect_sio(o.ports[0], SENDER_SRC, o.timeout)
        .await
        .map_err(|e| format!("sender: {e}"))?;
    // Every client plus the sender's own copy (`io.emit` reaches the sender too).
    let recipients = total + 1;
    out["clients"] = recipients.into();
    let rss_connected = each_rss_kib(&o.server_pids);
    let sum = |v: &[u64]| v.iter().sum::<u64>();
    out["server_rss_kib_before"] = sum(&rss_before).into();
    out["server_rss_kib_connected"] = sum(&rss_connected).into();
    out["server_rss_kib_connected_per_node"] = rss_connected.clone().into();
    out["server_rss_kib_per_conn"] = round(
        (sum(&rss_connected) as f64 - sum(&rss_before) as f64) / recipients as f64,
        2,
    );
    let gen_pids: Vec<u32> = receivers
        .iter()
        .map(|r| r.pid)
        .chain([std::process::id()])
        .collect();
    out["gen_rss_kib_connected"] = sum(&each_rss_kib(&gen_pids)).into();

    let (tally, cpu0, t_end) = broadcast_loop(o, &mut sender, events, &gen_pids).await?;
    let cpu1 = CpuSnap::take(&o.server_pids, &gen_pids, o.redis_pid);
    let window_s = t_end.duration_since(cpu0.at).as_secs_f64();
    let mut reach = tally.reach_ns;
    reach.sort_unstable();
    let broadcasts = reach.len() as u64;
    let deliveries = broadcasts * recipients;
    if broadcasts == 0 {
        return Err("no broadcast completed in the measured window".into());
    }
    let srv_cpu = cpu1.servers - cpu0.servers;
    out["warmup_broadcasts"] = tally.warmup_done.into();
    out["broadcasts"] = broadcasts.into();
    out["measured_s"] = round(window_s, 3);
    out["bcast_per_s"] = round(broadcasts as f64 / window_s, 2);
    out["delivered_per_s"] = round(deliveries as f64 / window_s, 0);
    out["all_p50_us"] = percentile_us(&reach, 0.50);
    out["all_p99_us"] = percentile_us(&reach, 0.99);
    out["all_max_us"] = percentile_us(&reach, 1.0);
    out["server_cpu_pct"] = round(100.0 * srv_cpu / window_s, 1);
    out["server_us_per_delivery"] = round(srv_cpu * 1e6 / deliveries as f64, 3);
    // Of the time the servers wanted a CPU, the share they waited for one (other processes
    // on the host, or the nodes competing among themselves for their core).
    let (run_s, wait_s) = (
        cpu1.servers_run - cpu0.servers_run,
        cpu1.servers_wait - cpu0.servers_wait,
    );
    if run_s + wait_s > 0.0 {
        out["server_runq_wait_pct"] = round(100.0 * wait_s / (run_s + wait_s), 1);
    }
    out["gen_cpu_pct"] = round(100.0 * (cpu1.generator - cpu0.generator) / window_s, 1);
    out["redis_cpu_pct"] = round(100.0 * (cpu1.redis - cpu0.redis) / window_s, 1);
    let rss_end = each_rss_kib(&o.server_pids);
    out["server_rss_kib_end"] = sum(&rss_end).into();
    out["server_rss_kib_end_per_node"] = rss_end.into();
    if let Some(p) = o.redis_pid {
        out["redis_rss_kib_end"] = each_rss_kib(&[p])[0].into();
    }
    let _ = sender.close(None).await;
    Ok(())
}

/// Keeps `window` broadcasts outstanding: warm-up, then the measured broadcasts; returns
/// the tally, the CPU snapshot at the start of the measured window and its end (the last
/// measured broadcast complete).
async fn broadcast_loop(
    o: &RunOpts,
    sender: &mut Ws,
    events: &mut mpsc::UnboundedReceiver<(usize, Event)>,
    gen_pids: &[u32],
) -> Res<(Tally, CpuSnap, Instant)> {
    let padding = "x".repeat(o.size.saturating_sub(21));
    let parts = o.ports.len() + 1;
    let mut pending: HashMap<u64, Pending> = HashMap::new();
    let mut t = Tally::default();
    let mut phase = Phase::Warmup;
    let warm_until = Instant::now() + o.warmup;
    let mut cpu0 = CpuSnap::take(&o.server_pids, gen_pids, o.redis_pid);
    let mut end_at = warm_until + o.duration;
    let mut t_end = Instant::now();
    loop {
        let now = Instant::now();
        if phase == Phase::Warmup && now >= warm_until {
            phase = Phase::DrainWarmup;
        }
        if phase == Phase::DrainWarmup && t.outstanding == 0 {
            phase = Phase::Measure;
            cpu0 = CpuSnap::take(&o.server_pids, gen_pids, o.redis_pid);
            end_at = cpu0.at + o.duration;
        }
        if phase == Phase::Measure && (now >= end_at || t.seq >= o.max_broadcasts) {
            phase = Phase::Stop;
        }
        if phase == Phase::Stop && t.outstanding == 0 {
            return Ok((t, cpu0, t_end));
        }
        let may_send = matches!(phase, Phase::Warmup | Phase::Measure) && t.seq < o.max_broadcasts;
        if may_send && t.outstanding < o.window {
            let t_sent = epoch_ns();
            sender
                .send(broadcast_frame(t.seq, t_sent, &padding))
                .await?;
            pending.insert(
                t.seq,
                Pending {
                    t_sent,
                    remaining: parts,
                    last_at: 0,
                    measured: phase == Phase::Measure,
                },
            );
            t.seq += 1;
            t.outstanding += 1;
            continue;
        }
        let (seq, at) = tokio::select! {
            ev = events.recv() => match ev {
                Some((_, Event::Done { seq, at })) => (seq, at),
                Some((j, Event::Lost)) => return Err(format!("receiver {j} lost a client").into()),
                Some((j, Event::Exited)) => return Err(format!("receiver {j} exited").into()),
                Some(_) => continue,
                None => return Err("every receiver is gone".into()),
            },
            m = sender.next() => match m {
                Some(Ok(Message::Text(f))) => match broadcast_seq(f.as_str()) {
                    Some(seq) => (seq, epoch_ns()),
                    None => {
                        if f.as_str() == "2" {
                            sender.send(Message::text("3")).await?;
                        }
                        continue;
                    }
                },
                Some(Ok(_)) => continue,
                _ => return Err("the sender's connection closed".into()),
            },
            _ = tokio::time::sleep(o.timeout) => {
                return Err(format!(
                    "stalled: {} broadcasts outstanding, none complete within {:?}",
                    t.outstanding, o.timeout
                ).into());
            }
        };
        let Some(p) = pending.get_mut(&seq) else {
            return Err(format!("a report for broadcast {seq}, which is not outstanding").into());
        };
        p.remaining -= 1;
        p.last_at = p.last_at.max(at);
        if p.remaining == 0 {
            let p = pending.remove(&seq).unwrap_or_else(|| unreachable!());
            t.outstanding -= 1;
            if p.measured {
                t.reach_ns.push(p.last_at.saturating_sub(p.t_sent));
                t_end = Instant::now();
            } else {
                t.warmup_done += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_receivers_lines() {
        assert!(matches!(
            parse_event("ready 19000 0"),
            Some(Event::Ready {
                connected: 19000,
                failed: 0
            })
        ));
        assert!(matches!(
            parse_event("done 7 1765000000000000000"),
            Some(Event::Done {
                seq: 7,
                at: 1_765_000_000_000_000_000
            })
        ));
        assert!(matches!(parse_event("lost 1"), Some(Event::Lost)));
        assert!(matches!(parse_event("end 10 0"), Some(Event::End)));
        assert!(parse_event("ready 12").is_none());
        assert!(parse_event("done x 1").is_none());
        assert!(parse_event("").is_none());
    }
}
