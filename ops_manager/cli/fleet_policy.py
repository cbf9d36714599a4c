"""``ops-manager fleet-policy``: candidates, suppression, dedupe, autonomy (``fleet.md`` §2.3)."""

from __future__ import annotations

import argparse
import sys

from ops_manager._jsonfmt import dumps
from ops_manager.cli._format import add_format_flag, color_enabled, output_format
from ops_manager.cli._parser import CommandParser, nonneg_int, require

HELP = """Turn the fleet state into action candidates (reconcile_failed, health_critical,
health_degraded), apply registry suppressions (loop over '*') and the dedupe window, and decide
for each candidate whether guarded autonomy may act on it (allowlists, thresholds, rollout
cohort, manual/auto pause, kill switch, cooldown, per-run and per-loop caps), each decision with
a named reason. Writes policy-state.json and appends policy-history, policy telemetry and
governance audit rows. See docs/fleet-autonomy.md."""

_FLEET = "<repo>/.superloop/ops-manager/fleet"

_FILE_FLAGS = (
    ("registry-file", "registry", f"{_FLEET}/registry.v1.json"),
    ("fleet-state-file", "fleet_state", f"{_FLEET}/state.json"),
    ("policy-state-file", "policy_state", f"{_FLEET}/policy-state.json"),
    ("governance-audit-file", "governance_audit", f"{_FLEET}/telemetry/policy-governance.jsonl"),
    ("handoff-telemetry-file", "handoff_telemetry", f"{_FLEET}/telemetry/handoff.jsonl (read)"),
    ("policy-telemetry-file", "policy_telemetry", f"{_FLEET}/telemetry/policy.jsonl"),
    ("policy-history-file", "policy_history", f"{_FLEET}/telemetry/policy-history.jsonl"),
)


def configure(p: CommandParser) -> None:
    """Declare the flags of ``fleet.md`` §2.3."""
    p.add_argument("--repo", metavar="PATH", help="target repo (required)")
    for flag, _, default in _FILE_FLAGS:
        p.add_argument(f"--{flag}", metavar="PATH", help=f"default {default}")
    p.add_argument(
        "--dedupe-window-seconds",
        metavar="N",
        help="advisory dedupe window (default: registry policy.noiseControls, else 300)",
    )
    p.add_argument(
        "--trace-id",
        metavar="ID",
        help="default: fleet state traceId, then $OPS_MANAGER_TRACE_ID, else generated",
    )
    p.add_argument("--pretty", action="store_true", help="pretty-print")
    add_format_flag(p)


def _warn(message: str) -> None:
    sys.stderr.write(f"warning: {message}\n")


def run(args: argparse.Namespace) -> int:
    """Evaluate the policy, write its artifacts and print the policy state."""
    from ops_manager.engine.fleet_policy import FleetPolicyFiles, fleet_policy
    from ops_manager.engine.paths import resolve_repo

    fmt = output_format(args)
    repo_arg = require(args.repo, "--repo")
    window = (
        None
        if args.dedupe_window_seconds is None
        else nonneg_int(
            args.dedupe_window_seconds,
            "--dedupe-window-seconds must be a non-negative integer",
            0,
        )
    )
    files = FleetPolicyFiles(
        **{field: getattr(args, flag.replace("-", "_")) or None for flag, field, _ in _FILE_FLAGS}
    )
    evaluation = fleet_policy(
        resolve_repo(repo_arg),
        files=files,
        dedupe_window_seconds=window,
        trace_id=args.trace_id or None,
        warn=_warn,
    )
    if fmt == "table":
        from ops_manager.cli._table import fleet_policy_table

        sys.stdout.write(fleet_policy_table(evaluation.state, color=color_enabled(sys.stdout)))
        return 0
    sys.stdout.write(dumps(evaluation.state, bool(args.pretty)) + "\n")
    return 0
