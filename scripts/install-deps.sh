#!/usr/bin/env bash
# Makes sure the system tools that Volley's tests and CI use are installed.
#
#   scripts/install-deps.sh
#
# Needed: node (>= 18) and npm for the official JS clients in e2e/interop and the protocol
# suites; chromium (Debian's /usr/bin/chromium, for browser tests with playwright-core) and
# redis-server and redis-cli (for the Redis adapter e2e tests; redis-cli forms the Redis
# Clusters of the cluster tests); curl and flock for the scripts; python3 with
# pip, and the pinned python-socketio / aiohttp server volley-client's tests also run against
# (crates/client/tests/python/client_server.py).
# Whatever is missing is installed from Debian's packages (apt-get, quietly, no recommended
# packages) when running as root; otherwise the script names what is missing and exits 1.
# Idempotent: when everything is there it installs nothing and prints one line.
set -euo pipefail

# command -> Debian package
declare -A PKG=(
  [node]=nodejs
  [npm]=npm
  [chromium]=chromium
  [redis-server]=redis-server
  [redis-cli]=redis-tools
  [curl]=curl
  [flock]=util-linux
  [python3]=python3
)

missing_pkgs=()
missing_cmds=()
for cmd in node npm chromium redis-server redis-cli curl flock python3; do
  if ! command -v "$cmd" >/dev/null 2>&1; then
    missing_cmds+=("$cmd")
    missing_pkgs+=("${PKG[$cmd]}")
  fi
done

if ((${#missing_pkgs[@]})); then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "install-deps: installing ${missing_pkgs[*]} (missing: ${missing_cmds[*]})"
    # Headless Chromium needs at least one font to lay out text in screenshots.
    if [[ " ${missing_pkgs[*]} " == *" chromium "* ]]; then missing_pkgs+=(fonts-liberation); fi
    log="$(mktemp)"
    export DEBIAN_FRONTEND=noninteractive
    if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends \
      -o Dpkg::Use-Pty=0 "${missing_pkgs[@]}"; } >"$log" 2>&1; then
      cat "$log" >&2
      rm -f "$log"
      echo "install-deps: apt-get failed (output above)" >&2
      exit 1
    fi
    rm -f "$log"
  else
    echo "install-deps: missing ${missing_cmds[*]}." >&2
    echo "install-deps: install them, e.g. as root: apt-get install --no-install-recommends ${missing_pkgs[*]}" >&2
    exit 1
  fi
fi

node_major="$(node -p 'process.versions.node.split(".")[0]')"
if ((node_major < 18)); then
  echo "install-deps: Node.js >= 18 is needed (found $(node -v))" >&2
  exit 1
fi
# The Python server of volley-client's tests: pinned versions, installed with pip when a
# version differs (idempotent: nothing happens when they are there).
PY_PKGS=(python-socketio==5.18.1 python-engineio==4.15.1 aiohttp==3.14.5)
py_ok() {
  python3 - "${PY_PKGS[@]}" <<'PY' >/dev/null 2>&1
import sys
from importlib.metadata import version
sys.exit(0 if all(version(n) == v for n, v in (p.split("==") for p in sys.argv[1:])) else 1)
PY
}
if ! py_ok; then
  if ! python3 -m pip --version >/dev/null 2>&1; then
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-pip >/dev/null
    else
      echo "install-deps: pip is missing for python3 (e.g. apt-get install python3-pip)" >&2
      exit 1
    fi
  fi
  echo "install-deps: pip install ${PY_PKGS[*]}"
  pip_flags=(--quiet --disable-pip-version-check)
  pip_help="$(python3 -m pip install --help 2>/dev/null || true)"
  if grep -q -- --root-user-action <<<"$pip_help"; then pip_flags+=(--root-user-action=ignore); fi
  # Debian's python3 refuses system-wide installs (PEP 668) unless told otherwise.
  if grep -q -- --break-system-packages <<<"$pip_help"; then pip_flags+=(--break-system-packages); fi
  if ! python3 -m pip install "${pip_flags[@]}" "${PY_PKGS[@]}"; then
    echo "install-deps: pip install failed" >&2
    exit 1
  fi
  py_ok || { echo "install-deps: ${PY_PKGS[*]} still not importable by python3" >&2; exit 1; }
fi

echo "install-deps: node $(node -v), npm $(npm -v 2>/dev/null), $(chromium --version 2>/dev/null || echo 'chromium ?'), $(redis-server --version | cut -d' ' -f1-3), $(python3 --version), ${PY_PKGS[*]}"
