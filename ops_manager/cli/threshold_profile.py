"""``ops-manager threshold-profile``: resolve or list threshold profiles (``loop.md`` §3.5)."""

from __future__ import annotations

import argparse
import sys

from ops_manager._jsonfmt import dumps
from ops_manager.cli._parser import CommandParser
from ops_manager.engine.profiles import names_from_file, profiles_path, resolve_from_file

HELP = "Resolve a threshold profile from the catalog (or --list the profile names)."


def configure(parser: CommandParser) -> None:
    """Declare the flags of ``ops-manager threshold-profile``."""
    parser.add_argument(
        "--profiles-file",
        metavar="PATH",
        help="catalog (default: $OPS_MANAGER_THRESHOLD_PROFILES_FILE, else the packaged one)",
    )
    parser.add_argument("--profile", metavar="NAME", help="default: the catalog's defaultProfile")
    parser.add_argument("--list", action="store_true", help="print profile names, one per line")
    parser.add_argument("--pretty", action="store_true")


def run(args: argparse.Namespace) -> int:
    """Print the resolved profile object, or the sorted profile names with ``--list``."""
    path = profiles_path(args.profiles_file)
    if args.list:
        sys.stdout.write("".join(f"{name}\n" for name in names_from_file(path)))
        return 0
    resolved = resolve_from_file(path, args.profile)
    sys.stdout.write(dumps(resolved.to_json(str(path)), args.pretty) + "\n")
    return 0
