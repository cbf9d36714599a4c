"""Small readers shared by the engine's use cases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ops_manager.store import last_complete_line


def last_jsonl_object(path: Path) -> dict[str, Any] | None:
    """The last complete line of a JSONL file as an object; ``None`` if absent or unparseable.

    O(1) in file length. An unterminated final line (a write in progress) is not read.
    """
    line = last_complete_line(path)
    if line is None:
        return None
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
