"""Shared constants, JSON helpers, slugs and idempotency keys of the handoff reducer."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from ops_manager.model._json import alt

PENDING = "pending_operator_confirmation"
EXECUTED = "executed"
EXECUTION_AMBIGUOUS = "execution_ambiguous"
EXECUTION_FAILED = "execution_failed"

#: known categories map to ``cancel`` when a candidate carries no ``recommendedIntent``
DEFAULT_INTENT_CATEGORIES = ("reconcile_failed", "health_critical", "health_degraded")

GUARD_AMBIGUOUS = "autonomous_retry_guard_ambiguous"
GUARD_FAILED = "autonomous_retry_guard_failed"
GUARD_PREFIX = "autonomous_retry_guard_"

#: execution result status -> the intent status it becomes
INTENT_STATUS_FOR_RESULT = {
    "executed": EXECUTED,
    "ambiguous": EXECUTION_AMBIGUOUS,
    "failed": EXECUTION_FAILED,
}
RESULT_FOR_INTENT_STATUS = {v: k for k, v in INTENT_STATUS_FOR_RESULT.items()}
#: result status -> retry guard reason (an ``executed`` result clears nothing by itself)
GUARD_FOR_RESULT = {"ambiguous": GUARD_AMBIGUOUS, "failed": GUARD_FAILED}

MODE_MANUAL = "manual"
MODE_AUTONOMOUS = "autonomous"

_SLUG_BAD = re.compile(r"[^a-z0-9._-]")
_SLUG_RUNS = re.compile(r"-+")
RETRY_SUFFIX = re.compile(r"^(.+)-retry-([0-9]+)$")


def get_path(obj: Any, *keys: str) -> Any:
    """jq ``.a.b`` that yields ``None`` on a non-object instead of failing."""
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def as_object(value: Any) -> dict[str, Any]:
    """``value`` if it is an object, else ``{}``."""
    return value if isinstance(value, dict) else {}


def or_default(value: Any, default: Any) -> Any:
    """jq ``value // default``."""
    chosen = alt(value)
    return default if chosen is None else chosen


def unique_sorted(values: Iterable[str]) -> list[str]:
    """jq ``unique`` over strings: byte (code point) order, no duplicates."""
    return sorted(set(values))


def slug(text: str) -> str:
    """Lower-case ASCII, ``[^a-z0-9._-]`` -> ``-``, runs collapsed, one edge ``-`` stripped.

    ``Trace X/1`` -> ``trace-x-1``; ``reconcile_failed`` stays as it is.
    """
    lowered = "".join(ch.lower() if "A" <= ch <= "Z" else ch for ch in text)
    collapsed = _SLUG_RUNS.sub("-", _SLUG_BAD.sub("-", lowered))
    if collapsed.startswith("-"):
        collapsed = collapsed[1:]
    if collapsed.endswith("-"):
        collapsed = collapsed[:-1]
    return collapsed


def intent_idempotency_key(
    prefix: str, trace_id: str, loop_id: str, category: str | None, intent: str
) -> str:
    """The intent's deterministic key: non-empty slugs of the five parts joined by ``-``."""
    parts = (prefix, trace_id, loop_id, category if category is not None else "unknown", intent)
    return "-".join(s for s in (slug(p) for p in parts) if s)
