"""Control intents (``loop.md`` §3.9, §3.10): execute cancel / approve / reject through a
transport, confirm from fresh runtime evidence, and record what happened.

Two use cases:

- :func:`confirm_intent` polls the runtime until an intent's effect is visible or a timeout
  passes (``ops-manager confirm-intent``; also called by the local transport);
- :func:`run_control` executes one intent through :func:`~ops_manager.transports.get_transport`
  and appends the three records of §3.10.4 (``intents.jsonl``, ``telemetry/control.jsonl``,
  ``telemetry/control-invocations.jsonl``).

Idempotency: a caller-supplied idempotency key is executed at most once per loop (a
generated ``<intent>-<epoch>-<pid>`` key is recorded but not stored: nobody repeats it on
purpose). ``OPS/intent-idempotency.json`` maps key ->
``{"state": "executing" | "done" | "interrupted", ...}``. The key is reserved under the loop
lock (the one reconcile holds for a pass), the intent is executed and confirmed *without* the
lock (confirmation can take its whole timeout; reconciles must not wait for it), and the
result is stored under the lock again. A repeat of a stored key replays the stored result
(nothing executes; ``execution.replayed: true``; records appended again with the caller's
trace id). A repeat while the first call is still executing, or after it was interrupted,
answers ``ambiguous`` without executing. Transports whose remote side already
deduplicates by key (``sprite_service``: the service's own store, §3.12) bypass this store, so
the service's replay answer is what gets recorded.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable
from typing import Any

import attrs

from ops_manager._jsonfmt import nonempty_str, strip_nulls
from ops_manager._timefmt import format_ts, utc_now_epoch
from ops_manager.engine._control_confirm import CONFIRM_TIMING, confirm_with_chosen
from ops_manager.engine._control_confirm import INTENT_ERROR as INTENT_ERROR
from ops_manager.engine._control_confirm import ConfirmTiming as ConfirmTiming
from ops_manager.engine._control_confirm import Snapshot as Snapshot
from ops_manager.engine._control_confirm import confirm_intent as confirm_intent
from ops_manager.engine._control_confirm import observe_runtime as observe_runtime
from ops_manager.engine._control_idempotency import IDEMPOTENCY_FILE as IDEMPOTENCY_FILE
from ops_manager.engine._control_idempotency import (
    IDEMPOTENCY_MAX_ENTRIES as IDEMPOTENCY_MAX_ENTRIES,
)
from ops_manager.engine._control_idempotency import (
    IDEMPOTENCY_RETENTION_SECONDS as IDEMPOTENCY_RETENTION_SECONDS,
)
from ops_manager.engine._control_idempotency import (
    STALE_EXECUTING_SECONDS as STALE_EXECUTING_SECONDS,
)
from ops_manager.engine._control_idempotency import IdempotencyStore
from ops_manager.engine._control_idempotency import execution_from_json as execution_from_json
from ops_manager.engine._control_idempotency import execution_to_json as execution_to_json
from ops_manager.errors import OpsError
from ops_manager.store import LoopPaths
from ops_manager.transports import (
    CONTROL_INTENTS,
    ControlExecution,
    ControlRequest,
    Transport,
    get_transport,
)
from ops_manager.transports import ControlSettings as ControlSettings
from ops_manager.transports import TransportConfig as TransportConfig

#: transports whose remote side deduplicates by idempotency key itself
REMOTE_DEDUP_TRANSPORTS = frozenset({"sprite_service"})


# --- control -------------------------------------------------------------------------------


@attrs.frozen
class ControlResult:
    """The three records one invocation appended, and the process exit code."""

    entry: dict[str, Any]
    control_row: dict[str, Any]
    invocation: dict[str, Any]
    exit_code: int

    @property
    def status(self) -> str:
        """``confirmed | executed_unconfirmed | ambiguous | failed_command`` (| ``executed``)."""
        return str(self.entry["status"])

    @property
    def replayed(self) -> bool:
        """True when the result came from an idempotency store, not a new execution."""
        return bool(self.invocation["execution"].get("replayed"))


def exit_code_for(status: str) -> int:
    """0 for ``confirmed`` / ``executed_unconfirmed``, 2 for ``ambiguous``, else 1 (Q-15)."""
    if status in ("confirmed", "executed_unconfirmed"):
        return 0
    if status == "ambiguous":
        return 2
    return 1


def reason_code_for(status: str) -> str | None:
    """``control_ambiguous`` / ``control_failed_command`` / ``None`` (§5.5)."""
    return {"ambiguous": "control_ambiguous", "failed_command": "control_failed_command"}.get(
        status
    )


def default_idempotency_key(intent: str, epoch: int) -> str:
    """``<intent>-<epoch seconds>-<pid>`` (A-4)."""
    return f"{intent}-{epoch}-{os.getpid()}"


def run_control(
    settings: ControlSettings,
    *,
    clock: Callable[[], int] = utc_now_epoch,
    sleep: Callable[[float], None] | None = None,
) -> ControlResult:
    """Execute one intent (at most once per idempotency key) and record it (§3.10.4).

    ``clock`` stamps the records; when it (or ``sleep``) is injected, the confirmation the
    transport runs uses them too, so tests never wait. Raises :class:`OpsError` for invalid
    settings or an unavailable transport; a failing runtime command is a recorded
    ``failed_command``, not an exception. Takes the loop lock (``OPS/.lock``) briefly around
    the idempotency store: do not call it while holding that lock (``flock`` would block).
    """
    if settings.intent not in CONTROL_INTENTS:
        raise OpsError(INTENT_ERROR)
    paths = LoopPaths.for_loop(settings.repo, settings.loop_id)
    transport = get_transport(settings.transport, settings.transport_config)
    paths.ops_dir.mkdir(parents=True, exist_ok=True)
    paths.telemetry_dir.mkdir(parents=True, exist_ok=True)

    started = clock()
    explicit_key = bool(settings.idempotency_key)
    key = settings.idempotency_key or default_idempotency_key(settings.intent, started)
    trace_id = settings.trace_id or os.environ.get("OPS_MANAGER_TRACE_ID") or str(uuid.uuid4())
    by = settings.by or os.environ.get("USER") or "unknown"
    note = nonempty_str(settings.note)
    request = ControlRequest(
        paths=paths,
        intent=settings.intent,
        by=by,
        note=note,
        trace_id=trace_id,
        idempotency_key=key,
        confirm=settings.confirm,
        timeout_seconds=settings.timeout_seconds,
        interval_seconds=settings.interval_seconds,
        confirmer=confirm_with_chosen,
    )
    timing = ConfirmTiming(
        clock=time.monotonic if clock is utc_now_epoch else clock,
        sleep=sleep or time.sleep,
        wall=clock,
    )

    store = IdempotencyStore(paths)
    result: tuple[str, ControlExecution, int] | None = None
    if not explicit_key or _remote_dedup(transport):
        # a generated key is never repeated (and may collide within one second in one
        # process), so only caller-supplied keys go through the store
        execution = _execute(transport, request, timing)
    else:
        answer = store.reserve(key, settings.intent, trace_id, clock)
        if answer is not None:
            execution = answer
        else:
            try:
                execution = _execute(transport, request, timing)
            except BaseException:
                with contextlib.suppress(Exception):
                    store.mark_interrupted(key)
                raise
            result = (key, execution, clock())

    completed = clock()
    entry, row, invocation = build_control_records(
        request=request,
        transport=settings.transport,
        config=settings.transport_config,
        execution=execution,
        started=started,
        completed=completed,
    )
    # the three rows and the stored result as one commit (OPS/.pass-commit.json): a kill
    # leaves all of them or none, never a stored result whose rows are lost
    store.commit(
        [
            (paths.intents_file, entry),
            (paths.control_telemetry_file, row),
            (paths.control_invocations_file, invocation),
        ],
        result,
    )
    return ControlResult(
        entry=entry,
        control_row=row,
        invocation=invocation,
        exit_code=exit_code_for(execution.status),
    )


def _remote_dedup(transport: Transport) -> bool:
    declared = getattr(transport, "deduplicates_intents", None)
    if isinstance(declared, bool):
        return declared
    return transport.name in REMOTE_DEDUP_TRANSPORTS


def _execute(
    transport: Transport, request: ControlRequest, timing: ConfirmTiming
) -> ControlExecution:
    token = CONFIRM_TIMING.set(timing)
    try:
        return transport.control(request)
    finally:
        CONFIRM_TIMING.reset(token)


def build_control_records(
    *,
    request: ControlRequest,
    transport: str,
    config: TransportConfig,
    execution: ControlExecution,
    started: int,
    completed: int,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The ``intents.jsonl`` entry, ``control.jsonl`` row and ``control-invocations.jsonl``
    record of one invocation, keys in contract order, **[strip]** applied (§3.10.4)."""
    status = execution.status
    reason_code = reason_code_for(status)
    completed_at = format_ts(completed)
    started_at = format_ts(started)
    duration = max(completed - started, 0)
    note = nonempty_str(request.note)
    loop_id = request.paths.loop_id
    entry = strip_nulls(
        {
            "timestamp": completed_at,
            "loopId": loop_id,
            "intent": request.intent,
            "traceId": request.trace_id,
            "requestedBy": request.by,
            "note": note,
            "transport": transport,
            "status": status,
            "command": execution.command,
            "idempotencyKey": request.idempotency_key,
            "exitCode": execution.exit_code,
            "confirmExitCode": execution.confirm_exit_code,
            "confirmed": execution.confirmed,
            "commandOutput": nonempty_str(execution.command_output),
            "confirm": execution.confirm,
        }
    )
    row = strip_nulls(
        {
            "timestamp": completed_at,
            "startedAt": started_at,
            "loopId": loop_id,
            "intent": request.intent,
            "traceId": request.trace_id,
            "transport": transport,
            "status": status,
            "reasonCode": reason_code,
            "idempotencyKey": request.idempotency_key,
            "requestedBy": request.by,
            "exitCode": execution.exit_code,
            "confirmExitCode": execution.confirm_exit_code,
            "confirmed": execution.confirmed,
            "durationSeconds": duration,
            "retryAttempts": config.retry_attempts,
            "retryBackoffSeconds": config.retry_backoff_seconds,
        }
    )
    invocation = strip_nulls(
        {
            "schemaVersion": "v1",
            "timestamp": completed_at,
            "startedAt": started_at,
            "loopId": loop_id,
            "intent": request.intent,
            "traceId": request.trace_id,
            "transport": transport,
            "requestedBy": request.by,
            "note": note,
            "idempotencyKey": request.idempotency_key,
            "request": {
                "doConfirm": request.confirm,
                "timeoutSeconds": request.timeout_seconds,
                "intervalSeconds": request.interval_seconds,
                "retryAttempts": config.retry_attempts,
                "retryBackoffSeconds": config.retry_backoff_seconds,
            },
            "execution": strip_nulls(
                {
                    "status": execution.execution_status,
                    "exitCode": execution.exit_code,
                    "command": execution.command,
                    "output": nonempty_str(execution.command_output),
                    "replayed": execution.replayed,
                }
            ),
            "confirmation": strip_nulls(
                {
                    "attempted": execution.confirmation_attempted,
                    "status": execution.confirmation_status,
                    "exitCode": execution.confirm_exit_code,
                    "outcome": execution.confirm,
                }
            ),
            "outcome": strip_nulls(
                {
                    "status": status,
                    "confirmed": execution.confirmed,
                    "reasonCode": reason_code,
                    "durationSeconds": duration,
                }
            ),
        }
    )
    return entry, row, invocation
