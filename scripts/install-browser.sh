#!/usr/bin/env bash
# Install what the console's browser tests need, idempotently:
#   - Debian's Chromium (/usr/bin/chromium) when it is missing (apt-get; needs root);
#   - the Python package playwright in the project venv when it is missing. Its wheel
#     bundles the driver; it drives the system Chromium (we never run `playwright install`,
#     whose browser download cannot work on a machine without general internet access).
# Exits non-zero with a clear message when something cannot be installed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${OPS_MANAGER_VENV:-$ROOT/.venv}"
CHROMIUM="${OPS_MANAGER_CHROMIUM:-/usr/bin/chromium}"

if [ "${OPS_MANAGER_SKIP_BROWSER_TESTS:-}" = "1" ]; then
  echo "install-browser: OPS_MANAGER_SKIP_BROWSER_TESTS=1, nothing to install" >&2
  exit 0
fi

fail() {
  echo "error: install-browser: $*" >&2
  exit 1
}

if [ ! -x "$CHROMIUM" ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    fail "$CHROMIUM is missing and apt-get is not available; install Chromium by hand"
  fi
  SUDO=()
  if [ "$(id -u)" != "0" ]; then
    command -v sudo >/dev/null 2>&1 || fail "$CHROMIUM is missing; run this script as root (apt-get install chromium)"
    SUDO=(sudo -n)
  fi
  echo "install-browser: installing Debian package chromium" >&2
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -qq || fail "apt-get update failed"
  "${SUDO[@]}" apt-get install -y -qq chromium >/dev/null || fail "apt-get install chromium failed"
  [ -x "$CHROMIUM" ] || fail "chromium installed but $CHROMIUM is still missing"
fi

if [ ! -x "$VENV/bin/python" ]; then
  fail "no virtualenv at $VENV; run scripts/bootstrap.sh first"
fi
if ! "$VENV/bin/python" -c "import playwright.sync_api" >/dev/null 2>&1; then
  echo "install-browser: installing playwright into $VENV" >&2
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check playwright \
    || fail "pip install playwright failed"
  "$VENV/bin/python" -c "import playwright.sync_api" >/dev/null 2>&1 \
    || fail "playwright installed but cannot be imported"
fi
echo "install-browser: ok ($("$CHROMIUM" --version 2>/dev/null | head -n1 || echo chromium), playwright $("$VENV/bin/python" -c 'from importlib.metadata import version; print(version("playwright"))'))"
