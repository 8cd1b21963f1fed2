#!/usr/bin/env bash
# Runs the official protocol suites against a freshly built `conformance-server`.
#
#   scripts/conformance.sh
#
# 1. cargo build --release --bin conformance-server
# 2. starts it on a free loopback port: $PORT if set, else 3000 if free, else a random one
#    (another server may hold 3000 on a shared machine); waits for its "listening" line
# 3. Engine.IO v4 suite: $SHARED_DIR/conformance/run-eio-suite.sh (always)
# 4. Socket.IO v5 suite: run-sio-suite.sh, chosen by SIO:
#      SIO=1      always run it (a server that does not serve /socket.io/ fails it)
#      SIO=0      skip it
#      unset      run it when the server serves /socket.io/, i.e. when
#                 GET /socket.io/?EIO=4&transport=polling answers 200; skip it (and say so)
#                 otherwise (.ci/run sets SIO=1: there the suite is required).
# 5. stops the server; exits 1 if a suite failed (each suite's last line: "N passed, M failed")
#
# SHARED_DIR defaults to "$(git rev-parse --show-toplevel)/../shared" (CI clones main with
# shared/ beside it). The suites' own knobs (RETRIES, MOCHA_ARGS, HARNESS_CACHE, …) pass through.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
root="$(git -C "$root" rev-parse --show-toplevel 2>/dev/null || echo "$root")"
cd "$root"
shared="${SHARED_DIR:-$root/../shared}"
suites="$shared/conformance"
for s in run-eio-suite.sh run-sio-suite.sh; do
  [[ -f "$suites/$s" ]] || { echo "conformance: $suites/$s not found (set SHARED_DIR)" >&2; exit 2; }
done

cargo build --release --bin conformance-server
bin="${CARGO_TARGET_DIR:-$root/target}/release/conformance-server"
[[ -x "$bin" ]] || { echo "conformance: $bin not built" >&2; exit 2; }

log="$(mktemp /tmp/conformance-server.XXXXXX.log)"
server_pid=""
stop_server() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  server_pid=""
}
trap 'stop_server; rm -f "$log"' EXIT

port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Starts the server on $1; succeeds once it reports listening, fails if it exits (port taken).
start_server() {
  local port="$1"
  : >"$log"
  PORT="$port" "$bin" >"$log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 200); do # up to 20 s
    grep -q "listening on" "$log" && return 0
    kill -0 "$server_pid" 2>/dev/null || { wait "$server_pid" 2>/dev/null || true; server_pid=""; return 1; }
    sleep 0.1
  done
  echo "conformance: server did not report listening within 20 s:" >&2
  cat "$log" >&2
  stop_server
  return 1
}

if [[ -n "${PORT:-}" ]]; then
  candidates=("$PORT")
else
  candidates=(3000)
  for _ in 1 2 3 4 5 6 7 8; do candidates+=($((20000 + RANDOM % 40000))); done
fi
port=""
for p in "${candidates[@]}"; do
  port_taken "$p" && continue
  if start_server "$p"; then port="$p"; break; fi
done
if [[ -z "$port" ]]; then
  echo "conformance: could not start conformance-server on any of: ${candidates[*]}" >&2
  cat "$log" >&2
  exit 2
fi
url="http://127.0.0.1:$port"
echo "conformance: conformance-server (pid $server_pid) on $url"

status=0
echo "=== Engine.IO v4 suite"
"$suites/run-eio-suite.sh" "$url" || status=1

sio="${SIO:-}"
if [[ -z "$sio" ]]; then
  code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$url/socket.io/?EIO=4&transport=polling" || true)"
  if [[ "$code" == 200 ]]; then
    sio=1
  else
    sio=0
    echo "=== Socket.IO v5 suite: skipped (GET /socket.io/ answered ${code:-nothing}, not 200; SIO=1 forces it)"
  fi
fi
if [[ "$sio" == 1 ]]; then
  echo "=== Socket.IO v5 suite"
  "$suites/run-sio-suite.sh" "$url" || status=1
fi

kill -0 "$server_pid" 2>/dev/null || { echo "conformance: the server died during the run:" >&2; cat "$log" >&2; status=1; }
stop_server
if ((status)); then echo "conformance: a suite failed" >&2; fi
exit "$status"
