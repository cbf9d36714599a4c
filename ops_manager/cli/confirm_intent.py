"""``ops-manager confirm-intent``: wait for evidence an intent took effect (``loop.md`` §3.9)."""

from __future__ import annotations

import argparse
import sys

from ops_manager._jsonfmt import dumps_compact
from ops_manager.cli._parser import CommandParser, nonneg_int, require
from ops_manager.errors import OpsError

HELP = """Poll the loop's runtime until the effect of an intent is visible (cancel: runtime not
active and run not running; approve: completion observed; reject: rejection observed) or the
timeout passes. Prints the outcome object; exit 0 confirmed, 1 not (reason "timeout")."""

INTENTS = ("cancel", "approve", "reject")


def configure(p: CommandParser) -> None:
    """Declare the flags of ``loop.md`` §3.9."""
    p.add_argument("--repo", metavar="PATH", help="target repo (required)")
    p.add_argument("--loop", metavar="ID", help="loop id (required)")
    p.add_argument("--intent", metavar="INTENT", help="cancel | approve | reject (required)")
    p.add_argument("--timeout-seconds", metavar="N", help="give up after N seconds (default 30)")
    p.add_argument("--interval-seconds", metavar="N", help="poll interval (default 2; 0 = 1)")


def run(args: argparse.Namespace) -> int:
    """Validate flags, poll, print the outcome."""
    from ops_manager.engine.control import confirm_intent
    from ops_manager.engine.paths import loop_paths

    repo_arg = require(args.repo, "--repo")
    loop_arg = require(args.loop, "--loop")
    intent = require(args.intent, "--intent")
    if intent not in INTENTS:
        raise OpsError("intent must be one of: cancel, approve, reject")
    timing_error = "timeout and interval must be non-negative integers"
    timeout = nonneg_int(args.timeout_seconds, timing_error, 30)
    interval = nonneg_int(args.interval_seconds, timing_error, 2)
    paths = loop_paths(repo_arg, loop_arg)
    outcome, code = confirm_intent(
        paths, intent, timeout_seconds=timeout, interval_seconds=interval
    )
    sys.stdout.write(dumps_compact(outcome) + "\n")
    return code
