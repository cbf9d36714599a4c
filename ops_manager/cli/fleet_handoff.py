"""``ops-manager fleet-handoff``: plan, confirm or autonomously execute fleet intents
(``fleet.md`` §2.5)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ops_manager._jsonfmt import dumps
from ops_manager.cli._format import add_format_flag, color_enabled, output_format
from ops_manager.cli._parser import CommandParser, nonneg_int, require
from ops_manager.errors import OpsError

HELP = """Turn the unsuppressed fleet-policy candidates into control intents and write the plan
(handoff-state.json == stdout; one fleet_handoff_plan row in telemetry/handoff.jsonl).
--execute --confirm runs the pending intents (all, or those picked with --loop / --intent-id)
through the loop-level control; --autonomous-execute runs only the autonomous-eligible ones
and needs policy mode guarded_auto. Each control call carries the handoff trace id and the
intent's deterministic idempotency key (a repeated run replays, it never executes twice).
After an ambiguous or failed outcome an intent is retry-guarded (manual-only) until an
operator executes it with --execute --confirm. Exit 0 whatever the control outcomes."""


def configure(p: CommandParser) -> None:
    """Declare the flags of ``fleet.md`` §2.5."""
    fleet = "<repo>/.superloop/ops-manager/fleet"
    p.add_argument("--repo", metavar="PATH", help="target repo (required)")
    p.add_argument("--registry-file", metavar="PATH", help=f"default {fleet}/registry.v1.json")
    p.add_argument("--policy-state-file", metavar="PATH", help=f"default {fleet}/policy-state.json")
    p.add_argument(
        "--handoff-state-file", metavar="PATH", help=f"default {fleet}/handoff-state.json"
    )
    p.add_argument(
        "--handoff-telemetry-file",
        metavar="PATH",
        help=f"default {fleet}/telemetry/handoff.jsonl",
    )
    p.add_argument(
        "--trace-id",
        metavar="ID",
        help="handoff trace id (else policy-state traceId, else $OPS_MANAGER_TRACE_ID, else uuid4)",
    )
    p.add_argument(
        "--idempotency-prefix",
        metavar="TEXT",
        help="idempotency key prefix (default fleet-handoff)",
    )
    p.add_argument("--execute", action="store_true", help="manual execution (needs --confirm)")
    p.add_argument(
        "--autonomous-execute",
        action="store_true",
        help="execute only autonomous-eligible pending intents (policy mode guarded_auto)",
    )
    p.add_argument("--confirm", action="store_true", help="operator confirmation for --execute")
    p.add_argument("--loop", metavar="ID", action="append", help="execution filter (repeatable)")
    p.add_argument(
        "--intent-id", metavar="ID", action="append", help="execution filter (repeatable)"
    )
    p.add_argument("--by", metavar="NAME", help="requester (default $USER, else unknown)")
    p.add_argument("--note", metavar="TEXT", help="note recorded with each control call")
    p.add_argument("--timeout-seconds", metavar="N", help="control confirmation timeout (30)")
    p.add_argument("--interval-seconds", metavar="N", help="control confirmation interval (2)")
    p.add_argument(
        "--no-runtime-confirm", action="store_true", help="control calls skip confirmation"
    )
    p.add_argument("--pretty", action="store_true", help="pretty-print stdout (files stay compact)")
    add_format_flag(p)


def run(args: argparse.Namespace) -> int:
    """Validate flags in the contract's order (§2.5), run the handoff, print the state."""
    from ops_manager.engine.fleet_handoff import (
        MODE_AUTONOMOUS,
        MODE_MANUAL,
        MODE_PLAN,
        HandoffSettings,
        fleet_handoff,
    )
    from ops_manager.engine.paths import resolve_repo

    fmt = output_format(args)
    repo_arg = require(args.repo, "--repo")
    prefix = "fleet-handoff" if args.idempotency_prefix is None else args.idempotency_prefix
    if prefix == "":
        raise OpsError("--idempotency-prefix must be non-empty")
    timing_error = "timeout and interval must be non-negative integers"
    timeout = nonneg_int(args.timeout_seconds, timing_error, 30)
    interval = nonneg_int(args.interval_seconds, timing_error, 2)
    if args.execute and args.autonomous_execute:
        raise OpsError("--execute and --autonomous-execute are mutually exclusive")
    if args.confirm and not args.execute:
        raise OpsError("--confirm can only be used with --execute")
    if args.execute and not args.confirm:
        raise OpsError("--execute requires --confirm to enforce explicit operator confirmation")
    loops = tuple(args.loop or ())
    intent_ids = tuple(args.intent_id or ())
    if any(v == "" for v in loops):
        raise OpsError("--loop requires a non-empty value")
    if any(v == "" for v in intent_ids):
        raise OpsError("--intent-id requires a non-empty value")
    mode = (
        MODE_MANUAL if args.execute else MODE_AUTONOMOUS if args.autonomous_execute else MODE_PLAN
    )
    settings = HandoffSettings(
        repo=resolve_repo(repo_arg),
        mode=mode,
        registry_file=_path(args.registry_file),
        policy_state_file=_path(args.policy_state_file),
        handoff_state_file=_path(args.handoff_state_file),
        handoff_telemetry_file=_path(args.handoff_telemetry_file),
        trace_id=args.trace_id or None,
        idempotency_prefix=prefix,
        loops=loops,
        intent_ids=intent_ids,
        by=args.by or None,
        note=args.note or None,
        timeout_seconds=timeout,
        interval_seconds=interval,
        runtime_confirm=not args.no_runtime_confirm,
    )
    result = fleet_handoff(settings)
    if fmt == "table":
        from ops_manager.cli._table import fleet_handoff_table

        sys.stdout.write(fleet_handoff_table(result.state, color=color_enabled(sys.stdout)))
        return result.exit_code
    sys.stdout.write(dumps(result.state, bool(args.pretty)) + "\n")
    return result.exit_code


def _path(value: str | None) -> Path | None:
    """A flag path, verbatim (relative paths stay relative to the working directory)."""
    return Path(value) if value else None
