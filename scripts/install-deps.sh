#!/usr/bin/env bash
# Installs what building xi-gateway needs on Debian or Ubuntu, only when it is missing:
# libcurl's, hiredis's and zlib's headers (libcurl4-openssl-dev, libhiredis-dev, zlib1g-dev) and pkg-config, which SwiftPM uses
# to find them, redis-server, which the shared tier's tests start on a Unix socket of their own, chromium, which
# loads the status page headless in its test, prometheus for promtool, which checks deploy/'s rules (its
# service is not started by the tests), and python3 with venv, for the official SDK (below).
# With --bench: also wrk, nginx, HAProxy and Varnish for the benchmark.
set -euo pipefail

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

missing=()
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
installed libcurl4-openssl-dev || missing+=(libcurl4-openssl-dev)
installed libhiredis-dev || missing+=(libhiredis-dev)
installed zlib1g-dev || missing+=(zlib1g-dev)
command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || missing+=(redis-server)
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || missing+=(chromium)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
if [ "${1:-}" = "--bench" ]; then
    command -v wrk >/dev/null 2>&1 || missing+=(wrk)
    command -v nginx >/dev/null 2>&1 || missing+=(nginx-light)
    command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
    command -v varnishd >/dev/null 2>&1 || missing+=(varnish)
fi
command -v python3 >/dev/null 2>&1 || missing+=(python3)
python3 -c "import venv, ensurepip" >/dev/null 2>&1 || missing+=(python3-venv)

# The official Python SDK (elevenlabs, over httpx, which asks for gzip), pinned, in a virtual environment of
# the checkout's own: the test that reads pages through the gateway with it runs it from there.
sdk_env="$(cd "$(dirname "$0")/.." && pwd)/.build/python-sdk"
sdk() {
    "$sdk_env/bin/python" -c "import elevenlabs, httpx" >/dev/null 2>&1 && return 0
    python3 -m venv "$sdk_env"
    "$sdk_env/bin/python" -m pip install --quiet --disable-pip-version-check elevenlabs==2.78.0
}

if [ ${#missing[@]} -eq 0 ]; then
    sdk
    exit 0
fi

echo "installing: ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
    sudo=()
elif command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
else
    echo "missing packages (${missing[*]}) and not root: install them and run again" >&2
    exit 1
fi
"${sudo[@]}" apt-get update
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y "${missing[@]}"
sdk
