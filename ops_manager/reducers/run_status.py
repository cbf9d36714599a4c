"""Run status and identity of a loop, derived from its runtime artifacts (``loop.md`` §3.1).

Pure: every input arrives as a parsed JSON value (or ``None``); no I/O, no clock. Field
access follows jq semantics where the contract relies on them (``a // b`` skips ``null`` and
``false``), but a value of the wrong type never raises: it simply does not match.
"""

from __future__ import annotations

import math
from typing import Any

from ops_manager.model._json import alt, coerce_number, nonempty_str

#: last-event names that mean the runtime stopped the run (-> ``stopped``)
STOP_EVENTS = frozenset({"loop_stop", "rate_limit_stop", "no_progress_stop"})
#: last-event statuses that mean the run failed (-> ``failed``)
ERROR_STATUSES = frozenset({"error", "timeout", "blocked", "rate_limited"})
#: events that only occur while an iteration is in progress (divergence when inactive)
ACTIVE_PHASE_EVENTS = frozenset(
    {
        "iteration_start",
        "role_start",
        "role_end",
        "iteration_end",
        "tests_start",
        "tests_end",
        "validation_start",
        "validation_end",
    }
)
#: every value ``derive_run_status`` can return (the schema's ``run.status`` enum)
RUN_STATUSES = (
    "running",
    "awaiting_approval",
    "complete",
    "stopped",
    "failed",
    "idle",
    "unknown",
)


def _get(obj: Any, key: str) -> Any:
    """jq ``.key`` that yields ``null`` instead of failing on a non-object."""
    return obj.get(key) if isinstance(obj, dict) else None


def event_name(raw: Any) -> Any:
    """``raw.event // raw.type`` (``None`` when neither is set or ``raw`` is not an object)."""
    return alt(_get(raw, "event"), _get(raw, "type"))


def coerce_iteration(value: Any) -> int:
    """An iteration number as the envelopes carry it: a non-negative integer.

    jq ``tonumber`` (numbers pass, numeric strings parse) with failure -> 0; non-integral
    values are truncated and negative or non-finite ones become 0, so ``run.iteration``
    always satisfies the schema's ``integer >= 0``.
    """
    number = coerce_number(value)
    if isinstance(number, float):
        if not math.isfinite(number):
            return 0
        number = int(number)
    return number if number > 0 else 0


def derive_run_status(
    *,
    approval: Any,
    latest: Any,
    state: Any,
    last_event: Any,
    loop_id: str,
) -> str:
    """The run status by the strict first-match truth table of ``loop.md`` §3.1.

    1. pending approval -> ``awaiting_approval``; 2. latest summary entry
    ``completion_ok == true`` -> ``complete``; 3. runtime state active on this loop ->
    ``running``; 4. last event is a stop event -> ``stopped``; 5. last event status is
    error-like -> ``failed``; 6. a state object that is not active (``false`` or missing)
    plus a summary entry -> ``idle``; 7. otherwise ``unknown``.
    """
    if approval is not None and _get(approval, "status") == "pending":
        return "awaiting_approval"
    if latest is not None and _get(latest, "completion_ok") is True:
        return "complete"
    if (
        state is not None
        and _get(state, "active") is True
        and _get(state, "current_loop_id") == loop_id
    ):
        return "running"
    name = event_name(last_event)
    if isinstance(name, str) and name in STOP_EVENTS:
        return "stopped"
    status = _get(last_event, "status")
    if isinstance(status, str) and status in ERROR_STATUSES:
        return "failed"
    if state is not None and latest is not None:
        # jq `(state.active // false) == false`: only null/missing/false qualify (not 0, "")
        active = _get(state, "active")
        if active is None or active is False:
            return "idle"
    return "unknown"


def derive_run_identity(
    *,
    run_id_override: str | None,
    latest: Any,
    last_event: Any,
    state: Any,
) -> tuple[str, int]:
    """``(runId, iteration)`` of a snapshot (``loop.md`` §3.1).

    runId: the override if non-empty, else the latest summary entry's ``run_id``, else the
    last event's ``run_id`` (each only if a non-empty string), else ``"unknown"``.
    iteration: first of ``latest.iteration // lastEvent.iteration // state.iteration // 0``,
    coerced by :func:`coerce_iteration`.
    """
    run_id = (
        nonempty_str(run_id_override)
        or nonempty_str(_get(latest, "run_id"))
        or nonempty_str(_get(last_event, "run_id"))
        or "unknown"
    )
    iteration = coerce_iteration(
        alt(
            _get(latest, "iteration"),
            _get(last_event, "iteration"),
            _get(state, "iteration"),
            0,
        )
    )
    return run_id, iteration
