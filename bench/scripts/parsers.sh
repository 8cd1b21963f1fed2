#!/usr/bin/env bash
# Echo throughput and bytes per message, JSON parser vs MessagePack parser.
#
# Builds volley-bench in release, then runs REPEATS (default 3) interleaved repeats of
#   bench-server          + echo-parsers --parser json
#   bench-server --msgpack + echo-parsers --parser msgpack
# (the order alternates between repeats so host drift hits both alike). Every server starts
# fresh on a free loopback port, pinned to core 0; the generator is pinned to core 1 and reads
# the server's CPU time from /proc (100 ticks/s assumed). Each generator JSON line, tagged with
# its repeat, is appended to OUT; at the end a table of medians (min-max) per parser and the
# median of the per-repeat msgpack/json ratios is printed.
#
#   bench/scripts/parsers.sh                        # ~3 x 2 x (1 s warmup + 5 s) + build
#   REPEATS=5 CLIENTS=100 DURATION=10 SIZE=1024 OUT=/tmp/p.jsonl bench/scripts/parsers.sh
#
# Check first that nothing heavy runs (uptime: load < 1): the numbers are only worth the quiet
# of the host.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
REPEATS="${REPEATS:-3}"
CLIENTS="${CLIENTS:-100}"
DURATION="${DURATION:-5}"
WARMUP="${WARMUP:-1}"
SIZE="${SIZE:-32}"
OUT="${OUT:-$ROOT/bench/results/parsers-$(date -u +%Y%m%d-%H%M).jsonl}"
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release"

(cd "$ROOT" && cargo build --release -p volley-bench)
mkdir -p "$(dirname "$OUT")"
echo "# load before the run: $(cut -d' ' -f1-3 /proc/loadavg); results -> $OUT" >&2

SRV=""
trap '[ -n "$SRV" ] && kill "$SRV" 2>/dev/null || true' EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# run_one REPEAT PARSER: a fresh server, one generator run, the server stopped.
run_one() {
  local repeat=$1 parser=$2 port flag=""
  [ "$parser" = msgpack ] && flag=--msgpack
  port=$(free_port)
  PORT=$port taskset -c 0 "$BIN/bench-server" $flag 2>/dev/null &
  SRV=$!
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.05
  done
  local line
  line=$(taskset -c 1 "$BIN/echo-parsers" --port "$port" --parser "$parser" -c "$CLIENTS" \
    --duration "$DURATION" --warmup "$WARMUP" --size "$SIZE" --pid "$SRV")
  kill "$SRV"
  wait "$SRV" 2>/dev/null || true
  SRV=""
  echo "{\"repeat\":$repeat,${line#\{}" | tee -a "$OUT"
}

for r in $(seq "$REPEATS"); do
  if [ $((r % 2)) -eq 1 ]; then order="json msgpack"; else order="msgpack json"; fi
  for parser in $order; do
    run_one "$r" "$parser"
  done
done

python3 - "$OUT" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
metrics = ["msgs_per_s", "p50_us", "p99_us", "srv_cpu_us_per_msg", "srv_cpu_pct", "req_bytes", "reply_bytes"]
by = {p: [r for r in rows if r["parser"] == p] for p in ("json", "msgpack")}
def fmt(x):
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.3g}"
def cell(rs, m):
    v = [r[m] for r in rs if m in r]
    return f"{fmt(statistics.median(v))} ({fmt(min(v))}-{fmt(max(v))}) n={len(v)}" if v else "-"
def ratio(m):
    j = {r["repeat"]: r[m] for r in by["json"] if m in r}
    k = {r["repeat"]: r[m] for r in by["msgpack"] if m in r}
    v = [k[i] / j[i] for i in j if i in k and j[i]]
    return f"{statistics.median(v):.3f}" if v else "-"
print("| metric | json (median, min-max) | msgpack (median, min-max) | msgpack/json |")
print("|---|---|---|---|")
for m in metrics:
    print(f"| {m} | {cell(by['json'], m)} | {cell(by['msgpack'], m)} | {ratio(m)} |")
EOF
