//! A broadcast fan-out over several Socket.IO nodes of one cluster, past the file-descriptor
//! limit of one process (issue 16, "Scale past one process").
//!
//! ```text
//! cluster-fanout run --ports P1,P2,… --per-node N [--window 1] [--warmup 2] [--duration 10]
//!     [--size 32] [--pids PID1,PID2,…] [--redis-pid PID] [--label NAME] [--concurrency 64]
//!     [--timeout 10] [--connect-limit 300] [--max-broadcasts 100000] [--hard-limit 900]
//! ```
//!
//! `run` starts one **receiver** child process per node (this same binary, `receive`), each
//! opening `--per-node` clients to its node over raw WebSocket (Engine.IO v4 / Socket.IO v5,
//! as `shared/bench`'s `sio-loadgen` speaks it; pings answered; source addresses
//! `127.0.0.(1+8j)`…`127.0.0.(8+8j)` for receiver `j`, SO_LINGER 0). Once every receiver is
//! ready, one **sender** client on the first node emits `42["broadcast","<seq>|<t>|…"]`
//! with `--window` broadcasts outstanding; every node's `broadcast` handler does
//! `io.emit("broadcast", data)`, which the cluster adapter carries to every node. A receiver
//! reports when broadcast `seq` has reached all of its clients; a broadcast is complete when
//! every receiver and the sender itself have it. `t` and the arrival times are epoch
//! nanoseconds (`SystemTime`), the clock all processes on one host share.
//!
//! Measured, over the broadcasts sent after `--warmup` seconds for `--duration` seconds (the
//! window starts once the warm-up broadcasts are in, and ends when the last measured one is):
//! deliveries/s (copies received by all clients), reach-all p50/p99/max (emit to last copy),
//! the servers' total RSS before, after connecting and at the end (`/proc/PID/status`), and
//! the CPU of the servers, the generator processes and Redis (`/proc/PID/stat`, utime +
//! stime, as a percentage of one core and per delivery).
//!
//! The result is one JSON line on stdout. Bounded: every connection attempt and every wait
//! for progress has `--timeout`, connecting all has `--connect-limit`, the broadcasts are
//! capped by `--max-broadcasts`, and the whole run by `--hard-limit` seconds. Loopback only.
//! Exits 1 with an `error` field in the line when a client could not connect (with how many
//! did), a connection dropped, or a broadcast stalled.

mod parent;
mod procfs;
mod receiver;
mod wire;

use std::collections::HashMap;
use std::time::Duration;

const USAGE: &str = "usage: cluster-fanout run --ports P1,P2,… --per-node N [--window 1] \
[--warmup 2] [--duration 10] [--size 32] [--pids PID,…] [--redis-pid PID] [--label NAME] \
[--concurrency 64] [--timeout 10] [--connect-limit 300] [--max-broadcasts 100000] \
[--hard-limit 900]
       cluster-fanout receive --port P --clients N --src-base B --src-count K \
[--concurrency 64] [--timeout 10]";

/// The most clients one receiver process may hold (the host allows 20,000 descriptors).
const MAX_PER_NODE: usize = 19_500;

fn fail(msg: &str) -> ! {
    eprintln!("cluster-fanout: {msg}\n{USAGE}");
    std::process::exit(2)
}

/// `--key value` pairs.
struct Args(HashMap<String, String>);

impl Args {
    fn parse(args: impl Iterator<Item = String>) -> Self {
        let mut map = HashMap::new();
        let mut args = args.peekable();
        while let Some(k) = args.next() {
            if !k.starts_with("--") {
                fail(&format!("unexpected argument {k}"));
            }
            let v = args
                .next()
                .unwrap_or_else(|| fail(&format!("{k} needs a value")));
            map.insert(k, v);
        }
        Args(map)
    }

