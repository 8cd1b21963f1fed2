#!/usr/bin/env bash
# Makes sure the system tools that Volley's tests and CI use are installed.
#
#   scripts/install-deps.sh
#
# Needed: node (>= 18) and npm for the official JS clients in e2e/interop and the protocol
# suites; chromium (Debian's /usr/bin/chromium, for browser tests with playwright-core) and
# redis-server (for the Redis adapter e2e tests); curl and flock for the scripts.
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
  [curl]=curl
  [flock]=util-linux
)

missing_pkgs=()
missing_cmds=()
for cmd in node npm chromium redis-server curl flock; do
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
echo "install-deps: node $(node -v), npm $(npm -v 2>/dev/null), $(chromium --version 2>/dev/null || echo 'chromium ?'), $(redis-server --version | cut -d' ' -f1-3)"
