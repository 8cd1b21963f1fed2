#!/usr/bin/env bash
# 95,000 clients over 5 nodes on one Redis: Volley (bench-server --redis, sharded adapter)
# against socket.io on Node (@socket.io/redis-adapter's createShardedAdapter), one broadcast
# to every client of every node at a time (issue 16, "Scale past one process").
#
# For every repeat and peer: a fresh redis-server on a free loopback port, NODES nodes on
# NODES free ports (the port is checked open, then Redis must count NODES subscribers to the
# namespace's channel), then `cluster-fanout run` (one receiver process of PER_NODE clients
# per node, one sender on the first node; see bench/src/bin/cluster-fanout/main.rs), then
# everything is stopped. Peers alternate order between repeats. Each result line, tagged
# with repeat, peer and adapter mode, is appended to OUT; a table of medians (min-max) and
# of the median per-repeat volley/node ratios is printed at the end (cluster-table.py, which
# also pools several run files).
#
#   bench/scripts/cluster-95k.sh                          # 5 x 19,000, REPEATS=2, ~10 min
#   NODES=2 PER_NODE=500 REPEATS=1 DURATION=2 bench/scripts/cluster-95k.sh   # smoke size
#
# Knobs: NODES (5), PER_NODE (19000; at most 19,500: one process holds 20,000 descriptors),
# REPEATS (2), PEERS ("volley node"), MODE (sharded | classic), WINDOW (1 broadcast
# outstanding), WARMUP (2 s), DURATION (10 s), SIZE (32-byte payload), TIMEOUT (per wait for
# progress, 30 s), PIN (1 on a host with >= 2 cores: nodes on core 0, Redis and the generator
# on core 1; 0 leaves placement to the OS), OUT (JSON lines), NO_BUILD=1 with BENCH_SERVER
# and CLUSTER_FANOUT naming the binaries (the smoke test passes its own).
#
# Check first that nothing heavy runs (uptime): the numbers are only worth the quiet of the
# host. Memory: about 0.35 GiB per 19,000 clients for each node and each receiver process.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
NODES="${NODES:-5}"
PER_NODE="${PER_NODE:-19000}"
REPEATS="${REPEATS:-2}"
PEERS="${PEERS:-volley node}"
MODE="${MODE:-sharded}"
WINDOW="${WINDOW:-1}"
WARMUP="${WARMUP:-2}"
DURATION="${DURATION:-10}"
SIZE="${SIZE:-32}"
TIMEOUT="${TIMEOUT:-30}"
if [ -z "${PIN:-}" ]; then
  if [ "$(nproc)" -ge 2 ]; then PIN=1; else PIN=0; fi
fi
OUT="${OUT:-$ROOT/bench/results/turn4-cluster-$(date -u +%Y%m%d-%H%M%S).jsonl}"
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release"
BENCH_SERVER="${BENCH_SERVER:-$BIN/bench-server}"
CLUSTER_FANOUT="${CLUSTER_FANOUT:-$BIN/cluster-fanout}"
NODE_SCRIPT="$ROOT/e2e/interop/scripts/bench-cluster-node.mjs"

case "$MODE" in sharded | classic) ;; *) echo "MODE must be sharded or classic" >&2; exit 2 ;; esac
for tool in redis-server redis-cli node python3; do
  command -v "$tool" >/dev/null || { echo "cluster-95k.sh: $tool not found (scripts/install-deps.sh)" >&2; exit 1; }
done
if [ "${NO_BUILD:-0}" != 1 ]; then
  (cd "$ROOT" && cargo build --release -p volley-bench --bin bench-server --bin cluster-fanout)
fi
if [[ " $PEERS " == *" node "* && ! -d "$ROOT/e2e/interop/node_modules/@socket.io/redis-adapter" ]]; then
  echo "cluster-95k.sh: run 'npm ci' in e2e/interop first" >&2
  exit 1
fi
mkdir -p "$(dirname "$OUT")"
TMP="$(mktemp -d)"
PIDS=()
stop_all() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  PIDS=()
}
trap 'stop_all; rm -rf "$TMP"' EXIT
echo "# $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg), $(free -g | awk '/^Mem/ {print $7}') GiB available;" \
  "$NODES x $PER_NODE clients, $MODE adapter, PIN=$PIN; results -> $OUT" >&2

