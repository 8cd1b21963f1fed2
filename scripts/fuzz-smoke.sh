#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a few seconds each, starting from the seed corpora
# in fuzz/corpus/<target>/ (which are left untouched: new inputs go to a temporary directory).
#
# Usage: scripts/fuzz-smoke.sh [SECONDS_PER_TARGET] [TARGET...]
#   SECONDS_PER_TARGET defaults to 20; the targets default to all of them.
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). libFuzzer's sanitizer flags need a nightly
# compiler; on a stable toolchain the script sets RUSTC_BOOTSTRAP=1 so stable accepts them.
# Exits non-zero as soon as a target crashes (the input is kept in fuzz/artifacts/<target>/).
set -euo pipefail

cd "$(dirname "$0")/.."
seconds="${1:-20}"
shift || true
if ! [[ "$seconds" =~ ^[0-9]+$ ]]; then
    echo "usage: $0 [SECONDS_PER_TARGET] [TARGET...]" >&2
    exit 2
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "cargo-fuzz is not installed: cargo install cargo-fuzz" >&2
    exit 2
fi
if ! rustc --version | grep -q nightly; then
    export RUSTC_BOOTSTRAP=1
fi

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cargo fuzz build
status=0
summary=()
for target in "${targets[@]}"; do
    echo "== $target: ${seconds}s"
    mkdir -p "$work/$target" "fuzz/corpus/$target"
    log="$work/$target.log"
    if cargo fuzz run "$target" "$work/$target" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
        runs="$(grep -Eo 'Done [0-9]+ runs' "$log" | tail -1 | grep -Eo '[0-9]+' || echo '?')"
        summary+=("$target: ok, $runs runs in ${seconds}s")
    else
        grep -v '^#' "$log" | grep -E -A6 'panicked|ERROR: ' | head -40 || true
        grep -v '^#' "$log" | grep -A3 'Failing input' || tail -20 "$log"
        summary+=("$target: FAILED (see fuzz/artifacts/$target/)")
        status=1
        break
    fi
done

echo
printf '%s\n' "${summary[@]}"
exit "$status"
