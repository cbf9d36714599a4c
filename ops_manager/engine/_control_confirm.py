"""Confirmation of control intents (``loop.md`` §3.9): poll the runtime until an intent's
effect is visible. Private to :mod:`ops_manager.engine.control`, which re-exports it."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

import attrs

from ops_manager._timefmt import format_ts, utc_now_epoch
from ops_manager.errors import OpsError
from ops_manager.reducers.confirm import Observation, confirm_outcome, confirm_predicate
from ops_manager.reducers.run_status import event_name
from ops_manager.store import LoopPaths
from ops_manager.transports import CONTROL_INTENTS, ConfirmResult, IntentConfirmer

INTENT_ERROR = "intent must be one of: cancel, approve, reject"

Snapshot = Callable[[LoopPaths], Any]


# --- confirmation --------------------------------------------------------------------------


@attrs.frozen
class ConfirmTiming:
    """Where confirmation gets time from: elapsed ``clock``, ``sleep``, and ``wall`` (epoch)."""

    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    wall: Callable[[], int] = utc_now_epoch


#: timing used by :func:`confirm_intent` when it is not given explicitly; :func:`run_control`
#: sets it for the duration of a transport call so an injected clock reaches the confirmation
#: the transport runs (the Transport protocol carries no clock).
CONFIRM_TIMING: ContextVar[ConfirmTiming | None] = ContextVar(
    "ops_manager_confirm_timing", default=None
)


def observe_runtime(paths: LoopPaths) -> dict[str, Any]:
    """A snapshot-shaped dict with the fields confirmation reads (raises OpsError).

    Same derivations as ``loop-run-snapshot`` (run status truth table, last event name,
    runtime files) but without hashing the event log: the cost of an attempt does not grow
    with the log.
    """
    from ops_manager.transports.local import read_runtime_view

    view = read_runtime_view(paths)
    return {
        "run": {"status": view.status, "summary": view.summary},
        "runtime": {"superloopState": view.superloop_state, "approval": view.approval},
        "health": {"lastEventName": event_name(view.last_event)},
    }


def confirm_intent(
    paths: LoopPaths,
    intent: str,
    *,
    timeout_seconds: int = 30,
    interval_seconds: int = 2,
    clock: Callable[[], float] | None = None,
    sleep: Callable[[float], None] | None = None,
    wall: Callable[[], int] | None = None,
    snapshot: Snapshot = observe_runtime,
) -> tuple[dict[str, Any], int]:
    """Poll the runtime until ``intent`` is confirmed or ``timeout_seconds`` have passed.

    Each attempt takes a fresh snapshot; a failed snapshot keeps the previous observation
    (and cannot confirm: only fresh evidence confirms). The loop stops when confirmed, or
    when ``clock() - start >= timeout_seconds`` checked after the attempt (timeout 0 = one
    attempt); otherwise it sleeps ``interval_seconds`` (0 counts as 1). Returns the §3.9
    outcome object and the exit code (0 confirmed, 1 not). ``clock``/``sleep``/``wall``
    default to the ambient :class:`ConfirmTiming` (real time unless :func:`run_control` was
    given a clock).
    """
    if intent not in CONTROL_INTENTS:
        raise OpsError(INTENT_ERROR)
    ambient = CONFIRM_TIMING.get() or ConfirmTiming()
    clock = clock or ambient.clock
    sleep = sleep or ambient.sleep
    wall = wall or ambient.wall
    interval = interval_seconds if interval_seconds > 0 else 1
    start = clock()
    attempts = 0
    obs = Observation()
    reason: str | None = None
    while True:
        attempts += 1
        try:
            snap = snapshot(paths)
        except (OpsError, OSError):
            pass  # adapter failure: keep the previous observation
        else:
            obs = Observation.from_snapshot(snap)
            reason = confirm_predicate(intent, obs)
        if reason is not None or clock() - start >= timeout_seconds:
            break
        sleep(interval)
    outcome = confirm_outcome(
        intent=intent,
        reason=reason,
        attempts=attempts,
        timeout_seconds=timeout_seconds,
        obs=obs,
        observed_at=format_ts(wall()),
    )
    return outcome, 0 if reason is not None else 1


def chosen_confirmer() -> IntentConfirmer:
    """The confirmer a plugin selects (``opsmgr_intent_confirmer``, e.g.
    ``$OPS_MANAGER_CONFIRM_SCRIPT``), else the built-in snapshot polling."""
    import os

    from ops_manager.plugins import get_plugin_manager

    chosen: IntentConfirmer | None = get_plugin_manager().hook.opsmgr_intent_confirmer(
        env=os.environ
    )
    return chosen if chosen is not None else _builtin_confirm


def _builtin_confirm(
    paths: LoopPaths, intent: str, *, timeout_seconds: int, interval_seconds: int
) -> ConfirmResult:
    outcome, code = confirm_intent(
        paths, intent, timeout_seconds=timeout_seconds, interval_seconds=interval_seconds
    )
    return ConfirmResult(exit_code=code, outcome=outcome)


def confirm_with_chosen(
    paths: LoopPaths, intent: str, *, timeout_seconds: int, interval_seconds: int
) -> ConfirmResult:
    """Confirm with :func:`chosen_confirmer`, looked up only when confirmation starts (as
    before the engine passed it in): the engine hands this to the local transport as
    ``ControlRequest.confirmer``."""
    return chosen_confirmer()(
        paths, intent, timeout_seconds=timeout_seconds, interval_seconds=interval_seconds
    )
