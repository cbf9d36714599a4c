"""Shared pieces of the console API: limits, :class:`ApiResponse`, small artifact readers.

:class:`ApiState` declares the attributes :class:`~ops_manager.console._api.ConsoleApi`
sets in ``__init__``, so the endpoint mixins type-check on their own.
"""

from __future__ import annotations

import collections
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from ops_manager._timefmt import parse_ts

JSON = dict[str, Any]

#: how many recent rows of each stream a drill-down shows
RECENT_EVENTS = 50
RECENT_ROWS = 25
#: how many rows of each telemetry stream the SLO charts read (per loop / fleet)
SLO_WINDOW = 120
#: ingest-lag samples kept per loop (one per reconcile pass the console has seen)
LAG_SAMPLES = 240
#: longest ``by`` / ``note`` accepted from the confirm form
MAX_BY_CHARS = 128
MAX_NOTE_CHARS = 1000
MAX_INTENT_ID_CHARS = 512
HEALTH_STATES = ("healthy", "degraded", "critical", "unknown")
PENDING = "pending_operator_confirmation"


@attrs.frozen
class ApiResponse:
    """An HTTP status and a JSON body."""

    status: int
    body: JSON


def error(status: int, code: str, message: str) -> ApiResponse:
    """A JSON error answer: ``{"error": {"code", "message"}}``."""
    return ApiResponse(status, {"error": {"code": code, "message": message}})


def fleet_dir(repo: Path) -> Path:
    """``<repo>/.superloop/ops-manager/fleet`` (``fleet.md`` §0.1)."""
    return repo / ".superloop" / "ops-manager" / "fleet"


# --- small readers ------------------------------------------------------------------------


def read_object(path: Path) -> JSON | None:
    """A JSON object file, or ``None`` when missing or not a JSON object."""
    try:
        value = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def recent_records(path: Path, n: int) -> list[JSON]:
    """The last ``n`` complete JSON-object lines of a JSONL stream, oldest first.

    Reads from the end of the file (O(n), whatever the history); a torn final line and
    lines that are not JSON objects are skipped (a console shows, it does not judge).
    """
    from ops_manager.engine.telemetry_summary import tail_lines

    out: list[JSON] = []
    for raw in tail_lines(path, n):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except ValueError:
            continue
        if isinstance(value, dict):
            out.append(value)
    return out


def as_number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def as_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def as_object(value: Any) -> JSON:
    """``value`` when it is a JSON object, else ``{}``."""
    return value if isinstance(value, dict) else {}


def as_strs(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def age_seconds(now: int, stamp: Any) -> int | None:
    epoch = parse_ts(stamp)
    return None if epoch is None else max(0, now - epoch)


class ApiState:
    """The instance attributes :class:`~ops_manager.console._api.ConsoleApi` sets."""

    repo: Path
    summary_window: int
    clock: Callable[[], int]
    _lag: dict[str, collections.deque[tuple[str, float]]]
    _lag_lock: threading.Lock
    _confirm_lock: threading.Lock
