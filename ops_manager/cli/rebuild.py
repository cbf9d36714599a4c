"""``ops-manager rebuild``: re-fold a loop's projections from its streams and compare."""

from __future__ import annotations

import argparse
import sys

from ops_manager._jsonfmt import dumps
from ops_manager.cli._format import add_format_flag, color_enabled, output_format
from ops_manager.cli._parser import CommandParser, require

HELP = """Re-fold every projection of a loop from its append-only streams (events.jsonl,
telemetry/*.jsonl) and report, per projection, whether the stored file matches, differs
(with the JSON paths), is missing, or cannot be rebuilt (and why). With --write, rewrite the
projections that differ and can be rebuilt, byte-identically to what a reconcile pass writes.
Exit 0 when everything matches (or was restored), 1 when differences remain."""


def configure(p: CommandParser) -> None:
    """Declare the flags."""
    p.add_argument("--repo", metavar="PATH", help="target repo (required)")
    p.add_argument("--loop", metavar="ID", help="loop id (required)")
    p.add_argument("--write", action="store_true", help="restore what differs and is rebuildable")
    p.add_argument("--pretty", action="store_true", help="pretty-print the report")
    add_format_flag(p)


def run(args: argparse.Namespace) -> int:
    """Print the report; exit 0 when no projection differs any more."""
    from ops_manager.engine.paths import loop_paths
    from ops_manager.engine.rebuild import rebuild

    fmt = output_format(args)
    repo_arg = require(args.repo, "--repo")
    loop_arg = require(args.loop, "--loop")
    paths = loop_paths(repo_arg, loop_arg)
    report = rebuild(paths, write=bool(args.write))
    if fmt == "table":
        from ops_manager.cli._table import rebuild_table

        sys.stdout.write(rebuild_table(report.to_json(), color=color_enabled(sys.stdout)))
        return report.exit_code
    sys.stdout.write(dumps(report.to_json(), bool(args.pretty)) + "\n")
    return report.exit_code
