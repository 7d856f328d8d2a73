#!/usr/bin/env bash
# One entry point for a fresh machine: creates .venv, installs, builds, runs.
#   ./dev.sh demo    the venue demo as real processes (python -m demo; anvil from npm when npm exists)
#   ./dev.sh test    install the test dependencies and run the whole suite
#   ./dev.sh bench   the benchmark suite (python -m bench core)
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}
VENV=.venv

setup() {
    if [ ! -x "$VENV/bin/python" ]; then
        "$PYTHON" -m venv "$VENV"
    fi
    "$VENV/bin/python" -m pip install -q --upgrade pip
    # Build requirements first, then the project without build isolation so the
    # Cython extensions build in place against the venv's numpy.
    "$VENV/bin/python" -m pip install -q "setuptools>=69" wheel "cython>=3.0.10,<4" "numpy>=2.0"
    "$VENV/bin/python" -m pip install -q --no-build-isolation -e ".$1"
}

# solc-js, OpenZeppelin and anvil from package-lock.json (the settlement tests, benchmarks and
# the demo's chain), reinstalled only when the lock file changes.
npm_tools() {
    if command -v npm >/dev/null; then
        lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
        if [ "$(cat node_modules/.lock-sha256 2>/dev/null)" != "$lock_sum" ]; then
            npm ci --no-audit --no-fund --loglevel=error
            echo "$lock_sum" > node_modules/.lock-sha256
        fi
    else
        echo "dev.sh: npm not found; $1" >&2
    fi
}

# The web view's browser test drives Debian's Chromium through Playwright (never
# `playwright install`: no download outside the package registries). Installed
# when missing and the machine can (root with apt-get); otherwise that test skips.
install_chromium() {
    if [ -x /usr/bin/chromium ]; then
        return
    fi
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "dev.sh: installing chromium for the web view's browser test" >&2
        if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq \
               && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; } \
               >/dev/null 2>&1; then
            echo "dev.sh: could not install chromium; the browser test will be skipped" >&2
        fi
    else
        echo "dev.sh: /usr/bin/chromium missing (needs root and apt-get); the browser test will be skipped" >&2
    fi
}

case "${1:-}" in
    demo)
        setup ""
        npm_tools "the demo settles on the embedded in-process chain instead of anvil"
        shift
        exec "$VENV/bin/python" -m demo "$@"
        ;;
    test)
        setup "[test]"
        npm_tools "settlement compile/anvil tests will be skipped"
        install_chromium
        shift
        exec "$VENV/bin/python" -m pytest "$@"
        ;;
    bench)
        setup "[test]"
        npm_tools "settlement compile/anvil tests will be skipped"
        shift
        exec "$VENV/bin/python" -m bench "${@:-core}"
        ;;
    *)
        echo "usage: ./dev.sh demo | test [pytest args] | bench [suite args]" >&2
        exit 2
        ;;
esac
