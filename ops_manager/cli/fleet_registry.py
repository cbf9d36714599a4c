"""``ops-manager fleet-registry``: validate + normalise the fleet registry (``fleet.md`` §2.1)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ops_manager._jsonfmt import dumps
from ops_manager.cli._parser import CommandParser, require

HELP = """Validate the fleet registry (.superloop/ops-manager/fleet/registry.v1.json) fail-closed
and print it normalised with every default filled in. Every problem is reported, one line
each, and the command exits 1. --loop prints only that loop. Writes nothing."""


def configure(p: CommandParser) -> None:
    """Declare the flags of ``fleet.md`` §2.1."""
    p.add_argument("--repo", metavar="PATH", help="target repo (required)")
    p.add_argument(
        "--registry-file",
        metavar="PATH",
        help="default <repo>/.superloop/ops-manager/fleet/registry.v1.json (echoed as sourceFile)",
    )
    p.add_argument("--loop", metavar="ID", help="only this loop (exact loopId)")
    p.add_argument("--pretty", action="store_true", help="pretty-print")


def run(args: argparse.Namespace) -> int:
    """Print the normalised registry."""
    from ops_manager.engine.fleet_registry import load_registry
    from ops_manager.engine.paths import resolve_repo

    repo = resolve_repo(require(args.repo, "--repo"))
    registry_file = Path(args.registry_file) if args.registry_file else None
    registry = load_registry(repo, registry_file, loop=args.loop or None)
    sys.stdout.write(dumps(registry, bool(args.pretty)) + "\n")
    return 0
