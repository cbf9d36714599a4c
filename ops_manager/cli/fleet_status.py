"""``ops-manager fleet-status``: fleet posture, loops needing attention (``fleet.md`` §2.4)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ops_manager._jsonfmt import dumps
from ops_manager.cli._format import add_format_flag, color_enabled, output_format
from ops_manager.cli._parser import CommandParser, require

HELP = """Fleet posture from the last fleet-reconcile: status and counts, health rollup,
exception buckets (failed, critical, degraded, skipped loops), one drill-down row per loop
with the paths of its state/health/cursor/telemetry, and trace linkage; from the last
fleet-policy and fleet-handoff: candidates, intents, and the autonomy posture (governance,
safety-gate decisions by path, rollout and auto-pause state, autonomous outcome rollup).
Re-validates the registry (fail closed). Writes nothing."""


def configure(p: CommandParser) -> None:
    """Declare the flags of ``fleet.md`` §2.4."""
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
        "--policy-state-file",
        metavar="PATH",
        help="default <repo>/.superloop/ops-manager/fleet/policy-state.json (optional)",
    )
    p.add_argument(
        "--fleet-telemetry-file",
        metavar="PATH",
        help="default <repo>/.superloop/ops-manager/fleet/telemetry/reconcile.jsonl",
    )
    p.add_argument(
        "--handoff-state-file",
        metavar="PATH",
        help="default <repo>/.superloop/ops-manager/fleet/handoff-state.json (optional)",
    )
    p.add_argument(
        "--handoff-telemetry-file",
        metavar="PATH",
        help="default <repo>/.superloop/ops-manager/fleet/telemetry/handoff.jsonl",
    )
    p.add_argument("--pretty", action="store_true", help="pretty-print")
    add_format_flag(p)


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


def run(args: argparse.Namespace) -> int:
    """Print the fleet status document."""
    from ops_manager.engine.fleet_status import FleetStatusFiles, fleet_status
    from ops_manager.engine.paths import resolve_repo

    fmt = output_format(args)
    repo = resolve_repo(require(args.repo, "--repo"))
    files = FleetStatusFiles(
        registry=_path(args.registry_file),
        fleet_state=_path(args.fleet_state_file),
        policy_state=_path(args.policy_state_file),
        fleet_telemetry=_path(args.fleet_telemetry_file),
        handoff_state=_path(args.handoff_state_file),
        handoff_telemetry=_path(args.handoff_telemetry_file),
    )
    status = fleet_status(repo, files=files)
    if fmt == "table":
        from ops_manager.cli._format import fleet_table_inputs
        from ops_manager.cli._table import fleet_status_table

        health, intents = fleet_table_inputs(status)
        color = color_enabled(sys.stdout)
        sys.stdout.write(fleet_status_table(status, health=health, intents=intents, color=color))
        return 0
    sys.stdout.write(dumps(status, bool(args.pretty)) + "\n")
    return 0
