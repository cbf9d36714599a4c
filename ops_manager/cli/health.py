"""``ops-manager health``: compute the health projection from state artifacts (``loop.md`` §3.4).

Reads the given artifact files, calls :func:`ops_manager.reducers.health.compute_health` and
prints the result. Writes nothing (reconcile is what writes ``OPS/health.json``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ops_manager._jsonfmt import dumps, nonempty_str
from ops_manager._timefmt import parse_ts, utc_now_epoch
from ops_manager.cli._parser import CommandParser, choice, nonneg_int
from ops_manager.engine._files import last_jsonl_object
from ops_manager.errors import OpsError
from ops_manager.reducers.health import HealthInputs, compute_health
from ops_manager.reducers.thresholds import Thresholds, validate_thresholds
from ops_manager.store import read_json_file

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

#: (flag, dest, error prefix) of the JSON inputs
_INPUT_FILES: tuple[tuple[str, str, str], ...] = (
    ("--state-file", "state_file", "invalid state JSON"),
    ("--heartbeat-state-file", "heartbeat_state_file", "invalid heartbeat state JSON"),
    ("--sequence-state-file", "sequence_state_file", "invalid sequence state JSON"),
    ("--transport-health-file", "transport_health_file", "invalid transport health JSON"),
)


def configure(parser: CommandParser) -> None:
    """Declare the flags of ``ops-manager health``."""
    for flag, _dest, _err in _INPUT_FILES:
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


def _read_object(value: str | None, error: str) -> dict[str, Any]:
    """An input artifact: absent flag or missing file -> ``{}``; bad JSON -> ``<error>: <p>``."""
    if not value:
        return {}
    path = Path(value)
    parsed = read_json_file(path, error)
    if parsed is None:
        return {}
    if not isinstance(parsed, dict):
        # a projection is always an object; anything else is as unusable as bad JSON
        raise OpsError(f"{error}: {path}")
    return parsed


def _last_control_status(value: str | None) -> str | None:
    """``status`` of the last complete intents row (a torn final line is not read)."""
    if not value:
        return None
    row = last_jsonl_object(Path(value))
    return nonempty_str(row.get("status")) if row is not None else None


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
    thresholds = Thresholds(profile=nonempty_str(args.threshold_profile), **values)
    validate_thresholds(thresholds)
    return thresholds


def build_inputs(args: argparse.Namespace) -> HealthInputs:
    """Validate the flags and read every input artifact, in the contract's order."""
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
    files = {dest: _read_object(getattr(args, dest), err) for _f, dest, err in _INPUT_FILES}
    return HealthInputs(
        now=now,
        trace_id=nonempty_str(args.trace_id),
        transport=transport,
        ingest_status=ingest_status,
        failure_code=nonempty_str(args.failure_code),
        thresholds=thresholds,
        state=files["state_file"],
        heartbeat_state=files["heartbeat_state_file"],
        sequence_state=files["sequence_state_file"],
        transport_health=files["transport_health_file"],
        last_control_status=_last_control_status(args.intents_file),
    )


def run(args: argparse.Namespace) -> int:
    """Print the health object (compact, or pretty with ``--pretty``)."""
    health = compute_health(build_inputs(args))
    sys.stdout.write(dumps(health, args.pretty) + "\n")
    return 0
