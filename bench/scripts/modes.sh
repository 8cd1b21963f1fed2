#!/usr/bin/env bash
# Server emits with ack and long-polling echo: Volley against Node's socket.io and socketioxide,
# in one interleaved run (every repeat runs every peer, in rotated order).
#
#   bench/scripts/modes.sh                                  # REPEATS=3, every scenario, ~6 min
#   SCENARIOS="poll-c100 poll-c10" REPEATS=5 bench/scripts/modes.sh
#   PEERS="volley node" SCENARIOS="sack-c1 cack-c1" bench/scripts/modes.sh
#
# Scenarios (generator → what it measures):
#   cack-c1, cack-c1-p16   shared sio-loadgen `ack -c 1 --inflight 1|16`: the client emits with an
#                          ack, the server acks (the client-ack rate, for reference)
#   sack-c1, sack-c1-p16, sack-c1-p20k
#                          sio-modes server-ack --inflight 1|16|20000: the server emits with an
#                          ack on one socket, the next as soon as the ack is back (bench-server's
#                          and the peers' `serverack` handler); p20k: 20,000 acks pending at once
#   poll-c10, poll-c100    sio-modes polling-echo -c 10|100: echo over Engine.IO long-polling,
#                          one in flight per client
# Peers: volley (this repo's bench-server), node (bench/peers/node-modes.js on the shared
# harness's socket.io 4.8), socketioxide (bench/peers/socketioxide-modes.rs, built as a second
# binary of a copy of the shared harness's socketioxide peer, same Cargo.lock), and
# volley-before (the bench-server binary at $VOLLEY_BEFORE, e.g. built from an earlier commit:
# PEERS="volley volley-before" VOLLEY_BEFORE=/tmp/bench-server-old bench/scripts/modes.sh).
#
# Every run: a fresh server on a free loopback port pinned to core 0, the generator pinned to
# core 1 reading the server's CPU time from /proc. Results (one JSON line per run) go to OUT;
# at the end a table of medians (min-max) per peer and the medians of per-repeat ratios.
# Environment: REPEATS (3), DURATION (5), WARMUP (1), PEERS ("volley node socketioxide"),
# SCENARIOS (all), OUT, SHARED (the shared harness, default ../shared/bench or
# /work/shared/bench), WORK (its copy, default /tmp/bench-modes-work).
# Check first that nothing heavy runs (uptime: load < 1): the numbers are only worth the quiet
# of the host.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
if [ -z "${SHARED:-}" ]; then
  if [ -d "$ROOT/../shared/bench" ]; then SHARED="$ROOT/../shared/bench"; else SHARED=/work/shared/bench; fi
fi
WORK="${WORK:-/tmp/bench-modes-work}"
REPEATS="${REPEATS:-3}"
DURATION="${DURATION:-5}"
WARMUP="${WARMUP:-1}"
PEERS=(${PEERS:-volley node socketioxide})
SCENARIOS=(${SCENARIOS:-cack-c1 sack-c1 cack-c1-p16 sack-c1-p16 sack-c1-p20k poll-c10 poll-c100})
OUT="${OUT:-$ROOT/bench/results/modes-$(date -u +%Y%m%d-%H%M%S).jsonl}"
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release"
PT=/tmp/bench-cache/target/release   # the shared harness's build (its setup.sh)
export NODE_PATH="${NODE_PATH:-/tmp/bench-cache/node/node_modules}"

(cd "$ROOT" && cargo build --release -p volley-bench --bin bench-server --bin sio-modes)
[ -d "$NODE_PATH/socket.io" ] || (cd "$SHARED" && ./setup.sh)
# The shared generator, and the socketioxide peer with `serverack` as a second binary of a copy
# of the shared peer's package, built from a copy of the harness (shared/ is read-only).
rm -rf "$WORK"
cp -r "$SHARED" "$WORK"
chmod -R u+w "$WORK"
rm -f "$WORK/peers/node/node_modules"
cp "$ROOT/bench/peers/socketioxide-modes.rs" "$WORK/peers/socketioxide/src/modes.rs"
printf '\n[[bin]]\nname = "peer-socketioxide-modes"\npath = "src/modes.rs"\n' >>"$WORK/peers/socketioxide/Cargo.toml"
(cd "$WORK" && CARGO_TARGET_DIR=/tmp/bench-cache/target cargo build --release --locked \
  -p sio-loadgen -p peer-socketioxide --bin sio-loadgen --bin peer-socketioxide-modes)

cmd_for() {
  case "$1" in
    volley) echo "$BIN/bench-server" ;;
    node) echo "node $ROOT/bench/peers/node-modes.js" ;;
    socketioxide) echo "$PT/peer-socketioxide-modes" ;;
    volley-before) echo "${VOLLEY_BEFORE:?set VOLLEY_BEFORE to another bench-server binary}" ;;
    *) echo "unknown peer $1" >&2; return 1 ;;
  esac
}
gen_for() {
  local d="--duration $DURATION --warmup $WARMUP"
  case "$1" in
    cack-c1) echo "$PT/sio-loadgen ack -c 1 --inflight 1 $d" ;;
    cack-c1-p16) echo "$PT/sio-loadgen ack -c 1 --inflight 16 $d" ;;
    sack-c1) echo "$BIN/sio-modes server-ack -c 1 --inflight 1 $d" ;;
    sack-c1-p16) echo "$BIN/sio-modes server-ack -c 1 --inflight 16 $d" ;;
    sack-c1-p20k) echo "$BIN/sio-modes server-ack -c 1 --inflight 20000 $d" ;;
    poll-c10) echo "$BIN/sio-modes polling-echo -c 10 $d" ;;
    poll-c100) echo "$BIN/sio-modes polling-echo -c 100 $d" ;;
    *) echo "unknown scenario $1" >&2; return 1 ;;
  esac
}
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

mkdir -p "$(dirname "$OUT")"
echo "# $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg); results -> $OUT" >&2
SRV=""
trap '[ -n "$SRV" ] && kill "$SRV" 2>/dev/null || true' EXIT

# run_one REPEAT PEER SCENARIO: a fresh server, one generator run, the server stopped.
run_one() {
  local rep=$1 peer=$2 id=$3 port line load
  local -a cmd gen
  read -r -a cmd <<<"$(cmd_for "$peer")"
  read -r -a gen <<<"$(gen_for "$id")"
  port=$(free_port)
  PORT=$port taskset -c 0 "${cmd[@]}" 2>/dev/null &
  SRV=$!
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.05
  done
  load=$(cut -d' ' -f1 /proc/loadavg)
  line=$(taskset -c 1 "${gen[@]}" --port "$port" --pid "$SRV") || line=""
  kill "$SRV" 2>/dev/null || true
  wait "$SRV" 2>/dev/null || true
  SRV=""
  if [ -n "$line" ]; then
    echo "{\"peer\":\"$peer\",\"id\":\"$id\",\"rep\":$rep,\"loadavg\":$load,${line#\{}" >>"$OUT"
    echo "  rep $rep $peer $id: ok" >&2
  else
    echo "  rep $rep $peer $id: FAILED" >&2
  fi
}

n=${#PEERS[@]}
for ((r = 1; r <= REPEATS; r++)); do
  for ((k = 0; k < n; k++)); do
    p="${PEERS[$(((k + r - 1) % n))]}"
    for id in "${SCENARIOS[@]}"; do
      run_one "$r" "$p" "$id"
    done
  done
done

python3 "$ROOT/bench/scripts/modes_summary.py" "$OUT"
