#!/usr/bin/env bash
# What observing a server costs (issue 15): the shared load generator against bench-server
# plain, and with the admin UI's server side + Prometheus metrics, each with its consumers
# attached (an admin client on /admin, a scrape of /metrics every second: see
# instrumented-server.sh), in one interleaved run of the shared harness.
#
#   bench/scripts/instrumentation.sh                 # REPEATS=5
#   REPEATS=3 SCENARIOS="echo-c100" bench/scripts/instrumentation.sh
#
# Peers: volley (plain), volley-obs (metrics + admin in production mode, Node's recommended
# setting for production), volley-obs-dev (metrics + admin in development mode, Node's
# default: a live event to the admin client for every event in and out).
# Environment: SHARED, WORK (default /tmp/bench-instr), REPEATS (5), PEERS, SCENARIOS
# (default "echo-c100 echo-c100-p16 bcast-1k"), plus every knob of the harness.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
if [ -z "${SHARED:-}" ]; then
  if [ -d "$REPO/../shared/bench" ]; then SHARED="$REPO/../shared/bench"; else SHARED=/work/shared/bench; fi
fi
WORK="${WORK:-/tmp/bench-instr}"
export REPEATS="${REPEATS:-5}"
export PEERS="${PEERS:-volley volley-obs volley-obs-dev}"
export SCENARIOS="${SCENARIOS:-echo-c100 echo-c100-p16 bcast-1k}"
TARGET="${CARGO_TARGET_DIR:-$REPO/target}/release"

(cd "$REPO" && cargo build --release -p volley-bench --bin bench-server && cargo build --release -p volley-cli --bin volley)
[ -x /tmp/bench-cache/target/release/sio-loadgen ] || (cd "$SHARED" && ./setup.sh)

rm -rf "$WORK"
cp -r "$SHARED" "$WORK"
chmod -R u+w "$WORK"
mkdir -p "$WORK/bin" "$WORK/results"
cp "$TARGET/bench-server" "$TARGET/volley" "$REPO/bench/scripts/instrumented-server.sh" "$WORK/bin/"
python3 - "$WORK/bench-all.sh" <<'PY'
import sys
p = sys.argv[1]
s = open(p).read()
peer = '    volley)      echo "${VOLLEY_BIN:?set VOLLEY_BIN to the candidate server binary}" ;;'
assert peer in s, "bench-all.sh changed: add the peers by hand"
w = '$HERE/bin/instrumented-server.sh $HERE/bin/bench-server $HERE/bin/volley'
s = s.replace(peer, peer + f'\n    volley-obs) echo "{w} --admin" ;;\n    volley-obs-dev) echo "{w} --admin-dev" ;;')
open(p, "w").write(s)
PY

OUT="$WORK/results/instrumentation-$(date -u +%Y%m%d-%H%M%S).jsonl"
echo "# load before the run: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
(cd "$WORK" && VOLLEY_BIN="$WORK/bin/bench-server" OUT="$OUT" ./bench-all.sh >/dev/null)
mkdir -p "$REPO/bench/results"
cp "$OUT" "$REPO/bench/results/turn4-$(basename "$OUT")"
python3 "$WORK/summarize.py" "$OUT" --ratio volley-obs/volley --ratio volley-obs-dev/volley