    fn get<T: std::str::FromStr>(&self, key: &str, default: Option<T>) -> T {
        match self.0.get(key) {
            Some(v) => v
                .parse()
                .unwrap_or_else(|_| fail(&format!("bad value for {key}: {v}"))),
            None => default.unwrap_or_else(|| fail(&format!("{key} is required"))),
        }
    }

    fn secs(&self, key: &str, default: f64, max: f64) -> Duration {
        let s: f64 = self.get(key, Some(default));
        if !(s > 0.0 && s <= max) {
            fail(&format!("{key} must be in (0, {max}]"));
        }
        Duration::from_secs_f64(s)
    }

    fn list<T: std::str::FromStr>(&self, key: &str) -> Vec<T> {
        self.0.get(key).map_or_else(Vec::new, |v| {
            v.split(',')
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse()
                        .unwrap_or_else(|_| fail(&format!("bad value in {key}: {s}")))
                })
                .collect()
        })
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(&format!("cannot start tokio: {e}")))
}

fn main() {
    let mut argv = std::env::args().skip(1);
    let role = argv.next().unwrap_or_else(|| fail("a role is required"));
    let a = Args::parse(argv);
    match role.as_str() {
        "run" => run(&a),
        "receive" => receive(&a),
        _ => fail(&format!("unknown role {role}")),
    }
}

fn run(a: &Args) {
    let o = parent::RunOpts {
        ports: a.list("--ports"),
        per_node: a.get("--per-node", None),
        window: a.get("--window", Some(1)),
        warmup: a.secs("--warmup", 2.0, 60.0),
        duration: a.secs("--duration", 10.0, 300.0),
        size: a.get("--size", Some(32)),
        server_pids: a.list("--pids"),
        redis_pid: a
            .0
            .contains_key("--redis-pid")
            .then(|| a.get("--redis-pid", None)),
        label: a.get("--label", Some(String::new())),
        concurrency: a.get("--concurrency", Some(64)),
        timeout: a.secs("--timeout", 10.0, 120.0),
        connect_limit: a.secs("--connect-limit", 300.0, 1800.0),
        max_broadcasts: a.get("--max-broadcasts", Some(100_000)),
    };
    if o.ports.is_empty() || o.per_node == 0 || o.per_node > MAX_PER_NODE {
        fail(&format!(
            "--ports must name a node and --per-node be in 1..={MAX_PER_NODE}"
        ));
    }
    if o.window == 0 || o.window > 4096 || o.size > 1 << 20 {
        fail("--window must be in 1..=4096 and --size at most 1 MiB");
    }
    let hard = a.secs("--hard-limit", 900.0, 3600.0);
    let res = runtime().block_on(async { tokio::time::timeout(hard, parent::run(&o)).await });
    let (line, ok) = res.unwrap_or_else(|_| {
        let line = serde_json::json!({
            "label": o.label,
            "error": format!("hard time limit of {hard:?} reached"),
        });
        (line, false)
    });
    println!("{line}");
    if !ok {
        eprintln!(
            "cluster-fanout: {}",
            line["error"].as_str().unwrap_or("failed")
        );
        std::process::exit(1);
    }
}

fn receive(a: &Args) {
    let o = receiver::ReceiverOpts {
        port: a.get("--port", None),
        clients: a.get("--clients", None),
        src_base: a.get("--src-base", Some(1)),
        src_count: a.get("--src-count", Some(8)),
        concurrency: a.get("--concurrency", Some(64)),
        timeout: a.secs("--timeout", 10.0, 120.0),
    };
    if o.clients == 0 || o.clients > MAX_PER_NODE || o.src_base == 0 || o.src_count == 0 {
        fail("bad receiver options");
    }
    if let Err(e) = runtime().block_on(receiver::run(o)) {
        eprintln!("cluster-fanout receiver: {e}");
        std::process::exit(1);
    }
    // Exit at once: the clients' sockets close with RST (SO_LINGER 0) as the process ends.
    std::process::exit(0);
}
