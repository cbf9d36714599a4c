#!/usr/bin/env bash
# Set up (virtualenv + package + plugins) and run the demo on embedded example data.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
exec "$ROOT/.venv/bin/ops-manager" demo --dir "$ROOT/examples/demo-fleet" "$@"
