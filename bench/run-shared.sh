#!/usr/bin/env bash
# Runs the shared load generator (shared/bench) against Volley and the three peers, in one
# interleaved run, as BENCHMARKS.md describes.
#
#   bench/run-shared.sh                 # REPEATS=5, all peers, Volley with both handler kinds
#   REPEATS=3 bench/run-shared.sh
#   PEERS="socketioxide raw-ws volley" REPEATS=3 bench/run-shared.sh
#
# Environment: SHARED (default: ../shared/bench next to the repo, else /work/shared/bench),
# WORK (default /tmp/bench-work: shared/ is read-only, so the run happens in a copy),
# REPEATS (5), PEERS ("node socketioxide raw-ws volley volley-raw"), plus every knob of the
# harness (DURATION, WARMUP, HOLD, SCENARIOS, ...).
#
# The copy gets one more peer, `volley-raw` (`bench-server --raw`, RawArgs handlers), run on
# SCENARIOS_VRAW (default: echo-c100 echo-c100-p16 ack-c100 ack-c100-p16 bcast-10k).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -z "${SHARED:-}" ]; then
  if [ -d "$REPO/../shared/bench" ]; then SHARED="$REPO/../shared/bench"; else SHARED=/work/shared/bench; fi
fi
WORK="${WORK:-/tmp/bench-work}"
export REPEATS="${REPEATS:-5}"
export PEERS="${PEERS:-node socketioxide raw-ws volley volley-raw}"

(cd "$REPO" && cargo build --release --bin bench-server)
[ -x /tmp/bench-cache/target/release/sio-loadgen ] || (cd "$SHARED" && ./setup.sh)

rm -rf "$WORK"
cp -r "$SHARED" "$WORK"
chmod -R u+w "$WORK"
mkdir -p "$WORK/bin" "$WORK/results"
cp "$REPO/target/release/bench-server" "$WORK/bin/bench-server"
python3 - "$WORK/bench-all.sh" <<'PY'
import sys
p = sys.argv[1]
s = open(p).read()
peer = '    volley)      echo "${VOLLEY_BIN:?set VOLLEY_BIN to the candidate server binary}" ;;'
if "volley-raw)" not in s:
    assert peer in s, "bench-all.sh changed: add the volley-raw peer by hand"
    s = s.replace(peer, peer + '\n    volley-raw)  echo "${VOLLEY_BIN:?set VOLLEY_BIN to the candidate server binary} --raw" ;;')
    raw = '    if [ "$p" = raw-ws ]; then'
    s = s.replace(raw, '''    if [ "$p" = volley-raw ]; then
      NAME="$p" REP="$r" REPEATS=1 SCENARIOS="${SCENARIOS_VRAW:-echo-c100 echo-c100-p16 ack-c100 ack-c100-p16 bcast-10k}" "$HERE/run.sh" "${CMD[@]}"
    el''' + raw.lstrip())
open(p, "w").write(s)
PY

OUT="$WORK/results/run-$(date -u +%Y%m%d-%H%M%S).jsonl"
echo "# load before the run: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
(cd "$WORK" && VOLLEY_BIN="$WORK/bin/bench-server" OUT="$OUT" ./bench-all.sh >/dev/null)
python3 "$WORK/summarize.py" "$OUT" --ratio volley/raw-ws --ratio volley/socketioxide \
  --ratio volley/node --ratio volley-raw/volley
echo
python3 "$REPO/bench/targets.py" "$OUT"
echo
echo "results: $OUT" >&2
