"""``ops-manager project-state``: fold a snapshot (+ event envelopes) into the lifecycle
projection and write it to the state file (``loop.md`` §3.3)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ops_manager._jsonfmt import dumps
from ops_manager._timefmt import utc_now_epoch
from ops_manager.cli._parser import CommandParser, require
from ops_manager.engine.paths import loop_paths
from ops_manager.engine.project_state import project_state as project_state

HELP = "Fold a snapshot (+ event envelopes) into the lifecycle projection (state.json)."


def configure(parser: CommandParser) -> None:
    """Declare the flags of ``ops-manager project-state``."""
    parser.add_argument("--repo", metavar="PATH")
    parser.add_argument("--loop", metavar="ID")
    parser.add_argument(
        "--snapshot-file",
        metavar="PATH",
        help="loop_run_snapshot envelope (default: built in-process from the repo)",
    )
    parser.add_argument("--events-file", metavar="PATH", help="NDJSON of loop_run_event envelopes")
    parser.add_argument("--state-file", metavar="PATH", help="output (default OPS/state.json)")
    parser.add_argument("--pretty", action="store_true")


def run(args: argparse.Namespace) -> int:
    """Write the state file and echo it to stdout."""
    require(args.repo, "--repo")
    loop = require(args.loop, "--loop")
    paths = loop_paths(args.repo, loop)
    state_file = Path(args.state_file) if args.state_file else paths.state_file
    state = project_state(
        paths,
        now=utc_now_epoch(),
        snapshot_file=args.snapshot_file,
        events_file=args.events_file,
        state_file=state_file,
        pretty=args.pretty,
    )
    sys.stdout.write(dumps(state, args.pretty) + "\n")
    return 0
