#!/usr/bin/env bash
# Runs Volley's tests: `cargo test --workspace` with its prerequisites in place.
#
#   scripts/test.sh [cargo test args…]      e.g. scripts/test.sh -p volley-e2e -- --nocapture
#
# Steps: 1. system tools (node, npm, chromium, redis-server: scripts/install-deps.sh installs
# what is missing when run as root, otherwise names it and fails); 2. the npm packages of
# e2e/interop (the official socket.io-client / engine.io-client), with `npm ci` when
# node_modules is missing or older than package.json / package-lock.json, under the same
# lock file as volley-test-support; 3. `cargo test --workspace "$@"`.
# Exit status: non-zero when any step or any test fails.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

scripts/install-deps.sh

interop=e2e/interop
marker="$interop/node_modules/.package-lock.json" # npm rewrites it on every install
stale() {
  [[ ! -f "$marker" || "$interop/package-lock.json" -nt "$marker" || "$interop/package.json" -nt "$marker" ]]
}
if stale; then
  exec 9>"$interop/.npm-install.lock"
  flock 9
  if stale; then # another process may have installed while this one waited
    echo "test.sh: npm ci in $interop"
    (cd "$interop" && npm ci --no-audit --no-fund --loglevel=error)
  fi
  exec 9>&-
fi

exec cargo test --workspace "$@"
