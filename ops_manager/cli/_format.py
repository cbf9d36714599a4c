"""``--format table|json``: which view a command prints, and whether it may use colour.

The JSON view is the contract and stays the default; ``OPS_MANAGER_FORMAT`` sets an
operator's own default and ``--format`` wins over both. Rendering lives in
:mod:`ops_manager.cli._table` (pure functions); this module holds the terminal sniffing
around it, so the renderers stay testable. What the environment says (``OPS_MANAGER_FORMAT``,
``NO_COLOR``, ``TERM``) is resolved by :mod:`ops_manager.engine.settings`.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any, TextIO

from ops_manager.cli._parser import CommandParser
from ops_manager.engine.settings import FORMAT_ENV as ENV_VAR
from ops_manager.engine.settings import FORMATS as FORMATS
from ops_manager.engine.settings import color_allowed, output_format_setting


def add_format_flag(p: CommandParser, default: str = "json") -> None:
    """Declare ``--format table|json`` (validated by :func:`output_format`, not argparse)."""
    p.add_argument(
        "--format",
        metavar="FORMAT",
        help=f"table | json (default ${ENV_VAR}, else {default})",
    )


def output_format(args: argparse.Namespace, default: str = "json") -> str:
    """The view to print: ``--format``, else ``$OPS_MANAGER_FORMAT``, else ``default``.

    An unknown value in either place is an error (exit 1) rather than a silent fallback:
    a typo in a shell profile should not quietly change what a script parses.
    """
    flag: str | None = getattr(args, "format", None)
    return output_format_setting(flag, os.environ, default)


def color_enabled(stream: TextIO) -> bool:
    """Colour only on a terminal, never with ``NO_COLOR`` set (no-color.org) or ``TERM=dumb``."""
    if not color_allowed(os.environ):
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def read_json_quiet(path: str | Path | None) -> dict[str, Any] | None:
    """A JSON object file for a table's extra columns; ``None`` when absent or unreadable.

    Only the table view calls this: a missing per-loop file shows as ``-``, it is not an
    error (the JSON view never reads these files).
    """
    from ops_manager._jsonfmt import loads_object

    if not path:
        return None
    try:
        return loads_object(Path(path).read_bytes())
    except OSError:
        return None


def fleet_table_inputs(
    doc: dict[str, Any],
) -> tuple[dict[str, dict[str, Any] | None], list[dict[str, Any]]]:
    """The per-loop health files and the handoff plan's intents a fleet-status table shows.

    fleet-status itself carries neither the ingest lag nor the pending intents per loop; the
    table reads them from the paths the document names (each loop's ``healthFile`` and the
    fleet's ``handoffStateFile``), so the JSON view pays nothing for them.
    """
    health = {
        str(loop.get("loopId")): read_json_quiet((loop.get("artifacts") or {}).get("healthFile"))
        for loop in doc.get("loops") or []
    }
    handoff = read_json_quiet((doc.get("files") or {}).get("handoffStateFile")) or {}
    intents = [i for i in handoff.get("intents") or [] if isinstance(i, dict)]
    return health, intents
