#!/usr/bin/env bash
# Set up (virtualenv + package + plugins + dev tools) and run every check: ruff, mypy
# (strict, ops_manager/), the core test suite and each plugin's own tests.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/bootstrap.sh"
# Debian chromium for the console's browser tests (installed once; skipped with
# OPS_MANAGER_SKIP_BROWSER_TESTS=1)
"$ROOT/scripts/install-browser.sh"
# Debian strace for the crash sweeps (kill at every fsync and rename of a pass)
"$ROOT/scripts/install-strace.sh"
cd "$ROOT"
V="$ROOT/.venv/bin"
# the schema memo (docs/performance.md) goes to a throw-away directory, not ~/.cache
export OPS_MANAGER_CACHE_DIR="${OPS_MANAGER_CACHE_DIR:-$(mktemp -d)}"
echo "== ruff"
"$V/ruff" check ops_manager tests bench plugins
echo "== mypy (strict)"
"$V/mypy"
echo "== pytest"
# exit code 5 (no tests collected) must fail, and does: we do not mask it
"$V/pytest" -q -p no:cacheprovider tests "$@"
for plugin in "$ROOT"/plugins/*/; do
  if [ -d "$plugin/tests" ]; then
    echo "== pytest $(basename "$plugin")"
    "$V/pytest" -q -p no:cacheprovider "$plugin/tests"
  fi
done
