#!/usr/bin/env bash
# Create .venv (if needed) and install ops-manager, its plugins and the dev tools into it.
# Idempotent: re-running only reinstalls when pyproject files changed.
set -euo pipefail
trap 'echo "error: bootstrap failed (scripts/bootstrap.sh line $LINENO)" >&2' ERR
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${OPS_MANAGER_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
STAMP="$VENV/.ops-manager-installed"
WANT="$( { cat "$ROOT/pyproject.toml"; for f in "$ROOT"/plugins/*/pyproject.toml; do [ -f "$f" ] && cat "$f"; done; true; } | sha256sum | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  PLUGINS=()
  for p in "$ROOT"/plugins/*/; do
    [ -f "$p/pyproject.toml" ] && PLUGINS+=(-e "$p")
  done
  LOG="$VENV/pip-install.log"
  if ! "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
      -e "$ROOT[dev]" ${PLUGINS[@]+"${PLUGINS[@]}"} >"$LOG" 2>&1; then
    cat "$LOG" >&2
    echo "error: installing ops-manager into $VENV failed (log above)" >&2
    exit 1
  fi
  echo "$WANT" > "$STAMP"
fi
