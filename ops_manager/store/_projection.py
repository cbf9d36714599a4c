"""Reading and writing JSON projection files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ops_manager._jsonfmt import dumps
from ops_manager.errors import OpsError
from ops_manager.store._atomic import write_atomic


def write_json(path: Path, value: Any, pretty: bool = False) -> None:
    """Atomically write ``value`` as compact (or pretty) JSON plus a newline."""
    write_atomic(path, dumps(value, pretty) + "\n")


def read_json_file(path: Path, error: str) -> Any:
    """Parse ``path``; ``None`` if it does not exist; :class:`OpsError` ``<error>: <path>`` if bad.

    ``error`` is the contract's prefix, e.g. ``"invalid state JSON"``.
    """
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise OpsError(f"{error}: {path}") from None
    try:
        return json.loads(text)
    except (ValueError, UnicodeDecodeError):
        raise OpsError(f"{error}: {path}") from None


def read_json_or_empty(path: Path) -> dict[str, Any]:
    """Parse ``path`` as an object; missing, unreadable or non-object -> ``{}`` (lenient read)."""
    try:
        value = json.loads(path.read_bytes())
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    return value if isinstance(value, dict) else {}
