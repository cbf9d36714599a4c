"""``ops-manager telemetry-summary``: recent telemetry folded into a recommendation
(``loop.md`` §3.6)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ops_manager._jsonfmt import dumps
from ops_manager.cli._parser import CommandParser, positive_int, require

HELP = """Fold the last --window rows of a loop's reconcile and control telemetry into counts,
rates, duration percentiles, a recommended threshold profile (strict | balanced | relaxed),
a confidence and a rationale. Reads only the tails of the files; writes nothing. A malformed
row is skipped, counted in observed.malformedRows and reported on stderr."""


def configure(p: CommandParser) -> None:
    """Declare the flags of ``loop.md`` §3.6."""
    p.add_argument("--repo", metavar="PATH", help="target repo (required)")
    p.add_argument("--loop", metavar="ID", help="loop id (required)")
    p.add_argument("--reconcile-telemetry-file", metavar="PATH", help="default TEL/reconcile.jsonl")
    p.add_argument("--control-telemetry-file", metavar="PATH", help="default TEL/control.jsonl")
    p.add_argument("--window", metavar="N", help="rows (physical lines) sampled, >= 1 (200)")
    p.add_argument("--pretty", action="store_true", help="pretty-print")


def run(args: argparse.Namespace) -> int:
    """Print the summary; warnings about skipped rows go to stderr."""
    from ops_manager.engine.paths import loop_paths
    from ops_manager.engine.telemetry_summary import telemetry_summary

    repo_arg = require(args.repo, "--repo")
    loop_arg = require(args.loop, "--loop")
    window = positive_int(args.window, "--window must be an integer >= 1", 200)
    paths = loop_paths(repo_arg, loop_arg)
    result = telemetry_summary(
        paths,
        window=window,
        reconcile_file=_path(args.reconcile_telemetry_file),
        control_file=_path(args.control_telemetry_file),
    )
    for warning in result.warnings:
        sys.stderr.write(f"warning: {warning}\n")
    sys.stdout.write(dumps(result.summary, bool(args.pretty)) + "\n")
    return 0


def _path(value: str | None) -> Path | None:
    # "as passed" (loop.md §3.6): the summary's source echoes the path the caller gave
    return Path(value) if value else None
