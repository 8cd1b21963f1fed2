#!/usr/bin/env bash
# User-space instructions and cache misses per broadcast delivery, counted by callgrind, which
# do not depend on the host's load (BENCHMARKS.md, "Round 5: broadcast growth with N").
#
#   bench/scripts/bcast-callgrind.sh SERVER_BINARY [LABEL]
#
# For N = 1,000 and 10,000 clients (the shared load generator's broadcast scenario, window 1)
# the server runs under callgrind twice, for 10 and for 110 broadcasts; the difference divided
# by 100 x N is the cost of one delivery, without the connections and the start-up. The cache
# is simulated with a 2 MiB last level (one core's L2 here: the host's 480 MiB L3 would never
# miss). Needs valgrind and /tmp/bench-cache/target/release/sio-loadgen (shared/bench/setup.sh).
# Any server of the shared harness works, e.g. /tmp/bench-cache/target/release/peer-rawws-bcast.
set -euo pipefail
BIN=$(realpath "$1")
LABEL=${2:-$(basename "$BIN")}
OUT=${OUT:-/tmp/bcast-callgrind}
LOADGEN=/tmp/bench-cache/target/release/sio-loadgen
command -v valgrind >/dev/null || { echo "valgrind is missing" >&2; exit 1; }
[ -x "$LOADGEN" ] || { echo "run shared/bench/setup.sh first" >&2; exit 1; }
mkdir -p "$OUT"
ulimit -n 20000

one() { # N BROADCASTS
  local n=$1 b=$2 f="$OUT/$LABEL-$1-$2.cg" port pid
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  PORT=$port taskset -c 0 valgrind --tool=callgrind --callgrind-out-file="$f" --cache-sim=yes \
    --LL=2097152,16,64 "$BIN" >"$f.log" 2>&1 &
  pid=$!
  for _ in $(seq 600); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.2; done
  timeout 600 taskset -c 1 "$LOADGEN" broadcast -n "$n" --window 1 --port "$port" --max-msgs $((n * b)) \
    --duration 300 --warmup 0 --timeout 120 --concurrency 16 >"$f.json"
  kill "$pid"
  wait "$pid" || true
  grep -q '"errors":0' "$f.json" || { echo "load generator errors: $f.json" >&2; exit 1; }
}

for n in 1000 10000; do
  one "$n" 10
  one "$n" 110
done
python3 - "$OUT" "$LABEL" <<'PY'
import sys
out, label = sys.argv[1:]
def totals(path):
    events = total = None
    for line in open(path):
        if line.startswith("events:"):
            events = line.split()[1:]
        if line.startswith(("totals:", "summary:")):
            total = [int(x) for x in line.split()[1:]]
    return dict(zip(events, total))
for n in (1000, 10000):
    a, b = (totals(f"{out}/{label}-{n}-{k}.cg") for k in (10, 110))
    d = {k: (b[k] - a[k]) / (100 * n) for k in b}
    print(f"{label} N={n}: Ir {d['Ir']:.0f}, D1 misses {d['D1mr'] + d['D1mw']:.1f}, "
          f"LL misses {d['DLmr'] + d['DLmw']:.1f} per delivery")
PY
