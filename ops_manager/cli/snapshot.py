"""``ops-manager loop-run-snapshot``: print one ``loop_run_snapshot`` envelope (§3.1)."""

from __future__ import annotations

import argparse
import sys

from ops_manager._jsonfmt import dumps
from ops_manager._timefmt import utc_now_epoch
from ops_manager.cli._parser import CommandParser, require
from ops_manager.engine.envelopes import loop_run_snapshot
from ops_manager.engine.paths import loop_paths_in, resolve_repo, validate_loop_id

HELP = "Emit a loop_run_snapshot envelope for one loop."


def configure(parser: CommandParser) -> None:
    """Declare the flags of ``loop-run-snapshot``."""
    parser.add_argument("--repo", metavar="PATH", help="target repo (required)")
    parser.add_argument("--loop", metavar="ID", help="loop id (required)")
    parser.add_argument("--run-id", metavar="ID", default="", help="override run.runId")
    parser.add_argument("--trace-id", metavar="ID", default="", help="copied to traceId")
    parser.add_argument("--pretty", action="store_true", help="pretty-print the envelope")


def run(args: argparse.Namespace) -> int:
    """Build the snapshot and print it (compact, or pretty with ``--pretty``)."""
    repo = require(args.repo, "--repo")
    loop_id = validate_loop_id(require(args.loop, "--loop"))
    paths = loop_paths_in(resolve_repo(repo), loop_id)
    envelope = loop_run_snapshot(
        paths, now=utc_now_epoch(), trace_id=args.trace_id, run_id=args.run_id
    )
    sys.stdout.write(dumps(envelope, args.pretty) + "\n")
    return 0
