"""``ops-manager poll-events``: print new ``loop_run_event`` envelopes after a cursor (§3.2)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ops_manager._jsonfmt import dumps_compact
from ops_manager._timefmt import utc_now_epoch
from ops_manager.cli._parser import CommandParser, nonneg_int, require
from ops_manager.engine.envelopes import poll_loop_events
from ops_manager.engine.paths import loop_paths

HELP = "Emit new loop_run_event envelopes after a cursor."


def configure(parser: CommandParser) -> None:
    """Declare the flags of ``poll-events``."""
    parser.add_argument("--repo", metavar="PATH", help="target repo (required)")
    parser.add_argument("--loop", metavar="ID", help="loop id (required)")
    parser.add_argument(
        "--cursor-file",
        metavar="PATH",
        default=None,
        help="cursor location (default: .superloop/loops/<loop>/ops-manager.cursor.json)",
    )
    parser.add_argument("--from-start", action="store_true", help="ignore the cursor")
    parser.add_argument(
        "--max-events", metavar="N", default=None, help="stop after N envelopes (0 = no limit)"
    )
    parser.add_argument("--trace-id", metavar="ID", default="", help="stamped into traceId")


def _write_line(envelope: dict[str, Any]) -> None:
    text = dumps_compact(envelope) + "\n"
    try:
        sys.stdout.write(text)
    except UnicodeEncodeError:
        # a raw event may carry a lone surrogate ("\ud800" is valid JSON); print U+FFFD for it
        # like jq does instead of failing the whole batch
        sys.stdout.write(text.encode("utf-8", "replace").decode("utf-8"))


def run(args: argparse.Namespace) -> int:
    """Poll once: one compact envelope per line on stdout, cursor saved on success."""
    repo = require(args.repo, "--repo")
    loop = require(args.loop, "--loop")
    max_events = nonneg_int(args.max_events, "--max-events must be a non-negative integer", 0)
    paths = loop_paths(repo, loop)
    cursor_file = Path(args.cursor_file) if args.cursor_file else None
    try:
        poll_loop_events(
            paths,
            cursor_file=cursor_file,
            from_start=args.from_start,
            max_events=max_events,
            trace_id=args.trace_id,
            now=utc_now_epoch(),
            emit=_write_line,
        )
    finally:
        # envelopes printed before an error stay printed (loop.md §3.2 edge cases)
        sys.stdout.flush()
    return 0
