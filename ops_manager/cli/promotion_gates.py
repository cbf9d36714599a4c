"""``ops-manager promotion-gates``: promote vs hold from five gates (``fleet.md`` §2.6)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ops_manager._jsonfmt import dumps
from ops_manager.cli._parser import CommandParser, require

HELP = """Decide whether guarded autonomy can be promoted: five gates (governance, outcome
reliability, manual backlog, safety suppression, drill recency), each pass/fail with named
reasons. Reads the fleet status (--fleet-status-file, else generated in process), the handoff
telemetry and the drill evidence file; writes promotion-state.json (== stdout) and appends
telemetry/promotion.jsonl. Exit 0 (also on hold), or 2 on hold with --fail-on-hold."""


def add_evidence_flags(p: CommandParser) -> None:
    """The flags promotion-gates and promotion-ci share."""
    fleet = "<repo>/.superloop/ops-manager/fleet"
    p.add_argument("--repo", metavar="PATH", help="target repo (required)")
    p.add_argument(
        "--fleet-status-file", metavar="PATH", help="fleet status JSON (default: generated)"
    )
    p.add_argument(
        "--handoff-telemetry-file",
        metavar="PATH",
        help=f"default {fleet}/telemetry/handoff.jsonl",
    )
    p.add_argument(
        "--drill-state-file", metavar="PATH", help=f"default {fleet}/drills/promotion.v1.json"
    )
    p.add_argument(
        "--promotion-state-file", metavar="PATH", help=f"default {fleet}/promotion-state.json"
    )
    p.add_argument(
        "--promotion-telemetry-file",
        metavar="PATH",
        help=f"default {fleet}/telemetry/promotion.jsonl",
    )
    p.add_argument("--window-executions", metavar="N", help="autonomous runs judged (20)")
    p.add_argument("--min-sample-size", metavar="N", help="minimum autonomous runs (20)")
    p.add_argument("--max-ambiguity-rate", metavar="R", help="0..1 (0.2)")
    p.add_argument("--max-failure-rate", metavar="R", help="0..1 (0.2)")
    p.add_argument("--max-manual-backlog", metavar="N", help="pending manual-only intents (5)")
    p.add_argument("--max-drill-age-hours", metavar="N", help="drill freshness (168)")
    p.add_argument(
        "--trace-id", metavar="ID", help="trace id (else $OPS_MANAGER_TRACE_ID, else uuid4)"
    )
    p.add_argument("--fail-on-hold", action="store_true", help="exit 2 when the decision is hold")
    p.add_argument("--pretty", action="store_true", help="pretty-print stdout (files stay compact)")


def threshold_values(args: argparse.Namespace) -> dict[str, str | None]:
    """The raw threshold flag values keyed like :func:`parse_thresholds` arguments."""
    return {
        "window_executions": args.window_executions,
        "min_sample_size": args.min_sample_size,
        "max_ambiguity_rate": args.max_ambiguity_rate,
        "max_failure_rate": args.max_failure_rate,
        "max_manual_backlog": args.max_manual_backlog,
        "max_drill_age_hours": args.max_drill_age_hours,
    }


def configure(p: CommandParser) -> None:
    """Declare the flags of ``fleet.md`` §2.6."""
    add_evidence_flags(p)


def run(args: argparse.Namespace) -> int:
    """Validate thresholds (table order), evaluate, print the result."""
    from ops_manager.engine.paths import resolve_repo
    from ops_manager.engine.promotion import PromotionSettings, parse_thresholds, promotion_gates

    repo_arg = require(args.repo, "--repo")
    thresholds = parse_thresholds(**threshold_values(args))
    settings = PromotionSettings(
        repo=resolve_repo(repo_arg),
        fleet_status_file=path_flag(args.fleet_status_file),
        handoff_telemetry_file=path_flag(args.handoff_telemetry_file),
        drill_state_file=path_flag(args.drill_state_file),
        promotion_state_file=path_flag(args.promotion_state_file),
        promotion_telemetry_file=path_flag(args.promotion_telemetry_file),
        thresholds=thresholds,
        trace_id=args.trace_id or None,
        fail_on_hold=bool(args.fail_on_hold),
    )
    result = promotion_gates(settings)
    sys.stdout.write(dumps(result.document, bool(args.pretty)) + "\n")
    return result.exit_code


def path_flag(value: str | None) -> Path | None:
    """A flag path, verbatim (relative paths stay relative to the working directory)."""
    return Path(value) if value else None
