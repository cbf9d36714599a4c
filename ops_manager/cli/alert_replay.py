"""``ops-manager alert-replay``: re-send notifications kept in the alert outbox, by hand."""

from __future__ import annotations

import argparse
import sys

from ops_manager._jsonfmt import dumps
from ops_manager.cli._parser import CommandParser, require

HELP = """Re-send the notifications OPS/alert-outbox.jsonl still holds (pending ones; with
--include-terminal also those stopped by a terminal HTTP error or a spent retry budget),
oldest first, each with its ORIGINAL Idempotency-Key so receivers can drop duplicates.
--sink and --key narrow the selection; --dry-run only lists it. Prints a report; exit 1 when
something selected is still undelivered (the report is then the whole output)."""


def configure(p: CommandParser) -> None:
    """Declare the flags of ``alert-replay``."""
    p.add_argument("--repo", metavar="PATH", help="target repo (required)")
    p.add_argument("--loop", metavar="ID", help="loop id (required)")
    p.add_argument("--sink", metavar="ID", help="only this sink id")
    p.add_argument("--key", metavar="KEY", help="only this idempotency key (or a unique prefix)")
    p.add_argument(
        "--include-terminal",
        action="store_true",
        help="also re-send terminal / gave_up notifications",
    )
    p.add_argument("--dry-run", action="store_true", help="list what would be sent; send nothing")
    p.add_argument(
        "--alert-config-file",
        metavar="PATH",
        help="alert sink config (else $OPS_MANAGER_ALERT_SINKS_FILE, else the packaged one)",
    )
    p.add_argument("--outbox-file", metavar="PATH", help="default OPS/alert-outbox.jsonl")
    p.add_argument("--dispatch-telemetry-file", metavar="PATH", help="default TEL/alerts.jsonl")
    p.add_argument(
        "--trace-id", metavar="ID", help="trace id (else $OPS_MANAGER_TRACE_ID, else generated)"
    )
    p.add_argument("--pretty", action="store_true", help="pretty-print the report")


def run(args: argparse.Namespace) -> int:
    """Replay and print the report."""
    from ops_manager.cli.alert_dispatch import path_or_none, trace_id_from
    from ops_manager.engine.alert_dispatch import ReplaySettings, replay
    from ops_manager.engine.paths import loop_paths

    repo_arg = require(args.repo, "--repo")
    loop_arg = require(args.loop, "--loop")
    paths = loop_paths(repo_arg, loop_arg)
    report = replay(
        ReplaySettings(
            repo=paths.repo,
            loop_id=paths.loop_id,
            trace_id=trace_id_from(args.trace_id),
            config_file=args.alert_config_file or None,
            outbox_file=path_or_none(args.outbox_file),
            telemetry_file=path_or_none(args.dispatch_telemetry_file),
            sink_id=args.sink or None,
            key=args.key or None,
            include_terminal=bool(args.include_terminal),
            dry_run=bool(args.dry_run),
        )
    )
    sys.stdout.write(dumps(report, bool(args.pretty)) + "\n")
    # the report is the failure document (failedCount, per-notification reasons): it is the
    # whole output, no extra error line (docs/output-and-errors.md)
    return 1 if report["failedCount"] else 0
