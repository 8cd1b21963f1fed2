#!/usr/bin/env bash
# Server memory when 10,000 sockets with connection state recovery drop at once, and after
# the recovery window: does the session store stay bounded?
#
#   bench/scripts/recovery-rss.sh [BENCH_SERVER] [WINDOW_WAIT_SECONDS]
#
# Starts bench-server --recovery (2-minute window, Node's default) on 127.0.0.1:$PORT, then
# twice: 10,000 clients connect (shared harness load generator), hold 3 s, and all drop at
# once; RSS is read before, while connected, right after the drop (10,000 sessions kept),
# and after the window has passed and one more client has connected (the store is swept
# when it is touched). A second cycle that ends where the first did shows memory is reused,
# not grown. Loopback only; bounded in count and time.
set -euo pipefail
BIN="${1:-target/release/bench-server}"
WAIT="${2:-125}"
PORT="${PORT:-3210}"
LOADGEN="${LOADGEN:-/tmp/bench-cache/target/release/sio-loadgen}"
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
PORT=$PORT "$BIN" --recovery >/dev/null 2>&1 &
srv=$!
trap 'kill $srv 2>/dev/null || true' EXIT
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
echo "start: $(rss $srv) KiB"
for cycle in 1 2; do
  "$LOADGEN" connect -n 10000 --concurrency 64 --hold 3 --port "$PORT" --pid "$srv" --label rss >/tmp/recovery-rss-connect.json &
  lg=$!
  # Read RSS while all 10,000 are connected (the generator holds them 3 s).
  for _ in $(seq 600); do
    n=$(ls /proc/$srv/fd | wc -l); [ "$n" -ge 10000 ] && break; sleep 0.1
  done
  echo "cycle $cycle connected (fds $(ls /proc/$srv/fd | wc -l)): $(rss $srv) KiB"
  wait $lg
  sleep 1
  echo "cycle $cycle all dropped, sessions kept: $(rss $srv) KiB"
  sleep "$WAIT"
  "$LOADGEN" connect -n 1 --hold 0 --port "$PORT" --label touch >/dev/null
  echo "cycle $cycle after the window (+1 client): $(rss $srv) KiB"
done
