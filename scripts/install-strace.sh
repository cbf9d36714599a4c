#!/usr/bin/env bash
# Install Debian's strace when it is missing: the crash sweeps (tests/crash_sweep.py) kill a
# command at each of its fsyncs and renames with `strace -e inject=...:signal=KILL`. Without
# it those tests skip on a developer machine and fail under CI=true (tests/conftest.py).
set -euo pipefail
if command -v strace >/dev/null 2>&1; then
  exit 0
fi
fail() {
  echo "error: install-strace: $*" >&2
  exit 1
}
command -v apt-get >/dev/null 2>&1 || fail "strace is missing and apt-get is not available; install strace by hand"
SUDO=()
if [ "$(id -u)" != "0" ]; then
  command -v sudo >/dev/null 2>&1 || fail "strace is missing; run this script as root (apt-get install strace)"
  SUDO=(sudo -n)
fi
echo "install-strace: installing Debian package strace" >&2
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq || fail "apt-get update failed"
"${SUDO[@]}" apt-get install -y -qq strace >/dev/null || fail "apt-get install strace failed"
command -v strace >/dev/null 2>&1 || fail "strace installed but not on PATH"
