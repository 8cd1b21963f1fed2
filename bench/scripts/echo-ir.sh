#!/usr/bin/env bash
# User-space instructions (and allocations) per echo, counted with callgrind: what BENCHMARKS.md
# "Round 5" reports. Instruction counts do not depend on the host's load, so this works on a
# busy machine where wall-clock numbers do not.
#
#   bench/scripts/echo-ir.sh                       # builds bench-server with line tables
#   BIN=/path/to/bench-server bench/scripts/echo-ir.sh [server args, e.g. --raw]
#
# For 1 and 16 messages in flight it runs the server under callgrind (pinned to core 0, so the
# multi-thread runtime has one worker, as in the shared harness) and the shared load generator
# (`sio-loadgen echo -c 100`, core 1) twice, for 2,000 and 22,000 echoes; the difference ÷
# 20,000 cancels connecting, starting and stopping. Needs valgrind and the shared harness's
# sio-loadgen (LOADGEN, default /tmp/bench-cache/target/release/sio-loadgen; shared/bench's
# setup.sh builds it). Output files stay in OUT (default a fresh /tmp directory): open them with
# callgrind_annotate.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
LOADGEN="${LOADGEN:-/tmp/bench-cache/target/release/sio-loadgen}"
OUT="${OUT:-$(mktemp -d /tmp/echo-ir.XXXXXX)}"
mkdir -p "$OUT"
[ -x "$LOADGEN" ] || { echo "echo-ir: $LOADGEN not found (run shared/bench/setup.sh)" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "echo-ir: valgrind not installed" >&2; exit 2; }
if [ -z "${BIN:-}" ]; then
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target/prof}"
  (cd "$root" && CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
    cargo build --release -p volley-bench --bin bench-server)
  BIN="$CARGO_TARGET_DIR/release/bench-server"
fi

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

# run NAME INFLIGHT MESSAGES: one server under callgrind, one generator run.
run() {
  local name=$1 inflight=$2 msgs=$3 port pid
  port=$(free_port)
  PORT=$port taskset -c 0 valgrind --tool=callgrind --callgrind-out-file="$OUT/$name.cg" \
    "$BIN" "${SERVER_ARGS[@]}" >"$OUT/$name.srv.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 600); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    sleep 0.1
  done
  taskset -c 1 "$LOADGEN" echo --port "$port" -c 100 --inflight "$inflight" --max-msgs "$msgs" \
    --warmup 0 --duration "${DURATION:-12}" --timeout 60 >"$OUT/$name.gen.json" 2>"$OUT/$name.gen.err"
  kill -TERM "$pid"
  wait "$pid" || true
  grep -q "\"measured\":$msgs,\"errors\":0" "$OUT/$name.gen.json" \
    || { echo "echo-ir: $name did not echo $msgs messages cleanly: $(cat "$OUT/$name.gen.json")" >&2; exit 1; }
}

total() { grep -h '^totals' "$1" | awk '{print $2}'; }
allocs() {
  callgrind_annotate --tree=caller --auto=no --threshold=100 "$1" 2>/dev/null |
    awk '/\*  \?\?\?:__rustc::__rust_alloc /{exit} {print}' | tac | awk '/^$/{exit} {print}' |
    grep -o '([0-9,]*x)' | tr -d '(),x' | paste -sd+ | bc
}

SERVER_ARGS=("$@")
for inflight in 1 16; do
  run "p$inflight-2000" "$inflight" 2000
  run "p$inflight-22000" "$inflight" 22000
  a="$OUT/p$inflight-2000.cg"
  b="$OUT/p$inflight-22000.cg"
  echo "$inflight in flight: $(( ($(total "$b") - $(total "$a")) / 20000 )) Ir/msg," \
    "$(echo "scale=2; ($(allocs "$b") - $(allocs "$a")) / 20000" | bc) allocations/msg"
done
echo "callgrind files: $OUT" >&2
