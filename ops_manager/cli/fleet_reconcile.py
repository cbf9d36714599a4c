"""``ops-manager fleet-reconcile``: reconcile every registry loop concurrently (fleet.md §2.2)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ops_manager._jsonfmt import dumps
from ops_manager.cli._parser import CommandParser, nonneg_int, positive_int, require
from ops_manager.cli._progress import ProgressLine, progress_line

__all__ = ["HELP", "ProgressLine", "configure", "progress_line", "run"]

HELP = """Reconcile every loop of the fleet registry in this process, at most --max-parallel at
a time (local and sprite_service loops mixed), then write the fleet state.json (== stdout)
and append one row to telemetry/reconcile.jsonl. Results come back in launch order: registry
order, or sorted by loopId with --deterministic-order; never in completion order. Exit 0
whenever the fleet was aggregated, failed loops included. On a terminal, progress is shown
on stderr (--quiet turns it off); stdout is only the JSON."""


def configure(p: CommandParser) -> None:
    """Declare the flags of ``fleet.md`` §2.2 (plus ``--quiet``)."""
    p.add_argument("--repo", metavar="PATH", help="target repo (required)")
    p.add_argument(
        "--registry-file",
        metavar="PATH",
        help="default <repo>/.superloop/ops-manager/fleet/registry.v1.json",
    )
    p.add_argument(
        "--fleet-state-file",
        metavar="PATH",
        help="default <repo>/.superloop/ops-manager/fleet/state.json",
    )
    p.add_argument(
        "--fleet-telemetry-file",
        metavar="PATH",
        help="default <repo>/.superloop/ops-manager/fleet/telemetry/reconcile.jsonl",
    )
    p.add_argument("--max-parallel", metavar="N", help="loops reconciled at once, >= 1 (default 2)")
    p.add_argument(
        "--deterministic-order",
        action="store_true",
        help="launch (and report) loops sorted by loopId instead of registry order",
    )
    p.add_argument(
        "--max-events", metavar="N", help="cap on events ingested per loop (passed through)"
    )
    p.add_argument("--from-start", action="store_true", help="replay every loop's log (passed)")
    p.add_argument(
        "--trace-id", metavar="ID", help="fleet trace id (else $OPS_MANAGER_TRACE_ID, else uuid4)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress line on stderr")
    p.add_argument("--pretty", action="store_true", help="pretty-print stdout (files stay compact)")


def run(args: argparse.Namespace) -> int:
    """Validate flags in the contract's order, fan out, print the fleet state."""
    from ops_manager.engine.fleet_reconcile import FleetReconcileSettings, fleet_reconcile
    from ops_manager.engine.paths import resolve_repo

    repo_arg = require(args.repo, "--repo")
    max_parallel = positive_int(args.max_parallel, "--max-parallel must be an integer >= 1", 2)
    max_events = nonneg_int(args.max_events, "--max-events must be a non-negative integer", 0)
    repo = resolve_repo(repo_arg)
    settings = FleetReconcileSettings(
        repo=repo,
        registry_file=_path(args.registry_file),
        fleet_state_file=_path(args.fleet_state_file),
        fleet_telemetry_file=_path(args.fleet_telemetry_file),
        max_parallel=max_parallel,
        deterministic_order=bool(args.deterministic_order),
        max_events=max_events,
        from_start=bool(args.from_start),
        trace_id=args.trace_id or None,
    )
    progress = progress_line(sys.stderr, quiet=bool(args.quiet))
    try:
        result = fleet_reconcile(settings, progress=progress)
    finally:
        if progress is not None:
            progress.finish()
    sys.stdout.write(dumps(result.state, bool(args.pretty)) + "\n")
    return result.exit_code


def _path(value: str | None) -> Path | None:
    """A flag path, verbatim (relative paths stay relative to the working directory)."""
    return Path(value) if value else None
