#!/usr/bin/env bash
# A bench-server with admin + metrics AND their consumers, for bench/scripts/instrumentation.sh:
#   instrumented-server.sh BENCH_SERVER VOLLEY_CLI [bench-server flags...]
# Becomes the server process itself (exec), so the harness measures its CPU and RSS as any
# other peer's. Before that it starts, pinned to core 1 (the generator's, not the server's),
# what a monitored server has in production: an admin UI client on /admin (the `volley` CLI
# listening there: it receives server_stats every 2 s, and in development mode every live
# event) and a Prometheus scrape of /metrics every second. Both stop when the server does.
set -euo pipefail
server="$1" cli="$2"
shift 2
port="${PORT:?PORT}"
pid=$$
(
  until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || exit 0
    sleep 0.05
  done
  taskset -c 1 "$cli" listen "http://127.0.0.1:$port" --ns /admin --transport websocket -q \
    >/dev/null 2>&1 &
  listener=$!
  while kill -0 "$pid" 2>/dev/null; do
    taskset -c 1 curl -sf "http://127.0.0.1:$port/metrics" -o /dev/null || true
    sleep 1
  done
  kill "$listener" 2>/dev/null || true
) </dev/null >/dev/null 2>&1 &
exec "$server" --metrics "$@"