# Prefixes of the commands, so that `$!` is the process itself (taskset execs it).
SRV_PIN=() GEN_PIN=()
if [ "$PIN" = 1 ]; then SRV_PIN=(taskset -c 0) GEN_PIN=(taskset -c 1); fi

free_ports() { # N distinct free loopback ports, one a line
  python3 - "$1" <<'PY'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print("\n".join(str(s.getsockname()[1]) for s in socks))
PY
}

# wait_for DESCRIPTION SECONDS COMMAND…: polls COMMAND every 0.1 s until it succeeds.
wait_for() {
  local what=$1 limit=$2 i
  shift 2
  for ((i = 0; i < limit * 10; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "cluster-95k.sh: $what not ready within ${limit}s" >&2
  return 1
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# Redis counts one subscriber per node: the sharded adapters SSUBSCRIBE the namespace's
# channel, the classic ones SUBSCRIBE its request channel.
subscribed() {
  local n
  if [ "$MODE" = sharded ]; then
    n=$(redis-cli -p "$1" PUBSUB SHARDNUMSUB 'socket.io#/#' | sed -n 2p)
  else
    n=$(redis-cli -p "$1" PUBSUB NUMSUB 'socket.io-request#/#' | sed -n 2p)
  fi
  [ "${n:-0}" -ge "$NODES" ]
}

# run_one REPEAT PEER: Redis, NODES nodes, the generator, then everything stopped.
run_one() {
  local repeat=$1 peer=$2 rport redis_pid ports port server_pids="" line status=0
  rport=$(free_ports 1)
  "${GEN_PIN[@]}" redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no \
    --logfile "$TMP/redis.log" &
  redis_pid=$!
  PIDS+=("$redis_pid")
  wait_for "redis-server" 10 redis-cli -p "$rport" ping
  mapfile -t ports < <(free_ports "$NODES")
  for port in "${ports[@]}"; do
    if [ "$peer" = volley ]; then
      PORT=$port "${SRV_PIN[@]}" "$BENCH_SERVER" --redis "redis://127.0.0.1:$rport" "--$MODE" \
        2>>"$TMP/nodes.log" &
    else
      PORT=$port REDIS_URL="redis://127.0.0.1:$rport" REDIS_ADAPTER=$MODE \
        "${SRV_PIN[@]}" node "$NODE_SCRIPT" >/dev/null 2>>"$TMP/nodes.log" &
    fi
    PIDS+=("$!")
    server_pids+="${server_pids:+,}$!"
  done
  for port in "${ports[@]}"; do
    wait_for "$peer node on port $port" 60 port_open "$port"
  done
  wait_for "$NODES subscriptions of the $peer nodes" 60 subscribed "$rport"
  line=$("${GEN_PIN[@]}" "$CLUSTER_FANOUT" run --ports "$(IFS=,; echo "${ports[*]}")" \
    --per-node "$PER_NODE" --window "$WINDOW" --warmup "$WARMUP" --duration "$DURATION" \
    --size "$SIZE" --timeout "$TIMEOUT" --pids "$server_pids" --redis-pid "$redis_pid" \
    --label "$peer") || status=$?
  stop_all
  echo "{\"repeat\":$repeat,\"peer\":\"$peer\",\"mode\":\"$MODE\",${line#\{}" | tee -a "$OUT"
  if [ "$status" != 0 ]; then
    echo "cluster-95k.sh: the $peer run failed (status $status); node logs:" >&2
    tail -20 "$TMP/nodes.log" >&2
    exit 1
  fi
}

read -r -a peers <<<"$PEERS"
for r in $(seq "$REPEATS"); do
  order=("${peers[@]}")
  if [ $((r % 2)) -eq 0 ]; then
    order=()
    for ((i = ${#peers[@]} - 1; i >= 0; i--)); do order+=("${peers[i]}"); done
  fi
  for peer in "${order[@]}"; do
    run_one "$r" "$peer"
  done
done

python3 "$ROOT/bench/scripts/cluster-table.py" "$OUT"
