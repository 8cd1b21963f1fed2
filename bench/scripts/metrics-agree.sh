#!/usr/bin/env bash
# Checks that Volley's Prometheus metrics agree with the shared load generator's own counts
# (issue 15: "within 1 %"): a release bench-server with --metrics, a load run of
# shared/bench's sio-loadgen against it, /metrics scraped before, during and after.
#
#   bench/scripts/metrics-agree.sh
#   CLIENTS=200 MSGS=300000 KINDS="echo" bench/scripts/metrics-agree.sh
#
# For each kind of run (KINDS, default "echo ack": C clients, INFLIGHT outstanding each, a
# hard cap of MSGS messages, no warm-up, DURATION seconds at most), it compares:
# - connections: opened during the run (volley_connections_opened_total) and open while it
#   runs (volley_connections{transport="websocket"}, scraped once every client is in),
#   against the generator's clients minus its failed connects; after the run, closed
#   (volley_connections_closed_total) against opened;
# - messages: Engine.IO messages received and sent by the server during the run, less one
#   CONNECT and one CONNECT reply per connection, against the replies the generator
#   counted (`measured`: echoes or acks).
# It prints each ratio (server / generator) and exits 1 if one is off by more than 1 %.
# The machine may be busy: only counts matter here, not speed.
#
# Environment: SHARED (default ../shared/bench next to the repo, else /work/shared/bench),
# LOADGEN (default /tmp/bench-cache/target/release/sio-loadgen, built if missing), CLIENTS
# (100), INFLIGHT (1), MSGS (100000), DURATION (30), KINDS ("echo ack"), TOLERANCE (0.01).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
if [ -z "${SHARED:-}" ]; then
  if [ -d "$REPO/../shared/bench" ]; then SHARED="$REPO/../shared/bench"; else SHARED=/work/shared/bench; fi
fi
LOADGEN="${LOADGEN:-/tmp/bench-cache/target/release/sio-loadgen}"
CLIENTS="${CLIENTS:-100}"
INFLIGHT="${INFLIGHT:-1}"
MSGS="${MSGS:-100000}"
DURATION="${DURATION:-30}"
KINDS="${KINDS:-echo ack}"
TOLERANCE="${TOLERANCE:-0.01}"

(cd "$REPO" && cargo build --release --bin bench-server)
if [ ! -x "$LOADGEN" ]; then
  CARGO_TARGET_DIR="$(dirname "$(dirname "$LOADGEN")")" \
    cargo build --release --locked --manifest-path "$SHARED/Cargo.toml" --bin sio-loadgen
fi
SERVER="$REPO/target/release/bench-server"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

WORK="$(mktemp -d /tmp/metrics-agree.XXXXXX)"
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
SRV_PID=""
cleanup() {
  if [ -n "$SRV_PID" ]; then kill "$SRV_PID" 2>/dev/null || true; wait "$SRV_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
PORT="$PORT" "$SERVER" --metrics 2>"$WORK/server.log" &
SRV_PID=$!
URL="http://127.0.0.1:$PORT/metrics"

scrape() { curl -fsS --max-time 10 "$URL" >"$1"; }
# The value of one series in a scrape ("name" or 'name{label="x"}').
value() { awk -v s="$2" '$1 == s { print $2; found = 1 } END { if (!found) exit 1 }' "$1"; }
# Waits (at most 60 s, polling the metrics) until `series` has the value `want`.
wait_for() {
  local series="$1" want="$2" file="$WORK/wait.txt"
  for _ in $(seq 600); do
    if scrape "$file" 2>/dev/null && [ "$(value "$file" "$series")" = "$want" ]; then return 0; fi
    sleep 0.1
  done
  echo "metrics-agree: $series never reached $want (last: $(value "$file" "$series" || echo none))" >&2
  return 1
}

wait_for 'volley_connections{transport="websocket"}' 0
status=0
for kind in $KINDS; do
  scrape "$WORK/before.txt"
  "$LOADGEN" "$kind" --port "$PORT" --pid "$SRV_PID" --label volley -c "$CLIENTS" \
    --inflight "$INFLIGHT" --warmup 0 --duration "$DURATION" --max-msgs "$MSGS" \
    >"$WORK/gen.json" 2>"$WORK/gen.log" &
  gen_pid=$!
  # During the run: once every client is in, the gauge is read while messages flow.
  opened0="$(value "$WORK/before.txt" volley_connections_opened_total)"
  wait_for volley_connections_opened_total "$((opened0 + CLIENTS))"
  scrape "$WORK/during.txt"
  wait "$gen_pid"
  scrape "$WORK/after.txt"
  # After the run: every connection the generator closed is closed on the server too.
  wait_for 'volley_connections{transport="websocket"}' 0
  scrape "$WORK/closed.txt"
  python3 - "$kind" "$TOLERANCE" "$WORK" <<'PY' || status=1
import json, sys
kind, tol, work = sys.argv[1], float(sys.argv[2]), sys.argv[3]

def load(name):
    m = {}
    for line in open(f"{work}/{name}.txt"):
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            m[k] = float(v)
    return m

before, during, after, closed = (load(n) for n in ("before", "during", "after", "closed"))
gen = json.loads(open(f"{work}/gen.json").read().strip().splitlines()[-1])
if gen.get("errors"):
    print(f"{kind}: the generator reported {gen['errors']:.0f} errors", file=sys.stderr)
clients = gen["clients"] - gen["connect_failed"]
d = lambda m, k: m[k] - before[k]
opened = d(after, "volley_connections_opened_total")
ws = 'volley_connections{transport="websocket"}'
rows = [
    ("connections opened", opened, clients),
    ("connections open during the run", during[ws], clients),
    ("connections closed after the run", d(closed, "volley_connections_closed_total"), opened),
    # One CONNECT in and one CONNECT reply out per connection are not the generator's.
    (f"{kind} messages received", d(after, "volley_messages_received_total") - opened, gen["measured"]),
    (f"{kind} messages sent", d(after, "volley_messages_sent_total") - opened, gen["measured"]),
]
bad = False
print(f"{kind}: {clients:.0f} clients, generator measured {gen['measured']:.0f} replies"
      f" ({gen['msgs_per_s']:.0f}/s, p50 {gen['p50_us']} us)")
for what, server, generator in rows:
    ratio = server / generator if generator else float("nan")
    ok = generator > 0 and abs(ratio - 1) <= tol
    bad |= not ok
    print(f"  {what:36} server {server:>10.0f}  generator {generator:>10.0f}  ratio {ratio:.5f}"
          f"  {'ok' if ok else 'OFF BY MORE THAN ' + str(tol * 100) + ' %'}")
sys.exit(1 if bad else 0)
PY
done
exit "$status"
