"""``ops-manager health``: compute the health projection from state artifacts (``loop.md`` §3.4).

Validates the flags, calls :func:`ops_manager.engine.health.health_from_files` and prints the
result. Writes nothing (reconcile is what writes ``OPS/health.json``).
"""

from __future__ import annotations

import argparse
import sys

from ops_manager._jsonfmt import dumps, nonempty_str
from ops_manager._timefmt import parse_ts, utc_now_epoch
from ops_manager.cli._parser import CommandParser, choice, nonneg_int
from ops_manager.engine.health import HealthRequest, health_from_files
from ops_manager.engine.profiles import Thresholds, thresholds_from_flags
from ops_manager.errors import OpsError

HELP = "Compute the health projection from state artifacts (prints it; writes nothing)."

#: (flag, Thresholds field) in the order they are validated
THRESHOLD_FLAGS: tuple[tuple[str, str], ...] = (
    ("--degraded-ingest-lag-seconds", "degraded_ingest_lag_seconds"),
    ("--critical-ingest-lag-seconds", "critical_ingest_lag_seconds"),
    ("--degraded-heartbeat-lag-seconds", "degraded_heartbeat_lag_seconds"),
    ("--critical-heartbeat-lag-seconds", "critical_heartbeat_lag_seconds"),
    ("--degraded-transport-failure-streak", "degraded_transport_failure_streak"),
    ("--critical-transport-failure-streak", "critical_transport_failure_streak"),
)

#: (flag, health input) of the JSON artifacts (``engine.health.ARTIFACTS`` reads them)
_INPUT_FILES: tuple[tuple[str, str], ...] = (
    ("--state-file", "state"),
    ("--heartbeat-state-file", "heartbeat_state"),
    ("--sequence-state-file", "sequence_state"),
    ("--transport-health-file", "transport_health"),
)


def configure(parser: CommandParser) -> None:
    """Declare the flags of ``ops-manager health``."""
    for flag, _field in _INPUT_FILES:
        parser.add_argument(flag, metavar="PATH", help="input artifact (missing -> {})")
    parser.add_argument("--intents-file", metavar="PATH", help="intents.jsonl (last row's status)")
    parser.add_argument("--trace-id", metavar="ID")
    parser.add_argument("--transport", metavar="MODE", help="local (default) or sprite_service")
    parser.add_argument("--threshold-profile", metavar="NAME", help="label only")
    parser.add_argument("--ingest-status", metavar="STATUS", help="success (default) or failed")
    parser.add_argument("--failure-code", metavar="CODE")
    defaults = Thresholds()
    for flag, field in THRESHOLD_FLAGS:
        parser.add_argument(flag, metavar="N", help=f"default {getattr(defaults, field)}")
    parser.add_argument("--now", metavar="TS", help="evaluation time, YYYY-MM-DDTHH:MM:SSZ")
    parser.add_argument("--pretty", action="store_true")


def parse_thresholds(args: argparse.Namespace) -> Thresholds:
    """Validate the six threshold flags and the three critical >= degraded pairs."""
    defaults = Thresholds()
    values: dict[str, int] = {}
    for flag, field in THRESHOLD_FLAGS:
        values[field] = nonneg_int(
            getattr(args, field),
            f"{flag[2:]} must be a non-negative integer",
            getattr(defaults, field),
        )
    return thresholds_from_flags(values, nonempty_str(args.threshold_profile))


def build_request(args: argparse.Namespace) -> HealthRequest:
    """Validate the flags in the contract's order (the engine reads the artifacts)."""
    transport = choice(
        args.transport,
        ("local", "sprite_service"),
        "--transport must be local or sprite_service",
        "local",
    )
    ingest_status = choice(
        args.ingest_status,
        ("success", "failed"),
        "--ingest-status must be success or failed",
        "success",
    )
    thresholds = parse_thresholds(args)
    if args.now:
        now = parse_ts(args.now)
        if now is None:
            raise OpsError("--now must be an ISO-8601 UTC timestamp")
    else:
        now = utc_now_epoch()
    return HealthRequest(
        now=now,
        trace_id=nonempty_str(args.trace_id),
        transport=transport,
        ingest_status=ingest_status,
        failure_code=nonempty_str(args.failure_code),
        thresholds=thresholds,
        files={field: getattr(args, f"{field}_file") for _flag, field in _INPUT_FILES},
        intents_file=args.intents_file,
    )


def run(args: argparse.Namespace) -> int:
    """Print the health object (compact, or pretty with ``--pretty``)."""
    health = health_from_files(build_request(args))
    sys.stdout.write(dumps(health, args.pretty) + "\n")
    return 0
